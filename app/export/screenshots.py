"""Take the README's screenshots from the real window:
``python -m app.export.screenshots [OUT_DIR] [--only NAME ...]`` (``--smoothing``: smoothing.png only).

Runs each example race to the end in a real `MainWindow` (offscreen unless a display is set) and
saves ``widget.grab()`` as PNG, so the pictures in docs/ always show what the app really draws.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from app.export.play_to_end import play_to_end
from app.export.screenshot_3d import ARENA_3D, take_arena_3d
from app.export.screenshot_fingerprint import FINGERPRINT, take_fingerprint

ROOT = Path(__file__).resolve().parents[2]
SHOTS = {
    "arena.png": ROOT / "resources" / "labs" / "banana_race.lab.json",
    "ravine.png": ROOT / "resources" / "labs" / "ravine.lab.json",
    "network.png": ROOT / "resources" / "labs" / "moons_race.lab.json",
}
# The problem kinds' own tabs (README, docs/lab-format.md): a recurrent net's Sequence tab (the
# heat map of ‖∂L/∂h_t‖) and a matrix race's Spectra tab, each lab from its lesson; (lab, tab,
# the run to select).
_LESSONS = ROOT / "resources" / "lessons"
TAB_SHOTS = {
    "sequence-heatmap.png": (_LESSONS / "rnn_memory" / "lstm.lab.json", "Sequence", 0),
    "matrix-spectra-race.png": (_LESSONS / "muon_matrices" / "lesson.lab.json", "Spectra", 2),
}


def take(out_dir: Path, only: set[str] | None = None) -> list[Path]:
    """Write the screenshots (``only`` these file names, when given) into ``out_dir``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
    from app.shell.theme import apply_dark_theme

    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        for name, lab in SHOTS.items():
            if only is not None and name not in only:
                continue
            window = MainWindow(settings=settings)
            window._confirm_discard = lambda: True
            window.resize(1280, 800)
            window.show()
            window.open_lab(lab)
            written.append(race_and_grab(app, window, out_dir / name))
        for name, (lab, tab, run) in TAB_SHOTS.items():
            if only is None or name in only:
                written.append(take_tab(app, settings, lab, tab, run, out_dir / name))
        if only is None or RL_RACE in only:
            written.append(take_new_rl_race(app, settings, out_dir / RL_RACE))
        if only is None or RL_DQN in only:
            written.append(take_new_rl_race(app, settings, out_dir / RL_DQN, RL_DQN_LAB, 0))
        if only is None or ZOO_RACE in only:
            written.append(take_zoo_race(out_dir, settings, Path(tmp)))
        if only is None or "smoothing.png" in only:
            written.append(take_smoothing(out_dir, settings))
        for name, size in START_PAGE_SHOTS.items():
            if only is None or name in only:
                written.append(take_start_page(out_dir / name, size))
        if only is None or SCORECARD in only:
            written.append(take_scorecard(out_dir / SCORECARD))
        if only is None or FINGERPRINT in only:
            written.append(take_fingerprint(out_dir / FINGERPRINT))
        if only is None or ARENA_3D in only:  # OpenGL: under xvfb-run (app/export/screenshot_3d.py)
            shot = take_arena_3d(out_dir)
            written.extend([shot] if shot is not None else [])
    return written


def race_and_grab(app, window, path: Path) -> Path:
    """Play the open lab to its end at full speed, then save the window's picture at ``path``."""
    play_to_end(app, window)
    for _ in range(10):
        app.processEvents()
    window.grab().save(str(path))
    window.close()
    return path


def take_tab(app, settings, lab: Path, tab: str, run: int, path: Path) -> Path:
    """The network view's tab ``tab`` after racing ``lab`` at 1280 × 800, run ``run`` selected."""
    from app.shell.main_window import MainWindow

    window = MainWindow(settings=settings)
    window._confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    window.open_lab(lab)
    tabs = window.network_view.tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == tab))
    window.runs_panel.select_run(run)
    return race_and_grab(app, window, path)


# File ▸ New rl race (core/lab/format.py `default_rl_lab`) raced to its end, Adam selected; and
# the lesson moving_targets's DQN lab (Adam and Adam-Rel at target updates).
RL_RACE, RL_DQN = "rl-reinforce.png", "rl-dqn.png"
RL_DQN_LAB = _LESSONS / "moving_targets" / "dqn.lab.json"


