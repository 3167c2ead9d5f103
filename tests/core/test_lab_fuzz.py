"""Fuzzing lab files: whatever the JSON, loading gives a Lab or a LabError — never a crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import LabError
from core.lab.format import lab_from_dict, lab_from_json

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
names = st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "lbfgs", "muon", "rprop", "nope", ""])
params = st.dictionaries(
    st.sampled_from(["lr", "momentum", "betas", "nesterov", "eps", "weight_decay", "etas", "x"]),
    json_values, max_size=3,
)
schedules = st.one_of(st.none(), st.fixed_dictionaries(
    {"name": st.sampled_from(["cosine", "step", "onecycle", "cyclic", "plateau", "bad"]),
     "params": st.dictionaries(st.sampled_from(["T_max", "step_size", "gamma", "max_lr"]),
                               json_values, max_size=2)}))
runs = st.lists(st.fixed_dictionaries(
    {"label": st.text(max_size=8), "optimizer": names, "params": params},
    optional={"schedule": schedules, "enabled": json_values, "color": json_values,
              "l2": json_values}), max_size=3)
functions = st.one_of(
    st.sampled_from(["rosenbrock", "beale", "nope"]),
    st.fixed_dictionaries({"expression": st.sampled_from(["x**2+y", "x +", "sin(x)*y", "9**9**9"])}),
    json_values,
)
problems = st.one_of(
    st.fixed_dictionaries({"kind": st.just("function"), "function": functions},
                          optional={"start": json_values}),
    st.fixed_dictionaries(
        {"kind": st.just("network"),
         "dataset": st.one_of(st.fixed_dictionaries(
             {"name": st.sampled_from(["moons", "xor", "linear", "csv", "bad"])},
             optional={"n": json_values, "noise": json_values}), json_values),
         "model": st.one_of(st.fixed_dictionaries(
             {"layers": st.lists(st.one_of(
                 st.fixed_dictionaries({"linear": json_values}),
                 st.fixed_dictionaries({"act": st.sampled_from(["relu", "tanh", "bad"])}),
                 json_values), max_size=4)}), json_values)},
        optional={"loss": json_values, "batch_size": json_values}),
    json_values,
)
labs = st.fixed_dictionaries(
    {"problem": problems, "runs": st.one_of(runs, json_values)},
    optional={"format": st.sampled_from(["descent-lab/1", "descent-lab/2", "x", 1]),
              "steps": json_values, "seed": json_values, "name": json_values},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labs)
def test_any_lab_dict_loads_or_is_refused_with_a_lab_error(data):
    try:
        lab_from_dict(data)
    except LabError as error:
        assert str(error)  # a message a user can read


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_is_refused_with_a_lab_error(text):
    try:
        lab_from_json(text)
    except LabError:
        pass


def test_deeply_nested_json_is_refused_cleanly():
    text = "[" * 100_000 + "]" * 100_000
    try:
        lab_from_json(text)
    except LabError as error:
        assert "nested" in str(error) or "JSON" in str(error)
    assert json  # the module is used
