"""A network as a lab file writes it: the model spec (plain JSON) → a checked `ModelSpec`.

A lab file describes a network as a list of one-key layer entries::

    {"layers": [{"linear": 16}, {"act": "relu"}, {"dropout": 0.1}, {"batchnorm": true},
                {"linear": 2}],
     "init": "default"}

``{"linear": 16, "bias": false}`` is a linear layer without a bias: a weight matrix alone (the
matrix problems' models, core/problems/datasets/matrices.py).

Image layers: ``{"conv2d": {"out": 8, "kernel": 3, "stride": 1, "padding": 1}}`` (or the short
form ``{"conv2d": 8}``: 8 output channels, 3×3, padding 1), ``{"maxpool": 2}`` and
``{"flatten": true}``.

Sequence layers, for data of shape (time steps, features) (core/problems/datasets/sequences.py):
``{"rnn": 32}`` (tanh; ``{"rnn": 32, "nonlinearity": "relu"}`` for ReLU), ``{"lstm": 32}``,
``{"gru": 32}`` — torch.nn's modules, batch first, one layer each (stack entries for depth) —
map (T, d) to the hidden states (T, H) of every step; ``{"last": true}`` reads out the last time
step (T, H) → (H,) for the linear layers after it (``{"flatten": true}`` reads out every step).

`validate_model` walks the layers with the data set's input shape, so every mistake is found before
anything is built and reported as a `LabError` naming the exact entry
(``problem.model.layers[2].dropout``). Parameter counts are computed arithmetically, never by
allocating, so a spec of a billion parameters is refused at once instead of eating the machine.
`default_model_for` is the starting network of a new lab. Building the checked spec into torch
modules: core/problems/models.py.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from core.errors import LabError
from core.optim.hyperparams import format_number, show_value

MAX_PARAMS = 2_000_000
MAX_WIDTH = 4096  # units of a linear layer, channels of a conv layer
MAX_LAYERS = 200
MAX_KERNEL = 32  # conv kernel, conv stride and maxpool size

LAYER_KINDS = ("linear", "act", "dropout", "batchnorm", "conv2d", "maxpool", "flatten",
               "rnn", "lstm", "gru", "last")
# Recurrent layers and how many gate blocks their weight matrices stack (torch.nn's layout).
RECURRENT_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
RNN_NONLINEARITIES = ("tanh", "relu")
WEIGHT_KINDS = ("linear", "conv2d")

# Activation name in lab files → torch module class (instantiated without arguments).
ACTIVATIONS: Mapping[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

# Named inits; the fifth form is the mapping {"normal": sigma}.
INIT_NAMES = ("default", "xavier", "kaiming", "zeros")
MAX_NORMAL_SIGMA = 10.0

@dataclass(frozen=True)
class LayerInfo:
    """One checked layer entry with the shapes it maps between (per sample, no batch dimension)."""

    kind: str  # one of LAYER_KINDS
    spec: Mapping  # the cleaned lab-file entry, e.g. {"linear": 16}
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    n_params: int
    describe: str  # "Linear 2 → 16", "ReLU", "Conv2d 1→8, 3×3", ...


@dataclass(frozen=True)
class ModelSpec:
    """A checked network: its layers, its init, and the data shapes it was checked against."""

    layers: tuple[LayerInfo, ...]
    init: str | Mapping
    input_shape: tuple[int, ...]
    n_outputs: int
    n_params: int

    def to_dict(self) -> dict:
        """The cleaned lab-file form: ``{"layers": [...], "init": ...}`` (fresh, plain dicts)."""
        return {
            "layers": [copy.deepcopy(dict(layer.spec)) for layer in self.layers],
            "init": copy.deepcopy(dict(self.init) if isinstance(self.init, Mapping) else self.init),
        }


# --------------------------------------------------------------------------------------------
# Checking


def validate_model(
    spec: Mapping,
    input_shape: tuple[int, ...],
    n_outputs: int,
    field: str = "problem.model",
) -> ModelSpec:
    """Check a lab file's model spec against the data it will see, or raise `LabError`.

    ``input_shape`` is one sample's shape from the data set: ``(features,)`` or
    ``(channels, height, width)``; ``n_outputs`` is how many values the last layer must give.
    Those two come from the program, not the user, so a bad one is a ``ValueError``.
    """
    input_shape = _check_input_shape(input_shape)
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, numbers.Integral) or n_outputs < 1:
        raise ValueError(f"n_outputs must be a positive int, got {n_outputs!r}")
    n_outputs = int(n_outputs)

    if not isinstance(spec, Mapping):
        raise LabError(
            field, f'must be a JSON object like {{"layers": [...]}}, got {show_value(spec)}'
        )
    allowed = {"layers", "init"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise LabError(
            f"{field}.{unknown[0]}", f"unknown key; allowed keys here: {', '.join(sorted(allowed))}"
        )
    if "layers" not in spec:
        raise LabError(f"{field}.layers", "is missing")
    entries = spec["layers"]
    layers_field = f"{field}.layers"
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise LabError(layers_field, f"must be a list of layers, got {show_value(entries)}")
    if not entries:
        raise LabError(
            layers_field,
            f'must list at least one layer; the smallest network is [{{"linear": {n_outputs}}}]',
        )
    if len(entries) > MAX_LAYERS:
        raise LabError(layers_field, f"at most {MAX_LAYERS} layers, got {len(entries)}")

    init = _check_init(spec.get("init", "default"), f"{field}.init")

    walker = _ShapeWalker(input_shape)
    layers = tuple(
        walker.add(entry, f"{layers_field}[{i}]", i) for i, entry in enumerate(entries)
    )
    _check_ending(layers, n_outputs, layers_field)

    n_params = sum(layer.n_params for layer in layers)
    if n_params > MAX_PARAMS:
        raise LabError(
            field,
            f"the network has {n_params:,} parameters; at most {MAX_PARAMS:,} "
            "(use narrower layers, or pool before flattening images)",
        )
    return ModelSpec(
        layers=layers,
        init=init,
        input_shape=input_shape,
        n_outputs=n_outputs,
        n_params=n_params,
    )


def _check_input_shape(input_shape: Any) -> tuple[int, ...]:
    shape = tuple(input_shape)
    ok = len(shape) in (1, 2, 3) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in shape
    )
    if not ok:
        raise ValueError(
            f"input_shape must be (features,), (time steps, features) or "
            f"(channels, height, width) of positive ints, "
            f"got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def _whole(value: Any, field: str, low: int, high: int, why: str = "") -> int:
    """A whole number in [low, high] (5.0 reads as 5; true is not a number)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # JSON writers sometimes spell 16 as 16.0
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise LabError(
            field, f"must be a whole number in [{low}, {high}]{why}, got {show_value(value)}"
        )
    if not low <= value <= high:
        raise LabError(field, f"must be a whole number in [{low}, {high}]{why}, got {value}")
    return int(value)


