"""The loss surface around a trained network race: what ``main.py surface`` writes to
surface.npz (cli/surface.py) and the GUI's surface view saves (app/surface/view.py).

`compute_race_surface` trains a lab and returns a `RaceSurface`; `write_surface_npz` writes it.
The checks of its settings (`check_grid`, `check_positive`, `check_steps`) name the CLI flag, or
the field a caller passes. Surfaces of a race still running live in core/landscape/live.py.

What it does
------------
1. Trains the lab exactly as ``main.py run`` does (`core.engine.network_race.NetworkRace`, same
   seed, same batches), for the lab's ``steps`` (``--steps-from-lab``, the default) or
   ``--steps N``. Every ``K`` updates (``--every``; default steps/100, so ~100 snapshots a run)
   each run's flat parameter vector is kept: step 0 (the shared initial weights), K, 2K, ...,
   and the last step. A run that diverged or stopped early keeps the snapshots it had (finite
   ones only).
2. The centre of the plane is the **first run's final weights** (the first run whose final
   weights are finite, if run 0 diverged).
3. Directions (`core.landscape.directions`, `core.landscape.curvature`): ``random`` — two filter-normalised Gaussian
   directions drawn from the lab's seed; ``pca`` — the top-2 principal components of all runs'
   snapshots taken relative to the centre (one basis shared by all runs); ``hessian`` — the
   top-2 Hessian eigenvectors at the centre.
4. The grid is G×G over α, β ∈ [−S, S]. Default span S: 1 for random directions (α = 1 is a step
   as large as the weights, filter by filter, Li et al. 2018); for pca and hessian (unit
   directions, α and β are distances in weight space) 1.25 × the largest |α| or |β| of any
   projected snapshot, so every path fits.
5. The loss is the data loss (the lab's criterion, without L1/L2 penalties) on the whole training
   split, with the model in eval mode. Sharpness (the largest algebraic Hessian eigenvalue, by
   Lanczos on Hessian-vector products, `core.landscape.curvature.sharpness`) is measured at each
   run's final weights on the same data; a solve that does not converge is printed as "not
   converged".

surface.npz
-----------
``alphas`` (G,), ``betas`` (G,), ``loss`` (G, G): ``loss[j, i]`` is the loss at
``centre + alphas[i]·d1 + betas[j]·d2`` (rows are β, as an image is drawn);
``directions`` (the name), ``span``, ``steps``, ``every``, ``center_run`` (index), ``center_loss``;
``explained_variance`` (2,) for pca, or ``eigenvalues`` (2,) for hessian (λ1 ≥ λ2; both NaN when
the eigensolver did not converge: the plane then lies along its best approximations);
``labels`` (R,) run labels, ``sharpness`` (R,) (NaN for a run whose weights are not finite or
whose eigensolver did not converge), ``sharpness_not_converged`` (R,) bool (True exactly where the
eigensolver ran and did not converge); ``edge_of_stability`` (R,) each run's own threshold at
its final lr (NaN where its optimizer has no known edge), ``edge_rules`` (R,) what it is or why
there is none, ``preconditioned_sharpness`` (R,) λ₁(P⁻¹H) from Adam/RMSprop's final state (NaN
for other optimizers or not converged) (core/landscape/adaptive_edge.py);
per run i: ``run{i}_step``, ``run{i}_alpha``, ``run{i}_beta``, ``run{i}_off_plane`` (distance of
the snapshot from the plane), ``run{i}_true_loss`` (loss at the snapshot itself) and
``run{i}_surface_loss`` (loss at its projection onto the plane), one entry per snapshot.
All arrays are plain numpy (no pickles): ``np.load(path)`` reads them. The file is written
atomically: a crash never leaves half of one.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from core.errors import LabError
from core.lab.format import MAX_STEPS, Lab, validate_lab, write_atomic
from core.landscape import curvature, params
from core.landscape import surfaces as landscape
from core.landscape.directions import pca_directions, random_directions

DIRECTIONS = ("random", "pca", "hessian")
MIN_GRID, MAX_GRID = 3, 101
DEFAULT_GRID = 41
TRAJECTORY_POINTS = 100  # snapshots a run by default
AUTO_SPAN_MARGIN = 1.25
FUNCTION_LAB_MESSAGE = (
    "surface needs a network lab; a 2-D function's landscape is the function itself"
)


class SurfaceCancelled(Exception):
    """`compute_race_surface` was stopped through its ``stop`` event."""


@dataclass
class RaceSurface:
    """Everything surface.npz holds, as arrays."""

    directions: str
    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    span: float
    steps: int
    every: int
    center_run: int
    center_loss: float
    labels: tuple[str, ...]
    sharpness: np.ndarray
    paths: list[dict[str, np.ndarray]]  # per run: step, alpha, beta, off_plane, true/surface loss
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # explained_variance / eigenvalues
    # (R,) bool: the eigensolver ran and did not converge (sharpness NaN); None: none such.
    sharpness_not_converged: np.ndarray | None = None
    # (R,) each run's edge of stability at its final lr, what it is (or why none), and
    # Adam/RMSprop's preconditioned sharpness; None when not measured (core/landscape/adaptive_edge.py).
    edge_of_stability: np.ndarray | None = None
    edge_rules: tuple[str, ...] | None = None
    preconditioned_sharpness: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "alphas": self.alphas,
            "betas": self.betas,
            "loss": self.loss,
            "directions": np.array(self.directions),
            "span": np.array(self.span),
            "steps": np.array(self.steps),
            "every": np.array(self.every),
            "center_run": np.array(self.center_run),
            "center_loss": np.array(self.center_loss),
            "labels": np.array(self.labels, dtype=str),
            "sharpness": self.sharpness,
            "sharpness_not_converged": (
                np.zeros(len(self.labels), dtype=bool) if self.sharpness_not_converged is None
                else np.asarray(self.sharpness_not_converged, dtype=bool)),
            **self.extra,
        }
        if self.edge_of_stability is not None:
            out["edge_of_stability"] = np.asarray(self.edge_of_stability, dtype=np.float64)
            out["edge_rules"] = np.array(self.edge_rules or (), dtype=str)
            out["preconditioned_sharpness"] = np.asarray(self.preconditioned_sharpness,
                                                         dtype=np.float64)
        for i, path in enumerate(self.paths):
            for key, values in path.items():
                out[f"run{i}_{key}"] = values
        return out


def check_grid(grid: int, field_: str = "--grid") -> int:
    if isinstance(grid, bool) or not isinstance(grid, int) or not MIN_GRID <= grid <= MAX_GRID:
        raise LabError(field_, f"must be a whole number in [{MIN_GRID}, {MAX_GRID}], got {grid}")
    return grid


def check_positive(value: float | None, field_: str, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value <= 0:
        raise LabError(field_, f"must be a positive number, got {value}")


def check_steps(steps: int | None) -> None:
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise LabError("--steps", f"must be a whole number in [1, {MAX_STEPS}], got {steps}")


def _trained_snapshots(race, every: int, stop: threading.Event | None,
                       progress: Callable[[int, int], None] | None):
    """Train the race; return per run the snapshot steps and (T, P) weight stacks."""
    count = len(race.models)
    steps_kept: list[list[int]] = [[0] for _ in range(count)]
    weights: list[list[torch.Tensor]] = [[params.flatten(m)] for m in race.models]
    total = race.lab.steps
    for record in race.records(stop):
        # At a record of step t the alive runs have just been updated: they hold θ_(t+1)
        # (after the last step there is no update, so nothing new to keep).
        after = record.step + 1
        if record.step < total:
            for i in np.flatnonzero(race.alive):
                if after % every == 0 or after == total:
                    steps_kept[i].append(after)
                    weights[i].append(params.flatten(race.models[i]))
        if progress is not None:
            progress(record.step, total)
    if stop is not None and stop.is_set():
        raise SurfaceCancelled("stopped while training")
    # A run that stopped early or diverged at step t holds θ_t (no update at t): keep it as its
    # last point even when t is not a multiple of ``every``.
    for i in range(count):
        event = race.stopped[i] or race.diverged[i]
        final_step = event.step if event is not None else total
        if steps_kept[i][-1] != final_step:
            steps_kept[i].append(final_step)
            weights[i].append(params.flatten(race.models[i]))
    paths = []
    for kept, stack in zip(steps_kept, weights):
        matrix = torch.stack(stack)
        finite = torch.isfinite(matrix).all(dim=1).cpu().numpy()
        paths.append((np.asarray(kept, dtype=np.int64)[finite], matrix[torch.as_tensor(finite)]))
    return paths


def compute_race_surface(
    lab: Lab,
    grid: int = DEFAULT_GRID,
    directions: str = "random",
    span: float | None = None,
    steps: int | None = None,
    every: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RaceSurface:
    """Train ``lab`` and compute its surface as described in the module docstring."""
    from core.engine.factory import make_race

    if not lab.is_network:
        raise LabError("problem.kind", FUNCTION_LAB_MESSAGE)
    check_grid(grid)
    if directions not in DIRECTIONS:
        raise LabError("--directions",
                       f"must be one of {', '.join(DIRECTIONS)}, got {directions!r}")
    check_positive(span, "--span")
    if steps is not None:
        check_steps(steps)
        lab = validate_lab(replace(lab, steps=steps))
    if not lab.enabled_runs():
        raise LabError("runs", "no enabled run to train")
    every = every if every is not None else max(1, lab.steps // TRAJECTORY_POINTS)
    if every < 1:
        raise LabError("--every", f"must be a whole number >= 1, got {every}")

    race = make_race(lab)
    paths = _trained_snapshots(race, every, stop, progress)
    finals = [params.flatten(m) for m in race.models]
    finite = [bool(torch.isfinite(w).all()) for w in finals]
    if not any(finite):
        raise LabError("runs", "every run diverged; there are no finite weights to centre on")
    center_run = finite.index(True)
    center = finals[center_run]
    model = race.models[center_run]
    x, y, criterion = race.x_train, race.y_train, race.criterion
    loss_of_model = curvature.model_loss(x, y, criterion)
    generator = torch.Generator().manual_seed(lab.seed)

    extra: dict[str, np.ndarray] = {}
    if directions == "random":
        d1, d2 = random_directions(model, generator)
    elif directions == "pca":
        d1, d2, ratio = pca_directions([w for _, w in paths if len(w)], center=center)
        extra["explained_variance"] = ratio
    else:
        d1, d2, eigenvalues = curvature.hessian_directions(model, loss_of_model,
                                                           generator=generator)
        extra["eigenvalues"] = eigenvalues

    projections = [landscape.project_trajectory(w, center, d1, d2) for _, w in paths]
    if span is None:
        span = 1.0
        if directions != "random":
            reach = max((float(np.max(np.abs(np.concatenate([a, b]))))
                         for a, b, _ in projections if len(a)), default=0.0)
            # Never a zero span (a run that did not move): fall back to a small fraction of the
            # weights' size.
            floor = 1e-3 * max(1.0, float(center.norm()))
            span = max(AUTO_SPAN_MARGIN * reach, floor)

    alphas, betas = landscape.grid_axes(grid, span)
    loss = landscape.evaluate_surface(model, center, d1, d2, alphas, betas, x, y, criterion)
    center_loss = float(landscape.evaluate_points(model, center, d1, d2, np.zeros((1, 2)), x, y,
                                                  criterion)[0])

    run_paths, sharp = [], []
    for i, ((kept, weights), (alpha, beta, off_plane)) in enumerate(zip(paths, projections)):
        if len(weights):
            true_loss, surface_loss = landscape.true_vs_surface_loss(
                model, weights, center, d1, d2, x, y, criterion)
        else:
            true_loss = surface_loss = np.zeros(0)
        run_paths.append({"step": kept, "alpha": alpha, "beta": beta, "off_plane": off_plane,
                          "true_loss": true_loss, "surface_loss": surface_loss})
        sharp.append(
            curvature.sharpness(race.models[i], loss_of_model,
                                generator=torch.Generator().manual_seed(lab.seed))
            if finite[i] else math.nan
        )
    return RaceSurface(
        directions=directions, alphas=alphas, betas=betas, loss=loss, span=float(span),
        steps=lab.steps, every=every, center_run=center_run, center_loss=center_loss,
        labels=race.labels, sharpness=np.asarray(sharp, dtype=np.float64), paths=run_paths,
        extra=extra, sharpness_not_converged=np.isnan(sharp) & np.asarray(finite, dtype=bool),
        **_edges(race, loss_of_model, finite, lab.seed),
    )


def _edges(race, loss_of_model, finite, seed: int) -> dict:
    """Each run's edge of stability at its final lr, the rule in words, and Adam/RMSprop's
    preconditioned sharpness from the optimizer's final state (core/landscape/adaptive_edge.py)."""
    from core.landscape.adaptive_edge import edge_rule, preconditioner_scale

    edges, rules, preconditioned = [], [], []
    for i, optimizers in enumerate(race.optimizers):
        rule, text = edge_rule(optimizers)
        lr = float(optimizers[0].param_groups[0].get("lr", math.nan))
        edges.append(rule.threshold(lr) if rule is not None else math.nan)
        rules.append(rule.name if rule is not None else text)
        scale = (preconditioner_scale(optimizers, race.models[i])
                 if rule is not None and rule.preconditioned and finite[i] else None)
        preconditioned.append(math.nan if scale is None else float(curvature.hessian_top_eigen(
            race.models[i], loss_of_model, 1, generator=torch.Generator().manual_seed(seed),
            scale=scale).values[0]))
    return {"edge_of_stability": np.asarray(edges, dtype=np.float64), "edge_rules": tuple(rules),
            "preconditioned_sharpness": np.asarray(preconditioned, dtype=np.float64)}


def write_surface_npz(path: str | Path, surface: RaceSurface) -> None:
    """surface.npz, atomically (compressed; no pickled objects)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **surface.arrays())
    write_atomic(path, buffer.getvalue())
