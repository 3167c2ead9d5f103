"""Check an optimizer before it races: a report card of the properties a race relies on.

    report = check_optimizer(Lion, {"lr": 1e-3}, seed=0, name="pytorch_optimizer:Lion")
    print(report.card())            # ✓ / ✗ per property with its evidence
    report.to_json()                # the same, machine-readable (main.py check-optimizer --json)

Each property is probed on small float64 problems (the dtype of function races,
core/engine/function_race.py) built here (a separable convex quadratic
½·Σ h⊙(W − W*)² over matrices, known minimum 0), whose data and gradient noise come from a
`torch.Generator` seeded with ``seed``: nothing here draws from or seeds torch's global random
generator (it only reads its state, to say where a non-deterministic optimizer drew from). The
parameters are matrices so that matrix optimizers (Muon-type) can be checked too.

The properties, in the card's order (`PROPERTIES`):

* ``decreases``      the quadratic's loss falls over 50 noise-free steps (at the evaluation point
                     for ``train()``/``eval()`` optimizers)
* ``deterministic``  two runs of 20 noisy steps with the same seed give bit-identical parameters
* ``state_dict``     10 steps, ``copy.deepcopy(state_dict())`` (what branching a run does, see
                     core/lab/branches.py), a fresh optimizer loads it, 10 more steps: bit-identical
                     to 20 straight steps
* ``grad_none``      a parameter that gets no gradient (``grad`` stays None) is left unchanged
* ``frozen``         a parameter with ``requires_grad=False`` that the loss uses is left unchanged
* ``param_groups``   two groups on identical sub-problems, the second with a tenth of the lr: at
                     the first step that moves anything (within 20) both move, the second less
                     (one that ignores a group's lr moves them alike)
* ``zero_gradient``  3 steps on an exactly zero gradient, then 3 ordinary ones, stay finite
* ``adapters``       what it needs beyond ``loss.backward(); step()``, found by trying (`detect_adapters`)
* ``step_time``      its step time over torch.optim.Adam's on the same float32 parameters (best of
                     a few interleaved repeats; evidence only, never a failure for being slow)

Every probe is protected: an optimizer that raises inside one fails that property with the
exception's message, and the report always completes. A probe cannot stop an optimizer that hangs.
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch

from core.optim.check_report import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    PROPERTIES,
    Adapters,
    CheckReport,
    PropertyResult,
)

DECREASE_STEPS = 50
RUN_STEPS = 20  # the determinism and state_dict runs (saved and reloaded halfway)
SMALL_STEPS = 5
SHAPES = ((3, 4), (4, 2))
NOISE = 0.1  # scale of the seeded gradient noise of the determinism and state_dict runs
# The timing's parameters: the size of this app's networks (a 2-16-16-2 MLP has 370 weights),
# where a step is mostly per-call overhead. Its budget: TIMING_STEPS steps per repeat, fewer
# when one step is slow (pytorch-optimizer's Kron took 0.13 s a step on a 32x32 matrix and 72 s
# on 128x128 here), so that the whole card stays a matter of seconds.
TIMING_SHAPES = ((32, 32), (32, 16))
TIMING_STEPS = 10
TIMING_BUDGET_S = 1.0


# --------------------------------------------------------------------------------------------
# The problem and one step of it


class Quadratic:
    """½·Σ h⊙(W − W*)² (+ seeded noise·W) over matrices of ``shapes``; its minimum is 0 at W*.

    Curvatures h ∈ [0.5, 2], targets W* and the start come from ``torch.Generator(seed)``; so does
    the noise of each loss evaluation, so a run's gradients are a function of the seed alone.
    """

    def __init__(self, seed: int, shapes=SHAPES, noise: float = 0.0,
                 dtype: torch.dtype = torch.float64):
        self.generator = torch.Generator().manual_seed(seed)
        g, self.noise, self.dtype = self.generator, noise, dtype
        self.shapes = tuple(tuple(s) for s in shapes)
        self.curvature = [0.5 + 1.5 * torch.rand(s, generator=g, dtype=dtype) for s in shapes]
        self.target = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
        self.start = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]

    def params(self) -> list[torch.nn.Parameter]:
        return [torch.nn.Parameter(s.clone()) for s in self.start]

    def loss(self, params, scale: float = 1.0) -> torch.Tensor:
        total = torch.zeros((), dtype=self.dtype)
        for p, h, t in zip(params, self.curvature, self.target):
            total = total + 0.5 * (h * (p - t) ** 2).sum()
            if self.noise:
                eps = torch.randn(p.shape, generator=self.generator, dtype=self.dtype)
                total = total + self.noise * (eps * p).sum()
        return total * scale


Make = Callable[[list], torch.optim.Optimizer]  # parameters (or param groups) → an optimizer


def build(make: Make, params, adapters: Adapters) -> torch.optim.Optimizer:
    optimizer = make(params)
    if adapters.train_eval:
        optimizer.train()
    return optimizer


def step(optimizer, loss_fn: Callable[[], torch.Tensor], adapters: Adapters) -> None:
    """One training step as a trainer takes it (core/optim/probe.py's loop): zero the gradients,
    forward, backward, then ``step()``, or ``step(closure)`` with the gradients already computed
    (SAM's documentation asks for that; L-BFGS re-evaluates anyway)."""

    @torch.enable_grad()  # some steps call the closure under no_grad, as torch's L-BFGS guards
    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward(create_graph=adapters.create_graph)
        return loss

    closure()
    if adapters.closure:
        optimizer.step(closure)
    else:
        optimizer.step()


def _run(make, adapters, problem: Quadratic, params, steps: int, optimizer=None):
    optimizer = optimizer or build(make, params, adapters)
    for _ in range(steps):
        step(optimizer, lambda: problem.loss(params), adapters)
    return optimizer


def _snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _max_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def _finite(params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


# --------------------------------------------------------------------------------------------
# Adapters, found by trying


def has_train_eval(cls) -> bool:
    """Both ``train`` and ``eval`` methods, which torch.optim.Optimizer does not have."""
    return callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None))


def detect_adapters(make: Make, train_eval: bool = False, seed: int = 0) -> Adapters:
    """What the optimizer ``make`` builds needs, by trying: plain steps first, then a closure,
    then create_graph, then both, on a float64 `Quadratic` of matrices.

    ``matrix_only``: the way that works fails on a vector parameter. Raises the first attempt's
    exception when no way works. (core/optim/probe.py finds the same for the catalog on a
    float32 least-squares fit; this one runs on the check's own problem and seed.)
    """
    first_error: Exception | None = None
    for closure, create_graph in ((False, False), (True, False), (False, True), (True, True)):
        adapters = Adapters(closure, create_graph, train_eval)
        try:
            _try_steps(make, adapters, seed, SHAPES)
        except Exception as exc:  # noqa: BLE001 - any failure means: not this way
            first_error = first_error or exc
            continue
        try:
            _try_steps(make, adapters, seed, ((5,),))
        except Exception:  # noqa: BLE001
            return Adapters(closure, create_graph, train_eval, matrix_only=True)
        return adapters
    raise first_error


def _try_steps(make, adapters, seed, shapes) -> None:
    problem = Quadratic(seed, shapes)
    params = problem.params()
    _run(make, adapters, problem, params, 2)
    if not _finite(params):
        raise FloatingPointError("the parameters are not finite after 2 steps")


def _adapters_verdict(found: Adapters, declared: Adapters | None):
    needs = ", ".join(found.names()) or "none (plain backward() and step())"
    if declared is None:
        return PASSED, needs
    missing = [n for n in found.names() if n not in declared.names()]
    if missing:
        return FAILED, (f"needs {', '.join(missing)}, which its description does not declare "
                        "(a race would step it without)")
    extra = [n for n in declared.names() if n not in found.names()]
    if extra:
        needs += f"; its description also applies {', '.join(extra)}"
    return PASSED, needs


# --------------------------------------------------------------------------------------------
# The probes: each returns (status, evidence) or (status, evidence, value)


def _decreases(make, adapters, seed):
    problem = Quadratic(seed)
    params = problem.params()
    with torch.no_grad():
        start = float(problem.loss(params))
    optimizer = _run(make, adapters, problem, params, DECREASE_STEPS)
    where = ""
    if adapters.train_eval:
        optimizer.eval()  # judge it where it is evaluated (Schedule-Free's x)
        where = " at the evaluation point (after eval())"
    with torch.no_grad():
        end = float(problem.loss(params))
    text = f"loss {start:.4g} → {end:.4g} after {DECREASE_STEPS} steps{where} (minimum 0)"
    if math.isfinite(end) and end < start:
        return PASSED, text
    return FAILED, text + ": it did not decrease"


def _global_sources() -> tuple:
    """The global random states a seed does not control (read, never set)."""
    return (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())


def _which_changed(before, after) -> list[str]:
    names = ("torch's global generator", "Python's random", "numpy's global generator")
    same = (torch.equal(before[0], after[0]), before[1] == after[1],
            np.array_equal(before[2], after[2]))
    return [name for name, s in zip(names, same) if not s]


def _straight(make, adapters, seed):
    problem = Quadratic(seed, noise=NOISE)
    params = problem.params()
    _run(make, adapters, problem, params, RUN_STEPS)
    return _snapshot(params)


def _deterministic(make, adapters, seed, runs):
    before = _global_sources()
    first = _straight(make, adapters, seed)
    second = _straight(make, adapters, seed)
    drew = _which_changed(before, _global_sources())
    runs["straight"], runs["spread"] = first, _max_diff(first, second)
    if all(torch.equal(a, b) for a, b in zip(first, second)):
        return PASSED, f"two runs with seed {seed} are bit-identical after {RUN_STEPS} steps"
    text = (f"after {RUN_STEPS} steps the parameters differ by {runs['spread']:.2g} "
            f"between two runs with seed {seed}")
    if drew:
        text += f"; it drew from {' and '.join(drew)}, which the seed does not control"
    return FAILED, text


def _state_dict(make, adapters, seed, runs):
    straight = runs.get("straight") or _straight(make, adapters, seed)
    half = RUN_STEPS // 2
    problem = Quadratic(seed, noise=NOISE)
    params = problem.params()
    saved = copy.deepcopy(_run(make, adapters, problem, params, half).state_dict())
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in params]
    optimizer = build(make, resumed, adapters)
    optimizer.load_state_dict(saved)
    cast = _cast_note(saved, optimizer.state_dict())
    try:
        _run(make, adapters, problem, resumed, half, optimizer)
    except Exception as exc:  # noqa: BLE001 - said with the cast that may explain it
        return FAILED, f"raised {_message(exc)} after loading{cast}"
    if all(torch.equal(a, b) for a, b in zip(straight, resumed)):
        return PASSED, (f"{half} steps, save, load into a fresh optimizer, {half} more: "
                        f"bit-identical to {RUN_STEPS} straight steps")
    diff = _max_diff(straight, resumed)
    text = (f"after {half} steps, save/load and {half} more the parameters differ by "
            f"{diff:.2g} from {RUN_STEPS} straight steps{cast}")
    spread = runs.get("spread")
    if spread and diff <= 10 * spread:
        text += f" (two straight runs already differ by {spread:.2g}: see deterministic)"
    return FAILED, text


