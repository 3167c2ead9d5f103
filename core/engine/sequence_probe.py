"""What a recurrent network's evaluation adds: ‖∂L/∂h_t‖ over time steps and the recurrent
weights' spectral radius.

`hidden_grad_norms` unrolls the network's FIRST recurrent layer step by step with torch's own
cell functions (``torch.rnn_tanh_cell``, ``torch.lstm_cell``, ``torch.gru_cell``: the equations
of nn.RNN / LSTM / GRU) on a fixed probe batch, keeps every hidden state h_t in the graph, and
asks autograd for ∂L/∂h_t of the probe's mean loss: one norm per time step, over the batch and the
hidden units. Vanishing gradients show as norms fading towards t = 0, exploding ones as norms
growing without bound. It uses ``torch.autograd.grad`` on the hidden states only, so the
parameters' ``.grad`` (the per-layer gradient statistics of the same evaluation) are untouched.

`recurrent_radius` is, per recurrent layer, the spectral radius max |λ| of the matrix that maps
h_{t-1} to the next pre-activation: W_hh for an RNN, the candidate block of an LSTM (g) or a GRU
(n). Above 1 a linear recurrence blows up; below 1 it forgets.

The race calls both from its evaluations (core/engine/network_evaluation.py) and records them
(``Evaluation.hidden_grad``, ``Evaluation.recurrent_radius``); the view is
app/network/sequence_tab.py.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.problems.models import SeqGRU, SeqLSTM, SeqRNN, recurrent_layers

PROBE_SIZE = 64  # samples of the fixed probe batch (the first of the training split)


def _unrolled(layer: nn.RNNBase, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The layer's outputs (B, T, H) computed one step at a time, and the list of h_t."""
    w_ih, w_hh = layer.weight_ih_l0, layer.weight_hh_l0
    b_ih, b_hh = layer.bias_ih_l0, layer.bias_hh_l0
    batch = x.shape[0]
    h = x.new_zeros(batch, layer.hidden_size)
    c = x.new_zeros(batch, layer.hidden_size)
    states = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        if isinstance(layer, SeqLSTM):
            h, c = torch.lstm_cell(xt, (h, c), w_ih, w_hh, b_ih, b_hh)
        elif isinstance(layer, SeqGRU):
            h = torch.gru_cell(xt, h, w_ih, w_hh, b_ih, b_hh)
        elif layer.nonlinearity == "relu":
            h = torch.rnn_relu_cell(xt, h, w_ih, w_hh, b_ih, b_hh)
        else:
            h = torch.rnn_tanh_cell(xt, h, w_ih, w_hh, b_ih, b_hh)
        states.append(h)
    return torch.stack(states, dim=1), states


def hidden_grad_norms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor,
                      criterion) -> np.ndarray | None:
    """(T,) ‖∂L/∂h_t‖ of the first recurrent layer for the mean loss on (x, y), model in eval
    mode; None when the model has no recurrent layer or the loss is not finite."""
    index = next((i for i, m in enumerate(model) if isinstance(m, (SeqRNN, SeqLSTM, SeqGRU))),
                 None)
    if index is None:
        return None
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            h = x
            for module in list(model)[:index]:
                h = module(h)
            out, states = _unrolled(model[index], h)
            for module in list(model)[index + 1:]:
                out = module(out)
            loss = criterion(out, y)
            if not torch.isfinite(loss):
                return None
            grads = torch.autograd.grad(loss, states, allow_unused=True)
    finally:
        model.train(was_training)
    return np.array([0.0 if g is None else float(g.norm()) for g in grads])


@torch.no_grad()
def recurrent_radius(model: nn.Module) -> np.ndarray:
    """(L,) per recurrent layer: the spectral radius of its recurrent (candidate) matrix."""
    radii = []
    for _, layer in recurrent_layers(model):
        w = layer.weight_hh_l0.detach().double()
        size = layer.hidden_size
        if isinstance(layer, (SeqLSTM, SeqGRU)):
            block = 2  # LSTM gates i, f, g, o; GRU r, z, n: the candidate is the third block
            w = w[block * size:(block + 1) * size]
        if not torch.isfinite(w).all():
            radii.append(float("nan"))
            continue
        radii.append(float(torch.linalg.eigvals(w).abs().max()))
    return np.asarray(radii, dtype=np.float64)
