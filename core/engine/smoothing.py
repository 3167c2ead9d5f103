"""Smoothing of training curves: TensorBoard's debiased exponential moving average.

Every smoothed curve of the app (the network view's loss curves and their mean ± std bands,
app/network/run_curves.py) goes through this module, so they all show the same thing as
TensorBoard, which users compare with. For a weight w in [0, 1) and the finite points x₁, x₂, …
of a series:

    last₀ = 0,   lastₙ = w·lastₙ₋₁ + (1 − w)·xₙ,   shownₙ = lastₙ / (1 − wⁿ)

The division undoes the pull towards the starting 0: shownₙ is a weighted mean of x₁ … xₙ with
weights ∝ wⁿ⁻ᵏ that sum to one, so the first point shows x₁ itself and no point is dragged
towards the first value. (An average *started at* x₁ instead gives x₁ the weight wⁿ⁻¹ at step n:
with w = 0.99 still 37 % at step 100, which bends the start of a curve towards step 0's loss.)

What TensorBoard does besides the formula (its ``resmoothDataset`` in
tensorboard/components/vz_line_chart2/line-chart.ts), and what this module does:

* **Non-finite points** (NaN, ±inf: a diverged run) keep their raw value and neither update the
  average nor count in n. The views drop them from what they draw, so a NaN makes a gap in the
  raw line only, and the smoothed line goes on from the finite points.
* **A constant series** is shown as its raw values, so rounding (c·(1 − wⁿ) / (1 − wⁿ) is c only
  to a few ulps) cannot draw a flat line as noise on an auto-ranged axis. TensorBoard decides this
  for the whole series at once; a series that streams in cannot know its future, so here it is
  decided per prefix: a point shows its raw value while every finite value up to it equals the
  first one. The difference from TensorBoard is at the rounding level only.

`DebiasedEma` keeps the state (last, n and the constant-prefix check) so a view that gets a few new
points per frame only processes those: ``extend`` of the new points gives exactly what
`debiased_ema` of the whole series gives, and ``push`` does one point (for loops that smooth as
they go, such as an LR range test). The recurrence is solved in numpy blocks (`_linear_scan`)
rather than with scipy.signal.lfilter: importing scipy.signal takes about a second, which the app
would pay at start-up.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from core.errors import LabError

# The network view's default: 0.9, not TensorBoard's 0.6. TensorBoard usually shows scalars
# logged every so many steps; the network view draws every mini-batch, a few per pixel. Looked at
# on the moons race (resources/labs/moons_race.lab.json, batches of 64 and of 16, the real window)
# at 0, 0.3, 0.6, 0.8, 0.9 and 0.95: at 0.6 the average remembers ~1/(1 − w) = 2.5 points, under a
# pixel, and Momentum, RMSprop and Adam stay one band of noise; at 0.9 (~10 points, 1 % of the
# race) each run is one line that can be told from the others, and the fast early fall is not
# visibly late; 0.95 adds little. The weight is shown beside the slider and in the legend, so a
# user comparing with TensorBoard sets 0.6 there.
DEFAULT_SMOOTHING = 0.9

BLOCK = 64  # points per block of `_linear_scan`: one 64×64 matrix product per block


def check_weight(weight: float, field: str = "smoothing") -> float:
    """``weight`` as a float in [0, 1), or a `LabError` naming ``field`` and the range."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise LabError(field, f"must be a number in [0, 1), got {weight!r}") from None
    if isinstance(weight, bool) or not 0.0 <= value < 1.0:
        raise LabError(field, f"must be in [0, 1) (0 = off), got {weight!r}")
    return value


@functools.lru_cache(maxsize=64)
def _decay_matrix(factor: float, size: int) -> np.ndarray:
    """Upper-triangular M with M[i, j] = factor**(j - i): one block of a linear recurrence."""
    k = np.arange(size)
    matrix = np.triu(factor ** np.clip(k[None, :] - k[:, None], 0, None))
    matrix.flags.writeable = False
    return matrix


