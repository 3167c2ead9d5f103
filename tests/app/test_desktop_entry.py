"""``descent-lab --install-desktop-entry`` puts the app in the user's desktop menu with its icon
(under a temporary XDG_DATA_HOME here) and ``--uninstall-desktop-entry`` takes it out again."""

from __future__ import annotations

import configparser

from PySide6.QtGui import QImage

import main
from app.shell import desktop_entry


def test_icon_files_are_real_pictures_of_each_size():
    files = desktop_entry.icon_files()
    assert files["scalable"].read_text(encoding="utf-8").lstrip().startswith("<svg")
    for size in desktop_entry.ICON_SIZES:
        image = QImage(str(files[f"{size}x{size}"]))
        assert (image.width(), image.height()) == (size, size)
        # Drawn, not blank: the tile's corners are transparent, its middle is not.
        assert image.pixelColor(0, 0).alpha() == 0
        assert image.pixelColor(size // 2, size // 2).alpha() == 255


def test_application_gets_the_icon(qapp):
    desktop_entry.apply_app_identity(qapp)
    sizes = {(s.width(), s.height()) for s in qapp.windowIcon().availableSizes()}
    assert {(16, 16), (48, 48), (256, 256)} <= sizes
    assert qapp.desktopFileName() == "descent-lab"


def test_install_and_uninstall_desktop_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main.main(["--install-desktop-entry"]) == 0
    entry = tmp_path / "applications" / "descent-lab.desktop"
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(entry.read_text(encoding="utf-8"))
    section = parsed["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "Descent Lab"
    assert section["Icon"] == "descent-lab"
    assert section["Exec"].endswith(" %f") and section["Exec"].split()[0]
    for key, source in desktop_entry.icon_files().items():
        copied = tmp_path / "icons" / "hicolor" / key / "apps" / f"descent-lab{source.suffix}"
        assert copied.read_bytes() == source.read_bytes()
    assert "installed" in capsys.readouterr().out

    assert main.main(["--uninstall-desktop-entry"]) == 0
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert main.main(["--uninstall-desktop-entry"]) == 0  # nothing left: says so, no error
    assert "no desktop entry" in capsys.readouterr().out


def test_desktop_flag_refuses_extra_arguments(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main.main(["--install-desktop-entry", "x"]) == main.EXIT_USER_ERROR
    assert "takes no other argument" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
