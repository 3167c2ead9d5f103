"""What every seed of a network race starts from: the initial model and the shared setup.

`initial_model` is the model every run of one seed copies (the problem panel's diagram draws seed
0's); `RaceSetup` is what all seeds share: the device, the data set and its tensors, the model
spec and the criterion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.engine.devices import resolve_device
from core.lab.format import SEED_STRIDE, Lab
from core.problems.datasets.build import make_dataset
from core.problems.datasets.dataset import Dataset
from core.problems.metrics import class_weight_values, loss_function
from core.problems.model_spec import ModelSpec, validate_model
from core.problems.models import build_model


def initial_model(lab: Lab, data: Dataset, seed_index: int = 0) -> nn.Module:
    """The model every run of seed ``seed_index`` starts from, on the CPU: ``lab.problem.model``
    built for ``data`` with weights drawn from ``lab.seed + SEED_STRIDE·seed_index``.

    The race copies it for each run; the problem panel's diagram (app/network/layer_editor.py)
    draws seed 0's, so both always show the same initial weights. Raises `LabError` when the
    model does not fit the data.
    """
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    seed = lab.seed + SEED_STRIDE * seed_index
    return build_model(spec, generator=torch.Generator().manual_seed(seed))


def criterion_for(problem, data: Dataset, device: torch.device):
    """The loss of a network problem on its data: ``problem.loss``, with ``problem.class_weights``
    (from the training split's counts when "balanced") on the device, float32 as the models."""
    weights = class_weight_values(getattr(problem, "class_weights", None), data.y_train,
                                  data.n_classes)
    tensor = None if weights is None else torch.as_tensor(weights, dtype=torch.float32,
                                                          device=device)
    return loss_function(problem.loss, data.task, class_weights=tensor)


@dataclass
class RaceSetup:
    """What every seed of a race shares: the device, the data and its tensors, the model spec."""

    device: torch.device
    notices: list
    data: Dataset
    model_spec: ModelSpec
    criterion: object
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @classmethod
    def of(cls, lab: Lab) -> RaceSetup:
        problem = lab.problem
        device, notices = resolve_device(problem.device)
        data = make_dataset(problem.dataset, lab.seed, base_dir=lab.base_path)
        model_spec = validate_model(problem.model, data.input_shape, data.n_outputs)
        return cls(
            device=device, notices=notices, data=data, model_spec=model_spec,
            criterion=criterion_for(problem, data, device),
            x_train=torch.as_tensor(data.x_train, device=device),
            y_train=torch.as_tensor(data.y_train, device=device),
            x_val=torch.as_tensor(data.x_val, device=device),
            y_val=torch.as_tensor(data.y_val, device=device),
        )
