"""Loss landscapes: directions, batched surfaces against the point-by-point loop, projections,
curvature against closed forms, and the ``surface`` command."""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cli.surface import register
from core.errors import LabError
from core.landscape import curvature, directions, engines, native, params
from core.landscape import surfaces as landscape

TOL = 1e-5


def _mlp(seed: int = 0, widths=(2, 16, 16, 2), act=nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def _moons_like(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = ((x[:, 0] * x[:, 1] + 0.3 * torch.randn(n, generator=g)) > 0).long()
    return x, y


def _loss_at(model: nn.Module, vector: torch.Tensor, x, y, criterion) -> float:
    saved, training = params.flatten(model), model.training
    params.unflatten_into(model, vector)
    try:
        with torch.no_grad():
            model.eval()
            return float(criterion(model(x), y))
    finally:
        params.unflatten_into(model, saved)
        model.train(training)


# --------------------------------------------------------------------------------------------
# Flat vectors and directions


def test_layout_names_kinds_and_round_trip():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 2))
    layout = engines.ParamLayout.of(model)
    kinds = {s.name: s.kind for s in layout.slots}
    assert kinds == {"0.weight": "weight", "0.bias": "bias", "1.weight": "norm",
                     "1.bias": "norm", "4.weight": "weight", "4.bias": "bias"}
    assert layout.size == sum(p.numel() for p in model.parameters())
    vector = params.flatten(model)
    assert torch.equal(vector, nn.utils.parameters_to_vector(model.parameters()))
    params.unflatten_into(model, vector * 2)
    assert torch.allclose(params.flatten(model), vector * 2)
    for name, view in layout.split(vector).items():
        assert torch.equal(view, dict(model.named_parameters())[name].detach() / 2)


def test_filter_normalization_gives_each_row_its_weight_rows_norm_and_zero_biases():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 8), nn.Tanh(), nn.Linear(8, 3))
    weights = dict(model.named_parameters())
    for include in (False, True):
        d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(3),
                                             include_bias_bn=include)
        assert not torch.allclose(d1, d2)
        layout = engines.ParamLayout.of(model)
        for direction in (d1, d2):
            for slot in layout.slots:
                d = layout.split(direction)[slot.name]
                w = weights[slot.name].detach()
                if slot.kind == "weight":
                    rows_d = d.reshape(slot.shape[0], -1).norm(dim=1)
                    rows_w = w.reshape(slot.shape[0], -1).norm(dim=1)
                    torch.testing.assert_close(rows_d, rows_w, rtol=1e-5, atol=1e-7)
                elif include:
                    torch.testing.assert_close(d.norm(), w.norm(), rtol=1e-5, atol=1e-7)
                else:
                    assert torch.count_nonzero(d) == 0, slot.name


def test_pca_recovers_a_known_plane_and_its_explained_variance():
    g = torch.Generator().manual_seed(0)
    size = 40
    basis, _ = torch.linalg.qr(torch.randn(size, 2, generator=g, dtype=torch.float64))
    u, v = basis[:, 0], basis[:, 1]
    origin = torch.randn(size, generator=g, dtype=torch.float64)
    trajectories, all_coords = [], []
    for run in range(3):
        t = torch.linspace(0, 1, 25, dtype=torch.float64)
        a = 4.0 * (1 - t) + run  # a large spread along u ...
        b = 0.7 * torch.sin(3 * t + run)  # ... a small one along v
        all_coords.append(torch.stack([a, b], 1))
        trajectories.append(origin + a[:, None] * u + b[:, None] * v)
    center = trajectories[0][-1]
    d1, d2, ratio = directions.pca_directions(trajectories, center=center)
    # Orthonormal, and spanning the same plane as u, v.
    gram = torch.stack([d1, d2]) @ torch.stack([d1, d2]).T
    torch.testing.assert_close(gram, torch.eye(2, dtype=torch.float64), atol=1e-10, rtol=0)
    overlap = torch.linalg.svdvals(torch.stack([d1, d2]) @ basis)
    torch.testing.assert_close(overlap, torch.ones(2, dtype=torch.float64), atol=1e-8, rtol=0)
    assert abs(float(d1 @ u)) > 0.99  # the big spread comes first
    # Explained variance: the variance shares of the in-plane coordinates, summing to 1.
    coords = torch.cat(all_coords).numpy()
    eig = np.sort(np.linalg.eigvalsh(np.cov(coords.T)))[::-1]
    np.testing.assert_allclose(ratio, eig / eig.sum(), atol=1e-10)
    # The default origin is run 0's final point.
    d1b, d2b, ratio_b = directions.pca_directions(trajectories)
    torch.testing.assert_close(d1b, d1)
    np.testing.assert_allclose(ratio_b, ratio)


