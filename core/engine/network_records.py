"""What a network race yields: its records, evaluations and early-stop events (plain data).

Records hold numpy arrays and floats only, so a history, a snapshot or a view can keep them
without touching torch. `NetworkRecord` is one step of every run; `Evaluation` the full-data
metrics, per-layer statistics and pictures of an evaluation step; `EarlyStop` a run that stopped
on its validation loss (a run that diverged is a `core.engine.function_race.Divergence`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.engine.function_race import Divergence

BOUNDARY_GRID = 64  # decision-boundary resolution (G×G points per run)
CURVE_POINTS = 200  # fitted-curve resolution for 1-D regression
DIAGRAM_MAX_PARAMS = 50_000  # evaluations carry weight copies up to this model size


@dataclass(frozen=True)
class EarlyStop:
    run: int
    label: str
    step: int
    best_step: int
    best_val_loss: float
    reason: str = ""  # with several seeds: which seed stopped when (empty for one seed)


@dataclass(frozen=True)
class Evaluation:
    """Full-data metrics of every run at one step (arrays have one row per run)."""

    train: dict[str, np.ndarray]  # "loss", plus "accuracy"/"precision"/... or "mse"/"mae"/"r2"
    val: dict[str, np.ndarray]  # same keys; empty when there is no validation split
    layer_grad_norm: np.ndarray  # (R, L)
    update_ratio: np.ndarray  # (R, L): ‖ΔW‖ / ‖W‖ of this step's update (0 at the last step)
    confusion: np.ndarray | None  # (R, k, k) on validation (train when no val split)
    boundary: np.ndarray | None  # (R, G, G) float32: P(class 1) for binary, else confidence
    boundary_class: np.ndarray | None  # (R, G, G) int8 predicted class (classification)
    curve: np.ndarray | None  # (R, CURVE_POINTS) predictions of a 1-D regression
    # Per run, each linear/conv layer's weight (copies), for the live network diagram; None for
    # networks above DIAGRAM_MAX_PARAMS, where copying every evaluation would cost too much.
    weights: tuple[tuple[np.ndarray, ...], ...] | None = None
    # Per run, every neuron column over the data's plane (core/engine/neurons.py `unit_maps`:
    # inputs, each hidden layer, outputs; (units, G, G) float32 each), for the network screen's
    # diagram; None without a plane or for a model that is not a small MLP.
    neurons: tuple[tuple[np.ndarray, ...], ...] | None = None
    # With several seeds: the standard deviation over the seeds of each train / val metric
    # (same keys as ``train`` / ``val``, which then hold the means). Empty for one seed.
    train_std: dict[str, np.ndarray] = field(default_factory=dict)
    val_std: dict[str, np.ndarray] = field(default_factory=dict)
    # Binary classification: each run's predicted probability of class 1 for every sample of
    # the split the confusion matrix counts (validation; training when there is none), (R, N)
    # float32, for the precision–recall curve (core/problems/metrics.py); else None.
    val_scores: np.ndarray | None = None
    # Recurrent networks (core/engine/sequence_probe.py), else None: each run's ‖∂L/∂h_t‖ of its
    # first recurrent layer on a fixed probe batch, (R, T), and the spectral radius of each
    # recurrent layer's recurrent matrix, (R, L_rec).
    hidden_grad: np.ndarray | None = None
    recurrent_radius: np.ndarray | None = None
    # Per run, per linear/conv weight matrix: the singular values (largest first) of W at this
    # step and of this step's update ΔW (core/engine/update_spectra.py); update_spectra is None
    # at the last step (no update follows), both None for models too large to decompose.
    weight_spectra: tuple[tuple[np.ndarray, ...], ...] | None = None
    update_spectra: tuple[tuple[np.ndarray, ...], ...] | None = None


@dataclass(frozen=True)
class NetworkRecord:
    step: int
    epoch: float  # epochs completed at this step (step × batch / n_train)
    loss: np.ndarray  # (R,) the mini-batch's data loss (without the L1/L2 penalty)
    lr: np.ndarray  # (R,) lr of the update from this step to the next
    grad_norm: np.ndarray  # (R,) total gradient norm before clipping
    alive: np.ndarray  # (R,) False once a run diverged or stopped early
    wall_time: float  # seconds since the race started
    evaluation: Evaluation | None = None
    diverged: tuple[Divergence, ...] = ()
    stopped: tuple[EarlyStop, ...] = ()
    # With several seeds (None for one): the std over the live seeds of ``loss`` (R,), each
    # seed's own loss (S, R) (NaN where that seed's run is not alive) and the live seed count (R,).
    loss_std: np.ndarray | None = None
    seed_loss: np.ndarray | None = None
    seeds_alive: np.ndarray | None = None
    # problem.sharpness_every > 0, at the steps it is measured: each run's top Hessian eigenvalue
    # of the training loss at this step's weights (R,), NaN for runs not alive; else None.
    sharpness: np.ndarray | None = None
    # With sharpness, per run (R,): Adam/RMSprop's preconditioned sharpness λ₁(P⁻¹H) (NaN for
    # other optimizers and before their first update) and the run's edge of stability at this
    # step's lr (NaN where no rule is known; core/landscape/adaptive_edge.py).
    preconditioned_sharpness: np.ndarray | None = None
    edge: np.ndarray | None = None
    # When some run has a clip_norm: (R,) whether its gradient norm before clipping exceeded it
    # at this step (norm clipping fired); with several seeds, whether it fired on any seed.
    clipped: np.ndarray | None = None
