"""Native kernels: small C files of core/ compiled on first use with the system's C compiler.

A kernel is one self-contained C11 file next to this module (no Python or torch headers), built
into a shared library with ``-O3 -march=native`` and loaded with ctypes. ctypes releases the GIL
for the call, so a kernel running in a worker thread leaves the GUI thread free.

The library is cached in ``$XDG_CACHE_HOME/descent-lab/native`` (``~/.cache/...``; the
``DESCENT_LAB_NATIVE_CACHE`` environment variable overrides it; a private temporary directory
when that cannot be created), named by a hash of the source, the compiler, its flags and the CPU
(``-march=native`` code runs only where it was built). It is written to a temporary name and
renamed into place, so two processes building at once, or a build that is killed, never leave a
broken library behind. A build takes about half a second, once.

A library is code this process runs, so its folder must be ours alone: it is created 0700, and
before anything in it is built or loaded the folder must be owned by this user and writable by
nobody else (the library file too). The temporary fallback has a predictable name
(``<tmp>/descent-lab-native-<uid>``) that another user could create first, world-writable, to
plant a library; such a folder, or a main cache in the same state, is not used: `load` gives
None with the reason naming the folder, and the surfaces run on the torch engine.

Where there is no C compiler, or the build fails, `load` returns None and says why in
`unavailable_reason`; callers then use their torch code, which gives the same numbers more slowly.
``DESCENT_LAB_NATIVE=0`` turns native kernels off (to compare, or to rule them out).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
# -ffp-contract=fast: a·b + c as one fused multiply-add (half the instructions, one rounding).
# -fno-trapping-math: lets the compiler turn `v < 0 ? 0 : v` into a vector blend.
# No -ffast-math: NaN and inf must come out as torch gives them, and sums keep their order.
FLAGS = ("-O3", "-std=gnu11", "-fPIC", "-shared", "-ffp-contract=fast", "-fno-math-errno",
         "-fno-trapping-math")
NATIVE_ARCH = ("-march=native", "-mprefer-vector-width=256")
BUILD_TIMEOUT_S = 120.0

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_reasons: dict[str, str] = {}


def enabled() -> bool:
    """False when the user turned native kernels off with DESCENT_LAB_NATIVE=0."""
    return os.environ.get("DESCENT_LAB_NATIVE", "1").strip().lower() not in ("0", "false", "no",
                                                                           "off")


def cache_dir() -> Path:
    override = os.environ.get("DESCENT_LAB_NATIVE_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "descent-lab" / "native"


def compiler() -> list[str] | None:
    """The C compiler command: $CC, else the one Python was built with, else cc / gcc / clang."""
    candidates = [os.environ.get("CC", ""), sysconfig.get_config_var("CC") or "", "cc", "gcc",
                  "clang"]
    for candidate in candidates:
        words = shlex.split(candidate)
        if words and shutil.which(words[0]):
            return words
    return None


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU model and its feature flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            wanted = [line for line in handle
                      if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(wanted)))
    except OSError:
        return platform.processor() + platform.machine()


class UnsafeCacheError(OSError):
    """A cache folder or library that someone else owns or may write: not used."""


def _check_private(path: Path, what: str) -> None:
    """Raise `UnsafeCacheError` unless ``path`` is this user's and writable by nobody else.

    `os.stat` follows a symbolic link: a link planted in a shared folder points to something
    its planter owns, so the owner check refuses it."""
    info = os.stat(path)
    uid = getattr(os, "getuid", lambda: None)()  # no uids on Windows: the mode check only
    if uid is not None and info.st_uid != uid:
        raise UnsafeCacheError(f"{what} {path} belongs to uid {info.st_uid}, not to this user "
                               f"uid {uid}: not used; remove it")
    if info.st_mode & 0o022:
        raise UnsafeCacheError(f"{what} {path} is writable by group or others, mode "
                               f"{info.st_mode & 0o777:o}: not used; remove it or chmod 700 it")


def _private_dir(path: Path) -> Path:
    """``path`` created if missing (0700), then checked by `_check_private`."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.is_dir():
        raise UnsafeCacheError(f"kernel cache {path} is not a folder: not used")
    _check_private(path, "kernel cache")
    return path


def fallback_cache_dir() -> Path:
    """The private temporary cache used when `cache_dir` cannot be created (a read-only home)."""
    user = getattr(os, "getuid", lambda: "user")()
    return Path(tempfile.gettempdir()) / f"descent-lab-native-{user}"


def usable_cache_dir() -> Path:
    """The folder to build into and load from: `cache_dir`, or the temporary fallback when that
    cannot be created. Raises `UnsafeCacheError` when the folder there fails `_check_private`
    (a main cache that fails is not swapped for the fallback: its owner should hear of it)."""
    try:
        return _private_dir(cache_dir())
    except UnsafeCacheError:
        raise
    except OSError:
        return _private_dir(fallback_cache_dir())


def _library_path(name: str, source: bytes, command: list[str],
                  folder: Path | None = None) -> Path:
    digest = hashlib.sha256()
    for part in (source, " ".join(command).encode(), _cpu_signature().encode(),
                 platform.machine().encode()):
        digest.update(part)
        digest.update(b"\0")
    suffix = sysconfig.get_config_var("SHLIB_SUFFIX") or ".so"
    folder = cache_dir() if folder is None else folder
    return folder / f"{name}-{digest.hexdigest()[:16]}{suffix}"


def _build(name: str) -> ctypes.CDLL:
    """Compile (or find in the cache) and load core/<name>.c. Raises OSError with the reason."""
    source_path = HERE / f"{name}.c"
    source = source_path.read_bytes()
    cc = compiler()
    if cc is None:
        raise OSError("no C compiler found: set CC, or install gcc or clang")
    last_error = ""
    folder = usable_cache_dir()
    # -march=native first; a compiler that does not know it (some clang targets) builds without.
    for arch in (NATIVE_ARCH, ()):
        command = [*cc, *FLAGS, *arch]
        target = _library_path(name, source, command, folder)
        if not target.exists():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}-", suffix=".so",
                                                 dir=target.parent)
            os.close(handle)
            try:
                result = subprocess.run([*command, "-o", temporary, str(source_path), "-lm"],
                                        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
                if result.returncode != 0:
                    lines = (result.stderr or result.stdout).strip().splitlines()
                    last_error = lines[-1] if lines else f"exit {result.returncode}"
                    continue
                os.replace(temporary, target)
            except (OSError, subprocess.SubprocessError) as error:
                last_error = str(error)
                continue
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        _check_private(target, "kernel library")
        try:
            return ctypes.CDLL(str(target))
        except OSError:
            target.unlink(missing_ok=True)  # unloadable (damaged?): built afresh next time
            raise
    raise OSError(f"{' '.join(cc)} could not build {source_path.name}: {last_error}")


def load(name: str) -> ctypes.CDLL | None:
    """The compiled core/<name>.c, built on first use; None when unavailable (see the reason)."""
    if not enabled():
        _reasons[name] = "switched off by DESCENT_LAB_NATIVE=0"
        return None
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = _build(name)
                _reasons.pop(name, None)
            except OSError as error:
                _loaded[name] = None
                _reasons[name] = str(error)
        return _loaded[name]


def unavailable_reason(name: str) -> str | None:
    """Why `load(name)` gave None, or None when it has not failed."""
    return _reasons.get(name)


def forget() -> None:
    """Drop what `load` remembered (tests that change the compiler or the switch)."""
    with _lock:
        _loaded.clear()
        _reasons.clear()
