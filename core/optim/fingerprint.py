"""An optimizer's fingerprint: measured properties, each beside what theory says.

    fp = fingerprint(torch.optim.Adam, {"lr": 1e-3}, name="adam")
    print(fp.card())           # measured value and theory, property by property
    fp.to_json()               # the same, machine-readable (main.py fingerprint --json)

The properties, in the card's order (`PROPERTIES`):

* ``scale``      invariance to the gradient's scale: the trajectory on c·f against the one on f
                 (c = 10 and 0.1). Sign and Adam-type methods are invariant up to the ε effect
                 (Adam on c·f with ε is exactly Adam on f with ε/c, which the probe checks);
                 gradient descent's step is scaled by c.
* ``rotation``   equivariance to a rotation of the coordinates: the trajectory x'ₜ on f(R·x)
                 from Rᵀ·x₀ against xₜ on f, compared as R·x'ₜ vs xₜ, for a random orthogonal R.
                 Gradient descent and momentum are equivariant; diagonal (per-coordinate) methods
                 such as Adam are not.
* ``stable_lr``  the largest stable learning rate on ½·λ·‖x‖² (λ = 10 unless told), found by
                 bisection on lr: stable means the iterates stay finite, never grow a
                 million-fold, and the largest |x| of the last quarter of `STABILITY_STEPS`
                 steps (`CLOSURE_STABILITY_STEPS` for closure optimizers) is at most that of
                 the quarter before (the envelope does not grow). Theory: 2/λ for gradient
                 descent, (2 + 2β)/λ for heavy-ball momentum β.
* ``update``     update RMS and the effective step size ‖Δθ‖ / (lr·‖g‖) over `RUN_STEPS` steps
                 of the fixed problem.
* ``eps``        sensitivity to ε where the optimizer has one: trajectories with ε × 10 and
                 ε / 10 against the one with ε.

The fixed problem of ``scale``, ``rotation``, ``update`` and ``eps`` is a float64 quadratic
½·Σ hᵢ(xᵢ − x*ᵢ)² in `DIM` coordinates with curvatures hᵢ log-spaced over [0.1, 10]; its x*, x₀
and R come from ``torch.Generator(seed)``: nothing here draws from torch's global generator.
Trajectories are compared by their largest distance at equal steps over the largest distance
the reference run moved from x₀ ("relative difference").

A run on f that diverges at the given hyperparameters fails the probes that compare
trajectories (the stability probe searches its own lr). Every probe is protected, as in
core/optim/checkup.py (whose adapter detection this reuses and whose way of stepping it
mirrors): an optimizer that raises inside one fails that property with the message.

A caller on a worker thread (the Fingerprint window, app/tools/fingerprint_window.py) passes
``stop`` (asked before every run; when it says yes, `Cancelled` is raised) and ``progress``
(told which probe runs and how many runs it made so far). Each `Measurement` also keeps the
series behind its number in ``traces`` (per-step gaps of the c·f runs, the lrs the bisection
tried, the update RMS and effective step of every step), for plots; they are not in the JSON.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from core.optim.check_report import Adapters
from core.optim.checkup import detect_adapters, has_train_eval

MEASURED, FAILED, NOT_APPLICABLE = "measured", "failed", "not applicable"

PROPERTIES: dict[str, str] = {
    "scale": "invariance to gradient scale (f vs c·f)",
    "rotation": "equivariance to a rotation of the coordinates",
    "stable_lr": "largest stable learning rate on a quadratic of curvature λ",
    "update": "update RMS and effective step size",
    "eps": "sensitivity to ε",
}

DIM = 8
RUN_STEPS = 50
SCALES = (10.0, 0.1)
# A relative difference at or below this is "the same trajectory": rounding in float64 is
# ~1e-15; Adam's ε = 1e-8 beside gradients of order 0.1-10 moves it by ~1e-8 (measured below
# 1e-7 on this problem), while a method that is not invariant differs by order 1.
INVARIANCE_TOL = 1e-6
EQUIVARIANCE_TOL = 1e-9
DEFAULT_CURVATURE = 10.0
STABILITY_STEPS = 200
# Closure optimizers evaluate the loss up to ~20 times a step (torch's L-BFGS), which made the
# search take minutes: they get fewer steps, said on the card.
CLOSURE_STABILITY_STEPS = 40
BISECTION_TOL = 1e-5  # relative width of the final bracket
LR_SEARCH_RANGE = (1e-8, 1e6)
SEARCH_FACTOR = 10.0  # the bracket search's step: few runs where nothing diverges (Adam, Lion)


@dataclass(frozen=True)
class Measurement:
    """One property: what was measured, what theory says, and whether the property holds."""

    key: str
    status: str                 # MEASURED, FAILED (it raised or diverged) or NOT_APPLICABLE
    measured: str
    theory: str = ""
    value: float | None = None  # the number behind it (a relative difference, an lr, a ratio)
    holds: bool | None = None   # for yes/no properties: invariant, equivariant
    numbers: Mapping = field(default_factory=dict)
    # The series behind the number, for plots (see the module text); not part of the JSON.
    traces: Mapping = field(default_factory=dict, compare=False, repr=False)

    @property
    def title(self) -> str:
        return PROPERTIES[self.key]

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "status": self.status,
                "holds": self.holds, "value": _finite_or_none(self.value),
                "measured": self.measured, "theory": self.theory,
                "numbers": {k: _finite_or_none(v) for k, v in self.numbers.items()}}


def _finite_or_none(value):
    """JSON has no inf or NaN: those become None (the text says what happened)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Fingerprint:
    """The fingerprint of one optimizer: its measurements in `PROPERTIES` order."""

    name: str
    kwargs: Mapping
    seed: int
    curvature: float
    results: tuple[Measurement, ...]
    seconds: float

    def result(self, key: str) -> Measurement:
        for result in self.results:
            if result.key == key:
                return result
        raise KeyError(key)

    @property
    def failures(self) -> tuple[Measurement, ...]:
        return tuple(r for r in self.results if r.status == FAILED)

    def card(self, yes: str = "✓", no: str = "✗", failed: str = "!", skipped: str = "–") -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        built = f"{self.name}({args})" if args else f"{self.name} (its defaults)"
        lines = [f"Fingerprint of {built}, seed {self.seed}, λ = {self.curvature:g}, "
                 f"{self.seconds:.1f} s"]
        for r in self.results:
            if r.status == FAILED:
                mark = failed
            elif r.status == NOT_APPLICABLE:
                mark = skipped
            else:
                mark = {True: yes, False: no, None: "·"}[r.holds]
            lines.append(f"  {mark} {r.title}")
            lines.append(f"      measured: {r.measured}")
            if r.theory:
                lines.append(f"      theory:   {r.theory}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"optimizer": self.name, "kwargs": {k: _plain(v) for k, v in self.kwargs.items()},
                "seed": self.seed, "curvature": self.curvature,
                "seconds": round(self.seconds, 3),
                "failed": [r.key for r in self.failures],
                "results": [r.to_json() for r in self.results]}

    def to_json_text(self) -> str:
        """What ``main.py fingerprint --json`` prints and the window's Export JSON writes."""
        return json.dumps(self.to_json(), indent=2)


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