def take_new_rl_race(app, settings, path: Path, lab: Path | None = None, run: int = 2) -> Path:
    """An rl race at 1280 × 800: ``lab``, or File ▸ New rl race's (SGD, RMSprop, Adam on
    CartPole) when None, with run ``run`` selected (2: Adam, whose moments are drawn)."""
    from app.shell.main_window import MainWindow

    window = MainWindow(settings=settings)
    window._confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    if lab is None:
        window.new_rl_lab()
    else:
        window.open_lab(lab)
    window.runs_panel.select_run(run)
    return race_and_grab(app, window, path)


# Adam, a zoo optimizer, Schedule-Free and the user's own class (docs/optimizers.md's Lion) on
# the two moons: the picture of docs/optimizers.md and the README.
ZOO_RACE = "zoo-race.png"


def take_zoo_race(out_dir: Path, settings, tmp: Path) -> Path:
    """``zoo-race.png``: the lab is written beside a copy of docs/optimizers.md's Lion, whose
    content is trusted in a throwaway trust file (the consent a user gives once)."""
    import hashlib
    import json
    import re

    from PySide6.QtWidgets import QApplication

    from app.shell.code_trust import TrustStore
    from app.shell.main_window import MainWindow

    block = re.search(r"```python\n(.*?)```",
                      (ROOT / "docs" / "optimizers.md").read_text(encoding="utf-8"), re.S).group(1)
    source = "\n".join(line[3:] if line.startswith("   ") else line for line in block.splitlines())
    (tmp / "opts").mkdir(exist_ok=True)
    (tmp / "opts" / "lion.py").write_text(source, encoding="utf-8")
    os.environ["DESCENT_LAB_TRUST_FILE"] = str(tmp / "trusted.json")
    TrustStore().trust(hashlib.sha256((tmp / "opts" / "lion.py").read_bytes()).hexdigest())
    lab = json.loads((ROOT / "resources" / "labs" / "moons_race.lab.json").read_text())
    lab["name"] = "Adam, the zoo, Schedule-Free and your own"
    lab["runs"] = [
        {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
        {"label": "Lion (pytorch-optimizer)", "optimizer": "pytorch_optimizer:Lion",
         "params": {"lr": 0.001}},
        {"label": "Schedule-Free AdamW", "optimizer": "schedulefree:AdamWScheduleFree",
         "params": {"lr": 0.01}},
        {"label": "My Lion (opts/lion.py)", "optimizer": {"class": "opts/lion.py:Lion"},
         "params": {"lr": 0.0005}},
    ]
    path = tmp / "zoo_race.lab.json"
    path.write_text(json.dumps(lab, indent=1), encoding="utf-8")
    window = MainWindow(settings=settings)
    window._confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    window.open_lab(path)
    # The runs (with their optimizers' groups) and the curves, rather than the overview.
    for tabs, title in ((window.lab_tabs, "Runs"), (window.network_view.tabs, "Curves")):
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == title))
    return race_and_grab(QApplication.instance(), window, out_dir / ZOO_RACE)


# The scorecard window (Tools ▸ Scorecard…) after a small scorecard: docs/scorecard.md and the
# README. Its studies go to a throwaway storage, so the picture is always trained afresh.
SCORECARD = "scorecard.png"
SCORECARD_ENTRIES = ("sgd", "rmsprop", "adam", "nadam", "radam")
SCORECARD_WORKLOADS = ("ill_quadratic", "rosenbrock", "sine_mlp", "moons_mlp")
SCORECARD_CELL = ("adam", "sine_mlp")  # the time selected, its trials drawn


