"""Side-by-side training of R copies of one MLP in a single batched forward and backward pass.

The fast path of the network engine for the common race: several runs of the same multilayer
perceptron (linear layers and element-wise activations). All runs' parameters live in ONE
``(R, P)`` tensor. Each run's nn.Linear weights and biases are re-bound as views into its row, so
evaluation, state_dict and the per-layer statistics keep working on ordinary modules; each run's
torch.optim optimizer steps ONE flat parameter, the view of its row (one tensor per step instead
of one per layer: a large share of a small network's step time is per-tensor Python overhead).

Training computes every run at once: ``baddbmm`` over the stacked weights, a per-sample loss of
shape ``(R, B)``, and one ``backward`` of the sum — the gradient of a sum of independent losses is
each run's own gradient. Each layer's stacked weight and bias are autograd leaves made once
(views of ``flat``) whose ``.grad`` are views of ``grad``, so backward writes straight into the
runs' gradient rows. ``baddbmm(b, h, Wᵀ)`` per run is nn.Linear's ``addmm`` (measured
bit-identical, forward and backward); the per-run loss mean and bias-gradient sums round
differently in the last bit, so the result equals separate models to float32 rounding; tests
compare with a plain PyTorch script.

Only optimizers whose update is element-wise see the flat row (the same numbers as per-layer
tensors): torch's listed in `ELEMENTWISE_OPTIMIZERS`, and a zoo or user class only when
`steps_flat`'s check finds its update of one flat tensor equal to its updates of the layers'
tensors. Any other optimizer — Muon and Adafactor, which work per weight matrix, LAMB's
per-tensor trust ratio, SOAP's preconditioners — steps the run's own layer parameters (the views
of its row), exactly the tensors it would get on the per-run path, with a matrix optimizer's split
(core/engine/training_step.py `optimizers_for`). An optimizer that re-evaluates the model in its
step (L-BFGS, SAM: a closure) or differentiates the gradient again (``create_graph``: Sophia-H)
needs the run's own graph, so races with one use the per-run path. An optimizer that rebinds
``p.data`` instead of writing into it is put back onto its row after each step.

Stepping (`StackedMLP.use_optimizers`, `StackedMLP.step`). Each run keeps its own real
torch.optim optimizer (``race.optimizers[i]``: what its schedule drives, what ``state_dict`` and
the lr column read). But stepping 8 small optimizers one by one pays ``Optimizer.step``'s
per-call overhead (profiler record_function, hooks, grad mode, defaults lookups) 8 times, which
was ~40% of a 2-16-16-2 MLP's step. So the stack builds ONE optimizer of the same torch class per
optimizer type whose param_groups ARE the runs' own group dicts (the same dict objects, so a
scheduler writing a run's ``lr`` — or OneCycle's betas — changes that run only) and whose
per-parameter state dicts ARE the runs' own (so each run's optimizer still holds its moments).
torch steps param_groups independently, so the numbers equal one optimizer per run. A frozen run
(diverged, stopped early, pruned) gets ``grad = None`` and torch skips it: its weights and state
stay exactly as they were, and the other runs' numbers do not change. Only torch's own classes
are grouped so: any other class (a user's, a zoo optimizer) steps each run with the run's own
optimizer, so a step that raises or runs over the time limit (core/engine/faults.py) is that
run's fault alone; `StackedMLP.step` returns the runs whose step faulted, and the others' steps
go on. (A grouped step of torch's own that raises, e.g. out of memory, faults its members.)

Adam, AdamW, SGD and Adagrad use torch's fused CPU kernel (``fused=True``): one kernel per run
instead of ~10 element-wise ops. It is torch's own implementation of the same update, but not
bit-identical to the default single-tensor loop (float32 rounding differs in the last bit, which
a long chaotic run can amplify, exactly like bmm vs addmm above); tests hold it to 1e-6 of a plain
PyTorch script over their runs. The others run torch's single-tensor loop (``foreach=False``,
torch's own CPU default), which measured faster than foreach for one tensor per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.engine import faults
from core.engine.faults import Fault, StepLimit, fault_of
from core.optim.global_rng import forked_global_rng
from core.problems.metrics import WeightedCrossEntropy

# Optimizers whose update treats every parameter entry on its own (or, like weight decay,
# uniformly), so one flat tensor per run gives exactly the per-layer result.
ELEMENTWISE_OPTIMIZERS = frozenset(
    {"sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "adamax", "nadam", "radam",
     "asgd", "rprop"}
)

# Optimizer classes whose fused CPU kernel the grouped step uses (module docstring).
FUSED_ON_CPU = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad)


@dataclass(frozen=True)
class _LinearSlot:
    index: int  # position in the nn.Sequential
    out_features: int
    in_features: int
    weight_offset: int
    bias_offset: int | None


# The flat-row check (`steps_flat`): tensors of a small MLP's shapes with different scales, and
# enough steps for an optimizer's periodic work (a Hessian or preconditioner refresh) to show.
_PROBE_SHAPES = ((5, 3), (5,), (2, 5), (2,))
_PROBE_SCALES = (1.0, 0.01, 10.0, 0.1)
_PROBE_STEPS = 12
_flat_verdicts: dict[tuple, bool] = {}


def steps_flat(name: str, params: Mapping) -> bool:
    """Whether optimizer ``name`` with ``params`` may step a run's flat row instead of its layers.

    torch's element-wise optimizers may (module docstring). A zoo or user class may when, on
    tensors of different shapes and scales with the gradients the same, one optimizer over
    their concatenation gives their updates (to float32 rounding, rtol 1e-5) for
    ``_PROBE_STEPS`` steps: an update that reads a tensor's shape or norm (Adafactor, LAMB,
    SOAP, Muon) does not. Its code runs here as it would in the race (consented to or shipped);
    an exception means "no". The verdict is kept per class and hyperparameters."""
    if name in ELEMENTWISE_OPTIMIZERS:
        return True
    from core.optim.catalog import build_optimizer, get_optimizer_info
    from core.optim.optimizers import OPTIMIZERS

    if name in OPTIMIZERS:
        return False
    info = get_optimizer_info(name)
    if info.needs_closure or info.create_graph or info.min_param_ndim:
        return False
    key = (info.cls, name, repr(sorted(params.items())))
    if key not in _flat_verdicts:
        def make(tensors):
            return build_optimizer(name, params, tensors)

        _flat_verdicts[key] = _same_update_flat(make, info.train_eval)
    return _flat_verdicts[key]


def _same_update_flat(make, train_eval: bool) -> bool:
    generator = torch.Generator().manual_seed(0)

    def draw(scale_by):
        return [scale * torch.randn(shape, generator=generator)
                for shape, scale in zip(_PROBE_SHAPES, scale_by)]

    with forked_global_rng():  # a Hessian estimate may draw from it
        try:
            layers = [nn.Parameter(t) for t in draw(_PROBE_SCALES)]
            flat = nn.Parameter(torch.cat([t.detach().reshape(-1) for t in layers]))
            by_layer, whole = make(layers), make([flat])
            for _ in range(_PROBE_STEPS):
                grads = draw(_PROBE_SCALES[::-1])
                for param, grad in zip(layers, grads):
                    param.grad = grad
                flat.grad = torch.cat([g.reshape(-1) for g in grads])
                for opt in (by_layer, whole):
                    if train_eval:
                        opt.train()
                    opt.step()
                    if train_eval:
                        opt.eval()
                joined = torch.cat([t.detach().reshape(-1) for t in layers])
                if not torch.allclose(joined, flat.detach(), rtol=1e-5, atol=1e-8):
                    return False
        except Exception:
            return False
    return bool(torch.isfinite(flat).all())


def can_stack(model: nn.Sequential, optimizers: list[str]) -> bool:
    """True when every layer is Linear or an element-wise activation and no optimizer needs a
    closure or a ``create_graph`` backward (see the module docstring)."""
    from core.optim.catalog import get_optimizer_info

    for name in optimizers:
        if name in ELEMENTWISE_OPTIMIZERS:
            continue
        info = get_optimizer_info(name)
        if info.needs_closure or info.create_graph:
            return False
    if not isinstance(model, nn.Sequential):
        return False
    for layer in model:
        if isinstance(layer, (nn.Linear, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU,
                              nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Flatten)):
            continue
        return False
    return any(isinstance(layer, nn.Linear) for layer in model)


def per_run_reason(model: nn.Module, runs) -> str | None:
    """Why a race of this model and these runs (`RunSpec`) trains one model at a time, in words
    (None when it may take the batched path): a single run, or the first optimizer or layer
    that rules it out. SeedRace keeps it as ``per_run_reason`` (the bench and tests read it)."""
    optimizers = [run.optimizer for run in runs]
    if len(optimizers) < 2:
        return "a single run"
    if can_stack(model, optimizers):
        return None
    from core.optim.catalog import get_optimizer_info

    for name in optimizers:
        if name not in ELEMENTWISE_OPTIMIZERS:
            info = get_optimizer_info(name)
            if info.needs_closure or info.create_graph:
                return f"optimizer {name} re-evaluates the model or its gradient (its own graph)"
    for index, layer in enumerate(model if isinstance(model, nn.Sequential) else ()):
        if isinstance(layer, nn.RNNBase):
            return (f"layer {index} ({type(layer).__name__}) is recurrent: its time loop is "
                    "torch's own kernel per model, not a batched matrix product")
        if not isinstance(layer, (nn.Linear, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU,
                                  nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Flatten)):
            return f"layer {index} ({type(layer).__name__}) is not a linear layer or activation"
    return "the model is not a multilayer perceptron"


class _LayerStepper:
    """Steps one run's optimizers over its layer parameters (views of its flat row): their
    gradients are pointed at the views of its gradient row first (the per-run fallback after a
    batched out-of-memory leaves fresh tensors there), and a parameter an optimizer rebound
    (``p.data = ...``) is copied back onto its row and re-bound to it."""

    def __init__(self, optimizers: list[torch.optim.Optimizer],
                 layers: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]]):
        from core.optim.optimizers import unprofiled_step

        self.optimizers = optimizers
        self.layers = layers
        # Without torch's per-call profiler wrapper: a small run's step is mostly overhead.
        self.steps = [unprofiled_step(opt) for opt in optimizers]

    def step(self) -> None:
        for param, _view, grad in self.layers:
            param.grad = grad
        for step in self.steps:
            step()
        for param, view, _grad in self.layers:
            if param.data_ptr() != view.data_ptr():
                with torch.no_grad():
                    view.copy_(param)
                param.data = view


class StackedMLP:
    """R identical-architecture MLPs whose parameters are rows of one tensor."""

    def __init__(self, models: list[nn.Sequential]):
        template = models[0]
        self.models = models
        self.count = len(models)
        slots, offset = [], 0
        for j, layer in enumerate(template):
            if isinstance(layer, nn.Linear):
                w_off = offset
                offset += layer.weight.numel()
                b_off = None
                if layer.bias is not None:
                    b_off = offset
                    offset += layer.bias.numel()
                slots.append(_LinearSlot(j, layer.out_features, layer.in_features, w_off, b_off))
        self.slots = slots
        self._slot_at = {slot.index: slot for slot in slots}
        self.size = offset
        device, dtype = template[slots[0].index].weight.device, template[slots[0].index].weight.dtype
        self.flat = torch.empty(self.count, offset, device=device, dtype=dtype)
        self.grad = torch.zeros_like(self.flat)
        with torch.no_grad():
            for r, model in enumerate(models):
                for slot in slots:
                    layer = model[slot.index]
                    self._weight_view(self.flat[r], slot).copy_(layer.weight)
                    if slot.bias_offset is not None:
                        self._bias_view(self.flat[r], slot).copy_(layer.bias)
        # Re-bind every module's parameters as views into its row (shared storage).
        self.run_params: list[nn.Parameter] = []
        for r, model in enumerate(models):
            row = self.flat[r]
            for slot in slots:
                layer = model[slot.index]
                layer.weight = nn.Parameter(self._weight_view(row, slot))
                if slot.bias_offset is not None:
                    layer.bias = nn.Parameter(self._bias_view(row, slot))
            param = nn.Parameter(row)
            param.grad = self.grad[r]
            self.run_params.append(param)
        self.layers = [layer for layer in template]
        self._grad_rows = list(self.grad)  # each run's gradient view, made once
        # Per linear layer, the stacked weight — transposed, (R, in, out), as bmm takes it — and
        # bias (R, 1, out) as autograd LEAVES sharing storage with ``flat`` (they see every
        # update), made once. Their ``.grad`` are the matching views of ``grad``, so backward
        # accumulates straight into ``grad``: no per-step slicing of a flat leaf, whose backward
        # builds and sums one full (R, P) zero tensor per slice.
        self._leaves: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for slot in slots:
            weight, bias = self._layer_tensors(self.flat, slot)
            weight_grad, bias_grad = self._layer_tensors(self.grad, slot)
            weight = weight.detach().requires_grad_(True)
            weight.grad = weight_grad
            if bias is not None:
                bias = bias.detach().requires_grad_(True)
                bias.grad = bias_grad
            self._leaves.append((weight, bias))
        self._inputs_for: tuple[torch.Tensor, torch.Tensor] | None = None  # (x, x per run)
        self._targets_for: tuple | None = None  # (y, layout, y for every run)
        self._penalties_for: tuple[torch.Tensor, torch.Tensor, bool, bool] | None = None
        self._run_optimizers: list[torch.optim.Optimizer] = []
        self._steppers: list[torch.optim.Optimizer] = []
        self._members: list[list[int]] = []  # the runs each stepper steps
        self.step_limit = StepLimit(None)  # the race's per-step time limit (set by the race)

    @staticmethod
    def _weight_view(row: torch.Tensor, slot: _LinearSlot) -> torch.Tensor:
        n = slot.out_features * slot.in_features
        return row[slot.weight_offset:slot.weight_offset + n].view(slot.out_features,
                                                                    slot.in_features)

    @staticmethod
    def _bias_view(row: torch.Tensor, slot: _LinearSlot) -> torch.Tensor:
        return row[slot.bias_offset:slot.bias_offset + slot.out_features]

    def _layer_tensors(self, flat: torch.Tensor, slot: _LinearSlot):
        """Views of one linear layer in a stacked (R, P) tensor: weight transposed to
        (R, in, out) as bmm takes it, and bias (R, 1, out) or None."""
        n = slot.out_features * slot.in_features
        weight = flat[:, slot.weight_offset:slot.weight_offset + n].view(
            self.count, slot.out_features, slot.in_features).transpose(1, 2)
        bias = None
        if slot.bias_offset is not None:
            bias = flat[:, slot.bias_offset:slot.bias_offset + slot.out_features].unsqueeze(1)
        return weight, bias

    def _forward(self, params, h: torch.Tensor) -> torch.Tensor:
        """The MLP on (R, B, in) inputs with per-layer (weight (R, in, out), bias) ``params``.

        ``baddbmm(bias, h, Wᵀ)`` per run is what nn.Linear's ``addmm`` computes; measured
        bit-identical to separate models, forward and backward."""
        linear = iter(params)
        for j, layer in enumerate(self.layers):
            if j not in self._slot_at:
                if not isinstance(layer, nn.Flatten):
                    h = layer(h)  # element-wise activation: shape does not matter
                continue
            weight, bias = next(linear)
            h = torch.bmm(h, weight) if bias is None else torch.baddbmm(bias, h, weight)
        return h

    def _per_run(self, x: torch.Tensor) -> torch.Tensor:
        """The batch as every run's input (R, B, in), an expanded view; full batch: made once."""
        if self._inputs_for is None or self._inputs_for[0] is not x:
            self._inputs_for = (x, x.flatten(1).unsqueeze(0).expand(self.count, -1, -1))
        return self._inputs_for[1]

    def train_step(self, x, y, criterion, live, l1: torch.Tensor, l2: torch.Tensor):
        """Forward and backward of every run on batch (x, y); fills ``self.grad``.

        Returns per-run data losses (R,) and per-run total gradient norms (R,) as tensors.
        ``live`` (R,) bool (numpy or tensor) selects the runs whose loss enters the backward pass.
        L1/L2 act on the weights (not biases), summed per layer as the per-run path does.
        """
        self.grad.zero_()  # the leaves' .grad views: backward adds into them
        out = self._forward(self._leaves, self._per_run(x))  # (R, B, C)
        count, batch = out.shape[0], out.shape[1]
        weighted = isinstance(criterion, WeightedCrossEntropy)
        if criterion is F.cross_entropy or weighted:
            # Logits as (R, C, B) (a view) with (R, B) targets: torch's log-softmax then runs
            # along the batch; over (R·B, C) rows with C = 2 it took ~3× longer, forward and
            # backward. Same values, bit for bit.
            targets = self._targets(y, "runs")
            per_sample = criterion(out.transpose(1, 2), targets, reduction="none")
            # Class weights: each run's Σ w·ℓ / Σ w, as nn.CrossEntropyLoss(weight=w).
            data_loss = (criterion.batch_mean(per_sample, targets, dim=1) if weighted
                         else per_sample.mean(dim=1))
        else:  # element-wise losses on (R·B, out) rows, as the per-run path sees them
            per_sample = criterion(out.reshape(count * batch, -1), self._targets(y, "rows"),
                                   reduction="none")
            data_loss = per_sample.reshape(count, batch, -1).mean(dim=(1, 2))
        total = data_loss
        use_l1, use_l2 = self._penalties_used(l1, l2)
        if use_l1:
            total = total + l1 * sum(w.abs().sum(dim=(1, 2)) for w, _ in self._leaves)
        if use_l2:
            total = total + l2 * sum((w * w).sum(dim=(1, 2)) for w, _ in self._leaves)
        live = np.asarray(live, dtype=bool)
        objective = total.sum() if live.all() else total[torch.as_tensor(live)].sum()
        # The leaves are strided views of ``flat`` and their grads the same views of ``grad``
        # (on purpose: each run's row stays one tensor for its optimizer); torch would warn
        # that such a grad does not follow its preferred dense layout. Accumulation is the same.
        with torch.autograd.enforce_grad_layout_policy(False):
            objective.backward()
        return data_loss.detach(), torch.linalg.vector_norm(self.grad, dim=1)

    def _targets(self, y: torch.Tensor, layout: str) -> torch.Tensor:
        """``y`` for every run, made once per batch tensor (full batch: once per race):
        ``"runs"`` → (R, B, ...) stacked per run, ``"rows"`` → (R·B, ...) rows."""
        known = self._targets_for
        if known is None or known[0] is not y or known[1] != layout:
            stacked = y.unsqueeze(0).expand(self.count, *y.shape).contiguous()
            self._targets_for = (y, layout, stacked if layout == "runs" else stacked.flatten(0, 1))
        return self._targets_for[2]

    def _penalties_used(self, l1: torch.Tensor, l2: torch.Tensor) -> tuple[bool, bool]:
        """Whether any run has an L1 / L2 penalty; asked once per coefficient tensor."""
        known = self._penalties_for
        if known is None or known[0] is not l1 or known[1] is not l2:
            known = (l1, l2, bool((l1 != 0).any()), bool((l2 != 0).any()))
            self._penalties_for = known
        return known[2], known[3]

    # -- stepping ------------------------------------------------------------------------------

    def use_optimizers(self, optimizers: list[list[torch.optim.Optimizer]]) -> None:
        """Step run r's optimizers ``optimizers[r]``: one of torch's over ``run_params[r]`` through
        one optimizer per torch class that shares its param group and state; optimizers over
        the run's layer parameters one by one (module docstring)."""
        if len(optimizers) != self.count:
            raise ValueError(f"need optimizers for every run ({self.count}), got {len(optimizers)}")
        by_class: dict[type, list[int]] = {}
        layered: list[tuple[int, _LayerStepper]] = []
        for r, opts in enumerate(optimizers):
            params = [p for opt in opts for group in opt.param_groups for p in group["params"]]
            if len(params) == 1 and params[0] is self.run_params[r]:
                by_class.setdefault(type(opts[0]), []).append(r)
                continue
            own = {id(p) for p in self.models[r].parameters()}
            if not params or any(id(p) not in own for p in params):
                raise ValueError(f"run {r}'s optimizers must step its flat parameter or its "
                                 "own layers")
            layered.append((r, _LayerStepper(opts, self._layer_grads(r))))
        cpu = self.flat.device.type == "cpu"
        steppers, stepped = [], []
        for r, stepper in layered:
            steppers.append(stepper)
            stepped.append([r])
        for cls, members in by_class.items():
            if not cls.__module__.startswith("torch.optim"):
                # Not torch's own: each run steps alone, so a fault stays in its run.
                steppers += [_LayerStepper(optimizers[r], [self._row(r)]) for r in members]
                stepped += [[r] for r in members]
                continue
            groups = [optimizers[r][0].param_groups[0] for r in members]
            for group in groups:
                if cpu and cls in FUSED_ON_CPU:
                    group["fused"], group["foreach"] = True, False
                elif cpu:
                    group["foreach"] = False  # torch's CPU default, without asking per step
            stepper = cls(groups)  # the very same dicts: add_param_group keeps them
            for r in members:
                # Share the run's state dict itself (some classes, e.g. Adagrad, fill state at
                # construction; the run's own entry wins), so the run's optimizer sees every step.
                stepper.state[self.run_params[r]] = optimizers[r][0].state[self.run_params[r]]
            steppers.append(stepper)
            stepped.append(members)
        self._run_optimizers = [opts[0] for opts in optimizers]
        self._steppers = steppers
        self._members = stepped

    def step(self, alive) -> dict[int, Fault]:
        """One optimizer step of every run with ``alive[r]``; the others stay exactly as is.

        Returns the runs whose step faulted (raised, or took longer than ``step_limit``; a
        grouped step: each member's share of its time), by run: the caller puts them back and
        freezes them. A stepper whose runs are all frozen is not called."""
        for r, param in enumerate(self.run_params):
            param.grad = self._grad_rows[r] if alive[r] else None  # torch skips grad-less params
        faulted: dict[int, Fault] = {}
        for stepper, members in zip(self._steppers, self._members):
            live = [r for r in members if alive[r]]
            if not live:
                continue
            fault = None
            t0 = faults.clock()
            try:
                stepper.step()
            except Exception as error:  # the fault of these runs only: the others step on
                fault = fault_of(error)
            fault = fault or self.step_limit.check((faults.clock() - t0) / len(live))
            for r in live:
                if fault is not None:
                    faulted[r] = fault
                else:
                    # What torch's scheduler hook would record had opt.step() itself been
                    # called: its "scheduler stepped before the optimizer" check reads it.
                    self._run_optimizers[r]._opt_called = True
        return faulted

    def _row(self, r: int) -> tuple[nn.Parameter, torch.Tensor, torch.Tensor]:
        """Run r's flat parameter with its row of ``flat`` and of ``grad``."""
        return self.run_params[r], self.flat[r], self._grad_rows[r]

    def _layer_grads(self, r: int) -> list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]]:
        """Run r's layer parameters, each with its view of the flat row and of the grad row."""
        pairs = []
        model, flat, grad = self.models[r], self.flat[r], self.grad[r]
        for slot in self.slots:
            layer = model[slot.index]
            pairs.append((layer.weight, self._weight_view(flat, slot), self._weight_view(grad, slot)))
            if slot.bias_offset is not None:
                pairs.append((layer.bias, self._bias_view(flat, slot), self._bias_view(grad, slot)))
        return pairs

    def layer_grad_norms(self, r: int) -> list[float]:
        g = self.grad[r]
        return [float(self._weight_view(g, slot).norm()) for slot in self.slots]

    # -- evaluation ------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Every run's output on the same inputs ``x``: (R, N, out), what run r's ``model(x)``
        gives (the stack holds only linear layers and element-wise activations, so eval and
        train mode agree). The same ``baddbmm`` as training: per run what nn.Linear's ``addmm``
        computes, so it equals the separate models to float32 rounding (tests hold 1e-6)."""
        return self._forward(self._leaves, x.flatten(1).unsqueeze(0).expand(self.count, -1, -1))

    @torch.no_grad()
    def all_layer_grad_norms(self) -> np.ndarray:
        """(R, L) float64: each run's gradient norm per linear layer (`layer_grad_norms` of every
        run in one reduction per layer)."""
        norms = [torch.linalg.vector_norm(self._layer_tensors(self.grad, slot)[0], dim=(1, 2))
                 for slot in self.slots]
        return torch.stack(norms, dim=1).double().cpu().numpy()

    @torch.no_grad()
    def weight_copies(self) -> tuple[tuple[np.ndarray, ...], ...]:
        """Per run, a float32 copy of each linear layer's weight (out, in): one copy of all
        weights, sliced per run and layer (the network diagram's snapshot)."""
        flat = self.flat.detach().float().cpu().numpy().copy()
        return tuple(
            tuple(flat[r, s.weight_offset:s.weight_offset + s.out_features * s.in_features]
                  .reshape(s.out_features, s.in_features) for s in self.slots)
            for r in range(self.count)
        )
