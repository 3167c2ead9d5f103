"""The run editor's optimizer picker: groups (torch.optim, pytorch-optimizer, Schedule-Free, your
own), type-to-search, a zoo optimizer's introspected hyperparameters and where it comes from, and
the Check button's report card from a real worker thread."""

from __future__ import annotations

import inspect
from importlib import metadata

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QLabel

from app.runs import zoo_listing
from app.runs.optimizer_picker import GROUP_ROLE, HEADER_ROLE, NAME_ROLE, REFUSED_ROLE
from app.runs.runs_panel import RunsPanel
from core.lab.format import Lab, RunSpec, default_network_lab

pytest.importorskip("pytorch_optimizer")
pytest.importorskip("schedulefree")
# The picker's popup is a Qt.Popup window; the offscreen platform says it cannot raise it or
# grab the keyboard for it (a real desktop does both).
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support raise",
                                       "This plugin does not support grabbing the keyboard")


@pytest.fixture
def panel(qtbot):
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.resize(460, 700)
    panel.show()
    lab = Lab(name="Race", steps=50, runs=(RunSpec("Adam", "adam", {"lr": 0.02}),
                                           RunSpec("SGD", "sgd", {"lr": 0.01})))
    panel.set_lab(lab)
    edits = []
    panel.lab_edited.connect(lambda lab, text: (edits.append((lab, text)), panel.set_lab(lab)))
    panel.edits = edits
    return panel


def shown_rows(popup) -> list[tuple[bool, str, str]]:
    """The popup's visible rows: (is a group title, group, optimizer name or title text)."""
    model = popup.filter
    rows = []
    for r in range(model.rowCount()):
        index = model.index(r, 0)
        header = bool(index.data(HEADER_ROLE))
        rows.append((header, index.data(GROUP_ROLE),
                     index.data(Qt.ItemDataRole.DisplayRole) if header else index.data(NAME_ROLE)))
    return rows


def test_the_picker_lists_groups_and_filters_by_typed_text(panel, qtbot):
    picker = panel.optimizer_combo
    picker.showPopup()
    popup = picker.popup_widget()
    assert popup.isVisible() and popup.search.hasFocus()
    rows = shown_rows(popup)
    headers = [text for header, _g, text in rows if header]
    version = metadata.version("pytorch-optimizer")
    assert headers[0] == "torch.optim"
    assert f"pytorch-optimizer {version}" in headers
    assert any(h.startswith("Schedule-Free") for h in headers)
    names = {name for header, _g, name in rows if not header}
    assert {"adam", "sgd", "pytorch_optimizer:Lion", "schedulefree:AdamWScheduleFree"} <= names
    assert len(names) > 100  # the whole zoo, not a sample
    groups = {name: group for header, group, name in rows if not header}
    assert groups["adam"] == "torch.optim" and groups["pytorch_optimizer:Lion"] == "pytorch-optimizer"
    assert groups["schedulefree:AdamWScheduleFree"] == "schedule-free"

    qtbot.keyClicks(popup.search, "lion")
    rows = shown_rows(popup)
    names = [name for header, _g, name in rows if not header]
    assert "pytorch_optimizer:Lion" in names and "adam" not in names
    assert all("lion" in name.lower() for name in names)
    # Only groups with a match keep their title: torch.optim has no Lion.
    assert [g for header, g, _t in rows if header] == ["pytorch-optimizer"]
    assert "match" in popup.hint.text()

    # Words narrow further, in any order; Enter picks the best match (the title itself).
    popup.search.clear()
    qtbot.keyClicks(popup.search, "free adamw")
    names = [name for header, _g, name in shown_rows(popup) if not header]
    assert "schedulefree:AdamWScheduleFree" in names and "adamw" not in names
    popup.search.clear()
    qtbot.keyClicks(popup.search, "lion")
    qtbot.keyClick(popup.search, Qt.Key.Key_Return)
    assert not popup.isVisible()
    lab, text = panel.edits[-1]
    assert lab.runs[0].optimizer == "pytorch_optimizer:Lion"
    assert lab.runs[0].label == "Lion"  # the automatic label follows


def test_typing_on_the_closed_picker_opens_the_search(panel, qtbot):
    picker = panel.optimizer_combo
    picker.setFocus()
    qtbot.keyClick(picker, Qt.Key.Key_S)
    popup = picker.popup_widget()
    assert popup.isVisible() and popup.search.text() == "s"
    qtbot.keyClick(popup.search, Qt.Key.Key_Escape)
    assert not popup.isVisible() and not panel.edits  # nothing chosen


def test_a_zoo_optimizer_shows_its_introspected_hyperparameters_and_origin(panel):
    import pytorch_optimizer

    panel.optimizer_combo.ensure_zoo()
    panel.optimizer_combo.choose("pytorch_optimizer:Lion")
    run = panel.edits[-1][0].runs[0]
    assert run.optimizer == "pytorch_optimizer:Lion"
    signature = inspect.signature(pytorch_optimizer.Lion.__init__).parameters
    # The form holds Lion's own constructor defaults, read from its signature.
    lr_box = panel.findChild(QDoubleSpinBox, "optParam_lr")
    assert lr_box.value() == pytest.approx(signature["lr"].default)
    shown = panel.editor.optimizer_form.values()
    assert tuple(shown["betas"]) == pytest.approx(tuple(signature["betas"].default))
    assert shown["weight_decay"] == signature["weight_decay"].default
    assert panel.findChild(QDoubleSpinBox, "optParam_momentum") is None  # Adam/SGD's are gone
    origin = panel.findChild(QLabel, "optimizerOrigin").text()
    assert f"pytorch-optimizer {metadata.version('pytorch-optimizer')}" in origin
    # torch.optim's own runs keep their hand-written description and say where they come from.
    panel.select_run(1)
    assert "torch.optim" in panel.findChild(QLabel, "optimizerOrigin").text()
    assert "momentum" in panel.optimizer_combo.toolTip().lower()