def _cast_note(saved: dict, loaded: dict) -> str:
    """Where load_state_dict changed a state tensor's dtype: torch casts floating state to its
    parameter's dtype, so state an optimizer keeps in float32 beside float64 parameters does
    not come back as it was."""
    for index, entries in saved.get("state", {}).items():
        after_entries = loaded.get("state", {}).get(index)
        # Not every entry is a parameter's dict: MADGRAD keeps a tensor, SPAM a counter.
        if not isinstance(entries, dict) or not isinstance(after_entries, dict):
            continue
        for key, value in entries.items():
            after = after_entries.get(key)
            pairs = (zip(value, after) if isinstance(value, (list, tuple))
                     and isinstance(after, (list, tuple)) else [(value, after)])
            for old, new in pairs:  # Kron keeps a list of preconditioner factors per parameter
                if (isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor)
                        and old.dtype != new.dtype):
                    return (f"; load_state_dict cast its state {key!r} from {old.dtype} to "
                            f"{new.dtype} (torch casts floating state to the parameter's dtype)")
    return ""


def _two_params(seed):
    problem = Quadratic(seed, shapes=(SHAPES[0],))
    return problem, problem.params()[0], problem.params()[0]


def _grad_none(make, adapters, seed):
    problem, used, unused = _two_params(seed)
    before = unused.detach().clone()
    _run_on(make, adapters, [used, unused], lambda: problem.loss([used]))
    if torch.equal(unused.detach(), before):
        return PASSED, f"unchanged after {SMALL_STEPS} steps"
    return FAILED, (f"a parameter with grad None moved by {_max_diff([unused], [before]):.2g} "
                    f"after {SMALL_STEPS} steps")


