"""The main window: problem and runs on the left, the landscape in the middle, curves on the right.

Data flow (docs/architecture.md): panels emit edited labs → the document (undo stack) → ``lab_changed`` →
the window stops any race, resets the history and redraws. Play starts the shared core engine in
the controller's worker thread; each batch of records is appended to the history once and each
plot gets ``setData`` once per batch.

`MainWindow` composes one object per idea and forwards the names tests, tools and the timeline use:
  app/shell/menus.py         the actions (with shortcuts), the menu bar and the playback toolbar
  app/shell/files.py         new / open / save / recent / examples, the title, crash recovery
  app/shell/race_wiring.py   play / pause / step / reset, the history, the redraw, the status line
  app/shell/views_switch.py  the plots and docks, function lab or network lab
  app/shell/lesson_wiring.py the Lessons menu and the lesson dock
  app/shell/presenter.py     presenter mode (installed last, with the three below)
  app/shell/theme_menu.py    View ▸ Theme, remembered
  app/shell/window_state.py  the layout remembered between sessions, lab files dropped on it

`launch` (the entry point) starts in two phases (app/shell/startup.py): `MainWindow(deferred=True)`
is only the frame, painted before torch is imported; `build_panels` makes the rest once torch is
in. Hence this module imports the parts inside `build_panels`: none of them is needed for the
first paint, and each pulls in torch through core/engine/. `MainWindow()` builds at once.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from app.shell.files import APP_NAME
from app.shell.shortcut_guard import install_shortcut_guard
from app.shell.startup import LoadingPlaceholder, TorchLoader
from app.shell.wheel_guard import install_wheel_guard
from app.shell.window_state import GEOMETRY_KEY
from core.lab.format import Lab

SETTINGS_ORG = "DescentLab"


def _race_state(name: str) -> property:
    """A window attribute that reads and writes the race wiring's `name`."""
    return property(lambda window: getattr(window.race_wiring, name),
                    lambda window, value: setattr(window.race_wiring, name, value))


