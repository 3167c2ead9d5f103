"""core.landscape.live against the CLI's own snapshots and plain PyTorch losses / Hessians."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.engine.network_race import NetworkRace
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.landscape import directions, engines, params
from core.landscape import surfaces as landscape
from core.landscape.live import (
    FOLLOW_GRID,
    SurfaceRequest,
    TrainingFollower,
    WeightTap,
    coarse_strides,
    race_surface,
    sharpness_updates,
    slice_updates,
    surface_updates,
)
from core.landscape.race_surface import _trained_snapshots, write_surface_npz

MLP = {"layers": [{"linear": 8}, {"act": "tanh"}, {"linear": 2}]}


def _lab(steps=20, model=MLP, dataset=None, loss="cross_entropy"):
    dataset = dataset or {"name": "moons", "n": 96, "noise": 0.2, "val_fraction": 0.25}
    problem = NetworkProblem(dataset=dataset, model=model, loss=loss, batch_size=32,
                             eval_every=10, device="cpu")
    runs = (RunSpec("SGD", "sgd", {"lr": 0.2, "momentum": 0.9}),
            RunSpec("Adam", "adam", {"lr": 0.05}))
    return validate_lab(Lab(name="t", seed=3, steps=steps, problem=problem, runs=runs))


@pytest.fixture(scope="module")
def tapped():
    lab = _lab()
    tap = WeightTap(every=4)
    race = NetworkRace(lab)
    records = list(tap.records(race))
    return lab, tap, race, records


def _loss(source, weights) -> float:
    model = source.model_at(weights)
    with torch.no_grad():
        return float(source.criterion(model(source.x), source.y))


def test_tap_keeps_the_same_snapshots_as_the_surface_command(tapped):
    lab, tap, race, records = tapped
    assert len(records) == lab.steps + 1
    reference = _trained_snapshots(NetworkRace(lab), 4, None, None)
    source = tap.snapshot()
    for (steps, stack), kept, path in zip(reference, source.steps, source.paths):
        np.testing.assert_array_equal(kept, steps)
        torch.testing.assert_close(path, stack, rtol=0, atol=0)
    for i, model in enumerate(race.models):
        torch.testing.assert_close(source.current(i), params.flatten(model), rtol=0, atol=0)
    # The learning rate each snapshot was taken under (2/lr is the edge of stability).
    assert np.allclose(source.lrs[0][1:], 0.2) and np.allclose(source.lrs[1][1:], 0.05)


def test_snapshot_mid_race_holds_the_current_weights_and_step():
    lab = _lab(steps=12)
    tap = WeightTap(every=5)
    race = NetworkRace(lab)
    records = tap.records(race)
    for _ in range(8):  # records of steps 0..7: the models now hold θ_8
        next(records)
    source = tap.snapshot()
    assert list(source.steps[0]) == [0, 5, 8]
    torch.testing.assert_close(source.current(1), params.flatten(race.models[1]))
    assert source.step == 7
    records.close()


def test_a_reader_on_another_thread_is_let_in_while_the_race_runs():
    lab = _lab(steps=400)
    tap = WeightTap()
    stop = threading.Event()
    seen = []

    def train():
        for record in tap.records(NetworkRace(lab), stop):
            seen.append(record.step)

    thread = threading.Thread(target=train)
    thread.start()
    try:
        while not seen:
            threading.Event().wait(0.005)
        source = tap.snapshot()
        assert source is not None and 0 <= source.step < lab.steps
        # The copy is consistent: each run's last row is the weights of the step it names.
        assert source.steps[0][-1] == source.step + 1
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_coarse_then_full_grid_equal_to_the_batched_surface(tapped):
    _, tap, _, _ = tapped
    source = tap.snapshot()
    request = SurfaceRequest("random", grid=25, span=0.8, run_a=1)
    updates = list(surface_updates(source, request))
    assert coarse_strides(25) == (2, 1) and coarse_strides(101) == (8, 4, 2, 1)
    first, last = updates[0], updates[-1]
    assert first.level == 0 and first.loss.shape == (25, 25) and not first.done
    assert first.progress < 0.5
    # The coarse grid repeats values (nearest computed neighbour); the full one does not.
    assert len(np.unique(first.loss)) <= 13 * 13 < len(np.unique(last.loss))
    assert last.done and last.progress == 1.0
    model = source.model
    d1, d2 = directions.random_directions(source.model_at(source.current(1)),
                                         torch.Generator().manual_seed(source.seed))
    expected = landscape.evaluate_surface(model, source.current(1), d1, d2, last.alphas,
                                          last.betas, source.x, source.y, source.criterion)
    np.testing.assert_allclose(last.loss, expected, rtol=1e-5, atol=1e-6)
    # The centre is the run's own weights: plain PyTorch loss there.
    assert last.center_loss == pytest.approx(_loss(source, source.current(1)), rel=1e-5)
    for path, steps, stack in zip(last.paths, source.steps, source.paths):
        assert len(path["alpha"]) == len(steps) == len(path["true_loss"])
        truth = [_loss(source, w) for w in stack]
        np.testing.assert_allclose(path["true_loss"], truth, rtol=1e-5)


def test_pca_plane_reports_explained_variance_and_fits_every_path(tapped):
    source = tapped[1].snapshot()
    last = list(surface_updates(source, SurfaceRequest("pca", grid=9)))[-1]
    ratio = last.extra["explained_variance"]
    assert ratio.shape == (2,) and 0 < ratio[1] <= ratio[0] <= 1
    reach = max(np.abs(np.concatenate([p["alpha"], p["beta"]])).max() for p in last.paths)
    assert last.span == pytest.approx(1.25 * reach)


def test_two_point_plane_holds_both_points_at_alpha_plus_minus_one(tapped):
    source = tapped[1].snapshot()
    last = list(surface_updates(source, SurfaceRequest("runs", grid=5, run_a=0, run_b=1)))[-1]
    assert last.span == 1.5
    end_a = (last.paths[0]["alpha"][-1], last.paths[0]["beta"][-1], last.paths[0]["off_plane"][-1])
    end_b = (last.paths[1]["alpha"][-1], last.paths[1]["beta"][-1], last.paths[1]["off_plane"][-1])
    np.testing.assert_allclose(end_a, (-1, 0, 0), atol=1e-4)
    np.testing.assert_allclose(end_b, (1, 0, 0), atol=1e-4)
    # On the plane, the true loss and the surface loss are the same number.
    assert last.paths[1]["true_loss"][-1] == pytest.approx(last.paths[1]["surface_loss"][-1],
                                                           rel=1e-4)


def test_cancel_stops_between_chunks_without_a_done_update(tapped):
    source = tapped[1].snapshot()
    stop = threading.Event()
    updates = []
    for update in surface_updates(source, SurfaceRequest("random", grid=41), stop):
        updates.append(update)
        stop.set()
    assert len(updates) == 1 and not updates[0].done


def test_bad_requests_name_the_field(tapped):
    source = tapped[1].snapshot()
    with pytest.raises(LabError, match="grid"):
        next(surface_updates(source, SurfaceRequest(grid=102)))
    with pytest.raises(LabError, match="span"):
        next(surface_updates(source, SurfaceRequest(span=-1.0)))
    with pytest.raises(LabError, match="run_b"):
        next(surface_updates(source, SurfaceRequest("runs", run_a=1, run_b=1)))


def test_export_writes_the_keys_of_the_surface_command(tapped, tmp_path):
    source = tapped[1].snapshot()
    last = list(surface_updates(source, SurfaceRequest("random", grid=7)))[-1]
    path = tmp_path / "s.npz"
    write_surface_npz(path, race_surface(last, every=4))
    data = np.load(path)
    for key in ("alphas", "betas", "loss", "directions", "span", "steps", "every", "center_run",
                "center_loss", "labels", "sharpness", "run0_step", "run1_alpha", "run1_beta",
                "run0_off_plane", "run1_true_loss", "run1_surface_loss"):
        assert key in data.files, key
    np.testing.assert_array_equal(data["loss"], last.loss)
    assert list(data["labels"]) == ["SGD", "Adam"]


def test_interpolation_slice_runs_from_the_initial_to_the_current_weights(tapped):
    source = tapped[1].snapshot()
    curves = list(slice_updates(source, "init_final", count=5))
    assert [c.run for c in curves] == [0, 1]
    for curve in curves:
        np.testing.assert_allclose(curve.ts, [-0.5, 0, 0.5, 1, 1.5])
        assert curve.losses[1] == pytest.approx(_loss(source, source.initial(curve.run)), rel=1e-5)
        assert curve.losses[3] == pytest.approx(_loss(source, source.current(curve.run)), rel=1e-5)


def test_sharpness_along_the_path_matches_torch_hessian():
    lab = _lab(steps=6, model={"layers": [{"linear": 3}, {"act": "tanh"}, {"linear": 2}]})
    tap = WeightTap(every=3)
    list(tap.records(NetworkRace(lab)))
    source = tap.snapshot()
    updates = list(sharpness_updates(source, points=3))
    last_of_run = {u.run: u for u in updates}
    for run, update in last_of_run.items():
        assert list(update.steps) == [0, 3, 6]
        for step_index, value in zip(range(3), update.sharpness):
            weights = source.paths[run][step_index].double()
            model = source.model_at(source.paths[run][step_index])
            params = dict(model.named_parameters())
            layout = engines.ParamLayout.of(model)

            def loss_of(vector, layout=layout, model=model):
                pieces = {k: v.float() for k, v in layout.split(vector).items()}
                out = torch.func.functional_call(model, pieces, (source.x,))
                return source.criterion(out, source.y)

            hessian = torch.autograd.functional.hessian(loss_of, weights)
            top = float(torch.linalg.eigvalsh(hessian.double())[-1])
            assert value == pytest.approx(top, rel=2e-3, abs=1e-5), (params.keys(), run)


def test_training_follower_reuses_one_engine_and_centres_each_surface_on_the_weights(tapped):
    lab, tap, race, _ = tapped
    follower = TrainingFollower(run=1, span=0.5)
    mid_race = WeightTap(every=4)
    records = mid_race.records(NetworkRace(lab))
    for _ in range(6):  # part of the race: θ after step 5
        next(records)
    pictures = []
    for source in (mid_race.snapshot(), tap.snapshot()):  # then the finished race
        (update,) = follower.updates(source)
        pictures.append(update)
        assert update.followed and update.done and update.loss.shape == (FOLLOW_GRID,) * 2
        # The centre of the grid is run 1's current weights: its plain PyTorch loss.
        assert update.center_loss == pytest.approx(_loss(source, source.current(1)), abs=1e-5)
        path = update.paths[1]
        assert abs(path["alpha"][-1]) < 1e-5 and abs(path["beta"][-1]) < 1e-5
        assert path["off_plane"][-1] < 1e-4
        assert update.race_step == source.step
    records.close()
    assert follower.computed == 2
    assert pictures[0].race_step < pictures[1].race_step
    assert not np.allclose(pictures[0].loss, pictures[1].loss)  # it moved with the training
    # A grid point off the centre equals plain PyTorch at centre + α·d1 + β·d2 of that plane.
    inner = follower._follower.last
    j, i = 3, 15
    weights = inner.center + inner.alphas[i] * inner.d1 + inner.betas[j] * inner.d2
    assert pictures[1].loss[j, i] == pytest.approx(_loss(tap.snapshot(), weights), rel=1e-4)
    with pytest.raises(LabError, match="run_a"):
        list(TrainingFollower(run=5).updates(tap.snapshot()))
