"""Before the window: app/shell/preflight.py's decision, the one list of system packages it reads
(scripts/system-deps.sh), and main.py stopping with one line instead of Qt's abort."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.shell import preflight
from app.shell.preflight import decide

ROOT = Path(__file__).resolve().parent.parent
X11 = {"DISPLAY": ":0"}
MISSING = ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
TABLE = {"libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1",
         "libxcb-cursor.so.0": "libxcb-cursor0"}


def test_a_user_with_apt_gets_the_exact_apt_get_line_and_no_qt_start():
    d = decide(X11, MISSING, is_root=False, has_apt=True, table=TABLE)
    assert d.action == "report"
    assert d.message.endswith(
        "Install them with: sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1")
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in d.message and "\n" not in d.message


def test_root_with_apt_installs_exactly_the_missing_packages_once_each():
    missing = [*MISSING, "libxcb-cursor.so.0"]
    table = {**TABLE, "libxcb-util.so.1": "libxcb-icccm4"}  # two sonames of one package
    d = decide(X11, [*missing, "libxcb-util.so.1"], is_root=True, has_apt=True, table=table)
    assert d.action == "install"
    assert d.packages == ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0")
    assert "scripts/system-deps.sh" in d.message


def test_root_without_apt_and_unknown_libraries_are_reported_not_guessed():
    d = decide(X11, MISSING, is_root=True, has_apt=False, table=TABLE)
    assert d.action == "report" and "apt-get" not in d.message
    assert "libxcb-icccm4 libxcb-keysyms1" in d.message
    d = decide(X11, [*MISSING, "libfoo.so.9"], is_root=True, has_apt=True, table=TABLE)
    assert d.action == "report"  # one library no package is known for: nothing installed
    assert "apt-get install -y libxcb-icccm4 libxcb-keysyms1" in d.message
    assert "sudo" not in d.message and "libfoo.so.9" in d.message
    d = decide(X11, ["libfoo.so.9"], is_root=False, has_apt=True, table=TABLE)
    assert d.action == "report" and "apt-get" not in d.message and "libfoo.so.9" in d.message


@pytest.mark.parametrize("env", [{}, {"QT_QPA_PLATFORM": "xcb"},
                                 {"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}])
def test_no_display_is_said_in_one_line_with_how_to_run_it(env):
    d = decide(env, [], is_root=False, has_apt=True, table=TABLE)
    assert d.action == "no-display"
    assert "xvfb-run -a make run" in d.message and "desktop session" in d.message
    assert "\n" not in d.message


@pytest.mark.parametrize("env", [
    {"QT_QPA_PLATFORM": "offscreen"},
    {"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"},
    {"QT_QPA_PLATFORM": "minimal"},
    {"QT_QPA_PLATFORM": "wayland;xcb", "WAYLAND_DISPLAY": "wayland-0"},
    {"WAYLAND_DISPLAY": "wayland-0"},
    {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"},
])
def test_offscreen_and_other_platforms_are_not_checked(env):
    assert decide(env, MISSING, is_root=False, has_apt=True, table=TABLE).action == "start"


@pytest.mark.parametrize("env", [X11, {"QT_QPA_PLATFORM": "xcb:nomitshm", "DISPLAY": ":1"},
                                 {"DISPLAY": ":0", "WAYLAND_DISPLAY": "w",
                                  "XDG_SESSION_TYPE": "x11"}])
def test_xcb_with_nothing_missing_starts(env):
    assert preflight.platform_of(env) == "xcb"
    assert decide(env, [], is_root=False, has_apt=True, table=TABLE).action == "start"
    assert decide(env, MISSING, is_root=False, has_apt=True, table=TABLE).action == "report"


def test_the_one_list_maps_every_system_library_the_xcb_plugin_needs():
    """Every shared library PySide6's xcb plugin (and the Qt libraries it loads) needs from the
    system has a package in scripts/system-deps.sh, so whichever one a machine lacks, the
    preflight can name or install its package."""
    files = preflight.xcb_plugin_files()
    if not files or not shutil.which("readelf") or not shutil.which("ldd"):
        pytest.skip("needs PySide6's wheel layout, readelf and ldd")
    qt_lib = files[0].parents[2] / "lib"
    bundled = {p.name for p in qt_lib.iterdir()}
    closure = list(files)
    for line in subprocess.run(["ldd", str(files[0])], capture_output=True,
                               text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and str(qt_lib) in parts[2]:
            closure.append(Path(parts[2]))
    needed = set()
    for path in closure:
        dynamic = subprocess.run(["readelf", "-d", str(path)], capture_output=True,
                                 text=True).stdout
        needed |= {line.split("[")[1].split("]")[0] for line in dynamic.splitlines()
                   if "(NEEDED)" in line}
    glibc = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
             "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
    system = {lib for lib in needed if lib not in bundled and lib not in glibc}
    assert {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"} <= system
    table = preflight.package_table()
    assert system - set(table) == set()
    assert table["libxcb-cursor.so.0"] == "libxcb-cursor0"


def test_the_one_list_holds_what_ci_installed_and_ci_uses_it():
    listed = subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh"), "table"],
                            capture_output=True, text=True, check=True).stdout
    packages = {line.split()[0] for line in listed.splitlines()}
    assert {"gcc", "libc6-dev", "xvfb", "xauth", "libgl1-mesa-dri", "libegl1", "libgl1",
            "libxkbcommon0", "libfontconfig1", "libdbus-1-3", "libxkbcommon-x11-0",
            "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
            "libxcb-render-util0", "libxcb-randr0", "libxcb-shape0", "libxcb-xfixes0",
            "libxcb-xinerama0"} <= packages
    assert "scripts/system-deps.sh install" in (ROOT / ".ci" / "run").read_text()
    refused = subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh"), "install",
                              "not-in-the-list"], capture_output=True, text=True)
    assert refused.returncode == 2 and "not-in-the-list is not in the list" in refused.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the xcb preflight is for Linux")
def test_main_without_a_display_stops_with_one_line_instead_of_a_qt_abort(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HOME"] = str(tmp_path)  # no recovery file or settings of the user's
    result = subprocess.run([sys.executable, str(ROOT / "main.py")], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "descent-lab: no display (DISPLAY and WAYLAND_DISPLAY are unset): start it in a desktop "
        "session, or under a virtual X server with `xvfb-run -a make run` (the sub-commands of "
        "main.py need no display)"]
