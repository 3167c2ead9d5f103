"""Sequence data sets for recurrent networks: the classic long-memory tasks, generated and seeded.

Each sample is a sequence of ``length`` time steps of a few features, shape (T, d); a network
reads it with recurrent layers (core/problems/model_spec.py: ``rnn``, ``lstm``, ``gru``) and
answers once, from its last time step (``{"last": true}``). Every draw comes from the data set's
own ``numpy.random.Generator`` (core/problems/datasets/build.py), so one seed gives one set.

``adding``   (Hochreiter & Schmidhuber 1997) inputs (T, 2): a value uniform in [0, 1] and a
             marker that is 1 at exactly two steps, one in each half of the sequence. Target: the
             sum of the two marked values (regression). Always answering 1 (the mean) gives the
             variance of a sum of two U(0, 1): 2/12 = 1/6 ≈ 0.167 MSE — a network below it has
             learned to find the markers.
``memory``   copy memory with delay T: a symbol (one of ``classes``, one-hot) at step 0, blanks,
             and a cue at the last step; the answer is the symbol, T − 1 steps after it was seen.
             Inputs (T, classes + 2). Chance: accuracy 1/k, cross entropy ln k.
``parity``   inputs (T, 1) of random bits; class 1 when an odd number of them are 1. Every bit
             matters until the end. Chance: accuracy 1/2, cross entropy ln 2.
``sine_next`` sine-wave continuation: T samples of sin(ω t + φ) (ω uniform in [0.1, 0.5] rad per
             step, φ uniform in [0, 2π), plus ``noise``) and the target is the clean next value
             sin(ω T + φ) (regression). Always answering 0 gives E[sin²] = 0.5 MSE.

`SEQUENCE_BASELINES` states each set's baseline; `baseline_of` gives it for a cleaned spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MIN_LENGTH = 2
MAX_LENGTH = 1000
DEFAULT_LENGTH = 50
# n × length × features is the number of floats a set holds; past this a race's memory and
# time are out of proportion to a lesson (100 000 values of 100 steps would be 160 MB).
MAX_SEQUENCE_VALUES = 5_000_000
SINE_OMEGA = (0.1, 0.5)


@dataclass(frozen=True)
class Baseline:
    """What a network must beat: the ``metric`` a trivial answer reaches (``value``) and how."""

    metric: str  # "mse", "loss" or "accuracy"
    value: float
    how: str


def adding_baseline() -> Baseline:
    return Baseline("mse", 1.0 / 6.0, "always answering 1 (the mean of the sum) gives Var = 2/12")


SEQUENCE_BASELINES = {
    "adding": "always answering 1 gives MSE 2/12 ≈ 0.167",
    "memory": "chance: accuracy 1/k, cross entropy ln k",
    "parity": "chance: accuracy 0.5, cross entropy ln 2 ≈ 0.693",
    "sine_next": "always answering 0 gives MSE 0.5",
}


def baseline_of(spec: Mapping) -> Baseline:
    """The baseline of a cleaned sequence spec (`SEQUENCE_BASELINES` in numbers)."""
    name = spec["name"]
    if name == "adding":
        return adding_baseline()
    if name == "memory":
        k = spec["classes"]
        return Baseline("accuracy", 1.0 / k, f"guessing one of {k} symbols (cross entropy ln {k})")
    if name == "parity":
        return Baseline("accuracy", 0.5, "guessing (cross entropy ln 2)")
    if name == "sine_next":
        return Baseline("mse", 0.5, "always answering 0 gives E[sin²] = 0.5")
    raise KeyError(name)


def feature_names(spec: Mapping) -> tuple[str, ...]:
    name = spec["name"]
    if name == "adding":
        return ("value", "marker")
    if name == "memory":
        return tuple(f"symbol_{c}" for c in range(spec["classes"])) + ("blank", "cue")
    if name == "parity":
        return ("bit",)
    return ("value",)


def _adding(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, t = spec["n"], spec["length"]
    values = rng.uniform(0.0, 1.0, (n, t))
    half = t // 2
    first = rng.integers(0, half, n)  # one marker in each half: never the same step
    second = rng.integers(half, t, n)
    markers = np.zeros((n, t))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=2), target[:, None]


def _memory(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, t, k = spec["n"], spec["length"], spec["classes"]
    labels = np.arange(n) % k  # label order, as the other generators (build.py shuffles)
    inputs = np.zeros((n, t, k + 2))
    inputs[np.arange(n), 0, labels] = 1.0
    inputs[:, 1:-1, k] = 1.0  # blanks
    inputs[:, -1, k + 1] = 1.0  # the cue: answer now
    return inputs, labels


def _parity(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, t = spec["n"], spec["length"]
    bits = rng.integers(0, 2, (n, t))
    return bits[:, :, None].astype(np.float64), (bits.sum(axis=1) % 2).astype(np.int64)


def _sine_next(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, t = spec["n"], spec["length"]
    omega = rng.uniform(*SINE_OMEGA, (n, 1))
    phase = rng.uniform(0.0, 2.0 * math.pi, (n, 1))
    steps = np.arange(t + 1)[None, :]
    wave = np.sin(omega * steps + phase)
    inputs = wave[:, :t] + spec["noise"] * rng.standard_normal((n, t))
    return inputs[:, :, None], wave[:, t:]


SEQUENCE_GENERATORS = {
    "adding": _adding,
    "memory": _memory,
    "parity": _parity,
    "sine_next": _sine_next,
}


def sequence_features(spec: Mapping) -> int:
    """Features per time step (d of the (T, d) samples)."""
    return len(feature_names(spec))