def _must_be_true(value: Any, field: str, kind: str) -> bool:
    if value is not True:
        raise LabError(
            field, f"must be true (remove the entry for no {kind} layer), got {show_value(value)}"
        )
    return True


def _check_init(value: Any, field: str) -> str | dict:
    expected = (
        f"one of {', '.join(repr(n) for n in INIT_NAMES)} "
        f'or {{"normal": sigma}} with sigma in (0, {format_number(MAX_NORMAL_SIGMA)}]'
    )
    sigma_range = f"(0, {format_number(MAX_NORMAL_SIGMA)}]"
    if isinstance(value, str):
        if value not in INIT_NAMES:
            raise LabError(field, f"must be {expected}, got {show_value(value)}")
        return value
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise LabError(field, f"must be {expected}, got an object with {len(value)} keys")
        (key, sigma), = value.items()
        if key != "normal":
            raise LabError(f"{field}.{key}", f"unknown init; allowed: {expected}")
        sigma_field = f"{field}.normal"
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise LabError(
                sigma_field,
                f"must be a number in {sigma_range}, got {show_value(sigma)}",
            )
        sigma = float(sigma)
        if not (math.isfinite(sigma) and 0.0 < sigma <= MAX_NORMAL_SIGMA):
            raise LabError(
                sigma_field,
                f"must be a number in {sigma_range}, got {sigma!r}",
            )
        return {"normal": sigma}
    raise LabError(field, f"must be {expected}, got {show_value(value)}")


