"""Optimizer internals: what one torch.optim update did, read from the optimizer's own state.

For the teaching overlay on the 2-D landscape. Around one ``optimizer.step()`` of a run whose
parameter is the 2-D point θ:

    before = capture(optimizer, param, grad)     # θ_{t−1}, the gradient, γ and the group's
    optimizer.step()                             # hyperparameters as this update used them
    info = explain(optimizer, param, before, t)  # an `Internals` of plain numpy vectors

``explain`` reads ``optimizer.state[param]`` (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``,
``sum``, ``square_avg``, ``step`` …) and rebuilds the update from it with the optimizer's own
rule. ``Internals.update`` is that rebuilt update and ``Internals.step`` the displacement the point
really made; the tests hold them equal to 1e-12, so every arrow the overlay draws is the state
torch used, not a re-derivation that could drift from it.

Conventions (shared with the overlay):

* Everything describes the update from step t−1 to step t (the record of step t carries it), and
  the arrows start at ``origin`` = θ_{t−1}, where the gradient was taken.
* Displacements are in θ units: ``grad_step`` = −γ·g (where plain SGD with this γ would go),
  ``velocity_step`` = the move the momentum alone asks for (−γ·b, −γ·m̂), ``step`` = θ_t − θ_{t−1}.
* ``accumulator_rms`` is the per-coordinate divisor in gradient units (√s, √v̂, ‖g‖∞ …); the
  overlay draws it, times γ, as a box around θ_{t−1}, so that in each coordinate
  step / γ = (arrow of the numerator) / (box half-side).

Optimizers without a rule here (and Muon, which needs a matrix) get the gradient and the step only.
L-BFGS is best effort: it runs several inner iterations per step, so only the gradient, the step
and its last curvature scale are shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from core.optim.optimizers import OPTIMIZERS

# The parts the overlay can draw, in the order of the panel's columns.
PARTS = ("gradient", "velocity", "step", "effective", "accumulator")
PART_TITLES = {
    "gradient": "−γ·g",
    "velocity": "momentum",
    "step": "step Δ",
    "effective": "effective step",
    "accumulator": "accumulator",
}


def _vec(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float64 copy (state tensors change in place on the next step); arrays already copied
    (`_state_copy`, the engine's batched rows) pass through."""
    if isinstance(tensor, np.ndarray):
        return tensor
    array = tensor.detach().numpy()
    if array.dtype == np.float64 and array.ndim == 1:
        return array.copy()  # the engine's case, and the cheap one
    return array.astype(np.float64).reshape(-1)


def _scalar(value) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


@dataclass(frozen=True)
class Before:
    """What `explain` needs from before the step (the step overwrites it)."""

    origin: np.ndarray  # θ_{t−1}
    grad: np.ndarray  # ∇f(θ_{t−1})
    group: dict  # the param group's hyperparameters (schedules may change them after the step)
    saved: dict = field(default_factory=dict)  # pre-step state some rules need (ASGD's η)


