"""Batched torch engines: a model's loss at many flat weight vectors in one pass, and the layout
of the flat vector they read.

`ParamLayout` says which slice of a flat parameter vector (``model.parameters()`` order) is which
parameter, its shape and kind. An engine is built once per model and data (in eval mode, without
autograd) and then evaluates chunks of points: ``prepare_plane(center, d1, d2)`` then
``plane_losses(coords)`` for points of a plane, or ``losses(weights)`` for whole weight vectors.

- `MlpEngine`: ``nn.Sequential`` MLPs, one ``bmm`` per layer for the whole chunk, activations laid
  out feature-major (points, features, samples), the samples cut into tiles of `SAMPLE_TILE`;
  the first layer of a plane as one K = 3 product; two-class cross entropy from the logit margin
  (`binary_cross_entropy_signs`). core/landscape/fused.py runs the same plan in a C kernel.
- `VmapEngine`: any module, ``torch.func.functional_call`` under ``torch.vmap``.

Which engine a model gets, and how many points a chunk holds: core/landscape/surfaces.py
(``_engine``, `default_chunk`), which is the module the rest of the code calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Criterion = Callable[[Tensor, Tensor], Tensor]

SAMPLE_TILE = 256  # samples per tile of the MLP engine (see MlpEngine.__init__)

# Element-wise modules: they act the same on any tensor layout, so the MLP engine can apply them
# to its (points, features, samples) activations unchanged.
_ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity,
    nn.Softplus, nn.Mish, nn.Hardtanh, nn.ReLU6, nn.CELU, nn.SELU, nn.Hardswish, nn.Hardsigmoid,
)
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


# --------------------------------------------------------------------------------------------
# Flat parameter vectors


@dataclass(frozen=True)
class ParamSlot:
    """One parameter's place in the flat vector."""

    name: str  # as named_parameters() names it: "0.weight"
    shape: tuple[int, ...]
    offset: int
    numel: int
    kind: str  # "weight" (a matrix / filter bank), "bias", or "norm" (batch/layer/group norm)


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and kinds of a model's parameters, in ``model.parameters()`` order."""

    slots: tuple[ParamSlot, ...]
    size: int

    @classmethod
    def of(cls, model: nn.Module) -> ParamLayout:
        kinds: dict[str, str] = {}
        for module_name, module in model.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                full = f"{module_name}.{param_name}" if module_name else param_name
                if isinstance(module, _NORM_TYPES):
                    kinds[full] = "norm"
                else:
                    # Li et al.: anything with one dimension (biases, per-channel scales) is not
                    # a filter and gets no filter-normalised direction.
                    kinds[full] = "bias" if param.ndim <= 1 else "weight"
        slots, offset = [], 0
        for name, param in model.named_parameters():
            slots.append(ParamSlot(name, tuple(param.shape), offset, param.numel(),
                                   kinds.get(name, "bias" if param.ndim <= 1 else "weight")))
            offset += param.numel()
        return cls(tuple(slots), offset)

    def split(self, vector: Tensor) -> dict[str, Tensor]:
        """Views of ``vector`` (P,) — or a stack (k, P) — shaped as the parameters (k, *shape)."""
        if vector.shape[-1] != self.size:
            raise ValueError(f"expected {self.size} parameters, got {vector.shape[-1]}")
        lead = tuple(vector.shape[:-1])
        return {
            s.name: vector[..., s.offset:s.offset + s.numel].reshape(*lead, *s.shape)
            for s in self.slots
        }

    def mask(self, kinds: Sequence[str]) -> Tensor:
        """A bool (P,) mask of the entries whose slot kind is in ``kinds``."""
        out = torch.zeros(self.size, dtype=torch.bool)
        for s in self.slots:
            if s.kind in kinds:
                out[s.offset:s.offset + s.numel] = True
        return out


