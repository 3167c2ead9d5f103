"""The expression language of typed 2-D functions: text in x and y -> a torch-differentiable f.

A lab file's ``problem.function`` may be ``{"expression": "(1-x)**2 + 100*(y-x**2)**2"}``;
core/problems/functions.py turns that into an Objective (domain, start point, numeric checks)
and calls :func:`parse_expression` here for the formula itself. Typed text never reaches
``eval``, ``exec`` or ``compile``: a whitelist tokenizer and a recursive-descent parser build a
small AST of frozen dataclasses (:class:`Number`, :class:`Variable`, :class:`Negate`,
:class:`Binary`, :class:`Call`), and :class:`Expression` evaluates that tree with torch
operations only, so autograd gives the gradient. core/teaching/function_script.py walks the same
tree to write the formula into a standalone script.

Grammar (Python's precedence, ``^`` is accepted as a synonym of ``**``)::

    expression     := additive
    additive       := multiplicative (("+" | "-") multiplicative)*
    multiplicative := unary (("*" | "/") unary)*
    unary          := ("+" | "-") unary | power
    power          := primary (("**" | "^") unary)?      # right-associative, binds tighter than "-"
    primary        := NUMBER | "x" | "y" | "pi" | "e" | "(" expression ")"
                    | FUNCTION "(" expression ("," expression)* ")"

The whitelist: the variables ``x`` and ``y``, the constants ``pi`` and ``e``, numbers (``2``,
``.5``, ``1e-3``), ``+ - * / ** ^``, parentheses, and the functions of :data:`ALLOWED_FUNCTIONS`
(sin cos tan asin acos atan sinh cosh tanh exp log log10 log2 sqrt abs sigmoid softplus relu,
and min max atan2 hypot pow of two arguments). Everything else (attributes, quotes, ``=``,
unknown names, implicit multiplication such as ``2x``) is refused with an
:class:`ExpressionError` that names the 1-based column where the problem starts. Length
(:data:`MAX_EXPRESSION_LENGTH`) and nesting (:data:`MAX_NESTING_DEPTH`) are bounded, so no input
can exhaust the recursion limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch
from torch import Tensor

from core.errors import LabError

__all__ = [
    "ALLOWED_FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING_DEPTH",
    "Binary",
    "Call",
    "Expression",
    "ExpressionError",
    "Negate",
    "Node",
    "Number",
    "Variable",
    "parse_expression",
]

MAX_EXPRESSION_LENGTH = 500
# Each "(", function call, unary sign and "**" costs one level. The parser recurses ~6 Python frames
# per level, so 40 levels stay far below Python's recursion limit even deep inside a GUI call stack.
MAX_NESTING_DEPTH = 40

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_VARIABLES = ("x", "y")


def _softplus(t: Tensor) -> Tensor:
    return torch.nn.functional.softplus(t)


# name -> (arity, torch implementation). A fixed whitelist: nothing else can be called.
# Public: core/teaching/function_script.py writes the same torch calls into a script.
ALLOWED_FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "tan": (1, torch.tan),
    "asin": (1, torch.asin),
    "acos": (1, torch.acos),
    "atan": (1, torch.atan),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "tanh": (1, torch.tanh),
    "exp": (1, torch.exp),
    "log": (1, torch.log),
    "log10": (1, torch.log10),
    "log2": (1, torch.log2),
    "sqrt": (1, torch.sqrt),
    "abs": (1, torch.abs),
    "sigmoid": (1, torch.sigmoid),
    "softplus": (1, _softplus),
    "relu": (1, torch.relu),
    "min": (2, torch.minimum),
    "max": (2, torch.maximum),
    "atan2": (2, torch.atan2),
    "hypot": (2, torch.hypot),
    "pow": (2, torch.pow),
}

_NAMES_HELP = "use x, y, pi, e or a function: " + ", ".join(sorted(ALLOWED_FUNCTIONS))


class ExpressionError(LabError):
    """A typed expression is malformed; ``column`` (1-based) is where the problem starts."""

    def __init__(self, column: int, message: str, field: str = "expression"):
        self.column = column
        self.problem = message
        super().__init__(field, f"column {column}: {message}")

    def within(self, prefix: str) -> ExpressionError:
        """The same error (still an ExpressionError, same column) nested under ``prefix``."""
        if not prefix:
            return self
        nested = f"{prefix}.{self.field}" if self.field else prefix
        err = ExpressionError(self.column, self.problem, nested)
        err.__cause__ = self.__cause__
        return err

    def about(self, field: str) -> ExpressionError:
        """The same error reported against ``field`` instead of the parser's default."""
        return self if field == self.field else ExpressionError(self.column, self.problem, field)


