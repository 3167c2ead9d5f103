"""The Fingerprint window (Tools ▸ Optimizer fingerprint…): an optimizer's measured properties
beside what theory says, the window twin of ``main.py fingerprint OPT`` (cli/fingerprint.py).

Pick an optimizer (torch.optim, the zoo, or a class from your own ``.py`` file — **From file…**
asks "Run this code?" first, app/shell/code_trust.py's `WindowConsent`, as Add ▸ Optimizer from
file… does), its hyperparameters (the catalog's defaults, core/optim/catalog.py), the curvature λ
of the stability probe and the seed, then **Fingerprint**. core/optim/fingerprint.py's
`fingerprint` runs on a worker thread (app/shell/controller.py's `CallbackTask`: a real QThread,
stopped between two runs when the window closes or Cancel is pressed), reporting which probe runs.
The names are resolved as the command line resolves them (core/lab/code.py's
`resolve_optimizer`), so a bad hyperparameter is refused with the same field-naming message.

The result shows as a table and three plots (app/tools/fingerprint_views.py); **Export JSON…**
writes exactly what ``main.py fingerprint OPT --json`` prints (`Fingerprint.to_json_text`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.runs.optimizer_picker import OptimizerPicker
from app.shell.code_trust import WindowConsent, optimizer_classes
from app.shell.document import LabDocument
from app.shell.plot_help import install_plot_help
from app.shell.tool_window import ToolWindow
from app.tools.fingerprint_views import FingerprintPlots, FingerprintTable, verdict
from app.widgets.hyperparam_form import HyperParamForm, same_value
from app.widgets.layouts import hbox
from app.widgets.number_boxes import ScientificSpinBox
from core.errors import LabError
from core.lab.code import resolve_optimizer
from core.lab.format import write_atomic
from core.optim.catalog import get_optimizer_info
from core.optim.check_report import Adapters
from core.optim.fingerprint import (
    DEFAULT_CURVATURE,
    PROPERTIES,
    Cancelled,
    Fingerprint,
    fingerprint,
)

# Runs each probe makes for a typical optimizer (SGD, Adam): how far its part of the bar goes.
EXPECTED_RUNS = {"scale": 6, "rotation": 3, "stable_lr": 26, "update": 2, "eps": 4}
STEPS_PER_PROBE = 100


class FingerprintWindow(ToolWindow):
    """Pick an optimizer and its hyperparameters; measure its fingerprint; show and export it."""

    fingerprint_finished = Signal(object)  # the Fingerprint, or None when cancelled

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(document, parent, "fingerprintWindow", "Optimizer fingerprint")
        self.task = self._callback_task()
        self.consent = WindowConsent(self)
        self.consent.where = "The Fingerprint window"
        self.result: Fingerprint | None = None
        self._build()
        self._on_optimizer_chosen()
        self._update_buttons()
        self.resize(1280, 800)

    # ---------------------------------------------------------------- building

    def _build(self) -> None:
        self.picker = OptimizerPicker()
        self.picker.setObjectName("fingerprintOptimizer")
        self.picker.set_network(True)  # the probes take any shape: matrix-only ones too
        self.picker.setToolTip("The optimizer to fingerprint: torch.optim, the zoo (type to "
                               "search), or your own class (From file…)")
        self.picker.activated.connect(self._on_optimizer_chosen)
        self.file_button = QPushButton("From file…", objectName="fingerprintFileButton")
        self.file_button.setToolTip("Fingerprint a torch.optim.Optimizer subclass from your own "
                                    ".py file (asks before its code runs)")
        self.file_button.clicked.connect(self.add_from_file_dialog)
        self.form = HyperParamForm("fpParam_", objectName="fingerprintParams")
        self.form.value_edited.connect(lambda *_: self._show_error(""))
        self.curvature_box = ScientificSpinBox(log=True)
        self.curvature_box.setObjectName("fingerprintCurvature")
        self.curvature_box.setRange(-1e12, 1e12)
        self.curvature_box.set_allowed(1e-6, 1e6)
        self.curvature_box.setValue(DEFAULT_CURVATURE)
        self.curvature_box.setToolTip("Curvature λ of the stability probe's quadratic ½·λ·‖x‖²: "
                                      "gradient descent is stable up to lr = 2/λ")
        self.seed_spin = QSpinBox(objectName="fingerprintSeed")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the probes' quadratic, start point and rotation")
        self._make_run_buttons("fingerprint", "Fingerprint",
                               "Measure the optimizer's properties", "Stop measuring")
        self.progress = QProgressBar(objectName="fingerprintProgress")
        self.progress.setRange(0, STEPS_PER_PROBE * len(PROPERTIES))
        self.progress.setTextVisible(False)
        self.progress.setToolTip("The probes done so far")
        self.progress_label = QLabel("Pick an optimizer and press Fingerprint.",
                                     objectName="fingerprintProgressLabel")
        self.progress_label.setWordWrap(True)
        self._make_error_label("fingerprintErrorLabel", "What is wrong with the settings")
        self.export_button = QPushButton("Export JSON…", objectName="fingerprintExportButton")
        self.export_button.setToolTip("Save the fingerprint as JSON: the same as "
                                      "main.py fingerprint OPT --json prints")
        self.export_button.clicked.connect(self.export_dialog)
        self.table = FingerprintTable()
        self.plots = FingerprintPlots()

        intro = QLabel("Measures how an optimizer behaves on small quadratics: does it care about "
                       "the gradient's scale or the coordinates' rotation, how large an lr stays "
                       "stable, how big its steps are. Theory is shown beside each number.")
        intro.setWordWrap(True)
        params_area = QScrollArea()
        params_area.setWidgetResizable(True)
        params_area.setWidget(self.form)
        params_area.setFrameShape(QScrollArea.Shape.NoFrame)
        form = QFormLayout()
        form.addRow("λ (curvature)", self.curvature_box)
        form.addRow("Seed", self.seed_spin)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(intro)
        left_layout.addLayout(hbox("Optimizer", (self.picker, 1), self.file_button))
        heading = QLabel("<b>Hyperparameters</b> (the optimizer's defaults to start with)")
        heading.setWordWrap(True)
        left_layout.addWidget(heading)
        left_layout.addWidget(params_area, 1)
        left_layout.addLayout(form)
        left_layout.addLayout(hbox(self.start_button, self.cancel_button, (self.progress, 1)))
        left_layout.addWidget(self.progress_label)
        left_layout.addWidget(self.error_label)
        left_layout.addWidget(self.export_button)
        left.setMinimumWidth(300)

        right = self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.table)
        right.addWidget(self.plots)
        right.setSizes([370, 400])  # the table's wrapped texts first, the plots under them
        central = QSplitter(Qt.Orientation.Horizontal)
        central.addWidget(left)
        central.addWidget(right)
        central.setSizes([340, 940])
        central.setStretchFactor(1, 1)
        self.setCentralWidget(central)
        install_plot_help(self)

    # ---------------------------------------------------------------- the optimizer

    def _on_optimizer_chosen(self, *_args) -> None:
        """Show the chosen optimizer's hyperparameters at their defaults."""
        name = self.picker.currentData()
        try:
            info = get_optimizer_info(name, field="optimizer")
        except LabError as error:
            self._show_error(str(error))
            return
        self._show_error("")
        self.form.set_params(info.hyperparams, info.defaults())

    def choose(self, name: str) -> None:
        """Pick optimizer ``name`` as a user would (zoo names are listed on first use)."""
        if self.picker.findData(name) < 0:
            self.picker.add_entry(get_optimizer_info(name, field="optimizer"))
        self.picker.choose(name)

    def add_from_file_dialog(self) -> bool:
        path, _ = QFileDialog.getOpenFileName(self, "Optimizer from file", "",
                                              "Python files (*.py)")
        return bool(path) and self.add_file(path)

    def choose_class(self, path: Path, classes: list[str]) -> str | None:
        """Which of a file's optimizer classes to fingerprint (tests replace this)."""
        name, ok = QInputDialog.getItem(
            self, "Optimizer from file",
            f"{path.name} defines {len(classes)} optimizer classes. Which one?", classes, 0, False)
        return name if ok and name else None

    def add_file(self, path: str | Path, class_name: str | None = None) -> bool:
        """Load a class of ``path`` (after "Run this code?") and pick it. False: not loaded."""
        path = Path(path).resolve()
        if class_name is None:
            classes = optimizer_classes(path)
            if not classes:
                self._show_error(f"optimizer: {path.name} defines no class (or is not valid "
                                 "Python): write a torch.optim.Optimizer subclass in it")
                return False
            class_name = classes[0] if len(classes) == 1 else self.choose_class(path, classes)
            if class_name is None:
                return False
        try:
            name, info, _ = resolve_optimizer(f"{path}:{class_name}", {}, self.consent)
        except LabError as error:
            self._show_error(str(error))
            return False
        self.picker.add_entry(info)
        self.picker.choose(name)
        return True

    # ---------------------------------------------------------------- running

    def _settings(self):
        """(name, info, kwargs, curvature) from the form; LabError names a wrong field."""
        name = self.picker.currentData()
        info = get_optimizer_info(name, field="optimizer")
        defaults = info.defaults()
        params = {key: value for key, value in self.form.values().items()
                  if not same_value(value, defaults.get(key))}
        name, info, kwargs = resolve_optimizer(name, params, self.consent)
        curvature = self.curvature_box.value()
        if not curvature > 0:
            raise LabError("λ (curvature)", f"must be a positive number, got {curvature:g}")
        return name, info, kwargs, curvature

    def start(self) -> bool:
        if self.task.is_running():
            return False
        self.form.clear_refused()
        try:
            name, info, kwargs, curvature = self._settings()
        except LabError as error:
            self._show_error(str(error))
            if error.field.startswith("params."):
                self.form.mark_refused(error.field.removeprefix("params."))
            return False
        self._show_error("")
        self.result = None
        self.table.clear_rows()
        self.plots.clear()
        self.progress.setValue(0)
        self.progress_label.setText(f"Fingerprinting {name}…")
        seed = self.seed_spin.value()

        def call(stop, report):
            def progress(key: str, index: int, runs: int) -> None:
                report((key, index, runs))

            try:
                return fingerprint(info.cls, kwargs, seed=seed, name=name, curvature=curvature,
                                   build=info.build, declared=Adapters.of(info),
                                   stop=stop.is_set, progress=progress)
            except Cancelled:
                return None

        self.task.start(call)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        self.task.cancel()
        self.progress_label.setText("Cancelling…")

    def shutdown(self) -> None:
        self.task.stop()

    def _update_buttons(self, *_args) -> None:
        running = self.task.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.picker, self.file_button, self.form, self.curvature_box,
                       self.seed_spin):
            widget.setEnabled(not running)
        self.export_button.setEnabled(not running and self.result is not None)

    @Slot(object)
    def _on_progress(self, payload) -> None:
        key, index, runs = payload
        part = min(STEPS_PER_PROBE - 1, STEPS_PER_PROBE * runs // EXPECTED_RUNS[key])
        self.progress.setValue(STEPS_PER_PROBE * index + part)
        self.progress_label.setText(f"Measuring {PROPERTIES[key]} "
                                    f"({index + 1} / {len(PROPERTIES)}; {runs} runs so far)…")

    @Slot(object)
    def _on_done(self, result) -> None:
        self.result = result
        self._update_buttons()
        if result is None:
            self.progress_label.setText("Cancelled: nothing was measured to the end.")
            self.fingerprint_finished.emit(None)
            return
        self.progress.setValue(self.progress.maximum())
        self.table.show_fingerprint(result)
        self.plots.show_fingerprint(result)
        self._fit_table()
        marks = " ".join(verdict(m)[0] for m in result.results)
        failed = f"; {len(result.failures)} probe(s) failed" if result.failures else ""
        self.progress_label.setText(f"{result.name}: {marks} in {result.seconds:.1f} s{failed}. "
                                    "Hover a row or a plot's ? for what it means.")
        self.fingerprint_finished.emit(result)

    def _fit_table(self) -> None:
        """The table as tall as its rows (wrapped texts), the rest of the height to the plots."""
        total = sum(self.right_splitter.sizes())
        rows = (self.table.verticalHeader().length() + self.table.horizontalHeader().height()
                + 2 * self.table.frameWidth())
        if total > 0:
            rows = min(rows, total - 240)  # the plots keep a readable height
            self.right_splitter.setSizes([rows, total - rows])

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._report_failure("The fingerprint stopped", text)

    # ---------------------------------------------------------------- export

    def ask_export_path(self) -> str:
        """Where to save the JSON (tests replace this)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export fingerprint",
                                              "fingerprint.json", "JSON files (*.json)")
        return path

    def export_dialog(self) -> bool:
        path = self.ask_export_path()
        return bool(path) and self.export_json(path)

    def export_json(self, path: str | Path) -> bool:
        """Write the fingerprint as ``main.py fingerprint --json`` prints it."""
        if self.result is None:
            return False
        try:
            write_atomic(Path(path), self.result.to_json_text() + "\n")
        except OSError as error:
            self._show_error(f"Export: cannot write {path} ({error.strerror or error})")
            return False
        self.progress_label.setText(f"Saved {path}.")
        return True
