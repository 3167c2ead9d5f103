"""Two-dimensional test functions for optimizer races: the registry, and typed ones as Objectives.

Longer than 600 lines because the registry holds one entry per test function (its formula in
torch, its textbook formula, domain, minima and start); turning a typed formula into an
Objective is short.

Every function is an :class:`Objective`: a torch-differentiable ``f(x, y)`` plus what the GUI
and the CLI need to show it (title, textbook formula, plotting domain, known global minima, a
default start point, whether to colour the heatmap on a log scale).

The registry :data:`FUNCTIONS` holds the classics (values, domains and minima follow the "Test
functions for optimization" list on Wikipedia and the Virtual Library of Simulation Experiments at
sfu.ca). :func:`get_function` turns a lab file's ``problem.function`` entry, either a registry name
or ``{"expression": "...", "domain": ..., "log_scale": ...}``, into an Objective.

The formula of a typed function is parsed by core/problems/expression.py (a whitelist tokenizer
and parser, never ``eval``; the grammar is there). This module adds what makes it an Objective:
its plot domain, and a check on a small grid that it is finite and differentiable somewhere,
which also picks its start point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.errors import LabError
from core.problems.expression import Expression, parse_expression

__all__ = [
    "DEFAULT_EXPRESSION_DOMAIN",
    "FUNCTIONS",
    "Objective",
    "get_function",
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
    # Set when the usual start of a typed expression was not usable (f or its gradient not
    # finite there) and a nearby point was picked instead: the sentence that says so.
    start_note: str = ""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """f(x, y), elementwise over same-shape tensors; differentiable with autograd."""
        return self.fn(x, y)

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample the function over its domain for a heatmap or a contour plot.

        Returns ``xs`` (R,), ``ys`` (R,) and ``Z`` (R, R) float64 with ``Z[j, i] = f(xs[i], ys[j])``
        (rows are y, as image and contour plots expect). One batched torch call, no autograd.
        Plots must never receive NaN or Inf, so NaN and +Inf become the largest finite value and
        -Inf the smallest; a function finite nowhere gives an all-zero (flat) grid. Where f is
        undefined (NaN: log x for x < 0) is `undefined_cells`.
        """
        xs, ys, z = self.raw_grid(resolution)
        return xs, ys, finite_values(z)

    def raw_grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As `grid`, with f's values as they are: NaN where f is undefined, ±Inf kept."""
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
        return xs, ys, z


def finite_values(z: np.ndarray) -> np.ndarray:
    """``z`` with NaN and +Inf as its largest finite value, -Inf as its smallest (see `grid`)."""
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


# The cliff (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural
# networks", their one-unit example): a recurrent network of one unit, h_t = w·σ(h_(t-1)) + b from
# h_0 = 0.5, unrolled RNN_CLIFF_STEPS steps, its output σ(h_T) fitted to 0.7. Where the map
# h → w·σ(h) + b gains or loses a fixed point (a bifurcation) h_T jumps: the loss has a wall whose
# gradient is huge, beside plateaus where σ saturates and the gradient all but vanishes.
RNN_CLIFF_STEPS = 50
RNN_CLIFF_TARGET = 0.7
# A minimiser (f = 0, gradient 0): w = 4 and b solving σ(h_50) = 0.7 by Newton's method in float64.
_RNN_CLIFF_MIN = (4.0, -1.9526871175489784)


def _rnn_cliff(w: Tensor, b: Tensor) -> Tensor:
    h = torch.full_like(w + b, 0.5)
    for _ in range(RNN_CLIFF_STEPS):
        h = w * torch.sigmoid(h) + b
    return (torch.sigmoid(h) - RNN_CLIFF_TARGET) ** 2


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
            name="rnn_cliff",
            title="RNN cliff (one recurrent unit, 50 steps)",
            formula="f(x, y) = (σ(h₅₀) − 0.7)², h_t = x·σ(h_(t−1)) + y, h₀ = 0.5 (x = w, y = b)",
            fn=_rnn_cliff,
            domain=((0.0, 12.0), (-6.0, 9.0)),
            minima=(_RNN_CLIFF_MIN,),  # one point of a curve of minima (f = 0 along it)
            min_value=0.0,
            start=(4.8, -4.0),
            log_scale=False,
            description="The loss of a one-unit recurrent network unrolled 50 steps, over its "
            "recurrent weight w (x) and bias b (y) (Pascanu, Mikolov & Bengio 2013): a wall where "
            "the gradient explodes beside flat plateaus. A step off the wall throws gradient "
            "descent far away; clipping the gradient's norm keeps the step small.",
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
    preferred = _preferred_start(domain)
    note = ""
    if start != preferred:
        note = (f"f or its gradient is not finite at the usual start ({preferred[0]:g}, "
                f"{preferred[1]:g}): starting at the nearest point where both are, "
                f"({start[0]:.4g}, {start[1]:.4g}).")
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
        start_note=note,
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


def _preferred_start(domain: Domain) -> tuple[float, float]:
    """A typed expression's usual start: up and left of the domain's centre."""
    (xmin, xmax), (ymin, ymax) = domain
    # Rounded so the lab file shows -1.8, not -1.7999999999999998.
    return (round(xmin + 0.2 * (xmax - xmin), 12), round(ymin + 0.8 * (ymax - ymin), 12))


def _check_numerically(expression: Expression, domain: Domain, field: str) -> tuple[float, float]:
    """Refuse formulas that are finite nowhere or cannot be differentiated; return a start point.

    Evaluating on a small grid is what rejects e.g. ``9**9**9**9`` (inf everywhere). The default
    start lies up and left of the centre; if f or its gradient is not finite there, the nearest
    grid point where both are finite is used instead.
    """
    (xmin, xmax), (ymin, ymax) = domain
    preferred = _preferred_start(domain)
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
    # Not on the edge of an undefined region or a singularity (log x at x = 1e-16): a grid
    # point all of whose neighbours are usable too, when there is one.
    n = _VALIDATION_RESOLUTION
    grid = usable[:-1].reshape(n, n)
    inner = torch.zeros_like(grid)
    inner[1:-1, 1:-1] = grid[1:-1, 1:-1]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inner[1:-1, 1:-1] &= grid[1 + dy:n - 1 + dy, 1 + dx:n - 1 + dx]
    candidates = usable.clone()
    if bool(inner.any()):
        candidates[:-1] = inner.flatten()
    distance = (x_points - preferred[0]) ** 2 + (y_points - preferred[1]) ** 2
    nearest = int(torch.argmin(torch.where(candidates, distance, math.inf)))
    return (round(float(x_points[nearest]), 12), round(float(y_points[nearest]), 12))
