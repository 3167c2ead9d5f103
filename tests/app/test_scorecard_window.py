"""The scorecard window (Tools ▸ Scorecard…): a tiny scorecard run through the window gives the
same result as `run_scorecard` called directly, its profile curves are profiles.py's ρ(τ), a
double-clicked time opens that cell's best trial as the main lab, a selected time draws every
trial of its cell against the target, scorecard.json equals the CLI's bytes, closing mid-run
leaves no thread, and bad input names its field."""

from __future__ import annotations

import argparse
import math

import pytest

from app.shell.document import LabDocument
from app.tools.scorecard_window import ScorecardWindow
from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab
from core.tools.scorecard import profiles
from core.tools.scorecard.run import ScorecardSpec, entry, run_scorecard
from core.tools.scorecard.workloads import load_suite, pick

ENTRIES = ("rmsprop", "adam")  # in the order the window lists them (torch.optim's)
WORKLOADS = ("ill_quadratic", "rosenbrock")  # in suite.json's order, as the window lists them


def _lab() -> Lab:
    return validate_lab(Lab(name="banana", steps=10,
                            problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                            runs=(RunSpec("SGD", "sgd", {"lr": 1e-3}),)))


@pytest.fixture
def scorecard_window(qtbot):
    window = ScorecardWindow(LabDocument(_lab()))
    qtbot.addWidget(window)
    yield window
    window.shutdown()


def _set(window: ScorecardWindow, storage, trials=2, studies=1, heldout=False) -> None:
    s = window.settings
    s.set_chosen(list(ENTRIES))
    s.set_workloads(list(WORKLOADS))
    s.trials_spin.setValue(trials)
    s.studies_spin.setValue(studies)
    s.heldout_check.setChecked(heldout)
    s.seed_spin.setValue(0)
    s.storage_edit.setText(str(storage))


def _direct(storage) -> dict:
    return run_scorecard(ScorecardSpec([entry(n, n) for n in ENTRIES],
                                       pick(load_suite(), list(WORKLOADS)), trials=2, studies=1,
                                       heldout=False, seed=0, storage=str(storage)))


def _plotted(curve, tau: float) -> float:
    """The plotted step curve's value at ``tau`` (the last point at or left of it)."""
    xs, ys = curve.getData()
    value = None
    for x, y in zip(xs, ys):
        if x <= tau:
            value = y
    return value


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    """The same scorecard as the window's, run by calling run_scorecard on its own storage."""
    return _direct(tmp_path_factory.mktemp("direct") / "direct.db")


def test_the_window_gives_run_scorecards_numbers_profiles_labs_and_the_clis_json(
        scorecard_window, qtbot, tmp_path, direct):
    window = scorecard_window
    _set(window, tmp_path / "window.db")
    assert window.start()
    qtbot.waitUntil(lambda: not window.task.is_running(), timeout=120_000)
    assert window.result is not None, window.error_label.text()
    # The same JSON as the direct call (on another storage: nothing shared but the spec).
    assert window.result == direct
    assert "4 / 4 studies" in window.progress_label.text() or "Done" in \
        window.progress_label.text()

    # The table shows the direct times (a miss marked) and each entry's B.
    table = window.table
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert header[:2] == list(WORKLOADS)
    for row, name in enumerate(ENTRIES):
        for column, workload in enumerate(WORKLOADS):
            t = direct["times"][name][workload]
            assert table.item(row, column).text() == ("miss" if t is None else f"{t:g}")
        assert table.item(row, 2).text() == f"{direct['score_steps'][name]:.3f}"
    assert any(direct["times"][n][w] is not None for n in ENTRIES for w in WORKLOADS)

    # The plotted profiles are ρ(τ) of the direct ratios, at every τ of a fine grid of [1, 4].
    for name in ENTRIES:
        ratios = {w: math.inf if r is None else r
                  for w, r in direct["ratios_steps"][name].items()}
        for i in range(301):
            tau = 1.0 + 3.0 * i / 300
            assert _plotted(window.plot.curves[name], tau) == profiles.rho(ratios, tau), tau
        assert f"B = {direct['score_steps'][name]:.3f}" in window.plot.curves[name].name()

    # Double-clicking a time opens that cell's best trial as the main window's (undoable) lab.
    name, workload = next((n, w) for n in ENTRIES for w in WORKLOADS
                          if direct["times"][n][w] is not None)
    row, column = ENTRIES.index(name), WORKLOADS.index(workload)
    best = min((s for s in direct["studies_detail"][name][workload]
                if s.get("trial") is not None), key=lambda s: s["steps"])
    with qtbot.waitSignal(window.lab_opened, timeout=5_000):
        table.cellDoubleClicked.emit(row, column)
    lab = window.document.lab
    assert [r.optimizer for r in lab.runs] == [name]
    assert lab.runs[0].params["lr"] == best["lr"]
    suite_lab = load_suite()[workload].lab
    assert lab.seed == suite_lab.seed  # study 0: the lab's own seed
    assert lab.steps == direct["workloads"][workload]["budget"]
    assert lab.problem == suite_lab.problem
    window.document.undo_stack.undo()
    assert window.document.lab == _lab()

    # scorecard.json from the window is byte for byte the CLI's (main.py scorecard) for the same
    # storage (the CLI reads the finished studies).
    from cli.scorecard import handle

    out = tmp_path / "cli"
    handle(argparse.Namespace(entries=",".join(ENTRIES), workloads=",".join(WORKLOADS),
                              suite=None, ruleset="external", trials=2, studies=1,
                              no_heldout=True, seed=0, storage=str(tmp_path / "window.db"),
                              out=str(out), trust_code=False))
    mine = window.export_json(tmp_path / "mine.json")
    assert mine.read_bytes() == (out / "scorecard.json").read_bytes()
    md = window.export_markdown(tmp_path / "table.md").read_text(encoding="utf-8")
    assert f"| {ENTRIES[0]} |" in md and "| ill_quadratic | rosenbrock |" in md
    for suffix in (".png", ".svg"):
        picture = window.export_plot(tmp_path / f"profile{suffix}")
        assert picture.stat().st_size > 1000


