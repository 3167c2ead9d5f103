"""A fused native kernel for loss surfaces of small MLPs: one pass per block of samples.

`core.landscape.engines.MlpEngine` evaluates a chunk of plane points with one torch kernel per layer
(mm, bias + ReLU, bmm, softplus, ...). For small networks each of those kernels costs more in
writing its whole (points, features, samples) activation to memory and reading it back than in
arithmetic: on a 2-16-16-2 ReLU MLP and 512 samples, ~29 µs per grid point, of which the bmm is
12, the first layer's maps 5 and softplus 4. The C kernel in core/landscape/mlp_plane.c does all of it for
a block of 64 samples at a time, the block's activations staying in the core's L1 cache:

- the first layer from three precomputed maps M_θ, M_1, M_2 (the input is the same for every
  point, so ``W(α,β)·x + b(α,β) = M_θ + α·M_1 + β·M_2``, exactly as the torch engine does);
- each later layer with the point's own weights ``W_θ + α·W_1 + β·W_2``, built once per point (a
  few hundred floats), then its activation; the dense products register-blocked (four outputs ×
  sixteen samples per pass, fused multiply-adds);
- the loss: two-class cross entropy as softplus(±(z1 − z0)) from one margin row, multi-class
  cross entropy as logsumexp − z_true, or the squared error against float targets; exp and log
  written out (~1 ulp) so the loops vectorise;
- each point's loss sum accumulated in double, the arithmetic otherwise float32 like torch's.

Supported: ``nn.Sequential`` MLPs as `MlpEngine.build` accepts them (Linear, Dropout, Flatten),
with at most one activation between linear layers among ReLU, LeakyReLU, Tanh, Sigmoid and
Identity; float32 on the CPU; ``F.cross_entropy`` with integer labels (n,) or ``F.mse_loss`` with
float targets (n, outputs); layers at most `MAX_FUSED_WIDTH` wide (wider networks are
matmul-bound, where torch's bmm is as fast). Anything else — or no C compiler (core/landscape/native.py) —
gets None from `fused_mlp_engine`, and the torch engines do the work with the same numbers.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.landscape import native
from core.landscape.engines import Criterion, MlpEngine, ParamLayout, binary_cross_entropy_signs

KERNEL = "mlp_plane"  # core/landscape/mlp_plane.c
BLOCK = 64  # samples per block of the kernel (its BLOCK): n is padded to a multiple of it
MAX_FUSED_WIDTH = 64  # widest layer the kernel takes: two blocks of it stay in L1

# Activation codes of the kernel, by module type (one per linear layer: what follows it).
ACT_IDENTITY, ACT_RELU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID = range(5)
_ACTIVATIONS = {nn.Identity: ACT_IDENTITY, nn.ReLU: ACT_RELU, nn.LeakyReLU: ACT_LEAKY,
                nn.Tanh: ACT_TANH, nn.Sigmoid: ACT_SIGMOID}
# Loss codes: two-class cross entropy from the margin row, cross entropy, mean squared error.
LOSS_MARGIN_CE, LOSS_CE, LOSS_MSE = range(3)

_FLOATS = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
_INT64S = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
_INT32S = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
_DOUBLES = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")


def _kernel():
    """The compiled ``plane_losses`` with its argument types, or None (see core/landscape/native.py)."""
    library = native.load(KERNEL)
    if library is None:
        return None
    function = library.plane_losses
    if function.argtypes is None:
        int64 = ctypes.c_int64
        function.argtypes = [int64, _FLOATS, int64, int64, int64, _INT64S, _FLOATS, _FLOATS,
                             int64, _FLOATS, int64, _INT64S, _INT64S, _INT32S, _FLOATS,
                             ctypes.c_int32, _INT32S, _FLOATS, _FLOATS, _DOUBLES]
        function.restype = ctypes.c_int
    return function


def unavailable_reason() -> str | None:
    """Why there is no fused kernel on this machine (no compiler, ...), or None."""
    return native.unavailable_reason(KERNEL)


class FusedMlpEngine(MlpEngine):
    """`MlpEngine` whose plane surfaces run in the fused kernel.

    A subclass, so everything else is the torch engine's own: ``losses`` (stacked weight vectors,
    used for trajectories), the layer list, the layout. Build it with `fused_mlp_engine`.
    """

    def __init__(self, model: nn.Sequential, layers: list, x: Tensor, y: Tensor,
                 loss_fn: Criterion, layout: ParamLayout):
        super().__init__(model, layers, x, y, loss_fn, layout)
        self.kernel = _kernel()
        self.loss_kind = _loss_kind(loss_fn, y, self.n, self.n_out)
        self.fused_margin = self.loss_kind == LOSS_MARGIN_CE
        self.linear = [layer for layer in layers if layer[0] == "linear"]
        # Per linear layer, the activation that follows it (identity when none).
        codes, slopes = [], []
        for layer in layers:
            if layer[0] == "linear":
                codes.append(ACT_IDENTITY)
                slopes.append(0.0)
            elif type(layer[1]) is not nn.Identity:
                codes[-1] = _ACTIVATIONS.get(type(layer[1]), -1)  # -1: `_supported` refuses
                slopes[-1] = float(getattr(layer[1], "negative_slope", 0.0))
        self.widths = np.array([1 if (self.fused_margin and layer is self.linear[-1])
                                else layer[3] for layer in self.linear], dtype=np.int64)
        self.activations = np.array(codes, dtype=np.int32)
        self.slopes = np.array(slopes, dtype=np.float32)
        n = self.n
        self.n_padded = -(-n // BLOCK) * BLOCK
        pad = self.n_padded - n
        # (in, n_padded): samples contiguous; the padding's zero inputs give finite activations
        # whose losses are never added.
        self.fused_x = F.pad(x.reshape(n, -1).T, (0, pad)).contiguous()
        labels = y.to(torch.int32) if self.loss_kind in (LOSS_CE, LOSS_MARGIN_CE) \
            else torch.zeros(n, dtype=torch.int32)
        self.labels = F.pad(labels, (0, pad)).numpy()
        signs = (1.0 - 2.0 * y.to(torch.float32)) if self.fused_margin else torch.zeros(n)
        self.signs = F.pad(signs, (0, pad)).numpy()
        targets = y.T if self.loss_kind == LOSS_MSE else torch.zeros(1, n)
        self.targets = F.pad(targets.to(torch.float32), (0, pad)).contiguous().numpy()
        self.fused_plane: tuple | None = None

    def bytes_per_point(self) -> int:
        # The kernel keeps only each point's own weights; the activations are one block of
        # samples for the whole chunk (a few kB). With the MLP budget this gives the largest
        # chunk, so the per-chunk overhead is paid least often.
        return 4 * self.layout.size

    def _fused_params(self, vector: Tensor, layer) -> tuple[Tensor, Tensor]:
        weight, bias = self._linear_params(vector, layer)  # the margin row when MlpEngine has it
        if self.fused_margin and layer is self.linear[-1] and not self._is_margin_layer(layer):
            weight = weight[1:2] - weight[0:1]  # a one-layer model: MlpEngine has no margin row
            bias = bias[1:2] - bias[0:1] if bias is not None else None
        if bias is None:
            bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
        return weight, bias

    def prepare_plane(self, center: Tensor, d1: Tensor, d2: Tensor) -> None:
        """The first layer's three maps (3, rows, n_padded) and the later layers' weights and
        biases at θ, d1, d2, flattened into one (3, W) and one (3, B) array."""
        parts = [[self._fused_params(v, layer) for v in (center, d1, d2)]
                 for layer in self.linear]
        maps = torch.stack([w @ self.fused_x + b.view(-1, 1) for w, b in parts[0]])
        later = parts[1:]
        weights = [torch.cat([w.reshape(-1) for w, _ in (layer[c] for layer in later)]
                             + [torch.zeros(1)]) for c in range(3)]  # never empty for ctypes
        biases = [torch.cat([b for _, b in (layer[c] for layer in later)] + [torch.zeros(1)])
                  for c in range(3)]
        weight_offsets = np.cumsum([0] + [w.numel() for w, _ in (layer[0] for layer in later)])
        bias_offsets = np.cumsum([0] + [b.numel() for _, b in (layer[0] for layer in later)])
        self.fused_plane = (
            maps.contiguous().numpy(), torch.stack(weights).contiguous().numpy(),
            torch.stack(biases).contiguous().numpy(), weight_offsets.astype(np.int64),
            bias_offsets.astype(np.int64),
        )

    def plane_losses(self, coords: Tensor) -> Tensor:
        maps, weights, biases, weight_offsets, bias_offsets = self.fused_plane
        coords = coords.to(torch.float32).contiguous().numpy()
        out = np.empty(len(coords), dtype=np.float64)
        status = self.kernel(len(coords), coords, self.n, self.n_padded, len(self.widths),
                             self.widths, maps, weights, weights.shape[1], biases,
                             biases.shape[1], weight_offsets, bias_offsets, self.activations,
                             self.slopes, self.loss_kind, self.labels, self.signs, self.targets,
                             out)
        if status != 0:
            raise MemoryError("the fused surface kernel could not allocate its scratch memory")
        return torch.from_numpy(out)


def _loss_kind(loss_fn: Criterion, y: Tensor, n: int, n_out: int) -> int | None:
    """The kernel's loss code for ``loss_fn`` on targets ``y``, or None when it has none."""
    if loss_fn is F.cross_entropy and y.shape == (n,) and y.dtype in (torch.int64, torch.int32):
        if n_out < 1 or n == 0 or int(y.min()) < 0 or int(y.max()) >= n_out:
            return None  # torch raises its own error for labels out of range: let it
        return LOSS_MARGIN_CE if binary_cross_entropy_signs(loss_fn, y, n, n_out) is not None \
            else LOSS_CE
    if loss_fn is F.mse_loss and y.shape == (n, n_out) and y.dtype == torch.float32:
        return LOSS_MSE
    return None


