"""The user's own optimizer classes in the window: Add ▸ Optimizer from file…, a ``.py`` dropped
on the runs table, the consent asked before any of it runs, and Reset racing edited code.

* **Adding** (`UserCodeWiring.add_file`): the file's optimizer classes are found by parsing it
  (app/shell/code_trust.py's `optimizer_classes`; nothing runs), the user picks one when there are
  several (`choose_class`), then the consent question (`WindowConsent`: path and SHA-256, "Run
  this code?"; trusted content is not asked again). Only a yes loads the class
  (core/optim/user_code.py's `load_code`, which executes the file) and adds a run of it.
* **Opening a lab** that names user code asks the same question before the lab is read
  (app/shell/files.py passes `consent` to core/lab/format.py's `load_lab`).
* **Reset** (`reload_changed`): a file whose bytes changed since it was loaded is hashed again
  and, with consent, loaded again, so the new code races; the status line then says which runs'
  code differs from the content recorded when the lab was saved (core/lab/code.py's
  `code_changes`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QFileDialog, QInputDialog

from app.runs.run_text import next_color, unique_label
from app.shell.code_trust import WindowConsent, optimizer_classes
from app.shell.user_folders import remember_dir, start_dir
from core.errors import LabError
from core.lab.code import code_changes
from core.lab.format import MAX_RUNS, RunSpec
from core.optim import user_code

CODE_DIR_KEY = "last_code_dir"  # QSettings: the folder of the last optimizer file added


class UserCodeWiring(QObject):
    """The window's part for the user's own optimizer code (see the module docstring)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.consent = WindowConsent(window)
        viewport = window.runs_panel.table.viewport()
        viewport.setAcceptDrops(True)
        viewport.installEventFilter(self)

    # ---------------------------------------------------------------- adding a class

    def add_from_file_dialog(self) -> bool:
        """Add ▸ Optimizer from file…: pick a ``.py`` file, then its class."""
        start = start_dir(self.window.settings, CODE_DIR_KEY)
        path, _ = QFileDialog.getOpenFileName(self.window, "Optimizer from file", start,
                                              "Python files (*.py)")
        return bool(path) and self.add_file(path)

    def choose_class(self, path: Path, classes: list[str]) -> str | None:
        """Which of a file's optimizer classes to add (tests replace this)."""
        name, ok = QInputDialog.getItem(
            self.window, "Optimizer from file",
            f"{path.name} defines {len(classes)} optimizer classes. Which one races?",
            classes, 0, False)
        return name if ok and name else None

    def add_file(self, path: str | Path, class_name: str | None = None) -> bool:
        """Add a run of an optimizer class from the file at ``path`` (asks which class when it
        has several and ``class_name`` is None, then asks consent). False: nothing was added."""
        window = self.window
        path = Path(path).resolve()
        lab = window.document.lab
        if len(lab.runs) >= MAX_RUNS:
            return self._refuse(f"A lab holds at most {MAX_RUNS} runs; remove one first.")
        if class_name is None:
            classes = optimizer_classes(path)
            if not classes:
                return self._refuse(f"{path.name} defines no class (or is not valid Python): "
                                    "write a torch.optim.Optimizer subclass in it.")
            class_name = classes[0] if len(classes) == 1 else self.choose_class(path, classes)
            if class_name is None:
                return False
        try:
            ref = user_code.parse_code_ref(f"{path}:{class_name}")
            if not user_code.is_current(ref):
                sha256 = user_code.code_hash(ref)
                self.consent.where = f"Adding an optimizer from {path.name}"
                if not self.consent(ref, sha256):
                    window.status_label.setText(f"Not added: you chose not to run {path.name}; "
                                                "nothing in it ran.")
                    return False
                user_code.load_code(ref)
            info = user_code.loaded_info(ref.name)
            sha256 = user_code.loaded_hash(ref.name)
        except LabError as error:
            return self._refuse(f"{path.name}: {error.message}")
        remember_dir(window.settings, CODE_DIR_KEY, path.parent)
        lr = info.defaults().get("lr")
        run = RunSpec(
            label=unique_label(info.title, {r.label for r in lab.runs}),
            optimizer=ref.name,
            params={"lr": lr} if lr is not None else {},
            color=next_color(lab),
            code_sha256=sha256,
        )
        window.document.edit(replace(lab, runs=lab.runs + (run,)),
                             f"Add {info.title} from {path.name}")
        window.runs_panel.select_run(len(window.document.lab.runs) - 1)
        note = ("" if not info.min_param_ndim or lab.is_network
                else f" {info.title} only works on weight matrices: race it on a network lab.")
        window.status_label.setText(f"Added {info.title} from {path}.{note}")
        return True

    def _refuse(self, text: str) -> bool:
        self.window.status_label.setText(text)
        self.window.file_actions.error("Could not add the optimizer", text)
        return False

    # ---------------------------------------------------------------- Reset

    def reload_changed(self) -> str:
        """Load again, with consent, every run's code whose file changed since it was loaded;
        what the status line should say about the code ("" when nothing is to be said)."""
        lab = self.window.document.lab
        notes, reloaded = [], False
        seen = set()
        for run in lab.runs:
            if not user_code.is_code_ref(run.optimizer) or run.optimizer in seen:
                continue
            seen.add(run.optimizer)
            try:
                ref = user_code.parse_code_ref(run.optimizer)
                if user_code.is_current(ref) or user_code.loaded_info(ref.name) is None:
                    continue
                sha256 = user_code.code_hash(ref)
                self.consent.where = f"{Path(ref.target).name} changed since it was loaded; Reset"
                if not self.consent(ref, sha256):
                    notes.append(f"{Path(ref.target).name} changed; you chose not to run the "
                                 "new content, so the code loaded before races.")
                    continue
                user_code.load_code(ref)
                reloaded = True
            except LabError as error:
                notes.append(f"{run.label}: {error.message}")
        if reloaded:
            self.window.runs_panel.set_lab(lab)  # the new code's hyperparameters in the editor
        changes = code_changes(lab)
        if changes:
            notes.append("Code changed since the lab was saved: " + "; ".join(changes))
        return " ".join(notes)

    # ---------------------------------------------------------------- a .py dropped on the runs

    @staticmethod
    def dropped_python(mime) -> Path | None:
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".py"):
                return Path(url.toLocalFile())
        return None

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            path = self.dropped_python(event.mimeData())
            if path is not None:
                event.acceptProposedAction()
                if kind == QEvent.Type.Drop:
                    self.add_file(path)
                return True
        return super().eventFilter(watched, event)
