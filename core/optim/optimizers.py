"""The optimizer registry: every first-order optimizer of ``torch.optim`` (plus L-BFGS), described.

Each entry says which torch class it is, which hyperparameters a user may set (as `HyperParam`s
with torch's own defaults and the ranges torch's math allows), and the update rule as text for
the GUI's info panel. A lab file names an optimizer by its lower-case torch class name
(``"sgd"``, ``"adamw"``, ``"nadam"``) and its ``params`` go to the torch constructor unchanged.

Validation (core/optim/catalog.py, from these descriptions) happens before torch sees anything:
everything torch's constructor would reject
(and a few values torch accepts but whose math is nonsense, such as SGD dampening above 1 or
RMSprop alpha above 1, which make the update flip sign or take the square root of a negative
number) is refused with a `LabError` that names the field and the allowed range.

What is exposed: the numeric and boolean hyperparameters of the math. What is not: torch's
implementation switches (``foreach``, ``fused``, ``capturable``, ``differentiable``), which change
speed, not results. Left out on purpose:

* ``SparseAdam`` — it only works with sparse gradients, which no problem here produces.
* Muon's ``ns_coefficients`` — the three tuned Newton–Schulz polynomial coefficients; changing
  them breaks the orthogonalisation rather than teaching anything, and there is no editor for
  a triple.

Two value mappings between lab files and torch (done by `HyperParam.to_torch`):

* L-BFGS ``line_search_fn``: the choice ``"none"`` is passed to torch as ``None`` (a fixed step of
  ``lr``); ``"strong_wolfe"`` is passed as is.
* Muon ``adjust_lr_fn``: torch's default ``None`` means ``"original"`` (its documentation says so);
  we show and store ``"original"`` explicitly, and pass it explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from core.errors import LabError
from core.optim.hyperparams import HyperParam, format_number

# --------------------------------------------------------------------------------------------
# Hyperparameters shared by many optimizers (same meaning, different defaults).


def _lr(default: float) -> HyperParam:
    return HyperParam(
        "lr", default, "float", low=0.0, log=True, search=(1e-5, 1.0),
        tooltip="Learning rate γ: how far each update moves the parameters.",
    )


def _weight_decay(default: float, decoupled: bool = False) -> HyperParam:
    how = (
        "shrinks the weights by γ·λ each step, separately from the gradient"
        if decoupled
        else "adds λ·θ to the gradient (an L2 penalty) to pull the weights towards 0"
    )
    return HyperParam(
        "weight_decay", default, "float", low=0.0, log=True, search=(1e-6, 1e-1),
        tooltip=f"Weight decay λ: {how}.",
    )


def _eps(default: float) -> HyperParam:
    return HyperParam(
        "eps", default, "float", low=0.0, log=True, search=(1e-10, 1e-4),
        tooltip="ε, added to the denominator so the step stays finite where the gradient history is tiny.",
    )


def _betas(default: tuple[float, float] = (0.9, 0.999)) -> HyperParam:
    return HyperParam(
        "betas", default, "pair", low=0.0, high=1.0, high_inclusive=False,
        tooltip="(β₁, β₂): how slowly the running averages of the gradient and of its square forget the past.",
    )


def _maximize() -> HyperParam:
    return HyperParam(
        "maximize", False, "bool",
        tooltip="Climb instead of descend: follow +gradient to find a maximum.",
    )


def _amsgrad() -> HyperParam:
    return HyperParam(
        "amsgrad", False, "bool",
        tooltip="AMSGrad: divide by the largest second-moment estimate seen so far, so the step can only shrink.",
    )


def _decoupled_weight_decay() -> HyperParam:
    return HyperParam(
        "decoupled_weight_decay", False, "bool",
        tooltip="Apply weight decay directly to the weights (AdamW style) instead of adding it to the gradient.",
    )


# --------------------------------------------------------------------------------------------
# Cross-parameter checks: constraints between values, checked on defaults + given values so
# that e.g. {"nesterov": true} alone (momentum defaults to 0) is refused too.


def _check_sgd(values: Mapping, field: str) -> None:
    if values["nesterov"] and (values["momentum"] <= 0 or values["dampening"] != 0):
        raise LabError(
            f"{field}.nesterov",
            "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum "
            f"{format_number(values['momentum'])} and dampening "
            f"{format_number(values['dampening'])}",
        )


def _check_rprop(values: Mapping, field: str) -> None:
    eta_minus, eta_plus = values["etas"]
    if not (eta_minus < 1.0 < eta_plus):
        raise LabError(
            f"{field}.etas",
            "must be (η₋, η₊) with 0 < η₋ < 1 < η₊ (shrink on a sign flip, grow otherwise), "
            f"got ({format_number(eta_minus)}, {format_number(eta_plus)})",
        )
    smallest, largest = values["step_sizes"]
    if smallest > largest:
        raise LabError(
            f"{field}.step_sizes",
            "must be (minimum, maximum) with minimum <= maximum, "
            f"got ({format_number(smallest)}, {format_number(largest)})",
        )


# --------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class OptimizerInfo:
    """One optimizer: its torch class, its hyperparameters and its update rule as text."""

    name: str
    cls: type[torch.optim.Optimizer]
    title: str
    hyperparams: tuple[HyperParam, ...]
    update_rule: str
    needs_closure: bool = False
    min_param_ndim: int = 0
    description: str = ""
    # Where it comes from: "torch.optim", "pytorch-optimizer", "schedule-free" or "yours" (the
    # picker's groups), and in words which version or file ("pytorch-optimizer 4.1.0").
    group: str = "torch.optim"
    origin: str = ""
    # Adapters a training loop applies (core/engine/training_step.py): Schedule-Free keeps two
    # points and must be told train()/eval(); AdaHessian/Sophia-H differentiate the gradient.
    train_eval: bool = False
    create_graph: bool = False
    # A check of the values together (e.g. SGD's nesterov needs momentum); None when there is none.
    check: Callable[[Mapping, str], None] | None = None
    # How to construct it from (tensors, torch kwargs) when ``cls(tensors, **kwargs)`` is not
    # enough (a wrapper such as SAM gets its base optimizer's class); None: ``cls`` itself.
    build: Callable[[list, dict], torch.optim.Optimizer] | None = None

    def defaults(self) -> dict:
        """The hyperparameters that have a fixed default (derived ones, default None, left out)."""
        return {hp.name: hp.default for hp in self.hyperparams if hp.default is not None}

    def hyperparam(self, name: str) -> HyperParam:
        for hp in self.hyperparams:
            if hp.name == name:
                return hp
        raise KeyError(name)

    def torch_kwargs(self, params: Mapping) -> dict:
        """Validated params as torch's constructor takes them (``"none"`` choices → ``None``)."""
        return {key: self.hyperparam(key).to_torch(value) for key, value in params.items()}