# ---- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    column: int  # 1-based
    value: float = 0.0  # for numbers


# A number: digits with an optional fraction, or a leading-dot fraction, then an optional exponent.
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("**", "+", "-", "*", "/", "^", "(", ")", ",")  # "**" first: longest match wins
_WHITESPACE = " \t\r\n"


def _tokenize(text: str) -> Iterator[Token]:
    """Yield tokens left to right, refusing any character outside the whitelist.

    Lazy on purpose: the parser pulls one token at a time, so the first problem from the left is
    the one reported ("unknown name '__import__'" before the quote that follows it).
    """
    position = 0
    while position < len(text):
        char = text[position]
        column = position + 1
        if char in _WHITESPACE:
            position += 1
        elif char.isascii() and (char.isdigit() or char == "."):
            token = _read_number(text, position)
            position += len(token.text)
            yield token
        elif char.isascii() and (char.isalpha() or char == "_"):
            match = _NAME.match(text, position)
            assert match is not None  # the first character is a letter or "_"
            position = match.end()
            yield Token("name", match.group(), column)
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, position)), None)
            if operator is None:
                raise ExpressionError(column, _describe_bad_character(char))
            position += len(operator)
            yield Token("op", operator, column)
    end = Token("end", "", len(text) + 1)
    while True:  # the parser may peek at the end more than once
        yield end


def _read_number(text: str, position: int) -> Token:
    column = position + 1
    match = _NUMBER.match(text, position)
    if match is None:  # a lone "." as in "x.real" or "x.__class__"
        raise ExpressionError(column, "unexpected '.' (attributes are not allowed)")
    rest = text[match.end() :]
    if rest.startswith("."):  # "1.2.3", "1e5.2"
        run = re.match(r"[0-9.eE]*", text[position:]).group()  # type: ignore[union-attr]
        raise ExpressionError(column, f"malformed number '{run}'")
    broken_exponent = re.match(r"[eE][+-]?(?![A-Za-z_])", rest)
    if broken_exponent:  # "1e", "1e+x": an exponent without digits (the regex took any valid one)
        raise ExpressionError(
            column,
            f"malformed number '{match.group()}{broken_exponent.group()}' "
            "(an exponent needs digits, e.g. 1e-3)",
        )
    # A letter right after a number ("2x") is left to the parser, which reports the implicit
    # multiplication at the letter's column.
    value = float(match.group())
    if not math.isfinite(value):
        raise ExpressionError(column, f"number '{match.group()}' is too large")
    return Token("number", match.group(), column, value)


def _describe_bad_character(char: str) -> str:
    if not char.isascii():
        return (
            f"unexpected character {char!r} "
            "(only ASCII letters, digits and + - * / ^ ( ) , are allowed)"
        )
    if char in "'\"":
        return "unexpected quote (strings are not allowed)"
    if char == "=":
        return "unexpected '=' (write only the formula, e.g. x**2 + y**2, without 'f =')"
    return (
        f"unexpected character {char!r} "
        "(allowed: numbers, x, y, + - * / ** ^ ( ) and function calls)"
    )


# ---- AST ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        # A tensor, never a Python number: 9**9**9**9 must overflow to inf, not run big-int maths.
        return torch.tensor(self.value, dtype=x.dtype, device=x.device)


@dataclass(frozen=True)
class Variable:
    name: str  # "x" or "y"

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        return x if self.name == "x" else y