# --------------------------------------------------------------------------------------------
# The problem and trajectories on it

Make = Callable[..., torch.optim.Optimizer]  # make(params, **overrides) → an optimizer


class Problem:
    """½·Σ hᵢ(xᵢ − x*ᵢ)² in float64, with x*, x₀ and a random orthogonal R from the seed."""

    def __init__(self, seed: int, dim: int = DIM):
        g = torch.Generator().manual_seed(seed)
        d = torch.float64
        self.h = torch.logspace(-1, 1, dim, dtype=d)
        self.target = torch.randn(dim, generator=g, dtype=d)
        self.start = torch.randn(dim, generator=g, dtype=d)
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=d))
        self.rotation = q * torch.sign(torch.diagonal(r))  # Haar-distributed orthogonal

    def loss(self, x: torch.Tensor, scale: float = 1.0, rotated: bool = False) -> torch.Tensor:
        if rotated:
            x = self.rotation @ x
        return scale * 0.5 * (self.h * (x - self.target) ** 2).sum()


def _shape(adapters: Adapters, dim: int) -> tuple[int, ...]:
    """A vector, or a matrix with the same entries for optimizers that take only matrices."""
    return (dim // 2, 2) if adapters.matrix_only else (dim,)


def trajectory(make: Make, adapters: Adapters, loss_fn, start: torch.Tensor, steps: int,
               stop: Callable[[torch.Tensor], bool] | None = None,
               **overrides) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The iterates x₀ … x_steps (flattened) and the gradient each step saw, stepping as a race
    does (core/optim/checkup.py's `step`: zero_grad, forward, backward, step or step(closure));
    fewer where ``stop(x)`` says so after a step."""
    param = torch.nn.Parameter(start.detach().clone().reshape(_shape(adapters, start.numel())))
    optimizer = make([param], **overrides)
    if adapters.train_eval:
        optimizer.train()

    @torch.enable_grad()
    def closure():
        optimizer.zero_grad()
        loss = loss_fn(param.reshape(-1))
        loss.backward(create_graph=adapters.create_graph)
        return loss

    xs, grads = [param.detach().reshape(-1).clone()], []
    for _ in range(steps):
        closure()
        grads.append(param.grad.detach().reshape(-1).clone())
        if adapters.closure:
            optimizer.step(closure)
        else:
            optimizer.step()
        xs.append(param.detach().reshape(-1).clone())
        if stop is not None and stop(xs[-1]):
            break
    return xs, grads


def relative_difference(xs: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """max over steps of ‖xₜ − refₜ‖ over the largest ‖refₜ − ref₀‖ (how far the reference moved)."""
    moved = max(float((r - reference[0]).norm()) for r in reference)
    gap = max(float((x - r).norm()) for x, r in zip(xs, reference))
    if not math.isfinite(gap) or not math.isfinite(moved):
        return math.inf
    return gap / moved if moved > 0 else (0.0 if gap == 0 else math.inf)


def step_gaps(xs: list[torch.Tensor], reference: list[torch.Tensor]) -> list[float]:
    """‖xₜ − refₜ‖ at every step over the largest ‖refₜ − ref₀‖: the series whose largest value
    is `relative_difference`."""
    moved = max(float((r - reference[0]).norm()) for r in reference)
    return [float((x - r).norm()) / moved if moved > 0 else math.nan
            for x, r in zip(xs, reference)]


def _all_finite(xs) -> bool:
    return all(bool(torch.isfinite(x).all()) for x in xs)


class Cancelled(Exception):
    """``stop`` said yes: the fingerprint was abandoned between two runs."""


class _Diverged(Exception):
    """The reference run itself left the finite numbers: said as the property's failure."""


def _reference(make, adapters, problem, **overrides):
    xs, grads = trajectory(make, adapters, problem.loss, problem.start, RUN_STEPS, **overrides)
    if not _all_finite(xs):
        raise _Diverged(f"the run on f diverged within {RUN_STEPS} steps at these "
                        "hyperparameters; try a smaller lr")
    before, after = (float((x - problem.target).norm()) for x in (xs[0], xs[-1]))
    if after > 1e3 * before:  # comparing runs that diverge would compare their blow-ups
        raise _Diverged(f"the run on f diverges at these hyperparameters: its distance to the "
                        f"minimum grew from {before:.3g} to {after:.3g} in {RUN_STEPS} steps; "
                        "try a smaller lr")
    if max(float((x - xs[0]).norm()) for x in xs) == 0:
        raise _Diverged(f"it did not move in {RUN_STEPS} steps")
    return xs, grads


# --------------------------------------------------------------------------------------------
# The probes: each returns a Measurement


def _group(make, adapters) -> dict:
    """The first param group of the optimizer built on a parameter of the probes' shape."""
    shape = _shape(adapters, DIM)
    return make([torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64))]).param_groups[0]


