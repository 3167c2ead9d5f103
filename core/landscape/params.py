"""Flat parameter vectors of a model, and the model state the landscape functions evaluate in.

A *flat parameter vector* is one float tensor holding every parameter of a model in
``model.parameters()`` order (what ``torch.nn.utils.parameters_to_vector`` gives); a `ParamLayout`
(core/landscape/engines.py) says which slice of it is which parameter. Here: `flatten` and
`unflatten_into` (model ↔ vector), `device_dtype` (where and in what dtype the model's weights
live) and `eval_mode` (dropout off, batch norm on its running statistics, for the duration of a
measurement). Used by core/landscape/directions.py, curvature.py and surfaces.py.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn


def flatten(model: nn.Module) -> Tensor:
    """A detached copy of all the model's parameters as one (P,) vector."""
    return nn.utils.parameters_to_vector(model.parameters()).detach().clone()


def unflatten_into(model: nn.Module, vector: Tensor) -> None:
    """Copy a (P,) vector into the model's parameters, in place (the model is left pointing at
    its own tensors, so optimizers holding them stay valid)."""
    params = list(model.parameters())
    size = sum(p.numel() for p in params)
    if vector.ndim != 1 or vector.numel() != size:
        raise ValueError(f"expected a vector of {size} parameters, got shape {tuple(vector.shape)}")
    with torch.no_grad():
        offset = 0
        for p in params:
            p.copy_(vector[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    first = next(model.parameters(), None)
    if first is None:
        raise ValueError("the model has no parameters, so it has no loss landscape")
    return first.device, first.dtype


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Dropout off and batch norm on its running statistics, then the caller's mode again."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
