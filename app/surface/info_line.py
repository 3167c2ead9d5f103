"""The info line above the Surface tab's pages: what the picture shows, in words.

`describe` names the plane (random, PCA with its explained variance, the top-2 Hessian
eigenvectors with λ₁, λ₂, or a plane through two points), its centre, race step, span and grid,
the loss at the centre, each run's on-demand sharpness, and why the torch engine ran when the
native kernel is missing. Where the eigensolver did not converge (NaN, `core.landscape.eigensolver`)
it says "not converged" instead of a number: a Hessian plane then lies along the eigensolver's
best approximations. `message` colours a plain message (an error in red).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from core.landscape import fused as landscape_fused
from core.landscape.live import SurfaceUpdate


def describe(update: SurfaceUpdate, labels: list[str], sharpness: dict[int, float]) -> str:
    """The info line of a surface update: its plane, centre, race step, span, grid, the
    plane's numbers, the centre's loss, the runs' on-demand ``sharpness`` (run → value, NaN:
    not converged) and, when the native kernel is missing, why."""
    kind = update.request.directions
    label = escape(update.labels[update.center_run])
    parts = {
        "random": f"Random filter-normalized directions around <b>{label}</b>",
        "pca": "PCA of all trajectories",
        "hessian": f"Top-2 Hessian eigenvectors at <b>{label}</b>",
        "init_final": f"Plane through the initial weights and <b>{label}</b>",
        "runs": f"Plane through <b>{label}</b> and "
                f"<b>{escape(update.labels[update.request.run_b])}</b>",
    }
    steps = update.paths[update.center_run]["step"]
    when = f" · step {int(steps[-1])}" if len(steps) else ""
    head = (f"Following <b>{label}</b>: random filter-normalized directions"
            if update.followed else parts[kind])
    text = head + f"{when} · span ±{update.span:.3g}"
    text += f" · {len(update.alphas)}×{len(update.betas)} grid"
    if update.followed:
        text += " (coarse while following; <b>Compute</b> for the chosen plane)"
    if "explained_variance" in update.extra:
        r = update.extra["explained_variance"]
        text += (f" · explained variance PC1 {r[0]:.1%}, PC2 {r[1]:.1%} "
                 f"(together {r[0] + r[1]:.1%})")
    if "eigenvalues" in update.extra:
        ev = update.extra["eigenvalues"]
        if np.all(np.isfinite(ev)):
            text += f" · λ₁ = {ev[0]:.4g}, λ₂ = {ev[1]:.4g}"
        else:  # core.landscape.eigensolver gave up: the plane is only approximately v₁, v₂
            text += (" · <span style='color:#e0b060'>λ₁, λ₂ not converged: the plane lies "
                     "along the eigensolver's best approximations</span>")
    if update.done and math.isfinite(update.center_loss):
        text += f" · loss at the centre {update.center_loss:.5g}"
    if sharpness:
        sharp = ", ".join(f"{escape(labels[r])} "
                          + (f"{v:.4g}" if math.isfinite(v) else "not converged")
                          for r, v in sorted(sharpness.items()))
        text += f" · sharpness: {sharp}"
    slow = landscape_fused.unavailable_reason()
    if slow:  # same numbers, but a user waiting on a slow surface should know why
        text += (f" · <span style='color:#e0b060'>torch engine, no native kernel "
                 f"({escape(slow)})</span>")
    return text


def message(text: str, error: bool = False) -> str:
    """``text`` (rich text) in the info line's colour, or red for an error."""
    color = "#ff8080" if error else "#c8c8c8"
    return f"<span style='color:{color}'>{text}</span>"