def _positive_eps(make, adapters) -> float | None:
    """The first param group's ε where it is one positive number (Adafactor keeps a pair)."""
    eps = _group(make, adapters).get("eps")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        return None
    return float(eps)


def _scale(make, adapters, problem) -> Measurement:
    """Invariant: the trajectories agree within `INVARIANCE_TOL`, or, for an optimizer with ε,
    the run on c·f is the run on f with ε/c (within `EQUIVARIANCE_TOL`: rounding), which is
    what "invariant up to the ε effect" means for m/(√v + ε)-type updates."""
    base, _ = _reference(make, adapters, problem)
    eps = _positive_eps(make, adapters)
    diffs, identity, traces = {}, {}, {}
    for c in SCALES:
        xs, _ = trajectory(make, adapters, lambda x, c=c: problem.loss(x, scale=c),
                           problem.start, RUN_STEPS)
        diffs[f"c={c:g}"] = relative_difference(xs, base)
        traces[f"c={c:g}"] = step_gaps(xs, base)
        if eps is not None:
            same, _ = trajectory(make, adapters, problem.loss, problem.start, RUN_STEPS,
                                 eps=eps / c)
            identity[f"c={c:g} vs eps/c"] = relative_difference(xs, same)
    worst = max(diffs.values())
    parts = ", ".join(f"{k}: {v:.2g}" for k, v in diffs.items())
    if worst <= INVARIANCE_TOL:
        verdict = f"invariant (≤ {INVARIANCE_TOL:g})"
    elif identity and max(identity.values()) <= EQUIVARIANCE_TOL:
        verdict = (f"invariant up to the ε effect: on c·f it follows f with ε/c within "
                   f"{max(identity.values()):.1g}")
    else:
        verdict = f"not invariant (invariant means ≤ {INVARIANCE_TOL:g}, or the ε identity)"
    holds = not verdict.startswith("not")
    return Measurement(
        "scale", MEASURED,
        f"{verdict}; relative difference of the {RUN_STEPS}-step trajectory on c·f vs f: {parts}",
        "sign and Adam-type methods are invariant up to the ε effect (Adam on c·f with ε is "
        "Adam on f with ε/c); gradient descent's step is scaled by c",
        worst, holds, {**diffs, **identity}, traces)


