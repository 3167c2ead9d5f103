"""Two-dimensional test functions for optimizer races, and a safe parser for typed ones.

Every function is an :class:`Objective`: a torch-differentiable ``f(x, y)`` plus what the GUI
and the CLI need to show it (title, textbook formula, plotting domain, known global minima, a
default start point, whether to colour the heatmap on a log scale).

The registry :data:`FUNCTIONS` holds the classics (values, domains and minima follow the "Test
functions for optimization" list on Wikipedia and the Virtual Library of Simulation Experiments at
sfu.ca). :func:`get_function` turns a lab file's ``problem.function`` entry, either a registry name
or ``{"expression": "..."}``, into an Objective.

Typed expressions never reach ``eval``: :func:`parse_expression` runs a whitelist tokenizer and a
recursive-descent parser that builds a small AST of numbers, ``x``, ``y``, the constants ``pi`` and
``e``, arithmetic and a fixed set of torch functions. Everything else is refused with the column
where it starts.

Grammar (Python's precedence, ``^`` is accepted as a synonym of ``**``)::

    expression     := additive
    additive       := multiplicative (("+" | "-") multiplicative)*
    multiplicative := unary (("*" | "/") unary)*
    unary          := ("+" | "-") unary | power
    power          := primary (("**" | "^") unary)?      # right-associative, binds tighter than "-"
    primary        := NUMBER | "x" | "y" | "pi" | "e" | "(" expression ")"
                    | FUNCTION "(" expression ("," expression)* ")"
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import torch
from torch import Tensor

from core.errors import LabError

__all__ = [
    "DEFAULT_EXPRESSION_DOMAIN",
    "FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING_DEPTH",
    "Expression",
    "ExpressionError",
    "Objective",
    "get_function",
    "parse_expression",
]

Domain = tuple[tuple[float, float], tuple[float, float]]


# --------------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """A 2-D function to minimise, with everything needed to plot it and race optimizers on it."""

    name: str
    title: str
    formula: str
    fn: Callable[[Tensor, Tensor], Tensor]
    domain: Domain
    minima: tuple[tuple[float, float], ...]
    min_value: float | None
    start: tuple[float, float]
    log_scale: bool
    description: str

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """f(x, y), elementwise over same-shape tensors; differentiable with autograd."""
        return self.fn(x, y)

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample the function over its domain for a heatmap or a contour plot.

        Returns ``xs`` (R,), ``ys`` (R,) and ``Z`` (R, R) float64 with ``Z[j, i] = f(xs[i], ys[j])``
        (rows are y, as image and contour plots expect). One batched torch call, no autograd.
        Plots must never receive NaN or Inf, so NaN and +Inf become the largest finite value and
        -Inf the smallest; a function finite nowhere gives an all-zero (flat) grid.
        """
        if resolution < 2:
            raise ValueError(f"resolution must be at least 2, got {resolution}")
        (xmin, xmax), (ymin, ymax) = self.domain
        xs = np.linspace(xmin, xmax, resolution)
        ys = np.linspace(ymin, ymax, resolution)
        x_mesh, y_mesh = np.meshgrid(xs, ys, indexing="xy")
        with torch.no_grad():
            values = self.fn(torch.from_numpy(x_mesh), torch.from_numpy(y_mesh))
        z = np.asarray(values.detach().cpu().numpy(), dtype=np.float64)
        z = np.broadcast_to(z, x_mesh.shape).copy()
        return xs, ys, _replace_non_finite(z)


def _replace_non_finite(z: np.ndarray) -> np.ndarray:
    finite = np.isfinite(z)
    if finite.all():
        return z
    if not finite.any():
        return np.zeros_like(z)
    largest, smallest = z[finite].max(), z[finite].min()
    # -inf (e.g. log(0)) is a pit, not a peak: colouring it like the largest value would lie.
    return np.where(np.isneginf(z), smallest, np.where(finite, z, largest))


