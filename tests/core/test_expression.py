"""The typed-expression parser: same numbers as hand-written torch code, and nothing but formulas.

Reference values come from plain torch code written in the test (micrograd's habit: PyTorch is the
oracle). Generated expressions are paired with the torch code they stand for, so no test ever
evaluates text as Python either.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import LabError
from core.problems.expression import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING_DEPTH,
    Expression,
    ExpressionError,
    parse_expression,
)
from core.problems.functions import FUNCTIONS, get_function


def assert_tensors_close(actual, expected, rtol=1e-12, atol=1e-12):
    """Same shape, same dtype, close values (NaN matches NaN, inf matches inf).

    Not torch.testing.assert_close: its first call imports for ~2 s, longer than these tests.
    """
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True), (actual, expected)


def _grid(n: int = 9, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = (torch.rand(n, n, generator=generator, dtype=torch.float64) * 4 - 2).to(dtype)
    y = (torch.rand(n, n, generator=generator, dtype=torch.float64) * 4 - 2).to(dtype)
    return x, y


def _values_and_gradients(fn, x, y):
    x = x.clone().requires_grad_(True)
    y = y.clone().requires_grad_(True)
    values = fn(x, y)
    values.sum().backward()
    # A reference that ignores y leaves y.grad unset; the parsed expression reports zeros.
    zeros = torch.zeros_like(x)
    return (
        values.detach(),
        zeros if x.grad is None else x.grad,
        zeros if y.grad is None else y.grad,
    )


# ---- values and gradients match torch -------------------------------------------------------


def test_rosenbrock_text_equals_the_registry_function_values_and_gradients():
    expression = parse_expression("(1-x)**2 + 100*(y-x**2)**2")
    x, y = _grid(25)
    got = _values_and_gradients(expression, x, y)
    want = _values_and_gradients(FUNCTIONS["rosenbrock"], x, y)
    for a, b in zip(got, want):
        assert_tensors_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("x", lambda x, y: x),
        ("x + y * 2", lambda x, y: x + y * 2),
        ("(x + y) * 2", lambda x, y: (x + y) * 2),
        ("x - y - 1", lambda x, y: (x - y) - 1),
        ("x / y / 2", lambda x, y: (x / y) / 2),
        ("-x**2", lambda x, y: -(x**2)),
        ("(-x)**2", lambda x, y: (-x) ** 2),
        ("-x^2", lambda x, y: -(x**2)),
        ("x**-1", lambda x, y: x**-1.0),
        ("2**-x", lambda x, y: 2.0**-x),
        ("--x", lambda x, y: x),
        ("-+-x", lambda x, y: x),
        ("- - - y", lambda x, y: -y),
        ("+x", lambda x, y: x),
        ("x * -y", lambda x, y: x * -y),
        ("1.5e1 * x + .5 - 3. + 2E-2 * y", lambda x, y: 15.0 * x + 0.5 - 3.0 + 0.02 * y),
        ("1e+2 * x", lambda x, y: 100.0 * x),
        ("pi * x + e * y", lambda x, y: math.pi * x + math.e * y),
        ("sin(x) * cos(y) + tan(x / 4)", lambda x, y: torch.sin(x) * torch.cos(y) + torch.tan(x / 4)),
        ("asin(x / 3) + acos(y / 3) + atan(x)", lambda x, y: torch.asin(x / 3) + torch.acos(y / 3) + torch.atan(x)),
        ("sinh(x) + cosh(y) + tanh(x * y)", lambda x, y: torch.sinh(x) + torch.cosh(y) + torch.tanh(x * y)),
        ("exp(-x**2) + log(1 + y**2)", lambda x, y: torch.exp(-(x**2)) + torch.log(1 + y**2)),
        ("log10(2 + x) + log2(3 + y)", lambda x, y: torch.log10(2 + x) + torch.log2(3 + y)),
        ("sqrt(x**2 + y**2 + 1) + abs(x - y)", lambda x, y: torch.sqrt(x**2 + y**2 + 1) + torch.abs(x - y)),
        ("sigmoid(x) + softplus(y) + relu(x - y)", lambda x, y: torch.sigmoid(x) + torch.nn.functional.softplus(y) + torch.relu(x - y)),
        ("min(x, y) + max(x, 2*y)", lambda x, y: torch.minimum(x, y) + torch.maximum(x, 2 * y)),
        ("atan2(y, x) + hypot(x, y) + pow(abs(x), 1.5)", lambda x, y: torch.atan2(y, x) + torch.hypot(x, y) + torch.abs(x) ** 1.5),
        ("  x\t+\ny  ", lambda x, y: x + y),
        ("x^y^2", lambda x, y: x ** (y**2)),
    ],
)  # fmt: skip
def test_values_and_gradients_equal_torch(text, reference):
    x, y = _grid()
    x = x.abs() + 0.1  # keep x**y and friends real
    got = _values_and_gradients(parse_expression(text), x, y)
    want = _values_and_gradients(reference, x, y)
    for a, b in zip(got, want):
        assert_tensors_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2**3**2", 512.0),
        ("2^3^2", 512.0),
        ("(2**3)**2", 64.0),
        ("-2**2", -4.0),
        ("(-2)**2", 4.0),
        ("2**-1", 0.5),
        ("-2**-2", -0.25),
        ("10 - 4 - 3", 3.0),
        ("2 * 3 + 4 * 5", 26.0),
        ("2 + 3 * 4 ** 2", 50.0),
        ("8 / 4 / 2", 1.0),
        ("---1", -1.0),
        ("1e3 + 2.5e-1 + 3E+0", 1003.25),
        ("((((1))))", 1.0),
        ("max(1, 2) - min(-3, 4)", 5.0),
        ("pow(2, 10)", 1024.0),
        ("1/0", math.inf),
    ],
)
def test_precedence_and_constants(text, expected):
    value = parse_expression(text)(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    assert value.shape == (3,)
    assert torch.all(value == expected)


def test_float32_inputs_give_float32_outputs():
    expression = parse_expression("x**2 + 0.5*y")
    x, y = _grid(5, dtype=torch.float32)
    value = expression(x, y)
    assert value.dtype == torch.float32 and value.shape == (5, 5)
    assert_tensors_close(value, x**2 + 0.5 * y, rtol=1e-6, atol=1e-6)


def test_integer_inputs_are_promoted_to_float():
    value = parse_expression("x / 2 + y")(torch.tensor([1, 2]), torch.tensor([3, 4]))
    assert value.is_floating_point()
    assert value.tolist() == [3.5, 5.0]


def test_expression_keeps_its_text_and_equality():
    a = parse_expression("x + y")
    assert a.text == "x + y" and str(a) == "x + y" and isinstance(a, Expression)
    assert a == parse_expression("x + y")
    assert a.variables == {"x", "y"}
    assert parse_expression("sin(pi)").variables == frozenset()


def test_huge_powers_overflow_to_inf_instead_of_hanging():
    value = parse_expression("9**9**9**9")(torch.zeros(2), torch.zeros(2))
    assert torch.isinf(value).all()


# ---- errors with columns --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("x + z", 5, "unknown name 'z' (use x, y, pi, e or a function: "),
        ("(x + 1", 7, "expected ')' to close '(' at column 1"),
        ("sin(x + (y)", 12, "expected ')' to close '(' at column 4"),
        ("(x + 1]", 7, "unexpected character ']'"),
        ("x +", 4, "unexpected end of expression"),
        ("x * ", 5, "unexpected end of expression"),
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("2x", 2, "implicit multiplication is not supported"),
        ("x y", 3, "implicit multiplication is not supported"),
        ("2(x)", 2, "implicit multiplication is not supported"),
        ("(x)(y)", 4, "implicit multiplication is not supported"),
        ("(x y)", 4, "implicit multiplication is not supported"),
        ("x)", 2, "unmatched ')'"),
        (")", 1, "unexpected ')'"),
        ("x ,y", 3, "unexpected ','"),
        ("* x", 1, "unexpected '*'"),
        ("x ** * y", 6, "unexpected '*'"),
        ("sin", 4, "expected '(' after function 'sin'"),
        ("cos x", 5, "expected '(' after function 'cos'"),
        ("sin(x, y)", 1, "sin() takes 1 argument, got 2"),
        ("atan2(x)", 1, "atan2() takes 2 arguments, got 1"),
        ("exp()", 1, "exp() takes 1 argument, got 0"),
        ("1.2.3", 1, "malformed number '1.2.3'"),
        ("x + 1e", 5, "malformed number '1e'"),
        ("1e+ x", 1, "malformed number '1e+'"),
        ("1e999", 1, "too large"),
        ("x // y", 4, "unexpected '/'"),
        ("x % y", 3, "unexpected character '%'"),
        ("Sin(x)", 1, "unknown name 'Sin'"),
        ("X", 1, "unknown name 'X'"),
    ],
)
def test_invalid_inputs_report_the_column(text, column, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    err = info.value
    assert err.column == column
    assert fragment in err.message
    assert err.message.startswith(f"column {column}: ")
    assert err.field == "expression"


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("__import__('os')", 1, "unknown name '__import__'"),
        ("__import__('os').system('ls')", 1, "unknown name '__import__'"),
        ("x.__class__", 2, "unexpected '.'"),
        ("x.real", 2, "unexpected '.'"),
        ("(x).imag", 4, "unexpected '.'"),
        ("lambda: 1", 1, "unknown name 'lambda'"),
        ("[1]", 1, "unexpected character '['"),
        ("{1: 2}", 1, "unexpected character '{'"),
        ("'x'", 1, "quote"),
        ('"x"', 1, "quote"),
        ("x; y", 2, "unexpected character ';'"),
        ("x=1", 2, "unexpected '='"),
        ("x == 1", 3, "unexpected '='"),
        ("x @ y", 3, "unexpected character '@'"),
        ("x if y else 1", 3, "implicit multiplication"),
        ("open", 1, "unknown name 'open'"),
        ("globals()", 1, "unknown name 'globals'"),
        ("torch", 1, "unknown name 'torch'"),
        ("x ≤ 1", 3, "unexpected character '≤'"),
        ("π * x", 1, "only ASCII"),
        ("x\x00", 2, "unexpected character"),
        ("x # comment", 3, "unexpected character '#'"),
        ("`x`", 1, "unexpected character '`'"),
        ("\\x", 1, "unexpected character '\\\\'"),
    ],
)
def test_hostile_inputs_are_refused_with_a_column(text, column, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.column == column
    assert fragment in info.value.message


def test_non_string_input_is_a_lab_error():
    with pytest.raises(LabError, match="got int"):
        parse_expression(5)  # type: ignore[arg-type]


def test_overlong_input_is_refused_before_parsing():
    with pytest.raises(ExpressionError) as info:
        parse_expression("x+" * 5000)  # 10,000 characters
    assert info.value.column == MAX_EXPRESSION_LENGTH + 1
    assert "too long (10000 characters; the limit is 500)" in info.value.message


def test_thousand_nested_parentheses_are_refused():
    with pytest.raises(ExpressionError, match="too long"):
        parse_expression("(" * 1000 + "x" + ")" * 1000)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 249 + "x" + ")" * 249,  # within the length limit: needs the depth guard
        "-" * 499 + "x",
        "sin(" * 99 + "x" + ")" * 99,
        "x**" * 166 + "x",
        "(" * (MAX_NESTING_DEPTH + 1) + "x" + ")" * (MAX_NESTING_DEPTH + 1),
        "(" * 499,
    ],
)
def test_deep_nesting_is_refused_without_hitting_the_recursion_limit(text):
    assert len(text) <= MAX_EXPRESSION_LENGTH
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert "nested too deeply" in info.value.message
    assert info.value.column >= MAX_NESTING_DEPTH


def test_nesting_up_to_the_limit_is_allowed():
    depth = MAX_NESTING_DEPTH
    expression = parse_expression("(" * depth + "x" + ")" * depth)
    assert expression(torch.ones(1), torch.zeros(1)).item() == 1.0


def test_long_flat_chains_are_fine():
    text = "+".join(["x"] * 250)[:MAX_EXPRESSION_LENGTH]
    expression = parse_expression(text)
    x = torch.ones(2, requires_grad=True)
    value = expression(x, torch.zeros(2))
    value.sum().backward()
    assert value.tolist() == [250.0, 250.0] and x.grad.tolist() == [250.0, 250.0]


def test_get_function_rejects_expressions_that_are_infinite_everywhere():
    with pytest.raises(LabError) as info:
        get_function({"expression": "9**9**9**9"})
    assert info.value.field == "problem.function.expression"
    assert "not finite anywhere" in info.value.message


def test_expression_error_nests_under_a_prefix_and_keeps_its_column():
    err = ExpressionError(3, "unexpected '*'", "function.expression")
    nested = err.within("lessons[0]")
    assert isinstance(nested, ExpressionError) and nested.column == 3
    assert str(nested) == "lessons[0].function.expression: column 3: unexpected '*'"
    assert isinstance(err, LabError) and isinstance(err, ValueError)


# ---- property-based ---------------------------------------------------------------------------

# Everything the grammar uses, plus characters and words it must refuse.
_ALPHABET = list("xyzepi0123456789.eE+-*/^(),_ \t[]{}'\";:=@!#$%&|~<>?`\\é∑π") + [
    "sin", "cos", "sqrt", "log", "max", "atan2", "pow", "**", "__", "lambda", "import",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_ALPHABET), max_size=60).map("".join).filter(lambda s: len(s) <= 200))
def test_random_text_parses_or_raises_expression_error(text):
    try:
        expression = parse_expression(text)
    except ExpressionError as err:
        assert 1 <= err.column <= max(len(text), MAX_EXPRESSION_LENGTH) + 1
        assert err.message.startswith(f"column {err.column}: ")
        return
    # Whatever parses must evaluate to one value per point, never raise.
    value = expression(torch.linspace(-1, 1, 3), torch.linspace(1, -1, 3))
    assert isinstance(value, torch.Tensor) and value.shape == (3,)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="xy0123456789.eE+-*/^(),_ [];'=@é", max_size=200))
def test_random_characters_parse_or_raise_expression_error(text):
    try:
        parse_expression(text)
    except ExpressionError:
        pass


# Valid expressions, each paired with the torch code it stands for.
_UNARY_FUNCTIONS = {
    "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "exp": torch.exp, "abs": torch.abs,
    "sigmoid": torch.sigmoid, "relu": torch.relu, "sqrt": torch.sqrt, "log": torch.log,
    "atan": torch.atan, "softplus": torch.nn.functional.softplus,
}  # fmt: skip
_BINARY_FUNCTIONS = {"min": torch.minimum, "max": torch.maximum, "atan2": torch.atan2}
_OPERATORS = {
    "+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "**": torch.pow, "^": torch.pow,
}  # fmt: skip


def _constant(value: float):
    return lambda x, y: torch.full_like(x, value)


_leaves = st.one_of(
    st.sampled_from([("x", lambda x, y: x), ("y", lambda x, y: y)]),
    st.sampled_from([("pi", _constant(math.pi)), ("e", _constant(math.e))]),
    st.integers(0, 99).map(lambda n: (str(n), _constant(float(n)))),
    st.floats(0, 10, allow_nan=False).map(lambda v: (repr(v), _constant(v))),
    st.sampled_from(["1e-3", "2.5E+1", ".5", "3."]).map(lambda s: (s, _constant(float(s)))),
)


def _extend(children):
    binary = st.tuples(st.sampled_from(sorted(_OPERATORS)), children, children).map(
        lambda t: (
            f"({t[1][0]} {t[0]} {t[2][0]})",
            lambda x, y, op=_OPERATORS[t[0]], a=t[1][1], b=t[2][1]: op(a(x, y), b(x, y)),
        )
    )
    # Parenthesised as a whole: "-(a) ** b" would mean -(a ** b), as in Python.
    negated = children.map(lambda c: (f"(-({c[0]}))", lambda x, y, a=c[1]: -a(x, y)))
    unary_call = st.tuples(st.sampled_from(sorted(_UNARY_FUNCTIONS)), children).map(
        lambda t: (
            f"{t[0]}({t[1][0]})",
            lambda x, y, f=_UNARY_FUNCTIONS[t[0]], a=t[1][1]: f(a(x, y)),
        )
    )
    binary_call = st.tuples(st.sampled_from(sorted(_BINARY_FUNCTIONS)), children, children).map(
        lambda t: (
            f"{t[0]}({t[1][0]}, {t[2][0]})",
            lambda x, y, f=_BINARY_FUNCTIONS[t[0]], a=t[1][1], b=t[2][1]: f(a(x, y), b(x, y)),
        )
    )
    return st.one_of(binary, negated, unary_call, binary_call)


# Each level adds at most two nesting levels, so 8 levels of recursion stay under the limit.
_valid_expressions = st.recursive(_leaves, _extend, max_leaves=8).filter(
    lambda pair: len(pair[0]) <= MAX_EXPRESSION_LENGTH
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_expressions)
def test_generated_valid_expressions_parse_and_match_torch(pair):
    text, reference = pair
    expression = parse_expression(text)
    x, y = _grid(4)
    value = expression(x, y)
    assert isinstance(value, torch.Tensor)
    assert value.shape == (4, 4) and value.dtype == torch.float64
    assert_tensors_close(value, reference(x, y), rtol=1e-12, atol=1e-12)