_ADAM_RULE_TAIL = """\
m ← β₁·m + (1 − β₁)·g
v ← β₂·v + (1 − β₂)·g²
m̂ ← m / (1 − β₁ᵗ)
v̂ ← v / (1 − β₂ᵗ)          (amsgrad: v̂ ← max(v̂_max, v̂))
θ ← θ − γ·m̂ / (√v̂ + ε)"""

_INFOS: list[OptimizerInfo] = [
    OptimizerInfo(
        name="sgd",
        check=_check_sgd,
        cls=torch.optim.SGD,
        title="SGD",
        description="Stochastic gradient descent, optionally with (Nesterov) momentum.",
        hyperparams=(
            _lr(1e-3),
            HyperParam(
                "momentum", 0.0, "float", low=0.0, search=(0.0, 0.99),
                tooltip="Momentum μ: the fraction of the previous step's velocity kept, so steps build up speed along consistent directions.",
            ),
            HyperParam(
                "dampening", 0.0, "float", low=0.0, high=1.0,
                tooltip="Dampening τ: scales the new gradient by (1 − τ) before it joins the momentum buffer.",
            ),
            _weight_decay(0.0),
            HyperParam(
                "nesterov", False, "bool",
                tooltip="Nesterov momentum: take the gradient step plus a look-ahead along the velocity (needs momentum > 0, dampening 0).",
            ),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ·θ
if μ ≠ 0:
    b ← μ·b + (1 − τ)·g        (b ← g on the first step)
    g ← g + μ·b  if nesterov,  else  g ← b
θ ← θ − γ·g""",
    ),
    OptimizerInfo(
        name="adagrad",
        cls=torch.optim.Adagrad,
        title="Adagrad",
        description="Per-coordinate steps that shrink with the sum of all squared gradients seen so far.",
        hyperparams=(
            _lr(1e-2),
            HyperParam(
                "lr_decay", 0.0, "float", low=0.0, log=True, search=(1e-6, 1e-1),
                tooltip="Learning-rate decay η: the step size is γ / (1 + (t − 1)·η) at step t.",
            ),
            _weight_decay(0.0),
            HyperParam(
                "initial_accumulator_value", 0.0, "float", low=0.0, search=(0.0, 1.0),
                tooltip="Starting value of the sum of squared gradients; larger values make the first steps smaller.",
            ),
            _eps(1e-10),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ·θ
γ̃ ← γ / (1 + (t − 1)·η)
s ← s + g²                  (s starts at initial_accumulator_value)
θ ← θ − γ̃·g / (√s + ε)""",
    ),
    OptimizerInfo(
        name="adadelta",
        cls=torch.optim.Adadelta,
        title="Adadelta",
        description="Adagrad with decaying averages, scaled by the size of recent updates.",
        hyperparams=(
            _lr(1.0),
            HyperParam(
                "rho", 0.9, "float", low=0.0, high=1.0, search=(0.5, 0.999),
                tooltip="ρ: how slowly the running averages of squared gradients and squared updates forget the past.",
            ),
            _eps(1e-6),
            _weight_decay(0.0),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ·θ
v ← ρ·v + (1 − ρ)·g²
Δ ← √(u + ε) / √(v + ε) · g
u ← ρ·u + (1 − ρ)·Δ²
θ ← θ − γ·Δ""",
    ),
    OptimizerInfo(
        name="rmsprop",
        cls=torch.optim.RMSprop,
        title="RMSprop",
        description="Divide each step by a running root-mean-square of recent gradients.",
        hyperparams=(
            _lr(1e-2),
            HyperParam(
                "alpha", 0.99, "float", low=0.0, high=1.0, search=(0.8, 0.999),
                tooltip="Smoothing constant α: how slowly the running average of squared gradients forgets the past.",
            ),
            _eps(1e-8),
            _weight_decay(0.0),
            HyperParam(
                "momentum", 0.0, "float", low=0.0, search=(0.0, 0.99),
                tooltip="Momentum μ applied to the normalised step.",
            ),
            HyperParam(
                "centered", False, "bool",
                tooltip="Normalise by the variance of the gradient (subtract the squared mean) instead of its raw second moment.",
            ),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ·θ
v ← α·v + (1 − α)·g²
ṽ ← v − m²,  m ← α·m + (1 − α)·g   if centered,  else  ṽ ← v
if μ > 0:  b ← μ·b + g / (√ṽ + ε);   θ ← θ − γ·b
else:      θ ← θ − γ·g / (√ṽ + ε)""",
    ),
    OptimizerInfo(
        name="adam",
        cls=torch.optim.Adam,
        title="Adam",
        description="Momentum plus per-coordinate scaling by the running RMS of the gradient, bias-corrected.",
        hyperparams=(
            _lr(1e-3),
            _betas(),
            _eps(1e-8),
            _weight_decay(0.0),
            _amsgrad(),
            _maximize(),
            _decoupled_weight_decay(),
        ),
        update_rule="g ← ∇f(θ) + λ·θ         (decoupled_weight_decay: θ ← θ − γ·λ·θ instead)\n"
        + _ADAM_RULE_TAIL,
    ),
    OptimizerInfo(
        name="adamw",
        cls=torch.optim.AdamW,
        title="AdamW",
        description="Adam with decoupled weight decay: the decay shrinks the weights, not the gradient.",
        hyperparams=(
            _lr(1e-3),
            _betas(),
            _eps(1e-8),
            _weight_decay(1e-2, decoupled=True),
            _amsgrad(),
            _maximize(),
        ),
        update_rule="θ ← θ − γ·λ·θ\ng ← ∇f(θ)\n" + _ADAM_RULE_TAIL,
    ),
    OptimizerInfo(
        name="adamax",
        cls=torch.optim.Adamax,
        title="Adamax",
        description="Adam with the infinity norm: divide by the largest recent gradient size.",
        hyperparams=(_lr(2e-3), _betas(), _eps(1e-8), _weight_decay(0.0), _maximize()),
        update_rule="""\
g ← ∇f(θ) + λ·θ
m ← β₁·m + (1 − β₁)·g
u ← max(β₂·u, |g| + ε)
θ ← θ − γ·m / ((1 − β₁ᵗ)·u)""",
    ),
    OptimizerInfo(
        name="nadam",
        cls=torch.optim.NAdam,
        title="NAdam",
        description="Adam with Nesterov momentum: the step looks ahead along the momentum.",
        hyperparams=(
            _lr(2e-3),
            _betas(),
            _eps(1e-8),
            _weight_decay(0.0),
            HyperParam(
                "momentum_decay", 4e-3, "float", low=0.0, log=True, search=(1e-4, 1e-1),
                tooltip="ψ: how fast the momentum schedule μₜ = β₁·(1 − ½·0.96^(t·ψ)) warms up towards β₁.",
            ),
            _decoupled_weight_decay(),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ·θ         (decoupled_weight_decay: θ ← θ − γ·λ·θ instead)
μₜ ← β₁·(1 − ½·0.96^(t·ψ))
m ← β₁·m + (1 − β₁)·g
v ← β₂·v + (1 − β₂)·g²
m̂ ← μₜ₊₁·m / (1 − μ₁⋯μₜ₊₁) + (1 − μₜ)·g / (1 − μ₁⋯μₜ)
v̂ ← v / (1 − β₂ᵗ)
θ ← θ − γ·m̂ / (√v̂ + ε)""",
    ),
    OptimizerInfo(
        name="radam",
        cls=torch.optim.RAdam,
        title="RAdam",
        description="Rectified Adam: plain momentum steps until the variance estimate is reliable.",
        hyperparams=(
            _lr(1e-3),
            _betas(),
            _eps(1e-8),
            _weight_decay(0.0),
            _decoupled_weight_decay(),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ·θ         (decoupled_weight_decay: θ ← θ − γ·λ·θ instead)
m ← β₁·m + (1 − β₁)·g
v ← β₂·v + (1 − β₂)·g²
m̂ ← m / (1 − β₁ᵗ)
ρ∞ ← 2/(1 − β₂) − 1;   ρₜ ← ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
if ρₜ > 5:  r ← √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ))
            θ ← θ − γ·m̂·r·√(1 − β₂ᵗ) / (√v + ε)
else:       θ ← θ − γ·m̂""",
    ),
    OptimizerInfo(
        name="asgd",
        cls=torch.optim.ASGD,
        title="ASGD",
        description="Averaged SGD: decaying steps, plus a running average of the iterates.",
        hyperparams=(
            _lr(1e-2),
            HyperParam(
                "lambd", 1e-4, "float", low=0.0, log=True, search=(1e-6, 1e-2),
                tooltip="Decay term λ: shrinks the weights each step and slows the step-size decay.",
            ),
            HyperParam(
                # Capped at 1: beyond it the decay is faster than 1/t (steps too short to
                # converge) and torch's float power (1 + λγt)^α overflows into an exception.
                "alpha", 0.75, "float", low=0.0, high=1.0, search=(0.5, 1.0),
                tooltip="Power α of the step-size decay η = γ / (1 + λ·γ·t)^α.",
            ),
            HyperParam(
                "t0", 1e6, "float", low=0.0, log=True, search=(1.0, 1e6),
                tooltip="The step at which averaging of the iterates starts.",
            ),
            _weight_decay(0.0),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ) + λ_wd·θ
θ ← θ·(1 − λ·η) − η·g
θ̄ ← θ̄ + μ·(θ − θ̄)           (the averaged iterate)
η ← γ / (1 + λ·γ·t)^α
μ ← 1 / max(1, t − t₀)""",
    ),
    OptimizerInfo(
        name="rprop",
        check=_check_rprop,
        cls=torch.optim.Rprop,
        title="Rprop",
        description="Resilient backprop: only the gradient's sign counts; each coordinate adapts its own step size.",
        hyperparams=(
            _lr(1e-2),
            HyperParam(
                "etas", (0.5, 1.2), "pair", low=0.0, low_inclusive=False,
                tooltip="(η₋, η₊): shrink the step by η₋ < 1 when the gradient flips sign, grow it by η₊ > 1 when it keeps its sign.",
            ),
            HyperParam(
                "step_sizes", (1e-6, 50.0), "pair", low=0.0,
                tooltip="(minimum, maximum) allowed step size per coordinate.",
            ),
            _maximize(),
        ),
        update_rule="""\
s ← sign(gₜ·gₜ₋₁)                 (per coordinate)
η ← η₊ if s > 0,  η₋ if s < 0,  1 otherwise
Δ ← clamp(η·Δ, Δ_min, Δ_max)       (Δ starts at γ)
g ← 0 where s < 0                  (no step right after a sign flip)
θ ← θ − sign(g)·Δ""",
    ),
    OptimizerInfo(
        name="adafactor",
        cls=torch.optim.Adafactor,
        title="Adafactor",
        description="Memory-light Adam relative: factored second moments and steps relative to the weights' size.",
        hyperparams=(
            _lr(1e-2),
            HyperParam(
                "beta2_decay", -0.8, "float", high=0.0, search=(-1.0, -0.5),
                tooltip="Exponent c of the second-moment decay β₂ₜ = 1 − t^c; closer to 0 forgets faster.",
            ),
            HyperParam(
                "eps", (None, 1e-3), "pair", low=0.0,
                tooltip="(ε₁, ε₂): ε₁ keeps the division finite (null = the dtype's machine epsilon), ε₂ is the smallest weight scale used for the step.",
            ),
            HyperParam(
                "d", 1.0, "float", low=1.0, search=(1.0, 10.0),
                tooltip="Clipping threshold d: updates whose RMS exceeds d are scaled down to d.",
            ),
            _weight_decay(0.0, decoupled=True),
            _maximize(),
        ),
        update_rule="""\
g ← ∇f(θ)
β₂ₜ ← 1 − t^c;   ρₜ ← min(γ, 1/√t);   αₜ ← max(ε₂, RMS(θ))·ρₜ
θ ← θ − γ·λ·θ
matrix:  R ← β₂ₜ·R + (1 − β₂ₜ)·rowsums(g²);   C ← β₂ₜ·C + (1 − β₂ₜ)·colsums(g²)
         v ← R·C / max(ΣR, ε₁)
vector:  v ← β₂ₜ·v + (1 − β₂ₜ)·g²
u ← g / max(√v, ε₁);   û ← u / max(1, RMS(u)/d)
θ ← θ − αₜ·û""",
    ),
    OptimizerInfo(
        name="muon",
        cls=torch.optim.Muon,
        title="Muon",
        description="Momentum whose update matrix is orthogonalised (Newton–Schulz); for 2-D weight matrices only.",
        min_param_ndim=2,
        hyperparams=(
            _lr(1e-3),
            _weight_decay(0.1, decoupled=True),
            HyperParam(
                "momentum", 0.95, "float", low=0.0, search=(0.8, 0.99),
                tooltip="Momentum μ: the fraction of the previous momentum buffer kept each step.",
            ),
            HyperParam(
                "nesterov", True, "bool",
                tooltip="Nesterov momentum: orthogonalise g + μ·B (a look-ahead) instead of the buffer B.",
            ),
            HyperParam(
                "eps", 1e-7, "float", low=0.0, log=True, search=(1e-10, 1e-4),
                tooltip="ε: the smallest norm the update is divided by before orthogonalising.",
            ),
            HyperParam(
                "ns_steps", 5, "int", low=1, high=99, search=(1, 10),
                tooltip="Number of Newton–Schulz iterations that orthogonalise the update (torch allows fewer than 100).",
            ),
            HyperParam(
                "adjust_lr_fn", "original", "choice", choices=("original", "match_rms_adamw"),
                tooltip="How γ is rescaled for the matrix shape: 'original' (√max(1, rows/cols)) or 'match_rms_adamw' (0.2·√max(rows, cols)).",
            ),
        ),
        update_rule="""\
g ← ∇f(θ)                   (θ a 2-D weight matrix)
B ← μ·B + g
B̃ ← g + μ·B  if nesterov,  else  B̃ ← B
O ← NewtonSchulz(B̃)          (≈ the nearest orthogonal matrix)
θ ← θ − γ·λ·θ
θ ← θ − γ̃·O                  (γ̃ = γ rescaled for the matrix shape)""",
    ),
    OptimizerInfo(
        name="lbfgs",
        cls=torch.optim.LBFGS,
        title="L-BFGS",
        description="Quasi-Newton: approximates the inverse Hessian from recent steps; several evaluations per step.",
        needs_closure=True,
        hyperparams=(
            HyperParam(
                "lr", 1.0, "float", low=0.0, log=True, search=(1e-3, 1.0),
                tooltip="Learning rate γ: the step length along the quasi-Newton direction (ignored by the strong-Wolfe line search's own choice).",
            ),
            HyperParam(
                "max_iter", 20, "int", low=1, search=(1, 50),
                tooltip="Maximum inner iterations per optimizer step.",
            ),
            HyperParam(
                "max_eval", None, "int", low=1, search=(1, 100),
                derived="max_iter × 5/4 (torch's own default)",
                tooltip="Maximum function evaluations per optimizer step (null = max_iter × 5/4).",
            ),
            HyperParam(
                "tolerance_grad", 1e-7, "float", low=0.0, log=True, search=(1e-10, 1e-3),
                tooltip="Stop the inner iterations once the largest gradient component is this small.",
            ),
            HyperParam(
                "tolerance_change", 1e-9, "float", low=0.0, log=True, search=(1e-12, 1e-4),
                tooltip="Stop the inner iterations once the step or the change in loss is this small.",
            ),
            HyperParam(
                "history_size", 100, "int", low=1, search=(1, 100),
                tooltip="How many recent (step, gradient change) pairs build the inverse-Hessian estimate.",
            ),
            HyperParam(
                "line_search_fn", "none", "choice", choices=("none", "strong_wolfe"),
                tooltip="'none' takes a fixed step of γ; 'strong_wolfe' searches along the direction for a step that lowers the loss enough.",
            ),
        ),
        update_rule="""\
each step: up to max_iter iterations of
    g ← ∇f(θ);   stop if max|g| ≤ tolerance_grad
    d ← −H·g          (H ≈ inverse Hessian from the last history_size pairs (s, y))
    t ← γ  (first iteration: γ·min(1, 1/Σ|g|)),  or a strong-Wolfe line search
    θ ← θ + t·d;   stop if |t·d| or the change in f ≤ tolerance_change""",
    ),
]

OPTIMIZERS: dict[str, OptimizerInfo] = {info.name: info for info in _INFOS}


def unprofiled_step(optimizer: torch.optim.Optimizer) -> Callable[..., object]:
    """``optimizer.step`` minus torch's per-call profiler wrapper, for tiny parameters.

    torch wraps every ``Optimizer.step`` in ``record_function`` (a torch.profiler annotation)
    plus a walk over the step hooks; for a 2-D race's 2-element point that wrapper measured
    about 15 % of the engine's time. The returned callable runs the class's own ``step`` (still
    under torch's no-grad guard, same update rule, same state) and tells a learning-rate
    scheduler the step happened, as torch's scheduler wrapper would. When any step hook is
    registered (here or globally) it returns the wrapped ``optimizer.step`` so hooks still run.
    """
    from torch.optim import optimizer as torch_optimizer  # the hook registries live there

    step = type(optimizer).step
    inner = getattr(step, "__wrapped__", None) if getattr(step, "hooked", False) else None
    global_hooks = (getattr(torch_optimizer, "_global_optimizer_pre_hooks", None),
                    getattr(torch_optimizer, "_global_optimizer_post_hooks", None))
    if inner is None or None in global_hooks:
        return optimizer.step

    def step_without_profiler(closure=None):
        if (optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or global_hooks[0] or global_hooks[1]):
            return optimizer.step(closure)
        optimizer._opt_called = True  # what torch's lr_scheduler wrapper records
        return inner(optimizer) if closure is None else inner(optimizer, closure)

    return step_without_profiler