@dataclass(frozen=True)
class Negate:
    operand: Node

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        return -self.operand.evaluate(x, y)


_BINARY_OPERATIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "+": torch.add,
    "-": torch.sub,
    "*": torch.mul,
    "/": torch.div,
    "**": torch.pow,
}


@dataclass(frozen=True)
class Binary:
    operator: str  # one of _BINARY_OPERATIONS ("^" is stored as "**")
    left: Node
    right: Node

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        operation = _BINARY_OPERATIONS[self.operator]
        return operation(self.left.evaluate(x, y), self.right.evaluate(x, y))


@dataclass(frozen=True)
class Call:
    function: str  # a key of ALLOWED_FUNCTIONS
    arguments: tuple[Node, ...]

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        implementation = ALLOWED_FUNCTIONS[self.function][1]
        return implementation(*(argument.evaluate(x, y) for argument in self.arguments))


Node = Number | Variable | Negate | Binary | Call


def _variables_used(node: Node) -> set[str]:
    # Iterative so even a long left-leaning chain like x+x+...+x needs no recursion.
    used: set[str] = set()
    pending: list[Node] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Variable):
            used.add(current.name)
        elif isinstance(current, Negate):
            pending.append(current.operand)
        elif isinstance(current, Binary):
            pending.extend((current.left, current.right))
        elif isinstance(current, Call):
            pending.extend(current.arguments)
    return used


@dataclass(frozen=True)
class Expression:
    """A parsed formula in x and y: call it with two same-shape tensors to get f(x, y)."""

    text: str
    root: Node
    variables: frozenset[str] = dataclass_field(default=frozenset())

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        if not torch.is_floating_point(x):
            x = x.to(torch.get_default_dtype())
        if not torch.is_floating_point(y):
            y = y.to(x.dtype)
        result = self.root.evaluate(x, y)
        # A formula that ignores x or y must still return one value per point and stay connected
        # to both inputs in the autograd graph, or loss.backward() would fail on a flat direction.
        if "x" not in self.variables:
            result = result + 0.0 * x
        if "y" not in self.variables:
            result = result + 0.0 * y
        return result

    def __str__(self) -> str:
        return self.text


# ---- parser -------------------------------------------------------------------------------


