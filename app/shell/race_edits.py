"""What an edit or a theme switch does to the race the window shows (the race itself lives in
app/shell/race_wiring.py, `RaceWiring`).

* `go_on_after_edit`: any edit of a 2-D lab resets the views; when the edited lab's race
  reproduces the recorded steps before some step s (a branch added at s, a branch's settings
  changed, a colour: core/engine/continuation.py), those steps are kept and the race goes on
  from s, paused, instead of starting over at 0.
* `recolor_curves`: the theme changed; the loss and lr curves take the theme's run colours
  (app/shell/run_palette.py) without a reset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.shell.run_palette import current_run_colors
from core.engine.continuation import carried_history, last_record, records_from, resume_step
from core.engine.factory import make_race
from core.engine.history import RaceHistory
from core.engine.race_summary import race_summary
from core.lab.format import Lab

if TYPE_CHECKING:
    from app.shell.race_wiring import RaceWiring


def go_on_after_edit(wiring: RaceWiring, lab: Lab) -> None:
    """An edit of a 2-D lab (the race already stopped): the views are reset, then, when the
    edited lab's race reproduces the recorded steps before some step s (a branch added at s,
    a branch's settings changed, a colour: core/engine/continuation.py), those steps are kept
    and the race goes on from s, paused, instead of starting over."""
    old_lab, old_history = wiring.race_lab, wiring.history
    wiring.reset_views(lab)
    window = wiring.window
    # (Any new lab, an opened file too: only the steps it would reproduce bit for bit are kept.)
    if not isinstance(old_history, RaceHistory) or old_lab is None or not wiring.race_indices:
        return
    s, sources = resume_step(old_lab, lab, old_history.last_step)
    if s <= 0:
        return
    wiring.history = carried_history(old_history, wiring.race_labels, sources, s)
    wiring.latest = last_record(wiring.history)
    window.timeline.reset()
    wiring.flush_redraw()
    if s > lab.steps:  # nothing to recompute: the race stays finished
        wiring.finished = True
        window.status_label.setText(race_summary(wiring.history))
        return
    wiring.controller.start(lambda stop: records_from(
        make_race(lab, internals=True).records(stop), s), playing=False)
    if s <= old_history.last_step:
        wiring.controller.step(1)  # replay up to s (in the worker) and show step s
    window.status_label.setText(
        f"Kept steps 0 … {s - 1} of every run: the race goes on from step {s} "
        "(Space plays on, → steps once).")


def recolor_curves(wiring: RaceWiring) -> None:
    """The theme changed: a 2-D race's loss and lr curves take the theme's run colours and
    are redrawn from the history (nothing is reset; the landscape keeps the lab's colours).
    Network and rl views take them at their next reset."""
    window, lab = wiring.window, wiring.window.document.lab
    if lab.is_network or lab.problem.kind == "rl":
        return
    colors = current_run_colors([lab.run_color(i) for i in wiring.race_indices])
    labels = list(wiring.race_labels)
    window.loss_plot.set_runs(labels, colors, x_max=lab.steps)
    window.lr_plot.set_runs(labels, colors, x_max=lab.steps)
    history = wiring.history
    if isinstance(history, RaceHistory) and history.last_step >= 0:
        window.loss_plot.update_series([(s.column("step"), s.column("loss")) for s in history.runs])
        window.lr_plot.update_series([(s.column("step"), s.column("lr")) for s in history.runs])
        if window.timeline.position is not None:
            window.loss_plot.set_cursor(window.timeline.position)
            window.lr_plot.set_cursor(window.timeline.position)