@dataclass(frozen=True)
class Internals:
    """One run's update from step t−1 to step t, as plain numpy vectors (shape (2,))."""

    optimizer: str  # registry name ("sgd", "adam", …) or the class name when unknown
    step_index: int  # t
    lr: float  # γ used by this update
    origin: np.ndarray  # θ_{t−1}
    grad: np.ndarray  # ∇f(θ_{t−1}), as the engine computed it
    step: np.ndarray  # θ_t − θ_{t−1}, what the point really moved
    update: np.ndarray | None = None  # the same move rebuilt from the optimizer's state
    velocity: np.ndarray | None = None  # the momentum state exactly as stored
    velocity_symbol: str = ""
    velocity_step: np.ndarray | None = None  # the move the momentum alone asks for
    effective_step: np.ndarray | None = None  # adaptive methods: −γ·(numerator)/(divisor)
    effective_symbol: str = ""
    effective_lr: np.ndarray | None = None  # per coordinate: what multiplies the numerator
    effective_lr_symbol: str = ""
    accumulator: np.ndarray | None = None  # the second-moment state exactly as stored
    accumulator_symbol: str = ""
    accumulator_rms: np.ndarray | None = None  # the per-coordinate divisor, gradient units
    terms: tuple[tuple[str, object], ...] = ()  # further named numbers for the readout

    @property
    def grad_step(self) -> np.ndarray:
        return -self.lr * self.grad

    def vectors(self) -> dict[str, np.ndarray | None]:
        """Each drawable part as a displacement from ``origin`` (accumulator: box half-sides)."""
        return {
            "gradient": self.grad_step,
            "velocity": self.velocity_step,
            "step": self.step,
            "effective": self.effective_step,
            "accumulator": None if self.accumulator_rms is None else self.lr * self.accumulator_rms,
        }

    @property
    def text(self) -> str:
        """The readout: ``step 12: g = (…), b = (…), Δ = (…)`` and then the rest of the state."""
        head = [f"g = {fmt_vec(self.grad)}"]
        if self.velocity is not None:
            head.append(f"{self.velocity_symbol} = {fmt_vec(self.velocity)}")
        head.append(f"Δ = {fmt_vec(self.step)}")
        lines = [f"step {self.step_index}: " + ", ".join(head)]
        extra = [("γ", self.lr)]
        if self.effective_step is not None:
            extra.append((self.effective_symbol, self.effective_step))
        if self.accumulator is not None:
            extra.append((self.accumulator_symbol, self.accumulator))
        if self.effective_lr is not None:
            extra.append((self.effective_lr_symbol, self.effective_lr))
        extra.extend(self.terms)
        for name, value in extra:
            shown = fmt_vec(value) if isinstance(value, np.ndarray) else fmt_num(value)
            lines.append(f"    {name} = {shown}")
        return "\n".join(lines)


def fmt_num(value) -> str:
    if isinstance(value, str):  # a named phase ("momentum only …"), shown as it is
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}"


def fmt_vec(values: np.ndarray) -> str:
    return "(" + ", ".join(fmt_num(v) for v in values) + ")"


# -----------------------------------------------------------------------------------------------
# The rules. Each takes (group hyperparameters, state after the step, before, θ_{t−1}) and returns
# the Internals fields it knows. ``g`` is the gradient as the optimizer used it: negated under
# ``maximize``, plus λ·θ under L2 weight decay.


def _signed(grad: np.ndarray, group: dict) -> np.ndarray:
    return -grad if group.get("maximize", False) else grad


def _l2(g: np.ndarray, theta: np.ndarray, group: dict) -> np.ndarray:
    wd = group.get("weight_decay", 0.0)
    return g + wd * theta if wd else g


def _sgd(group, state, before, _name):
    lr, mu = before.group["lr"], group["momentum"]
    g = _l2(_signed(before.grad, group), before.origin, group)
    if mu == 0:
        return {"update": -lr * g}
    buf = _vec(state["momentum_buffer"])
    direction = g + mu * buf if group["nesterov"] else buf
    return {
        "update": -lr * direction,
        "velocity": buf,
        "velocity_symbol": "b",
        "velocity_step": -lr * buf,
        "terms": (("μ", mu),),
    }


def _adam(group, state, before, name):
    lr = before.group["lr"]
    beta1, beta2 = group["betas"]
    eps, wd = group["eps"], group["weight_decay"]
    t = _scalar(state["step"])
    m, v = _vec(state["exp_avg"]), _vec(state["exp_avg_sq"])
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    m_hat = m / bc1
    second = _vec(state["max_exp_avg_sq"]) if group.get("amsgrad") else v
    v_hat = second / bc2
    eff_lr = lr / (np.sqrt(v_hat) + eps)
    effective = -eff_lr * m_hat
    decoupled = name == "adamw" or group.get("decoupled_weight_decay", False)
    decay = -lr * wd * before.origin if (decoupled and wd) else 0.0
    terms = [("t", int(t)), ("m̂ = m/(1 − β₁ᵗ)", m_hat), ("v̂ = v/(1 − β₂ᵗ)", v_hat)]
    if decoupled and wd:
        terms.append(("−γ·λ·θ (decay)", -lr * wd * before.origin))
    return _adam_parts(decay + effective, m, -lr * m_hat, effective, eff_lr, v, v_hat,
                       tuple(terms))


