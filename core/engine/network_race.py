"""The network engine: trains every run of a network lab side by side and yields plain records.

Fairness is the point of a race, so every run starts from the *same* initial weights (one model
is built from the lab's seed by `initial_model` and copied) and sees the *same* mini-batches in
the same order (one seeded generator draws each epoch's permutation once for all runs). Dropout
masks come from a per-run ``torch.Generator`` (`core.problems.models.dropout_stream`) that the
run's model owns, so adding or removing a run never changes another run's numbers. Nothing here
draws from or reseeds torch's process-global generator: a race gives the same numbers alone or
beside other work in other threads (sweeps, range tests, surfaces).

Each step ``t`` (0 … steps), for every live run, in the order a plain PyTorch script uses::

    out = model(x_batch_t); loss = criterion(out, y_batch_t) + l1·Σ|W| + l2·ΣW²
    opt.zero_grad(); loss.backward(); clip; record; opt.step(); schedule.step(loss)

(no update after the last record). So the record of step t holds the loss of batch t at the
weights after t updates — the same convention as the function engine. Every ``eval_every`` steps
(and at the first and last step) the record also carries validation and full-train metrics, the
per-layer gradient norms and update/weight ratios, and, for 2-D data, each run's decision boundary
on a grid. Records hold numpy arrays and floats only.

Seeds. A problem with ``"seeds": S`` > 1 trains every run S times, in lockstep: seed s (0 … S−1)
is a complete race of its own (`_SeedRace`: its models, optimizers, schedules, batch order and
stacked fast path) whose initial weights, batch order and dropout streams come from
``lab.seed + s·SEED_STRIDE`` (1000); the data set is the same for all seeds (its own seed). For a
given seed every run shares the initial weights and the batches, so fairness holds per seed. Each
step `NetworkRace.records` yields ONE record whose per-run arrays are the mean over the seeds
still alive for that run, with the standard deviation (numpy's, ddof = 0: 0 when one seed is
left) in ``loss_std`` and ``Evaluation.train_std`` / ``val_std``; ``seed_loss`` has each seed's
own loss. Decision boundaries, fitted curves, confusion matrices and weights are seed 0's (the
first seed still training once seed 0 has ended). A run is alive while any of its seeds is; each
seed diverges or stops early on its own, and when the last one ends the run's event names every
seed's fate. `NetworkRace.models`, ``stack`` and `state_dicts` are seed 0's. With S = 1 the race
is exactly the single-seed race, record for record.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from core.engine.devices import resolve_device
from core.engine.function_race import EXPLODE_FACTOR, Divergence, finite_or_none
from core.engine.stacked import StackedMLP, can_stack
from core.lab.format import SEED_STRIDE, Lab, RunSpec
from core.landscape.surfaces import SHARPNESS_SAMPLES, SharpnessTracker, model_loss
from core.optim.optimizers import build_optimizer, get_optimizer_info
from core.optim.schedules import Schedule
from core.problems.datasets import Dataset, make_dataset
from core.problems.metrics import classification_metrics, loss_function, regression_metrics
from core.problems.models import (
    ModelSpec,
    build_model,
    dropout_stream,
    has_dropout,
    linear_layers,
    set_dropout_generator,
    validate_model,
)

BOUNDARY_GRID = 64  # decision-boundary resolution (G×G points per run)
CURVE_POINTS = 200  # fitted-curve resolution for 1-D regression
DIAGRAM_MAX_PARAMS = 50_000  # evaluations carry weight copies up to this model size


@dataclass(frozen=True)
class EarlyStop:
    run: int
    label: str
    step: int
    best_step: int
    best_val_loss: float
    reason: str = ""  # with several seeds: which seed stopped when (empty for one seed)


@dataclass(frozen=True)
class Evaluation:
    """Full-data metrics of every run at one step (arrays have one row per run)."""

    train: dict[str, np.ndarray]  # "loss", plus "accuracy"/"precision"/... or "mse"/"mae"/"r2"
    val: dict[str, np.ndarray]  # same keys; empty when there is no validation split
    layer_grad_norm: np.ndarray  # (R, L)
    update_ratio: np.ndarray  # (R, L): ‖ΔW‖ / ‖W‖ of this step's update (0 at the last step)
    confusion: np.ndarray | None  # (R, k, k) on validation (train when no val split)
    boundary: np.ndarray | None  # (R, G, G) float32: P(class 1) for binary, else confidence
    boundary_class: np.ndarray | None  # (R, G, G) int8 predicted class (classification)
    curve: np.ndarray | None  # (R, CURVE_POINTS) predictions of a 1-D regression
    # Per run, each linear/conv layer's weight (copies), for the live network diagram; None for
    # networks above DIAGRAM_MAX_PARAMS, where copying every evaluation would cost too much.
    weights: tuple[tuple[np.ndarray, ...], ...] | None = None
    # With several seeds: the standard deviation over the seeds of each train / val metric
    # (same keys as ``train`` / ``val``, which then hold the means). Empty for one seed.
    train_std: dict[str, np.ndarray] = field(default_factory=dict)
    val_std: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkRecord:
    step: int
    epoch: float  # epochs completed at this step (step × batch / n_train)
    loss: np.ndarray  # (R,) the mini-batch's data loss (without the L1/L2 penalty)
    lr: np.ndarray  # (R,) lr of the update from this step to the next
    grad_norm: np.ndarray  # (R,) total gradient norm before clipping
    alive: np.ndarray  # (R,) False once a run diverged or stopped early
    wall_time: float  # seconds since the race started
    evaluation: Evaluation | None = None
    diverged: tuple[Divergence, ...] = ()
    stopped: tuple[EarlyStop, ...] = ()
    # With several seeds (None for one): the std over the live seeds of ``loss`` (R,), each
    # seed's own loss (S, R) (NaN where that seed's run is not alive) and the live seed count (R,).
    loss_std: np.ndarray | None = None
    seed_loss: np.ndarray | None = None
    seeds_alive: np.ndarray | None = None
    # problem.sharpness_every > 0, at the steps it is measured: each run's top Hessian eigenvalue
    # of the training loss at this step's weights (R,), NaN for runs not alive; else None.
    sharpness: np.ndarray | None = None


class BatchOrder:
    """The one mini-batch order every run sees: a fresh seeded permutation per epoch."""

    def __init__(self, n: int, batch_size: int | None, seed: int):
        self.n = n
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.per_epoch = math.ceil(n / self.batch_size)
        self._generator = torch.Generator().manual_seed(seed)
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def batch(self, step: int) -> torch.Tensor | None:
        """Indices of the batch used at ``step`` (None for full batch: use everything)."""
        if self.batch_size >= self.n:
            return None
        epoch, within = divmod(step, self.per_epoch)
        while self._epoch < epoch:  # steps only move forward
            self._perm = torch.randperm(self.n, generator=self._generator)
            self._epoch += 1
        start = within * self.batch_size
        return self._perm[start : start + self.batch_size]


def _penalized_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights L1/L2 act on: linear and conv weight matrices, not biases or batch norm."""
    return [m.weight for _, m in linear_layers(model)]


