"""The sweep window on a tiny lab: a grid sweep fills the table with exactly the grid, the
views draw finite pictures, CSV export round-trips, Cancel keeps finished trials and leaves no
thread, a bad range starts nothing, and a double-clicked trial becomes an undoable run."""

from __future__ import annotations

import csv
import math

import numpy as np
import optuna
import pytest

from app.shell.document import LabDocument
from app.tools.fair_race_window import FairRaceWindow
from app.tools.sweep_window import SweepWindow
from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab


def _lab(steps=12) -> Lab:
    return validate_lab(Lab(name="banana", steps=steps,
                            problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                            runs=(RunSpec("SGD", "sgd", {"lr": 1e-4, "momentum": 0.5}),)))


@pytest.fixture
def sweep_window(qtbot):
    window = SweepWindow(LabDocument(_lab()))
    qtbot.addWidget(window)
    yield window
    window.shutdown()


def _grid_settings(window: SweepWindow) -> None:
    window.space.tick("lr").set_range("1e-5", "1e-3", log=True, points=3)
    window.space.tick("momentum").set_range("0", "0.9", log=False, points=2)
    window.sampler_combo.setCurrentIndex(window.sampler_combo.findData("grid"))
    window.prune_check.setChecked(False)
    window.trials_spin.setValue(50)