def _adam_parts(update, m, velocity_step, effective, eff_lr, v, v_hat, terms) -> dict:
    """The parts of an update of the form −γ·m̂/(√v̂ + ε) (Adam, AdamW, NAdam)."""
    return {
        "update": update,
        "velocity": m,
        "velocity_symbol": "m",
        "velocity_step": velocity_step,
        "effective_step": effective,
        "effective_symbol": "−γ·m̂/(√v̂ + ε)",
        "effective_lr": eff_lr,
        "effective_lr_symbol": "γ/(√v̂ + ε)",
        "accumulator": v,
        "accumulator_symbol": "v",
        "accumulator_rms": np.sqrt(v_hat),
        "terms": terms,
    }


def _adamax(group, state, before, _name):
    lr = before.group["lr"]
    beta1, _beta2 = group["betas"]
    t = _scalar(state["step"])
    m, u = _vec(state["exp_avg"]), _vec(state["exp_inf"])
    bc1 = 1 - beta1**t
    m_hat = m / bc1
    eff_lr = lr / u
    effective = -eff_lr * m_hat
    return {
        "update": effective,
        "velocity": m,
        "velocity_symbol": "m",
        "velocity_step": -lr * m_hat,
        "effective_step": effective,
        "effective_symbol": "−γ·m̂/u",
        "effective_lr": eff_lr,
        "effective_lr_symbol": "γ/u",
        "accumulator": u,
        "accumulator_symbol": "u",
        "accumulator_rms": u,
        "terms": (("t", int(t)), ("m̂ = m/(1 − β₁ᵗ)", m_hat)),
    }


def _nadam(group, state, before, _name):
    lr = before.group["lr"]
    beta1, beta2 = group["betas"]
    eps, wd, psi = group["eps"], group["weight_decay"], group["momentum_decay"]
    decoupled = group.get("decoupled_weight_decay", False)
    t = _scalar(state["step"])
    m, v = _vec(state["exp_avg"]), _vec(state["exp_avg_sq"])
    mu_product = _scalar(state["mu_product"])  # μ₁⋯μₜ, this step's μ included
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
    g = _signed(before.grad, group)
    if wd and not decoupled:
        g = g + wd * before.origin
    v_hat = v / (1 - beta2**t)
    denom = np.sqrt(v_hat) + eps
    m_hat = mu_next * m / (1 - mu_product * mu_next) + (1 - mu) * g / (1 - mu_product)
    eff_lr = lr / denom
    effective = -eff_lr * m_hat
    decay = -lr * wd * before.origin if (decoupled and wd) else 0.0
    terms = (("t", int(t)), ("μₜ", mu), ("μₜ₊₁", mu_next), ("m̂ (Nesterov)", m_hat), ("v̂", v_hat))
    return _adam_parts(decay + effective, m, -lr * m / (1 - beta1**t), effective, eff_lr, v,
                       v_hat, terms)


def _radam(group, state, before, _name):
    lr = before.group["lr"]
    beta1, beta2 = group["betas"]
    eps, wd = group["eps"], group["weight_decay"]
    decoupled = group.get("decoupled_weight_decay", False)
    t = _scalar(state["step"])
    m, v = _vec(state["exp_avg"]), _vec(state["exp_avg_sq"])
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    m_hat = m / bc1
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bc2
    terms = [("t", int(t)), ("m̂", m_hat), ("ρₜ", rho_t)]
    out = {"velocity": m, "velocity_symbol": "m", "velocity_step": -lr * m_hat,
           "accumulator": v, "accumulator_symbol": "v", "accumulator_rms": np.sqrt(v / bc2)}
    if rho_t > 5.0:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        eff_lr = lr * rect * math.sqrt(bc2) / (np.sqrt(v) + eps)
        terms.append(("r (rectification)", rect))
        out["effective_lr_symbol"] = "γ·r·√(1 − β₂ᵗ)/(√v + ε)"
    else:
        # Too few steps for a trustworthy variance: RAdam takes a plain momentum step.
        eff_lr = np.full(2, lr)
        terms.append(("phase", "momentum only (ρₜ ≤ 5)"))
        out["effective_lr_symbol"] = "γ (no rectification yet)"
    effective = -eff_lr * m_hat
    decay = -lr * wd * before.origin if (decoupled and wd) else 0.0
    out.update(update=decay + effective, effective_step=effective, effective_lr=eff_lr,
               effective_symbol="−" + out["effective_lr_symbol"].split(" (")[0] + "·m̂",
               terms=tuple(terms))
    return out


