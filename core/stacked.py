"""Side-by-side training of R copies of one MLP in a single batched forward and backward pass.

The fast path of the network engine for the common race: several runs of the same multilayer
perceptron (linear layers and element-wise activations). All runs' parameters live in ONE
``(R, P)`` tensor. Each run's nn.Linear weights and biases are re-bound as views into its row, so
evaluation, state_dict and the per-layer statistics keep working on ordinary modules; each run's
torch.optim optimizer steps ONE flat parameter, the view of its row (one tensor per step instead
of one per layer: a large share of a small network's step time is per-tensor Python overhead).

Training computes every run at once: ``baddbmm`` over the stacked ``(R, out, in)`` weight views,
a per-sample loss reshaped to ``(R, B)``, and one ``backward`` of the sum — the gradient of a sum
of independent losses is each run's own gradient. The result equals separate models to float32
rounding (summation order in bmm vs addmm); tests compare with a plain PyTorch script.

Only optimizers whose update is element-wise may see the flat row (the same numbers as per-layer
tensors): Muon and Adafactor work per weight matrix, and L-BFGS re-evaluates the model inside its
step, so races with them use the per-run path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Optimizers whose update treats every parameter entry on its own (or, like weight decay,
# uniformly), so one flat tensor per run gives exactly the per-layer result.
ELEMENTWISE_OPTIMIZERS = frozenset(
    {"sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "adamax", "nadam", "radam",
     "asgd", "rprop"}
)


@dataclass(frozen=True)
class _LinearSlot:
    index: int  # position in the nn.Sequential
    out_features: int
    in_features: int
    weight_offset: int
    bias_offset: int | None


def can_stack(model: nn.Sequential, optimizers: list[str]) -> bool:
    """True when every layer is Linear or an element-wise activation and every optimizer is
    element-wise (see the module docstring)."""
    if not all(name in ELEMENTWISE_OPTIMIZERS for name in optimizers):
        return False
    if not isinstance(model, nn.Sequential):
        return False
    for layer in model:
        if isinstance(layer, (nn.Linear, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU,
                              nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Flatten)):
            continue
        return False
    return any(isinstance(layer, nn.Linear) for layer in model)


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
        # Where L1/L2 act: weight entries only (not biases), as in the per-run path.
        self.weight_mask = torch.zeros(offset, device=device, dtype=dtype)
        for slot in slots:
            self.weight_mask[slot.weight_offset:slot.weight_offset + slot.out_features
                             * slot.in_features] = 1.0
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

    @staticmethod
    def _weight_view(row: torch.Tensor, slot: _LinearSlot) -> torch.Tensor:
        n = slot.out_features * slot.in_features
        return row[slot.weight_offset:slot.weight_offset + n].view(slot.out_features,
                                                                    slot.in_features)

    @staticmethod
    def _bias_view(row: torch.Tensor, slot: _LinearSlot) -> torch.Tensor:
        return row[slot.bias_offset:slot.bias_offset + slot.out_features]

    def forward_all(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every run on the same batch ``x``: (R, B, out)."""
        h = x.flatten(1).unsqueeze(0).expand(self.count, -1, -1)
        for j, layer in enumerate(self.layers):
            slot = self._slot_at.get(j)
            if slot is None:
                if not isinstance(layer, nn.Flatten):
                    h = layer(h)  # element-wise activation: shape does not matter
                continue
            n = slot.out_features * slot.in_features
            weight = flat[:, slot.weight_offset:slot.weight_offset + n].view(
                self.count, slot.out_features, slot.in_features
            )
            if slot.bias_offset is None:
                h = torch.bmm(h, weight.transpose(1, 2))
            else:
                bias = flat[:, slot.bias_offset:slot.bias_offset + slot.out_features]
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        return h

    def train_step(self, x, y, criterion, live: torch.Tensor, l1: torch.Tensor, l2: torch.Tensor):
        """Forward and backward of every run on batch (x, y); fills ``self.grad``.

        Returns per-run data losses (R,) and per-run total gradient norms (R,) as tensors.
        ``live`` (R,) bool selects the runs whose loss enters the backward pass.
        """
        flat = self.flat.detach().requires_grad_(True)
        out = self.forward_all(flat, x)  # (R, B, C)
        count, batch = out.shape[0], out.shape[1]
        targets = y.repeat(count) if y.ndim == 1 else y.repeat(count, 1)
        per_sample = criterion(out.reshape(count * batch, -1), targets, reduction="none")
        data_loss = per_sample.reshape(count, batch, -1).mean(dim=(1, 2))
        total = data_loss
        if bool((l1 != 0).any()):
            total = total + l1 * (flat * self.weight_mask).abs().sum(dim=1)
        if bool((l2 != 0).any()):
            total = total + l2 * ((flat * self.weight_mask) ** 2).sum(dim=1)
        total[live].sum().backward()
        self.grad.copy_(flat.grad)
        for r, param in enumerate(self.run_params):
            param.grad = self.grad[r]  # an optimizer may have swapped it; keep the view
        return data_loss.detach(), torch.linalg.vector_norm(self.grad, dim=1)

    def layer_grad_norms(self, r: int) -> list[float]:
        g = self.grad[r]
        return [float(self._weight_view(g, slot).norm()) for slot in self.slots]