def binary_cross_entropy_signs(loss_fn: Criterion, y: Tensor, n: int,
                                n_out: int) -> Tensor | None:
    """s_i = +1 for class 0, −1 for class 1 when ``loss_fn`` is two-class cross entropy, else None.

    With two logits, CE = log(1 + e^(z_other − z_true)) = softplus(s·(z1 − z0)): only the margin
    z1 − z0 matters, so the last layer can compute that one row instead of two.
    """
    if (loss_fn is F.cross_entropy and n_out == 2 and y.shape == (n,)
            and y.dtype in (torch.int64, torch.int32)):
        return 1.0 - 2.0 * y.to(torch.float32)
    return None


def _reducer(loss_fn: Criterion, y: Tensor, n: int,
             n_out: int) -> Callable[[Tensor], Tensor] | None:
    """A fast per-point mean loss for feature-major outputs z (k, n_out, n), or None.

    Only for the criteria core.problems.metrics hands out, called with their defaults (mean reduction),
    which is how the engine calls them; anything else goes through vmap on the outputs.
    """
    signs = binary_cross_entropy_signs(loss_fn, y, n, n_out)
    if signs is not None:
        return lambda z: F.softplus((z[:, 1] - z[:, 0]).mul_(signs.to(z))).mean(dim=1)
    if loss_fn is F.cross_entropy and y.shape == (n,) and y.dtype in (torch.int64, torch.int32):
        target = y.long()
        return lambda z: F.cross_entropy(z, target.expand(len(z), n), reduction="none").mean(1)
    if y.ndim == 2 and y.shape == (n, n_out) and y.is_floating_point():
        target_t = y.T.contiguous()  # (n_out, n), broadcast over the points
        if loss_fn is F.mse_loss:
            return lambda z: (z - target_t).square_().mean(dim=(1, 2))
        if loss_fn is F.l1_loss:
            return lambda z: (z - target_t).abs_().mean(dim=(1, 2))
        if loss_fn is F.huber_loss:
            return lambda z: F.huber_loss(z, target_t.expand_as(z), reduction="none").mean((1, 2))
    return None