def _adagrad(group, state, before, _name):
    lr = before.group["lr"]
    t = _scalar(state["step"])
    g = _l2(_signed(before.grad, group), before.origin, group)
    clr = lr / (1 + (t - 1) * group["lr_decay"])
    s = _vec(state["sum"])
    eff_lr = clr / (np.sqrt(s) + group["eps"])
    effective = -eff_lr * g
    return {
        "update": effective,
        "effective_step": effective,
        "effective_symbol": "−γ̃·g/(√s + ε)",
        "effective_lr": eff_lr,
        "effective_lr_symbol": "γ̃/(√s + ε)",
        "accumulator": s,
        "accumulator_symbol": "s",
        "accumulator_rms": np.sqrt(s),
        "terms": (("t", int(t)), ("γ̃", clr)),
    }


def _rmsprop(group, state, before, _name):
    lr, mu, eps = before.group["lr"], group["momentum"], group["eps"]
    g = _l2(_signed(before.grad, group), before.origin, group)
    v = _vec(state["square_avg"])
    terms = [("t", int(_scalar(state["step"])))]
    if group["centered"]:
        mean = _vec(state["grad_avg"])
        rms = np.sqrt(v - mean * mean)
        terms.append(("m (mean gradient)", mean))
        symbol = "γ/(√(v − m²) + ε)"
    else:
        rms = np.sqrt(v)
        symbol = "γ/(√v + ε)"
    eff_lr = lr / (rms + eps)
    effective = -eff_lr * g
    out = {"effective_step": effective, "effective_symbol": "−γ·g" + symbol.removeprefix("γ"),
           "effective_lr": eff_lr, "effective_lr_symbol": symbol,
           "accumulator": v, "accumulator_symbol": "v", "accumulator_rms": rms}
    if mu > 0:
        buf = _vec(state["momentum_buffer"])
        out.update(update=-lr * buf, velocity=buf, velocity_symbol="b", velocity_step=-lr * buf)
        terms.append(("μ", mu))
    else:
        out["update"] = effective
    out["terms"] = tuple(terms)
    return out


def _adadelta(group, state, before, _name):
    lr, eps = before.group["lr"], group["eps"]
    g = _l2(_signed(before.grad, group), before.origin, group)
    v = _vec(state["square_avg"])
    u_old = before.saved["acc_delta"]
    scale = np.sqrt(u_old + eps) / np.sqrt(v + eps)  # Adadelta's own per-coordinate step size
    eff_lr = lr * scale
    effective = -eff_lr * g
    return {
        "update": effective,
        "effective_step": effective,
        "effective_symbol": "−γ·√(u + ε)/√(v + ε)·g",
        "effective_lr": eff_lr,
        "effective_lr_symbol": "γ·√(u + ε)/√(v + ε)",
        "accumulator": v,
        "accumulator_symbol": "v",
        "accumulator_rms": np.sqrt(v + eps),
        "terms": (("u (squared updates, before)", u_old), ("u (after)", _vec(state["acc_delta"]))),
    }