def test_a_straight_line_trajectory_projects_onto_a_straight_line():
    g = torch.Generator().manual_seed(1)
    start, end = torch.randn(30, generator=g), torch.randn(30, generator=g)
    ts = torch.linspace(0, 1, 11)[:, None]
    line = start + ts * (end - start)
    other = end + ts * torch.randn(30, generator=g)  # a second run, off in its own direction
    d1, d2, _ = directions.pca_directions([line, other], center=end)
    alpha, beta, _ = landscape.project_trajectory(line, end, d1, d2)
    points = np.column_stack([alpha, beta])
    steps = np.diff(points, axis=0)
    cross = steps[:-1, 0] * steps[1:, 1] - steps[:-1, 1] * steps[1:, 0]
    assert np.abs(cross).max() < 1e-5 * np.abs(steps).max() ** 2 * 100
    assert np.all(np.linalg.norm(steps, axis=1) > 0)


def test_two_point_direction_goes_from_a_to_b():
    a, b = torch.zeros(5), torch.arange(5.0)
    d = directions.two_point_direction(a, b)
    torch.testing.assert_close(a + d, b)


# --------------------------------------------------------------------------------------------
# Curvature


def _regression(n=64, scales=(3.0, 1.5, 0.5), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(scales), generator=g) * torch.tensor(scales)
    y = x @ torch.tensor([1.0, -2.0, 0.5])[: len(scales)] + 0.3 + 0.1 * torch.randn(n, generator=g)
    return x, y[:, None]


def _linear_regression_hessian(x: torch.Tensor) -> np.ndarray:
    """Exact Hessian of mean((x·w + b − y)²) in (w, b): 2·X̃ᵀX̃ / n with X̃ = [x, 1]."""
    augmented = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    return (2 * augmented.T @ augmented / len(x)).numpy()


def test_sharpness_and_hessian_directions_match_a_quadratics_closed_form():
    x, y = _regression()
    model = nn.Linear(3, 1)
    loss_fn = curvature.model_loss(x, y, F.mse_loss)
    eigenvalues, eigenvectors = np.linalg.eigh(_linear_regression_hessian(x))
    top, second = eigenvalues[-1], eigenvalues[-2]

    value = curvature.sharpness(model, loss_fn, generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(top, rel=1e-4)

    d1, d2, found = curvature.hessian_directions(model, loss_fn,
                                                 generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(found, [top, second], rtol=1e-3)
    assert abs(float(d1.double() @ torch.from_numpy(eigenvectors[:, -1]))) > 0.999
    assert abs(float(d2.double() @ torch.from_numpy(eigenvectors[:, -2]))) > 0.999
    assert abs(float(d1 @ d2)) < 1e-4


def test_sharpness_is_the_most_positive_eigenvalue_even_beside_a_larger_negative_one():
    # A saddle: eigenvalues −5, 2, 1. Power iteration alone would report −5.
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(2)))
    matrix = q @ torch.diag(torch.tensor([-5.0, 2.0, 1.0])) @ q.T
    model = nn.Linear(3, 1, bias=False)

    def loss_fn(m: nn.Module) -> torch.Tensor:
        w = m.weight.reshape(-1)
        return 0.5 * w @ matrix @ w

    assert curvature.sharpness(model, loss_fn) == pytest.approx(2.0, rel=1e-3)


# --------------------------------------------------------------------------------------------
# Surfaces


def _bn_model() -> nn.Sequential:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(8, 3))
    model.train()
    with torch.no_grad():  # running statistics that are not the defaults
        model(torch.randn(64, 2) * 2 + 1)
    return model


