"""Every neuron of a network over the data's plane: what the network screen's diagram paints
inside each circle (app/network/overview_tab.py), as TensorFlow Playground does.

`plane_grid` gives the model inputs of a G×G grid over a 2-D data set's plane (the features of
each point: x, y, x², sin x …, as the decision boundaries are evaluated). `unit_maps` runs one
model on them and keeps every vector the network diagram (app/network/diagram.py) draws as a
column of neurons: the inputs, then each linear layer's output after everything that acts on it
before the next linear layer (its activation, batch norm, dropout in eval mode), the last one the
output logits. Only plain MLPs have such columns; a conv or recurrent model gives None.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

NEURON_GRID = 32  # G: each neuron's picture is G×G values (small: a circle is ~30 px)
MAX_NEURON_VALUES = 1_024  # models with more values per input than this carry no pictures
# Modules that act on a vector without changing what a column is (see app/network/diagram.py).
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
                nn.Identity, nn.Dropout, nn.BatchNorm1d, nn.Flatten)


def plane_grid(data, side: int = NEURON_GRID, device="cpu") -> torch.Tensor | None:
    """Model inputs for a side×side grid over ``data.plane``, row-major over (y, x) as the
    decision-boundary grid (core/engine/network_evaluation.py); None when the data has no plane."""
    if data.plane is None:
        return None
    (x0, x1), (y0, y1) = data.plane
    gx, gy = np.meshgrid(np.linspace(x0, x1, side), np.linspace(y0, y1, side))
    points = np.column_stack([gx.ravel(), gy.ravel()])
    return torch.as_tensor(data.features(points), dtype=torch.float32, device=device)


def has_unit_maps(model: nn.Module) -> bool:
    """Whether ``model`` is a plain MLP small enough to picture every neuron."""
    if not isinstance(model, nn.Sequential):
        return False
    if not all(isinstance(m, (nn.Linear, *_ELEMENTWISE)) for m in model):
        return False
    linears = [m for m in model if isinstance(m, nn.Linear)]
    if not linears:
        return False
    return linears[0].in_features + sum(m.out_features for m in linears) <= MAX_NEURON_VALUES


@torch.no_grad()
def unit_maps(model: nn.Module, inputs: torch.Tensor) -> tuple[np.ndarray, ...] | None:
    """Each neuron column's values over a square grid of ``inputs`` (G², features), as
    (units, G, G) float32 arrays: inputs first, then each linear layer's vector after its
    activation (and batch norm, dropout), the last the output logits. The model is run as it
    is (call ``eval()`` first for dropout and batch norm). None for a model that is not a plain
    MLP (`has_unit_maps`) or a grid that is not square."""
    side = int(round(len(inputs) ** 0.5))
    if side * side != len(inputs) or not has_unit_maps(model):
        return None
    columns = [inputs]
    h = inputs
    seen_linear = False
    for module in model:
        if isinstance(module, nn.Linear):
            if seen_linear:
                columns.append(h)  # the previous layer's vector, after all that acts on it
            seen_linear = True
        h = module(h)
    columns.append(h)
    return tuple(c.T.reshape(-1, side, side).float().cpu().numpy().copy() for c in columns)