def test_grid_sweep_fills_the_views_and_exports_csv(sweep_window, qtbot, tmp_path):
    window = sweep_window
    _grid_settings(window)
    with qtbot.waitSignal(window.sweep_finished, timeout=30_000):
        assert window.start()
    qtbot.waitUntil(lambda: window.views.importance.importances is not None, timeout=30_000)
    views = window.views
    rows = views.table.shown_rows()
    header = views.table.header
    assert len(rows) == 6  # 3 lr × 2 momentum, each visited once
    lr_col, m_col = header.index("lr"), header.index("momentum")
    assert {(r[lr_col], r[m_col]) for r in rows} == {
        (lr, m) for lr in (1e-5, 1e-4, 1e-3) for m in (0.0, 0.9)}
    assert all(r[header.index("state")] == "complete" for r in rows)
    assert "6 / 6 trials" in window.progress_label.text()

    path = views.table.export_csv(tmp_path / "trials.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        read = list(csv.reader(handle))
    assert read[0] == header and len(read) == 7
    for line, row in zip(read[1:], rows):
        assert float(line[header.index("value")]) == row[header.index("value")]

    numbers, values, best = views.best_plot.data
    assert len(best) == 6 and np.all(np.diff(best) <= 0) and best[-1] == values.min()
    grid = views.heatmap.grid
    assert grid.best.shape == (2, 3) and np.all(np.isfinite(grid.best))
    assert views.parallel.data.positions.shape == (6, 3)
    assert np.all(np.isfinite(views.parallel.data.positions))
    importances = views.importance.importances
    assert set(importances) == {"lr", "momentum"}
    assert all(math.isfinite(v) for v in importances.values())
    assert not window.controller.is_running() and window.start_button.isEnabled()


def test_double_click_opens_a_trial_as_an_undoable_run(sweep_window, qtbot):
    window = sweep_window
    _grid_settings(window)
    window.space.tick("momentum", False)
    with qtbot.waitSignal(window.sweep_finished, timeout=30_000):
        window.start()
    document = window.document
    table = window.views.table
    number = table.item(0, table.header.index("number")).value
    params = window.study.trials[number].params
    table.cellDoubleClicked.emit(0, 1)
    assert len(document.lab.runs) == 2
    run = document.lab.runs[1]
    assert run.label == f"SGD · trial {number}" and run.params["lr"] == params["lr"]
    assert run.params["momentum"] == 0.5  # the base run's other hyperparameters stay
    document.undo_stack.undo()
    assert len(document.lab.runs) == 1


def test_inverted_or_empty_range_shows_the_error_and_starts_nothing(sweep_window):
    window = sweep_window
    window.space.tick("lr").set_range("0.1", "0.001")
    assert not window.start()
    assert not window.controller.is_running() and window.study is None
    assert window.error_label.isVisibleTo(window)
    assert "empty or inverted" in window.error_label.text()
    window.space.tick("lr").set_range("", "0.1")
    assert not window.start()
    assert "lr: the range is empty" in window.error_label.text()


def test_cancel_mid_sweep_keeps_finished_trials(sweep_window, qtbot):
    window = sweep_window
    window.document.edit(_lab(steps=400), "longer")
    window.sampler_combo.setCurrentIndex(window.sampler_combo.findData("random"))
    window.trials_spin.setValue(400)
    assert window.start()
    qtbot.waitUntil(lambda: window.last_progress is not None and window.last_progress.done >= 8,
                    timeout=30_000)
    with qtbot.waitSignal(window.sweep_finished, timeout=10_000):  # after the final read
        window.cancel()
        assert not window.controller.is_running()
    trials = window.study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 8 and len(trials) < 400
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(window.views.table.shown_rows()) == len(trials)
    assert "Cancelled" in window.progress_label.text()
    assert window.start_button.isEnabled()


def test_fair_race_opens_the_tuned_lab(qtbot):
    document = LabDocument(_lab(steps=10))
    window = FairRaceWindow(document)
    qtbot.addWidget(window)
    window.set_chosen(["sgd", "adam"])
    window.trials_spin.setValue(3)
    with qtbot.waitSignal(window.race_opened, timeout=30_000):
        assert window.start()
    assert [r.label for r in document.lab.runs] == ["SGD (tuned)", "Adam (tuned)"]
    assert window.best_table.rowCount() == 2
    document.undo_stack.undo()
    assert [r.label for r in document.lab.runs] == ["SGD"]
    window.shutdown()


def test_watching_reads_the_study_off_the_main_thread_and_close_mid_read_is_clean(qtbot,
                                                                                  tmp_path,
                                                                                  monkeypatch):
    import threading

    from core.tools.sweep.storage import open_storage

    url = f"sqlite:///{tmp_path / 'watched.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="watched")
    lr = optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)

    def add_trial(value: float, lr_value: float) -> None:  # as another worker would
        study.add_trial(optuna.trial.create_trial(params={"lr": lr_value},
                                                  distributions={"lr": lr}, value=value))

    for value, lr_value in ((3.0, 1e-4), (0.5, 1e-3), (2.0, 1e-2)):
        add_trial(value, lr_value)
    # A slow database server: every read of the trials waits until the gate opens. A read on
    # the main thread while the gate is shut is the window frozen on the database: recorded.
    gate = threading.Event()
    read_trials = optuna.study.Study.get_trials
    frozen_reads = []

    def slow_get_trials(self, *args, **kwargs):
        if threading.current_thread() is threading.main_thread() and not gate.is_set():
            frozen_reads.append(self.study_name)
        gate.wait(3.0)
        return read_trials(self, *args, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "get_trials", slow_get_trials)

    window = SweepWindow(LabDocument(_lab()))
    qtbot.addWidget(window)
    window.storage_combo.setCurrentIndex(window.storage_combo.findData("url"))
    window.url_edit.setText(url)
    window.study_edit.setText("watched")
    window.watch_button.setChecked(True)
    # Back at once: the database has not answered, the read is still in flight.
    assert window.is_reading() and "Opening study 'watched'" in window.progress_label.text()
    _event_loop_turns_while(qtbot, window.is_reading)  # no freeze during the read
    assert frozen_reads == []
    gate.set()
    qtbot.waitUntil(lambda: len(window.views.table.shown_rows()) == 3, timeout=10_000)
    assert "3 complete" in window.progress_label.text()
    assert "0.5 (trial 1)" in window.best_label.text()
    add_trial(0.25, 3e-3)  # the next read (a second later) shows it
    qtbot.waitUntil(lambda: len(window.views.table.shown_rows()) == 4, timeout=10_000)
    assert "0.25 (trial 3)" in window.best_label.text()
    # Closed in the middle of a read: the read ends, then its thread; none is left running.
    gate.clear()
    qtbot.waitUntil(window.is_reading, timeout=5_000)
    threading.Timer(0.3, gate.set).start()
    window.close()
    assert not window.is_reading()
    assert frozen_reads == []


class _SlowWindowReads:
    """A slow database seen by the sweep window: its reads (`read_study`) wait for ``gate``;
    every trials read made on the main thread is recorded (it would freeze the window)."""

    def __init__(self, monkeypatch):
        import threading

        import app.tools.study_reads as study_reads_module

        self.gate = threading.Event()
        self.gate.set()
        self.main_thread_reads: list[str] = []
        self.recording = False
        real_read, real_get_trials = study_reads_module.read_study, optuna.study.Study.get_trials

        def slow_read(*args, **kwargs):
            self.gate.wait(5.0)
            return real_read(*args, **kwargs)

        def get_trials(study, *args, **kwargs):
            if self.recording and threading.current_thread() is threading.main_thread():
                self.main_thread_reads.append(study.study_name)
            return real_get_trials(study, *args, **kwargs)

        monkeypatch.setattr(study_reads_module, "read_study", slow_read)
        monkeypatch.setattr(optuna.study.Study, "get_trials", get_trials)