@pytest.mark.parametrize("case", ["mlp-binary", "mlp-tanh-3class", "mlp-regression", "batchnorm"])
def test_batched_surface_equals_the_point_by_point_loop(case):
    x, y = _moons_like(80)
    criterion = F.cross_entropy
    if case == "mlp-binary":
        model = _mlp()
    elif case == "mlp-tanh-3class":
        model, y = _mlp(1, (2, 12, 3), nn.Tanh), (y + (x[:, 0] > 1).long())
    elif case == "mlp-regression":
        model, criterion = _mlp(2, (2, 10, 10, 1), nn.GELU), F.mse_loss
        y = (x[:, :1] ** 2 - x[:, 1:]).float()
    else:
        model, y = _bn_model(), (y + (x[:, 0] > 1).long())
    center, training = params.flatten(model), model.training
    d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(5))
    alphas, betas = np.linspace(-1, 1, 7), np.linspace(-0.8, 1.2, 5)
    reference = landscape.surface_point_by_point(model, center, d1, d2, alphas, betas, x, y,
                                                 criterion)
    for chunk in (None, 3):
        batched = landscape.evaluate_surface(model, center, d1, d2, alphas, betas, x, y,
                                             criterion, chunk=chunk)
        assert batched.shape == (5, 7)
        np.testing.assert_allclose(batched, reference, rtol=TOL, atol=TOL)
    # Row j is β_j, column i is α_i.
    j, i = 4, 1
    expected = _loss_at(model, center + alphas[i] * d1 + betas[j] * d2, x, y, criterion)
    assert batched[j, i] == pytest.approx(expected, rel=TOL, abs=TOL)
    # The model is left as it was: same weights, same mode.
    assert torch.equal(params.flatten(model), center)
    assert model.training == training


def _no_bias_mlp() -> nn.Sequential:
    torch.manual_seed(6)
    return nn.Sequential(nn.Linear(2, 12, bias=False), nn.ReLU(), nn.Linear(12, 12, bias=False),
                         nn.Tanh(), nn.Linear(12, 2, bias=False))


@pytest.mark.parametrize("case", ["relu-tiles", "tanh-tiles", "no-bias", "one-class",
                                  "evaluate-weights"])
def test_the_fast_mlp_path_equals_the_point_by_point_loop(case, monkeypatch):
    """The torch MLP engine (tiles of samples, class-sorted margin, fused bias+ReLU, K=3 first
    layer) against the plain loop, with more samples than one tile holds and an odd count. The
    native kernel is switched off: it is tested against the same loop in test_landscape_fused."""
    monkeypatch.setenv("DESCENT_LAB_NATIVE", "0")
    x, y = _moons_like(601, seed=3)
    if case == "relu-tiles":
        model = _mlp(7)
    elif case == "tanh-tiles":
        model = _mlp(8, (2, 16, 16, 2), nn.Tanh)
    elif case == "no-bias":
        model = _no_bias_mlp()
    else:
        model = _mlp(9)
    if case == "one-class":  # every tile of one class: the margin's sign is never flipped
        y = torch.ones_like(y)
    engine = landscape._engine(model, x, y, F.cross_entropy)
    assert type(engine) is engines.MlpEngine
    assert len(engine.tiles) >= 3 and max(b - a for a, b in engine.tiles) <= engines.SAMPLE_TILE
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(2),
                                         include_bias_bn=case != "no-bias")
    alphas, betas = np.linspace(-1.5, 1.5, 9), np.linspace(-1, 1, 6)
    reference = landscape.surface_point_by_point(model, center, d1, d2, alphas, betas, x, y,
                                                 F.cross_entropy)
    if case == "evaluate-weights":
        grid = landscape._grid_coords(alphas, betas)
        vectors = center + torch.as_tensor(grid[:, :1], dtype=torch.float32) * d1 \
            + torch.as_tensor(grid[:, 1:], dtype=torch.float32) * d2
        got = landscape.evaluate_weights(model, vectors, x, y, F.cross_entropy, chunk=7)
        np.testing.assert_allclose(got.reshape(6, 9), reference, rtol=TOL, atol=TOL)
        return
    for chunk in (None, 4):
        batched = landscape.evaluate_surface(model, center, d1, d2, alphas, betas, x, y,
                                             F.cross_entropy, chunk=chunk)
        np.testing.assert_allclose(batched, reference, rtol=TOL, atol=TOL)


def _tiny_race(steps: int = 12, sharpness_every: int = 0, runs: int = 2):
    from core.engine.network_race import NetworkRace
    from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab

    problem = NetworkProblem(dataset={"name": "moons", "n": 200, "noise": 0.2},
                             model={"layers": [{"linear": 8}, {"act": "tanh"}, {"linear": 2}]},
                             batch_size=None, eval_every=5, sharpness_every=sharpness_every)
    specs = [RunSpec("SGD", "sgd", {"lr": 0.3}), RunSpec("Adam", "adam", {"lr": 0.02})][:runs]
    lab = validate_lab(Lab(name="t", seed=0, steps=steps, problem=problem, runs=tuple(specs)))
    return NetworkRace(lab)


