"""Where the selected run's optimizer comes from, and its check before it races.

`OptimizerOrigin` is the line under the run editor's optimizer picker: where the optimizer comes
from (torch.optim, a zoo package and its version, the user's file and its hash), which adapters
a training loop gives it, a warning when it failed its check, and the **Check** button.

`CheckDialog` runs core/optim/checkup.py's `check_optimizer` on the run's optimizer with the run's
hyperparameters in a worker thread (app/shell/controller.py's `CallbackTask`: a real QThread that
the dialog stops and waits for when it closes), then shows the report card: ✓ / ✗ per property
with its evidence. A failed property is remembered (app/runs/zoo_listing.py) so the picker
shows a warning sign on that optimizer.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.runs import zoo_listing
from app.shell.controller import CallbackTask
from core.optim.optimizers import OptimizerInfo

# Repeats of the step-time probe (its evidence only; fewer keep the check to a few seconds).
TIMING_REPEATS = 3
MARK_COLORS = {"passed": "#2e9d4f", "failed": "#d23c3c", "not applicable": "#888888"}
MARKS = {"passed": "✓", "failed": "✗", "not applicable": "–"}


def origin_text(info: OptimizerInfo | None, name: str, network: bool) -> str:
    """Where the optimizer comes from and what it needs, in one or two short lines."""
    if info is None:
        return f"Your code: {name} (not loaded: it runs only with your consent)"
    if info.group == "torch.optim":
        import torch

        where = f"From torch.optim (PyTorch {torch.__version__.split('+')[0]})"
    elif info.group == "yours":
        where = f"Your code: {info.origin}"
    else:
        where = f"From {info.origin or info.group}"
    needs = []
    if info.needs_closure:
        needs.append("step(closure)")
    if info.create_graph:
        needs.append("backward(create_graph=True)")
    if info.train_eval:
        needs.append("train()/eval(): evaluated at its averaged point")
    if info.min_param_ndim:
        needs.append("weight matrices only" + ("; biases and gains go to AdamW" if network else ""))
    return where + (" · needs " + ", ".join(needs) if needs else "")


class OptimizerOrigin(QWidget):
    """The origin line and the Check button of the run editor (see the module docstring)."""

    checked = Signal(str)  # an optimizer's check has been shown (the picker re-reads badges)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, objectName="optimizerOriginRow")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.label = QLabel(objectName="optimizerOrigin")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.check_button = QPushButton("Check", objectName="checkOptimizerButton")
        self.check_button.setAutoDefault(False)
        self.check_button.setToolTip(
            "Check this optimizer before it races, with this run's hyperparameters: does it "
            "decrease a convex quadratic, is it deterministic, does state_dict save/load "
            "continue identically, … (a few seconds, in the background)")
        self.check_button.clicked.connect(self.open_check)
        layout.addWidget(self.check_button, 0, Qt.AlignmentFlag.AlignTop)
        self._info: OptimizerInfo | None = None
        self._name = ""
        self._params: dict = {}
        self._network = False
        self.dialog: CheckDialog | None = None

    def show_info(self, info: OptimizerInfo | None, name: str, params: dict | None = None,
                  network: bool = False) -> None:
        """Show where optimizer ``name`` (``info``: None when its code is not loaded) comes
        from; ``params``: the run's hyperparameters, which Check uses."""
        self._info, self._name = info, name
        self._params, self._network = dict(params or {}), network
        text = origin_text(info, name, network)
        failed = zoo_listing.check_failures(name)
        if failed:
            text += f"\n⚠ Failed its check: {failed}"
        self.label.setText(text)
        self.label.setToolTip(text)
        self.check_button.setEnabled(info is not None)

    def open_check(self) -> CheckDialog | None:
        """Check the shown run's optimizer with the run's hyperparameters (a modeless dialog)."""
        if self._info is None:
            return None
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = CheckDialog(self._info, self._params, self.window())
        self.dialog.checked.connect(self._on_checked)
        self.dialog.show()
        self.dialog.start()
        return self.dialog

    def _on_checked(self, name: str) -> None:
        if name == self._name:
            self.show_info(self._info, self._name, self._params, self._network)
        self.checked.emit(name)


