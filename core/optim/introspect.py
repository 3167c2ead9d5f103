"""An `OptimizerInfo` for any ``torch.optim.Optimizer`` subclass, read from the class itself.

The hand-written torch.optim registry lives in core/optim/optimizers.py; this module describes
every other class (the zoo of core/optim/zoo.py, a user's own file loaded by
core/optim/user_code.py) without anyone writing an entry for it:

* **Hyperparameters** from ``inspect.signature(cls.__init__)``: each argument with a usable
  default becomes a `HyperParam` (float, int, bool, a 2-tuple of numbers as a ``"pair"``, a
  ``typing.Literal`` of strings as a ``"choice"``), with a range its name suggests (learning
  rates, ε and weight decay ``>= 0`` on a log scale; β-like values in ``[0, 1]``; anything else
  a safe range around its default). What cannot be shown (callables, dtypes, enums, a string
  with no listed choices, implementation switches such as ``foreach``) is left out and keeps the
  constructor's default. Tooltips come from the docstring (core/optim/docstrings.py).
* **Overrides**: a user's file may carry ``HYPERPARAMS = {"lr": {"default": ..., "low": ...,
  "high": ..., "log": ..., "search": [a, b], "help": "..."}}``; `apply_overrides` checks it and
  refuses mistakes with a `LabError` naming the key.
* **Refusals**: a required argument with no default (a model, a data-set size, an optimizer to
  wrap) makes the class not raceable: `NotRaceable` says which argument and why. A wrapper whose
  only extra requirement is ``base_optimizer`` (SAM-style) gets a ``base_optimizer`` choice of
  torch.optim names instead, built through `OptimizerInfo.build`.
* **Adapters** by probing (core/optim/probe.py): whether ``step`` needs a closure, whether the
  backward pass needs ``create_graph=True``, whether only 2-D matrices work; ``train()/eval()``
  methods mark Schedule-Free-style optimizers. Probing executes the class, so it must only be
  called for the shipped zoo or for code the user has consented to run.
"""

from __future__ import annotations

import enum
import inspect
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

import torch

from core.errors import LabError
from core.optim.docstrings import docstring_help
from core.optim.hyperparams import NONE_CHOICE, HyperParam, show_value
from core.optim.optimizers import OPTIMIZERS, OptimizerInfo
from core.optim.probe import probe_adapters

# Arguments that change speed, memory or bookkeeping, not the update rule (for float32 weights).
IMPLEMENTATION_SWITCHES = frozenset({
    "foreach", "fused", "capturable", "differentiable",
    "check_numerics", "compress_state_dict", "model_sharding", "process_group",
    "bf16_sr", "kahan_sum",  # bf16-only rounding tricks: no effect on float32 weights
})

# torch.optim names a SAM-style wrapper may take as its base (first-order, any parameter shape).
BASE_OPTIMIZER_CHOICES = tuple(
    name for name, info in OPTIMIZERS.items() if not info.needs_closure and not info.min_param_ndim
)

# Why a required argument makes a class unraceable, for the names the zoo uses.
_REQUIRED_REASONS = {
    "model": "it takes the whole network (a torch.nn.Module), not only its parameters",
    "optimizer": "it wraps another optimizer instance",
    "num_data": "it needs the size of the training set, which has no default",
    "num_iterations": "it needs the total number of steps in advance, which has no default",
    "rho_scheduler": "it needs a scheduler object for its neighbourhood radius",
}


class NotRaceable(LabError):
    """This class cannot race here; ``reason`` says why in words a user can act on."""

    def __init__(self, field: str, title: str, reason: str):
        self.title = title
        self.reason = reason
        super().__init__(field, f"{title} cannot race: {reason}")