# --------------------------------------------------------------------------------------------
# The registry of textbook functions
# --------------------------------------------------------------------------------------------

# Ackley's sqrt(r²) has an infinite derivative at r = 0, so autograd returns 0·inf = nan exactly at
# the global minimum. Adding a tiny constant under the root keeps the gradient finite (0 there)
# while f(0, 0) = 20·(1 − exp(−0.2·1e-15)) ≈ 4e-15, far below any tolerance, and 1e-30 is still a
# normal float32 number, so the fix also holds in single precision.
_ACKLEY_SQRT_EPSILON = 1e-30


def _quadratic(x: Tensor, y: Tensor) -> Tensor:
    return x**2 + y**2


def _ravine(x: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (x**2 + 100.0 * y**2)


def _saddle(x: Tensor, y: Tensor) -> Tensor:
    return x**2 - y**2


def _monkey_saddle(x: Tensor, y: Tensor) -> Tensor:
    return x**3 - 3.0 * x * y**2


def _rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _beale(x: Tensor, y: Tensor) -> Tensor:
    return (
        (1.5 - x + x * y) ** 2
        + (2.25 - x + x * y**2) ** 2
        + (2.625 - x + x * y**3) ** 2
    )


def _himmelblau(x: Tensor, y: Tensor) -> Tensor:
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


def _booth(x: Tensor, y: Tensor) -> Tensor:
    return (x + 2.0 * y - 7.0) ** 2 + (2.0 * x + y - 5.0) ** 2


def _matyas(x: Tensor, y: Tensor) -> Tensor:
    return 0.26 * (x**2 + y**2) - 0.48 * x * y


def _three_hump_camel(x: Tensor, y: Tensor) -> Tensor:
    return 2.0 * x**2 - 1.05 * x**4 + x**6 / 6.0 + x * y + y**2


def _six_hump_camel(x: Tensor, y: Tensor) -> Tensor:
    return (4.0 - 2.1 * x**2 + x**4 / 3.0) * x**2 + x * y + (-4.0 + 4.0 * y**2) * y**2


def _goldstein_price(x: Tensor, y: Tensor) -> Tensor:
    first = 1.0 + (x + y + 1.0) ** 2 * (
        19.0 - 14.0 * x + 3.0 * x**2 - 14.0 * y + 6.0 * x * y + 3.0 * y**2
    )
    second = 30.0 + (2.0 * x - 3.0 * y) ** 2 * (
        18.0 - 32.0 * x + 12.0 * x**2 + 48.0 * y - 36.0 * x * y + 27.0 * y**2
    )
    return first * second


def _rastrigin(x: Tensor, y: Tensor) -> Tensor:
    two_pi = 2.0 * math.pi
    return 20.0 + (x**2 - 10.0 * torch.cos(two_pi * x)) + (y**2 - 10.0 * torch.cos(two_pi * y))


def _ackley(x: Tensor, y: Tensor) -> Tensor:
    two_pi = 2.0 * math.pi
    radius = torch.sqrt(0.5 * (x**2 + y**2) + _ACKLEY_SQRT_EPSILON)
    return (
        -20.0 * torch.exp(-0.2 * radius)
        - torch.exp(0.5 * (torch.cos(two_pi * x) + torch.cos(two_pi * y)))
        + math.e
        + 20.0
    )


def _styblinski_tang(x: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (x**4 - 16.0 * x**2 + 5.0 * x + y**4 - 16.0 * y**2 + 5.0 * y)


def _levi13(x: Tensor, y: Tensor) -> Tensor:
    return (
        torch.sin(3.0 * math.pi * x) ** 2
        + (x - 1.0) ** 2 * (1.0 + torch.sin(3.0 * math.pi * y) ** 2)
        + (y - 1.0) ** 2 * (1.0 + torch.sin(2.0 * math.pi * y) ** 2)
    )


def _mccormick(x: Tensor, y: Tensor) -> Tensor:
    return torch.sin(x + y) + (x - y) ** 2 - 1.5 * x + 2.5 * y + 1.0


def _easom(x: Tensor, y: Tensor) -> Tensor:
    return -torch.cos(x) * torch.cos(y) * torch.exp(-((x - math.pi) ** 2 + (y - math.pi) ** 2))


# Minimisers that are not round numbers, computed by Newton's method in float64 (gradient < 1e-13),
# so tests can ask for a gradient of ~0 there rather than the 6 digits most tables print.
_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644034),
)
_SIX_HUMP_X, _SIX_HUMP_Y = 0.08984201310031806, -0.7126564030207396
_SIX_HUMP_MIN = -1.0316284534898774
# Root of 4·t³ − 32·t + 5 = 0 near −2.9035. The minimum is −39.16616570377142 per dimension;
# sfu.ca prints −39.16599·d (= −78.33198 for d = 2), which is off in the 4th decimal.
_STYBLINSKI_TANG_ARGMIN = -2.9035340277711774
_STYBLINSKI_TANG_MIN = -78.33233140754282
# McCormick's minimiser solves cos(x + y) = −1/2 with x − y = −1: x = 1/2 − π/3, y = x − 1,
# where f = −√3/2 − π/3 (textbook: −1.9133 at (−0.54719, −1.54719)).
_MCCORMICK_X = 0.5 - math.pi / 3.0
_MCCORMICK_MIN = -math.sqrt(3.0) / 2.0 - math.pi / 3.0