def take_scorecard(path: Path) -> Path:
    """``scorecard.png``: the window at 1280×800 after 5 entries × 4 workloads, O = 5, S = 1,
    with ``SCORECARD_CELL``'s time selected (its trials drawn)."""
    from PySide6.QtWidgets import QApplication

    from app.shell.document import LabDocument
    from app.tools.scorecard_window import ScorecardWindow
    from core.lab.format import load_lab

    app = QApplication.instance()
    window = ScorecardWindow(LabDocument(load_lab(SHOTS["arena.png"])))
    settings = window.settings
    settings.set_chosen(list(SCORECARD_ENTRIES))
    settings.set_workloads(list(SCORECARD_WORKLOADS))
    settings.trials_spin.setValue(5)
    settings.studies_spin.setValue(1)
    settings.heldout_check.setChecked(False)
    with tempfile.TemporaryDirectory() as tmp:
        settings.storage_edit.setText(str(Path(tmp) / "scorecard.db"))
        window.resize(1280, 800)
        window.show()
        window.start()
        while window.task.is_running():
            app.processEvents()
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()
        # A selected time, so the trials plot shows that cell's curves against the target.
        table = window.table
        table.setCurrentCell(table.entries.index(SCORECARD_CELL[0]),
                             table.workloads.index(SCORECARD_CELL[1]))
        while window.trials_plot.cell is None or window.curve_reads.is_running():
            app.processEvents()
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()
        # The default storage, as a user sees it, rather than the throwaway folder's name.
        settings.storage_edit.setText("~/.local/share/descent-lab/scorecard/scorecard.db")
        settings.storage_edit.setCursorPosition(0)
        window.grab().save(str(path))
        window.shutdown()
        window.close()
    return path


# The start page a newcomer meets (app/shell/start_page.py), at a laptop's and a desktop's size.
START_PAGE_SHOTS = {"start-page.png": (1280, 800), "start-page-1920.png": (1920, 1080)}


def take_start_page(path: Path, size: tuple[int, int]) -> Path:
    """The window at ``size`` with the start page over it, as on a first start (two lessons
    opened, one finished, so the progress marks show)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
    from app.shell.start_page import FINISHED_KEY, OPENED_KEY, show_if_due

    app = QApplication.instance()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        settings.setValue(OPENED_KEY, ["learning_rate", "ravine"])
        settings.setValue(FINISHED_KEY, ["learning_rate"])
        window = MainWindow(settings=settings)
        window._confirm_discard = lambda: True
        window.resize(*size)
        window.show()
        show_if_due(window)
        for _ in range(10):
            app.processEvents()
        window.grab().save(str(path))
        window.close()
    return path


SMOOTHING_STEPS = 400  # a few hundred steps: the fast early fall and the noisy plateau


def take_smoothing(out_dir: Path, settings) -> Path:
    """``smoothing.png``: the network view's Curves tab in a 1280×800 window after
    `SMOOTHING_STEPS` steps of the moons race, from its tabs down to the loss and accuracy
    plots: the smoothing slider at its default, the loss legend ("smoothed 0.90", "raw", "val")
    above the curves, and the smoothed lines over the faint raw mini-batch loss."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow

    app = QApplication.instance()
    window = MainWindow(settings=settings)
    window._confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    window.open_lab(SHOTS["network.png"])
    from app.network.views import TAB_CURVES

    window.network_view.tabs.setCurrentIndex(TAB_CURVES)  # a network lab opens on Overview
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    window.play()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
            window.history is None or window.history.last_step < SMOOTHING_STEPS):
        app.processEvents()
        time.sleep(0.01)
    window.pause()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    window.flush_redraw()
    for _ in range(10):
        app.processEvents()
    view = window.network_view
    plot = view.loss_plot
    bottom = plot.mapTo(view, plot.rect().bottomLeft()).y() + 1
    path = out_dir / "smoothing.png"
    view.grab(QRect(0, 0, view.width(), bottom)).save(str(path))
    window.close()
    return path


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m app.export.screenshots", description=__doc__)
    parser.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        choices=[*SHOTS, *TAB_SHOTS, RL_RACE, RL_DQN, ZOO_RACE, "smoothing.png", *START_PAGE_SHOTS,
                                 SCORECARD, FINGERPRINT, ARENA_3D],
                        help="take only these (default: all of them)")
    parser.add_argument("--smoothing", action="store_true",
                        help="take only smoothing.png (as --only smoothing.png)")
    args = parser.parse_args(argv)
    only = set(args.only) if args.only else None
    if args.smoothing:
        only = (only or set()) | {"smoothing.png"}
    for path in take(args.out_dir, only):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