def _rotation(make, adapters, problem) -> Measurement:
    base, _ = _reference(make, adapters, problem)
    rotated, _ = trajectory(make, adapters, lambda x: problem.loss(x, rotated=True),
                            problem.rotation.T @ problem.start, RUN_STEPS)
    back = [problem.rotation @ x for x in rotated]
    diff = relative_difference(back, base)
    holds = diff <= EQUIVARIANCE_TOL
    verdict = "equivariant" if holds else "not equivariant"
    return Measurement(
        "rotation", MEASURED,
        f"{verdict}: R·(trajectory on f(R·x)) vs trajectory on f differ by {diff:.2g} "
        f"(relative; equivariant means ≤ {EQUIVARIANCE_TOL:g})",
        "gradient descent and (heavy-ball, Nesterov) momentum are equivariant; diagonal "
        "methods (Adam, RMSprop, Adagrad, sign methods) are not",
        diff, holds, {"relative_difference": diff})


def is_stable(make, adapters, curvature: float, lr: float, steps: int = STABILITY_STEPS) -> bool:
    """Whether ``steps`` steps at ``lr`` on ½·λ·‖x‖² from a fixed x₀ stay finite with an envelope
    that does not grow: max |x| over the last quarter ≤ max |x| over the quarter before.

    (Comparing with x₀ instead would misjudge heavy-ball momentum: just inside its bound, its
    slow mode starts ~19 times larger than x₀ at β = 0.9 and then decays.)"""
    start = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64)

    def loss(x):
        return 0.5 * curvature * (x ** 2).sum()

    # A run that left the finite numbers or grew a million-fold is unstable already: stopping
    # it there keeps the search short (torch's L-BFGS takes 0.1 s a step while it diverges).
    limit = 1e6 * float(start.abs().max())

    def blown_up(x):
        return not bool(torch.isfinite(x).all()) or float(x.abs().max()) > limit

    xs, _ = trajectory(make, adapters, loss, start, steps, stop=blown_up, lr=lr)
    if len(xs) <= steps or not _all_finite(xs):
        return False
    sizes = [float(x.abs().max()) for x in xs]
    quarter = steps // 4
    return max(sizes[-quarter:]) <= max(sizes[-2 * quarter:-quarter])


def largest_stable_lr(make, adapters, curvature: float, first: float,
                      steps: int = STABILITY_STEPS,
                      tried: list | None = None) -> tuple[float, str]:
    """Bisection (on log lr) between a stable and an unstable lr, found by steps of ×10 or ÷10
    from ``first``; returns the stable end and a note, or inf when every lr up to the search's
    top was stable. ``tried`` (a list) receives each (lr, stable) in the order they were run."""
    low_end, high_end = LR_SEARCH_RANGE

    def probe(lr: float) -> bool:
        stable = is_stable(make, adapters, curvature, lr, steps)
        if tried is not None:
            tried.append((lr, stable))
        return stable

    lo = hi = first
    if probe(first):
        while True:
            hi *= SEARCH_FACTOR
            if hi > high_end:
                return math.inf, f"stable at every lr tried up to {high_end:g}"
            if not probe(hi):
                break
            lo = hi
    else:
        while True:
            lo /= SEARCH_FACTOR
            if lo < low_end:
                return 0.0, f"unstable at every lr tried down to {low_end:g}"
            if probe(lo):
                break
            hi = lo
    count = 0
    while hi / lo > 1 + BISECTION_TOL:
        mid = math.sqrt(lo * hi)
        if probe(mid):
            lo = mid
        else:
            hi = mid
        count += 1
    return lo, f"bracket [{lo:.6g}, {hi:.6g}] after {count} bisections"


