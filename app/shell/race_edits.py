"""What an edit or a theme switch does to the race the window shows (the race itself lives in
app/shell/race_wiring.py, `RaceWiring`).

* `go_on_after_edit`: any edit of a 2-D lab resets the views; when the edited lab's race
  reproduces the recorded steps before some step s (a branch added at s, a branch's settings
  changed, a colour: core/engine/continuation.py), those steps are kept and the race goes on
  from s, paused, instead of starting over at 0.
  When a run changes from step 0 (an lr from the range test), the race starts over but the
  runs that did not change keep their trajectories: only the changed runs' restart.
* `recolor_curves`: the theme changed; the loss and lr curves take the theme's run colours
  (app/shell/run_palette.py) without a reset.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from app.shell.run_palette import current_run_colors
from core.engine.continuation import (
    carried_history,
    kept_steps,
    last_record,
    records_from,
    restarted_history,
    resume_step,
)
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
        _restart_changed_runs(wiring, lab, old_lab, old_history)
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


def _restart_changed_runs(wiring: RaceWiring, lab: Lab, old_lab: Lab,
                          old_history: RaceHistory) -> None:
    """A run's numbers change from step 0 (its lr from the range test): the lockstep race starts
    over, but the runs it reproduces whole keep their trajectories on screen, and only the
    changed runs' trajectories restart (core/engine/continuation.py, `restarted_history`)."""
    steps, sources = kept_steps(old_lab, lab, old_history.last_step)
    history = restarted_history(old_history, wiring.race_labels, steps, sources)
    if history is None:
        return
    wiring.history = history
    wiring.latest = dataclasses.replace(last_record(history), step=0)
    wiring.window.timeline.reset()
    wiring.flush_redraw()  # the kept runs' whole paths and curves
    wiring.latest = None
    wiring.show_step(0)
    restarted = [label for label, n in zip(wiring.race_labels, steps) if not math.isinf(n)]
    wiring.window.status_label.setText(
        f"{', '.join(restarted)} start{'s' if len(restarted) == 1 else ''} over; the other runs "
        "keep their trajectories. Press Play.")


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