def _penalty(run: RunSpec, model: nn.Module) -> torch.Tensor | float:
    """The run's L1/L2 penalty on the model's weight matrices (0.0 when it has none)."""
    penalty: torch.Tensor | float = 0.0
    if run.l1:
        penalty = penalty + run.l1 * sum(w.abs().sum() for w in _penalized_weights(model))
    if run.l2:
        penalty = penalty + run.l2 * sum((w * w).sum() for w in _penalized_weights(model))
    return penalty


def train_step(run: RunSpec, model: nn.Module, optimizers: list[torch.optim.Optimizer],
               criterion, xb: torch.Tensor, yb: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """THE training step of one run's model on one batch, up to (not including) the update:
    forward in train mode, data loss + L1/L2 penalty, zero the grads, backward, the total
    gradient norm, then clipping by norm and by value. Returns (data loss, gradient norm before
    clipping, penalised loss). The race's per-run path and the LR range test
    (core/tools/lr_finder.py) both train through it; the stacked fast path (core/engine/stacked.py) is its
    batched twin, checked against it by the tests. Dropout masks come from the model's own
    generator (`core.problems.models.set_dropout_generator`)."""
    model.train()
    out = model(xb)
    data_loss = criterion(out, yb)
    total = data_loss + _penalty(run, model)
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    total.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    if run.clip_norm is not None:
        torch.nn.utils.clip_grads_with_norm_(params, run.clip_norm, torch.tensor(grad_norm))
    if run.clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, run.clip_value)
    return data_loss.item(), grad_norm, total


def optimizers_for(run: RunSpec, model: nn.Module) -> list[torch.optim.Optimizer]:
    """The run's optimizer; Muon gets the weight matrices and AdamW the rest (as its docs advise)."""
    info = get_optimizer_info(run.optimizer)
    params = list(model.parameters())
    if info.min_param_ndim <= 1:
        return [build_optimizer(run.optimizer, run.params, params)]
    matrices = [p for p in params if p.ndim >= info.min_param_ndim]
    others = [p for p in params if p.ndim < info.min_param_ndim]
    optimizers = [build_optimizer(run.optimizer, run.params, matrices)]
    if others:
        optimizers.append(build_optimizer("adamw", {"lr": run.params.get("lr", 1e-3)}, others))
    return optimizers


def initial_model(lab: Lab, data: Dataset, seed_index: int = 0) -> nn.Module:
    """The model every run of seed ``seed_index`` starts from, on the CPU: ``lab.problem.model``
    built for ``data`` with weights drawn from ``lab.seed + SEED_STRIDE·seed_index``.

    The race copies it for each run; the problem panel's diagram (app/network/layer_editor.py)
    draws seed 0's, so both always show the same initial weights. Raises `LabError` when the
    model does not fit the data.
    """
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    seed = lab.seed + SEED_STRIDE * seed_index
    return build_model(spec, generator=torch.Generator().manual_seed(seed))


@dataclass
class _Setup:
    """What every seed of a race shares: the device, the data and its tensors, the model spec."""

    device: torch.device
    notices: list
    data: Dataset
    model_spec: ModelSpec
    criterion: object
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @classmethod
    def of(cls, lab: Lab) -> _Setup:
        problem = lab.problem
        device, notices = resolve_device(problem.device)
        data = make_dataset(problem.dataset, lab.seed, base_dir=lab.base_path)
        model_spec = validate_model(problem.model, data.input_shape, data.n_outputs)
        return cls(
            device=device, notices=notices, data=data, model_spec=model_spec,
            criterion=loss_function(problem.loss, data.task),
            x_train=torch.as_tensor(data.x_train, device=device),
            y_train=torch.as_tensor(data.y_train, device=device),
            x_val=torch.as_tensor(data.x_val, device=device),
            y_val=torch.as_tensor(data.y_val, device=device),
        )


# A run whose parameter norm passes PARAM_NORM_FACTOR × (its norm at step 0 + 1) has diverged:
# weights a thousand times their initial size scale a deep network's outputs by far more, which
# no useful model needs and which is on its way to Inf anyway (and caught a step or more before
# the loss turns NaN). The + 1 keeps a zero-initialised model checkable.
PARAM_NORM_FACTOR = 1e3

# What allocators say when they run out (CUDA: torch.OutOfMemoryError, "CUDA error: out of
# memory"; CPU: "DefaultCPUAllocator: can't allocate memory", Windows: "not enough memory").
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


def out_of_memory(error: BaseException) -> str | None:
    """The first line of ``error``'s message when it is an out-of-memory error, else None."""
    if not isinstance(error, RuntimeError):  # torch.OutOfMemoryError is a RuntimeError
        return None
    text = str(error).strip()
    if isinstance(error, torch.OutOfMemoryError) or any(s in text.lower() for s in _OUT_OF_MEMORY):
        return (text.splitlines()[0][:200] if text else "") or "the allocator gave up"
    return None