def _frozen(make, adapters, seed):
    problem, used, frozen = _two_params(seed)
    frozen.requires_grad_(False)
    before = frozen.detach().clone()
    _run_on(make, adapters, [used, frozen], lambda: problem.loss([used + frozen]))
    if torch.equal(frozen.detach(), before):
        return PASSED, f"unchanged after {SMALL_STEPS} steps of a loss that uses it"
    return FAILED, (f"a frozen parameter moved by {_max_diff([frozen], [before]):.2g} "
                    f"after {SMALL_STEPS} steps")


def _run_on(make, adapters, param_groups, loss_fn):
    optimizer = build(make, param_groups, adapters)
    for _ in range(SMALL_STEPS):
        step(optimizer, loss_fn, adapters)
    return optimizer


def _param_groups(make, adapters, seed, by_constructor: bool):
    """Two groups, the second with a tenth of the first's lr, given to the constructor as a list
    of groups; or, where a builder makes the optimizer (``by_constructor`` false: it may group
    the tensors itself, as Muon's does), the second added with ``add_param_group`` and the first
    group's other options. RUN_STEPS steps: some optimizers hold still for their first few."""
    problem, first, second = _two_params(seed)
    options = {k: v for k, v in build(make, [first], adapters).param_groups[0].items()
               if k != "params"}
    lr = options.get("lr")
    if lr is None or not float(lr) > 0:
        return NOT_APPLICABLE, "it has no positive lr to give each group"
    lr = float(lr)
    if by_constructor:
        optimizer = build(make, [{"params": [first]}, {"params": [second], "lr": lr / 10}],
                          adapters)
    else:
        optimizer = build(make, [first], adapters)
        optimizer.add_param_group({**options, "params": [second], "lr": lr / 10})
    start = first.detach().clone()
    for count in range(1, RUN_STEPS + 1):
        step(optimizer, lambda: problem.loss([first]) + problem.loss([second]), adapters)
        moved = (_max_diff([first], [start]), _max_diff([second], [start]))
        if max(moved) > 0:  # judged at the first move: later, both may have reached the minimum
            break
    text = (f"on identical sub-problems, group 0 (lr {lr:.3g}) moved {moved[0]:.3g}, "
            f"group 1 (lr {lr / 10:.3g}) moved {moved[1]:.3g} in {count} step"
            + ("s" if count > 1 else ""))
    if not _finite([first, second]):
        return FAILED, text + ": not finite"
    if not 0 < moved[1] < moved[0]:
        return FAILED, text + ": the groups' learning rates were not respected"
    return PASSED, text


