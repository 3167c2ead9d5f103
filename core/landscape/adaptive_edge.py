"""Each optimizer's edge of stability: the threshold its sharpness is compared with.

Gradient descent at learning rate η is stable on a quadratic only while the top Hessian eigenvalue
λ₁(H) < 2/η; full-batch training drives λ₁ up to that line and holds it there. Other optimizers
have their own line (Cohen et al., "Adaptive Gradient Methods at the Edge of Stability"):

- heavy-ball momentum β (torch's SGD, no Nesterov; dampening τ): λ₁(H) < (2 + 2β)/((1 − τ)·η);
- RMSprop (momentum μ, 0 without): the *preconditioned* sharpness λ₁(P⁻¹H) < (2 + 2μ)/η;
- Adam / AdamW (β₁): λ₁(P⁻¹H) < (2 + 2β₁)/((1 − β₁)·η), 38/η at β₁ = 0.9,

with P = diag(√v̂ + ε) from the optimizer's own second-moment state, exactly as torch's step
divides by it: Adam's ``exp_avg_sq`` (``max_exp_avg_sq`` with amsgrad) with its bias correction
1 − β₂ᵗ, RMSprop's ``square_avg`` (minus ``grad_avg``² when centered). (Cohen et al. also scale
P by Adam's first-moment bias correction 1 − β₁ᵗ⁺¹; it is 1 to 4 digits after ~90 steps at β₁ = 0.9
and is left out, as torch's denominator leaves it out.)

`edge_rule` says which rule holds for a run's optimizers — or, for anything else (a zoo class, a
subclass, Nesterov, several optimizers, param groups that differ), that there is none and why:
no line is better than a wrong one. `preconditioner_scale` reads P from the optimizer's state as
the vector P^{-1/2} over the model's parameters (in ``model.parameters()`` order), which
`core.landscape.curvature.hessian_top_eigen` takes as ``scale``: the top eigenvalue of the
symmetric P^{-1/2} H P^{-1/2} is λ₁(P⁻¹H) (the two are similar matrices). `EdgeTracker` is what a
race that tracks sharpness measures all three with (core/engine/seed_race.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.landscape.curvature import ModelLoss, SharpnessTracker


@dataclass(frozen=True)
class EdgeRule:
    """A run's edge of stability: ``factor``/lr, on the preconditioned sharpness when
    ``preconditioned`` (Adam, RMSprop), else on the raw one. ``name`` says which rule, in words
    a legend can show; ``formula`` the threshold as a formula of lr."""

    name: str
    factor: float
    preconditioned: bool
    formula: str

    def threshold(self, lr: float) -> float:
        """The threshold at learning rate ``lr`` (NaN for a non-positive or missing lr)."""
        return self.factor / lr if lr > 0 and math.isfinite(lr) else math.nan


def _same(groups: list[dict], keys: tuple[str, ...]) -> str | None:
    """Why the param groups cannot share one threshold (None: they can)."""
    for key in keys:
        values = {repr(g.get(key)) if not isinstance(g.get(key), Tensor)
                  else repr(float(g.get(key))) for g in groups}
        if len(values) > 1:
            return f"its param groups have different {key}"
    return None


def _short(x: float) -> str:
    return f"{x:g}"


def edge_rule(optimizers: list[torch.optim.Optimizer]) -> tuple[EdgeRule | None, str]:
    """The edge-of-stability rule of a run's optimizers, and a sentence: what the rule is, or
    why there is none (only torch's own SGD, Adam, AdamW, RMSprop — exactly those classes, a
    subclass may step differently — each alone over the whole model)."""
    if len(optimizers) != 1:
        return None, "no threshold: the run has several optimizers (one edge each is not known)"
    opt = optimizers[0]
    kind = type(opt)
    groups = opt.param_groups
    if kind is torch.optim.SGD:
        why = _same(groups, ("lr", "momentum", "dampening", "nesterov"))
        if why:
            return None, f"no threshold: {why}"
        g = groups[0]
        beta, tau = float(g.get("momentum", 0.0)), float(g.get("dampening", 0.0))
        if g.get("nesterov"):
            return None, "no threshold: Nesterov momentum (only heavy-ball's edge is drawn)"
        if beta == 0.0:
            return EdgeRule("gradient descent: 2/lr", 2.0, False, "2/lr"), "2/lr"
        factor = (2 + 2 * beta) / (1 - tau)
        formula = (f"(2+2·{_short(beta)})/lr" if tau == 0
                   else f"(2+2·{_short(beta)})/((1−{_short(tau)})·lr)")
        return EdgeRule(f"momentum {_short(beta)}: {formula}", factor, False, formula), formula
    if kind in (torch.optim.Adam, torch.optim.AdamW):
        why = _same(groups, ("lr", "betas", "eps", "amsgrad"))
        if why:
            return None, f"no threshold: {why}"
        beta1 = float(groups[0]["betas"][0])
        factor = (2 + 2 * beta1) / (1 - beta1)
        formula = f"(2+2β₁)/((1−β₁)·lr) = {_short(round(factor, 4))}/lr"
        return EdgeRule(f"{kind.__name__}: {formula} on λ₁(P⁻¹H)", factor, True, formula), formula
    if kind is torch.optim.RMSprop:
        why = _same(groups, ("lr", "alpha", "eps", "momentum", "centered"))
        if why:
            return None, f"no threshold: {why}"
        mu = float(groups[0].get("momentum", 0.0))
        formula = "2/lr" if mu == 0 else f"(2+2·{_short(mu)})/lr"
        return EdgeRule(f"RMSprop: {formula} on λ₁(P⁻¹H)", 2 + 2 * mu, True, formula), formula
    return None, (f"no threshold: {kind.__name__} is not plain gradient descent, heavy-ball "
                  f"momentum, Adam or RMSprop, whose edges of stability are known")


def _denominator(opt: torch.optim.Optimizer, param: Tensor) -> Tensor | None:
    """√v̂ + ε for ``param`` exactly as torch's Adam / RMSprop step divides by it (None before
    the optimizer's first step: it has no second-moment state yet)."""
    state = opt.state.get(param)
    if not state:
        return None
    group = next(g for g in opt.param_groups if any(p is param for p in g["params"]))
    eps = float(group["eps"])
    if isinstance(opt, torch.optim.RMSprop):
        square = state["square_avg"]
        if group.get("centered"):
            square = square - state["grad_avg"] ** 2
        return square.sqrt() + eps
    step = float(state["step"])
    beta2 = float(group["betas"][1])
    second = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
    return second.sqrt() / math.sqrt(1 - beta2 ** step) + eps