def _supported(engine: FusedMlpEngine) -> bool:
    """Whether the kernel computes exactly what ``engine``'s torch code would (the data's dtype,
    device and the kernel itself are checked by `fused_mlp_engine` before it is built)."""
    if engine.loss_kind is None:
        return False
    if max(layer[3] for layer in engine.linear) > MAX_FUSED_WIDTH:
        return False
    previous = None
    for layer in engine.layers:
        if layer[0] == "act":
            if type(layer[1]) is nn.Identity:
                continue
            if type(layer[1]) not in _ACTIVATIONS or previous != "linear":
                return False  # an unknown one, or two in a row
        previous = layer[0]
    return True


def fused_mlp_engine(model: nn.Module, x: Tensor, y: Tensor, loss_fn: Criterion,
                     layout: ParamLayout) -> FusedMlpEngine | None:
    """The fused engine for ``model``, or None: no compiler, not a plain MLP, or something the
    kernel does not compute (see the module docstring). Called in eval mode, without grad."""
    if x.dtype != torch.float32 or x.device.type != "cpu":
        return None
    if loss_fn is not F.cross_entropy and loss_fn is not F.mse_loss:
        return None
    if _kernel() is None:
        return None
    engine = FusedMlpEngine.build(model, x, y, loss_fn, layout)
    return engine if engine is not None and _supported(engine) else None


def describe_engine(engine) -> str:
    """A short name of the surface engine `core.landscape.surfaces._engine` picked, for notes and logs;
    says why when a torch engine runs because the kernel could not be built."""
    if isinstance(engine, FusedMlpEngine):
        return "fused native kernel"
    name = "torch MLP engine" if isinstance(engine, MlpEngine) else "torch vmap engine"
    reason = unavailable_reason()
    return f"{name} (no native kernel: {reason})" if reason else name
