"""The native kernel cache cannot be planted (core/landscape/native.py).

A library in the cache is code the app runs. Where ``~/.cache`` cannot be used the cache falls
back to ``<tmp>/descent-lab-native-<uid>``, a name anyone can predict and create first. These
tests plant a real, working copy of the kernel in such folders and check it is never loaded
(not in this process's memory map) and that the surfaces say why they run on torch instead.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
import torch

from core.landscape import engines, native
from core.landscape import fused as landscape_fused
from core.landscape import surfaces as landscape
from tests.core.test_landscape_fused import _case

pytestmark = pytest.mark.skipif(
    native.compiler() is None,
    reason="no C compiler: nothing is built or loaded from any cache, so nothing to plant")

KERNEL = "mlp_plane"


@pytest.fixture
def kernel_copy(monkeypatch, tmp_path):
    """A real library of the kernel (built into a scratch cache), then a clean slate: nothing
    remembered, native kernels on, ``~/.cache`` a file (so unusable) and an empty temp dir."""
    monkeypatch.delenv("DESCENT_LAB_NATIVE", raising=False)
    monkeypatch.setenv("DESCENT_LAB_NATIVE_CACHE", str(tmp_path / "scratch"))
    native.forget()
    assert native.load(KERNEL) is not None, native.unavailable_reason(KERNEL)
    (built,) = (tmp_path / "scratch").glob(f"{KERNEL}-*")
    native.forget()
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("DESCENT_LAB_NATIVE_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    yield built
    native.forget()


def _plant(folder: Path, library: Path, mode: int) -> Path:
    """``folder`` with ``library`` in it under the name the kernel is looked up by, chmod
    ``mode`` (after mkdir, so the umask does not soften it)."""
    folder.mkdir(parents=True, exist_ok=True)
    planted = folder / library.name
    shutil.copy2(library, planted)
    os.chmod(folder, mode)
    return planted


def _fallback() -> Path:
    """The predictable name: the one another user would create first."""
    return Path(tempfile.gettempdir()) / f"descent-lab-native-{os.getuid()}"


def _mapped(path: Path) -> bool:
    """Whether ``path`` is loaded into this process (Linux: /proc/self/maps)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps here to see what is loaded")
    return str(path) in maps.read_text()


def _surface_engine():
    model, x, y, loss_fn = _case("relu-two-class")
    with torch.no_grad():
        return landscape._engine(model, x, y, loss_fn)


def test_the_fallback_folder_is_created_private_and_the_kernel_loads_from_it(kernel_copy):
    assert native.load(KERNEL) is not None, native.unavailable_reason(KERNEL)
    folder = _fallback()
    assert native.fallback_cache_dir() == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (library,) = folder.glob(f"{KERNEL}-*")
    assert _mapped(library)


def test_a_world_writable_fallback_folder_made_beforehand_is_not_used(kernel_copy):
    folder = _fallback()
    planted = _plant(folder, kernel_copy, 0o777)
    assert native.load(KERNEL) is None
    reason = native.unavailable_reason(KERNEL)
    assert str(folder) in reason and "writable by group or others" in reason
    assert not _mapped(planted) and planted.exists()
    engine = _surface_engine()
    assert type(engine) is engines.MlpEngine  # the torch engine
    assert str(folder) in landscape_fused.describe_engine(engine)


def test_a_main_cache_writable_by_others_is_not_used_nor_swapped_for_the_fallback(
        kernel_copy, monkeypatch, tmp_path):
    main = tmp_path / "cache" / "descent-lab" / "native"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert native.cache_dir() == main
    planted = _plant(main, kernel_copy, 0o757)  # others may write
    assert native.load(KERNEL) is None
    reason = native.unavailable_reason(KERNEL)
    assert str(main) in reason and "chmod 700" in reason
    assert not _mapped(planted)
    assert not _fallback().exists()


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() != 0,
                    reason="giving a folder to another user needs root")
def test_a_folder_or_library_of_another_user_is_not_used(kernel_copy):
    folder = _fallback()
    planted = _plant(folder, kernel_copy, 0o700)
    os.chown(folder, 4242, 4242)
    assert native.load(KERNEL) is None
    reason = native.unavailable_reason(KERNEL)
    assert str(folder) in reason and "belongs to uid 4242" in reason
    assert not _mapped(planted)
    # The folder ours again, the library in it someone else's: still refused.
    os.chown(folder, os.getuid(), os.getgid())
    os.chown(planted, 4242, 4242)
    native.forget()
    assert native.load(KERNEL) is None
    assert str(planted) in native.unavailable_reason(KERNEL)
    assert not _mapped(planted)