def _zero_gradient(make, adapters, seed):
    problem = Quadratic(seed)
    params = problem.params()
    optimizer = build(make, params, adapters)
    for i in range(2 * 3):
        scale = 0.0 if i < 3 else 1.0  # 0·loss: every gradient exactly zero
        step(optimizer, lambda s=scale: problem.loss(params, s), adapters)
        if not _finite(params):
            kind = "a zero-gradient" if i < 3 else "an ordinary"
            return FAILED, (f"the parameters hold NaN or inf after step {i + 1} ({kind} step; "
                            f"steps 1-3 have a zero gradient)")
    return PASSED, "3 zero-gradient steps, then 3 ordinary ones: all finite"


class _Timer:
    """Times steps of one optimizer; ``full``: forward and backward included."""

    def __init__(self, make, adapters, seed, full: bool):
        problem = Quadratic(seed, TIMING_SHAPES, dtype=torch.float32)
        self.params = problem.params()
        self.optimizer = build(make, self.params, adapters)
        self.problem, self.adapters, self.full = problem, adapters, full
        if not full:
            for p in self.params:
                p.grad = torch.randn(p.shape, generator=problem.generator)
        self.first = self.steps(1)  # the first step allocates the state

    def steps(self, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            if self.full:
                step(self.optimizer, lambda: self.problem.loss(self.params), self.adapters)
            else:
                self.optimizer.step()
        return time.perf_counter() - start


def _step_time(make, adapters, seed, repeats):
    full = adapters.closure or adapters.create_graph
    mine = _Timer(make, adapters, seed, full)
    adam = _Timer(torch.optim.Adam, Adapters(), seed, full)
    affordable = int(TIMING_BUDGET_S / max(mine.first, 1e-9))  # steps within the budget
    repeats = max(1, min(repeats, affordable))
    count = max(1, min(TIMING_STEPS, affordable // repeats))
    mine.steps(1), adam.steps(1)  # past the first step's allocations
    times = [(mine.steps(count), adam.steps(count)) for _ in range(repeats)]
    # The best of interleaved repeats (as timeit advises): on a busy machine a repeat that the
    # scheduler preempted took 3-4x longer at random, which moved even a median of ratios
    # (Adam against itself read 0.2x-7x); the fastest repeat is the step's own cost.
    mine_us, adam_us = (min(t[i] for t in times) / count * 1e6 for i in (0, 1))
    ratio = mine_us / adam_us
    what = "a whole training step (loss, backward, step)" if full else "step()"
    size = sum(math.prod(s) for s in TIMING_SHAPES)
    return PASSED, (f"{ratio:.2f}× Adam's time for {what} on {size} float32 parameters "
                    f"({mine_us:.0f} µs vs {adam_us:.0f} µs a step, best of {repeats} × "
                    f"{count} steps)"), ratio


# --------------------------------------------------------------------------------------------


def check_optimizer(cls, kwargs: Mapping | None = None, *, seed: int = 0, name: str = "",
                    build: Callable[[list, dict], torch.optim.Optimizer] | None = None,
                    declared: Adapters | None = None, timing_repeats: int = 5) -> CheckReport:
    """The report card of optimizer class ``cls`` built with ``kwargs`` (see the module's text).

    ``build(params, kwargs)`` constructs it where ``cls(params, **kwargs)`` is not enough
    (`OptimizerInfo.build`: a wrapper's base optimizer, Muon's groups); ``params`` may be a list
    of param groups. ``declared``: the adapters the catalog says it needs (`Adapters.of(info)`),
    which a race applies; the check fails ``adapters`` when trying shows one it lacks. Runs
    ``cls``'s code: call it only on code the user trusts (core/optim/user_code.py).
    """
    kwargs = dict(kwargs or {})
    # The first torch.optim optimizer of a process imports torch._dynamo (2-3 s, more on a busy
    # machine; app/shell/warmup.py does it in the background): a one-time cost of the process,
    # paid before the clock so that the card's seconds are the check's own.
    import torch._dynamo  # noqa: F401

    def make(params):
        return build(params, dict(kwargs)) if build is not None else cls(params, **kwargs)

    clock = time.perf_counter()
    results: dict[str, PropertyResult] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zoo optimizers warn freely; the card is the verdict
        try:
            adapters = detect_adapters(make, has_train_eval(cls), seed)
            results["adapters"] = PropertyResult("adapters", *_adapters_verdict(adapters, declared))
        except Exception as exc:  # noqa: BLE001
            adapters = None
            results["adapters"] = PropertyResult(
                "adapters", FAILED, f"no way of stepping it worked: {_message(exc)}")
        # The probes step it as a race would: with what works, plus what the catalog applies.
        driver = (adapters or Adapters()).union(declared or Adapters())
        runs: dict = {}  # the deterministic probe's runs, which the state_dict probe reuses
        probes = {
            "decreases": lambda: _decreases(make, driver, seed),
            "deterministic": lambda: _deterministic(make, driver, seed, runs),
            "state_dict": lambda: _state_dict(make, driver, seed, runs),
            "grad_none": lambda: _grad_none(make, driver, seed),
            "frozen": lambda: _frozen(make, driver, seed),
            "param_groups": lambda: _param_groups(make, driver, seed, build is None),
            "zero_gradient": lambda: _zero_gradient(make, driver, seed),
            "step_time": lambda: _step_time(make, driver, seed, timing_repeats),
        }
        for key, probe in probes.items():
            try:
                results[key] = PropertyResult(key, *probe())
            except Exception as exc:  # noqa: BLE001 - the report always completes
                results[key] = PropertyResult(key, FAILED, f"raised {_message(exc)}")
    ordered = tuple(results[key] for key in PROPERTIES)
    return CheckReport(name or getattr(cls, "__name__", str(cls)), kwargs, seed, ordered,
                       adapters, time.perf_counter() - clock)


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