class MlpEngine:
    """Batched matmuls for ``nn.Sequential`` MLPs, activations laid out (points, features, n)."""

    def __init__(self, model: nn.Sequential, layers: list, x: Tensor, y: Tensor,
                 loss_fn: Criterion, layout: ParamLayout):
        self.model = model
        self.layout = layout
        self.layers = layers  # ("linear", weight_slot, bias_slot | None, out) or ("act", module)
        self.loss_fn = loss_fn
        self.y = y
        self.n = len(x)
        self.n_out = layers[-1][3]
        self.widest = max(layer[3] for layer in layers if layer[0] == "linear")
        # Two-class CE after a hidden layer: the last layer computes only the margin row.
        signs = binary_cross_entropy_signs(loss_fn, y, self.n, self.n_out)
        hidden = sum(1 for layer in layers if layer[0] == "linear") > 1
        margin = signs is not None and hidden
        self.margin = margin
        x = x.reshape(len(x), -1)
        if margin:
            # Class 0 first, then class 1 (the mean does not depend on the order), so every
            # tile holds one class and the margin's sign is folded into the last layer's
            # weights instead of costing a pass over the margins.
            order = torch.argsort(y, stable=True)
            x, y = x[order], y[order]
            n_first = int((y == y[0]).sum()) if int(y[0]) == 0 else 0
            groups = [(0, n_first), (n_first, self.n)]
        else:
            groups = [(0, self.n)]
        # The samples are cut into tiles of at most SAMPLE_TILE: a chunk's activations then stay
        # in the core's own cache, and bmm avoids the power-of-two row strides (512, 1024
        # floats) at which it measured up to 2x slower. A criterion we cannot sum tile by tile
        # (the vmap fallback) keeps the samples whole.
        can_split = margin or _reducer(loss_fn, y, self.n, self.n_out) is not None
        self.tiles: list[tuple[int, int]] = []
        for low, high in groups:
            if high <= low:
                continue
            count = max(1, -(-(high - low) // SAMPLE_TILE)) if can_split else 1
            width = -(-(high - low) // count)
            self.tiles += [(a, min(high, a + width)) for a in range(low, high, width)]
        # Per tile: the input (in, m) — one copy shared by all points —, whether its margins
        # are negated (class 1), and the fast reducer; a tile's mean counts m / n of the total.
        x_t = x.T
        self.x_tiles = [x_t[:, a:b].contiguous() for a, b in self.tiles]
        self.negated = [bool(y[a] == 1) for a, _ in self.tiles] if margin else None
        self.reducers = [_reducer(loss_fn, y[a:b], b - a, self.n_out) for a, b in self.tiles]
        self.shares = [(b - a) / self.n for a, b in self.tiles]
        # The per-layer plan, so the per-chunk loop does no type tests: for each layer, either
        # ("act", module | None: None when the preceding bias add applied this ReLU), or
        # ("linear", rows, fuse the next ReLU).
        self.plan: list[tuple] = []
        for index, layer in enumerate(layers):
            if layer[0] == "act":
                fused = index > 0 and self.plan[-1][0] == "linear" and self.plan[-1][2]
                self.plan.append(("act", None if fused else layer[1]))
                continue
            following = layers[index + 1] if index + 1 < len(layers) else None
            fuse = (index > 0 and layer[2] is not None and following is not None
                    and type(following[1]) is nn.ReLU)
            self.plan.append(("linear", 1 if (margin and index == len(layers) - 1) else layer[3],
                              fuse))
        self.plane: list = []
        self._buffers: list[Tensor | None] = [None, None]
        self._views: dict[tuple[int, int], list] = {}

    @classmethod
    def build(cls, model: nn.Module, x: Tensor, y: Tensor, loss_fn: Criterion,
              layout: ParamLayout) -> MlpEngine | None:
        """The engine for ``model``, or None when it is not a plain MLP."""
        if not isinstance(model, nn.Sequential) or any(True for _ in model.buffers()):
            return None
        slots = {s.name: s for s in layout.slots}
        modules = list(model.named_children())
        first = next((i for i, (_, m) in enumerate(modules) if isinstance(m, nn.Linear)), None)
        if first is None:
            return None
        head = modules[:first]
        # Modules before the first Linear see the same input for every point: run them once.
        if any(any(True for _ in m.parameters()) for _, m in head):
            return None
        with torch.no_grad():
            for _, module in head:
                x = module(x)
        if x.ndim != 2:
            return None
        layers = []
        for name, module in modules[first:]:
            if isinstance(module, nn.Linear):
                bias = slots.get(f"{name}.bias") if module.bias is not None else None
                layers.append(("linear", slots[f"{name}.weight"], bias, module.out_features))
            elif isinstance(module, _ELEMENTWISE):
                layers.append(("act", module))
            elif isinstance(module, (nn.Dropout, nn.Flatten)):
                continue  # eval-mode dropout is the identity; the data is already (n, features)
            else:
                return None
        if layers[-1][0] != "linear":
            return None
        return cls(model, layers, x, y, loss_fn, layout)

    def bytes_per_point(self) -> int:
        tile = max(end - start for start, end in self.tiles)
        return 4 * (self.widest * tile + self.layout.size)

    def _targets(self, k: int, tile: int) -> list[tuple[Tensor, Tensor] | None]:
        """Per plan step, the (k, rows·m) and (k, rows, m) output views of a linear layer.

        Two reused activation buffers, alternating by linear layer so no layer writes over its
        input (allocating ~1 MB per layer and chunk cost page faults that measured as much as
        the arithmetic); the views are cached per (k, tile): slicing and viewing afresh for every
        tile of every chunk measured ~10 % of a 2-32-32-2 surface.
        """
        key = (k, tile)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        m = self.x_tiles[tile].shape[1]
        size = k * max(step[1] for step in self.plan if step[0] == "linear") * m
        if self._buffers[0] is None or self._buffers[0].numel() < size:
            like = self.x_tiles[0]
            self._buffers = [torch.empty(size, dtype=like.dtype, device=like.device)
                             for _ in range(2)]
            self._views = {}
        views: list[tuple[Tensor, Tensor] | None] = []
        buffer = 0
        for step in self.plan:
            if step[0] != "linear":
                views.append(None)
                continue
            rows = step[1]
            target = self._buffers[buffer][:k * rows * m]
            views.append((target.view(k, rows * m), target.view(k, rows, m)))
            buffer ^= 1
        self._views[key] = views
        return views

    def _is_margin_layer(self, layer) -> bool:
        return self.margin and layer is self.layers[-1]

    def _linear_params(self, vector: Tensor, layer) -> tuple[Tensor, Tensor | None]:
        """The (rows, in) weight and (rows,) bias of a linear layer in the (…, P) ``vector``;
        for the margin layer of two-class CE, the one row z1 − z0."""
        _, w_slot, b_slot, out = layer
        lead = vector.shape[:-1]
        weight = vector[..., w_slot.offset:w_slot.offset + w_slot.numel]
        weight = weight.reshape(*lead, *w_slot.shape)
        bias = vector[..., b_slot.offset:b_slot.offset + b_slot.numel] if b_slot else None
        if self._is_margin_layer(layer):
            weight = weight[..., 1:2, :] - weight[..., 0:1, :]
            bias = bias[..., 1:2] - bias[..., 0:1] if bias is not None else None
        return weight, bias

    def prepare_plane(self, center: Tensor, d1: Tensor, d2: Tensor) -> None:
        """Per-layer bases for the plane θ + α·d1 + β·d2, so a chunk never builds (k, P) weights.

        First layer: W(α,β)·x + b(α,β) = M_θ + α·M_1 + β·M_2 with three (rows, m) maps M per
        sample tile, computed once (the input is the same for every point), so per point it
        costs a K = 3 product per output instead of a K = in one. Later layers: a
        (3, rows·in) weight basis and a (3, rows) bias basis; one small (k, 3) @ basis product
        each gives the whole chunk's weights and biases as *contiguous* (k, rows, in) and
        (k, rows, 1) tensors (a strided view into one combined product measured slower).
        """
        self.plane = []
        for index, layer in enumerate(self.layers):
            if layer[0] != "linear":
                self.plane.append(None)
                continue
            parts = [self._linear_params(v, layer) for v in (center, d1, d2)]
            if index == 0:
                self.plane.append([
                    torch.stack([(w @ x_t + (b.view(-1, 1) if b is not None else 0)).reshape(-1)
                                 for w, b in parts])
                    for x_t in self.x_tiles
                ])
            else:
                weights = torch.stack([w.reshape(-1) for w, _ in parts])
                biases = torch.stack([b for _, b in parts]) if parts[0][1] is not None else None
                self.plane.append((weights, biases))

    def plane_losses(self, coords: Tensor) -> Tensor:
        """Mean loss at each of the k plane points (α, β) of ``coords`` (k, 2)."""
        k = len(coords)
        coeffs = torch.cat([torch.ones_like(coords[:, :1]), coords], dim=1)  # (k, 3): 1, α, β
        params: list = []
        for index, layer in enumerate(self.layers):
            if layer[0] != "linear" or index == 0:
                params.append(None)
                continue
            weights, biases = self.plane[index]
            weight = torch.mm(coeffs, weights).view(k, -1, layer[1].shape[1])
            bias = torch.mm(coeffs, biases).view(k, -1, 1) if biases is not None else None
            params.append((weight, bias))

        def first(target: Tensor, tile: int) -> Tensor:
            # (k, 3) @ (3, rows·m): one pass writing the output, the maps read from cache
            # (measured faster than two fused multiply-adds over the output at tile sizes).
            return torch.mm(coeffs, self.plane[0][tile], out=target)

        return self._forward(k, first, params)

    def losses(self, weights: Tensor) -> Tensor:
        """Mean loss of each of the k stacked weight vectors (k, P)."""
        k = len(weights)
        params: list = []
        for layer in self.layers:
            if layer[0] != "linear":
                params.append(None)
                continue
            weight, bias = self._linear_params(weights, layer)
            params.append((weight, bias.unsqueeze(-1) if bias is not None else None))
        first_weight, first_bias = params[0]

        def first(target: Tensor, tile: int) -> Tensor:
            # Shared input: one (k·rows, in) @ (in, m) product for the whole chunk.
            x_t = self.x_tiles[tile]
            out = torch.mm(first_weight.reshape(-1, first_weight.shape[-1]), x_t,
                           out=target.view(-1, x_t.shape[1]))
            if first_bias is not None:
                out.view(k, -1, x_t.shape[1]).add_(first_bias)
            return target

        return self._forward(k, first, params)

    def _forward(self, k: int, first: Callable[[Tensor, int], Tensor], params: list) -> Tensor:
        """The chunk's mean losses, tile by tile, added up (each tile weighted by its share)."""
        if self.margin:
            # The margin layer with the opposite sign, for the class-1 tiles (CE = softplus(−m)).
            weight, bias = params[-1]
            negated = (weight.neg(), bias.neg() if bias is not None else None)
        total: Tensor | None = None
        last = len(self.plan) - 1
        for tile, x_tile in enumerate(self.x_tiles):
            m = x_tile.shape[1]
            h: Tensor | None = None
            targets = self._targets(k, tile)
            for index, step in enumerate(self.plan):
                if step[0] == "act":
                    module = step[1]
                    if module is not None:
                        h = h.relu_() if type(module) is nn.ReLU else module(h)
                    continue
                flat, shaped = targets[index]
                if index == 0:
                    h = first(flat, tile).view(shaped.shape)
                    continue
                weight, bias = negated if (index == last and self.negated
                                           and self.negated[tile]) else params[index]
                h = torch.bmm(weight, h, out=shaped)
                if bias is not None:
                    # bmm + add_ rather than baddbmm: baddbmm first copies the broadcast bias
                    # into the output, which measured ~1.5x slower here. Bias and a following
                    # ReLU in one pass over the activations (aten's fused add-relu kernel).
                    if step[2]:
                        torch.ops.aten._add_relu_(h, bias)
                    else:
                        h.add_(bias)
            if self.margin:  # signed margins: the tile's CE sum is the sum of softplus
                part = F.softplus(h.view(k, m)).sum(dim=1)
            elif self.reducers[tile] is not None:
                part = self.reducers[tile](h)
                part = part.mul_(self.shares[tile]) if len(self.tiles) > 1 else part
            else:
                # An unknown criterion (samples never tiled): called as the model's output
                # would meet it, (n, out) per point.
                return torch.vmap(lambda z: self.loss_fn(z, self.y))(h.transpose(1, 2))
            total = part if total is None else total.add_(part)
        return total.div_(self.n) if self.margin else total


class VmapEngine:
    """Any module: torch.func.functional_call under torch.vmap over stacked parameter dicts."""

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, loss_fn: Criterion,
                 layout: ParamLayout):
        self.layout = layout
        self.model = model
        self.buffers = dict(model.named_buffers())
        self.x, self.y, self.loss_fn = x, y, loss_fn
        self.widest = _widest_activation(model, x)

        def one_point(params: dict[str, Tensor]) -> Tensor:
            output = torch.func.functional_call(model, {**params, **self.buffers}, (self.x,))
            return self.loss_fn(output, self.y)

        self._batched = torch.vmap(one_point)

    def bytes_per_point(self) -> int:
        # vmap keeps a few activations alive at once (input, output, a temporary).
        return 4 * (3 * self.widest + self.layout.size)

    def prepare_plane(self, center: Tensor, d1: Tensor, d2: Tensor) -> None:
        self.basis = torch.stack([d1, d2])
        self.center = center

    def plane_losses(self, coords: Tensor) -> Tensor:
        return self.losses(torch.addmm(self.center, coords, self.basis))

    def losses(self, weights: Tensor) -> Tensor:
        return self._batched(self.layout.split(weights))


def _widest_activation(model: nn.Module, x: Tensor) -> int:
    """Elements of the largest leaf-module output for the whole batch x (one forward pass)."""
    sizes = [x.numel()]
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
             for m in model.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return max(sizes) * len(x)