def test_the_follower_recomputes_every_n_steps_around_the_current_weights():
    race = _tiny_race(steps=12)
    follower = landscape.SurfaceFollower(race, every=4, grid=5, span=0.5, run_index=1)
    model = race.models[1]
    updated, pictures = [], []
    for record, surface in follower.follow(race.records()):
        if surface is None:
            continue
        updated.append(record.step)
        pictures.append(surface.losses)
        assert surface.losses.shape == (5, 5) and np.all(np.isfinite(surface.losses))
        assert torch.equal(surface.center, params.flatten(model))
        # The middle of the grid (α = β = 0) is the model's training loss right now.
        training = model.training
        model.eval()
        with torch.no_grad():
            loss = float(race.criterion(model(race.x_train), race.y_train))
        model.train(training)
        assert surface.losses[2, 2] == pytest.approx(loss, rel=TOL, abs=TOL)
    assert updated == [0, 4, 8, 12]
    assert follower.last.step == 12
    # The weights moved between updates, so each picture is a new one.
    assert all(not np.allclose(a, b) for a, b in zip(pictures, pictures[1:]))


def test_the_follower_refuses_bad_arguments():
    race = _tiny_race(steps=2)
    for kwargs in ({"every": 0}, {"grid": 1}, {"run_index": 5}, {"directions": "pca"}):
        with pytest.raises(ValueError):
            landscape.SurfaceFollower(race, **kwargs)


def test_the_surface_at_the_origin_is_the_models_loss():
    x, y = _moons_like()
    model = _mlp()
    d1, d2 = directions.random_directions(model)
    surface = landscape.evaluate_surface(model, params.flatten(model), d1, d2, [0.0], [0.0],
                                         x, y, F.cross_entropy)
    with torch.no_grad():
        assert surface[0, 0] == pytest.approx(float(F.cross_entropy(model(x), y)), abs=TOL)


def test_evaluate_weights_gives_each_vectors_loss():
    x, y = _moons_like()
    model = _mlp()
    center = params.flatten(model)
    vectors = torch.stack([center, center * 0.5, center + 0.1])
    got = landscape.evaluate_weights(model, vectors, x, y, F.cross_entropy, chunk=2)
    expected = [_loss_at(model, v, x, y, F.cross_entropy) for v in vectors]
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)


def test_coarse_to_fine_shows_a_full_picture_at_once_and_ends_at_the_full_evaluation():
    x, y = _moons_like()
    model = _mlp()
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model)
    levels = list(landscape.surface_progressive(model, center, d1, d2, x, y, F.cross_entropy,
                                                grid=11, span=0.7, chunk=8))
    assert [level for level, *_ in levels] == [0, 1, 2]
    for _, alphas, betas, surface in levels:
        assert surface.shape == (11, 11) and np.all(np.isfinite(surface))
        np.testing.assert_allclose(alphas, np.linspace(-0.7, 0.7, 11))
    full = landscape.evaluate_surface(model, center, d1, d2, levels[-1][1], levels[-1][2], x, y,
                                      F.cross_entropy)
    np.testing.assert_allclose(levels[-1][3], full, rtol=1e-6, atol=1e-6)
    # The coarse level is exact where it computed (every 4th point and the last) and shows the
    # nearest computed value elsewhere.
    coarse = levels[0][3]
    computed = [0, 4, 8, 10]
    np.testing.assert_allclose(coarse[np.ix_(computed, computed)], full[np.ix_(computed, computed)],
                               rtol=1e-6, atol=1e-6)
    assert coarse[1, 1] == coarse[0, 0] and coarse[3, 10] == coarse[4, 10]


def test_coarse_to_fine_stops_between_chunks():
    x, y = _moons_like()
    model = _mlp()
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model)
    stop = threading.Event()
    levels = []
    for item in landscape.surface_progressive(model, center, d1, d2, x, y, F.cross_entropy,
                                              grid=21, chunk=4, stop=stop):
        levels.append(item)
        stop.set()
    assert len(levels) == 1


# --------------------------------------------------------------------------------------------
# 1-D slices and trajectories