class MainWindow(QMainWindow):
    race_finished = Signal(bool)  # for tests and scripts: True when the race ran to its end
    panels_ready = Signal()  # `build_panels` is done: at once, or when torch is in (`launch`)

    def __init__(
        self,
        lab: Lab | None = None,
        settings: QSettings | None = None,
        recovery=None,
        *,
        deferred: bool = False,
    ):
        """The whole window; with ``deferred``, only its frame until `load_panels` (`launch`)."""
        super().__init__()
        # Before any panel exists: the wheel changes only a focused editor (app/shell/wheel_guard.py).
        install_wheel_guard(QApplication.instance())
        # Every plot's axes with plain numbers and room for the last tick, also when no theme was
        # applied first (a script or a screenshot that makes the window directly).
        from app.widgets.plot_style import install_plot_defaults

        install_plot_defaults()
        # Space, Ctrl+E, Ctrl+I… from a number box too (app/shell/shortcut_guard.py).
        install_shortcut_guard(QApplication.instance())
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else QSettings(SETTINGS_ORG, "descent-lab")
        self.panels_built = False
        self.loader: TorchLoader | None = None
        if not deferred:
            self.build_panels(lab, recovery)
            return
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 800)
        geometry = self.settings.value(GEOMETRY_KEY)  # where the user left it: no jump later
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.placeholder = LoadingPlaceholder()
        self.setCentralWidget(self.placeholder)

    def load_panels(self) -> None:
        """Phase 2 of `launch`: after the first paint, torch on a QThread, then `build_panels`."""
        self.loader = TorchLoader(self)
        self.loader.finished.connect(self._on_torch_loaded)
        if self.placeholder.painted_once:
            self.loader.start()
        else:
            self.placeholder.painted.connect(self.loader.start)

    def wait_for_loader(self) -> None:
        """Quitting while torch loads: the import cannot be interrupted, so it is waited for."""
        if self.loader is not None:
            self.loader.wait()

    def _on_torch_loaded(self) -> None:
        if self.panels_built or not self.isVisible():  # closed while torch was loading
            return
        if self.loader.error:
            print(self.loader.error, file=sys.stderr)
            self.placeholder.show_error(f"PyTorch could not be imported:\n\n{self.loader.error}")
            return
        self.build_panels()

    def build_panels(self, lab: Lab | None = None, recovery=None) -> None:
        """Everything but the frame: the parts, the menus, the panels, the layout; once."""
        from app.shell import menus
        from app.shell.controller import RaceController
        from app.shell.document import LabDocument
        from app.shell.files import FileActions
        from app.shell.lesson_wiring import LessonWiring
        from app.shell.race_wiring import RaceWiring
        from app.shell.recovery import RecoveryStore
        from app.shell.status import ElidedLabel
        from app.shell.user_code_wiring import UserCodeWiring
        from app.shell.views_switch import LabViews
        from core.lab.format import default_lab

        self.recovery = recovery if recovery is not None else RecoveryStore()
        # The parts, children made before the document and the controller: a dying window
        # deletes them first, so no signal of a dying document or controller reaches them.
        self.race_wiring = RaceWiring(self)
        self.file_actions = FileActions(self)
        self.lab_views = LabViews(self)
        self.lesson_wiring = LessonWiring(self)
        self.document = LabDocument(lab if lab is not None else default_lab(), self)
        self.controller = RaceController(self)
        self.network_view = None  # built on the first network lab (keeps startup light)
        self.network_panel = None

        self.lab_views.build()
        # The user's own optimizer classes: Add ▸ Optimizer from file…, .py drops, consent.
        self.user_code = UserCodeWiring(self)
        menus.build_actions(self)
        menus.build_toolbar(self)
        # A long message (a divergence's forensics) is elided to fit, the whole of it in the tooltip.
        self.status_label = ElidedLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.step_label = QLabel(objectName="stepLabel")
        # A fixed width: a label that changes size re-lays out the status bar on every frame
        # (measured ~4 ms a frame while streaming).
        self.step_label.setFixedWidth(
            self.step_label.fontMetrics().horizontalAdvance("step 1000000 / 1000000") + 12
        )
        self.step_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.statusBar().addPermanentWidget(self.step_label)

        files = self.file_actions
        self.document.lab_changed.connect(self.lab_views.on_lab_changed)
        self.document.lab_changed.connect(files.save_recovery)
        self.document.undo_stack.cleanChanged.connect(files.save_recovery)
        self.document.path_changed.connect(files.update_title)
        self.document.undo_stack.cleanChanged.connect(files.update_title)
        self.race_wiring.connect()
        self.timeline.follow(self.controller)

        self.resize(1280, 800)
        self.lab_views.on_lab_changed(self.document.lab)
        files.update_title()
        self.race_wiring.on_state_changed("idle")
        from app.export.dialog import install_export
        from app.shell.presenter import PresenterMode
        from app.shell.theme_menu import ThemeMenu
        from app.shell.window_state import LabDrops, LayoutMemory

        install_export(self)  # File ▸ Export… (Ctrl+E)
        self.presenter = PresenterMode(self)  # View ▸ Presenter mode (F11)
        self.theme_menu = ThemeMenu(self)  # View ▸ Theme
        self.layout_memory = LayoutMemory(self, self.presenter)  # restores the last layout
        self.theme_menu.apply_stored()
        self.lab_drops = LabDrops(self)
        self.panels_built = True
        self.panels_ready.emit()

    # -- the race (app/shell/race_wiring.py) --------------------------------------------------

    # Tests set `history` and `_latest`; the timeline reads `_race_indices` and `_redraw_timer`.
    history = _race_state("history")
    _latest = _race_state("latest")
    _race_indices = _race_state("race_indices")
    _redraw_timer = _race_state("redraw_timer")

    def play(self) -> None:
        self.race_wiring.play()

    def pause(self) -> None:
        self.controller.pause()

    def toggle_play(self) -> None:
        if self.controller.is_playing():
            self.pause()
        else:
            self.play()

    def step(self) -> None:
        self.race_wiring.step()

    def reset(self) -> None:
        # An optimizer file edited since it was loaded races its new content (asked first).
        note = self.user_code.reload_changed()
        self.race_wiring.reset()
        if note:
            self.status_label.setText(note)

    def flush_redraw(self) -> None:
        """Draw everything now (tests, screenshots, the end of a race)."""
        self.race_wiring.flush_redraw()

    def _redraw(self) -> None:
        self.race_wiring.redraw()

    def _show_step(self, step: int) -> None:
        self.race_wiring.show_step(step)

    def _on_state_changed(self, state: str) -> None:
        self.race_wiring.on_state_changed(state)

    def _on_start_moved(self, x: float, y: float) -> None:
        self.lab_views.on_start_moved(x, y)

    def _action(self, text: str, slot, shortcut=None, tip: str = "", icon=None):
        """An action with a window-wide shortcut (app/shell/menus.py); the timeline adds its own."""
        from app.shell import menus

        return menus.make_action(self, text, slot, shortcut, tip, icon)

    # -- files (app/shell/files.py) -----------------------------------------------------------

    def _confirm_discard(self) -> bool:
        """Ask before throwing away unsaved edits. Tests replace this method."""
        return self.file_actions.confirm_discard()

    def new_lab(self) -> None:
        self.file_actions.new_lab()

    def new_network_lab(self) -> None:
        self.file_actions.new_network_lab()

    def new_rl_lab(self) -> None:
        self.file_actions.new_rl_lab()

    def open_dialog(self) -> None:
        self.file_actions.open_dialog()

    def open_lab(self, path) -> bool:
        """Open a lab file; a bad file is refused with its message and nothing is lost."""
        return self.file_actions.open_lab(path)

    def open_lab_after_asking(self, path) -> bool:
        """Open a lab in place of this one (Recent, Examples, a drop), asking about unsaved edits."""
        return self.file_actions.open_lab_after_asking(path)

    def save(self) -> bool:
        return self.file_actions.save()

    def save_as(self) -> bool:
        return self.file_actions.save_as()

    def _save_to(self, path) -> bool:
        return self.file_actions.save_to(path)

    def _recent(self) -> list[str]:
        return self.file_actions.recent()

    def _ask_restore(self, source, dirty: bool) -> bool:
        """Ask whether to restore the lab a crashed session left. Tests replace this."""
        return self.file_actions.ask_restore(source, dirty)

    def offer_recovery(self) -> bool:
        """At startup: restore the lab left by a session that crashed, if the user wants it."""
        return self.file_actions.offer_recovery()

    # -- lessons and tools ---------------------------------------------------------------------

    def open_lesson(self, name: str, autoplay: bool = True) -> bool:
        """Load a lesson: its lab (unsaved, so Save asks where), its text, and play it."""
        return self.lesson_wiring.open_lesson(name, autoplay)

    def close_lesson(self) -> None:
        self.lesson_wiring.close_lesson()

    def open_tool(self, kind: str):
        """Tools menu: the LR range test, sweep or fair race window for this lab."""
        from app.tools.tool_windows import open_tool_window
        return open_tool_window(self, kind)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self.panels_built:  # closed while torch was loading: nothing to save or stop
            super().closeEvent(event)
            return
        if not self._confirm_discard():
            event.ignore()
            return
        self.race_wiring.closed = True
        self._redraw_timer.stop()  # a redraw after this would start a "Follow training" task
        self.controller.shutdown()
        if self.network_view is not None:
            self.network_view.surface_view.shutdown()
        from app.tools.tool_windows import close_tool_windows
        close_tool_windows(self)  # their threads end with the window
        export_dialog = getattr(self, "export_dialog", None)
        if export_dialog is not None:  # an animation's thread, ffmpeg and partial file go
            export_dialog.cancel_animation()
            export_dialog.close()
        self.recovery.clear()  # a clean exit leaves nothing to recover
        super().closeEvent(event)