def _asgd(group, state, before, _name):
    g = _l2(_signed(before.grad, group), before.origin, group)
    eta = before.saved["eta"]
    lambd = group["lambd"]
    update = -lambd * eta * before.origin - eta * g
    return {
        "update": update,
        "effective_lr": np.full(2, eta),
        "effective_lr_symbol": "η",
        "terms": (("t", int(_scalar(state["step"]))), ("θ̄ (averaged iterate)", _vec(state["ax"]))),
    }


def _rprop(group, state, before, _name):
    # After the step ``prev`` holds the gradient with the flipped coordinates zeroed, exactly
    # the one whose sign moved θ, and ``step_size`` the per-coordinate sizes just used.
    prev, sizes = _vec(state["prev"]), _vec(state["step_size"])
    return {
        "update": -np.sign(prev) * sizes,
        "effective_lr": sizes,
        "effective_lr_symbol": "per-coordinate step size",
        "terms": (("t", int(_scalar(state["step"]))), ("sign used", np.sign(prev))),
    }


def _adafactor(group, state, before, _name):
    lr, wd, d = before.group["lr"], group["weight_decay"], group["d"]
    eps1, eps2 = group["eps"]
    if eps1 is None:
        eps1 = float(np.finfo(np.float64).eps)
    t = _scalar(state["step"])
    g = _signed(before.grad, group)
    rho_t = min(lr, 1 / t**0.5)
    alpha = max(eps2, float(np.linalg.norm(before.origin)) / math.sqrt(2)) * rho_t
    var = _vec(state["variance"])
    u = g / np.sqrt(np.maximum(var, eps1 * eps1))
    denom = max(1.0, float(np.linalg.norm(u)) / (math.sqrt(2) * d))
    eff_lr = alpha / denom / np.sqrt(np.maximum(var, eps1 * eps1))
    effective = -eff_lr * g
    decay = -lr * wd * before.origin if wd else 0.0
    return {
        "update": decay + effective,
        "effective_step": effective,
        "effective_symbol": "−αₜ·g/(max(√v, ε₁)·clip)",
        "effective_lr": eff_lr,
        "effective_lr_symbol": "αₜ/(max(√v, ε₁)·clip)",
        "accumulator": var,
        "accumulator_symbol": "v",
        "accumulator_rms": np.sqrt(var),
        "terms": (("t", int(t)), ("αₜ", alpha), ("clip", denom)),
    }


def _lbfgs(group, state, before, _name):
    # Several inner iterations (and a line search) per step: the state keeps only the last
    # direction and length, so the step itself is the honest arrow. H_diag is the curvature
    # scale the two-loop recursion starts from.
    terms = []
    if "H_diag" in state:
        terms.append(("H_diag", _scalar(state["H_diag"])))
    if "func_evals" in state:
        terms.append(("evaluations so far", int(state["func_evals"])))
    return {"terms": tuple(terms)}


Rule = Callable[[dict, dict, Before, str], dict]
RULES: dict[str, Rule] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adam,
    "adamax": _adamax,
    "nadam": _nadam,
    "radam": _radam,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adadelta": _adadelta,
    "asgd": _asgd,
    "rprop": _rprop,
    "adafactor": _adafactor,
    "lbfgs": _lbfgs,
}
_NAMES = {info.cls: name for name, info in OPTIMIZERS.items()}


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    return _NAMES.get(type(optimizer), type(optimizer).__name__)


# -----------------------------------------------------------------------------------------------


def capture(
    optimizer: torch.optim.Optimizer, param: torch.Tensor,
    grad: torch.Tensor | np.ndarray | None = None, origin: np.ndarray | None = None,
) -> Before:
    """Call right before ``optimizer.step()``: start point, gradient and hyperparameters.

    ``grad`` defaults to ``param.grad`` (L-BFGS computes its own in the closure: pass it);
    ``origin`` to a copy of ``param``. The engine passes rows of one copy of all its runs'
    points and gradients (a numpy array is taken as an already made copy).
    """
    group = optimizer.param_groups[0]
    hyper = {k: v for k, v in group.items() if k != "params"}
    saved = {}
    name = optimizer_name(optimizer)
    state = optimizer.state.get(param, {})
    if name == "adadelta":
        saved["acc_delta"] = _vec(state["acc_delta"]) if "acc_delta" in state else np.zeros(2)
    elif name == "asgd":
        # η of this update was set by the previous step (with the lr of that time), or is γ.
        # torch keeps η as a tensor of its scalar dtype (float32 unless the default is float64),
        # so the first step's η = γ is rounded the same way here.
        if "eta" in state:
            saved["eta"] = _scalar(state["eta"])
        else:
            dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
            saved["eta"] = float(torch.tensor(float(hyper["lr"]), dtype=dtype).item())
    g = grad if grad is not None else param.grad
    return Before(_vec(param) if origin is None else origin, _vec(g), hyper, saved)