class _ShapeWalker:
    """Follows one sample's shape through the layers, checking and counting each entry."""

    def __init__(self, input_shape: tuple[int, ...]):
        self.shape = input_shape
        # Where the current shape came from, for messages: None = the data set itself.
        self.shaped_by: int | None = None

    def _where(self, shape: tuple[int, ...]) -> str:
        """``this data set gives 2 features`` / ``after layers[3] the values are 8×4×4 images``."""
        if len(shape) == 1:
            what = f"{shape[0]} features"
            if self.shaped_by is None:
                return f"this data set gives {what}"
            return f"after layers[{self.shaped_by}] the values are flat ({what})"
        if len(shape) == 2:
            what = f"sequences of {shape[0]} steps × {shape[1]} features"
            if self.shaped_by is None:
                return f"this data set gives {what}"
            return f"after layers[{self.shaped_by}] the values are {what}"
        what = f"{'×'.join(str(d) for d in shape)} images (channels × height × width)"
        if self.shaped_by is None:
            return f"this data set gives {what}"
        return f"after layers[{self.shaped_by}] the values are {what}"

    def add(self, entry: Any, field: str, index: int) -> LayerInfo:
        if isinstance(entry, Mapping) and set(entry) == {"linear", "bias"}:
            # {"linear": 16, "bias": false}: a weight matrix alone (matrix regression,
            # deep linear networks: core/problems/datasets/matrices.py). Any other second key
            # is the one-key error below ({"linear": 4, "act": "relu"} is two layers in one).
            if not isinstance(entry["bias"], bool):
                raise LabError(f"{field}.bias",
                               f"must be true or false, got {show_value(entry['bias'])}")
            info = self._linear(entry["linear"], f"{field}.linear", self.shape, entry["bias"])
            self.shaped_by = index if info.out_shape != self.shape else self.shaped_by
            self.shape = info.out_shape
            return info
        if isinstance(entry, Mapping) and len(entry) == 2 and "rnn" in entry:
            # The one two-key entry: {"rnn": 32, "nonlinearity": "relu"}.
            (other,) = set(entry) - {"rnn"}
            if other != "nonlinearity":
                raise LabError(f"{field}.{other}",
                               'unknown key; an rnn layer takes only "nonlinearity"')
            info = self._rnn(entry["rnn"], f"{field}.rnn", self.shape,
                             entry["nonlinearity"], f"{field}.nonlinearity")
            self.shaped_by = index
            self.shape = info.out_shape
            return info
        if not isinstance(entry, Mapping) or len(entry) != 1:
            got = (
                f"an object with {len(entry)} keys" if isinstance(entry, Mapping)
                else show_value(entry)
            )
            raise LabError(
                field,
                f'each layer is an object with exactly one key, like {{"linear": 16}} '
                f"(one of {', '.join(LAYER_KINDS)}), got {got}",
            )
        (kind, value), = entry.items()
        if kind not in LAYER_KINDS:
            raise LabError(
                f"{field}.{kind}",
                f"unknown layer kind {kind!r}; allowed: {', '.join(LAYER_KINDS)}",
            )
        in_shape = self.shape
        info = getattr(self, f"_{kind}")(value, f"{field}.{kind}", in_shape)
        if info.out_shape != in_shape:
            self.shaped_by = index
        self.shape = info.out_shape
        return info

    # Each checker gets the entry's value and field and returns the LayerInfo.

    def _linear(self, value: Any, field: str, in_shape: tuple[int, ...],
                bias: bool = True) -> LayerInfo:
        width = _whole(value, field, 1, MAX_WIDTH)
        if len(in_shape) == 2:
            raise LabError(
                field,
                f"a linear layer needs flat inputs, but {self._where(in_shape)}; "
                'add {"last": true} before it to read out the last time step '
                '(or {"flatten": true} for every step)',
            )
        if len(in_shape) != 1:
            raise LabError(
                field,
                f"a linear layer needs flat inputs, but {self._where(in_shape)}; "
                'add {"flatten": true} before the first linear layer',
            )
        (n_in,) = in_shape
        return LayerInfo(
            kind="linear",
            spec={"linear": width} if bias else {"linear": width, "bias": False},
            in_shape=in_shape,
            out_shape=(width,),
            n_params=n_in * width + (width if bias else 0),
            describe=f"Linear {n_in} → {width}" + ("" if bias else ", no bias"),
        )

    def _act(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        if not isinstance(value, str) or value not in ACTIVATIONS:
            raise LabError(
                field, f"must be one of {', '.join(ACTIVATIONS)}, got {show_value(value)}"
            )
        return LayerInfo(
            kind="act",
            spec={"act": value},
            in_shape=in_shape,
            out_shape=in_shape,
            n_params=0,
            describe=ACTIVATIONS[value].__name__,
        )

    def _dropout(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise LabError(field, f"must be a probability in [0, 1), got {show_value(value)}")
        p = float(value)
        if not 0.0 <= p < 1.0:  # also refuses NaN
            # p = 1 would zero every activation: the network could not learn anything.
            raise LabError(field, f"must be a probability in [0, 1), got {p!r}")
        return LayerInfo(
            kind="dropout",
            spec={"dropout": p},
            in_shape=in_shape,
            out_shape=in_shape,
            n_params=0,
            describe=f"Dropout p={format_number(p)}",
        )

    def _batchnorm(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        _must_be_true(value, field, "batchnorm")
        if len(in_shape) == 2:
            raise LabError(field, f"batchnorm is not offered on sequences ({self._where(in_shape)}); "
                                  'put it after {"last": true}')
        channels = in_shape[0]
        flavour = "BatchNorm1d" if len(in_shape) == 1 else "BatchNorm2d"
        return LayerInfo(
            kind="batchnorm",
            spec={"batchnorm": True},
            in_shape=in_shape,
            out_shape=in_shape,
            n_params=2 * channels,  # weight and bias; running stats are buffers, not parameters
            describe=f"{flavour} {channels}",
        )

    def _flatten(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        _must_be_true(value, field, "flatten")
        size = math.prod(in_shape)
        dims = "×".join(str(d) for d in in_shape)
        return LayerInfo(
            kind="flatten",
            spec={"flatten": True},
            in_shape=in_shape,
            out_shape=(size,),
            n_params=0,
            describe=f"Flatten {dims} → {size}" if len(in_shape) > 1 else "Flatten",
        )

    def _need_image(self, kind: str, field: str, in_shape: tuple[int, ...]) -> None:
        if len(in_shape) != 3:
            raise LabError(
                field,
                f"{kind} needs image inputs (channels, height, width); "
                f"{self._where(in_shape)}",
            )

    def _conv2d(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        if isinstance(value, Mapping):
            allowed = {"out", "kernel", "stride", "padding"}
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise LabError(
                    f"{field}.{unknown[0]}",
                    f"unknown key; allowed keys here: {', '.join(sorted(allowed))}",
                )
            if "out" not in value:
                raise LabError(f"{field}.out", "is missing (the number of output channels)")
            out = _whole(value["out"], f"{field}.out", 1, MAX_WIDTH)
            kernel = _whole(value.get("kernel", 3), f"{field}.kernel", 1, MAX_KERNEL)
            stride = _whole(value.get("stride", 1), f"{field}.stride", 1, MAX_KERNEL)
            # Default: "same" padding for odd kernels, as in the short form (3×3, padding 1).
            padding = _whole(
                value.get("padding", kernel // 2), f"{field}.padding", 0, kernel - 1,
                " (less than the kernel size)",
            )
            cleaned: Any = {"out": out, "kernel": kernel, "stride": stride, "padding": padding}
        else:
            # The short form {"conv2d": 8}: 8 output channels, 3×3, stride 1, padding 1.
            out = _whole(value, field, 1, MAX_WIDTH, " (output channels)")
            kernel, stride, padding = 3, 1, 1
            cleaned = out
        self._need_image("conv2d", field, in_shape)
        channels, height, width = in_shape
        if height + 2 * padding < kernel or width + 2 * padding < kernel:
            raise LabError(
                field,
                f"a {kernel}×{kernel} kernel does not fit the {height}×{width} image here "
                f"(padding {padding}); use a smaller kernel or more padding",
            )
        out_h = (height + 2 * padding - kernel) // stride + 1
        out_w = (width + 2 * padding - kernel) // stride + 1
        text = f"Conv2d {channels}→{out}, {kernel}×{kernel}"
        if stride != 1:
            text += f", stride {stride}"
        if padding != kernel // 2:
            text += f", padding {padding}"
        return LayerInfo(
            kind="conv2d",
            spec={"conv2d": cleaned},
            in_shape=in_shape,
            out_shape=(out, out_h, out_w),
            n_params=out * channels * kernel * kernel + out,
            describe=text,
        )

    def _recurrent(self, kind: str, value: Any, field: str, in_shape: tuple[int, ...],
                   spec: dict, title: str) -> LayerInfo:
        hidden = _whole(value, field, 1, MAX_WIDTH, " (hidden units)")
        if len(in_shape) != 2:
            raise LabError(
                field,
                f"{kind} needs sequences (time steps × features); {self._where(in_shape)}"
                + (" (a recurrent layer cannot follow a flatten, last or linear layer)"
                   if self.shaped_by is not None and len(in_shape) == 1 else ""),
            )
        steps, features = in_shape
        gates = RECURRENT_GATES[kind]
        spec = {**spec, kind: hidden}
        return LayerInfo(
            kind=kind,
            spec=spec,
            in_shape=in_shape,
            out_shape=(steps, hidden),
            n_params=gates * hidden * (features + hidden) + 2 * gates * hidden,
            describe=f"{title} {features} → {hidden}",
        )

    def _rnn(self, value: Any, field: str, in_shape: tuple[int, ...],
             nonlinearity: Any = "tanh", nl_field: str = "") -> LayerInfo:
        if nonlinearity not in RNN_NONLINEARITIES:
            raise LabError(nl_field or field,
                           f"must be one of {', '.join(RNN_NONLINEARITIES)}, "
                           f"got {show_value(nonlinearity)}")
        spec: dict = {"rnn": value}
        if nonlinearity != "tanh":
            spec["nonlinearity"] = nonlinearity
        return self._recurrent("rnn", value, field, in_shape, spec, f"RNN ({nonlinearity})")

    def _lstm(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        return self._recurrent("lstm", value, field, in_shape, {"lstm": value}, "LSTM")

    def _gru(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        return self._recurrent("gru", value, field, in_shape, {"gru": value}, "GRU")

    def _last(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        _must_be_true(value, field, "last")
        if len(in_shape) != 2:
            raise LabError(field, f"last reads out a sequence's last step; {self._where(in_shape)}")
        return LayerInfo(
            kind="last",
            spec={"last": True},
            in_shape=in_shape,
            out_shape=(in_shape[1],),
            n_params=0,
            describe=f"Last step of {in_shape[0]}",
        )

    def _maxpool(self, value: Any, field: str, in_shape: tuple[int, ...]) -> LayerInfo:
        size = _whole(value, field, 1, MAX_KERNEL)
        self._need_image("maxpool", field, in_shape)
        channels, height, width = in_shape
        if size > min(height, width):
            raise LabError(
                field,
                f"a {size}×{size} maxpool is larger than the {height}×{width} image here; "
                f"at most {min(height, width)}",
            )
        return LayerInfo(
            kind="maxpool",
            spec={"maxpool": size},
            in_shape=in_shape,
            out_shape=(channels, height // size, width // size),
            n_params=0,
            describe=f"MaxPool {size}×{size}",
        )


_KIND_PHRASE = {
    "act": "an activation",
    "dropout": "a dropout layer",
    "batchnorm": "a batchnorm layer",
    "conv2d": "a conv2d layer",
    "maxpool": "a maxpool layer",
    "flatten": "a flatten layer",
    "rnn": "an rnn layer",
    "lstm": "an lstm layer",
    "gru": "a gru layer",
    "last": "a last layer",
}


def _check_ending(layers: tuple[LayerInfo, ...], n_outputs: int, layers_field: str) -> None:
    """The last layer is linear and gives exactly ``n_outputs`` values.

    We require a linear layer last (not "a linear layer then maybe an activation or dropout"):
    the losses apply their own softmax/sigmoid, and an activation after the logits is a classic
    silent mistake (ReLU'd logits can never be negative).
    """
    values = "value" if n_outputs == 1 else "values"
    per_class = " (one per class)" if n_outputs > 1 else ""
    last = len(layers) - 1
    layer = layers[last]
    if layer.kind != "linear":
        ending = _KIND_PHRASE[layer.kind]
        if layer.kind == "act":
            ending += f" ({layer.spec['act']})"
        raise LabError(
            f"{layers_field}[{last}]",
            f"the network must end with a linear layer of width {n_outputs}{per_class}; "
            f"it ends with {ending}",
        )
    width = layer.out_shape[0]
    if width != n_outputs:
        raise LabError(
            f"{layers_field}[{last}].linear",
            f"the last layer must output {n_outputs} {values}{per_class}, got {width}",
        )


# --------------------------------------------------------------------------------------------
# Defaults


def default_model_for(input_shape: tuple[int, ...], n_outputs: int) -> dict:
    """A sensible starting network in lab-file form.

    Flat data (points): a 2-16-16-n style MLP with ReLU. Images: up to two conv(3×3)+ReLU+maxpool
    blocks (8 then 16 channels), flatten, a 32-unit hidden layer, then the n outputs.
    """
    shape = _check_input_shape(input_shape)
    hidden = [{"act": "relu"}]
    if len(shape) == 1:
        layers: list[dict] = [
            {"linear": 16}, *hidden, {"linear": 16}, *hidden, {"linear": n_outputs},
        ]
        return {"layers": layers, "init": "default"}
    if len(shape) == 2:  # sequences: one LSTM, its last step, the outputs
        return {"layers": [{"lstm": 32}, {"last": True}, {"linear": n_outputs}],
                "init": "default"}
    channels, height, width = shape
    layers = []
    for out in (8, 16):
        layers += [{"conv2d": out}, {"act": "relu"}]  # 3×3, padding 1: keeps height × width
        channels = out
        if min(height, width) >= 4:
            layers.append({"maxpool": 2})
            height, width = height // 2, width // 2
    # Large images: pool further so the first linear layer stays small.
    while channels * height * width > 1024 and min(height, width) >= 2:
        layers.append({"maxpool": 2})
        height, width = height // 2, width // 2
    layers += [{"flatten": True}, {"linear": 32}, {"act": "relu"}, {"linear": n_outputs}]
    return {"layers": layers, "init": "default"}