FUNCTIONS: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        Objective(
            name="quadratic",
            title="Quadratic bowl",
            formula="f(x, y) = x² + y²",
            fn=_quadratic,
            domain=((-3.0, 3.0), (-3.0, 3.0)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            start=(-2.5, 2.0),
            log_scale=False,
            description="A perfectly round bowl: every optimizer should walk straight to the "
            "centre, a baseline to check learning rates against.",
        ),
        Objective(
            name="ravine",
            title="Ravine (ill-conditioned quadratic)",
            formula="f(x, y) = ½·(x² + 100·y²)",
            fn=_ravine,
            # Hessian diag(1, 100): condition number 100, the y-axis is 10× narrower than x.
            domain=((-3.0, 3.0), (-1.5, 1.5)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            start=(-2.5, 1.0),
            log_scale=False,
            description="A quadratic with condition number 100: plain gradient descent zig-zags "
            "across the steep walls and crawls along the flat floor; momentum and Adam do not.",
        ),
        Objective(
            name="saddle",
            title="Saddle",
            formula="f(x, y) = x² − y²",
            fn=_saddle,
            domain=((-2.0, 2.0), (-2.0, 2.0)),
            minima=(),
            min_value=None,
            # Slightly off the ridge y = 0, so the escape from the saddle point is visible.
            start=(-1.8, 0.05),
            log_scale=False,
            description="A saddle point at the origin and no minimum: shows which optimizers "
            "stall near the flat centre and how fast each escapes downhill along y.",
        ),
        Objective(
            name="monkey_saddle",
            title="Monkey saddle",
            formula="f(x, y) = x³ − 3·x·y²",
            fn=_monkey_saddle,
            domain=((-2.0, 2.0), (-2.0, 2.0)),
            minima=(),
            min_value=None,
            start=(1.5, 0.1),
            log_scale=False,
            description="A degenerate saddle with three valleys and zero curvature at the origin: "
            "gradients vanish there, so second-order tricks do not help; unbounded below.",
        ),
        Objective(
            name="rosenbrock",
            title="Rosenbrock",
            formula="f(x, y) = (1 − x)² + 100·(y − x²)²",
            fn=_rosenbrock,
            domain=((-2.0, 2.0), (-1.0, 3.0)),
            minima=((1.0, 1.0),),
            min_value=0.0,
            start=(-1.5, 2.0),
            log_scale=True,
            description="A long, curved, nearly flat banana valley: easy to find, hard to follow "
            "to the minimum at (1, 1).",
        ),
        Objective(
            name="beale",
            title="Beale",
            formula="f(x, y) = (1.5 − x + x·y)² + (2.25 − x + x·y²)² + (2.625 − x + x·y³)²",
            fn=_beale,
            domain=((-4.5, 4.5), (-4.5, 4.5)),
            minima=((3.0, 0.5),),
            min_value=0.0,
            start=(1.0, 1.5),
            log_scale=True,
            description="Flat plateaus next to steep ridges along the axes: step sizes that suit "
            "one region explode or stall in the other.",
        ),
        Objective(
            name="himmelblau",
            title="Himmelblau",
            formula="f(x, y) = (x² + y − 11)² + (x + y² − 7)²",
            fn=_himmelblau,
            domain=((-5.0, 5.0), (-5.0, 5.0)),
            minima=_HIMMELBLAU_MINIMA,
            min_value=0.0,
            # Next to the local maximum at (−0.27, −0.92): optimizers pick different minima.
            start=(0.0, 0.0),
            log_scale=True,
            description="Four equally good minima around a central hill: which one an optimizer "
            "reaches depends on its path, not only on where it starts.",
        ),
        Objective(
            name="booth",
            title="Booth",
            formula="f(x, y) = (x + 2·y − 7)² + (2·x + y − 5)²",
            fn=_booth,
            domain=((-10.0, 10.0), (-10.0, 10.0)),
            minima=((1.0, 3.0),),
            min_value=0.0,
            start=(-8.0, 8.0),
            log_scale=False,
            description="A tilted elliptic bowl (condition number 9): a gentle test of how "
            "optimizers cope with correlated coordinates.",
        ),
        Objective(
            name="matyas",
            title="Matyas",
            formula="f(x, y) = 0.26·(x² + y²) − 0.48·x·y",
            fn=_matyas,
            domain=((-10.0, 10.0), (-10.0, 10.0)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            start=(-8.0, -4.0),
            log_scale=False,
            description="A diagonal valley with condition number 25 and a very flat floor: "
            "progress along the diagonal is slow without momentum.",
        ),
        Objective(
            name="three_hump_camel",
            title="Three-hump camel",
            formula="f(x, y) = 2·x² − 1.05·x⁴ + x⁶/6 + x·y + y²",
            fn=_three_hump_camel,
            # Textbook search box is [−5, 5]²; [−2, 2]² shows the three humps (as sfu.ca plots it).
            domain=((-2.0, 2.0), (-2.0, 2.0)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            start=(-1.5, -1.5),
            log_scale=False,
            description="One global and two local minima: from a corner, slow or overshooting "
            "optimizers settle in a side hump while others reach the centre.",
        ),
        Objective(
            name="six_hump_camel",
            title="Six-hump camel",
            formula="f(x, y) = (4 − 2.1·x² + x⁴/3)·x² + x·y + (−4 + 4·y²)·y²",
            fn=_six_hump_camel,
            # Textbook search box is x ∈ [−3, 3], y ∈ [−2, 2]; this is the usual plotting window.
            domain=((-2.0, 2.0), (-1.0, 1.0)),
            minima=((_SIX_HUMP_X, _SIX_HUMP_Y), (-_SIX_HUMP_X, -_SIX_HUMP_Y)),
            min_value=_SIX_HUMP_MIN,
            start=(-1.0, 0.5),
            log_scale=False,
            description="Six local minima, two of them global and symmetric: a small landscape "
            "with many traps for the learning rate to get caught in.",
        ),
        Objective(
            name="goldstein_price",
            title="Goldstein–Price",
            formula="f(x, y) = [1 + (x + y + 1)²·(19 − 14·x + 3·x² − 14·y + 6·x·y + 3·y²)]"
            " · [30 + (2·x − 3·y)²·(18 − 32·x + 12·x² + 48·y − 36·x·y + 27·y²)]",
            fn=_goldstein_price,
            domain=((-2.0, 2.0), (-2.0, 2.0)),
            minima=((0.0, -1.0),),
            min_value=3.0,
            # Between the basins of the global minimum and the local ones at 30 and 840.
            start=(0.5, 0.5),
            log_scale=True,
            description="Values spanning six orders of magnitude and several local minima: "
            "raw gradient steps overshoot wildly, adaptive methods cope better.",
        ),
        Objective(
            name="rastrigin",
            title="Rastrigin",
            formula="f(x, y) = 20 + (x² − 10·cos 2πx) + (y² − 10·cos 2πy)",
            fn=_rastrigin,
            domain=((-5.12, 5.12), (-5.12, 5.12)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            start=(-3.3, 2.7),
            log_scale=False,
            description="A bowl covered in a regular egg-crate of local minima: gradient methods "
            "get stuck in the nearest dimple unless the step size or momentum jumps them out.",
        ),
        Objective(
            name="ackley",
            title="Ackley",
            formula="f(x, y) = −20·exp(−0.2·√(0.5·(x² + y²)))"
            " − exp(0.5·(cos 2πx + cos 2πy)) + e + 20",
            fn=_ackley,
            domain=((-5.0, 5.0), (-5.0, 5.0)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            start=(-3.4, 3.1),
            log_scale=False,
            description="A nearly flat, bumpy plain with one deep funnel in the middle: local "
            "gradients say little about where the global minimum is.",
        ),
        Objective(
            name="styblinski_tang",
            title="Styblinski–Tang",
            formula="f(x, y) = ½·(x⁴ − 16·x² + 5·x + y⁴ − 16·y² + 5·y)",
            fn=_styblinski_tang,
            domain=((-5.0, 5.0), (-5.0, 5.0)),
            minima=((_STYBLINSKI_TANG_ARGMIN, _STYBLINSKI_TANG_ARGMIN),),
            min_value=_STYBLINSKI_TANG_MIN,
            # Between basins: x rolls to the global side, y to the slightly shallower local one.
            start=(0.0, 4.5),
            log_scale=False,
            description="Four basins of nearly equal depth, only one global: optimizers settle "
            "in whichever basin their first steps point to.",
        ),
        Objective(
            name="levi13",
            title="Lévi N.13",
            formula="f(x, y) = sin²(3πx) + (x − 1)²·(1 + sin²(3πy)) + (y − 1)²·(1 + sin²(2πy))",
            fn=_levi13,
            domain=((-10.0, 10.0), (-10.0, 10.0)),
            minima=((1.0, 1.0),),
            min_value=0.0,
            start=(-4.0, 5.0),
            log_scale=True,
            description="A smooth bowl with sine ripples on top: many shallow local minima "
            "between the start and the global minimum at (1, 1).",
        ),
        Objective(
            name="mccormick",
            title="McCormick",
            formula="f(x, y) = sin(x + y) + (x − y)² − 1.5·x + 2.5·y + 1",
            fn=_mccormick,
            domain=((-1.5, 4.0), (-3.0, 4.0)),
            minima=((_MCCORMICK_X, _MCCORMICK_X - 1.0),),
            min_value=_MCCORMICK_MIN,
            start=(3.3, -1.25),
            log_scale=False,
            description="A tilted valley bent by a sine, with a shallower local minimum near "
            "(2.59, 1.59): a mild landscape where the path taken decides the basin.",
        ),
        Objective(
            name="easom",
            title="Easom",
            formula="f(x, y) = −cos x · cos y · exp(−((x − π)² + (y − π)²))",
            fn=_easom,
            # Textbook search box is [−100, 100]², where the hole is a single pixel; this window
            # still shows the flat plain around it.
            domain=((-2.0, 8.0), (-2.0, 8.0)),
            minima=((math.pi, math.pi),),
            min_value=-1.0,
            start=(4.5, 1.8),
            log_scale=False,
            description="A flat plain with one narrow hole at (π, π): gradients are almost zero "
            "far from it, so plain SGD barely moves while sign-based methods like Adam find it.",
        ),
    )
}


# --------------------------------------------------------------------------------------------
# Typed expressions: errors, tokens, AST, parser
# --------------------------------------------------------------------------------------------

MAX_EXPRESSION_LENGTH = 500
# Each "(", function call, unary sign and "**" costs one level. The parser recurses ~6 Python frames
# per level, so 40 levels stay far below Python's recursion limit even deep inside a GUI call stack.
MAX_NESTING_DEPTH = 40

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_VARIABLES = ("x", "y")


def _softplus(t: Tensor) -> Tensor:
    return torch.nn.functional.softplus(t)


# name -> (arity, torch implementation). A fixed whitelist: nothing else can be called.
_FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
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

_NAMES_HELP = "use x, y, pi, e or a function: " + ", ".join(sorted(_FUNCTIONS))


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
    function: str  # a key of _FUNCTIONS
    arguments: tuple[Node, ...]

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        implementation = _FUNCTIONS[self.function][1]
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
        if name not in _FUNCTIONS:
            raise ExpressionError(token.column, f"unknown name '{name}' ({_NAMES_HELP})")
        opening = self._peek()
        if not self._is_op(opening, "("):
            raise ExpressionError(opening.column, f"expected '(' after function '{name}'")
        self._advance()
        arguments = self._arguments(opening)
        arity = _FUNCTIONS[name][0]
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


# --------------------------------------------------------------------------------------------
# get_function: lab-file spec -> Objective
# --------------------------------------------------------------------------------------------

DEFAULT_EXPRESSION_DOMAIN: Domain = ((-3.0, 3.0), (-3.0, 3.0))
_EXPRESSION_KEYS = ("expression", "domain", "log_scale")
# Points per axis when a typed expression is checked for finiteness and gradients.
_VALIDATION_RESOLUTION = 21


def get_function(spec: str | Mapping, field: str = "problem.function") -> Objective:
    """Turn a lab file's function entry (name or ``{"expression": ...}``) into an Objective.

    Raises :class:`LabError` naming ``field`` (or a sub-field such as ``field + ".domain"``).
    """
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in FUNCTIONS:
            return FUNCTIONS[key]
        choices = ", ".join(sorted(FUNCTIONS))
        raise LabError(field, f"unknown function '{spec}'; choose one of: {choices}")
    if isinstance(spec, Mapping):
        return _expression_objective(spec, field)
    raise LabError(
        field,
        f"must be a function name (one of: {', '.join(sorted(FUNCTIONS))}) or "
        f'{{"expression": "..."}}, got {type(spec).__name__}',
    )


def _expression_objective(spec: Mapping, field: str) -> Objective:
    for key in spec:
        if key not in _EXPRESSION_KEYS:
            raise LabError(
                f"{field}.{key}", f"unknown key; allowed: {', '.join(_EXPRESSION_KEYS)}"
            )
    if "expression" not in spec:
        raise LabError(
            f"{field}.expression",
            'is required: a formula in x and y, e.g. "(1-x)**2 + 100*(y-x**2)**2"',
        )
    expression = parse_expression(spec["expression"], f"{field}.expression")
    domain = _parse_domain(spec.get("domain", DEFAULT_EXPRESSION_DOMAIN), f"{field}.domain")
    log_scale = spec.get("log_scale", False)
    if not isinstance(log_scale, bool):
        raise LabError(f"{field}.log_scale", f"must be true or false, got {log_scale!r}")
    start = _check_numerically(expression, domain, f"{field}.expression")
    return Objective(
        name="expression",
        title="Expression",
        formula=f"f(x, y) = {expression.text.strip()}",
        fn=expression,
        domain=domain,
        minima=(),
        min_value=None,
        start=start,
        log_scale=log_scale,
        description="A function you typed; its minima are unknown to the lab.",
    )


def _parse_domain(value: object, field: str) -> Domain:
    shape_help = "must be [[xmin, xmax], [ymin, ymax]] with finite numbers and min < max"
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise LabError(field, f"{shape_help}, got {value!r}")
    axes = []
    for axis_name, axis in zip("xy", value):
        if not isinstance(axis, (list, tuple)) or len(axis) != 2:
            raise LabError(field, f"{shape_help}; the {axis_name} range is {axis!r}")
        low, high = axis
        for bound in (low, high):
            # bool is an int subclass; "true" as a bound is a mistake, not 1.
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise LabError(field, f"{shape_help}; the {axis_name} range is {list(axis)!r}")
            if not math.isfinite(bound):
                raise LabError(field, f"{shape_help}; the {axis_name} range is {list(axis)!r}")
        if not low < high:
            raise LabError(field, f"{shape_help}; the {axis_name} range is {list(axis)!r}")
        axes.append((float(low), float(high)))
    return (axes[0], axes[1])


def _check_numerically(expression: Expression, domain: Domain, field: str) -> tuple[float, float]:
    """Refuse formulas that are finite nowhere or cannot be differentiated; return a start point.

    Evaluating on a small grid is what rejects e.g. ``9**9**9**9`` (inf everywhere). The default
    start lies up and left of the centre; if f or its gradient is not finite there, the nearest
    grid point where both are finite is used instead.
    """
    (xmin, xmax), (ymin, ymax) = domain
    # Rounded so the lab file shows -1.8, not -1.7999999999999998.
    preferred = (round(xmin + 0.2 * (xmax - xmin), 12), round(ymin + 0.8 * (ymax - ymin), 12))
    xs = torch.linspace(xmin, xmax, _VALIDATION_RESOLUTION, dtype=torch.float64)
    ys = torch.linspace(ymin, ymax, _VALIDATION_RESOLUTION, dtype=torch.float64)
    y_mesh, x_mesh = torch.meshgrid(ys, xs, indexing="ij")
    # One batch: the grid points, then the preferred start as the last point.
    x_points = torch.cat([x_mesh.flatten(), torch.tensor([preferred[0]], dtype=torch.float64)])
    y_points = torch.cat([y_mesh.flatten(), torch.tensor([preferred[1]], dtype=torch.float64)])
    x_points.requires_grad_(True)
    y_points.requires_grad_(True)
    domain_text = f"[[{xmin:g}, {xmax:g}], [{ymin:g}, {ymax:g}]]"

    try:
        values = expression(x_points, y_points)
        finite = torch.isfinite(values)
        if bool(finite.any()):
            # Only finite points feed the sum, so one NaN corner cannot poison the others.
            values[finite].sum().backward()
    except (RuntimeError, ValueError, ArithmeticError) as exc:
        raise LabError(field, f"the expression cannot be differentiated: {exc}") from None
    if not bool(finite.any()):
        raise LabError(
            field, f"the expression is not finite anywhere in the plot domain {domain_text}"
        )
    usable = finite & torch.isfinite(x_points.grad) & torch.isfinite(y_points.grad)
    if not bool(usable.any()):
        raise LabError(
            field,
            f"the expression has no finite gradient anywhere in the plot domain {domain_text}",
        )
    if bool(usable[-1]):
        return preferred
    x_points, y_points = x_points.detach(), y_points.detach()
    distance = (x_points - preferred[0]) ** 2 + (y_points - preferred[1]) ** 2
    nearest = int(torch.argmin(torch.where(usable, distance, math.inf)))
    return (float(x_points[nearest]), float(y_points[nearest]))
