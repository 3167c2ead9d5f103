"""Network specs: checking (every mistake names its field), building, initialisation, seeding."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from core.errors import LabError
from core.problems.model_spec import ACTIVATIONS, MAX_PARAMS, default_model_for, validate_model
from core.problems.models import build_model, linear_layers

MLP = {
    "layers": [
        {"linear": 16}, {"act": "relu"}, {"dropout": 0.1}, {"batchnorm": True}, {"linear": 2},
    ],
    "init": "default",
}
CNN = {
    "layers": [
        {"conv2d": 8}, {"batchnorm": True}, {"act": "relu"}, {"maxpool": 2},
        {"conv2d": {"out": 4, "kernel": 3, "stride": 2, "padding": 0}}, {"act": "gelu"},
        {"flatten": True}, {"linear": 10},
    ],
}


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _refusal(spec, input_shape=(2,), n_outputs=2) -> LabError:
    with pytest.raises(LabError) as info:
        validate_model(spec, input_shape, n_outputs)
    return info.value


# --------------------------------------------------------------------------------------------
# Valid specs


@pytest.mark.parametrize(
    ("spec", "input_shape", "n_outputs"),
    [
        (MLP, (2,), 2),
        ({"layers": [{"linear": 3}]}, (5,), 3),
        ({"layers": [{"linear": 8}, {"act": "tanh"}, {"linear": 8}, {"act": "sigmoid"},
                     {"linear": 1}]}, (2,), 1),
        (CNN, (1, 8, 8), 10),
        ({"layers": [{"flatten": True}, {"linear": 4}]}, (3, 5, 7), 4),
        (default_model_for((2,), 2), (2,), 2),
        (default_model_for((1, 8, 8), 10), (1, 8, 8), 10),
        (default_model_for((3, 32, 32), 10), (3, 32, 32), 10),
    ],
)
def test_valid_specs_build_with_the_promised_shape_and_parameter_count(
    spec, input_shape, n_outputs
):
    model = validate_model(spec, input_shape, n_outputs)
    net = build_model(model, _gen())
    assert len(net) == len(spec["layers"])  # one module per entry: net[i] is layers[i]
    assert model.n_params == _n_params(net) == sum(layer.n_params for layer in model.layers)
    net.eval()
    out = net(torch.randn(5, *input_shape))
    assert out.shape == (5, n_outputs)
    assert out.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in net.parameters())
    # Each layer's recorded shapes match what torch actually computes.
    x = torch.randn(2, *input_shape)
    for layer, module in zip(model.layers, net):
        assert tuple(x.shape[1:]) == layer.in_shape
        x = module(x)
        assert tuple(x.shape[1:]) == layer.out_shape


def test_layer_info_describes_each_layer():
    model = validate_model(MLP, (2,), 2)
    kinds = [layer.kind for layer in model.layers]
    assert kinds == ["linear", "act", "dropout", "batchnorm", "linear"]
    assert [layer.describe for layer in model.layers] == [
        "Linear 2 → 16", "ReLU", "Dropout p=0.1", "BatchNorm1d 16", "Linear 16 → 2",
    ]
    assert [layer.n_params for layer in model.layers] == [48, 0, 0, 32, 34]
    assert model.input_shape == (2,) and model.n_outputs == 2
    cnn = validate_model(CNN, (1, 8, 8), 10)
    assert cnn.layers[0].describe == "Conv2d 1→8, 3×3"
    assert cnn.layers[1].describe == "BatchNorm2d 8"
    assert cnn.layers[4].describe == "Conv2d 8→4, 3×3, stride 2, padding 0"
    assert cnn.layers[4].out_shape == (4, 1, 1)


def test_batchnorm_follows_the_incoming_shape():
    flat = build_model(validate_model(MLP, (2,), 2))
    image = build_model(validate_model(CNN, (1, 8, 8), 10))
    assert isinstance(flat[3], nn.BatchNorm1d) and flat[3].num_features == 16
    assert isinstance(image[1], nn.BatchNorm2d) and image[1].num_features == 8


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_maps_to_its_torch_module(name):
    expected = {
        "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
        "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity,
    }[name]
    model = validate_model({"layers": [{"linear": 4}, {"act": name}, {"linear": 2}]}, (2,), 2)
    assert type(build_model(model)[1]) is expected
    assert model.layers[1].describe == expected.__name__


def test_to_dict_gives_back_the_cleaned_lab_file_form():
    spec = {
        "layers": [{"conv2d": 8}, {"conv2d": {"out": 4, "kernel": 5}}, {"maxpool": 2.0},
                   {"flatten": True}, {"dropout": 0}, {"linear": 3.0}],
        "init": {"normal": 1},
    }
    model = validate_model(spec, (1, 8, 8), 3)
    cleaned = model.to_dict()
    assert cleaned == {
        "layers": [{"conv2d": 8}, {"conv2d": {"out": 4, "kernel": 5, "stride": 1, "padding": 2}},
                   {"maxpool": 2}, {"flatten": True}, {"dropout": 0.0}, {"linear": 3}],
        "init": {"normal": 1.0},
    }
    json.dumps(cleaned)  # plain JSON data
    assert validate_model(cleaned, (1, 8, 8), 3).to_dict() == cleaned
    cleaned["layers"].clear()  # a fresh copy: the ModelSpec is untouched
    assert len(model.to_dict()["layers"]) == 6
    assert validate_model({"layers": [{"linear": 2}]}, (2,), 2).to_dict()["init"] == "default"


def test_default_models_are_small_and_valid():
    assert default_model_for((2,), 3)["layers"] == [
        {"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"}, {"linear": 3},
    ]
    for shape in [(2,), (1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 2, 2), (3, 200, 300)]:
        model = validate_model(default_model_for(shape, 4), shape, 4)
        assert model.n_params < 100_000
    assert any("conv2d" in layer for layer in default_model_for((1, 8, 8), 10)["layers"])


def test_linear_layers_lists_the_weight_layers_by_parameter_prefix():
    net = build_model(validate_model(CNN, (1, 8, 8), 10))
    named = linear_layers(net)
    assert [name for name, _ in named] == ["0", "4", "7"]
    assert [type(m) for _, m in named] == [nn.Conv2d, nn.Conv2d, nn.Linear]
    params = dict(net.named_parameters())
    assert all(f"{name}.weight" in params for name, _ in named)


# --------------------------------------------------------------------------------------------
# Initialisation and seeding

WIDE = {"layers": [{"linear": 512}, {"act": "relu"}, {"batchnorm": True}, {"linear": 2}]}


def _build(init, seed: int = 0, spec=WIDE, input_shape=(256,), n_outputs=2) -> nn.Sequential:
    return build_model(validate_model({**spec, "init": init}, input_shape, n_outputs), _gen(seed))


@pytest.mark.parametrize("init", ["default", "xavier", "kaiming", "zeros", {"normal": 0.5}])
def test_same_seed_gives_identical_weights_and_leaves_the_global_rng_alone(init):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = _build(init, seed=7), _build(init, seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    if init != "zeros":
        other = _build(init, seed=8).state_dict()
        assert not torch.equal(sa["0.weight"], other["0.weight"])


@pytest.mark.parametrize("init", ["default", "xavier", "kaiming", "zeros", {"normal": 0.5}])
def test_batchnorm_stays_at_weight_one_bias_zero(init):
    bn = _build(init)[2]
    assert torch.equal(bn.weight, torch.ones(512)) and torch.equal(bn.bias, torch.zeros(512))


def test_zeros_init_is_all_zeros():
    net = _build("zeros", spec=CNN, input_shape=(1, 8, 8), n_outputs=10)
    for name, module in linear_layers(net):
        assert not module.weight.any() and not module.bias.any(), name


def test_xavier_init_has_zero_biases_and_weights_within_the_bound():
    net = _build("xavier")
    for (fan_in, fan_out), index in (((256, 512), 0), ((512, 2), 3)):
        weight, bias = net[index].weight, net[index].bias
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert not bias.any()
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.9 * bound  # actually spread over the range, not tiny


def test_kaiming_init_scales_for_the_activation_that_follows():
    net = _build("kaiming")
    # layer 0 feeds ReLU (through nothing); layer 3 is the output: linear gain 1.
    relu_bound = math.sqrt(2.0) * math.sqrt(3.0 / 256)
    linear_bound = math.sqrt(3.0 / 512)
    assert not net[0].bias.any() and not net[3].bias.any()
    assert relu_bound * 0.9 < net[0].weight.abs().max() <= relu_bound
    assert linear_bound * 0.8 < net[3].weight.abs().max() <= linear_bound
    # Through a batchnorm and dropout to a tanh: tanh's gain 5/3.
    spec = {"layers": [{"linear": 512}, {"batchnorm": True}, {"dropout": 0.2}, {"act": "tanh"},
                       {"linear": 2}]}
    tanh_net = _build("kaiming", spec=spec)
    tanh_bound = 5.0 / 3.0 * math.sqrt(3.0 / 256)
    assert tanh_bound * 0.9 < tanh_net[0].weight.abs().max() <= tanh_bound


def test_normal_init_has_the_asked_spread():
    net = _build({"normal": 0.3})
    weight = net[0].weight
    assert abs(weight.std().item() - 0.3) < 0.01
    assert abs(weight.mean().item()) < 0.01
    assert not net[0].bias.any()


def test_default_init_matches_torchs_own_ranges():
    net = _build("default")
    bound = 1 / math.sqrt(256)
    assert bound * 0.9 < net[0].weight.abs().max() <= bound
    assert 0 < net[0].bias.abs().max() <= bound


# --------------------------------------------------------------------------------------------
# Refusals: each names its field


@pytest.mark.parametrize(
    ("spec", "input_shape", "field", "fragment"),
    [
        ([{"linear": 2}], (2,), "problem.model", "JSON object"),
        ({"layers": [{"linear": 2}], "optim": "sgd"}, (2,), "problem.model.optim", "allowed keys"),
        ({"init": "default"}, (2,), "problem.model.layers", "missing"),
        ({"layers": {"linear": 2}}, (2,), "problem.model.layers", "list of layers"),
        ({"layers": "linear"}, (2,), "problem.model.layers", "list of layers"),
        ({"layers": []}, (2,), "problem.model.layers", "at least one layer"),
        ({"layers": [{"linear": 2}] * 201}, (2,), "problem.model.layers", "at most 200"),
        ({"layers": ["relu", {"linear": 2}]}, (2,), "problem.model.layers[0]", "exactly one key"),
        ({"layers": [{"linear": 4, "act": "relu"}, {"linear": 2}]}, (2,), "problem.model.layers[0]",
         "exactly one key"),
        ({"layers": [{"linear": 4}, {"conv": 8}, {"linear": 2}]}, (2,),
         "problem.model.layers[1].conv", "allowed: linear, act, dropout, batchnorm, conv2d"),
        ({"layers": [{"linear": 0}, {"linear": 2}]}, (2,), "problem.model.layers[0].linear",
         "[1, 4096]"),
        ({"layers": [{"linear": -3}, {"linear": 2}]}, (2,), "problem.model.layers[0].linear",
         "[1, 4096]"),
        ({"layers": [{"linear": 2.5}, {"linear": 2}]}, (2,), "problem.model.layers[0].linear",
         "whole number"),
        ({"layers": [{"linear": "16"}, {"linear": 2}]}, (2,), "problem.model.layers[0].linear",
         "whole number"),
        ({"layers": [{"linear": True}, {"linear": 2}]}, (2,), "problem.model.layers[0].linear",
         "got true"),
        ({"layers": [{"linear": 4097}, {"linear": 2}]}, (2,), "problem.model.layers[0].linear",
         "got 4097"),
        ({"layers": [{"linear": 4}, {"act": "swish"}, {"linear": 2}]}, (2,),
         "problem.model.layers[1].act",
         "relu, leaky_relu, elu, gelu, silu, tanh, sigmoid, identity"),
        ({"layers": [{"linear": 4}, {"dropout": 1}, {"linear": 2}]}, (2,),
         "problem.model.layers[1].dropout", "[0, 1)"),
        ({"layers": [{"linear": 4}, {"dropout": -0.1}, {"linear": 2}]}, (2,),
         "problem.model.layers[1].dropout", "[0, 1)"),
        ({"layers": [{"linear": 4}, {"dropout": "half"}, {"linear": 2}]}, (2,),
         "problem.model.layers[1].dropout", "probability"),
        ({"layers": [{"linear": 4}, {"batchnorm": False}, {"linear": 2}]}, (2,),
         "problem.model.layers[1].batchnorm", "must be true"),
        ({"layers": [{"flatten": 1}, {"linear": 2}]}, (1, 8, 8), "problem.model.layers[0].flatten",
         "must be true"),
        ({"layers": [{"conv2d": 8}, {"flatten": True}, {"linear": 2}]}, (2,),
         "problem.model.layers[0].conv2d",
         "conv2d needs image inputs (channels, height, width); this data set gives 2 features"),
        ({"layers": [{"maxpool": 2}, {"linear": 2}]}, (2,), "problem.model.layers[0].maxpool",
         "maxpool needs image inputs"),
        ({"layers": [{"flatten": True}, {"conv2d": 8}, {"linear": 2}]}, (1, 8, 8),
         "problem.model.layers[1].conv2d", "after layers[0] the values are flat (64 features)"),
        ({"layers": [{"linear": 2}]}, (1, 8, 8), "problem.model.layers[0].linear",
         'add {"flatten": true} before the first linear layer'),
        ({"layers": [{"conv2d": 4}, {"linear": 2}]}, (1, 8, 8), "problem.model.layers[1].linear",
         "after layers[0] the values are 4×8×8 images"),
        ({"layers": [{"maxpool": 9}, {"flatten": True}, {"linear": 2}]}, (1, 8, 8),
         "problem.model.layers[0].maxpool", "larger than the 8×8 image"),
        ({"layers": [{"maxpool": 4}, {"maxpool": 4}, {"flatten": True}, {"linear": 2}]}, (1, 8, 8),
         "problem.model.layers[1].maxpool", "larger than the 2×2 image"),
        ({"layers": [{"conv2d": {"kernel": 3}}, {"flatten": True}, {"linear": 2}]}, (1, 8, 8),
         "problem.model.layers[0].conv2d.out", "missing"),
        ({"layers": [{"conv2d": {"out": 4, "size": 3}}, {"flatten": True}, {"linear": 2}]},
         (1, 8, 8),
         "problem.model.layers[0].conv2d.size", "allowed keys here: kernel, out, padding, stride"),
        ({"layers": [{"conv2d": {"out": 0}}, {"flatten": True}, {"linear": 2}]}, (1, 8, 8),
         "problem.model.layers[0].conv2d.out", "[1, 4096]"),
        ({"layers": [{"conv2d": {"out": 4, "stride": 0}}, {"flatten": True}, {"linear": 2}]},
         (1, 8, 8), "problem.model.layers[0].conv2d.stride", "got 0"),
        ({"layers": [{"conv2d": {"out": 4, "padding": 3}}, {"flatten": True}, {"linear": 2}]},
         (1, 8, 8), "problem.model.layers[0].conv2d.padding", "less than the kernel size"),
        ({"layers": [{"conv2d": {"out": 4, "kernel": 9, "padding": 0}}, {"flatten": True},
                     {"linear": 2}]}, (1, 8, 8), "problem.model.layers[0].conv2d",
         "9×9 kernel does not fit the 8×8 image"),
        ({"layers": [{"linear": 2}], "init": "he"}, (2,), "problem.model.init",
         "'default', 'xavier', 'kaiming', 'zeros'"),
        ({"layers": [{"linear": 2}], "init": 3}, (2,), "problem.model.init", "'xavier'"),
        ({"layers": [{"linear": 2}], "init": {"uniform": 1}}, (2,), "problem.model.init.uniform",
         "unknown init"),
        ({"layers": [{"linear": 2}], "init": {"normal": 0.1, "mean": 0}}, (2,),
         "problem.model.init",
         "2 keys"),
        ({"layers": [{"linear": 2}], "init": {"normal": 0}}, (2,), "problem.model.init.normal",
         "(0, 10]"),
        ({"layers": [{"linear": 2}], "init": {"normal": 11}}, (2,), "problem.model.init.normal",
         "(0, 10]"),
        ({"layers": [{"linear": 2}], "init": {"normal": "wide"}}, (2,), "problem.model.init.normal",
         "(0, 10]"),
    ],
)
def test_invalid_specs_are_refused_naming_the_field(spec, input_shape, field, fragment):
    err = _refusal(spec, input_shape)
    assert err.field == field
    assert fragment in err.message, err.message


def test_the_last_layer_must_output_one_value_per_class():
    spec = {"layers": [{"linear": 16}, {"act": "relu"}, {"dropout": 0.1}, {"batchnorm": True},
                       {"linear": 3}]}
    err = _refusal(spec)
    assert str(err) == (
        "problem.model.layers[4].linear: the last layer must output 2 values (one per class), got 3"
    )


@pytest.mark.parametrize("tail", [{"act": "relu"}, {"dropout": 0.1}, {"batchnorm": True}])
def test_the_network_must_end_with_a_linear_layer(tail):
    err = _refusal({"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}, tail]})
    assert err.field == "problem.model.layers[3]"
    assert "the network must end with a linear layer of width 2" in err.message


def test_an_image_network_must_end_with_a_linear_layer_too():
    err = _refusal({"layers": [{"conv2d": 2}]}, (1, 8, 8))
    assert err.field == "problem.model.layers[0]"
    assert "must end with a linear layer" in err.message


def test_a_custom_field_prefix_is_used():
    with pytest.raises(LabError) as info:
        validate_model({"layers": [{"linear": 0}]}, (2,), 2, field="net")
    assert info.value.field == "net.layers[0].linear"


def test_too_many_parameters_are_refused():
    spec = {"layers": [{"flatten": True}, {"linear": 1024}, {"linear": 2}]}
    err = _refusal(spec, (3, 32, 32))
    expected = 3 * 32 * 32 * 1024 + 1024 + 1024 * 2 + 2
    assert err.field == "problem.model"
    assert f"the network has {expected:,} parameters; at most {MAX_PARAMS:,}" in err.message


def test_a_billion_parameters_are_refused_without_allocating(monkeypatch):
    # Counted from the spec, nothing built: so it is instant (bench `fuzz` times it).
    def no_allocation(*args, **kwargs):
        raise AssertionError("validation must not build modules")

    monkeypatch.setattr(nn.Linear, "__init__", no_allocation)
    monkeypatch.setattr(nn.Conv2d, "__init__", no_allocation)
    spec = {"layers": [{"linear": 4096}] * 61 + [{"linear": 2}]}
    err = _refusal(spec)
    expected = (2 * 4096 + 4096) + 60 * (4096 * 4096 + 4096) + (4096 * 2 + 2)
    assert expected > 10**9
    assert err.field == "problem.model"
    assert f"the network has {expected:,} parameters" in err.message


def test_program_errors_in_shapes_are_not_user_errors():
    with pytest.raises(ValueError):
        validate_model(MLP, (2, 3), 2)
    with pytest.raises(ValueError):
        validate_model(MLP, (0,), 2)
    with pytest.raises(ValueError):
        validate_model(MLP, (2,), 0)
