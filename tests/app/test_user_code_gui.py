"""The user's own optimizer class in the window: Add ▸ Optimizer from file… and a dropped .py ask
"Run this code?" (path and SHA-256) before anything in the file runs; declined, nothing ran;
accepted, it races; trusted content is not asked again; a lab that names code asks the same way
before it opens; Reset races the file's edited content and the status line says it changed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.shell.code_trust import ConsentDialog, TrustStore, optimizer_classes
from core.lab.format import Lab, RunSpec, default_lab
from core.optim import user_code

# A 10-line SGD, and a module-level side effect that shows whether the file ever ran: it writes
# a marker file beside itself.
MY_SGD = '''
from pathlib import Path

import torch

Path(__file__).with_suffix(".ran").write_text("ran")


class MySGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


class Helper:
    """Not an optimizer: never offered."""
'''


@pytest.fixture(autouse=True)
def own_trust_file(tmp_path, monkeypatch):
    """Each test trusts nothing to begin with (and writes its own trust file)."""
    path = tmp_path / "trust" / "trusted_code.json"
    monkeypatch.setenv("DESCENT_LAB_TRUST_FILE", str(path))
    return path


@pytest.fixture
def asks(window):
    """Replace the consent dialog: answers come from ``asks.answers``; questions are recorded."""

    class Asks:
        answers: list[bool] = []
        questions: list[tuple] = []

    def ask(ref, sha256):
        Asks.questions.append((ref, sha256))
        return Asks.answers.pop(0), True

    window.user_code.consent.ask = ask
    return Asks


def write_sgd(folder: Path, name: str = "my_sgd.py", text: str = MY_SGD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def short_lab() -> Lab:
    lab = default_lab()
    return replace(lab, steps=40, runs=(RunSpec("SGD", "sgd", {"lr": 0.0005}),))


def test_adding_a_file_asks_consent_and_declining_runs_nothing(qtbot, window, asks, tmp_path):
    path = write_sgd(tmp_path / "opts")
    before = window.document.lab
    asks.answers = [False]
    assert window.user_code.add_file(path) is False
    # Asked once, with the file's path and the SHA-256 of its bytes…
    [(ref, sha256)] = asks.questions
    assert ref.target == str(path.resolve()) and ref.class_name == "MySGD"
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # …and nothing in the file ran, nothing was added.
    assert not path.with_suffix(".ran").exists()
    assert window.document.lab == before
    assert user_code.loaded_info(ref.name) is None
    assert "nothing in it ran" in window.status_label.text()


def test_accepting_adds_it_and_it_races_like_torch_sgd(qtbot, window, asks, tmp_path):
    window.document.replace(short_lab(), None)
    path = write_sgd(tmp_path / "opts")
    asks.answers = [True]
    assert window.user_code.add_file(path)
    assert path.with_suffix(".ran").exists()  # it ran: after the yes
    lab = window.document.lab
    run = lab.runs[-1]
    assert (run.label, run.optimizer) == ("MySGD", f"{path.resolve()}:MySGD")
    assert run.code_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert window.runs_panel.selected_run() == 1
    # The race: the user's SGD at SGD's lr follows torch's SGD exactly.
    window.document.edit(lab.with_run(1, replace(run, params={"lr": 0.0005})), "same lr")
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    with qtbot.waitSignal(window.race_finished, timeout=60_000) as done:
        window.play()
    assert done.args == [True]
    torch_sgd, mine = window.history.runs
    assert len(mine) == 41
    for column in ("x", "y", "loss"):
        np.testing.assert_allclose(mine.column(column), torch_sgd.column(column), rtol=0, atol=1e-7)


def test_a_trusted_content_is_not_asked_again_and_an_edited_one_is(qtbot, window, asks, tmp_path,
                                                                   own_trust_file):
    first = write_sgd(tmp_path / "a")
    asks.answers = [True]
    assert window.user_code.add_file(first)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert json.loads(own_trust_file.read_text())["sha256"] == [digest]
    # The same bytes in another file: trusted, not asked.
    second = write_sgd(tmp_path / "b")
    assert window.user_code.add_file(second)
    assert len(asks.questions) == 1
    assert second.with_suffix(".ran").exists()
    # Other bytes: asked again.
    third = write_sgd(tmp_path / "c", text=MY_SGD + "\n# edited\n")
    asks.answers = [False]
    assert not window.user_code.add_file(third)
    assert len(asks.questions) == 2 and not third.with_suffix(".ran").exists()
    assert TrustStore(own_trust_file).trusted() == {digest}


def test_a_file_with_several_classes_asks_which_without_running_it(qtbot, window, asks, tmp_path):
    text = MY_SGD + '''

class MyMomentum(MySGD):
    pass
'''
    path = write_sgd(tmp_path / "opts", text=text)
    assert optimizer_classes(path) == ["MySGD", "MyMomentum"]  # Helper is not an optimizer
    offered = []

    def choose(file, classes):
        offered.append(classes)
        assert not path.with_suffix(".ran").exists()  # parsing only: nothing ran yet
        return "MyMomentum"

    window.user_code.choose_class = choose
    asks.answers = [True]
    assert window.user_code.add_file(path)
    assert offered == [["MySGD", "MyMomentum"]]
    assert window.document.lab.runs[-1].optimizer.endswith(":MyMomentum")


def test_a_py_dropped_on_the_runs_table_is_added_after_consent(qtbot, window, asks, tmp_path):
    path = write_sgd(tmp_path / "drop")
    asks.answers = [False]
    viewport = window.runs_panel.table.viewport()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()  # the table takes a .py
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)
    assert len(asks.questions) == 1 and not path.with_suffix(".ran").exists()
    asks.answers = [True]
    QApplication.sendEvent(viewport, enter)
    QApplication.sendEvent(viewport, drop)
    assert window.document.lab.runs[-1].optimizer == f"{path.resolve()}:MySGD"


def write_lab(folder: Path, sha256: str | None = None) -> Path:
    entry = {"class": "opts/my_sgd.py:MySGD"}
    if sha256:
        entry["sha256"] = sha256
    data = {"name": "Mine", "steps": 20, "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.0005}},
                     {"label": "Mine", "optimizer": entry, "params": {"lr": 0.0005}}]}
    path = folder / "mine.lab.json"
    path.write_text(json.dumps(data))
    return path


def test_opening_a_lab_with_code_asks_first_and_declining_does_not_open_it(qtbot, window, asks,
                                                                          tmp_path):
    code = write_sgd(tmp_path / "opts")
    lab_path = write_lab(tmp_path)
    before = window.document.lab
    asks.answers = [False]
    assert window.open_lab(lab_path) is False
    [(ref, sha256)] = asks.questions
    assert ref.target == str(code.resolve())
    assert sha256 == hashlib.sha256(code.read_bytes()).hexdigest()
    assert not code.with_suffix(".ran").exists()
    assert window.document.lab == before and window.document.path != lab_path
    assert "Did not open" in window.status_label.text()
    assert "nothing in it ran" in window.last_error

    asks.answers = [True]
    assert window.open_lab(lab_path)
    assert code.with_suffix(".ran").exists()
    assert window.document.lab.runs[1].optimizer == f"{code.resolve()}:MySGD"


def test_reset_races_the_edited_file_and_says_it_changed_since_the_lab_was_saved(
        qtbot, window, asks, tmp_path):
    code = write_sgd(tmp_path / "opts")
    saved = hashlib.sha256(code.read_bytes()).hexdigest()
    lab_path = write_lab(tmp_path, sha256=saved)
    asks.answers = [True]
    assert window.open_lab(lab_path)
    assert "changed" not in window.status_label.text()
    name = window.document.lab.runs[1].optimizer
    # The user edits the file: the step now goes twice as far.
    code.write_text(MY_SGD.replace('alpha=-group["lr"]', 'alpha=-2 * group["lr"]'))
    edited = hashlib.sha256(code.read_bytes()).hexdigest()
    asks.answers = [True]
    window.reset()
    assert asks.questions[-1][1] == edited  # the new content is asked about
    assert user_code.loaded_hash(name) == edited
    status = window.status_label.text()
    assert "changed since the lab was saved" in status and saved[:12] in status
    # The race runs the new code: its first step is twice torch SGD's.
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    torch_sgd, mine = window.history.runs
    start = np.array([torch_sgd.column("x")[0], torch_sgd.column("y")[0]])
    step_sgd = np.array([torch_sgd.column("x")[1], torch_sgd.column("y")[1]]) - start
    step_mine = np.array([mine.column("x")[1], mine.column("y")[1]]) - start
    np.testing.assert_allclose(step_mine, 2 * step_sgd, rtol=1e-6)


def test_the_consent_dialog_shows_the_path_and_hash_and_defaults_to_not_running(qtbot, tmp_path):
    path = write_sgd(tmp_path / "opts")
    ref = user_code.parse_code_ref(f"{path}:MySGD")
    digest = user_code.code_hash(ref)
    dialog = ConsentDialog(ref, digest, "The lab mine.lab.json")
    qtbot.addWidget(dialog)
    assert str(path.resolve()) in dialog.path_label.text()
    assert digest in dialog.hash_label.text()
    assert dialog.decline_button.isDefault() and not dialog.run_button.isDefault()


def test_a_crashed_session_with_your_code_is_restored_after_consent(qtbot, tmp_path, settings):
    from app.shell.main_window import MainWindow
    from app.shell.recovery import RecoveryStore

    code = write_sgd(tmp_path / "opts")
    ref = user_code.parse_code_ref(f"{code}:MySGD")
    digest = user_code.code_hash(ref)
    lab = replace(short_lab(), base_dir=str(tmp_path))
    crashed = replace(lab, runs=lab.runs + (RunSpec("Mine", ref.name, {"lr": 0.0005},
                                                    code_sha256=digest),))
    for answer in (False, True):
        # What a session with the user's class in its lab left behind when it crashed (nothing
        # of that file has run in this process).
        store = RecoveryStore(tmp_path / f"recovery-{answer}")
        store.save(crashed, None, dirty=True)
        window = MainWindow(settings=settings, recovery=store)
        window._confirm_discard = lambda: True  # the restored lab has unsaved edits
        qtbot.addWidget(window)
        questions: list = []

        def ask(r, sha, a=answer, asked=questions):
            asked.append((r.name, sha))
            return a, False

        window.user_code.consent.ask = ask
        window._ask_restore = lambda source, dirty: True
        restored = window.offer_recovery()
        assert questions == [(ref.name, digest)]
        assert restored is answer
        assert code.with_suffix(".ran").exists() is answer  # declined: nothing ran
        if answer:
            assert window.document.lab.runs[-1].optimizer == ref.name
        window.controller.shutdown()