class Parser:
    """Recursive-descent parser, one token of lookahead; the grammar is in the module docstring."""

    def __init__(self, text: str):
        self._tokens = _tokenize(text)
        self._lookahead: Token | None = None
        self._depth = -1  # the outermost _unary is level 0

    def parse(self) -> Node:
        root = self._additive()
        token = self._peek()
        if token.kind != "end":
            raise self._unexpected_after_operand(token)
        return root

    # -- helpers

    def _peek(self) -> Token:
        if self._lookahead is None:
            self._lookahead = next(self._tokens)
        return self._lookahead

    def _advance(self) -> Token:
        token = self._peek()
        self._lookahead = None
        return token

    def _is_op(self, token: Token, *operators: str) -> bool:
        return token.kind == "op" and token.text in operators

    def _unexpected_after_operand(self, token: Token) -> ExpressionError:
        if token.kind in ("number", "name") or self._is_op(token, "("):
            return ExpressionError(
                token.column,
                f"expected an operator before '{token.text}' "
                f"(implicit multiplication is not supported: write '*')",
            )
        if self._is_op(token, ")"):
            return ExpressionError(token.column, "unmatched ')'")
        return ExpressionError(token.column, f"unexpected '{token.text}'")

    # -- grammar rules

    def _additive(self) -> Node:
        node = self._multiplicative()
        while self._is_op(self._peek(), "+", "-"):
            operator = self._advance().text
            node = Binary(operator, node, self._multiplicative())
        return node

    def _multiplicative(self) -> Node:
        node = self._unary()
        while self._is_op(self._peek(), "*", "/"):
            operator = self._advance().text
            node = Binary(operator, node, self._unary())
        return node

    def _unary(self) -> Node:
        # Every nesting construct (parentheses, calls, signs, exponents) passes through here, so
        # this one counter bounds the recursion for any input.
        self._depth += 1
        try:
            token = self._peek()
            if self._depth > MAX_NESTING_DEPTH:
                raise ExpressionError(
                    token.column,
                    f"the expression is nested too deeply (more than {MAX_NESTING_DEPTH} levels "
                    "of parentheses, function calls, signs or powers)",
                )
            if self._is_op(token, "-", "+"):
                self._advance()
                operand = self._unary()
                return Negate(operand) if token.text == "-" else operand
            return self._power()
        finally:
            self._depth -= 1

    def _power(self) -> Node:
        base = self._primary()
        if self._is_op(self._peek(), "**", "^"):
            self._advance()
            # The exponent is a unary: right-associative (2**3**2 = 2**9) and 2**-1 works.
            return Binary("**", base, self._unary())
        return base

    def _primary(self) -> Node:
        token = self._advance()
        if token.kind == "number":
            return Number(token.value)
        if token.kind == "name":
            return self._name(token)
        if self._is_op(token, "("):
            inner = self._additive()
            self._expect_closing(token)
            return inner
        if token.kind == "end":
            raise ExpressionError(
                token.column,
                "unexpected end of expression (expected a number, x, y, a constant, "
                "a function call or '(')",
            )
        if self._is_op(token, ")"):
            raise ExpressionError(token.column, "unexpected ')' (expected a value before it)")
        raise ExpressionError(
            token.column,
            f"unexpected '{token.text}' "
            "(expected a number, x, y, a constant, a function call or '(')",
        )

    def _name(self, token: Token) -> Node:
        name = token.text
        if name in _VARIABLES:
            return Variable(name)
        if name in _CONSTANTS:
            return Number(_CONSTANTS[name])
        if name not in ALLOWED_FUNCTIONS:
            raise ExpressionError(token.column, f"unknown name '{name}' ({_NAMES_HELP})")
        opening = self._peek()
        if not self._is_op(opening, "("):
            raise ExpressionError(opening.column, f"expected '(' after function '{name}'")
        self._advance()
        arguments = self._arguments(opening)
        arity = ALLOWED_FUNCTIONS[name][0]
        if len(arguments) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise ExpressionError(
                token.column, f"{name}() takes {arity} {plural}, got {len(arguments)}"
            )
        return Call(name, tuple(arguments))

    def _arguments(self, opening: Token) -> list[Node]:
        if self._is_op(self._peek(), ")"):
            self._advance()
            return []
        arguments = [self._additive()]
        while self._is_op(self._peek(), ","):
            self._advance()
            arguments.append(self._additive())
        self._expect_closing(opening)
        return arguments

    def _expect_closing(self, opening: Token) -> None:
        token = self._peek()
        if self._is_op(token, ")"):
            self._advance()
            return
        where = f"to close '(' at column {opening.column}"
        if token.kind == "end":
            raise ExpressionError(token.column, f"expected ')' {where}")
        if token.kind in ("number", "name") or self._is_op(token, "("):
            raise ExpressionError(
                token.column,
                f"expected an operator or ')' {where}, found '{token.text}' "
                "(implicit multiplication is not supported: write '*')",
            )
        raise ExpressionError(token.column, f"expected ')' {where}, found '{token.text}'")


def parse_expression(text: str, field: str = "expression") -> Expression:
    """Parse a formula in x and y into an :class:`Expression`; never evaluates user text as code.

    Raises :class:`ExpressionError` (a :class:`LabError` about ``field``) naming the column.
    """
    if not isinstance(text, str):
        raise LabError(field, f"must be a formula in x and y as text, got {type(text).__name__}")
    try:
        if len(text) > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(
                MAX_EXPRESSION_LENGTH + 1,
                f"the expression is too long ({len(text)} characters; "
                f"the limit is {MAX_EXPRESSION_LENGTH})",
            )
        if not text.strip():
            raise ExpressionError(1, "the expression is empty (write a formula in x and y)")
        root = Parser(text).parse()
    except ExpressionError as err:
        raise err.about(field) from None
    return Expression(text=text, root=root, variables=frozenset(_variables_used(root)))