def stability_theory(group: Mapping, curvature: float) -> tuple[str, float | None]:
    """What theory says for the optimizer whose first param group is ``group``: the
    gradient-descent family's bound (weight decay adds to the curvature), else a sentence."""
    decay = float(group.get("weight_decay", 0.0) or 0.0)
    lam = curvature + decay
    where = f" with λ = {curvature:g} + weight_decay {decay:g}" if decay else ""
    if "momentum" in group and "betas" not in group and "eps" not in group:
        beta = float(group.get("momentum") or 0.0)
        dampening = float(group.get("dampening") or 0.0)
        if group.get("nesterov"):
            bound = (2 + 2 * beta) / ((1 + 2 * beta) * lam)
            return (f"Nesterov momentum β = {beta:g}: (2 + 2β)/((1 + 2β)·λ) = {bound:.4g}{where}",
                    bound)
        if beta == 0:
            return f"gradient descent: 2/λ = {2 / lam:.4g}{where}", 2 / lam
        bound = (2 + 2 * beta) / ((1 - dampening) * lam)
        damp = f", dampening {dampening:g}" if dampening else ""
        return (f"heavy-ball momentum β = {beta:g}{damp}: (2 + 2β)/((1 − dampening)·λ) = "
                f"{bound:.4g}{where}", bound)
    if "betas" in group or "eps" in group:
        return ("no bound in lr·λ alone: an Adam-type step divides by √v̂ ≈ |g|, so stability "
                "is about its preconditioned curvature lr·λ/(√v̂ + ε), and its step is about lr "
                "per coordinate whatever λ is", None)
    return "no closed form known to this probe", None


def _stable_lr(make, adapters, curvature) -> Measurement:
    group = _group(make, adapters)
    lr = group.get("lr")
    if lr is None or not isinstance(lr, (int, float)) or not float(lr) > 0:
        return Measurement("stable_lr", NOT_APPLICABLE, "it has no positive float lr to search")
    theory, bound = stability_theory(group, curvature)
    steps = CLOSURE_STABILITY_STEPS if adapters.closure else STABILITY_STEPS
    tried: list[tuple[float, bool]] = []
    value, note = largest_stable_lr(make, adapters, curvature, float(lr), steps, tried)
    if value == math.inf:
        note += ("; its iterates never grew: a step that moves each coordinate by about lr at "
                 "most oscillates at large lr instead of diverging")
    numbers = {"lr": value, "theory": bound}
    text = f"largest stable lr {value:.5g} on λ = {curvature:g} ({note}, {steps} steps)"
    if bound:
        numbers["relative_error"] = value / bound - 1
        text += f", {100 * (value / bound - 1):+.3f} % from theory"
    return Measurement("stable_lr", MEASURED, text, theory, value, None, numbers,
                       {"tried": tried})


def _update(make, adapters, problem) -> Measurement:
    xs, grads = _reference(make, adapters, problem)
    lr = _group(make, adapters).get("lr")
    deltas = [b - a for a, b in zip(xs, xs[1:])]
    rms = [float(d.pow(2).mean().sqrt()) for d in deltas]
    numbers = {"update_rms_mean": sum(rms) / len(rms), "update_rms_first": rms[0],
               "update_rms_last": rms[-1]}
    text = (f"update RMS {numbers['update_rms_mean']:.3g} on average over {RUN_STEPS} steps "
            f"(first {rms[0]:.3g}, last {rms[-1]:.3g})")
    value = numbers["update_rms_mean"]
    traces = {"update_rms": rms}
    if isinstance(lr, (int, float)) and lr > 0:
        effective = [float(d.norm()) / (lr * float(g.norm())) for d, g in zip(deltas, grads)
                     if float(g.norm()) > 0]
        numbers["update_rms_over_lr"] = value / lr
        numbers["effective_step_mean"] = sum(effective) / len(effective)
        numbers["effective_step_first"] = effective[0]
        numbers["effective_step_last"] = effective[-1]
        text += (f" = {value / lr:.3g}·lr; effective step ‖Δθ‖/(lr·‖g‖): mean "
                 f"{numbers['effective_step_mean']:.3g} (first {effective[0]:.3g}, last "
                 f"{effective[-1]:.3g})")
        value = numbers["effective_step_mean"]
        traces = {"update_rms_over_lr": [r / lr for r in rms], "effective_step": effective}
    return Measurement(
        "update", MEASURED, text,
        "gradient descent: effective step 1; heavy-ball β: grows toward 1/(1 − β) while the "
        "gradient is steady; Adam-type: update RMS ≈ lr (each coordinate moves about lr), so the "
        "effective step is about 1/RMS(g); sign methods: update RMS = lr exactly",
        value, None, numbers, traces)