def test_selecting_a_time_draws_every_trial_of_its_cell_against_the_target(
        scorecard_window, qtbot, tmp_path):
    window = scorecard_window
    _set(window, tmp_path / "curves.db", trials=2, studies=2)
    assert window.start()
    qtbot.waitUntil(lambda: not window.task.is_running(), timeout=120_000)
    assert window.result is not None, window.error_label.text()
    plot = window.trials_plot
    assert plot.trial_curves == [] and plot.target_line is None  # nothing selected yet
    suite, hits = load_suite(), 0
    for row, name in enumerate(ENTRIES):
        for column, workload in enumerate(WORKLOADS):
            window.table.setCurrentCell(row, column)
            want = (name, workload)
            qtbot.waitUntil(lambda want=want: plot.cell is not None
                            and (plot.cell.entry, plot.cell.workload) == want, timeout=20_000)
            # Every trial of every study: 2 studies × 2 trials, each its own curve.
            assert len(plot.trial_curves) == 4
            assert sorted((c.trial.study, c.trial.trial) for c in plot.trial_curves) == \
                sorted((s, t) for s in range(2) for t in (0, 1))
            w = suite[workload]
            # (xData / yData: the data as given; getData is log10 of it on a log axis)
            line = plot.target_line
            assert list(line.yData) == [w.target, w.target] and line.xData[-1] == w.budget
            assert list(plot.budget_line.xData) == [w.budget, w.budget]
            assert name in plot.getPlotItem().titleLabel.text
            assert workload in plot.getPlotItem().titleLabel.text
            # Each study's best trial (scorecard.json's row) is the bright one.
            rows = window.result["studies_detail"][name][workload]
            bright = sorted((c.trial.study, c.trial.trial) for c in plot.trial_curves
                            if c.opts["pen"].color().alpha() == 255)
            assert bright == sorted((s, r["trial"]) for s, r in enumerate(rows)
                                    if r["trial"] is not None)
            for curve in plot.trial_curves:  # a curve reaches the target at its trial's time
                first = next((x for x, y in zip(curve.xData, curve.yData) if y <= w.target),
                             None)
                assert first == curve.trial.steps_to_target
                hits += first is not None
    assert hits >= 1  # some trial reached its target (the check above is not vacuous)
    from app.shell.plot_help import help_text

    assert "dashed line is the target" in help_text(plot)


def test_closing_mid_run_stops_the_thread_and_resuming_completes_it(
        scorecard_window, qtbot, tmp_path, direct):
    window = scorecard_window
    _set(window, tmp_path / "resume.db")
    assert window.start()
    qtbot.waitUntil(lambda: window.live.studies_done >= 1 or not window.task.is_running(),
                    timeout=60_000)
    window.close()
    assert not window.task.is_running()  # the conftest also fails any thread left running
    # The same storage again completes the scorecard with the direct call's numbers.
    again = ScorecardWindow(LabDocument(_lab()))
    qtbot.addWidget(again)
    _set(again, tmp_path / "resume.db")
    assert again.start()
    qtbot.waitUntil(lambda: not again.task.is_running(), timeout=120_000)
    # A killed study's points are asked again under new trial numbers; all else is equal.
    def without_numbers(result):
        return {k: v for k, v in result.items() if k != "studies_detail"}, {
            e: {w: [{k: v for k, v in s.items() if k != "trial"} for s in studies]
                for w, studies in rows.items()}
            for e, rows in result["studies_detail"].items()}

    assert without_numbers(again.result) == without_numbers(direct)
    again.shutdown()


