"""A run's optimizer as a lab file names it, and the consent that user code needs before it runs.

A lab file names a run's optimizer three ways (docs/lab-format.md):

* ``"adam"`` — torch.optim; ``"pytorch_optimizer:Lion"`` — a shipped zoo package (no consent);
* ``{"class": "opts/lion.py:Lion", "sha256": "…"}`` — the user's file, relative to the lab's folder,
  with the SHA-256 of its content when the lab was saved;
* ``{"class": "mypkg.mod:Class"}`` (or the plain string) — an installed module: code like a file.

Reading a lab that names user code runs that code only when a ``consent`` callback says yes for
that file and content (`TRUST_ALL` is the command line's ``--trust-code``; the window asks the
user). Code loaded earlier in the process with the same content needs no new consent. Otherwise
the run's field gets `CodeNotTrusted`, which names the file, its hash and how to allow it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.errors import LabError
from core.optim import user_code
from core.optim.user_code import CodeNotTrusted, CodeRef

# Asked before any user code runs: (which class of which file, SHA-256 of its bytes) -> allowed?
Consent = Callable[[CodeRef, str], bool]


def TRUST_ALL(ref: CodeRef, sha256: str) -> bool:  # noqa: N802 — a constant-like callable
    """The command line's ``--trust-code``: every file the lab names may run."""
    return True


def _class_text(value: Any, field: str) -> tuple[str, str | None]:
    """The ``"module:Class"`` text and the recorded SHA-256 (or None) of an optimizer entry."""
    if isinstance(value, str):
        return value, None
    if not isinstance(value, dict):
        raise LabError(field, 'must be an optimizer name like "adam" or an object like '
                              '{"class": "opts/lion.py:Lion"}')
    unknown = set(value) - {"class", "sha256"}
    if unknown:
        raise LabError(f"{field}.{sorted(unknown)[0]}", 'unknown key; an optimizer object has '
                                                        '"class" and optionally "sha256"')
    if "class" not in value or not isinstance(value["class"], str):
        raise LabError(f"{field}.class", 'must be a string like "opts/lion.py:Lion"')
    sha = value.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64
                                and all(c in "0123456789abcdef" for c in sha)):
        raise LabError(f"{field}.sha256", "must be 64 lower-case hex digits (a SHA-256)")
    return value["class"], sha


def optimizer_from_file(value: Any, field: str, base_dir: str | Path | None,
                        consent: Consent | None) -> tuple[str, str | None]:
    """The in-memory optimizer name of a run's ``"optimizer"`` entry, and its recorded SHA-256.

    User code is loaded here — only with consent (see the module docstring).
    """
    text, recorded = _class_text(value, field)
    if isinstance(value, dict) and ":" not in text:
        user_code.parse_code_ref(text, base_dir, field)  # names the expected form
    if not user_code.is_code_ref(text):
        return text, None
    ref = user_code.parse_code_ref(text, base_dir, field)
    if user_code.is_current(ref):
        return ref.name, recorded
    sha256 = user_code.code_hash(ref, field)
    if consent is None or not consent(ref, sha256):
        raise CodeNotTrusted(
            field, f"{ref.written(base_dir)} is Python code (sha256 {sha256[:12]}…); it runs "
                   "only with your consent: the window asks, the command line needs --trust-code")
    user_code.load_code(ref, field)
    return ref.name, recorded


def resolve_optimizer(ref: str, params: Mapping, consent: Consent | None,
                      field: str = "optimizer", params_field: str = "params"):
    """``ref`` and ``params`` as (catalog name, `OptimizerInfo`, torch kwargs): a torch.optim name
    in any case (``"Adam"``), a zoo name, or user code (a path relative to the current folder, or
    ``module:Class``) loaded only when ``consent`` says yes (else `CodeNotTrusted`).
    ``params`` are checked against the optimizer's hyperparameters (a bad one names
    ``params_field.name``). What the command line's ``check-optimizer`` and ``fingerprint`` and
    the Fingerprint window share (cli/check_optimizer.py, app/tools/fingerprint_window.py)."""
    from core.optim.catalog import get_optimizer_info, validate_optimizer_params

    name = ref.strip() if isinstance(ref, str) else ref
    if not isinstance(name, str) or not name:
        raise LabError(field, 'must name an optimizer, like "adam" or "pytorch_optimizer:Lion"')
    if user_code.is_code_ref(name):
        name, _ = optimizer_from_file(name, field, None, consent)
    elif ":" not in name:
        name = name.lower()
    info = get_optimizer_info(name, field=field)
    return name, info, info.torch_kwargs(validate_optimizer_params(name, params,
                                                                   field=params_field))


def optimizer_to_file(name: str, recorded: str | None, base_dir: str | Path | None) -> Any:
    """What a lab file in ``base_dir`` writes for optimizer ``name`` (see the module docstring).

    User code is written with the SHA-256 of the content that is loaded now (the code a result
    saved with the lab came from), else the one the lab was read with.
    """
    if not user_code.is_code_ref(name):
        return name
    ref = user_code.parse_code_ref(name)
    entry: dict[str, Any] = {"class": ref.written(base_dir)}
    sha256 = user_code.loaded_hash(name) or recorded
    if sha256:
        entry["sha256"] = sha256
    return entry


def written_name(name: str, base_dir: str | Path | None) -> str:
    """The optimizer's name as a person reads it in a summary or a table: user code by its path
    relative to the lab (``opts/lion.py:Lion``), any other name as it is."""
    if not user_code.is_code_ref(name):
        return name
    return user_code.parse_code_ref(name).written(base_dir)


def default_label(name: str) -> str:
    """A run's label when the file gives none: the class name of a ``module:Class`` name."""
    return name.rsplit(":", 1)[1] if ":" in name else name


def code_changes(lab) -> list[str]:
    """One line per run whose user code changed since the lab was saved (recorded SHA-256 ≠ the
    content loaded now): results recorded with the lab came from other code."""
    lines = []
    for i, run in enumerate(lab.runs):
        if not user_code.is_code_ref(run.optimizer) or not run.code_sha256:
            continue
        now = user_code.loaded_hash(run.optimizer)
        if now and now != run.code_sha256:
            ref = user_code.parse_code_ref(run.optimizer)
            lines.append(
                f"runs[{i}] ({run.label}): {ref.written(lab.base_dir)} changed since the lab was "
                f"saved (sha256 {run.code_sha256[:12]}… then, {now[:12]}… now)")
    return lines


def code_in_lab(data: Any, base_dir: str | Path | None) -> list[tuple[str, CodeRef]]:
    """The user code a parsed lab file names, as (field, reference), without running anything."""
    found = []
    runs = data.get("runs") if isinstance(data, dict) else None
    for i, run in enumerate(runs if isinstance(runs, list) else []):
        if not isinstance(run, dict) or "optimizer" not in run:
            continue
        field = f"runs[{i}].optimizer"
        try:
            text, _ = _class_text(run["optimizer"], field)
            if user_code.is_code_ref(text):
                found.append((field, user_code.parse_code_ref(text, base_dir, field)))
        except LabError:
            continue  # reading the lab reports it, with the field
    return found