def introspect(
    cls: type,
    *,
    name: str,
    title: str,
    group: str,
    origin: str,
    overrides: Mapping | None = None,
    field: str = "optimizer",
) -> OptimizerInfo:
    """Describe ``cls`` as an `OptimizerInfo` named ``name`` (see the module docstring).

    Raises `NotRaceable` (a `LabError` on ``field``) when the class cannot race, and `LabError`
    on ``HYPERPARAMS.<key>`` for a bad override.
    """
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        raise LabError(field, f"{title} is not a torch.optim.Optimizer subclass")
    signature = _signature(cls)
    args = [p for p in signature.parameters.values() if p.name != "self"]
    if not args or args[0].name != "params":
        first = args[0].name if args else "nothing"
        why = _REQUIRED_REASONS.get(first)
        raise NotRaceable(field, title, f"its constructor takes {first!r} first, not 'params'"
                          + (f": {why}" if why else ""))
    helps = docstring_help(cls)
    hyperparams: list[HyperParam] = []
    required = []
    for param in args[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
            continue
        spec = hyperparam_for(param.name, param.default, param.annotation, helps.get(param.name, ""))
        if spec is not None:
            hyperparams.append(spec)
    wraps_base = required == ["base_optimizer"]
    if wraps_base:
        hyperparams[:0] = _base_optimizer_params(title, signature)
    elif required:
        raise NotRaceable(field, title, _required_reason(required))
    muon_groups = _takes_use_muon_groups(cls)
    if muon_groups:
        # Every tensor it gets goes to the matrix update; its built-in AdamW never runs, so its
        # adamw_* settings would change nothing (the trainer gives the rest to torch's AdamW).
        hyperparams = [hp for hp in hyperparams if not hp.name.startswith("adamw_")]
    preset = {}
    if overrides is not None:
        hyperparams = apply_overrides(hyperparams, overrides)
        # A default the user's file changed must reach the constructor even when a run leaves
        # the value unset (a builder passes only what a run sets).
        preset = {
            hp.name: hp.to_torch(hp.default) for hp in hyperparams
            if isinstance(overrides.get(hp.name), Mapping) and "default" in overrides[hp.name]
        }
    build = _builder(cls, wraps_base, muon_groups, preset)
    make = build or (lambda tensors, kwargs: cls(tensors, **kwargs))
    train_eval = callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None))
    defaults = {hp.name: hp.to_torch(hp.default) for hp in hyperparams if hp.default is not None}
    try:
        adapters = probe_adapters(lambda tensors: make(tensors, dict(defaults)), train_eval)
    except RuntimeError as err:
        raise NotRaceable(field, title, str(err)) from None
    # A Muon-type class would take vectors too (as a flattened matrix), but its authors give
    # biases and gains to AdamW: the trainer's matrix split does that.
    min_param_ndim = 2 if muon_groups else adapters.min_param_ndim
    return OptimizerInfo(
        name=name,
        cls=cls,
        title=title,
        hyperparams=tuple(hyperparams),
        update_rule="",
        needs_closure=adapters.needs_closure,
        min_param_ndim=min_param_ndim,
        description=_summary(cls),
        group=group,
        origin=origin,
        train_eval=train_eval,
        create_graph=adapters.create_graph,
        build=build,
    )


def _signature(cls: type) -> inspect.Signature:
    try:
        return inspect.signature(cls.__init__, eval_str=True)
    except Exception:  # an annotation that does not evaluate: read the defaults without it
        return inspect.signature(cls.__init__)


def _required_reason(required: list[str]) -> str:
    first = required[0]
    why = _REQUIRED_REASONS.get(first, "a required argument with no default")
    if first == "base_optimizer":
        others = ", ".join(required[1:])
        return f"needs {others} besides base_optimizer: " + _REQUIRED_REASONS.get(
            required[1], "a required argument with no default")
    return f"needs {', '.join(required)}: {why}"


def _base_optimizer_params(title: str, signature: inspect.Signature) -> list[HyperParam]:
    params = [HyperParam(
        "base_optimizer", "sgd", "choice", choices=BASE_OPTIMIZER_CHOICES,
        tooltip=f"The torch.optim optimizer that {title} wraps: it takes the step.",
    )]
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if takes_kwargs and "lr" not in signature.parameters:
        # The wrapper hands its extra keywords to the base optimizer; lr is the one that matters.
        params.append(HyperParam(
            "lr", 1e-3, "float", low=0.0, log=True, search=(1e-5, 1.0),
            tooltip="Learning rate γ of the base optimizer.",
        ))
    return params


