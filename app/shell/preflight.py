"""Before the window opens: can Qt start here? Imports no Qt (main.py calls it before any).

Qt ≥ 6.5's xcb platform plugin (X11) needs system libraries a fresh Debian/Ubuntu machine may
lack (libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, …). Without them Qt prints "Could not load
the Qt platform plugin xcb" and aborts the process (SIGABRT). So, where Qt will use xcb:

- ``ldd`` on PySide6's ``libqxcb.so`` and its ``libQt6XcbQpa`` lists the libraries not found;
- as root with apt-get, the packages that provide them are installed through
  scripts/system-deps.sh (the one list of system packages, with the soname → package table);
- otherwise it stops with one message naming the exact ``apt-get install`` line (exit 1).

Without a display (no DISPLAY nor WAYLAND_DISPLAY) it says so in one line: start it in a desktop
session or under a virtual X server (``xvfb-run -a make run``). Offscreen and the other
platforms are not checked. `decide` is the whole policy as a pure function (tested); `check_gui`
gathers its inputs from this machine and acts.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_DEPS = ROOT / "scripts" / "system-deps.sh"
EXIT_SETUP = 1  # the machine, not the user's input (that is 2, main.py)


@dataclass(frozen=True)
class Decision:
    """What to do before starting Qt: ``action`` is one of

    - ``"start"``: go on (nothing missing, or a platform this does not check);
    - ``"no-display"``: stop, ``message`` says how to run it;
    - ``"install"``: install ``packages`` (root with apt-get), then check again;
    - ``"report"``: stop, ``message`` names the libraries and the apt-get line.
    """

    action: str
    message: str = ""
    packages: tuple[str, ...] = field(default=())


def platform_of(env: Mapping[str, str]) -> str | None:
    """The platform plugin Qt will load first, or None when it is left to Qt and there is no
    display at all. ``QT_QPA_PLATFORM`` may be a list ("wayland;xcb") with options ("xcb:…")."""
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip().lower()
    wayland = bool(env.get("WAYLAND_DISPLAY"))
    if wayland and (env.get("XDG_SESSION_TYPE") == "wayland" or not env.get("DISPLAY")):
        return "wayland"  # Qt 6 prefers its wayland plugin in a Wayland session
    return "xcb" if env.get("DISPLAY") else None


def apt_line(packages: Sequence[str], is_root: bool) -> str:
    return ("" if is_root else "sudo ") + "apt-get install -y " + " ".join(packages)


def decide(env: Mapping[str, str], missing: Sequence[str], is_root: bool, has_apt: bool,
           table: Mapping[str, str]) -> Decision:
    """The policy. ``missing``: sonames ``ldd`` reported "not found" for the xcb plugin;
    ``table``: soname → Debian package (scripts/system-deps.sh)."""
    platform = platform_of(env)
    if platform is None:
        return Decision("no-display", "descent-lab: no display (DISPLAY and WAYLAND_DISPLAY are "
                        "unset): start it in a desktop session, or under a virtual X server "
                        "with `xvfb-run -a make run` (the sub-commands of main.py need no display)")
    if platform != "xcb":
        return Decision("start")  # offscreen, wayland, eglfs, …: not checked here
    if not env.get("DISPLAY"):
        return Decision("no-display", "descent-lab: QT_QPA_PLATFORM=xcb but DISPLAY is unset: "
                        "start it in a desktop session, or with `xvfb-run -a make run`")
    if not missing:
        return Decision("start")
    packages = tuple(dict.fromkeys(table[lib] for lib in missing if lib in table))
    unknown = [lib for lib in missing if lib not in table]
    libs = ", ".join(missing)
    if packages and is_root and has_apt and not unknown:
        return Decision("install", f"descent-lab: Qt's xcb platform plugin misses {libs}; "
                        f"installing {' '.join(packages)} (scripts/system-deps.sh)", packages)
    head = f"descent-lab: Qt's xcb platform plugin cannot load: missing {libs}."
    if packages and has_apt:
        tail = f" Install them with: {apt_line(packages, is_root)}"
        if unknown:
            tail += f" (and a package that provides {', '.join(unknown)})"
    elif packages:
        tail = (f" Install the Debian/Ubuntu packages {' '.join(packages)} or your system's "
                "equivalent")
    else:
        tail = " Install the packages that provide them with your system's package manager"
    return Decision("report", head + tail, packages)


def xcb_plugin_files() -> list[Path]:
    """PySide6's xcb plugin and the Qt library it is built on (found without importing Qt)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return []
    qt = Path(list(spec.submodule_search_locations)[0]) / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    return [f for f in files if f.exists()]


def missing_libraries(files: Sequence[Path]) -> list[str] | None:
    """Sonames ``ldd`` reports "not found" for ``files`` (in order, once each); None when ldd
    is not there to ask."""
    if not files or shutil.which("ldd") is None:
        return None
    missing: dict[str, None] = {}
    for path in files:
        try:
            result = subprocess.run(["ldd", str(path)], capture_output=True, text=True,
                                    timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        for line in result.stdout.splitlines():
            name, _, where = line.strip().partition("=>")
            if where.strip() == "not found":
                missing[name.strip()] = None
    return list(missing)


def package_table() -> dict[str, str]:
    """soname → Debian package, from scripts/system-deps.sh (empty when it cannot be read)."""
    try:
        result = subprocess.run(["bash", str(SYSTEM_DEPS), "table"], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    table: dict[str, str] = {}
    for line in result.stdout.splitlines():
        package, _, check = line.partition(" ")
        if check and check != "-" and not check.startswith("cmd:"):
            for lib in check.split(","):
                table[lib] = package
    return table


def check_gui(env: Mapping[str, str] | None = None) -> int:
    """0 when Qt may start; else the exit code, after one message on stderr."""
    env = os.environ if env is None else env
    if sys.platform != "linux" or platform_of(env) not in (None, "xcb"):
        return 0
    missing = missing_libraries(xcb_plugin_files()) if env.get("DISPLAY") else []
    if missing is None:
        return 0  # no PySide6 wheel layout or no ldd: leave it to Qt
    is_root = getattr(os, "geteuid", lambda: -1)() == 0
    has_apt = shutil.which("apt-get") is not None
    table = package_table() if missing else {}
    decision = decide(env, missing, is_root, has_apt, table)
    if decision.action == "install":
        print(decision.message, file=sys.stderr)
        subprocess.run(["bash", str(SYSTEM_DEPS), "install", *decision.packages], check=False)
        still = missing_libraries(xcb_plugin_files()) or []
        if not still:
            return 0
        decision = decide(env, still, is_root, has_apt=False, table=table)
    if decision.action == "start":
        return 0
    print(decision.message, file=sys.stderr)
    return EXIT_SETUP


if __name__ == "__main__":
    sys.exit(check_gui())
