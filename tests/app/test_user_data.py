"""Nothing is written inside the installed app: a sweep of a bundled example keeps its SQLite
study (and the CLI its output folder) in the user data folder (core/user_data.py; the tests point
it at a throwaway folder), Save on an example asks where, and the Open / Save / Export dialogs
start in the user's folders, never in resources/."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from app.export.dialog import ExportDialog
from core.user_data import RESOURCES_DIR, folder_for_lab, is_bundled, user_data_dir

EXAMPLE = RESOURCES_DIR / "labs" / "ravine.lab.json"


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "user-data"
    monkeypatch.setenv("DESCENT_LAB_DATA_DIR", str(folder))
    return folder


def test_user_data_dir_follows_the_platform_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("DESCENT_LAB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_data_dir() == tmp_path / "descent-lab"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # the spec ignores a relative one
    assert user_data_dir() == Path.home() / ".local" / "share" / "descent-lab"
    assert is_bundled(EXAMPLE) and not is_bundled(tmp_path / "mine.lab.json")
    assert folder_for_lab(tmp_path / "mine.lab.json") == tmp_path


def test_a_sweep_of_a_bundled_example_writes_nothing_under_resources(data_dir, capsys):
    from cli.sweep import register

    before = _files_under(RESOURCES_DIR)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    # The defaults a user gets: no --storage (a SQLite study) and no --out.
    args = parser.parse_args(["sweep", str(EXAMPLE), "--trials", "2", "--param", "lr=1e-3:1e-1"])
    assert args.handler(args) == 0
    assert _files_under(RESOURCES_DIR) == before
    written = {p.relative_to(data_dir).as_posix() for p in _files_under(data_dir)}
    assert "examples/ravine.sweeps.db" in written
    assert any(name.startswith("examples/ravine-sweep/") for name in written)
    assert str(data_dir / "examples") in capsys.readouterr().out


def test_sweep_window_offers_the_data_folder_for_an_example(window, data_dir):
    assert window.open_lab(EXAMPLE)
    sweep = window.open_tool("sweep")
    url = sweep.settings.storage()
    assert url == f"sqlite:///{data_dir / 'examples' / 'ravine.sweeps.db'}"
    assert "data folder" in sweep.storage_combo.currentText()
    sweep.close()


def test_save_of_an_example_asks_where_and_dialogs_start_outside_the_app(window, monkeypatch):
    asked: list[str] = []

    def fake_dialog(_parent, _caption, start, _filter=""):
        asked.append(start)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_dialog)
    before = EXAMPLE.read_bytes()
    assert window.open_lab(EXAMPLE)
    # Nothing edited, yet Save must not write into the app: it asks where (cancelled here).
    assert window.save() is False
    window.open_dialog()
    dialog = ExportDialog(window)
    dialog._ask_path("Save picture", "map.png", "PNG (*.png)")
    dialog.close()
    assert len(asked) == 3
    for start in asked:
        assert not is_bundled(start), start
    assert EXAMPLE.read_bytes() == before


def test_dialogs_start_in_the_folder_of_the_users_own_lab(window, monkeypatch, tmp_path):
    from core.lab.format import default_lab, save_lab

    mine = tmp_path / "mine.lab.json"
    save_lab(default_lab(), mine)
    assert window.open_lab(mine)
    assert window.open_lab(EXAMPLE)  # an example opened after it does not move the default
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda _p, _c, start, _f="": (asked.append(start), ("", ""))[1])
    window.open_dialog()
    assert asked == [str(tmp_path)]


def test_csv_browse_of_a_network_example_starts_outside_the_app(qtbot):
    from PySide6.QtWidgets import QPushButton

    from app.network.problem_panel import NetworkProblemPanel
    from core.lab.format import load_lab

    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    panel.set_lab(load_lab(RESOURCES_DIR / "labs" / "moons_race.lab.json"))
    asked: list[str] = []
    panel.open_file_dialog = lambda _parent, _caption, start, _filter: (asked.append(start),
                                                                        ("", ""))[1]
    panel.findChild(QPushButton, "csvBrowseButton").click()
    assert len(asked) == 1 and not is_bundled(asked[0])
