"""Networks: a checked `ModelSpec` (core/problems/model_spec.py) → an initialised `nn.Sequential`.

`build_model` turns a `ModelSpec` into an ``nn.Sequential`` with exactly one module per layer entry,
so ``model[i]`` is ``spec.layers[i]`` and state_dict keys read ``"<i>.weight"``. Every random
draw of the initialisation comes from the given ``torch.Generator``: two builds with equally seeded
generators are bit-identical, and building never disturbs torch's global random state.

Dropout layers are `OwnedDropout`: their masks come from a ``torch.Generator`` that the race gives
each run's model (`set_dropout_generator`), never from torch's process-global generator, so a race
draws the same masks whether it trains alone or beside other work in other threads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from core.problems.model_spec import (
    ACTIVATIONS,
    RECURRENT_GATES,
    WEIGHT_KINDS,
    LayerInfo,
    ModelSpec,
)

# The nonlinearity kaiming_uniform_ scales for, by the activation that follows a weight layer.
# ELU, GELU and SiLU behave like ReLU for positive inputs and damp negative ones, so ReLU's gain is
# the usual choice for them; identity (or no activation at all) is torch's "linear", gain 1.
_KAIMING_NONLINEARITY = {
    "relu": ("relu", 0.0),
    "leaky_relu": ("leaky_relu", 0.01),  # nn.LeakyReLU's default negative_slope
    "elu": ("relu", 0.0),
    "gelu": ("relu", 0.0),
    "silu": ("relu", 0.0),
    "tanh": ("tanh", 0.0),
    "sigmoid": ("sigmoid", 0.0),
    "identity": ("linear", 0.0),
}

# Layers that sit between a weight layer and "its" activation without changing which one it is.
_TRANSPARENT_KINDS = ("batchnorm", "dropout", "maxpool", "flatten")


# --------------------------------------------------------------------------------------------
# Building


def build_model(model: ModelSpec, generator: torch.Generator | None = None) -> nn.Sequential:
    """The network as a float32 ``nn.Sequential``, one module per layer entry, initialised.

    All random draws come from ``generator`` (torch's global generator when None), in layer
    order: equal seeds give bit-identical weights.
    """
    modules = [_make_module(layer) for layer in model.layers]
    net = nn.Sequential(*modules)
    with torch.no_grad():
        for index, (layer, module) in enumerate(zip(model.layers, modules)):
            if layer.kind in WEIGHT_KINDS:
                activation = _following_activation(model, index)
                _init_weight_layer(module, model.init, activation, generator)
            elif layer.kind in RECURRENT_GATES:
                _init_recurrent(module, model.init, generator)
    return net


def _make_module(layer: LayerInfo) -> nn.Module:
    kind, value = layer.kind, layer.spec[layer.kind]
    f32 = torch.float32
    if kind == "linear":
        # skip_init: build without torch's own init, which would draw from the global generator
        # (and waste time on weights we overwrite at once).
        return nn.utils.skip_init(nn.Linear, layer.in_shape[0], value,
                                  bias=layer.spec.get("bias", True), dtype=f32)
    if kind == "conv2d":
        return nn.utils.skip_init(
            nn.Conv2d,
            layer.in_shape[0],
            layer.out_shape[0],
            kernel_size=_conv_param(value, "kernel", 3),
            stride=_conv_param(value, "stride", 1),
            padding=_conv_param(value, "padding", 1),
            dtype=f32,
        )
    if kind == "act":
        return ACTIVATIONS[value]()
    if kind == "dropout":
        return OwnedDropout(value)
    if kind == "batchnorm":
        # Always weight 1, bias 0: the init choice is about weight matrices only.
        flavour = nn.BatchNorm1d if len(layer.in_shape) == 1 else nn.BatchNorm2d
        return flavour(layer.in_shape[0], dtype=f32)
    if kind == "maxpool":
        return nn.MaxPool2d(value)
    if kind == "flatten":
        return nn.Flatten()
    if kind in RECURRENT_GATES:
        cls = {"rnn": SeqRNN, "lstm": SeqLSTM, "gru": SeqGRU}[kind]
        extra = {"nonlinearity": layer.spec.get("nonlinearity", "tanh")} if kind == "rnn" else {}
        # Built on the meta device then given empty memory: torch's own init would draw from the
        # global generator (`_init_recurrent` draws from ours).
        module = cls(layer.in_shape[1], value, batch_first=True, device="meta", dtype=f32,
                     **extra)
        return module.to_empty(device="cpu")
    if kind == "last":
        return LastStep()
    raise AssertionError(f"unhandled layer kind {kind!r}")  # validate_model admits no other


class SeqRNN(nn.RNN):
    """``nn.RNN`` (one layer, batch first) giving only the hidden states of every step, (B, T, H),
    so it sits in an ``nn.Sequential``; its parameters keep torch's names (``weight_hh_l0``)."""

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(input, hx)[0]


class SeqLSTM(nn.LSTM):
    """``nn.LSTM`` giving only the hidden states h_t of every step (as `SeqRNN`)."""

    def forward(self, input: torch.Tensor, hx=None) -> torch.Tensor:
        return super().forward(input, hx)[0]


class SeqGRU(nn.GRU):
    """``nn.GRU`` giving only the hidden states of every step (as `SeqRNN`)."""

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(input, hx)[0]


RECURRENT_MODULES = (SeqRNN, SeqLSTM, SeqGRU)


class LastStep(nn.Module):
    """The read-out of a sequence's last time step: (B, T, H) → (B, H)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input[:, -1]


def recurrent_layers(module: nn.Module) -> list[tuple[str, nn.RNNBase]]:
    """The named recurrent layers (`SeqRNN`, `SeqLSTM`, `SeqGRU`) in order."""
    return [(name, sub) for name, sub in module.named_modules()
            if isinstance(sub, RECURRENT_MODULES)]


def _init_recurrent(module: nn.RNNBase, init: str | Mapping,
                    generator: torch.Generator | None) -> None:
    """torch's own RNN init (every parameter U(-1/√H, 1/√H)) drawn from ``generator`` for
    "default"; otherwise the named init on each weight matrix (ih and hh) and zero biases."""
    bound = 1.0 / math.sqrt(module.hidden_size)
    for name, param in module.named_parameters():
        if init == "default":
            nn.init.uniform_(param, -bound, bound, generator=generator)
        elif name.startswith("bias"):
            nn.init.zeros_(param)
        elif init == "zeros":
            nn.init.zeros_(param)
        elif init == "xavier":
            nn.init.xavier_uniform_(param, generator=generator)
        elif init == "kaiming":
            nn.init.kaiming_uniform_(param, nonlinearity="tanh", generator=generator)
        elif isinstance(init, Mapping) and "normal" in init:
            nn.init.normal_(param, 0.0, float(init["normal"]), generator=generator)
        else:
            raise AssertionError(f"unhandled init {init!r}")


class OwnedDropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from ``self.generator``, a ``torch.Generator`` its owner
    sets (`set_dropout_generator`), instead of torch's process-global generator.

    In training mode, with ``q = 1 − p``::

        keep ~ Bernoulli(q) elementwise (drawn from ``generator``);  y = x · (keep / q)

    the same inverted dropout as ``torch.nn.functional.dropout`` (which scales the mask by 1/q
    the same way), but reproducible per owner: two threads training two models never share
    random numbers. In eval mode (and for p = 0) it is the identity. Training with no generator
    set is refused rather than silently drawing from the global generator. A copy (``deepcopy``,
    pickling) comes without the generator: a copy is not the run, and must not read or replay the
    run's stream (live surfaces copy a race's model while the race trains).
    """

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.generator: torch.Generator | None = None

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state["generator"] = None
        return state

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return input
        if self.generator is None:
            raise RuntimeError(
                "OwnedDropout has no generator: give the model one with "
                "core.problems.models.set_dropout_generator(model, torch.Generator(...)) "
                "before training")
        q = 1.0 - self.p
        keep = torch.empty_like(input).bernoulli_(q, generator=self.generator)
        return input * keep.div_(q)


def set_dropout_generator(model: nn.Module, generator: torch.Generator | None) -> list:
    """Give every `OwnedDropout` of ``model`` the one ``generator`` (its masks, layer after
    layer, come from that one stream); returns the generators they had, for `restore_dropout`."""
    layers = [m for m in model.modules() if isinstance(m, OwnedDropout)]
    before = [m.generator for m in layers]
    for m in layers:
        m.generator = generator
    return before


def restore_dropout(model: nn.Module, generators: list) -> None:
    """Put back the generators `set_dropout_generator` returned."""
    layers = [m for m in model.modules() if isinstance(m, OwnedDropout)]
    for m, generator in zip(layers, generators, strict=True):
        m.generator = generator


def dropout_stream(seed: int, run_index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The dropout stream of run ``run_index`` (its place among the lab's enabled runs) in a race
    seeded ``seed``: one generator per run, so adding or removing a run changes no other run's
    masks. The race and the LR range test both take it from here."""
    return torch.Generator(device=device).manual_seed(seed * 1009 + run_index + 1)


def has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Dropout) for m in model.modules())


def _conv_param(value: Any, key: str, short_form_default: int) -> int:
    return value[key] if isinstance(value, Mapping) else short_form_default


def _following_activation(model: ModelSpec, index: int) -> str | None:
    """The activation this weight layer feeds (through batchnorm/dropout/pooling), if any."""
    for layer in model.layers[index + 1:]:
        if layer.kind == "act":
            return layer.spec["act"]
        if layer.kind not in _TRANSPARENT_KINDS:
            return None  # the next weight layer: this one feeds no activation
    return None


def _init_weight_layer(
    module: nn.Module,
    init: str | Mapping,
    activation: str | None,
    generator: torch.Generator | None,
) -> None:
    weight, bias = module.weight, module.bias
    if init == "default":
        # torch's own reset_parameters for Linear/Conv, drawn from our generator instead:
        # kaiming_uniform_(a=√5) gives U(-1/√fan_in, 1/√fan_in), and the bias the same bound.
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        if bias is not None:  # {"linear": n, "bias": false} has none
            nn.init.uniform_(bias, -bound, bound, generator=generator)
        return
    if init == "zeros":
        # Every unit in a layer then computes the same thing and gets the same gradient: the
        # symmetry never breaks. Allowed on purpose, to show exactly that.
        nn.init.zeros_(weight)
    elif init == "xavier":
        nn.init.xavier_uniform_(weight, generator=generator)
    elif init == "kaiming":
        nonlinearity, slope = _KAIMING_NONLINEARITY.get(activation or "identity")
        nn.init.kaiming_uniform_(weight, a=slope, nonlinearity=nonlinearity, generator=generator)
    elif isinstance(init, Mapping) and "normal" in init:
        nn.init.normal_(weight, 0.0, float(init["normal"]), generator=generator)
    else:
        raise AssertionError(f"unhandled init {init!r}")  # validate_model admits no other
    if bias is not None:
        nn.init.zeros_(bias)


# --------------------------------------------------------------------------------------------
# Inspection


def linear_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The named weight-matrix layers (Linear and Conv), in order, as ``named_modules`` names them.

    For per-layer gradient norms and the network diagram. BatchNorm's scale and shift are not
    included: they are per-channel vectors, not a weight matrix between two layers.
    The names prefix the parameter names (``"0"`` → ``"0.weight"``).
    """
    return [
        (name, sub)
        for name, sub in module.named_modules()
        if isinstance(sub, (nn.Linear, nn.modules.conv._ConvNd))
    ]
