"""Directions of a loss-landscape plane, as flat parameter vectors (core/landscape/params.py).

A *plane* is a centre θ and two directions d1, d2 (the surface over it: core/landscape/surfaces.py).
Directions come from:

- `random_directions`: Gaussian, filter-normalised (`filter_normalize`; Li et al. 2018,
  "Visualizing the Loss Landscape of Neural Nets"): each row of a weight (a neuron's incoming
  weights, a conv filter) is rescaled to the norm of the same row of the model's weights, so
  α = 1 is "as far as the weights are large", layer by layer, whatever the scale of each layer.
- `pca_directions`: the top-2 principal components of the training trajectories of *all* runs,
  one basis shared by the whole race (so the paths can be compared on one picture).
- `two_point_direction`: from one weight vector to another (init → final, run A → run B).

The top-2 Hessian eigenvectors (`hessian_directions`) are curvature: core/landscape/curvature.py.
`default_generator` and `fix_sign` (one picture for the same call) are shared with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from core.landscape.engines import ParamLayout
from core.landscape.params import device_dtype, flatten

_ROW_EPS = 1e-10  # as in Li et al.'s code: a zero direction row stays zero, never NaN


def default_generator(generator: torch.Generator | None) -> torch.Generator:
    # A fixed seed rather than torch's global RNG: the same call gives the same picture, and
    # drawing directions never disturbs the training's random stream.
    return generator if generator is not None else torch.Generator().manual_seed(0)


def filter_normalize(direction: Tensor, weights: Tensor, layout: ParamLayout,
                     include_bias_bn: bool = False) -> Tensor:
    """Li et al.'s filter normalisation of a (P,) direction against the (P,) weights.

    Each row of a weight slot (dimension 0: a neuron's incoming weights, a conv filter) is scaled
    to the norm of that row of the weights. Biases and norm parameters are zeroed, or, with
    ``include_bias_bn``, each such vector is scaled as a whole to the norm of the weights' vector
    (Li et al.'s code copies the weights there instead; a random direction keeps d1 and d2
    independent).
    """
    out = direction.clone()
    for s in layout.slots:
        d = out[s.offset:s.offset + s.numel]
        w = weights[s.offset:s.offset + s.numel]
        if s.kind == "weight":
            rows = s.shape[0]
            d_rows, w_rows = d.view(rows, -1), w.view(rows, -1)
            scale = w_rows.norm(dim=1, keepdim=True) / (d_rows.norm(dim=1, keepdim=True) + _ROW_EPS)
            d_rows.mul_(scale)
        elif include_bias_bn:
            d.mul_(w.norm() / (d.norm() + _ROW_EPS))
        else:
            d.zero_()
    return out


def random_directions(
    model: nn.Module,
    generator: torch.Generator | None = None,
    include_bias_bn: bool = False,
) -> tuple[Tensor, Tensor]:
    """Two filter-normalised Gaussian directions (P,) around the model's current weights.

    Not orthogonalised: in many dimensions two Gaussian directions are nearly orthogonal already,
    and `project_trajectory` solves least squares for the rest.
    """
    device, dtype = device_dtype(model)
    generator = default_generator(generator)
    layout = ParamLayout.of(model)
    weights = flatten(model)
    directions = []
    for _ in range(2):
        raw = torch.randn(layout.size, generator=generator, dtype=torch.float32)
        raw = raw.to(device=device, dtype=dtype)
        directions.append(filter_normalize(raw, weights, layout, include_bias_bn))
    return directions[0], directions[1]


def two_point_direction(a: Tensor, b: Tensor) -> Tensor:
    """The direction from weights ``a`` to weights ``b``: α = 0 is ``a``, α = 1 is ``b``."""
    if a.shape != b.shape:
        raise ValueError(f"the two points differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (b - a).detach().clone()


def fix_sign(vector: Tensor) -> Tensor:
    """Eigen/singular vectors are defined up to sign; make the largest entry positive so the
    same data always gives the same picture."""
    index = int(vector.abs().argmax())
    return -vector if vector[index] < 0 else vector


def pca_directions(
    trajectories: Sequence[Tensor],
    center: Tensor | None = None,
) -> tuple[Tensor, Tensor, np.ndarray]:
    """One PCA basis for the trajectories of all runs: (d1, d2, explained_variance_ratio).

    ``trajectories`` are (T_i, P) stacks of weight vectors, one per run. As in Li et al. 2018, the
    rows are taken relative to an origin — ``center``, by default run 0's final point (the
    centre `landscape_cli` draws the surface around) — then, like their sklearn PCA, the rows of
    all runs together are mean-centred and the top-2 right singular vectors are the directions.
    d1 and d2 are orthonormal (unit length, so α, β are distances in weight space);
    ``explained_variance_ratio`` is each one's share of the total variance of those rows.
    """
    if not trajectories:
        raise ValueError("pca_directions needs at least one trajectory")
    rows = torch.cat([t.detach().reshape(len(t), -1) for t in trajectories]).double()
    if len(rows) < 2:
        raise ValueError("pca_directions needs at least two weight vectors")
    origin = trajectories[0][-1] if center is None else center
    rows = rows - origin.detach().double()
    rows = rows - rows.mean(dim=0, keepdim=True)
    # full_matrices=False: cost O(min(T, P)² · max(T, P)); trajectories are kept to ~100 points
    # per run, so this is small even for 10⁵ parameters.
    _, singular, vh = torch.linalg.svd(rows, full_matrices=False)
    total = float((singular ** 2).sum())
    ratios = np.zeros(2)
    if total > 0:
        ratios[: min(2, len(singular))] = (singular[:2] ** 2).cpu().numpy() / total
    if vh.shape[0] < 2:  # a single snapshot left after centring: complete the basis
        extra = torch.zeros_like(vh[0])
        extra[int(vh[0].abs().argmin())] = 1.0
        extra = extra - (extra @ vh[0]) * vh[0]
        vh = torch.stack([vh[0], extra / extra.norm()])
    dtype = trajectories[0].dtype
    d1, d2 = (fix_sign(v).to(dtype) for v in (vh[0], vh[1]))
    return d1, d2, ratios