class CheckDialog(QDialog):
    """The report card of one optimizer's check (see the module docstring)."""

    checked = Signal(str)  # the optimizer's name, once its report is shown

    def __init__(self, info: OptimizerInfo, params: dict, parent: QWidget | None = None):
        super().__init__(parent, objectName="checkDialog")
        self.info = info
        self.params = params
        self.report = None
        self.error = ""
        self.setWindowTitle(f"Check of {info.title}")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        layout = QVBoxLayout(self)
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "its defaults"
        self.heading = QLabel(objectName="checkHeading")
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setWordWrap(True)
        self.heading.setText(f"<b>{escape(info.title)}</b> with {escape(shown)}<br>"
                             f"<span style='color:gray'>{escape(info.origin or info.group)}</span>")
        layout.addWidget(self.heading)
        self.progress = QProgressBar(objectName="checkProgress")
        self.progress.setRange(0, 0)  # busy: the check reports no fractions
        self.progress.setTextVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("Checking… (a few seconds, in the background)", objectName="checkStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.card = QWidget(objectName="checkCard")
        self.rows = QVBoxLayout(self.card)
        self.rows.setContentsMargins(0, 0, 8, 0)
        self.rows.setSpacing(6)
        self.rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.card)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy report", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self._copy)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(620, 520)
        self.task = CallbackTask(self)
        self.task.done.connect(self._on_done)
        self.task.failed.connect(self._on_failed)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.task.stop)

    def start(self) -> None:
        """Run the check in the task's thread."""
        from core.optim.checkup import check_optimizer

        info, kwargs = self.info, self.info.torch_kwargs(self.params)

        def call(_stop, _report):
            return check_optimizer(info.cls, kwargs, seed=0, name=info.name, build=info.build,
                                   timing_repeats=TIMING_REPEATS)

        self.task.start(call)

    def is_running(self) -> bool:
        return self.task.is_running()

    def _on_done(self, report) -> None:
        self.report = report
        self.progress.hide()
        failures = [r.key for r in report.failures]
        zoo_listing.mark_check(self.info.name, ", ".join(failures) or None)
        for row, result in enumerate(report.results):
            self._add_row(row, result)
        if report.passed:
            self.status.setText(f"Passes every check ({report.seconds:.1f} s).")
        else:
            self.status.setText(f"Fails {len(failures)} of {len(report.results)} checks: "
                                f"{', '.join(failures)}. It can still race; the results may "
                                "not mean what they seem.")
            self.status.setStyleSheet(f"color: {MARK_COLORS['failed']}")
        self.copy_button.setEnabled(True)
        self.checked.emit(self.info.name)

    def _add_row(self, row: int, result) -> None:
        """One property: its mark (✓ ✗ –) and, beside it, its title over its evidence."""
        line = QHBoxLayout()
        line.setSpacing(8)
        mark = QLabel(MARKS[result.status], objectName=f"checkMark_{result.key}")
        mark.setStyleSheet(f"color: {MARK_COLORS[result.status]}; font-weight: bold; "
                           "font-size: 14pt")
        mark.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        mark.setFixedWidth(mark.fontMetrics().horizontalAdvance("✓✓") + 8)
        mark.setAccessibleName(result.status)
        text = QLabel(objectName=f"checkResult_{result.key}")
        text.setTextFormat(Qt.TextFormat.RichText)
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.setText(f"<b>{escape(result.title)}</b><br>"
                     f"<span style='color:gray'>{escape(result.evidence)}</span>")
        line.addWidget(mark, 0, Qt.AlignmentFlag.AlignTop)
        line.addWidget(text, 1)
        self.rows.insertLayout(row, line)

    def _on_failed(self, text: str) -> None:
        self.error = text
        self.progress.hide()
        self.status.setText(f"The check could not run: {text.strip().splitlines()[-1]}")
        self.status.setToolTip(text)
        self.checked.emit(self.info.name)

    def _copy(self) -> None:
        if self.report is not None:
            QGuiApplication.clipboard().setText(self.report.card())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.task.stop()  # waits for the check's thread (a check cannot be cut short)
        super().closeEvent(event)