def _eps(make, adapters, problem) -> Measurement:
    eps = _positive_eps(make, adapters)
    if eps is None:
        return Measurement("eps", NOT_APPLICABLE, "it has no single positive eps")
    base, grads = _reference(make, adapters, problem)
    diffs = {}
    for factor in (10.0, 0.1):
        xs, _ = trajectory(make, adapters, problem.loss, problem.start, RUN_STEPS,
                           eps=eps * factor)
        diffs[f"eps×{factor:g}"] = relative_difference(xs, base)
    smallest_g = min(float(g.abs().min()) for g in grads)
    parts = ", ".join(f"{k}: {v:.2g}" for k, v in diffs.items())
    return Measurement(
        "eps", MEASURED,
        f"eps = {eps:g}; relative difference of the {RUN_STEPS}-step trajectory: {parts}",
        f"ε matters where it is not small beside √v̂ ≈ |g|: here |g| ≥ {smallest_g:.2g}, so "
        f"about ε/|g| ≤ {10 * eps / smallest_g:.2g} per step at ε × 10" if smallest_g > 0 else
        "ε matters where it is not small beside √v̂ ≈ |g|",
        max(diffs.values()), None, diffs)


# --------------------------------------------------------------------------------------------


def fingerprint(cls, kwargs: Mapping | None = None, *, seed: int = 0, name: str = "",
                curvature: float = DEFAULT_CURVATURE,
                build: Callable[[list, dict], torch.optim.Optimizer] | None = None,
                declared: Adapters | None = None,
                stop: Callable[[], bool] | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> Fingerprint:
    """The fingerprint of optimizer class ``cls`` built with ``kwargs`` (see the module's text).

    ``build(params, kwargs)`` constructs it where ``cls(params, **kwargs)`` is not enough
    (`OptimizerInfo.build`); ``declared``: the adapters the catalog applies. Runs ``cls``'s
    code: call it only on code the user trusts (core/optim/user_code.py).

    ``stop()`` is asked before every run (each builds an optimizer): True raises `Cancelled`.
    ``progress(key, index, runs)`` is told the probe running (its index in `PROPERTIES`) and
    how many runs that probe has made, before each run.
    """
    if not (isinstance(curvature, (int, float)) and math.isfinite(curvature) and curvature > 0):
        raise ValueError(f"curvature must be a positive finite number, got {curvature!r}")
    kwargs = dict(kwargs or {})
    running = {"key": "scale", "runs": 0}  # which probe is making the next run

    def make(params, **overrides):
        if stop is not None and stop():
            raise Cancelled("the fingerprint was cancelled")
        if progress is not None:
            progress(running["key"], list(PROPERTIES).index(running["key"]), running["runs"])
        running["runs"] += 1
        merged = {**kwargs, **overrides}
        return build(params, merged) if build is not None else cls(params, **merged)

    clock = time.perf_counter()
    problem = Problem(seed)
    results: dict[str, Measurement] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zoo optimizers warn freely; the card is the verdict
        try:
            adapters = detect_adapters(make, has_train_eval(cls), seed)
        except Cancelled:
            raise
        except Exception:  # noqa: BLE001 - each probe then says how it fails
            adapters = Adapters()
        adapters = adapters.union(declared or Adapters())
        probes = {
            "scale": lambda: _scale(make, adapters, problem),
            "rotation": lambda: _rotation(make, adapters, problem),
            "stable_lr": lambda: _stable_lr(make, adapters, float(curvature)),
            "update": lambda: _update(make, adapters, problem),
            "eps": lambda: _eps(make, adapters, problem),
        }
        for key, probe in probes.items():
            running.update(key=key, runs=0)
            try:
                results[key] = probe()
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - the fingerprint always completes
                results[key] = Measurement(key, FAILED, _message(exc))
    ordered = tuple(results[key] for key in PROPERTIES)
    return Fingerprint(name or getattr(cls, "__name__", str(cls)), kwargs, seed,
                       float(curvature), ordered, time.perf_counter() - clock)


def _message(exc: BaseException) -> str:
    if isinstance(exc, _Diverged):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"raised {type(exc).__name__}: {text}" if text else f"raised {type(exc).__name__}"
