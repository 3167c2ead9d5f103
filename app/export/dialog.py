"""The Export dialog (File ▸ Export…, Ctrl+E): pictures, race animations, metrics, a PyTorch script.

A thin dialog: its pages are built in app/export/pages.py; what it saves comes from these:

* **Pictures**: any plot of the window as PNG or SVG (app/export/pictures.py).
* **Animations**: the race as GIF or MP4, with frame rate, size, views and number of frames
  (app/export/animation_options.py), re-run headless and rendered in the background
  (app/export/animation.py).
* **Data**: the window's metrics as CSV or JSON (the columns of ``main.py run``;
  core/teaching/metrics_export.py), and the lab as a standalone PyTorch script
  (core/teaching/script_export.py).

Here: the tabs, where files go (asked once, remembered under `EXPORT_DIR_KEY`), the status line
and refusals, the animation's progress and Cancel. `install_export(window)` adds the action to the
File menu; the window needs no other change.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
)

from app.export.animation import RaceAnimator
from app.export.animation_options import AnimationOptions
from app.export.pages import animation_page, data_page, picture_page
from app.export.pictures import export_picture, window_plots
from app.shell.user_folders import LAST_DIR_KEY, remember_dir, start_dir
from core.errors import LabError

EXPORT_DIR_KEY = "export_dir"


class ExportDialog(QDialog):
    """Tabs: Picture, Animation, Data. Paths come from `ask_path` (replaceable in tests)."""

    def __init__(self, window, settings: QSettings | None = None):
        super().__init__(window)
        self.setWindowTitle("Export")
        self.setObjectName("exportDialog")
        self.window_ = window
        self.settings = settings if settings is not None else window.settings
        self.animator: RaceAnimator | None = None
        # (caption, suggested file name, filter) -> path or "" ; tests replace it.
        self.ask_path = self._ask_path
        self.tabs = QTabWidget()
        self.tabs.addTab(self._picture_tab(), "Picture")
        self.tabs.addTab(self._animation_tab(), "Animation")
        self.tabs.addTab(self._data_tab(), "Data")
        self.status = QLabel(wordWrap=True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        # Esc and the Close button reject (QDialog); Ctrl+W closes it like the tool windows.
        close = QAction("Close", self)
        close.setShortcut(QKeySequence("Ctrl+W"))
        close.triggered.connect(self.reject)
        self.addAction(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

    # -- tabs -------------------------------------------------------------------------------

    def _picture_tab(self):
        page, self.plot_combo = picture_page(window_plots(self.window_), self.save_picture)
        return page

    def _animation_tab(self):
        controls = animation_page(self.window_.document.lab.is_network, self.save_animation,
                                  self.cancel_animation)
        self.fps_spin, self.frames_spin = controls.fps, controls.frames
        self.width_spin, self.height_spin = controls.width, controls.height
        self.view_boxes = controls.view_boxes
        self.progress_bar, self.cancel_button = controls.progress_bar, controls.cancel_button
        return controls.page

    def _data_tab(self):
        return data_page(self.save_metrics, self.save_script)


    def _ask_path(self, caption: str, name: str, filter_: str) -> str:
        # The last export folder, else the last lab folder, else Documents: never the app's own.
        start = start_dir(self.settings, EXPORT_DIR_KEY, LAST_DIR_KEY)
        path, _ = QFileDialog.getSaveFileName(self, caption, str(Path(str(start)) / name), filter_)
        return path

    def _path(self, caption: str, suffix: str, filter_: str) -> Path | None:
        stem = self.window_.document.lab.name.replace(" ", "_").lower() or "lab"
        path = self.ask_path(caption, f"{stem}{suffix}", filter_)
        if not path:
            return None
        path = Path(path)
        if path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        remember_dir(self.settings, EXPORT_DIR_KEY, path.parent)
        return path

    def _format_path(self, what: str, fmt: str, kind: str) -> Path | None:
        """`_path` for saving ``what`` in format ``fmt`` ("png", "gif", "csv", …)."""
        upper = fmt.upper()
        return self._path(f"Save {what} as {upper}", f".{fmt}", f"{upper} {kind} (*.{fmt})")

    def _done(self, paths: list[Path]) -> None:
        self.status.setText("Wrote " + ", ".join(str(p) for p in paths))

    def _refuse(self, text: str) -> None:
        self.status.setText(text)
        box = QMessageBox(QMessageBox.Icon.Warning, "Export", text, parent=self)
        box.setModal(False)
        box.show()

    # -- actions ----------------------------------------------------------------------------

    def save_picture(self, fmt: str) -> None:
        plots = window_plots(self.window_)
        widget = plots.get(self.plot_combo.currentText())
        if widget is None:
            return
        path = self._format_path("the view", fmt, "pictures")
        if path is None:
            return
        try:
            self._done([export_picture(widget, path)])
        except (OSError, ValueError) as exc:
            self._refuse(f"Could not save {path.name}: {exc}")

    def animation_options(self, path: Path) -> AnimationOptions:
        return AnimationOptions(
            path=path, fps=self.fps_spin.value(), width=self.width_spin.value(),
            height=self.height_spin.value(), frames=self.frames_spin.value(),
            views=tuple(k for k, box in self.view_boxes.items() if box.isChecked()),
        )

    def save_animation(self, fmt: str) -> None:
        if self.animator is not None and self.animator.active:
            self._refuse("An animation is being exported; wait for it or press Cancel.")
            return
        path = self._format_path("the race", fmt, "files")
        if path is None:
            return
        self.start_animation(self.animation_options(path))

    def start_animation(self, options: AnimationOptions) -> RaceAnimator | None:
        try:
            animator = RaceAnimator(self.window_.document.lab, options, self)
        except LabError as exc:
            self._refuse(str(exc))
            return None
        self.animator = animator
        animator.progress.connect(self._on_progress)
        animator.finished.connect(self._on_animation_finished)
        animator.failed.connect(self._on_animation_failed)
        animator.canceled.connect(self._on_animation_canceled)
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)
        animator.start()
        return animator

    def cancel_animation(self) -> None:
        if self.animator is not None:
            self.animator.cancel()

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, phase: str) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{phase}: %v / %m")

    def _end_animation(self, text: str) -> None:
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.status.setText(text)

    @Slot(object)
    def _on_animation_finished(self, path: Path) -> None:
        self._end_animation("")
        self._done([path])

    @Slot(str)
    def _on_animation_failed(self, message: str) -> None:
        self._end_animation(message)
        self._refuse(message)

    @Slot()
    def _on_animation_canceled(self) -> None:
        self._end_animation("Canceled: nothing was written.")

    def save_metrics(self, fmt: str) -> None:
        from core.teaching.metrics_export import write_metrics_csv, write_metrics_json

        history = self.window_.history
        if history is None or history.last_step < 0:
            self._refuse("No metrics yet: play the race first (Space).")
            return
        path = self._format_path("the metrics", fmt, "files")
        if path is None:
            return
        try:
            if fmt == "csv":
                written = write_metrics_csv(history, path)
            else:
                written = write_metrics_json(history, path, self.window_.document.lab)
        except OSError as exc:
            self._refuse(f"Could not save {path.name}: {exc.strerror or exc}")
            return
        self._done([written])

    def save_script(self) -> None:
        from core.teaching.script_export import export_script, write_script

        lab = self.window_.document.lab
        try:
            export_script(lab)  # refuse before asking where
        except LabError as exc:
            self._refuse(f"This lab cannot be exported as a script: {exc}")
            return
        path = self._path("Save the lab as a PyTorch script", ".py", "Python scripts (*.py)")
        if path is None:
            return
        try:
            self._done(write_script(lab, path))
        except (OSError, LabError) as exc:
            self._refuse(f"Could not save {path.name}: {exc}")

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Closing the dialog cancels an animation in progress (its thread must not outlive it)."""
        self.cancel_animation()
        super().done(result)


def _file_menu(window) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == "File":
            return action.menu()
    return None


def install_export(window) -> QAction:
    """File ▸ Export… (Ctrl+E), placed above Quit; opens one `ExportDialog` per window."""
    action = QAction("&Export…", window)
    action.setShortcut(QKeySequence("Ctrl+E"))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    tip = "Pictures of the plots, the race as GIF / MP4, metrics, the lab as a PyTorch script"
    action.setToolTip(tip)
    action.setStatusTip(tip)

    def open_dialog() -> None:
        dialog = getattr(window, "export_dialog", None)
        busy = dialog is not None and dialog.animator is not None and dialog.animator.active
        if not busy:
            # A fresh dialog: the views on offer depend on the lab now in the window.
            if dialog is not None:
                dialog.deleteLater()
            dialog = ExportDialog(window)
            window.export_dialog = dialog
        dialog.show()

    action.triggered.connect(open_dialog)
    window.addAction(action)
    menu = _file_menu(window)
    if menu is not None:
        quit_action = getattr(window, "quit_action", None)
        if quit_action is not None and quit_action in menu.actions():
            menu.insertAction(quit_action, action)
            menu.insertSeparator(quit_action)
        else:
            menu.addAction(action)
    window.export_action = action
    return action