def _takes_use_muon_groups(cls: type) -> bool:
    """Muon-type classes of pytorch-optimizer refuse a plain tensor list: each param group must
    say ``use_muon`` (matrix update) or not (their own AdamW)."""
    for klass in cls.__mro__:
        if klass is torch.optim.Optimizer or "__init__" not in vars(klass):
            continue
        try:
            source = inspect.getsource(klass.__init__)
        except (OSError, TypeError):
            continue
        if "'use_muon'" in source or '"use_muon"' in source:
            return True
    return False


def _builder(cls: type, base_optimizer: bool, muon_groups: bool, preset: dict):
    """How to construct ``cls`` when ``cls(tensors, **kwargs)`` is not enough (else None)."""
    if not (base_optimizer or muon_groups or preset):
        return None

    def build(tensors: list, kwargs: dict) -> torch.optim.Optimizer:
        kwargs = {**preset, **kwargs}
        if base_optimizer:
            kwargs["base_optimizer"] = OPTIMIZERS[kwargs.pop("base_optimizer", "sgd")].cls
        params = [{"params": list(tensors), "use_muon": True}] if muon_groups else tensors
        return cls(params, **kwargs)

    return build


def _summary(cls: type) -> str:
    """The docstring's first paragraph on one line (a bare title line, as Schedule-Free's
    "Schedule-Free AdamW", is set off with a colon)."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.strip().split("\n\n")[0].splitlines()
    if (len(lines) > 1 and not lines[0].rstrip().endswith((".", ":", ",", ";", "!", "?"))
            and lines[1].lstrip()[:1].isupper()):
        lines[0] = lines[0].rstrip() + ":"
    return " ".join(" ".join(lines).split())


# --------------------------------------------------------------------------------------------
# One argument → one HyperParam


def _members(annotation: Any) -> list:
    """The alternatives of a union annotation (``float | None`` → ``[float, NoneType]``)."""
    if annotation is inspect.Parameter.empty:
        return []
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        out = []
        for arg in typing.get_args(annotation):
            out.extend(_members(arg))
        return out
    return [annotation]


def _literal_choices(members: list) -> tuple[str, ...] | None:
    choices: list[str] = []
    for member in members:
        if typing.get_origin(member) is typing.Literal:
            choices.extend(str(value) for value in typing.get_args(member))
    return tuple(choices) or None


def _tokens(name: str) -> list[str]:
    return name.lower().split("_")


def _is_lr(name: str) -> bool:
    tokens = _tokens(name)  # lr, adamw_lr, lr_1d, max_lr; not weight_lr_power (an exponent)
    return "lr" in (tokens[0], tokens[-1]) or name == "learning_rate"


def _is_eps(name: str) -> bool:
    return any(re.fullmatch(r"eps\d*|epsilon", token) for token in _tokens(name))


def _is_weight_decay(name: str) -> bool:
    return "weight_decay" in name or "wd" in _tokens(name)


def _is_fraction_name(name: str) -> bool:
    return any(
        re.fullmatch(r"momentum|beta\d*|betas|rho|alpha|ema|dampening|mu|nu|nus|decay", token)
        for token in _tokens(name)
    )


def hyperparam_for(name: str, default: Any, annotation: Any, help_text: str = "") -> HyperParam | None:
    """The `HyperParam` for one constructor argument, or None when it is not shown."""
    if name in IMPLEMENTATION_SWITCHES or isinstance(default, enum.Enum):
        return None
    members = _members(annotation)
    tooltip = help_text
    choices = _literal_choices(members)
    if choices is not None:
        if default is None:
            choices, default = (NONE_CHOICE, *choices), NONE_CHOICE
        if not isinstance(default, str) or default not in choices:
            return None
        return HyperParam(name, default, "choice", choices=choices, tooltip=tooltip)
    if isinstance(default, bool):
        return HyperParam(name, default, "bool", tooltip=tooltip)
    if default is None:
        if float in members:
            return _float_param(name, None, tooltip)
        if int in members:
            return HyperParam(name, None, "int", low=0, tooltip=tooltip,
                              derived="chosen by the optimizer")
        return None
    if isinstance(default, numbers.Integral) and not (float in members and int not in members):
        return _int_param(name, int(default), tooltip)
    if isinstance(default, numbers.Real):
        return _float_param(name, float(default), tooltip) if math.isfinite(default) else None
    if isinstance(default, tuple) and len(default) == 2 and any(v is not None for v in default) and all(
        v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v))
        for v in default
    ):  # a None element means "automatic", as in torch's Adafactor eps=(None, 1e-3)
        return _pair_param(name, tuple(None if v is None else float(v) for v in default), tooltip)
    return None


def _float_param(name: str, default: float | None, tooltip: str) -> HyperParam:
    derived = "chosen by the optimizer" if default is None else ""
    d = default if default is not None else 0.0
    if _is_lr(name) and d >= 0:
        low_search = min(1e-5, d / 10) if d > 0 else 1e-5
        return HyperParam(name, default, "float", low=0.0, log=True,
                          search=(low_search, max(1.0, d * 10)), tooltip=tooltip, derived=derived)
    if _is_eps(name) and d >= 0:
        low_search = min(1e-12, d / 100) if d > 0 else 1e-12
        return HyperParam(name, default, "float", low=0.0, log=True,
                          search=(low_search, max(1e-4, d * 100)), tooltip=tooltip, derived=derived)
    if _is_weight_decay(name) and d >= 0:
        return HyperParam(name, default, "float", low=0.0, log=True,
                          search=(1e-6, max(1e-1, d * 10)), tooltip=tooltip, derived=derived)
    if _is_fraction_name(name) and 0.0 <= d <= 1.0:
        return HyperParam(name, default, "float", low=0.0, high=1.0, tooltip=tooltip, derived=derived)
    if d > 0:
        return HyperParam(name, default, "float", low=0.0, log=True, search=(d / 10, d * 10),
                          tooltip=tooltip, derived=derived)
    if d == 0:
        return HyperParam(name, default, "float", low=0.0, tooltip=tooltip, derived=derived)
    # A negative default (an exponent, a decay power): no bound we could defend.
    return HyperParam(name, default, "float", search=(2 * d, d / 2), tooltip=tooltip)


def _int_param(name: str, default: int, tooltip: str) -> HyperParam:
    if default >= 1:
        return HyperParam(name, default, "int", low=1, search=(max(1, default // 10), default * 10),
                          tooltip=tooltip)
    if default == 0:
        return HyperParam(name, default, "int", low=0, search=(0, 10), tooltip=tooltip)
    return HyperParam(name, default, "int", tooltip=tooltip)  # a sentinel such as -1 = "off"


def _pair_param(name: str, default: tuple, tooltip: str) -> HyperParam:
    values = [v for v in default if v is not None]
    if "beta" in name.lower() and all(0.0 <= v < 1.0 for v in values):
        return HyperParam(name, default, "pair", low=0.0, high=1.0, high_inclusive=False,
                          tooltip=tooltip)
    if all(0.0 <= v <= 1.0 for v in values):
        return HyperParam(name, default, "pair", low=0.0, high=1.0, tooltip=tooltip)
    if all(v >= 0.0 for v in values):
        return HyperParam(name, default, "pair", low=0.0, tooltip=tooltip)
    return HyperParam(name, default, "pair", tooltip=tooltip)


# --------------------------------------------------------------------------------------------
# A user's HYPERPARAMS

_OVERRIDE_KEYS = ("default", "low", "high", "log", "search", "help", "choices")


def apply_overrides(hyperparams: list[HyperParam], overrides: Mapping) -> list[HyperParam]:
    """``hyperparams`` with a user's ``HYPERPARAMS`` applied; mistakes name ``HYPERPARAMS.key``."""
    if not isinstance(overrides, Mapping):
        raise LabError("HYPERPARAMS", f"must be a dict of argument names to dicts, got {show_value(overrides)}")
    by_name = {hp.name: hp for hp in hyperparams}
    for key, change in overrides.items():
        field = f"HYPERPARAMS.{key}"
        if key not in by_name:
            allowed = ", ".join(by_name) or "none"
            raise LabError(field, f"is not a hyperparameter of this optimizer; allowed: {allowed}")
        if not isinstance(change, Mapping):
            raise LabError(field, f"must be a dict with keys among {', '.join(_OVERRIDE_KEYS)}, "
                                  f"got {show_value(change)}")
        by_name[key] = _override_one(by_name[key], change, field)
    return [by_name[hp.name] for hp in hyperparams]