def test_on_a_2d_function_a_matrix_only_zoo_optimizer_is_shown_disabled_with_the_reason(panel):
    picker = panel.optimizer_combo
    picker.ensure_zoo()
    zoo_listing.describe("pytorch_optimizer:Muon")
    picker.refresh()
    item = picker.model().item(picker.findData("pytorch_optimizer:Muon"))
    assert not item.isEnabled() and "weight matrices" in item.text()
    assert "network" in item.toolTip()
    # On a network lab the same entry can be picked.
    panel.set_lab(default_network_lab())
    assert picker.model().item(picker.findData("pytorch_optimizer:Muon")).isEnabled()


NONDETERMINISTIC = '''
import torch


class Jitter(torch.optim.Optimizer):
    """SGD plus noise from torch's global generator: not reproducible for a fixed seed."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(-group["lr"] * p.grad + 1e-3 * torch.randn_like(p))
'''


def test_check_runs_in_a_worker_thread_and_a_failure_badges_the_picker(panel, qtbot, tmp_path):
    from core.optim import user_code

    path = tmp_path / "jitter.py"
    path.write_text(NONDETERMINISTIC)
    ref = user_code.parse_code_ref(f"{path}:Jitter")
    user_code.load_code(ref)  # the user consented (the consent itself: test_user_code_gui.py)
    lab = Lab(name="Race", steps=50, runs=(RunSpec("Jitter", ref.name, {"lr": 0.01}),))
    panel.set_lab(lab)
    button = panel.findChild(QLabel, "optimizerOrigin").parent().check_button
    assert button.isEnabled()
    origin = panel.editor.optimizer_origin
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = origin.dialog
    assert dialog.is_running()  # the check is off the GUI thread
    qtbot.waitUntil(lambda: dialog.report is not None or bool(dialog.error), timeout=120_000)
    assert not dialog.error
    assert not dialog.is_running()
    report = dialog.report
    assert "deterministic" in [r.key for r in report.failures]
    mark = dialog.findChild(QLabel, "checkMark_deterministic")
    assert mark.text() == "✗"
    assert dialog.findChild(QLabel, "checkMark_decreases").text() == "✓"
    assert "Fails" in dialog.status.text() and "deterministic" in dialog.status.text()
    # The picker now marks it with a warning sign, and the origin line says what failed.
    item = panel.optimizer_combo.model().item(panel.optimizer_combo.findData(ref.name))
    assert item.data(Qt.ItemDataRole.DecorationRole) is not None
    assert "deterministic" in item.toolTip()
    assert "deterministic" in panel.findChild(QLabel, "optimizerOrigin").text()
    dialog.close()


LAZY_CHILD = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.shell.main_window import MainWindow
window = MainWindow()
window.show()
app.processEvents()
assert window.runs_panel.optimizer_combo.findData("adam") >= 0
print(int("pytorch_optimizer" in sys.modules), int("schedulefree" in sys.modules))
window.runs_panel.optimizer_combo.ensure_zoo()  # the picker's first open lists the zoo
print(int("pytorch_optimizer" in sys.modules))
"""


def test_the_window_paints_without_importing_the_zoo_and_the_picker_imports_it(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", LAZY_CHILD], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = out.stdout.split("\n")[:2]
    assert before == "0 0"  # pytorch-optimizer's ~2 s import is not paid before the first paint
    assert after == "1"


def test_picking_a_zoo_class_that_cannot_race_says_why_and_keeps_the_run(panel):
    picker = panel.optimizer_combo
    picker.ensure_zoo()
    ref = "pytorch_optimizer:AdaLOMO"  # takes the whole model, not its parameters
    # As in a fresh window, where it has not been described yet (other tests of this process
    # may have described the whole zoo; the background describer may be at it now).
    zoo_listing.stop_describing()
    with zoo_listing._lock:
        zoo_listing._known.pop(ref, None)
    picker.model().item(picker.findData(ref)).setData(None, REFUSED_ROLE)
    picker._apply_rules()
    assert zoo_listing.known(ref) is None  # not described yet: listed as pickable
    assert picker.model().item(picker.findData(ref)).isEnabled()
    picker.choose(ref)
    assert not panel.edits  # the run keeps its optimizer
    error = panel.findChild(QLabel, "paramError")
    assert error.isVisibleTo(panel) and "whole network" in error.text()
    assert picker.currentData() == "adam"  # the picker shows the run's optimizer again
    item = picker.model().item(picker.findData(ref))
    assert not item.isEnabled() and "whole network" in item.text()  # now known: greyed out


def test_a_zoo_class_that_failed_the_shipped_check_is_badged_before_anyone_presses_check(panel):
    """resources/zoo_checks.json (core/optim/zoo_checks.py): QHAdam's state_dict resume fails at
    its defaults, so the picker shows the warning sign and says what it failed; Lion passes."""
    from app.runs.optimizer_picker import BADGE_ROLE

    picker = panel.optimizer_combo
    picker.ensure_zoo()
    picker._apply_rules()
    qhadam = picker.model().item(picker.findData("pytorch_optimizer:QHAdam"))
    assert qhadam.data(BADGE_ROLE) is True
    tip = qhadam.data(Qt.ItemDataRole.ToolTipRole)
    assert "Check failed: state_dict" in tip and "the shipped check" in tip
    lion = picker.model().item(picker.findData("pytorch_optimizer:Lion"))
    assert not lion.data(BADGE_ROLE)