class _ParamWatch:
    """Each run's parameter norm against its start, and a copy of every run's weights from
    before the latest update, to tell which tensor that update blew up.

    Cheap by design: on the stacked path every run's parameters are rows of one (R, P) tensor,
    so a step costs one norm over R rows and one copy; on the per-run path one foreach norm and
    one foreach copy over every run's tensors (all runs share the architecture).
    """

    def __init__(self, models: list[nn.Module], stack: StackedMLP | None):
        self.named = [list(m.named_parameters()) for m in models]
        self.count = len(models)
        self.limit: torch.Tensor | None = None  # set by the first `blown` (step 0)
        self.start: np.ndarray | None = None
        self.has_before = False  # no update yet: nothing to compare with
        flat = stack.flat if stack is not None else None
        shares = flat is not None and all(
            p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
            for named in self.named for _, p in named)
        self._flat = flat if shares else None
        # Detached views share the parameters' storage: reading them records no autograd graph,
        # without torch.no_grad(), whose context switch cost more than the norm itself.
        self._params = [p.detach() for named in self.named for _, p in named]
        if self._flat is not None:
            # The copy has flat's layout, so each parameter's twin is the same view of it.
            self._before_flat = torch.empty_like(self._flat)
            base = self._flat.storage_offset()
            before = [self._before_flat.as_strided(p.shape, p.stride(), p.storage_offset() - base)
                      for p in self._params]
        else:
            before = [p.detach().clone() for p in self._params]
        self._before_list = before
        per_run = len(self._params) // max(1, self.count)
        self.before = [before[r * per_run:(r + 1) * per_run] for r in range(self.count)]

    def norms(self) -> torch.Tensor:
        """(R,) every run's parameter norm (NaN/Inf when a parameter is)."""
        if self._flat is not None:
            return torch.linalg.vector_norm(self._flat, dim=1)
        if not self._params:
            return torch.zeros(self.count)
        per_tensor = torch.stack(torch._foreach_norm(self._params))
        return torch.linalg.vector_norm(per_tensor.view(self.count, -1), dim=1)

    def snapshot(self) -> None:
        """Remember every run's weights before an update."""
        if self._flat is not None:
            self._before_flat.copy_(self._flat)
        else:
            torch._foreach_copy_(self._before_list, self._params)
        self.has_before = True

    def blown(self, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Live runs whose norm passed its limit (or is not finite), and every run's norm.

        The first call (step 0, before any update) sets the limits instead."""
        norms = self.norms()
        if self.limit is None:
            self.start = norms.cpu().numpy().astype(np.float64)
            self.limit = PARAM_NORM_FACTOR * (norms + 1.0)
            return np.empty(0, dtype=int), self.start
        within = (norms <= self.limit).cpu().numpy()  # NaN compares False: it counts as blown
        flagged = np.flatnonzero(~within & alive)
        return flagged, (norms.cpu().numpy().astype(np.float64) if flagged.size else None)

    @torch.no_grad()
    def blame(self, i: int) -> tuple[str | None, float | None, str]:
        """(tensor name, its ‖ΔW‖ / ‖W‖, a sentence) for run i's latest update: the first
        non-finite tensor, else the largest relative update. Before any update: the first
        non-finite tensor, else the one with the largest entries."""
        named = self.named[i]
        if not named:
            return None, None, ""
        for name, p in named:
            if not torch.isfinite(p).all():
                return name, None, f"parameter {name} became NaN/Inf"
        if not self.has_before:
            name, p = max(named, key=lambda item: float(item[1].abs().max()))
            return name, None, f"largest weights in {name} (max |w| = {float(p.abs().max()):.3g})"
        ratios = [
            (name, float((p - w).norm() / w.norm().clamp(min=1e-12)))
            for (name, p), w in zip(named, self.before[i])
        ]
        name, ratio = max(ratios, key=lambda item: item[1])
        return name, ratio, f"the update of {name} was the largest ({ratio:.3g} × its norm)"


class _SeedRace:
    """Every run of the lab on ONE seed; `records()` advances it (the whole race when S = 1)."""

    def __init__(self, lab: Lab, setup: _Setup, seed_index: int = 0):
        problem = lab.problem
        self.lab = lab
        self.seed_index = seed_index
        self.seed = lab.seed + SEED_STRIDE * seed_index
        self.runs = lab.enabled_runs()
        self.labels = tuple(r.label for r in self.runs)
        self.device, self.notices = setup.device, setup.notices
        self.data: Dataset = setup.data
        self.model_spec: ModelSpec = setup.model_spec
        self.task = self.data.task
        self.criterion = setup.criterion

        initial = initial_model(lab, self.data, seed_index)
        self.models = [copy.deepcopy(initial).to(self.device) for _ in self.runs]
        self.has_dropout = has_dropout(initial)
        # The fast path: every run in one batched pass (see core/engine/stacked.py).
        self.stack: StackedMLP | None = None
        if len(self.runs) >= 2 and can_stack(initial, [r.optimizer for r in self.runs]):
            self.stack = StackedMLP(self.models)
            # Per-run L1/L2 coefficients, fixed for the race: built once, not every step.
            self._penalties = (
                torch.tensor([r.l1 for r in self.runs], device=self.device),
                torch.tensor([r.l2 for r in self.runs], device=self.device),
            )
            self.optimizers = [
                [build_optimizer(run.optimizer, run.params, [param])]
                for run, param in zip(self.runs, self.stack.run_params)
            ]
            # Each run keeps its optimizer; the stack steps them one torch.optim call per type.
            self.stack.use_optimizers([opts[0] for opts in self.optimizers])
        else:
            self.optimizers = [
                optimizers_for(run, model) for run, model in zip(self.runs, self.models)
            ]
        self.schedules = [
            Schedule(opts[0], run.schedule.name, run.schedule.params, lab.steps)
            if run.schedule is not None
            else Schedule(opts[0], "constant", {}, lab.steps)
            for run, opts in zip(self.runs, self.optimizers)
        ]
        # One dropout stream per run, owned by its model: runs never share random numbers.
        if self.has_dropout:
            for i, model in enumerate(self.models):
                set_dropout_generator(model, dropout_stream(self.seed, i, self.device))

        self.x_train, self.y_train = setup.x_train, setup.y_train
        self.x_val, self.y_val = setup.x_val, setup.y_val
        self.order = BatchOrder(len(self.x_train), problem.batch_size, self.seed + 1)
        self._grid = self._boundary_inputs()

        count = len(self.runs)
        self.step = 0
        self.alive = np.ones(count, dtype=bool)
        self.diverged: list[Divergence | None] = [None] * count
        self.stopped: list[EarlyStop | None] = [None] * count
        self.best_val = np.full(count, np.inf)
        self.best_val_step = np.zeros(count, dtype=int)
        self._evals_since_best = np.zeros(count, dtype=int)
        self._start_loss: np.ndarray | None = None
        self.wall_s = np.zeros(count)
        self._last_loss = np.zeros(count)
        self._last_grad = np.zeros(count)
        self._last_lr = np.full(count, np.nan)  # the lr of the latest update (forensics)
        self._watch = _ParamWatch(self.models, self.stack)  # parameter norms, pre-update copy
        self._out_of_memory: dict[int, str] = {}  # runs that ran out of memory, to be marked
        self._unbatched = False  # stacked runs train one by one after a batched OOM
        self._pending: tuple[np.ndarray, np.ndarray, list[Divergence]] | None = None
        self._started = time.perf_counter()
        self.last_evaluation: Evaluation | None = None
        every = getattr(problem, "sharpness_every", 0)
        self._sharpness = SharpnessTracker(count) if every > 0 else None

    # -- pieces ------------------------------------------------------------------------------

    def _boundary_inputs(self) -> torch.Tensor | None:
        """Model inputs for the decision-boundary grid (2-D sets) or the fitted curve (1-D)."""
        data = self.data
        if data.plane is not None:
            (x0, x1), (y0, y1) = data.plane
            xs = np.linspace(x0, x1, BOUNDARY_GRID)
            ys = np.linspace(y0, y1, BOUNDARY_GRID)
            gx, gy = np.meshgrid(xs, ys)  # row j = y, column i = x (row-major images)
            points = np.column_stack([gx.ravel(), gy.ravel()])
            return torch.as_tensor(data.features(points), dtype=torch.float32, device=self.device)
        if data.task == "regression" and data.input_shape == (1,):
            lo, hi = float(data.x_train.min()), float(data.x_train.max())
            xs = np.linspace(lo, hi, CURVE_POINTS, dtype=np.float32)[:, None]
            return torch.as_tensor(xs, device=self.device)
        return None

    def _train_step(self, i: int, xb, yb) -> tuple[float, float, torch.Tensor]:
        """Forward + backward (+ clipping) of run i (`train_step`)."""
        return train_step(self.runs[i], self.models[i], self.optimizers[i], self.criterion, xb, yb)

    def _train_all(self, xb, yb) -> list[tuple[int, float, float]]:
        """Forward + backward (+ clipping) of every live run: (run, loss, grad norm) each."""
        live = np.flatnonzero(self.alive)
        if self.stack is None or self._unbatched:
            return self._train_one_by_one(live, xb, yb)
        t0 = time.perf_counter()
        stack = self.stack
        l1, l2 = self._penalties
        try:
            losses, norms = stack.train_step(xb, yb, self.criterion, self.alive, l1, l2)
        except RuntimeError as error:
            if out_of_memory(error) is None:
                raise
            # The batched pass holds every run's activations at once, so its OOM is no run's
            # in particular. One run at a time needs 1/R of that: fall back to it for the rest
            # of the race (same optimizers and state; numbers equal to float rounding, as
            # stacked vs separate models always are). A run that still runs out of memory on
            # its own is then marked alone. (Retried outside this block: while it runs, the
            # error's traceback keeps the failed pass's tensors alive.)
            self._unbatched = True
        if self._unbatched:
            self._free_cache()
            return self._train_one_by_one(live, xb, yb)
        for i in live:
            run = self.runs[i]
            if run.clip_norm is not None:
                # torch.nn.utils.clip_grad_norm_'s own formula, on this run's row.
                coef = torch.clamp(run.clip_norm / (norms[i] + 1e-6), max=1.0)
                stack.grad[i].mul_(coef)
            if run.clip_value is not None:
                stack.grad[i].clamp_(-run.clip_value, run.clip_value)
        losses, norms = losses.tolist(), norms.tolist()
        spent = (time.perf_counter() - t0) / max(1, len(live))
        self.wall_s[live] += spent
        return [(int(i), losses[i], norms[i]) for i in live]

    def _train_one_by_one(self, live: np.ndarray, xb, yb) -> list[tuple[int, float, float]]:
        """The per-run path (and the stacked runs' fallback after a batched OOM). A run that
        runs out of memory is set aside in ``_out_of_memory``; the others go on."""
        results = []
        for i in live:
            i = int(i)
            t0 = time.perf_counter()
            try:
                if self.stack is not None:
                    self.models[i].zero_grad(set_to_none=True)  # its views' own grads
                loss, grad_norm, _total = self._train_step(i, xb, yb)
                if self.stack is not None:  # the row the run's optimizer steps
                    self.stack.grad[i].copy_(torch.cat(
                        [p.grad.reshape(-1) for p in self.models[i].parameters()]))
            except RuntimeError as error:
                message = out_of_memory(error)
                if message is None:
                    raise
                self._out_of_memory[i] = message
            finally:
                self.wall_s[i] += time.perf_counter() - t0
            if i in self._out_of_memory:
                self._release(i)  # out of the except block: the traceback is gone by now
                continue
            results.append((i, loss, grad_norm))
        return results

    def _release(self, i: int) -> None:
        """Free what run i holds beyond its weights: gradients and optimizer state."""
        self.models[i].zero_grad(set_to_none=True)
        for opt in self.optimizers[i]:
            opt.zero_grad(set_to_none=True)
            for state in opt.state.values():
                state.clear()  # the dict itself may be shared with the stack's stepper
        self._free_cache()

    def _free_cache(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @torch.no_grad()
    def _evaluate(self) -> Evaluation:
        """Metrics of every run at the current weights (update ratios are filled in later).

        A stacked race evaluates all runs in one batched pass (`_evaluate_stacked`); the others
        (dropout, batch norm, conv, Muon …) one model at a time, below."""
        if self.stack is not None:
            return self._evaluate_stacked()
        count = len(self.runs)
        train: dict[str, list] = {}
        val: dict[str, list] = {}
        confusion, boundary, boundary_class, curve = [], [], [], []
        layer_grads, ratios = [], []
        classification = self.task == "classification"
        k = self.data.n_classes
        for i, model in enumerate(self.models):
            model.eval()
            for split, x, y, out in (("train", self.x_train, self.y_train, train),
                                     ("val", self.x_val, self.y_val, val)):
                if len(x) == 0:
                    continue
                pred = model(x)
                out.setdefault("loss", []).append(float(self.criterion(pred, y)))
                metrics = (classification_metrics(pred, y, k) if classification
                           else regression_metrics(pred, y))
                for key, value in metrics.items():
                    out.setdefault(key, []).append(value)
                if classification and (split == "val" or len(self.x_val) == 0):
                    from core.problems.metrics import confusion_matrix

                    confusion.append(confusion_matrix(pred.argmax(1), y, k).cpu().numpy())
            if self._grid is not None:
                pred = model(self._grid)
                if classification:
                    prob = torch.softmax(pred, dim=1)
                    g = BOUNDARY_GRID
                    cls = prob.argmax(dim=1)
                    shown = prob[:, 1] if k == 2 else prob.max(dim=1).values
                    boundary.append(shown.reshape(g, g).float().cpu().numpy())
                    boundary_class.append(cls.reshape(g, g).to(torch.int8).cpu().numpy())
                else:
                    curve.append(pred[:, 0].float().cpu().numpy())
            layers = linear_layers(model)
            if self.stack is not None:
                layer_grads.append(self.stack.layer_grad_norms(i))
            else:
                layer_grads.append([
                    float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0
                    for _, m in layers
                ])
            ratios.append([0.0] * len(layers))
        weights = None
        if self.model_spec.n_params <= DIAGRAM_MAX_PARAMS:
            weights = tuple(
                tuple(m.weight.detach().float().cpu().numpy().copy() for _, m in linear_layers(model))
                for model in self.models
            )
        as_arrays = lambda d: {key: np.asarray(v, dtype=np.float64) for key, v in d.items()}  # noqa: E731
        return Evaluation(
            weights=weights,
            train=as_arrays(train),
            val=as_arrays(val),
            layer_grad_norm=np.asarray(layer_grads, dtype=np.float64).reshape(count, -1),
            update_ratio=np.asarray(ratios, dtype=np.float64).reshape(count, -1),
            confusion=np.stack(confusion) if confusion else None,
            boundary=np.stack(boundary) if boundary else None,
            boundary_class=np.stack(boundary_class) if boundary_class else None,
            curve=np.stack(curve) if curve else None,
        )

    @torch.no_grad()
    def _evaluate_stacked(self) -> Evaluation:
        """`_evaluate` of a stacked race: each split through every run in ONE batched forward
        (`StackedMLP.predict`) and the metrics over a leading run axis — a few dozen torch calls
        instead of a few hundred, so the worker holds the GIL (and the core) far less. Same
        formulas as core.problems.metrics; the same numbers as the per-model path to float32 rounding
        (the losses are each run's own criterion call on its slice; tests compare)."""
        stack = self.stack
        count = stack.count
        classification = self.task == "classification"
        k = self.data.n_classes
        train: dict[str, np.ndarray] = {}
        val: dict[str, np.ndarray] = {}
        confusion = boundary = boundary_class = curve = None
        for split, x, y, out in (("train", self.x_train, self.y_train, train),
                                 ("val", self.x_val, self.y_val, val)):
            if len(x) == 0:
                continue
            pred = stack.predict(x)  # (R, N, outputs)
            losses = torch.stack([self.criterion(run_pred, y) for run_pred in pred])
            out["loss"] = np.asarray(losses.tolist(), dtype=np.float64)
            if classification:
                matrices = _confusion_matrices(pred.argmax(dim=2), y, k)
                out.update(_classification_metrics_of(matrices))
                if split == "val" or len(self.x_val) == 0:
                    confusion = matrices.cpu().numpy()
            else:
                out.update(_regression_metrics_of(pred, y))
        if self._grid is not None:
            pred = stack.predict(self._grid)
            if classification:
                # Softmax over the classes as (R, C, G²) (a view): along the last dim, with 2
                # classes, it took ~9x longer; the values differ by float32 rounding (~3e-8).
                # (max gives the same index as argmax, which took ~15x longer on this layout.)
                prob = torch.softmax(pred.transpose(1, 2), dim=1)
                g = BOUNDARY_GRID
                top, cls = prob.max(dim=1)
                shown = prob[:, 1] if k == 2 else top
                boundary = shown.reshape(count, g, g).float().cpu().numpy()
                boundary_class = cls.reshape(count, g, g).to(torch.int8).cpu().numpy()
            else:
                curve = pred[:, :, 0].float().cpu().numpy()
        layer_grads = stack.all_layer_grad_norms()
        return Evaluation(
            weights=stack.weight_copies() if self.model_spec.n_params <= DIAGRAM_MAX_PARAMS
            else None,
            train=train,
            val=val,
            layer_grad_norm=layer_grads,
            update_ratio=np.zeros_like(layer_grads),
            confusion=confusion,
            boundary=boundary,
            boundary_class=boundary_class,
            curve=curve,
        )

    def _check_divergence(self, i: int, loss: float, grad_norm: float) -> Divergence | None:
        """NaN/Inf or an exploding loss or gradient: run i's divergence (see `_diverge`)."""
        reason = None
        if not math.isfinite(loss):
            reason = "the loss became NaN" if math.isnan(loss) else "the loss became infinite"
        elif abs(loss) > EXPLODE_FACTOR * (self._start_loss[i] + 1.0):
            reason = f"the loss exploded to {loss:.3g}"
        elif not math.isfinite(grad_norm):
            reason = "the gradient became NaN/Inf"
        if reason is None:
            return None
        return self._diverge(i, reason)

    def _check_parameters(self) -> list[Divergence]:
        """Before this step uses the weights: runs whose latest update ran out of memory or
        blew their parameter norm up (one batched norm per step, `_ParamWatch`)."""
        events = self._take_out_of_memory()
        flagged, norms = self._watch.blown(self.alive)
        for i in flagged:
            norm = float(norms[i])
            if math.isfinite(norm):
                reason = (f"the parameter norm blew up to {norm:.3g} (more than "
                          f"{PARAM_NORM_FACTOR:g} × (start norm {self._watch.start[i]:.3g} + 1))")
            else:
                reason = "the parameters became NaN/Inf"
            events.append(self._diverge(int(i), reason, param_norm=norm))
        return events

    def _take_out_of_memory(self) -> list[Divergence]:
        events = []
        for i, message in self._out_of_memory.items():
            if self.alive[i]:
                events.append(self._diverge(i, f"out of memory: {message}", blame=False))
                self._release(i)
        self._out_of_memory.clear()
        return events

    def _diverge(self, i: int, reason: str, param_norm: float | None = None,
                 blame: bool = True) -> Divergence:
        """Freeze run i with its forensics: the tensor its latest update blew up (named in the
        reason too), the last finite loss and gradient norm (step - 1) and that update's lr."""
        layer, ratio = None, None
        if blame:
            layer, ratio, culprit = self._watch.blame(i)
            if culprit:
                reason = f"{reason}; {culprit}"
        if param_norm is None:
            param_norm = float(self._watch.norms()[i])
        first = self.step == 0  # no update yet: nothing before it is known
        event = Divergence(
            i, self.labels[i], self.step, reason, layer=layer,
            lr=None if first else finite_or_none(self._last_lr[i]),
            last_loss=None if first else finite_or_none(self._last_loss[i]),
            last_grad_norm=None if first else finite_or_none(self._last_grad[i]),
            update_ratio=finite_or_none(ratio), param_norm=finite_or_none(param_norm),
        )
        self.alive[i] = False
        self.diverged[i] = event
        return event

    def _early_stopping(self, evaluation: Evaluation) -> list[EarlyStop]:
        events = []
        val_loss = evaluation.val.get("loss")
        if val_loss is None:
            return events
        for i in np.flatnonzero(self.alive):
            rule = self.runs[i].early_stopping
            value = float(val_loss[i])
            min_delta = rule.get("min_delta", 0.0) if rule else 0.0
            if value < self.best_val[i] - min_delta:
                self.best_val[i] = value
                self.best_val_step[i] = self.step
                self._evals_since_best[i] = 0
            else:
                self._evals_since_best[i] += 1
            if rule and self._evals_since_best[i] > rule["patience"]:
                self.alive[i] = False
                event = EarlyStop(int(i), self.labels[i], self.step, int(self.best_val_step[i]),
                                  float(self.best_val[i]))
                self.stopped[i] = event
                events.append(event)
        return events

    # -- the loop ----------------------------------------------------------------------------

    def records(self, stop: threading.Event | None = None) -> Iterator[NetworkRecord]:
        while True:
            if stop is not None and stop.is_set():
                return
            diverged = self.train_phase()
            yield self.finish_phase(self.scheduled_evaluation() or bool(diverged))
            if self.step >= self.lab.steps or not self.alive.any():
                return
            self.step += 1

    def scheduled_evaluation(self) -> bool:
        return self.step % self.lab.problem.eval_every == 0 or self.step == self.lab.steps

    def train_phase(self) -> list[Divergence]:
        """Forward + backward of this step's batch for every live run; returns divergences."""
        idx = self.order.batch(self.step)
        xb = self.x_train if idx is None else self.x_train[idx]
        yb = self.y_train if idx is None else self.y_train[idx]
        losses = self._last_loss.copy()
        grads = self._last_grad.copy()
        diverged = self._check_parameters()
        for i, loss, grad_norm in self._train_all(xb, yb):
            if self._start_loss is None:
                self._start_loss = np.zeros(len(self.runs))
            if self.step == 0:
                self._start_loss[i] = abs(loss) if math.isfinite(loss) else 0.0
            event = self._check_divergence(int(i), loss, grad_norm)
            if event is not None:
                diverged.append(event)
                continue
            losses[i], grads[i] = loss, grad_norm
        diverged += self._take_out_of_memory()  # runs that ran out of memory in this pass
        self._last_loss, self._last_grad = losses, grads
        self._pending = (losses, grads, diverged)
        return diverged

    def finish_phase(self, evaluate: bool) -> NetworkRecord:
        """Record lr, evaluate (when asked), early-stop, update: the record of this step."""
        losses, grads, diverged = self._pending
        self._pending = None
        steps = self.lab.steps
        before = None
        if evaluate and self.step < steps:
            before = [[m.weight.detach().clone() for _, m in linear_layers(model)]
                      for model in self.models]
        lr = np.array([float(opts[0].param_groups[0]["lr"]) for opts in self.optimizers])
        self._last_lr = lr  # the lr of the update below, for a divergence it may cause
        # Update after recording lr; the evaluation below sees the weights *before* the
        # update (the state of step t), plus the update ratio of this step.
        evaluation = None
        stopped: list[EarlyStop] = []
        if evaluate:
            evaluation = self._evaluate()
            self.last_evaluation = evaluation
            stopped = self._early_stopping(evaluation)
        # A run that stops early at this step still owns this step's numbers.
        alive = self.alive.copy()
        for event in stopped:
            alive[event.run] = True
        sharpness = self._measure_sharpness(alive) if self._sharpness_due() else None
        if self.step < steps:
            live = np.flatnonzero(self.alive)
            self._watch.snapshot()  # to name the tensor, should this update blow a run up
            if self.stack is not None:  # every live run in one call per optimizer type
                t0 = time.perf_counter()
                try:
                    self.stack.step(self.alive)
                except RuntimeError as error:
                    message = out_of_memory(error)
                    if message is None:
                        raise
                    # One call steps (and at first allocates the state of) every live run, and
                    # one that fails midway leaves some runs updated and others not: there is
                    # no per-run fallback for that, so every live run is marked (next step).
                    self._out_of_memory.update({int(i): message for i in live})
                for i in live:
                    self.schedules[i].step(float(losses[i]))
                self.wall_s[live] += (time.perf_counter() - t0) / max(1, len(live))
            else:
                for i in live:
                    t0 = time.perf_counter()
                    try:
                        for opt in self.optimizers[i]:
                            opt.step()
                    except RuntimeError as error:
                        message = out_of_memory(error)
                        if message is None:
                            raise
                        self._out_of_memory[int(i)] = message  # marked at the next step
                    if i in self._out_of_memory:
                        self._release(int(i))
                    self.schedules[i].step(float(losses[i]))
                    self.wall_s[i] += time.perf_counter() - t0
            if before is not None and evaluation is not None:
                ratios = self._update_ratios(before)
                evaluation = _with_ratios(evaluation, ratios)
        return NetworkRecord(
            step=self.step,
            epoch=self.step * self.order.batch_size / self.order.n,
            loss=losses,
            lr=lr,
            grad_norm=grads,
            alive=alive,
            wall_time=time.perf_counter() - self._started,
            evaluation=evaluation,
            diverged=tuple(diverged),
            stopped=tuple(stopped),
            sharpness=sharpness,
        )

    def _sharpness_due(self) -> bool:
        if self._sharpness is None:
            return False
        every = self.lab.problem.sharpness_every
        return self.step % every == 0 or self.step == self.lab.steps

    def _measure_sharpness(self, alive: np.ndarray) -> np.ndarray:
        """Top Hessian eigenvalue of each live run's training data loss (no penalty) at the
        weights of this step, before its update (core.landscape.surfaces.SharpnessTracker). NaN for a run
        not alive, and for a live run whose eigensolver did not converge: a live run's NaN means
        "not converged" (core.engine.history keeps it as such), never a stale or partial estimate."""
        loss = model_loss(self.x_train[:SHARPNESS_SAMPLES], self.y_train[:SHARPNESS_SAMPLES],
                          self.criterion)
        values = np.full(len(self.runs), np.nan)
        for i in np.flatnonzero(alive):
            values[i] = self._sharpness.measure(int(i), self.models[i], loss)
        return values

    @torch.no_grad()
    def _update_ratios(self, before: list[list[torch.Tensor]]) -> np.ndarray:
        rows = []
        for model, weights in zip(self.models, before):
            rows.append([
                float((m.weight - w).norm() / w.norm().clamp(min=1e-12))
                for (_, m), w in zip(linear_layers(model), weights)
            ])
        return np.asarray(rows, dtype=np.float64).reshape(len(self.models), -1)

    def state_dicts(self) -> dict[str, dict]:
        # Clones: with the stacked path the parameters are views of one shared tensor, and
        # torch.save would write that whole tensor into every run's file.
        return {
            label: {k: v.detach().clone() for k, v in model.state_dict().items()}
            for label, model in zip(self.labels, self.models)
        }


def _confusion_matrices(pred: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """(R, k, k) int64 counts of (R, N) predictions: core.problems.metrics.confusion_matrix per run, in
    one bincount (run r's cells offset by r·k²)."""
    runs = pred.shape[0]
    offset = torch.arange(runs, device=pred.device)[:, None] * (k * k)
    index = offset + target.long()[None, :] * k + pred.long()
    return torch.bincount(index.flatten(), minlength=runs * k * k).reshape(runs, k, k)


def _classification_metrics_of(matrices: torch.Tensor) -> dict[str, np.ndarray]:
    """core.problems.metrics.classification_metrics from each run's confusion matrix (R, k, k): the same
    float64 formulas (macro over the classes present), one array of R values per metric."""
    cm = matrices.double()
    true_pos = cm.diagonal(dim1=1, dim2=2)  # (R, k)
    predicted = cm.sum(dim=1)
    actual = cm.sum(dim=2)
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), 0.0)
    present = actual > 0
    count = present.sum(dim=1).clamp(min=1)

    def macro(values: torch.Tensor) -> np.ndarray:
        return (torch.where(present, values, 0.0).sum(dim=1) / count).cpu().numpy()

    return {
        "accuracy": (true_pos.sum(dim=1) / cm.sum(dim=(1, 2)).clamp(min=1)).cpu().numpy(),
        "precision": macro(precision),
        "recall": macro(recall),
        "f1": macro(f1),
    }


def _regression_metrics_of(pred: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    """core.problems.metrics.regression_metrics of every run's (R, N, …) predictions at once."""
    err = (pred - target.unsqueeze(0)).flatten(1)
    mse = (err**2).mean(dim=1).double().cpu().numpy()
    total = float(((target - target.mean()) ** 2).mean())
    return {
        "mse": mse,
        "mae": err.abs().mean(dim=1).double().cpu().numpy(),
        # R² of a constant target is undefined; 0 says "no better than the mean".
        "r2": 1.0 - mse / total if total > 0 else np.zeros_like(mse),
    }


def _with_ratios(evaluation: Evaluation, ratios: np.ndarray) -> Evaluation:
    from dataclasses import replace

    return replace(evaluation, update_ratio=ratios)


class NetworkRace:
    """State of a network race over ``lab.problem.seeds`` seeds; `records()` advances it.

    With one seed this is exactly that seed's `_SeedRace` (the same arrays and records). With S
    seeds the S races step in lockstep and each record holds per-run means and stds over the
    seeds still alive (module docstring). ``models``, ``stack``, ``optimizers``, ``order`` and
    `state_dicts` are seed 0's; ``alive`` / ``diverged`` / ``stopped`` / ``best_val`` /
    ``wall_s`` are per run over all seeds (``best_val``: the best mean validation loss;
    ``wall_s``: the compute time of all its seeds). Setting ``alive[i] = False`` between records
    (core.tools.sweep's pruning) stops run i on every seed. A relative CSV path in the lab is
    read from the lab file's folder (``lab.base_path``). Build one with core/engine/factory.py.
    """

    def __init__(self, lab: Lab):
        self.lab = lab
        self.seed_count = int(getattr(lab.problem, "seeds", 1))
        setup = _Setup.of(lab)
        self.seed_races = [_SeedRace(lab, setup, s) for s in range(self.seed_count)]
        first = self.seed_races[0]
        self.runs, self.labels = first.runs, first.labels
        self.device, self.notices = setup.device, setup.notices
        self.data, self.model_spec, self.task = setup.data, setup.model_spec, first.task
        self.criterion = setup.criterion
        self.x_train, self.y_train = setup.x_train, setup.y_train
        self.x_val, self.y_val = setup.x_val, setup.y_val
        count = len(self.runs)
        # Every seed's own events (named by seed), in the order they happened.
        self.seed_events: list[Divergence | EarlyStop] = []
        self._fates: list[list[tuple[bool, str]]] = [[] for _ in range(count)]
        if self.seed_count == 1:
            # The very same arrays: whoever reads or writes them sees the one race.
            self.alive, self.diverged, self.stopped = first.alive, first.diverged, first.stopped
            self.best_val, self.best_val_step = first.best_val, first.best_val_step
            self.wall_s = first.wall_s
        else:
            self.alive = np.ones(count, dtype=bool)
            self.diverged = [None] * count
            self.stopped = [None] * count
            self.best_val = np.full(count, np.inf)
            self.best_val_step = np.zeros(count, dtype=int)
            self.wall_s = np.zeros(count)
        self._step = 0
        self._last_evaluation: Evaluation | None = None
        self._last = {name: np.zeros(count) for name in ("loss", "lr", "grad", "loss_std")}
        self._started = time.perf_counter()

    # Seed 0's pieces, for the code that looks inside one race (landscape, bench, tests).
    @property
    def models(self) -> list[nn.Module]:
        return self.seed_races[0].models

    @property
    def stack(self) -> StackedMLP | None:
        return self.seed_races[0].stack

    @property
    def optimizers(self):
        return self.seed_races[0].optimizers

    @property
    def schedules(self):
        return self.seed_races[0].schedules

    @property
    def order(self) -> BatchOrder:
        return self.seed_races[0].order

    @property
    def has_dropout(self) -> bool:
        return self.seed_races[0].has_dropout

    @property
    def step(self) -> int:
        return self.seed_races[0].step if self.seed_count == 1 else self._step

    @property
    def last_evaluation(self) -> Evaluation | None:
        if self.seed_count == 1:
            return self.seed_races[0].last_evaluation
        return self._last_evaluation

    def state_dicts(self) -> dict[str, dict]:
        """Seed 0's weights of every run (``weights/<label>.pt``)."""
        return self.seed_races[0].state_dicts()

    def records(self, stop: threading.Event | None = None) -> Iterator[NetworkRecord]:
        if self.seed_count == 1:
            yield from self.seed_races[0].records(stop)
            return
        steps = self.lab.steps
        while True:
            if stop is not None and stop.is_set():
                return
            active = []
            for race in self.seed_races:
                race.alive &= self.alive  # a run pruned from outside stops on every seed
                if race.alive.any():
                    active.append(race)
            if not active:
                return
            diverged = [race.train_phase() for race in active]
            evaluate = (active[0].scheduled_evaluation() or any(diverged))
            seed_records = [(race.seed_index, race.finish_phase(evaluate)) for race in active]
            yield self._combine(seed_records)
            if self._step >= steps or not self.alive.any():
                return
            self._step += 1
            for race in active:
                race.step += 1

    # -- combining the seeds -----------------------------------------------------------------

    def _combine(self, seed_records: list[tuple[int, NetworkRecord]]) -> NetworkRecord:
        """One record of per-run means/stds over the seeds whose run is alive in their record."""
        count = len(self.runs)
        first = seed_records[0][1]
        owned = np.stack([rec.alive for _, rec in seed_records])  # (S_active, R)
        record_alive = owned.any(axis=0)
        seeds_alive = owned.sum(axis=0)

        def stats(values: np.ndarray, previous: tuple | None = None):
            mean, std = _masked_mean_std(values, owned)
            if previous is not None:  # a run no seed owns keeps its last numbers
                mean = np.where(record_alive, mean, previous[0])
                std = np.where(record_alive, std, previous[1])
            return mean, std

        last = self._last
        loss, loss_std = stats(np.stack([rec.loss for _, rec in seed_records]),
                               (last["loss"], last["loss_std"]))
        lr, _ = stats(np.stack([rec.lr for _, rec in seed_records]), (last["lr"], last["lr"]))
        grad, _ = stats(np.stack([rec.grad_norm for _, rec in seed_records]),
                        (last["grad"], last["grad"]))
        self._last = {"loss": loss, "lr": lr, "grad": grad, "loss_std": loss_std}
        seed_loss = np.full((self.seed_count, count), np.nan)
        for (s, rec), mask in zip(seed_records, owned):
            seed_loss[s, mask] = rec.loss[mask]

        evaluation = None
        if first.evaluation is not None:
            evaluation = self._combine_evaluations(
                [rec.evaluation for _, rec in seed_records], owned)
            self._last_evaluation = evaluation
            val_loss = evaluation.val.get("loss")
            if val_loss is not None:
                better = record_alive & (val_loss < self.best_val)
                self.best_val[better] = val_loss[better]
                self.best_val_step[better] = first.step

        # Seed events, then the runs whose last seed ended at this step.
        for s, rec in seed_records:
            name = f"seed {s} (seed {self.lab.seed + SEED_STRIDE * s})"
            for event in rec.diverged:
                self.seed_events.append(replace(event, reason=f"{name}: {event.reason}"))
                self._fates[event.run].append(
                    (True, f"seed {s} diverged at step {event.step} ({event.reason})"))
            for event in rec.stopped:
                self.seed_events.append(EarlyStop(
                    event.run, event.label, event.step, event.best_step, event.best_val_loss,
                    f"{name} stopped early at step {event.step}"))
                self._fates[event.run].append(
                    (False, f"seed {s} stopped early at step {event.step}"))
        was_alive = self.alive.copy()
        self.alive[:] = np.any([race.alive for race in self.seed_races], axis=0)
        self.wall_s[:] = np.sum([race.wall_s for race in self.seed_races], axis=0)
        diverged, stopped = [], []
        for i in np.flatnonzero(was_alive & ~self.alive):
            event = self._run_event(int(i), first.step)
            if event is None:
                continue
            if isinstance(event, Divergence):
                self.diverged[i] = event
                diverged.append(event)
            else:
                self.stopped[i] = event
                stopped.append(event)
        return NetworkRecord(
            step=first.step,
            epoch=first.epoch,
            loss=loss,
            lr=lr,
            grad_norm=grad,
            alive=record_alive,
            wall_time=time.perf_counter() - self._started,
            evaluation=evaluation,
            diverged=tuple(diverged),
            stopped=tuple(stopped),
            loss_std=loss_std,
            seed_loss=seed_loss,
            seeds_alive=seeds_alive,
            sharpness=self._combine_sharpness(seed_records),
        )

    def _combine_sharpness(self, seed_records: list[tuple[int, NetworkRecord]]):
        """Per run: the mean sharpness over the seeds that measured it (None when none did).

        A seed whose run was alive but whose solve did not converge (NaN) makes the run's mean
        NaN too ("not converged"): a mean over the other seeds would pass for a measured value."""
        measured = [rec for _, rec in seed_records if rec.sharpness is not None]
        if not measured:
            return None
        stacked = np.stack([rec.sharpness for rec in measured])
        alive = np.stack([rec.alive for rec in measured])
        finite = np.isfinite(stacked)
        failed = (alive & ~finite).any(axis=0)
        total = np.where(finite, stacked, 0.0).sum(axis=0)
        count = finite.sum(axis=0)
        return np.where((count > 0) & ~failed, total / np.maximum(count, 1), np.nan)

    def _run_event(self, i: int, step: int) -> Divergence | EarlyStop | None:
        """Run i's last seed ended at ``step``: one event naming every seed's fate.

        A divergence of any seed makes the run "diverged"; otherwise it stopped early (with the
        best mean validation loss). A run pruned from outside has no event.
        """
        fates = self._fates[i]
        if not fates:
            return None
        text = f"all {self.seed_count} seeds ended: " + "; ".join(text for _, text in fates)
        label = self.labels[i]
        if any(diverged for diverged, _ in fates):
            return Divergence(i, label, step, text)
        return EarlyStop(i, label, step, int(self.best_val_step[i]), float(self.best_val[i]), text)

    def _combine_evaluations(self, evaluations: list[Evaluation], owned: np.ndarray) -> Evaluation:
        """Means/stds of the metrics and per-layer statistics; pictures from the first seed."""
        anyone = owned.any(axis=0)
        # A run no seed owns (already ended everywhere) is averaged over all seeds evaluated.
        mask = np.where(anyone[None, :], owned, True)

        def split(name: str) -> tuple[dict, dict]:
            means, stds = {}, {}
            for key in getattr(evaluations[0], name):
                values = np.stack([getattr(ev, name)[key] for ev in evaluations])
                means[key], stds[key] = _masked_mean_std(values, mask)
            return means, stds

        train, train_std = split("train")
        val, val_std = split("val")

        def layers(name: str) -> np.ndarray:
            values = np.stack([getattr(ev, name) for ev in evaluations])  # (S, R, L)
            weight = mask[:, :, None].astype(np.float64)
            total = np.where(weight > 0, values, 0.0).sum(axis=0)
            return total / np.maximum(weight.sum(axis=0), 1.0)

        picture = evaluations[0]
        return Evaluation(
            train=train, val=val,
            layer_grad_norm=layers("layer_grad_norm"),
            update_ratio=layers("update_ratio"),
            confusion=picture.confusion, boundary=picture.boundary,
            boundary_class=picture.boundary_class, curve=picture.curve,
            weights=picture.weights, train_std=train_std, val_std=val_std,
        )


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (S, R) ``values``: mean and std (ddof 0) over the rows where ``mask``.

    Columns without a masked row give NaN (callers replace them)."""
    n = mask.sum(axis=0)
    safe = np.maximum(n, 1)
    picked = np.where(mask, values, 0.0)
    mean = picked.sum(axis=0) / safe
    dev = np.where(mask, values - mean[None, :], 0.0)
    std = np.sqrt((dev * dev).sum(axis=0) / safe)
    empty = n == 0
    if empty.any():
        mean = np.where(empty, np.nan, mean)
        std = np.where(empty, np.nan, std)
    return mean, std
