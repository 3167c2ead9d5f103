"""Optimizers from the user's own code: a class in a ``.py`` file or in an installed module.

Naming (docs/optimizers.md):

* ``opts/lion.py:Lion`` — class ``Lion`` of a Python file. In a lab file the path is relative to the
  lab's folder and written as ``{"class": "opts/lion.py:Lion", "sha256": "…"}``; in memory (in
  ``RunSpec.optimizer``) it is absolute, so that the name alone says which file it is.
* ``mypkg.mod:Class`` — a class of an installed module that is not one of the shipped zoo
  packages (core/optim/zoo.py). It is Python code like a file and needs the same consent.

Loading a class *executes* Python. Nothing here executes anything until `load_code` is called, and
the callers call it only with the user's consent: ``--trust-code`` on the command line
(cli/code_consent.py), a dialog in the window. Until then `core.optim.optimizers.get_optimizer_info`
raises `CodeNotTrusted`. What can be learned without executing — where the file is, the SHA-256 of
its bytes — is here too (`code_file`, `code_hash`): the consent question shows both, and a lab file
records the hash so that a later run can say the code changed since a result was recorded.

A loaded class is described like a zoo optimizer (core/optim/introspect.py: hyperparameters from
its constructor), refined by an optional ``HYPERPARAMS`` dict in the file. Loading the same name
again after the file changed (the GUI's Reset) executes the new content.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from core.errors import LabError

# A user's file is read whole to be hashed and executed; anything bigger is not an optimizer.
MAX_CODE_BYTES = 2_000_000


class CodeNotTrusted(LabError):
    """A lab names user code that has not been loaded with the user's consent."""


@dataclass(frozen=True)
class CodeRef:
    """Which class of whose code: ``kind`` is "file" (``target`` an absolute path) or "module"."""

    kind: str
    target: str
    class_name: str

    @property
    def name(self) -> str:
        """The name in memory: ``/abs/path/opts/lion.py:Lion`` or ``mypkg.mod:Class``."""
        return f"{self.target}:{self.class_name}"

    def written(self, base_dir: str | Path | None) -> str:
        """The name as a lab file in ``base_dir`` writes it (a file's path relative to it)."""
        if self.kind != "file" or base_dir is None:
            return self.name
        try:
            relative = Path(_relpath(self.target, base_dir)).as_posix()
        except ValueError:  # another drive (Windows): only the absolute path can name it
            return self.name
        return f"{relative}:{self.class_name}"


def _relpath(target: str, base_dir: str | Path) -> str:
    import os

    return os.path.relpath(target, Path(base_dir).resolve())


def _zoo_packages() -> tuple[str, ...]:
    from core.optim.zoo import ZOO_PACKAGES

    return ZOO_PACKAGES


def is_code_ref(name: object) -> bool:
    """True for a name that is user code (a file or a non-zoo module), never for a zoo ref."""
    if not isinstance(name, str) or ":" not in name:
        return False
    target = name.rsplit(":", 1)[0]
    if target.endswith(".py"):
        return True
    return target.split(".", 1)[0] not in _zoo_packages()


def parse_code_ref(text: str, base_dir: str | Path | None = None,
                   field: str = "optimizer") -> CodeRef:
    """Read ``path.py:Class`` (relative to ``base_dir``, else the current folder) or
    ``module:Class``; a malformed name is a `LabError` on ``field`` saying the expected form."""
    form = 'like "opts/lion.py:Lion" (a file beside the lab) or "mypackage.module:Lion"'
    if not isinstance(text, str) or ":" not in text:
        raise LabError(field, f"must name a class {form}, got {text!r}")
    target, class_name = text.rsplit(":", 1)
    target = target.strip()
    if not class_name.isidentifier():
        raise LabError(field, f"{class_name!r} is not a Python class name; write it {form}")
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        return CodeRef("file", str(path.resolve()), class_name)
    if not target or not all(part.isidentifier() for part in target.split(".")):
        raise LabError(field, f"{target!r} is neither a .py file nor a module name; write it {form}")
    return CodeRef("module", target, class_name)


def code_file(ref: CodeRef, field: str = "optimizer") -> Path:
    """The file whose bytes will run, found without executing anything.

    A module is looked up along ``sys.path`` the way the import system would, one package level
    at a time, without running any package's ``__init__``.
    """
    if ref.kind == "file":
        path = Path(ref.target)
        if not path.is_file():
            raise LabError(field, f"no such file: {path}")
        return path
    search = None
    spec = None
    for part in ref.target.split("."):
        spec = importlib.machinery.PathFinder.find_spec(part, search)
        if spec is None:
            raise LabError(field, f"no installed module {ref.target!r} (looked along sys.path)")
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise LabError(field, f"module {ref.target!r} has no source file to load")
    return Path(spec.origin)