def test_bad_input_names_the_field_and_starts_nothing(scorecard_window, tmp_path):
    window = scorecard_window
    window.settings.set_chosen([])
    assert not window.start()
    assert window.error_label.text().startswith("Entries:")
    assert not window.task.is_running()

    window.settings.set_chosen(["adam"])
    window.settings.set_workloads([])
    assert not window.start()
    assert window.error_label.text().startswith("Workloads:")

    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nclass Mine(torch.optim.Optimizer):\n    def step(self\n")
    window.settings.consent.ask = lambda ref, sha256: (True, False)
    window.settings._try_add(f"{broken}:Mine")
    assert window.error_label.text().startswith("Entries:")
    assert "broken.py" in window.error_label.text() or "Mine" in window.error_label.text()
    assert "broken.py:Mine" not in window.settings.chosen()

    window.settings._try_add("no_such_optimizer")
    assert window.error_label.text().startswith("Entries:")


def test_user_code_asks_consent_and_then_joins_with_its_search_space(scorecard_window,
                                                                     tmp_path):
    window = scorecard_window
    code = tmp_path / "mine.py"
    code.write_text(
        "import torch\n"
        "class Mine(torch.optim.SGD):\n"
        "    HYPERPARAMS = {'lr': {'default': 0.01, 'low': 1e-4, 'high': 1.0}}\n"
        "    def __init__(self, params, lr=0.01):\n"
        "        super().__init__(params, lr=lr)\n")
    asked = []
    window.settings.consent.ask = lambda ref, sha256: (asked.append(ref) or False, False)
    window.settings._try_add(f"{code}:Mine")
    assert len(asked) == 1 and "chose not to run" in window.error_label.text()
    assert "mine.py:Mine" not in window.settings.chosen()
    window.settings.consent.ask = lambda ref, sha256: (True, False)
    window.settings._try_add(f"{code}:Mine")
    assert window.error_label.text() == ""
    assert "mine.py:Mine" in window.settings.chosen()
    e = window.settings.entries["mine.py:Mine"]
    assert e.optimizer.endswith("mine.py:Mine") and e.optimizer != e.name
    listed = [window.settings.entry_list.item(i).text()
              for i in range(window.settings.entry_list.count())]
    assert any("mine.py:Mine" in text and "lr" in text for text in listed)


def test_the_tools_menu_opens_the_scorecard_window(window):
    from app.shell.menus import TOOLS

    assert "scorecard" in [kind for _text, kind, _key, _tip in TOOLS]
    opened = window.open_tool("scorecard")
    assert isinstance(opened, ScorecardWindow) and opened.isVisible()
    from app.shell.plot_help import help_text

    assert "ρ(τ)" in help_text(opened.plot)
    opened.close()


def test_the_profile_plot_draws_rho_at_every_tau_with_jumps_inside_1_to_4(qtbot):
    """Times with ratios 1, 1.2, 1.5, 2.5, 3 and a miss: every curve's jumps land where profiles.py
    puts them (the tiny scorecard above has ratios of 1 and beyond 4 only)."""
    from app.tools.scorecard_views import make_profile_plot, show_profiles
    from core.tools.scorecard.live import LiveTables
    from core.tools.scorecard.run import StudyDone

    times = {"a": {"w1": 10, "w2": 30, "w3": 7}, "b": {"w1": 15, "w2": 10, "w3": math.inf},
             "c": {"w1": 25, "w2": 12, "w3": 21}}
    events = [StudyDone(e, w, None, 0, float(t), float(t),
                        {"trial": 0, "lr": 0.1, "steps": t} if math.isfinite(t) else
                        {"trial": None, "reason": "missed"})
              for e, row in times.items() for w, t in row.items()]
    live = LiveTables(list(times), ["w1", "w2", "w3"], events)
    plot = make_profile_plot()
    qtbot.addWidget(plot)
    show_profiles(plot, live)
    ratios = profiles.ratios(times)
    assert ratios["c"] == {"w1": 2.5, "w2": 1.2, "w3": 3.0}
    for name in times:
        for i in range(301):
            tau = 1.0 + 3.0 * i / 300
            assert _plotted(plot.curves[name], tau) == profiles.rho(ratios[name], tau), (name, tau)
        assert f"B = {profiles.score(ratios[name]):.3f}" in plot.curves[name].name()


def test_the_scorecard_window_closes_with_its_button_ctrl_w_and_esc(qtbot, window):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton

    window.show()
    tool = window.open_tool("scorecard")
    qtbot.waitExposed(tool)
    button = tool.findChild(QPushButton, "toolCloseButton")
    assert button is not None and button.isVisible()
    button.click()
    assert not tool.isVisible()
    for keys in ((Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier),
                 (Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier)):
        assert window.open_tool("scorecard") is tool  # one window, found again
        tool.activateWindow()
        qtbot.waitUntil(tool.isActiveWindow)
        qtbot.keyClick(tool, *keys)
        assert not tool.isVisible(), keys
