"""The app as a desktop program: its icon (resources/icons/, drawn by scripts/make_icon.py) and the
freedesktop entry ``descent-lab --install-desktop-entry`` writes for the user.

The entry and the icons go under ``$XDG_DATA_HOME`` (default ``~/.local/share``):
``applications/descent-lab.desktop`` and ``icons/hicolor/<n>x<n>/apps/descent-lab.png`` (plus
``scalable/apps/descent-lab.svg``), which is where desktop menus look for a user's programs;
``--uninstall-desktop-entry`` removes exactly those files. Nothing here needs Qt but `app_icon`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

APP_ID = "descent-lab"
ICONS_DIR = Path(__file__).resolve().parents[2] / "resources" / "icons"
ICON_SIZES = (16, 32, 48, 64, 128, 256)


def icon_files() -> dict[str, Path]:
    """The icon files shipped in resources/icons: ``"scalable"`` (the SVG) and ``"<n>x<n>"``."""
    files = {"scalable": ICONS_DIR / f"{APP_ID}.svg"}
    for size in ICON_SIZES:
        files[f"{size}x{size}"] = ICONS_DIR / f"{APP_ID}-{size}.png"
    return files


def app_icon():
    """The window and application icon, every PNG size (so small title bars get a crisp one)."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for key, path in icon_files().items():
        if key != "scalable" and path.exists():
            icon.addFile(str(path))
    return icon


def apply_app_identity(app) -> None:
    """The application's icon (every window inherits it) and the desktop file it belongs to
    (Wayland compositors match windows to ``descent-lab.desktop`` by this name)."""
    app.setWindowIcon(app_icon())
    app.setDesktopFileName(APP_ID)


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute (the spec's rule)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


def launch_command() -> str:
    """How a desktop menu starts the app: the installed ``descent-lab`` command when there is one
    (pip / pipx put it on PATH or beside the interpreter), else this interpreter with main.py."""
    script = shutil.which(APP_ID) or shutil.which(APP_ID, path=str(Path(sys.executable).parent))
    if script:
        return shlex.quote(str(Path(script).resolve()))
    import main

    return f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(main.__file__).resolve()))}"


def entry_text(command: str) -> str:
    """The ``.desktop`` file (Desktop Entry Specification 1.5); %f passes a lab file opened with it."""
    return "\n".join((
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=Descent Lab",
        "GenericName=Optimizer lab",
        "Comment=Watch real PyTorch optimizers race over loss landscapes",
        f"Exec={command} %f",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Education;Science;Math;",
        "Keywords=optimizer;gradient;descent;pytorch;machine learning;",
        "",
    ))


def installed_paths(base: Path | None = None) -> list[Path]:
    """Every file `install` writes (and `uninstall` removes) under ``base`` (XDG_DATA_HOME)."""
    base = base if base is not None else data_home()
    paths = [base / "applications" / f"{APP_ID}.desktop"]
    for key, source in icon_files().items():
        paths.append(base / "icons" / "hicolor" / key / "apps" / f"{APP_ID}{source.suffix}")
    return paths


def install(base: Path | None = None, command: str | None = None) -> list[Path]:
    """Write the desktop entry and copy the icons; returns the files written."""
    base = base if base is not None else data_home()
    entry, *icons = installed_paths(base)
    for source, target in zip(icon_files().values(), icons, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(entry_text(command or launch_command()), encoding="utf-8")
    return [entry, *icons]


def uninstall(base: Path | None = None) -> list[Path]:
    """Remove what `install` wrote (folders it made are left: others' icons live there too)."""
    removed = []
    for path in installed_paths(base):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def run_flag(flag: str) -> int:
    """``--install-desktop-entry`` / ``--uninstall-desktop-entry`` from the command line."""
    try:
        if flag == "--install-desktop-entry":
            written = install()
            print(f"installed {written[0]} and {len(written) - 1} icon files")
        else:
            removed = uninstall()
            print(f"removed {len(removed)} files" if removed else "no desktop entry was installed")
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