def _read(path: Path, field: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_CODE_BYTES:
            raise LabError(field, f"{path} is {size} bytes; an optimizer file may be at most "
                                  f"{MAX_CODE_BYTES}")
        return path.read_bytes()
    except OSError as exc:
        raise LabError(field, f"cannot read {path} ({exc.strerror or exc})") from None


def code_hash(ref: CodeRef, field: str = "optimizer") -> str:
    """SHA-256 (hex) of the bytes that would run for ``ref``: what consent is given to."""
    return hashlib.sha256(_read(code_file(ref, field), field)).hexdigest()


@dataclass(frozen=True)
class LoadedCode:
    ref: CodeRef
    sha256: str
    info: object  # core.optim.optimizers.OptimizerInfo (typed loosely: that module imports this)
    module: ModuleType


# name -> what was loaded for it last (the newest content wins; older races keep their classes).
_LOADED: dict[str, LoadedCode] = {}


def loaded_info(name: str):
    """The `OptimizerInfo` of user code loaded under ``name``, or None when it has not been."""
    loaded = _LOADED.get(name)
    return None if loaded is None else loaded.info


def loaded_hash(name: str) -> str | None:
    """The SHA-256 of the content loaded under ``name`` (None when nothing was loaded)."""
    loaded = _LOADED.get(name)
    return None if loaded is None else loaded.sha256


def is_current(ref: CodeRef) -> bool:
    """Whether ``ref`` is loaded and its file still holds the content that was loaded."""
    loaded = _LOADED.get(ref.name)
    if loaded is None:
        return False
    try:
        return code_hash(ref) == loaded.sha256
    except LabError:
        return False


def _execute(path: Path, source: bytes, sha256: str, field: str) -> ModuleType:
    """Run the file as a fresh module (registered in sys.modules: pickling and dataclasses need it)."""
    module_name = f"descent_lab_user_{sha256[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        code = compile(source, str(path), "exec")
        exec(code, module.__dict__)  # noqa: S102 — the user consented to running this file
    except BaseException as exc:  # a SyntaxError, an ImportError, anything the file raises
        sys.modules.pop(module_name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise LabError(field, f"{path} stopped the program while loading ({type(exc).__name__})") from None
        where = traceback.extract_tb(exc.__traceback__)
        line = next((f" (line {frame.lineno})" for frame in reversed(where)
                     if frame.filename == str(path)), "")
        if isinstance(exc, SyntaxError) and exc.lineno:
            line = f" (line {exc.lineno})"
        raise LabError(field, f"{path} failed to load{line}: {type(exc).__name__}: {exc}") from None
    return module


def _optimizer_classes(module: ModuleType) -> list[str]:
    import torch

    return sorted(
        name for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
        and value is not torch.optim.Optimizer
    )


def load_code(ref: CodeRef, field: str = "optimizer"):
    """Execute ``ref``'s code (only with the user's consent!) and describe its class.

    Returns the `OptimizerInfo`, also registered under ``ref.name`` for
    `core.optim.optimizers.get_optimizer_info`. The same content is executed once per process;
    changed content is executed again and replaces the old description.
    """
    import torch

    from core.optim.introspect import introspect

    path = code_file(ref, field)
    source = _read(path, field)
    sha256 = hashlib.sha256(source).hexdigest()
    loaded = _LOADED.get(ref.name)
    if loaded is not None and loaded.sha256 == sha256:
        return loaded.info
    if ref.kind == "module":
        # An installed module is imported as itself: its package's relative imports then work.
        try:
            module = importlib.import_module(ref.target)
            if loaded is not None:  # the module's file changed since it was imported
                module = importlib.reload(module)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise LabError(field, f"module {ref.target!r} failed to import: "
                                  f"{type(exc).__name__}: {exc}") from None
    else:
        module = _execute(path, source, sha256, field)
    cls = getattr(module, ref.class_name, None)
    if cls is None:
        found = _optimizer_classes(module)
        hint = (f"; its optimizer classes are {', '.join(found)}" if found
                else "; it defines no torch.optim.Optimizer subclass")
        raise LabError(field, f"{path} has no class {ref.class_name!r}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise LabError(field, f"{ref.class_name} in {path} is not a torch.optim.Optimizer subclass")
    overrides = getattr(module, "HYPERPARAMS", None)
    info = introspect(
        cls, name=ref.name, title=ref.class_name, group="yours",
        origin=f"{path} (sha256 {sha256[:12]})", overrides=overrides,
    )
    _LOADED[ref.name] = LoadedCode(ref, sha256, info, module)
    return info