def launch(lab_path: str | None = None, lesson: str | None = None) -> int:
    """Start the GUI (``python main.py [LAB]`` or ``python main.py --lesson NAME``).

    Two phases (app/shell/startup.py): the frame is shown and painted first; torch, the panels,
    then the lab, lesson, crash recovery or start page come after (`_after_panels`).
    """
    from app.shell.theme import THEME_KEY, apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(SETTINGS_ORG)
    from app.shell.desktop_entry import apply_app_identity

    apply_app_identity(app)  # the icon in resources/icons on every window
    # The theme the user chose last (View ▸ Theme, app/shell/theme_menu.py), else dark: the
    # loading frame is painted in the colours the panels will have.
    settings = QSettings(SETTINGS_ORG, "descent-lab")
    apply_theme(app, str(settings.value(THEME_KEY, "dark")))
    window = MainWindow(settings=settings, deferred=True)
    window.panels_ready.connect(lambda: _after_panels(app, window, lab_path, lesson))
    window.load_panels()
    app.aboutToQuit.connect(window.wait_for_loader)  # no QThread is left running at exit
    window.show()
    return app.exec()


def _after_panels(app: QApplication, window: MainWindow, lab_path: str | None,
                  lesson: str | None) -> None:
    """Phase 2's end: what `launch` did right after the window was made, before torch was lazy."""
    app.aboutToQuit.connect(window.controller.shutdown)
    from app.runs.zoo_listing import stop_describing

    # The zoo's background descriptions (app/runs/zoo_listing.py) end with the entry in hand.
    app.aboutToQuit.connect(lambda: stop_describing(5.0))
    from app.shell.warmup import start_warmup

    QTimer.singleShot(200, start_warmup)  # the first Play starts at once
    if lesson:
        QTimer.singleShot(0, lambda: window.open_lesson(lesson))
    elif lab_path:
        QTimer.singleShot(0, lambda: window.open_lab(lab_path))
    else:
        from app.shell.start_page import show_if_due

        # A restored lab is where the user left off; else the start page (first start, F1).
        QTimer.singleShot(0, lambda: window.offer_recovery() or show_if_due(window))