def _view_in(state: Tensor, owner: Tensor, param: Tensor) -> Tensor:
    """The part of ``state`` (laid out like ``owner``) that belongs to ``param``, a view into
    ``owner``'s storage (core/engine/stacked.py steps one flat row whose views are the layers)."""
    offset = (param.data_ptr() - owner.data_ptr()) // param.element_size()
    return state.contiguous().as_strided(param.shape, param.stride(), offset)


def preconditioner_scale(optimizers: list[torch.optim.Optimizer],
                         model: nn.Module) -> Tensor | None:
    """P^{-1/2} over the model's parameters (flat, ``model.parameters()`` order), P = diag(√v̂+ε)
    from the run's Adam/RMSprop state; None when the rule is not preconditioned or the state is
    not there yet (before the first step), or a parameter is not the optimizer's."""
    rule, _ = edge_rule(optimizers)
    if rule is None or not rule.preconditioned:
        return None
    opt = optimizers[0]
    owned = [p for g in opt.param_groups for p in g["params"]]
    parts = []
    for param in model.parameters():
        denominator = None
        for owner in owned:
            if owner is param:
                denominator = _denominator(opt, owner)
                break
            if (owner.untyped_storage().data_ptr() == param.untyped_storage().data_ptr()
                    and owner.is_contiguous()):
                whole = _denominator(opt, owner)
                denominator = None if whole is None else _view_in(whole, owner, param)
                break
        if denominator is None:
            return None
        parts.append(denominator.detach().reshape(-1))
    return torch.cat(parts).rsqrt()


class EdgeTracker:
    """Per run of a race: its raw sharpness (the given tracker), its edge rule, and for
    Adam/RMSprop its preconditioned sharpness, tracked by a second `SharpnessTracker` with the
    raw one's budget (each warm-starts from its own eigenvector)."""

    def __init__(self, raw: SharpnessTracker, optimizers: list[list[torch.optim.Optimizer]]):
        self.raw = raw
        self.rules = [edge_rule(opts)[0] for opts in optimizers]
        self.preconditioned = SharpnessTracker(len(optimizers), raw.max_products, raw.tol)

    def measure(self, index: int, model: nn.Module, optimizers: list[torch.optim.Optimizer],
                loss_fn: ModelLoss, lr: float) -> tuple[float, float, float]:
        """(λ_max, λ₁(P⁻¹H), edge at ``lr``) at the model's weights and the optimizer's current
        state; NaN where not converged, not adaptive (or no state yet), or no rule is known."""
        raw = self.raw.measure(index, model, loss_fn)
        rule = self.rules[index]
        if rule is None:
            return raw, math.nan, math.nan
        scale = preconditioner_scale(optimizers, model) if rule.preconditioned else None
        pre = (math.nan if scale is None
               else self.preconditioned.measure(index, model, loss_fn, scale))
        return raw, pre, rule.threshold(lr)