def _override_one(hp: HyperParam, change: Mapping, field: str) -> HyperParam:
    unknown = [k for k in change if k not in _OVERRIDE_KEYS]
    if unknown:
        raise LabError(f"{field}.{unknown[0]}", f"unknown key; allowed: {', '.join(_OVERRIDE_KEYS)}")
    values = {
        "low": hp.low, "high": hp.high, "log": hp.log, "search": hp.search,
        "tooltip": hp.tooltip, "choices": hp.choices,
    }
    numeric = hp.kind in ("float", "int", "pair", "int_list")
    for key in ("low", "high"):
        if key in change:
            value = change[key]
            if not numeric:
                raise LabError(f"{field}.{key}", f"does not apply to a {hp.kind} hyperparameter")
            if value is not None and not _finite_number(value):
                raise LabError(f"{field}.{key}", f"must be a finite number or null, got {show_value(value)}")
            values[key] = value
    if values["low"] is not None and values["high"] is not None and values["low"] >= values["high"]:
        raise LabError(f"{field}.high", f"must be above low ({values['low']}), got {values['high']}")
    if "log" in change:
        if not isinstance(change["log"], bool):
            raise LabError(f"{field}.log", f"must be true or false, got {show_value(change['log'])}")
        if change["log"] and (values["low"] is None or values["low"] < 0):
            raise LabError(f"{field}.log", "a log scale needs low >= 0")
        values["log"] = change["log"]
    if "search" in change:
        values["search"] = _check_search(change["search"], values, f"{field}.search")
    elif values["search"] is not None and not _search_within(values["search"], values):
        values["search"] = None  # the old search range no longer fits the new bounds
    if "help" in change:
        if not isinstance(change["help"], str):
            raise LabError(f"{field}.help", f"must be text, got {show_value(change['help'])}")
        values["tooltip"] = change["help"]
    if "choices" in change:
        choices = change["choices"]
        if hp.kind != "choice":
            raise LabError(f"{field}.choices", f"does not apply to a {hp.kind} hyperparameter")
        if not isinstance(choices, (list, tuple)) or not choices or not all(isinstance(c, str) for c in choices):
            raise LabError(f"{field}.choices", f"must be a non-empty list of texts, got {show_value(choices)}")
        values["choices"] = tuple(choices)
    new = HyperParam(
        hp.name, hp.default, hp.kind, low=values["low"], high=values["high"],
        low_inclusive=hp.low_inclusive, high_inclusive=hp.high_inclusive, log=values["log"],
        search=values["search"], choices=values["choices"], tooltip=values["tooltip"],
        derived=hp.derived,
    )
    default = change.get("default", hp.default)
    if default is not None or "default" in change:
        default = new.validate(default, f"{field}.default")
    return HyperParam(
        new.name, default, new.kind, low=new.low, high=new.high, low_inclusive=new.low_inclusive,
        high_inclusive=new.high_inclusive, log=new.log, search=new.search, choices=new.choices,
        tooltip=new.tooltip, derived=new.derived,
    )


def _finite_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _search_within(search: tuple, values: Mapping) -> bool:
    low, high = values["low"], values["high"]
    return (low is None or search[0] >= low) and (high is None or search[1] <= high)


def _check_search(search: Any, values: Mapping, field: str) -> tuple[float, float] | None:
    if search is None:
        return None
    if not isinstance(search, (list, tuple)) or len(search) != 2 or not all(map(_finite_number, search)):
        raise LabError(field, f"must be [low, high], two finite numbers, got {show_value(search)}")
    lo, hi = float(search[0]), float(search[1])
    if lo >= hi:
        raise LabError(field, f"must have its first number below its second, got {show_value(search)}")
    if not _search_within((lo, hi), values):
        raise LabError(field, f"must lie within the allowed range [{values['low']}, {values['high']}], "
                              f"got {show_value(search)}")
    if values["log"] and lo <= 0:
        raise LabError(field, f"a log scale needs a search range above 0, got {show_value(search)}")
    return (lo, hi)
