"""The Fingerprint window (Tools ▸ Optimizer fingerprint…, app/tools/fingerprint_window.py): its
numbers are core/optim/fingerprint.py's, SGD's stable lr is 2/λ, Adam is scale-invariant and SGD
is not, a bad hyperparameter is named and refused, closing mid-run leaves no thread, the JSON
export is what ``main.py fingerprint --json`` prints, and user code runs only with consent."""

from __future__ import annotations

import json
import re

import pytest
import torch

import main
from app.shell.code_trust import TrustStore
from app.shell.controller import LIVE_THREADS
from app.shell.document import LabDocument
from app.shell.plot_help import help_text
from app.tools.fingerprint_window import FingerprintWindow
from core.lab.format import default_lab
from core.optim.catalog import get_optimizer_info
from core.optim.check_report import Adapters
from core.optim.fingerprint import PROPERTIES, fingerprint


@pytest.fixture
def fp_window(qtbot, tmp_path):
    window = FingerprintWindow(LabDocument(default_lab()))
    window.consent.store = TrustStore(tmp_path / "trusted.json")  # never the user's own list
    qtbot.addWidget(window)
    window.show()
    yield window
    window.shutdown()


def _run(qtbot, window, name: str):
    window.choose(name)
    with qtbot.waitSignal(window.fingerprint_finished, timeout=60_000) as blocker:
        assert window.start()
    assert blocker.args[0] is not None
    return blocker.args[0]


def test_sgd_numbers_are_cores_and_its_stable_lr_shows_two_over_lambda(fp_window, qtbot):
    shown = _run(qtbot, fp_window, "sgd")
    info = get_optimizer_info("sgd")
    core = fingerprint(info.cls, {}, name="sgd", build=info.build, declared=Adapters.of(info))
    assert shown.to_json()["results"] == core.to_json()["results"]
    table = fp_window.table
    for key in PROPERTIES:
        assert table.cell_text(key, 2) == core.result(key).measured
        assert table.cell_text(key, 3) == core.result(key).theory
    stable = float(re.search(r"largest stable lr ([0-9.e+-]+)",
                             table.cell_text("stable_lr", 2)).group(1))
    assert stable == pytest.approx(2 / 10, rel=0.01)
    assert table.cell_text("stable_lr", 0) == "✓"  # within 1 % of 2/λ
    assert "2/λ = 0.2" in table.cell_text("stable_lr", 3)
    # The bisection plot shows the lrs tried, closing on 0.2.
    tried = shown.result("stable_lr").traces["tried"]
    points = [item for item in fp_window.plots.stability_plot.plotItem.listDataItems()
              if item.opts.get("symbol")]
    assert sum(len(item.xData) for item in points) == len(tried)
    assert fp_window.export_button.isEnabled()


def test_adam_shows_scale_invariant_and_sgd_does_not(fp_window, qtbot):
    _run(qtbot, fp_window, "adam")
    assert fp_window.table.cell_text("scale", 0) == "✓"
    assert fp_window.table.cell_text("scale", 2).startswith("invariant")
    assert fp_window.table.cell_text("rotation", 0) == "✗"
    curves = fp_window.plots.scale_plot.plotItem.listDataItems()
    assert max(max(c.yData) for c in curves if c.yData is not None) < 1e-4  # paths agree
    _run(qtbot, fp_window, "sgd")
    assert fp_window.table.cell_text("scale", 0) == "✗"
    assert fp_window.table.cell_text("scale", 2).startswith("not invariant")
    curves = fp_window.plots.scale_plot.plotItem.listDataItems()
    assert max(max(c.yData) for c in curves if c.yData is not None) > 0.5  # paths differ