def _linear_scan(u: np.ndarray, factor: float) -> np.ndarray:
    """y[t] = factor·y[t-1] + u[t] with y[-1] = 0, without a Python loop over the points.

    Blocks of `BLOCK` points are solved with one matrix product; the state carried from block to
    block is the same recurrence one level up (factor**BLOCK), solved recursively.
    """
    n = len(u)
    if n <= BLOCK:
        return u @ _decay_matrix(factor, n)
    blocks = -(-n // BLOCK)
    padded = np.zeros(blocks * BLOCK)
    padded[:n] = u
    local = padded.reshape(blocks, BLOCK) @ _decay_matrix(factor, BLOCK)
    carried = _linear_scan(local[:, -1].copy(), factor**BLOCK)
    local[1:] += carried[:-1, None] * factor ** np.arange(1, BLOCK + 1)[None, :]
    return local.ravel()[:n]


@functools.lru_cache(maxsize=64)
def _horizon(weight: float) -> int:
    """The n from which weight**n < 2**-60, so that 1 - weight**n is exactly 1.0."""
    return math.ceil(60 * math.log(2) / -math.log(weight)) + 1


@dataclass
class DebiasedEma:
    """The running state of one series' debiased EMA (see the module docstring).

    ``last`` is the biased average (0 before any point), ``count`` the finite points taken in (the
    n of the debiasing), ``first`` the first finite value and ``constant`` whether every finite
    value so far equalled it.
    """

    weight: float
    last: float = 0.0
    count: int = 0
    first: float = math.nan
    constant: bool = True

    def __post_init__(self) -> None:
        self.weight = check_weight(self.weight)

    def extend(self, values) -> np.ndarray:
        """The shown values of the points that follow those already taken in (a new array)."""
        shown = np.array(values, dtype=np.float64, copy=True, ndmin=1)
        if shown.ndim != 1:
            raise LabError("values", f"must be a 1-D series, got shape {shown.shape}")
        finite = np.isfinite(shown)
        every = bool(finite.all())
        x = shown if every else shown[finite]
        m = len(x)
        if m == 0:
            return shown
        w = self.weight
        if w == 0.0:  # no smoothing: the raw values, exactly
            self.last, self.count = float(x[-1]), self.count + m
            return shown
        u = (1.0 - w) * x
        u[0] += w * self.last
        last = _linear_scan(u, w)
        # Once wⁿ < 2⁻⁶⁰, 1 − wⁿ rounds to 1: only the points before that are divided (the power
        # would otherwise cost more than the recurrence on a long series).
        k = min(m, max(0, _horizon(w) - self.count))
        smoothed = last.copy()
        if k:
            n = np.arange(self.count + 1, self.count + k + 1, dtype=np.float64)
            smoothed[:k] = last[:k] / (1.0 - np.power(w, n))
        if self.constant:
            if math.isnan(self.first):
                self.first = float(x[0])
            differs = np.flatnonzero(x != self.first)
            raw = len(x) if not len(differs) else int(differs[0])
            smoothed[:raw] = x[:raw]
            self.constant = raw == m
        self.last, self.count = float(last[-1]), self.count + m
        if every:
            return smoothed
        shown[finite] = smoothed
        return shown

    def push(self, value: float) -> float:
        """The shown value of one more point (plain floats: for loops that smooth as they go)."""
        value = float(value)
        if not math.isfinite(value):
            return value
        w = self.weight
        self.last = w * self.last + (1.0 - w) * value
        self.count += 1
        if self.constant:
            if math.isnan(self.first):
                self.first = value
            if value == self.first:
                return value
            self.constant = False
        return self.last / (1.0 - w**self.count)


def debiased_ema(values, weight: float) -> np.ndarray:
    """TensorBoard's debiased EMA of a whole series (non-finite points kept raw), as a new array.

    ``weight`` in [0, 1); 0 returns the values unchanged."""
    return DebiasedEma(weight).extend(values)
