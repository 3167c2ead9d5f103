"""The fused native surface kernel (core/landscape/fused.py, core/landscape/mlp_plane.c) against the plain
point-by-point loop and the torch engine it replaces, and its fallbacks: models or losses it does
not compute, no C compiler, the kernel switched off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.landscape import directions, engines, native, params
from core.landscape import fused as landscape_fused
from core.landscape import surfaces as landscape
from tests.core.test_landscape import _mlp

TOL = 1e-5

needs_kernel = pytest.mark.skipif(
    landscape_fused._kernel() is None,
    reason=f"no native kernel here: {landscape_fused.unavailable_reason()}")


def _surfaces(model, x, y, loss_fn, alphas, betas, engine):
    """``engine``'s surface (driven as `_plane_losses` drives any engine, in chunks of 7) and
    the point-by-point reference."""
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(2),
                                         include_bias_bn=True)
    coords = landscape._grid_coords(alphas, betas)
    got = np.concatenate([losses for _, losses in landscape._plane_losses(
        model, center, d1, d2, coords, x, y, loss_fn, chunk=7, engine=engine)])
    reference = landscape.surface_point_by_point(model, center, d1, d2, alphas, betas, x, y,
                                                 loss_fn)
    return got.reshape(len(betas), len(alphas)), reference


def _case(name):
    g = torch.Generator().manual_seed(3)
    n = 301  # not a multiple of the kernel's 64-sample block: the padded tail is exercised
    if name == "relu-two-class":
        model, loss_fn = _mlp(0, (2, 16, 16, 2), nn.ReLU), F.cross_entropy
        x = torch.randn(n, 2, generator=g)
        y = (x[:, 0] * x[:, 1] > 0).long()
    elif name == "tanh-three-class":
        model, loss_fn = _mlp(1, (4, 12, 10, 3), nn.Tanh), F.cross_entropy
        x = torch.randn(n, 4, generator=g)
        y = torch.randint(0, 3, (n,), generator=g)
    elif name == "sigmoid-mse":
        model, loss_fn = _mlp(2, (3, 9, 2), nn.Sigmoid), F.mse_loss
        x = torch.randn(n, 3, generator=g)
        y = torch.randn(n, 2, generator=g)
    elif name == "leaky-wide":  # 5 rows (not a multiple of the kernel's 4), 64 wide, leaky
        torch.manual_seed(4)
        model = nn.Sequential(nn.Linear(2, 5), nn.LeakyReLU(0.2), nn.Linear(5, 64),
                              nn.LeakyReLU(0.1), nn.Dropout(0.5), nn.Linear(64, 2))
        loss_fn = F.cross_entropy
        x = torch.randn(n, 2, generator=g)
        y = (x[:, 0] > 0).long()
    else:  # logistic regression: one linear layer, two classes
        torch.manual_seed(5)
        model, loss_fn = nn.Sequential(nn.Linear(2, 2)), F.cross_entropy
        x = torch.randn(n, 2, generator=g)
        y = (x[:, 0] + x[:, 1] > 0).long()
    return model, x, y, loss_fn


CASES = ["relu-two-class", "tanh-three-class", "sigmoid-mse", "leaky-wide", "one-layer"]


@needs_kernel
@pytest.mark.parametrize("name", CASES)
def test_the_fused_surface_equals_the_point_by_point_loop_and_the_torch_engine(name):
    model, x, y, loss_fn = _case(name)
    alphas, betas = np.linspace(-1.5, 1.5, 7), np.linspace(-1.0, 1.0, 5)
    layout = engines.ParamLayout.of(model)
    with torch.no_grad():
        fused = landscape_fused.fused_mlp_engine(model, x, y, loss_fn, layout)
        torch_engine = engines.MlpEngine.build(model, x, y, loss_fn, layout)
    assert isinstance(fused, landscape_fused.FusedMlpEngine)
    got, reference = _surfaces(model, x, y, loss_fn, alphas, betas, fused)
    np.testing.assert_allclose(got, reference, rtol=TOL, atol=TOL)
    by_torch, _ = _surfaces(model, x, y, loss_fn, alphas, betas, torch_engine)
    np.testing.assert_allclose(got, by_torch, rtol=TOL, atol=TOL)
    # The centre of the plane is the model's own loss.
    model.eval()
    with torch.no_grad():
        own = float(loss_fn(model(x), y))
    assert got[2, 3] == pytest.approx(own, abs=TOL)


@needs_kernel
def test_evaluate_surface_uses_the_fused_engine_for_a_small_mlp():
    model, x, y, loss_fn = _case("relu-two-class")
    assert isinstance(landscape._engine(model, x, y, loss_fn), landscape_fused.FusedMlpEngine)
    conv = nn.Sequential(nn.Unflatten(1, (1, 2)), nn.Conv1d(1, 2, 1), nn.Flatten(),
                         nn.Linear(4, 2))
    assert not isinstance(landscape._engine(conv, x, y, loss_fn),
                          landscape_fused.FusedMlpEngine)


@needs_kernel
def test_far_points_give_inf_and_nan_as_torch_does_not_a_wrong_number():
    """MSE far along a direction overflows float32; a NaN weight gives a NaN loss."""
    model = _mlp(5, (2, 4, 1), nn.ReLU)
    x, y = torch.randn(20, 2) * 1e18, torch.zeros(20, 1)
    layout = engines.ParamLayout.of(model)
    with torch.no_grad():
        engine = landscape_fused.fused_mlp_engine(model, x, y, F.mse_loss, layout)
    got, reference = _surfaces(model, x, y, F.mse_loss, np.array([0.0, 1e3]), np.array([0.0]),
                               engine)
    assert np.array_equal(np.isfinite(got), np.isfinite(reference))
    assert not np.isfinite(got).all()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
        engine = landscape_fused.fused_mlp_engine(model, x[:5] * 1e-18, y[:5], F.mse_loss,
                                                  layout)
    got, _ = _surfaces(model, x[:5] * 1e-18, y[:5], F.mse_loss, np.array([0.0]),
                       np.array([0.0]), engine)
    assert np.isnan(got).all()


def test_models_and_losses_the_kernel_does_not_compute_are_left_to_torch():
    x, y = torch.randn(30, 2), torch.randint(0, 2, (30,))
    layout_of = engines.ParamLayout.of
    cases = [
        (nn.Sequential(nn.Linear(2, 8), nn.GELU(), nn.Linear(8, 2)), F.cross_entropy),
        (nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Tanh(), nn.Linear(8, 2)), F.cross_entropy),
        (nn.Sequential(nn.Linear(2, 80), nn.ReLU(), nn.Linear(80, 2)), F.cross_entropy),
        (nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)), F.cross_entropy),
        (nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)), F.l1_loss),
        (nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)).double(), F.cross_entropy),
    ]
    for model, loss_fn in cases:
        target = torch.randn(30, 2) if loss_fn is F.l1_loss else y
        data = x.double() if next(model.parameters()).dtype == torch.float64 else x
        with torch.no_grad():
            assert landscape_fused.fused_mlp_engine(model, data, target, loss_fn,
                                                    layout_of(model)) is None
    # A label out of range is torch's error to raise, not a silent number of ours.
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        assert landscape_fused.fused_mlp_engine(model, x, y + 5, F.cross_entropy,
                                                layout_of(model)) is None


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """An empty kernel cache and nothing remembered, undone after the test."""
    monkeypatch.setenv("DESCENT_LAB_NATIVE_CACHE", str(tmp_path / "native"))
    native.forget()
    yield tmp_path / "native"
    native.forget()


@pytest.mark.parametrize("how", ["no compiler", "switched off", "build fails"])
def test_without_the_kernel_surfaces_are_the_torch_engines_and_the_reason_is_given(
        how, monkeypatch, fresh_native):
    model, x, y, loss_fn = _case("relu-two-class")
    axis = np.linspace(-1, 1, 5)
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(1))
    reference = landscape.surface_point_by_point(model, center, d1, d2, axis, axis, x, y,
                                                 loss_fn)
    if how == "switched off":
        monkeypatch.setenv("DESCENT_LAB_NATIVE", "0")
    else:
        # The other two are about the build, which a suite run with DESCENT_LAB_NATIVE=0 would
        # never reach (the reason would be the switch): switch it back on for this test.
        monkeypatch.delenv("DESCENT_LAB_NATIVE", raising=False)
    if how == "no compiler":
        monkeypatch.setattr(native, "compiler", lambda: None)
    elif how == "build fails":
        if native.compiler() is None:
            pytest.skip("no C compiler here: a build that fails cannot be tried")
        monkeypatch.setattr(native, "FLAGS", (*native.FLAGS, "--no-such-flag-at-all"))
    engine = landscape._engine(model, x, y, loss_fn)
    assert type(engine) is engines.MlpEngine
    reason = landscape_fused.unavailable_reason()
    assert reason and {"no compiler": "no C compiler", "switched off": "DESCENT_LAB_NATIVE=0",
                       "build fails": "could not build"}[how] in reason
    got = landscape.evaluate_surface(model, center, d1, d2, axis, axis, x, y, loss_fn)
    np.testing.assert_allclose(got, reference, rtol=TOL, atol=TOL)
    assert not any(fresh_native.glob("*.so")) if fresh_native.exists() else True


def test_where_a_c_compiler_is_found_the_kernel_is_built_and_computes_the_surface(
        monkeypatch, fresh_native):
    """The positive control of the ``needs_kernel`` tests: they skip when there is no kernel, so
    a kernel that stopped compiling or loading would turn them all into skips, and the suite
    would pass having checked nothing native. Here a compiler on the machine means the kernel
    must be built (into an empty cache) and `evaluate_surface` must run every point in it."""
    if not native.enabled():
        pytest.skip("native kernels are switched off by DESCENT_LAB_NATIVE=0; the torch engine "
                    "is checked by test_landscape.py's MLP engine test")
    if native.compiler() is None:
        pytest.skip("no C compiler on this machine: surfaces run on the torch engine")
    kernel = landscape_fused._kernel()
    assert kernel is not None, f"a compiler, but no kernel: {landscape_fused.unavailable_reason()}"
    assert landscape_fused.unavailable_reason() is None
    assert len(list(fresh_native.glob("mlp_plane-*"))) == 1  # built now, into the empty cache
    points = []

    def counting_kernel(count, *args):
        points.append(count)
        return kernel(count, *args)

    monkeypatch.setattr(landscape_fused, "_kernel", lambda: counting_kernel)
    model, x, y, loss_fn = _case("relu-two-class")
    axis = np.linspace(-1, 1, 5)
    center = params.flatten(model)
    d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(1))
    engine = landscape._engine(model, x, y, loss_fn)
    assert landscape_fused.describe_engine(engine) == "fused native kernel"
    got = landscape.evaluate_surface(model, center, d1, d2, axis, axis, x, y, loss_fn)
    assert sum(points) == 25  # every grid point of the 5×5 surface went through the C kernel
    reference = landscape.surface_point_by_point(model, center, d1, d2, axis, axis, x, y,
                                                 loss_fn)
    np.testing.assert_allclose(got, reference, rtol=TOL, atol=TOL)


@needs_kernel
def test_the_kernel_is_built_once_into_the_cache_and_reused(fresh_native):
    assert landscape_fused._kernel() is not None
    built = sorted(fresh_native.glob("mlp_plane-*"))
    assert len(built) == 1 and not any(p.name.startswith(".") for p in fresh_native.iterdir())
    stamp = built[0].stat().st_mtime_ns
    native.forget()
    assert landscape_fused._kernel() is not None
    assert sorted(fresh_native.glob("mlp_plane-*")) == built
    assert built[0].stat().st_mtime_ns == stamp  # loaded, not compiled again


@needs_kernel
def test_a_damaged_library_in_the_cache_is_refused_then_built_afresh(fresh_native):
    source = (native.HERE / "mlp_plane.c").read_bytes()
    command = [*native.compiler(), *native.FLAGS, *native.NATIVE_ARCH]
    target = native._library_path("mlp_plane", source, command)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a shared library")  # a disk that filled up, say
    assert native.load("mlp_plane") is None
    assert "mlp_plane" in native.unavailable_reason("mlp_plane")
    assert not target.exists()
    native.forget()
    assert native.load("mlp_plane") is not None and target.exists()