def _state_copy(state: dict) -> dict:
    """The optimizer's state as plain numbers the next step cannot overwrite: 0-d tensors as
    floats, other tensors as float64 copies, numbers as they are. Lists (L-BFGS's history) are
    left out: no rule reads them."""
    copied = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            copied[key] = float(value.item()) if value.ndim == 0 else _vec(value)
        elif isinstance(value, (int, float, bool)):
            copied[key] = value
    return copied


class DeferredInternals:
    """One update's raw numbers, copied right after the step; explained on first use.

    A race records internals at every step but shows a few per second: copying the state
    (a few µs) and running the rule (tens of µs of small numpy operations) only for the steps
    someone looks at measured 1.3x faster for a 12-run race. Reads like the `Internals` it
    becomes (attribute access resolves it, once).
    """

    __slots__ = ("_name", "_before", "_state", "_theta", "_step_index", "_resolved")

    def __init__(self, optimizer: torch.optim.Optimizer, param: torch.Tensor, before: Before,
                 step_index: int):
        self._name = optimizer_name(optimizer)
        self._before = before
        self._state = _state_copy(optimizer.state.get(param, {}))
        self._theta = _vec(param)
        self._step_index = step_index
        self._resolved: Internals | None = None

    def resolve(self) -> Internals:
        if self._resolved is None:
            self._resolved = _explained(self._name, self._before, self._state, self._theta,
                                        self._step_index)
        return self._resolved

    def __getattr__(self, attribute: str):
        # Only called for names not found on this object: the Internals fields and methods.
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(self.resolve(), attribute)


def explain(
    optimizer: torch.optim.Optimizer, param: torch.Tensor, before: Before, step_index: int
) -> Internals:
    """Call right after ``optimizer.step()``: the update it made, from its state."""
    return DeferredInternals(optimizer, param, before, step_index).resolve()


def _explained(name: str, before: Before, state: dict, theta: np.ndarray,
               step_index: int) -> Internals:
    """The `Internals` of an update from the state copied after it. The rule reads the
    hyperparameters the update used (``before.group``): a schedule may change them after."""
    fields = {}
    rule = RULES.get(name)
    if rule is not None:
        fields = rule(before.group, state, before, name)
    return Internals(
        optimizer=name,
        step_index=step_index,
        lr=float(before.group["lr"]),
        origin=before.origin,
        grad=before.grad,
        step=theta - before.origin,
        **fields,
    )


ADAPTIVE = ("adam", "adamw", "adamax", "nadam", "radam", "adagrad", "rmsprop", "adadelta",
            "adafactor")


def available_parts(optimizer: str, params: dict) -> tuple[str, ...]:
    """Which `PARTS` a run with this optimizer and these params can show (for the toggles)."""
    values = dict(OPTIMIZERS[optimizer].defaults()) if optimizer in OPTIMIZERS else {}
    values.update(params)
    parts = ["gradient", "step"]
    if optimizer == "sgd" and values.get("momentum", 0) > 0:
        parts.append("velocity")
    if optimizer == "rmsprop" and values.get("momentum", 0) > 0:
        parts.append("velocity")
    if optimizer in ("adam", "adamw", "adamax", "nadam", "radam"):
        parts.append("velocity")
    if optimizer in ADAPTIVE:
        parts += ["effective", "accumulator"]
    return tuple(p for p in PARTS if p in parts)