def test_a_bad_hyperparameter_is_named_and_the_window_stays_usable(fp_window, qtbot):
    from app.widgets.number_boxes import ScientificSpinBox

    fp_window.choose("sgd")
    lr_box = fp_window.findChild(ScientificSpinBox, "fpParam_lr")
    lr_box.setValue(-1.0)
    assert not fp_window.start()
    assert not fp_window.task.is_running()
    assert fp_window.error_label.isVisible()
    assert "params.lr" in fp_window.error_label.text()
    curvature = fp_window.findChild(ScientificSpinBox, "fingerprintCurvature")
    lr_box.setValue(0.01)
    curvature.setValue(0.0)
    assert not fp_window.start()
    assert "λ (curvature)" in fp_window.error_label.text()
    curvature.setValue(4.0)
    with qtbot.waitSignal(fp_window.fingerprint_finished, timeout=60_000) as blocker:
        assert fp_window.start()
    assert not fp_window.error_label.isVisible()
    fp = blocker.args[0]
    assert fp.kwargs == {"lr": 0.01} and fp.curvature == 4.0
    assert fp.result("stable_lr").value == pytest.approx(2 / 4, rel=0.01)


def test_closing_mid_run_leaves_no_thread_running(fp_window, qtbot):
    finished = []
    fp_window.fingerprint_finished.connect(finished.append)
    progress = []
    fp_window.task.progress.connect(progress.append)
    fp_window.choose("lbfgs")  # ~10 s of probes: still running when the window closes
    assert fp_window.start()
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=30_000)
    assert fp_window.task.is_running()
    fp_window.close()
    assert not fp_window.task.is_running()
    assert not [t for t in LIVE_THREADS if t.isRunning()]
    assert finished == [] and fp_window.result is None


def test_cancel_stops_between_runs_and_says_so(fp_window, qtbot):
    progress = []
    fp_window.task.progress.connect(progress.append)
    fp_window.choose("lbfgs")
    assert fp_window.start()
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=30_000)
    with qtbot.waitSignal(fp_window.fingerprint_finished, timeout=30_000) as blocker:
        fp_window.cancel_button.click()
    assert blocker.args[0] is None
    assert "Cancelled" in fp_window.progress_label.text()
    qtbot.waitUntil(lambda: not fp_window.task.is_running(), timeout=10_000)
    assert fp_window.start_button.isEnabled() and not fp_window.export_button.isEnabled()


def test_export_writes_what_the_command_line_prints(fp_window, qtbot, tmp_path, capsys):
    _run(qtbot, fp_window, "sgd")
    path = tmp_path / "sgd.json"
    fp_window.ask_export_path = lambda: str(path)
    assert fp_window.export_dialog()
    written = json.loads(path.read_text(encoding="utf-8"))
    assert main.main(["fingerprint", "sgd", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for data in (written, printed):
        data.pop("seconds")  # the only field that differs: how long it took
    assert written == printed


def test_user_code_runs_only_with_consent(fp_window, qtbot, tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("from pathlib import Path\n"
                    "Path(__file__).with_suffix('.ran').write_text('executed')\n"
                    "import torch\n"
                    "class Mine(torch.optim.SGD):\n"
                    "    pass\n")
    asked = []
    fp_window.consent.ask = lambda ref, sha: asked.append(ref) or (False, False)
    assert not fp_window.add_file(mine)
    assert len(asked) == 1 and asked[0].class_name == "Mine"
    assert not mine.with_suffix(".ran").exists()
    assert "consent" in fp_window.error_label.text()
    fp_window.consent.ask = lambda ref, sha: (True, False)
    assert fp_window.add_file(mine)
    assert mine.with_suffix(".ran").exists()
    assert fp_window.picker.currentData().endswith("mine.py:Mine")
    with qtbot.waitSignal(fp_window.fingerprint_finished, timeout=60_000) as blocker:
        assert fp_window.start()
    assert issubclass(get_optimizer_info(blocker.args[0].name).cls, torch.optim.SGD)
    assert blocker.args[0].result("stable_lr").value == pytest.approx(0.2, rel=0.01)


def test_every_plot_explains_itself_and_the_tools_menu_opens_the_window(window, qtbot):
    from PySide6.QtWidgets import QMainWindow

    from app.shell.menus import TOOLS
    from app.tools.tool_windows import open_tool_window

    assert "fingerprint" in [kind for _text, kind, _key, _tip in TOOLS]
    opened = open_tool_window(window, "fingerprint")
    assert isinstance(opened, FingerprintWindow)
    assert window.findChild(QMainWindow, "fingerprintWindow") is opened
    for plot in opened.plots.plots():
        assert help_text(plot).startswith(("Scale", "How"))
    opened.close_action.trigger()  # Ctrl+W
    assert not opened.isVisible()
