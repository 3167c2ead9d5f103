"""The network problem editor: the data set, how to train on it, and the network that learns it.

The left-dock counterpart of `ProblemPanel` for network labs, with the same contract: it edits
nothing in place. Every change builds a new `Lab` (``dataclasses.replace``), checks it with
`validate_lab` exactly as a lab file would be checked, and only then emits
``lab_edited(lab, description)``; the document makes it an undoable step and calls `set_lab`
back, which refreshes the widgets without emitting. A refused edit is explained in red under its
section, naming the field (``problem.model.layers[2].conv2d: conv2d needs image inputs …``), and
emits nothing.

A refused edit stays on screen: the panel keeps a *draft* `NetworkProblem` that every edit
builds on, so a user can add a conv layer (refused on 2-D points) and then a flatten layer and
have both applied once the network is valid. `set_lab` replaces the draft with the lab's problem.

`NetworkProblemPanel` composes three sections, top to bottom (the main window shows them as
the left dock's Data / Network / Training tabs instead, `pages`), each a module of its own
that shows the draft and proposes edited copies of it (`ProblemSection`,
app/network/editor_parts.py):

* **Data set** (`DatasetEditor`, app/network/dataset_editor.py): the set, its parameters, the data
  seed, extra features, standardization, and a preview or summary of the data.
* **Training** (`TrainingEditor`, app/network/training_editor.py): the loss, batch size, how often
  to evaluate, seeds per run, sharpness tracking, the device.
* **Network** (`LayerEditor`, app/network/layer_editor.py, its rows in app/network/layer_rows.py):
  the layers, the initialisation, the parameter count, and `NetworkDiagram` drawn from the weights
  a race starts from. ``panel.diagram`` is public so the main window can recolour it from the
  weights of a running race.

What lives here: the draft, validation and commit, where an error is said, and what no section
can decide alone: changing the data set keeps the network when it still fits; when it does not,
the panel resizes the output layer if that is enough (moons → blobs with 3 classes), and otherwise
replaces the network with `default_model_for` the new data (moons → digits); either way it says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.network.dataset_editor import DatasetEditor
from app.network.editor_parts import ProblemSection, plural, shape_text
from app.network.layer_editor import LayerEditor
from app.network.training_editor import TrainingEditor, fitting_losses, loss_title
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, validate_lab
from core.problems.datasets.dataset import Dataset
from core.problems.model_spec import ModelSpec, default_model_for, validate_model


class NetworkProblemPanel(QWidget):
    """Editor of a network lab's problem. See the module docstring."""

    lab_edited = Signal(object, str)  # the new Lab, an undo description

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("networkPanel")
        self._lab: Lab | None = None
        self._draft: NetworkProblem | None = None
        self._last_emitted: Lab | None = None
        self._refreshing = False

        self.dataset_editor = DatasetEditor()
        self.training_editor = TrainingEditor()
        self.layer_editor = LayerEditor()
        self.dataset_editor.drafted.connect(self._on_drafted)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(6)
        for section in self._sections():
            section.edited.connect(self._edit)
            layout.addWidget(section)
        layout.addStretch(1)
        # The widgets other windows and tests reach through the panel.
        self.preview = self.dataset_editor.preview
        self.sharpness_box = self.training_editor.sharpness_box
        self.layer_table = self.layer_editor.layer_table
        self.diagram = self.layer_editor.diagram
        self.setEnabled(False)  # until a network lab is shown

    def _sections(self) -> tuple[ProblemSection, ...]:
        return (self.dataset_editor, self.training_editor, self.layer_editor)

    def pages(self) -> list[tuple[str, ProblemSection]]:
        """The sections as the main window's left dock shows them, one tab each (title, widget):
        data, network, training. The caller takes them out of this panel's own column and gives
        them a parent; the panel still checks and commits every edit they propose."""
        return [("Data", self.dataset_editor), ("Network", self.layer_editor),
                ("Training", self.training_editor)]

    # Replaceable, for tests (no modal dialog) and for a window that brings its own dialog.
    @property
    def open_file_dialog(self) -> Callable[..., tuple[str, str]]:
        return self.dataset_editor.open_file_dialog

    @open_file_dialog.setter
    def open_file_dialog(self, dialog: Callable[..., tuple[str, str]]) -> None:
        self.dataset_editor.open_file_dialog = dialog

    @property
    def new_seed(self) -> Callable[[], int]:
        """Where Regenerate draws a data seed from (replaceable, for tests)."""
        return self.dataset_editor.new_seed

    @new_seed.setter
    def new_seed(self, draw: Callable[[], int]) -> None:
        self.dataset_editor.new_seed = draw

    # ================================================================ showing a lab

    def set_lab(self, lab: Lab) -> None:
        """Show ``lab``'s problem; never emits. A function lab leaves the panel disabled."""
        if not lab.is_network:
            self._lab = self._draft = None
            self.setEnabled(False)
            return
        self.setEnabled(True)
        # The note about an automatic change belongs to the edit that made it: keep it while
        # the document hands that very lab back, drop it for any other lab (undo, open, …).
        if self._last_emitted is None or lab != self._last_emitted:
            self.layer_editor.show_note("")
        self._last_emitted = None
        self._lab = lab
        self._draft = lab.problem
        self._hide_errors()
        self._refresh()

    def lab(self) -> Lab | None:
        return self._lab

    def dataset(self) -> Dataset | None:
        """The data set the panel shows (built from the draft), or None when it is invalid."""
        return self.dataset_editor.dataset()

    def model_spec(self) -> ModelSpec | None:
        return self.layer_editor.model_spec()

    def _refresh(self) -> None:
        """Show the draft in every section, without emitting."""
        self._refreshing = True
        try:
            self.dataset_editor.set_problem(self._lab, self._draft)
            self.training_editor.set_problem(self._draft, self.dataset_editor.task())
            self.layer_editor.set_problem(replace(self._lab, problem=self._draft),
                                          self.dataset_editor.dataset())
        finally:
            self._refreshing = False

    # ================================================================ actions

    def regenerate(self) -> None:
        """New data: a new explicit data seed, different from the one in use."""
        self.dataset_editor.regenerate()

    def browse_csv(self) -> None:
        """Ask for a CSV file (through the replaceable ``open_file_dialog``) and use it."""
        self.dataset_editor.browse_csv()

    def add_layer(self) -> None:
        """Insert a layer after the selected one (before the output layer when none is)."""
        self.layer_editor.add_layer()

    def remove_layer(self) -> None:
        self.layer_editor.remove_layer()

    def move_layer(self, offset: int) -> None:
        self.layer_editor.move_layer(offset)

    def use_default_model(self) -> None:
        """Replace the network by `default_model_for` the current data."""
        self.layer_editor.use_default_model()

    # ================================================================ edits

    def _edit(self, problem: NetworkProblem, description: str, fit_to_data: bool = False) -> bool:
        """Make ``problem`` the draft, show it, and emit it when the lab validates."""
        if self._lab is None or self._refreshing:
            return False
        self._draft = problem
        note = self._fit_to_data() if fit_to_data else ""
        self._refresh()
        if fit_to_data:
            self.layer_editor.show_note(note)
        return self._commit(description)

    def _on_drafted(self, problem: NetworkProblem) -> None:
        """Show a draft that is not ready to commit (a CSV set before its file is chosen)."""
        if self._lab is None or self._refreshing:
            return
        self._draft = problem
        self._refresh()
        self._hide_errors()
        self.layer_editor.show_note("")

    def _commit(self, description: str) -> bool:
        lab = replace(self._lab, problem=self._draft)
        try:
            validate_lab(lab)
        except LabError as exc:
            self._show_error(exc)
            return False
        self._hide_errors()
        if lab != self._lab:
            self._last_emitted = lab
            self.lab_edited.emit(lab, description)
        return True

    def _show_error(self, error: LabError) -> None:
        """Say ``error`` under the section of its field (training for any other field)."""
        self._hide_errors()
        if error.field.startswith("problem.model"):
            section: ProblemSection = self.layer_editor
        elif error.field.startswith("problem.dataset"):
            section = self.dataset_editor
        else:
            section = self.training_editor
        section.show_error(error)

    def _hide_errors(self) -> None:
        for section in self._sections():
            section.hide_errors()

    # ---------------------------------------------------------------- fitting new data

    def _fit_to_data(self) -> str:
        """Make the draft's loss and network fit its data set; say what changed (or "")."""
        try:
            dataset = self.dataset_editor.build_dataset(self._draft.dataset)
        except LabError:
            return ""  # the commit names the data set's problem
        notes = []
        problem = self._draft
        allowed = fitting_losses(dataset.task)
        if problem.loss not in allowed:
            problem = replace(problem, loss=allowed[0])
            notes.append(f"Loss set to {loss_title(allowed[0]).lower()} for {dataset.task}.")
        shape, outputs = dataset.input_shape, dataset.n_outputs
        what = _data_phrase(dataset)
        model = dict(problem.model)
        previous = self.dataset_editor.dataset()  # still the data shown before this edit
        if _model_fits(model, shape, outputs):
            if previous is not None and (previous.input_shape, previous.n_outputs) != (
                shape, outputs
            ):
                notes.append(f"The network still fits {what}; Default offers one made for it.")
        else:
            layers = list(model.get("layers", []))
            resized = None
            if layers and isinstance(layers[-1], Mapping) and "linear" in layers[-1]:
                resized = {**model, "layers": [*layers[:-1], {"linear": outputs}]}
            if resized is not None and _model_fits(resized, shape, outputs):
                model = resized
                notes.append(f"Output layer resized to {outputs} for {what}.")
            else:
                model = default_model_for(shape, outputs)
                init = problem.model.get("init")
                if init is not None and _model_fits({**model, "init": init}, shape, outputs):
                    model["init"] = init
                if model.get("init") == "default":
                    del model["init"]
                notes.append(f"The network did not fit {what}: replaced by a default one.")
            problem = replace(problem, model=model)
        self._draft = problem
        return " ".join(notes)


def _model_fits(model: Mapping, shape: tuple[int, ...], outputs: int) -> bool:
    try:
        validate_model(model, shape, outputs)
    except LabError:
        return False
    return True


def _data_phrase(dataset: Dataset) -> str:
    shape = dataset.input_shape
    inputs = f"{shape_text(shape)} images" if len(shape) == 3 else plural(shape[0], "input")
    if len(shape) == 2:
        inputs = f"sequences of {shape[0]} steps × {plural(shape[1], 'input')}"
    outputs = (f"{dataset.n_classes} classes" if dataset.task == "classification"
               else plural(dataset.n_outputs, "output"))
    return f"{inputs} and {outputs}"