def _collect_garbage() -> None:
    """Collect the earlier tests' windows now: a full collection of them can pause the main
    thread for a quarter of a second, which a tick count would blame on the database."""
    import gc

    gc.collect()


def _event_loop_turns_while(qtbot, pending) -> None:
    """The main thread's event loop turns while the database has not answered: a 20 ms timer
    ticks five times and ``pending()`` (the read or the connection) still holds. A window waiting
    for the database on the main thread would tick only once the database answered, when
    ``pending()`` no longer holds. Ticks are counted, not timed: how late they come is the
    machine's speed, which `make bench` (gui-latency) measures."""
    from PySide6.QtCore import QTimer

    ticks = []
    ticker = QTimer(interval=20)
    ticker.timeout.connect(lambda: ticks.append(1))
    _collect_garbage()
    ticker.start()
    try:
        qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=5_000)
    finally:
        ticker.stop()
    assert pending(), "the database answered before the event loop turned: the window waited"


def test_own_sweep_redraws_and_opens_trials_without_reading_on_the_main_thread(
        sweep_window, qtbot, monkeypatch):
    slow = _SlowWindowReads(monkeypatch)
    window = sweep_window
    _grid_settings(window)
    window.space.tick("momentum", False)  # 3 trials
    slow.gate.clear()  # the database answers the window only when the test says so
    assert window.start()
    slow.recording = True
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30_000)
    # The sweep is over, the final read waits for the database: the window stays responsive.
    assert window.is_reading() and "Reading the finished trials" in window.progress_label.text()
    _event_loop_turns_while(qtbot, window.is_reading)
    with qtbot.waitSignal(window.sweep_finished, timeout=10_000):
        slow.gate.set()
    assert len(window.views.table.shown_rows()) == 3
    assert "3 / 3 trials" in window.progress_label.text()
    # A double-click while the database is slow again opens the trial the table shows, at once.
    qtbot.waitUntil(lambda: not window.is_reading(), timeout=5_000)
    slow.gate.clear()
    table = window.views.table
    number = table.item(0, table.header.index("number")).value
    lr = table.item(0, table.header.index("lr")).value
    table.cellDoubleClicked.emit(0, 1)
    # The run is there while the database still has not answered: nothing waited for it.
    run = window.document.lab.runs[-1]
    assert run.label == f"SGD · trial {number}" and run.params["lr"] == lr
    assert slow.main_thread_reads == []
    slow.gate.set()
    slow.recording = False
    assert slow.main_thread_reads == []


def test_cancel_with_a_slow_database_does_not_freeze_and_close_mid_read_is_clean(
        qtbot, monkeypatch):
    import threading

    slow = _SlowWindowReads(monkeypatch)
    window = SweepWindow(LabDocument(_lab(steps=400)))
    qtbot.addWidget(window)
    window.sampler_combo.setCurrentIndex(window.sampler_combo.findData("random"))
    window.trials_spin.setValue(400)
    assert window.start()
    slow.recording = True
    qtbot.waitUntil(lambda: window.last_progress is not None and window.last_progress.done >= 3,
                    timeout=30_000)
    qtbot.waitUntil(lambda: not window.is_reading(), timeout=5_000)
    slow.gate.clear()
    finished = []
    window.sweep_finished.connect(finished.append)
    window.cancel()
    # The sweep thread ended; the final read still waits for the database, and Cancel did not.
    assert not window.controller.is_running() and window.is_reading() and not finished
    assert window.start_button.isEnabled()
    _event_loop_turns_while(qtbot, lambda: window.is_reading() and not finished)
    slow.recording = False
    assert slow.main_thread_reads == []
    # Closed while the final read still waits: the read ends, then its thread; none is left.
    threading.Timer(0.3, slow.gate.set).start()
    window.close()
    assert not window.is_reading()


class _SlowStorageOpening:
    """A slow database server seen by Start: opening the storage
    (`core.tools.sweep.storage.open_storage`, which `core.tools.sweep.run.Sweep` calls to create or
    load the study) waits for ``gate``."""

    def __init__(self, monkeypatch):
        import threading

        import core.tools.sweep.run

        self.gate = threading.Event()
        self.opened_on: list[threading.Thread] = []
        real_open = core.tools.sweep.run.open_storage

        def slow_open(storage):
            self.opened_on.append(threading.current_thread())
            self.gate.wait(5.0)
            return real_open(storage)

        monkeypatch.setattr(core.tools.sweep.run, "open_storage", slow_open)


def _trials_in(url: str, name: str) -> int:
    from core.tools.sweep.storage import open_storage

    return len(optuna.load_study(study_name=name, storage=open_storage(url)).trials)


