"""Evaluating every run of one seed of a network race: full-data metrics, per-layer statistics,
decision boundaries or fitted curves, and the diagram's weight copies (an `Evaluation`).

`Evaluator` holds what an evaluation needs from the race's shared setup (the data tensors, the
criterion, the boundary grid); its `per_model` path evaluates one model at a time (dropout, batch
norm, conv, Muon …) and its `stacked` path every run of a `StackedMLP` in one batched pass. Both
compute the metrics with core/problems/metrics.py's formulas. `update_ratios` measures each
layer's ‖ΔW‖ / ‖W‖ of a step's update.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from core.engine.network_records import (
    BOUNDARY_GRID,
    CURVE_POINTS,
    DIAGRAM_MAX_PARAMS,
    Evaluation,
)
from core.engine.neurons import plane_grid, unit_maps
from core.engine.race_setup import RaceSetup
from core.engine.sequence_probe import PROBE_SIZE, hidden_grad_norms, recurrent_radius
from core.engine.stacked import StackedMLP
from core.problems.metrics import (
    classification_metrics,
    classification_metrics_of,
    confusion_matrices,
    confusion_matrix,
    regression_metrics,
    regression_metrics_of,
)
from core.problems.model_spec import RECURRENT_GATES
from core.problems.models import linear_layers


class Evaluator:
    """Evaluates a seed's models on the race's data (`per_model`, or `stacked` for a stack)."""

    def __init__(self, setup: RaceSetup):
        self.data = setup.data
        self.device = setup.device
        self.criterion = setup.criterion
        self.model_spec = setup.model_spec
        self.task = self.data.task
        self.x_train, self.y_train = setup.x_train, setup.y_train
        self.x_val, self.y_val = setup.x_val, setup.y_val
        self.grid = self._boundary_inputs()
        # Each neuron over the plane, for the network screen (core/engine/neurons.py).
        self.neuron_grid = plane_grid(self.data, device=self.device)
        # Recurrent networks: a fixed probe batch for ‖∂L/∂h_t‖ (core/engine/sequence_probe.py).
        self.recurrent = any(layer.kind in RECURRENT_GATES for layer in self.model_spec.layers)
        self.probe = (self.x_train[:PROBE_SIZE], self.y_train[:PROBE_SIZE])

    def _boundary_inputs(self) -> torch.Tensor | None:
        """Model inputs for the decision-boundary grid (2-D sets) or the fitted curve (1-D)."""
        data = self.data
        if data.plane is not None:
            (x0, x1), (y0, y1) = data.plane
            xs = np.linspace(x0, x1, BOUNDARY_GRID)
            ys = np.linspace(y0, y1, BOUNDARY_GRID)
            gx, gy = np.meshgrid(xs, ys)  # row j = y, column i = x (row-major images)
            points = np.column_stack([gx.ravel(), gy.ravel()])
            return torch.as_tensor(data.features(points), dtype=torch.float32, device=self.device)
        if data.task == "regression" and data.input_shape == (1,):
            lo, hi = float(data.x_train.min()), float(data.x_train.max())
            xs = np.linspace(lo, hi, CURVE_POINTS, dtype=np.float32)[:, None]
            return torch.as_tensor(xs, device=self.device)
        return None

    @torch.no_grad()
    def per_model(self, models: list[nn.Module]) -> Evaluation:
        """Metrics of every run at the current weights, one model at a time (update ratios are
        filled in later, `with_ratios`)."""
        count = len(models)
        train: dict[str, list] = {}
        val: dict[str, list] = {}
        confusion, boundary, boundary_class, curve, scores = [], [], [], [], []
        layer_grads, ratios = [], []
        hidden_grad, radius = [], []
        classification = self.task == "classification"
        k = self.data.n_classes
        for model in models:
            model.eval()
            for split, x, y, out in (("train", self.x_train, self.y_train, train),
                                     ("val", self.x_val, self.y_val, val)):
                if len(x) == 0:
                    continue
                pred = model(x)
                out.setdefault("loss", []).append(float(self.criterion(pred, y)))
                metrics = (classification_metrics(pred, y, k) if classification
                           else regression_metrics(pred, y))
                for key, value in metrics.items():
                    out.setdefault(key, []).append(value)
                if classification and (split == "val" or len(self.x_val) == 0):
                    confusion.append(confusion_matrix(pred.argmax(1), y, k).cpu().numpy())
                    if k == 2:
                        scores.append(_positive_scores(pred))
            if self.grid is not None:
                pred = model(self.grid)
                if classification:
                    prob = torch.softmax(pred, dim=1)
                    g = BOUNDARY_GRID
                    cls = prob.argmax(dim=1)
                    shown = prob[:, 1] if k == 2 else prob.max(dim=1).values
                    boundary.append(shown.reshape(g, g).float().cpu().numpy())
                    boundary_class.append(cls.reshape(g, g).to(torch.int8).cpu().numpy())
                else:
                    curve.append(pred[:, 0].float().cpu().numpy())
            layers = linear_layers(model)
            layer_grads.append([
                float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0
                for _, m in layers
            ])
            ratios.append([0.0] * len(layers))
            if self.recurrent:
                norms = hidden_grad_norms(model, *self.probe, self.criterion)
                steps = self.model_spec.input_shape[0]
                hidden_grad.append(np.full(steps, np.nan) if norms is None else norms)
                radius.append(recurrent_radius(model))
        weights = None
        if self.model_spec.n_params <= DIAGRAM_MAX_PARAMS:
            weights = tuple(
                tuple(m.weight.detach().float().cpu().numpy().copy() for _, m in linear_layers(model))
                for model in models
            )
        neurons = self.neuron_maps(models)  # after the loop: every model is in eval mode
        as_arrays = lambda d: {key: np.asarray(v, dtype=np.float64) for key, v in d.items()}  # noqa: E731
        return Evaluation(
            weights=weights,
            train=as_arrays(train),
            val=as_arrays(val),
            layer_grad_norm=np.asarray(layer_grads, dtype=np.float64).reshape(count, -1),
            update_ratio=np.asarray(ratios, dtype=np.float64).reshape(count, -1),
            confusion=np.stack(confusion) if confusion else None,
            boundary=np.stack(boundary) if boundary else None,
            boundary_class=np.stack(boundary_class) if boundary_class else None,
            curve=np.stack(curve) if curve else None,
            neurons=neurons,
            val_scores=np.stack(scores) if scores else None,
            hidden_grad=np.stack(hidden_grad) if hidden_grad else None,
            recurrent_radius=np.stack(radius) if radius else None,
        )

    @torch.no_grad()
    def stacked(self, stack: StackedMLP) -> Evaluation:
        """`per_model` of a stacked race: each split through every run in ONE batched forward
        (`StackedMLP.predict`) and the metrics over a leading run axis — a few dozen torch calls
        instead of a few hundred, so the worker holds the GIL (and the core) far less. The
        metrics are core.problems.metrics's (the very functions `per_model`'s come from); the
        same numbers as the per-model path to float32 rounding of the forward (the losses are
        each run's own criterion call on its slice; tests compare)."""
        count = stack.count
        classification = self.task == "classification"
        k = self.data.n_classes
        train: dict[str, np.ndarray] = {}
        val: dict[str, np.ndarray] = {}
        confusion = boundary = boundary_class = curve = scores = None
        for split, x, y, out in (("train", self.x_train, self.y_train, train),
                                 ("val", self.x_val, self.y_val, val)):
            if len(x) == 0:
                continue
            pred = stack.predict(x)  # (R, N, outputs)
            losses = torch.stack([self.criterion(run_pred, y) for run_pred in pred])
            out["loss"] = np.asarray(losses.tolist(), dtype=np.float64)
            if classification:
                matrices = confusion_matrices(pred.argmax(dim=2), y, k)
                out.update(classification_metrics_of(matrices))
                if split == "val" or len(self.x_val) == 0:
                    confusion = matrices.cpu().numpy()
                    if k == 2:
                        scores = _positive_scores(pred)
            else:
                out.update(regression_metrics_of(pred, y))
        if self.grid is not None:
            pred = stack.predict(self.grid)
            if classification:
                # Softmax over the classes as (R, C, G²) (a view): along the last dim, with 2
                # classes, it took ~9x longer; the values differ by float32 rounding (~3e-8).
                # (max gives the same index as argmax, which took ~15x longer on this layout.)
                prob = torch.softmax(pred.transpose(1, 2), dim=1)
                g = BOUNDARY_GRID
                top, cls = prob.max(dim=1)
                shown = prob[:, 1] if k == 2 else top
                boundary = shown.reshape(count, g, g).float().cpu().numpy()
                boundary_class = cls.reshape(count, g, g).to(torch.int8).cpu().numpy()
            else:
                curve = pred[:, :, 0].float().cpu().numpy()
        layer_grads = stack.all_layer_grad_norms()
        return Evaluation(
            weights=stack.weight_copies() if self.model_spec.n_params <= DIAGRAM_MAX_PARAMS
            else None,
            neurons=self.neuron_maps(stack.models),  # its models' weights are the stack's rows
            train=train,
            val=val,
            layer_grad_norm=layer_grads,
            update_ratio=np.zeros_like(layer_grads),
            confusion=confusion,
            boundary=boundary,
            boundary_class=boundary_class,
            curve=curve,
            val_scores=scores,
        )


    @torch.no_grad()
    def neuron_maps(self, models: list[nn.Module]) -> tuple[tuple[np.ndarray, ...], ...] | None:
        """Per model, every neuron column over the plane (`core.engine.neurons.unit_maps`);
        None without a plane or for models that are not small MLPs."""
        if self.neuron_grid is None:
            return None
        maps = []
        for model in models:  # per_model has put each in eval mode; a stack's have no modes
            columns = unit_maps(model, self.neuron_grid)
            if columns is None:
                return None
            maps.append(columns)
        return tuple(maps)


def _positive_scores(logits: torch.Tensor) -> np.ndarray:
    """P(class 1) of (…, N, 2) logits, float32 (the precision–recall curve's scores)."""
    return torch.softmax(logits.float(), dim=-1)[..., 1].cpu().numpy()


def linear_weights(models: list[nn.Module]) -> list[list[torch.Tensor]]:
    """A copy of every model's linear/conv weights, to measure an update against (`update_ratios`)."""
    return [[m.weight.detach().clone() for _, m in linear_layers(model)] for model in models]


@torch.no_grad()
def update_ratios(models: list[nn.Module], before: list[list[torch.Tensor]]) -> np.ndarray:
    """(R, L) each model's ‖ΔW‖ / ‖W‖ per linear/conv layer since ``before`` (`linear_weights`)."""
    rows = []
    for model, weights in zip(models, before):
        rows.append([
            float((m.weight - w).norm() / w.norm().clamp(min=1e-12))
            for (_, m), w in zip(linear_layers(model), weights)
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(models), -1)


def with_ratios(evaluation: Evaluation, ratios: np.ndarray) -> Evaluation:
    """``evaluation`` with the update ratios of the step's update filled in."""
    return replace(evaluation, update_ratio=ratios)
