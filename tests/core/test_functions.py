"""The registry of 2-D test functions: textbook values, minima, gradients, grids, get_function."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import LabError
from core.problems.expression import ExpressionError
from core.problems.functions import FUNCTIONS, Objective, get_function

REQUIRED = {
    "quadratic", "ravine", "saddle", "monkey_saddle", "rosenbrock", "beale", "himmelblau",
    "booth", "matyas", "three_hump_camel", "six_hump_camel", "goldstein_price", "rastrigin",
    "ackley", "styblinski_tang", "levi13", "mccormick", "easom",
}  # fmt: skip

ALL = sorted(FUNCTIONS)
WITH_MINIMUM = sorted(name for name, f in FUNCTIONS.items() if f.minima)


def assert_tensors_close(actual, expected, rtol=1e-12, atol=1e-12):
    """Same shape, same dtype, close values (NaN matches NaN, inf matches inf).

    Not torch.testing.assert_close: its first call imports for ~2 s, longer than these tests.
    """
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True), (actual, expected)


def _value_and_gradient(objective: Objective, x: float, y: float, dtype=torch.float64):
    px = torch.tensor(x, dtype=dtype, requires_grad=True)
    py = torch.tensor(y, dtype=dtype, requires_grad=True)
    value = objective(px, py)
    value.backward()
    return value.item(), px.grad.item(), py.grad.item()


def test_registry_holds_every_required_function():
    assert REQUIRED <= set(FUNCTIONS)
    for name, objective in FUNCTIONS.items():
        assert objective.name == name


@pytest.mark.parametrize("name", ALL)
def test_metadata_is_well_formed(name):
    f = FUNCTIONS[name]
    (xmin, xmax), (ymin, ymax) = f.domain
    assert all(isinstance(v, float) and math.isfinite(v) for v in (xmin, xmax, ymin, ymax))
    assert xmin < xmax and ymin < ymax
    sx, sy = f.start
    assert xmin < sx < xmax and ymin < sy < ymax
    assert f.title and f.formula.startswith("f(x, y) = ") and f.description
    assert isinstance(f.log_scale, bool)
    if f.minima:
        assert f.min_value is not None
        for mx, my in f.minima:
            assert xmin <= mx <= xmax and ymin <= my <= ymax
        # The start must not sit at (or right next to) a minimum, or there is no race.
        assert min(math.dist(f.start, m) for m in f.minima) > 0.5
    else:
        assert f.min_value is None


@pytest.mark.parametrize("name", WITH_MINIMUM)
def test_value_at_every_global_minimum_matches_textbook(name):
    f = FUNCTIONS[name]
    for mx, my in f.minima:
        value, _, _ = _value_and_gradient(f, mx, my)
        assert value == pytest.approx(f.min_value, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", WITH_MINIMUM)
def test_gradient_vanishes_at_every_global_minimum(name):
    f = FUNCTIONS[name]
    for mx, my in f.minima:
        _, gx, gy = _value_and_gradient(f, mx, my)
        assert math.isfinite(gx) and math.isfinite(gy)
        assert abs(gx) < 1e-5 and abs(gy) < 1e-5


@pytest.mark.parametrize("name", WITH_MINIMUM)
def test_minimum_is_lowest_on_a_fine_grid(name):
    """No grid point beats the stated global minimum (catches a wrong formula or minimum)."""
    f = FUNCTIONS[name]
    _, _, z = f.grid(301)
    assert z.min() >= f.min_value - 1e-9


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(7,), (5, 4)])
def test_elementwise_over_any_shape_and_dtype(name, dtype, shape):
    f = FUNCTIONS[name]
    (xmin, xmax), (ymin, ymax) = f.domain
    generator = torch.Generator().manual_seed(0)
    x = (xmin + (xmax - xmin) * torch.rand(shape, generator=generator, dtype=torch.float64)).to(dtype)
    y = (ymin + (ymax - ymin) * torch.rand(shape, generator=generator, dtype=torch.float64)).to(dtype)
    x.requires_grad_(True)
    y.requires_grad_(True)
    values = f(x, y)
    assert values.shape == shape and values.dtype == dtype
    assert torch.isfinite(values).all()
    values.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    # Elementwise: each entry equals the function at that single point.
    single = torch.stack([f(xi, yi) for xi, yi in zip(x.detach().flatten(), y.detach().flatten())])
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-5}[dtype]
    assert_tensors_close(values.detach().flatten(), single, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", WITH_MINIMUM)
def test_float32_minimum_value_and_gradient_are_finite(name):
    f = FUNCTIONS[name]
    for mx, my in f.minima:
        value, gx, gy = _value_and_gradient(f, mx, my, dtype=torch.float32)
        assert math.isfinite(value) and math.isfinite(gx) and math.isfinite(gy)
        assert value == pytest.approx(f.min_value, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize(
    ("name", "x", "y", "expected"),
    [
        ("quadratic", 1.0, -2.0, 5.0),
        ("ravine", 2.0, 1.0, 52.0),
        ("saddle", 1.0, 2.0, -3.0),
        ("monkey_saddle", 1.0, 1.0, -2.0),
        ("rosenbrock", 0.0, 0.0, 1.0),
        ("rosenbrock", -1.0, 1.0, 4.0),
        ("beale", 0.0, 0.0, 14.203125),
        ("himmelblau", 0.0, 0.0, 170.0),
        ("booth", 0.0, 0.0, 74.0),
        ("matyas", 1.0, 1.0, 0.04),
        ("three_hump_camel", 1.0, 1.0, 2.0 - 1.05 + 1.0 / 6.0 + 1.0 + 1.0),
        ("six_hump_camel", 1.0, 0.0, 4.0 - 2.1 + 1.0 / 3.0),
        ("goldstein_price", 0.0, -1.0, 3.0),
        ("goldstein_price", 0.0, 0.0, 600.0),
        ("rastrigin", 1.0, 0.0, 1.0),
        ("rastrigin", 0.5, 0.5, 40.5),
        ("ackley", 1.0, 0.0, -20.0 * math.exp(-0.2 * math.sqrt(0.5)) - math.exp(1.0) + math.e + 20.0),
        ("styblinski_tang", 0.0, 0.0, 0.0),
        ("styblinski_tang", 1.0, 1.0, -10.0),
        ("levi13", 0.0, 0.0, 2.0),
        ("mccormick", 0.0, 0.0, 1.0),
        ("easom", math.pi, 0.0, math.exp(-(math.pi**2))),
    ],
)
def test_spot_values_against_hand_computed_numbers(name, x, y, expected):
    value, _, _ = _value_and_gradient(FUNCTIONS[name], x, y)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_known_minima_counts_and_textbook_locations():
    assert len(FUNCTIONS["himmelblau"].minima) == 4
    assert len(FUNCTIONS["six_hump_camel"].minima) == 2
    assert FUNCTIONS["saddle"].minima == () and FUNCTIONS["monkey_saddle"].minima == ()
    ((sx, sy),) = FUNCTIONS["styblinski_tang"].minima
    assert sx == pytest.approx(-2.903534, abs=1e-6) and sy == pytest.approx(-2.903534, abs=1e-6)
    assert FUNCTIONS["styblinski_tang"].min_value == pytest.approx(-39.16616570377142 * 2, rel=1e-12)
    ((mx, my),) = FUNCTIONS["mccormick"].minima
    assert (mx, my) == pytest.approx((-0.54719, -1.54719), abs=1e-5)
    assert FUNCTIONS["mccormick"].min_value == pytest.approx(-1.9133, abs=1e-4)
    assert FUNCTIONS["six_hump_camel"].min_value == pytest.approx(-1.0316, abs=1e-4)


def test_ravine_is_ill_conditioned():
    hessian = torch.autograd.functional.hessian(
        lambda p: FUNCTIONS["ravine"](p[0], p[1]), torch.zeros(2, dtype=torch.float64)
    )
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert eigenvalues.max() / eigenvalues.min() >= 50


def test_ackley_gradient_at_the_minimum_is_finite_in_both_precisions():
    for dtype in (torch.float64, torch.float32):
        value, gx, gy = _value_and_gradient(FUNCTIONS["ackley"], 0.0, 0.0, dtype=dtype)
        assert abs(value) < 1e-9 and gx == 0.0 and gy == 0.0


# ---- grid -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_grid_shapes_orientation_and_finiteness(name):
    f = FUNCTIONS[name]
    xs, ys, z = f.grid(37)
    assert xs.shape == (37,) and ys.shape == (37,) and z.shape == (37, 37)
    assert z.dtype == np.float64 and np.isfinite(z).all()
    (xmin, xmax), (ymin, ymax) = f.domain
    assert xs[0] == xmin and xs[-1] == xmax and ys[0] == ymin and ys[-1] == ymax
    # Z[j, i] = f(xs[i], ys[j]): rows follow y.
    for i, j in [(0, 0), (3, 30), (36, 5)]:
        expected = f(torch.tensor(xs[i]), torch.tensor(ys[j])).item()
        assert z[j, i] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_grid_default_resolution_is_200():
    xs, ys, z = FUNCTIONS["rosenbrock"].grid()
    assert z.shape == (200, 200) and xs.shape == ys.shape == (200,)


def test_grid_replaces_non_finite_values():
    objective = get_function({"expression": "log(x) + 1/y", "domain": [[-1, 1], [-1, 1]]})
    _, _, z = objective.grid(21)
    assert np.isfinite(z).all()
    finite_part = z[(z != z.max()) & (z != z.min())]
    assert finite_part.size > 0


def test_grid_of_a_function_finite_nowhere_is_flat_zero():
    objective = Objective(
        name="broken", title="", formula="", fn=lambda x, y: x * math.nan, domain=((0.0, 1.0), (0.0, 1.0)),
        minima=(), min_value=None, start=(0.5, 0.5), log_scale=False, description="",
    )  # fmt: skip
    _, _, z = objective.grid(5)
    assert (z == 0).all()


# ---- get_function ---------------------------------------------------------------------------


def test_get_function_by_name():
    assert get_function("rosenbrock") is FUNCTIONS["rosenbrock"]
    assert get_function("  Himmelblau ") is FUNCTIONS["himmelblau"]


def test_unknown_name_lists_the_choices():
    with pytest.raises(LabError) as info:
        get_function("foo")
    err = info.value
    assert err.field == "problem.function"
    assert "unknown function 'foo'" in err.message
    assert "choose one of: " + ", ".join(sorted(FUNCTIONS)) in err.message


def test_custom_field_is_used():
    with pytest.raises(LabError) as info:
        get_function("nope", field="lessons[2].function")
    assert info.value.field == "lessons[2].function"


@pytest.mark.parametrize("spec", [None, 3, 2.5, ["rosenbrock"], True])
def test_wrong_spec_type(spec):
    with pytest.raises(LabError) as info:
        get_function(spec)
    assert info.value.field == "problem.function"
    assert "expression" in info.value.message


def test_expression_objective_defaults():
    objective = get_function({"expression": "(1-x)**2 + 100*(y-x**2)**2"})
    assert objective.name == "expression"
    assert objective.domain == ((-3.0, 3.0), (-3.0, 3.0))
    assert objective.log_scale is False
    assert objective.minima == () and objective.min_value is None
    assert objective.formula == "f(x, y) = (1-x)**2 + 100*(y-x**2)**2"
    (xmin, xmax), (ymin, ymax) = objective.domain
    assert xmin < objective.start[0] < xmax and ymin < objective.start[1] < ymax
    x = torch.linspace(-2, 2, 11, dtype=torch.float64)
    assert_tensors_close(objective(x, x.flip(0)), FUNCTIONS["rosenbrock"](x, x.flip(0)))


def test_expression_objective_with_domain_and_log_scale():
    objective = get_function(
        {"expression": "x**2 + y**2", "domain": [[0, 4], [-1, 2.5]], "log_scale": True}
    )
    assert objective.domain == ((0.0, 4.0), (-1.0, 2.5)) and objective.log_scale is True
    assert np.isfinite(objective.grid(11)[2]).all()


def test_expression_errors_name_the_subfield_and_column():
    with pytest.raises(ExpressionError) as info:
        get_function({"expression": "x + z"}, field="problem.function")
    assert info.value.field == "problem.function.expression"
    assert info.value.column == 5
    assert str(info.value).startswith("problem.function.expression: column 5: unknown name 'z'")


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({}, "problem.function.expression", "is required"),
        ({"expression": 42}, "problem.function.expression", "got int"),
        ({"expression": "x", "domian": [[0, 1], [0, 1]]}, "problem.function.domian", "unknown key"),
        ({"expression": "x", "domain": [[0, 1]]}, "problem.function.domain", "[[xmin, xmax]"),
        ({"expression": "x", "domain": "wide"}, "problem.function.domain", "[[xmin, xmax]"),
        ({"expression": "x", "domain": [[1, 0], [0, 1]]}, "problem.function.domain", "x range"),
        ({"expression": "x", "domain": [[0, 1], [0, 0]]}, "problem.function.domain", "y range"),
        ({"expression": "x", "domain": [[0, "1"], [0, 1]]}, "problem.function.domain", "x range"),
        ({"expression": "x", "domain": [[0, True], [0, 1]]}, "problem.function.domain", "x range"),
        ({"expression": "x", "domain": [[0, math.inf], [0, 1]]}, "problem.function.domain", "x range"),
        ({"expression": "x", "domain": [[0, 1], [0, 1, 2]]}, "problem.function.domain", "y range"),
        ({"expression": "x", "log_scale": "yes"}, "problem.function.log_scale", "true or false"),
    ],
)
def test_bad_expression_mapping(spec, field, fragment):
    with pytest.raises(LabError) as info:
        get_function(spec)
    assert info.value.field == field
    assert fragment in info.value.message


def test_expression_finite_nowhere_is_rejected():
    with pytest.raises(LabError) as info:
        get_function({"expression": "9**9**9**9"})
    assert info.value.field == "problem.function.expression"
    assert "not finite anywhere in the plot domain [[-3, 3], [-3, 3]]" in info.value.message


def test_expression_nan_everywhere_is_rejected():
    with pytest.raises(LabError, match="not finite anywhere"):
        get_function({"expression": "sqrt(-1 - x**2 - y**2)"})


def test_flat_expression_is_allowed_and_differentiable():
    objective = get_function({"expression": "42"})
    x = torch.tensor([0.5, 1.0], requires_grad=True)
    y = torch.tensor([0.0, 2.0], requires_grad=True)
    value = objective(x, y)
    assert value.shape == (2,) and torch.equal(value.detach(), torch.full((2,), 42.0))
    value.sum().backward()
    assert torch.equal(x.grad, torch.zeros(2)) and torch.equal(y.grad, torch.zeros(2))
    assert np.all(objective.grid(4)[2] == 42.0)


def test_expression_start_avoids_points_where_it_is_not_finite():
    # log(x) is NaN for x < 0, so the default start (left of centre) cannot be used.
    objective = get_function({"expression": "log(x) + y**2"})
    sx, sy = objective.start
    px = torch.tensor(sx, dtype=torch.float64, requires_grad=True)
    value = objective(px, torch.tensor(sy, dtype=torch.float64))
    value.backward()
    assert math.isfinite(value.item()) and math.isfinite(px.grad.item())


def test_expression_start_keeps_off_a_singularity_and_says_it_moved():
    """log(x)'s nearest finite grid point was x = 1e-16 (f = −37, gradient 1e16): a step from
    there leaves the domain of f. The start now has finite neighbours all round, and the
    objective says why it is not the usual one; a formula defined there keeps it silently."""
    objective = get_function({"expression": "log(x) + y**2"})
    sx, sy = objective.start
    for dx in (-0.1, 0.0, 0.1):
        for dy in (-0.1, 0.0, 0.1):
            value = objective(torch.tensor(sx + dx, dtype=torch.float64),
                              torch.tensor(sy + dy, dtype=torch.float64))
            assert math.isfinite(value.item()), (sx + dx, sy + dy)
    assert "not finite at the usual start (-1.8, 1.8)" in objective.start_note
    assert f"({sx:.4g}, {sy:.4g})" in objective.start_note
    assert get_function({"expression": "x**2 + y**2"}).start_note == ""


def test_raw_grid_keeps_undefined_values_for_the_map():
    """The heatmap needs to know where f is undefined (NaN) to paint it as such, not as a
    high value: `raw_grid` keeps NaN; `grid` still hands plots finite numbers only."""
    objective = get_function({"expression": "log(x) + y**2"})
    xs, _ys, raw = objective.raw_grid(9)
    undefined = np.isnan(raw)
    assert undefined.any(axis=0).tolist() == (xs < 0).tolist()  # columns of x < 0
    assert np.isfinite(objective.grid(9)[2]).all()