def test_start_opens_the_storage_off_the_main_thread_and_close_mid_connect_is_clean(
        qtbot, monkeypatch, tmp_path):
    import threading

    slow = _SlowStorageOpening(monkeypatch)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    window = SweepWindow(LabDocument(_lab()))
    qtbot.addWidget(window)
    _grid_settings(window)
    window.space.tick("momentum", False)  # 3 trials
    window.storage_combo.setCurrentIndex(window.storage_combo.findData("url"))
    window.url_edit.setText(url)
    window.study_edit.setText("slow")
    assert window.start()
    # Back while the storage has not answered: the window did not wait for the database.
    assert window.is_connecting() and window.sweep is None
    assert window.start_button.text() == "Connecting to the storage…"
    assert not window.start_button.isEnabled() and window.cancel_button.isEnabled()
    _event_loop_turns_while(qtbot, window.is_connecting)  # no freeze while it does not answer
    with qtbot.waitSignal(window.sweep_finished, timeout=15_000):
        slow.gate.set()
    assert threading.main_thread() not in slow.opened_on
    assert len(window.views.table.shown_rows()) == 3
    assert "3 / 3 trials" in window.progress_label.text()
    assert window.start_button.text() == "Start sweep" and window.start_button.isEnabled()
    # Closed while connecting again: the thread ends once the storage answers, no trial starts.
    qtbot.waitUntil(lambda: not window.is_reading(), timeout=5_000)
    slow.gate.clear()
    window.trials_spin.setValue(2)
    assert window.start() and window.is_connecting()
    threading.Timer(0.3, slow.gate.set).start()
    window.close()
    assert not window.controller.is_running() and not window.is_connecting()
    assert _trials_in(url, "slow") == 3


def test_cancel_while_connecting_and_an_unreachable_server_name_the_storage(qtbot, monkeypatch,
                                                                            tmp_path):
    slow = _SlowStorageOpening(monkeypatch)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    window = SweepWindow(LabDocument(_lab()))
    qtbot.addWidget(window)
    window.storage_combo.setCurrentIndex(window.storage_combo.findData("url"))
    window.url_edit.setText(url)
    window.study_edit.setText("cancelled")
    assert window.start() and window.is_connecting()
    finished = []
    window.sweep_finished.connect(finished.append)
    window.cancel()
    # Cancel did not wait for the server: the storage is still being opened, nothing finished.
    assert window.is_connecting() and not finished
    assert "Cancelling" in window.progress_label.text() and not window.cancel_button.isEnabled()
    _event_loop_turns_while(qtbot, lambda: window.is_connecting() and not finished)
    slow.gate.set()
    qtbot.waitUntil(lambda: finished == [None], timeout=10_000)
    assert "Cancelled before the first trial" in window.progress_label.text()
    assert window.study is None and window.start_button.isEnabled()
    assert _trials_in(url, "cancelled") == 0
    # A server that refuses the connection: the usual one-line message naming the storage.
    window.url_edit.setText("postgresql+psycopg2://lab@127.0.0.1:1/sweeps")
    with qtbot.waitSignal(window.sweep_finished, timeout=15_000):
        assert window.start()
    assert window.error_label.isVisibleTo(window)
    error = window.error_label.text()
    assert error.startswith("--storage: cannot open postgresql") and "refused" in error
    assert "Not started" in window.progress_label.text()
    assert window.study is None and window.start_button.isEnabled()
    assert window.start_button.text() == "Start sweep"


def test_fair_race_offers_the_labs_zoo_optimizers_and_races_them(qtbot):
    """A zoo optimizer that a run of the lab uses is offered (and ticked) beside torch.optim's,
    and the fair race tunes and races it like torch's."""
    lab = validate_lab(Lab(name="banana", steps=10,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                           runs=(RunSpec("SGD", "sgd", {"lr": 1e-4}),
                                 RunSpec("Lion", "pytorch_optimizer:Lion", {"lr": 1e-3}))))
    document = LabDocument(lab)
    window = FairRaceWindow(document)
    qtbot.addWidget(window)
    assert window.chosen() == ["sgd", "pytorch_optimizer:Lion"]
    rows = [window.optimizer_list.item(i).text() for i in range(window.optimizer_list.count())]
    assert "Lion  (pytorch-optimizer)" in rows
    window.trials_spin.setValue(2)
    with qtbot.waitSignal(window.race_opened, timeout=60_000):
        assert window.start()
    assert [r.optimizer for r in document.lab.runs] == ["sgd", "pytorch_optimizer:Lion"]
    window.shutdown()
