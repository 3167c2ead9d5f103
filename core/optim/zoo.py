"""The optimizer zoo: every optimizer of the shipped packages pytorch-optimizer and Schedule-Free.

A lab file names a zoo optimizer ``"<package>:<Class>"`` (``"pytorch_optimizer:Lion"``,
``"schedulefree:AdamWScheduleFree"``); it needs no consent because the code is a dependency of
the app, not a file someone sent. Its `OptimizerInfo` is read from the class by
core/optim/introspect.py (hyperparameters, tooltips, adapters) and cached.

Which classes: every class of pytorch-optimizer's own registry (``get_supported_optimizers``),
plus the optimizers it exports outside that registry (the SAM family and the wrappers), plus
Schedule-Free's optimizer classes. pytorch-optimizer re-registers a few of torch's own classes
(``Adam``, ``SGD``, ``LBFGS``…): those are raced by their torch.optim name and refused here
with a pointer to it. Whatever cannot race (it needs the whole model, wraps an optimizer
instance, needs a missing package…) is refused with the reason; `zoo_refusals` lists them all.

The packages are imported inside the functions, never at import time: pytorch-optimizer alone
takes about two seconds to import, and the GUI imports core at start.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
from importlib import metadata

from core.errors import LabError
from core.optim.introspect import NotRaceable
from core.optim.optimizers import OptimizerInfo

ZOO_PACKAGES = ("pytorch_optimizer", "schedulefree")

# The picker's group and the distribution name that ``importlib.metadata`` knows.
_GROUPS = {"pytorch_optimizer": "pytorch-optimizer", "schedulefree": "schedule-free"}
_DISTRIBUTIONS = {"pytorch_optimizer": "pytorch-optimizer", "schedulefree": "schedulefree"}

_lock = threading.RLock()
_classes_cache: dict[str, dict[str, type]] = {}
_info_cache: dict[str, OptimizerInfo | LabError] = {}


def is_zoo_ref(name: object) -> bool:
    """Whether ``name`` has the form ``<zoo package>:<Class>`` (known class or not)."""
    return isinstance(name, str) and name.partition(":")[0] in ZOO_PACKAGES and ":" in name


def zoo_version(package: str) -> str:
    """The installed version of a zoo package (``"4.1.0"``), or "" when it is not installed."""
    try:
        return metadata.version(_DISTRIBUTIONS[package])
    except (KeyError, metadata.PackageNotFoundError):
        return ""


def zoo_origin(package: str) -> str:
    """Where a zoo optimizer comes from, in words: ``"pytorch-optimizer 4.1.0"``."""
    return f"{_DISTRIBUTIONS[package]} {zoo_version(package)}".strip()


def _classes(package: str) -> dict[str, type]:
    """Class name → class for every optimizer a package offers (torch's re-registered ones too)."""
    with _lock:
        if package not in _classes_cache:
            _classes_cache[package] = _load_classes(package)
        return _classes_cache[package]


def _load_classes(package: str) -> dict[str, type]:
    import torch

    try:
        module = importlib.import_module(package)
    except ImportError:
        return {}
    found: dict[str, type] = {}
    if package == "pytorch_optimizer":
        from pytorch_optimizer.optimizer import OPTIMIZERS

        for cls in OPTIMIZERS.values():
            found[cls.__name__] = cls
    for attr in dir(module):
        value = getattr(module, attr)
        if inspect.isclass(value) and issubclass(value, torch.optim.Optimizer):
            found.setdefault(value.__name__, value)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _torch_name(cls: type) -> str | None:
    """The torch.optim registry name when ``cls`` *is* one of torch's classes, else None."""
    from core.optim.optimizers import OPTIMIZERS

    for name, info in OPTIMIZERS.items():
        if info.cls is cls:
            return name
    return None


def registry_refs() -> list[str]:
    """Every class of pytorch-optimizer's own registry as a ref (the set its tests must cover)."""
    try:
        from pytorch_optimizer.optimizer import OPTIMIZERS
    except ImportError:
        return []
    return sorted({f"pytorch_optimizer:{cls.__name__}" for cls in OPTIMIZERS.values()}, key=str.lower)


def zoo_names() -> list[str]:
    """Every zoo ref that is not simply a torch.optim class, raceable or not, sorted.

    Cheap (no class is run): which of them race is known from `zoo_info` / `zoo_refusals`.
    """
    return [
        f"{package}:{name}"
        for package in ZOO_PACKAGES
        for name, cls in _classes(package).items()
        if _torch_name(cls) is None
    ]


def zoo_info(ref: str, field: str = "optimizer") -> OptimizerInfo:
    """The `OptimizerInfo` of a zoo ref, introspected once and cached.

    An unknown ref, or one that cannot race (`core.optim.introspect.NotRaceable` with its
    reason), raises a `LabError` naming ``field``.
    """
    with _lock:
        cached = _info_cache.get(ref) if isinstance(ref, str) else None
        if cached is None:
            cached = _describe(ref)
            if isinstance(ref, str):
                _info_cache[ref] = cached
    if isinstance(cached, NotRaceable):
        raise NotRaceable(field, cached.title, cached.reason) from None
    if isinstance(cached, LabError):
        raise LabError(field, cached.message) from None
    return cached


def _describe(ref: str) -> OptimizerInfo | LabError:
    from core.optim.introspect import introspect

    package, _, class_name = ref.partition(":") if isinstance(ref, str) else ("", "", "")
    if package not in ZOO_PACKAGES:
        return LabError("optimizer", f"unknown optimizer package {package!r} in {ref!r}; "
                                     f"the zoo has {', '.join(ZOO_PACKAGES)}")
    classes = _classes(package)
    if not classes:
        return LabError("optimizer", f"{_DISTRIBUTIONS[package]} is not installed, so {ref!r} "
                                     "cannot be loaded (make run installs it)")
    cls = classes.get(class_name)
    if cls is None:
        return LabError("optimizer", f"unknown optimizer {ref!r}{_suggestion(ref)}")
    torch_name = _torch_name(cls)
    if torch_name is not None:
        return LabError("optimizer", f"{ref!r} is torch.optim's {cls.__name__}: "
                                     f"name it {torch_name!r}")
    try:
        return introspect(cls, name=ref, title=class_name, group=_GROUPS[package],
                          origin=zoo_origin(package))
    except NotRaceable as err:
        return err


def _suggestion(ref: str) -> str:
    names = zoo_names()
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(ref.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return "; see the optimizer picker for the zoo's names"
    return "; did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


def zoo_refusals() -> dict[str, str]:
    """Every zoo ref (registry classes included) that cannot race → why, in words.

    Runs every class once on a tiny problem (a few seconds for the whole zoo; cached).
    """
    refs = sorted(set(zoo_names()) | set(registry_refs()), key=str.lower)
    refusals = {}
    for ref in refs:
        try:
            zoo_info(ref)
        except NotRaceable as err:
            refusals[ref] = err.reason
        except LabError as err:
            refusals[ref] = err.message
    return refusals