def test_interpolation_endpoints_equal_the_losses_at_a_and_b():
    x, y = _moons_like()
    model_a, model_b = _mlp(0), _mlp(7)
    a, b = params.flatten(model_a), params.flatten(model_b)
    ts, losses = landscape.interpolate_1d(model_a, a, b, None, x, y, F.cross_entropy)
    assert ts[0] == pytest.approx(-0.5) and ts[-1] == pytest.approx(1.5)
    zero, one = int(np.argmin(np.abs(ts))), int(np.argmin(np.abs(ts - 1)))
    assert ts[zero] == pytest.approx(0.0) and ts[one] == pytest.approx(1.0)
    assert losses[zero] == pytest.approx(_loss_at(model_a, a, x, y, F.cross_entropy), abs=TOL)
    assert losses[one] == pytest.approx(_loss_at(model_a, b, x, y, F.cross_entropy), abs=TOL)


def test_random_slice_passes_through_the_center():
    x, y = _moons_like()
    model = _mlp()
    center = params.flatten(model)
    alphas, losses, direction = landscape.random_slice_1d(model, center, x, y, F.cross_entropy,
                                                          count=11)
    assert alphas[5] == 0 and direction.shape == center.shape
    assert losses[5] == pytest.approx(_loss_at(model, center, x, y, F.cross_entropy), abs=TOL)


def test_projection_recovers_plane_coordinates_and_off_plane_distance():
    g = torch.Generator().manual_seed(0)
    center = torch.randn(20, generator=g)
    d1 = torch.randn(20, generator=g)
    d2 = 0.6 * d1 + torch.randn(20, generator=g)  # deliberately not orthogonal
    alpha = torch.tensor([0.0, 0.5, -1.0, 2.0])
    beta = torch.tensor([0.0, -0.3, 1.0, 0.25])
    points = center + alpha[:, None] * d1 + beta[:, None] * d2
    got_a, got_b, off = landscape.project_trajectory(points, center, d1, d2)
    np.testing.assert_allclose(got_a, alpha.numpy(), atol=1e-5)
    np.testing.assert_allclose(got_b, beta.numpy(), atol=1e-5)
    np.testing.assert_allclose(off, 0.0, atol=1e-5)
    # A step orthogonal to the plane shows up as the off-plane distance, not in α, β.
    basis, _ = torch.linalg.qr(torch.stack([d1, d2, torch.randn(20, generator=g)], 1))
    normal = basis[:, 2] * 3.0
    got_a, got_b, off = landscape.project_trajectory(points + normal, center, d1, d2)
    np.testing.assert_allclose(got_a, alpha.numpy(), atol=1e-5)
    np.testing.assert_allclose(off, 3.0, atol=1e-5)


def test_true_loss_equals_surface_loss_for_points_on_the_plane():
    x, y = _moons_like()
    model = _mlp()
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model)
    on_plane = torch.stack([center + 0.3 * d1 - 0.2 * d2, center - 0.5 * d2])
    true_loss, surface_loss = landscape.true_vs_surface_loss(model, on_plane, center, d1, d2,
                                                             x, y, F.cross_entropy)
    np.testing.assert_allclose(true_loss, surface_loss, rtol=1e-5, atol=1e-5)
    off = on_plane + 0.5 * _mlp(9)[0].weight.new_ones(len(center))
    true_loss, surface_loss = landscape.true_vs_surface_loss(model, off, center, d1, d2,
                                                             x, y, F.cross_entropy)
    assert np.all(np.abs(true_loss - surface_loss) > 1e-4)


# --------------------------------------------------------------------------------------------
# The surface command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="descent-lab")
    register(parser.add_subparsers(dest="command"))
    return parser


def _network_lab(path, steps=6):
    path.write_text(json.dumps({
        "format": "descent-lab/1", "name": "tiny", "seed": 3, "steps": steps,
        "problem": {"kind": "network",
                    "dataset": {"name": "moons", "n": 64, "noise": 0.2, "val_fraction": 0.25},
                    "model": {"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 2}]},
                    "batch_size": 16, "eval_every": 3, "device": "cpu"},
        "runs": [{"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.2}},
                 {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.05}}],
    }))
    return path


@pytest.mark.parametrize("directions", ["random", "pca", "hessian"])
def test_surface_command_writes_the_documented_npz(tmp_path, directions, capsys):
    lab = _network_lab(tmp_path / "tiny.lab.json")
    out = tmp_path / "out"
    args = _parser().parse_args(["surface", str(lab), "--out", str(out), "--grid", "5",
                                 "--directions", directions, "--every", "2"])
    assert args.handler(args) == 0
    assert "surface.npz" in capsys.readouterr().out
    with np.load(out / "surface.npz") as data:
        keys = set(data.files)
        assert {"alphas", "betas", "loss", "directions", "labels", "sharpness", "span",
                "center_run", "center_loss", "steps", "every"} <= keys
        assert data["loss"].shape == (5, 5) and np.all(np.isfinite(data["loss"]))
        assert str(data["directions"]) == directions
        assert data["labels"].tolist() == ["SGD", "Adam"]
        assert data["sharpness"].shape == (2,) and np.all(data["sharpness"] > 0)
        extra = {"pca": "explained_variance", "hessian": "eigenvalues"}.get(directions)
        if extra:
            assert data[extra].shape == (2,)
        # The centre is run 0's final weights: the middle of the grid.
        assert data["loss"][2, 2] == pytest.approx(float(data["center_loss"]), abs=1e-6)
        for i in range(2):
            steps = data[f"run{i}_step"]
            assert steps.tolist() == [0, 2, 4, 6]
            arrays = [data[f"run{i}_{k}"] for k in
                      ("alpha", "beta", "off_plane", "true_loss", "surface_loss")]
            assert all(a.shape == steps.shape for a in arrays)
        # Run 0 ends at the centre: α = β = 0, on the plane, true loss = surface loss.
        assert abs(data["run0_alpha"][-1]) < 1e-6 and abs(data["run0_beta"][-1]) < 1e-6
        assert data["run0_off_plane"][-1] < 1e-5
        assert data["run0_true_loss"][-1] == pytest.approx(data["run0_surface_loss"][-1], abs=1e-5)
        # Both runs start from the same initial weights.
        assert data["run0_true_loss"][0] == pytest.approx(data["run1_true_loss"][0], abs=1e-6)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("how", ["kernel", "no compiler", "switched off"])
def test_the_surface_command_says_when_it_ran_without_the_native_kernel(
        how, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DESCENT_LAB_NATIVE_CACHE", str(tmp_path / "native"))
    if how == "no compiler":
        # About a missing compiler, which the DESCENT_LAB_NATIVE=0 switch would hide.
        monkeypatch.delenv("DESCENT_LAB_NATIVE", raising=False)
        monkeypatch.setattr(native, "compiler", lambda: None)
    elif how == "switched off":
        monkeypatch.setenv("DESCENT_LAB_NATIVE", "0")
    native.forget()
    try:
        if how == "kernel" and native.load("mlp_plane") is None:
            pytest.skip(f"no native kernel here: {native.unavailable_reason('mlp_plane')}")
        lab = _network_lab(tmp_path / "tiny.lab.json")
        args = _parser().parse_args(["surface", str(lab), "--out", str(tmp_path / "out"),
                                     "--grid", "5"])
        assert args.handler(args) == 0
    finally:
        native.forget()
    printed = capsys.readouterr().out
    if how == "kernel":
        assert "without the native kernel" not in printed
    else:
        reason = {"no compiler": "no C compiler",
                  "switched off": "switched off by DESCENT_LAB_NATIVE=0"}[how]
        assert f"by the torch engine, without the native kernel ({reason}" in printed


def test_surface_command_refuses_a_function_lab(tmp_path):
    lab = tmp_path / "banana.lab.json"
    lab.write_text(json.dumps({
        "format": "descent-lab/1", "steps": 10,
        "problem": {"kind": "function", "function": "rosenbrock"},
        "runs": [{"optimizer": "sgd", "params": {"lr": 0.001}}],
    }))
    args = _parser().parse_args(["surface", str(lab), "--out", str(tmp_path / "o")])
    with pytest.raises(LabError, match="a 2-D function's landscape is the function itself"):
        args.handler(args)
    assert not (tmp_path / "o" / "surface.npz").exists()


@pytest.mark.parametrize("grid", [2, 102])
def test_surface_command_refuses_a_bad_grid(tmp_path, grid):
    lab = _network_lab(tmp_path / "tiny.lab.json")
    args = _parser().parse_args(["surface", str(lab), "--out", str(tmp_path / "o"),
                                 "--grid", str(grid)])
    with pytest.raises(LabError) as info:
        args.handler(args)
    assert info.value.field == "--grid" and "[3, 101]" in info.value.message
