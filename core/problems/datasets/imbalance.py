"""Imbalanced classes: how many samples each class gets, drawing them, and the stratified split.

A ``problem.dataset`` with ``"imbalance": r`` (core/problems/datasets/spec.py) has r times as many
samples of its largest class (class 0) as of its smallest (the last class). With k > 2 classes the
counts fall geometrically in between, ``n_c ∝ r^(-c/(k-1))`` (the "long-tailed" layout of
Cui et al. 2019), so every neighbouring pair differs by the same factor. `class_counts` turns
``n`` into whole counts that sum to ``n`` (largest remainders), so 1,000 samples at r = 99 are
exactly 990 and 10.

`draw_imbalanced` draws each class's samples with the data set's own generator: it asks the set's
generator (core/problems/datasets/generators.py) for a balanced pool holding at least the
largest count of every class and keeps a seeded random subset of each class, in label order;
``xor``, whose labels come from its points, draws more pool until every class is covered;
``digits`` takes its pool from the 1,797 images, so a class cannot have more samples than the set
holds. `stratified_split` then keeps the share ``val_fraction`` of *each* class for validation
(at least one sample of each, when there is a validation split), so a minority of 10 samples is
not left out of a 20 % validation split by the luck of the shuffle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from core.errors import LabError

MIN_IMBALANCE = 1.0
MAX_IMBALANCE = 1000.0
MIN_PER_CLASS = 2  # one for training and one for validation
_XOR_POOL_ROUNDS = 64  # each round draws a fresh pool; half of xor's points are of each class


def class_weights_of_layout(k: int, ratio: float) -> np.ndarray:
    """The relative size of each class, 1 for class 0 down to 1/ratio for class k-1."""
    return ratio ** (-np.arange(k) / (k - 1))


def class_counts(n: int, k: int, ratio: float) -> np.ndarray:
    """Whole sample counts of the k classes summing to ``n``: ``n · w_c / Σw`` rounded by
    largest remainders (ties to the lower class), with w from `class_weights_of_layout`."""
    share = class_weights_of_layout(k, ratio)
    exact = n * share / share.sum()
    # The small slack absorbs float error in an exact count (n = 1000, r = 99: 990 not 989.99…).
    counts = np.floor(exact + 1e-9).astype(np.int64)
    left = n - int(counts.sum())
    if left > 0:
        remainder = exact - counts
        counts[np.argsort(-remainder, kind="stable")[:left]] += 1
    return counts


def check_imbalance(n: int, k: int, ratio: float, field: str) -> np.ndarray:
    """`class_counts`, refusing an ``n`` that leaves a class fewer than two samples."""
    counts = class_counts(n, k, ratio)
    if counts.min() >= MIN_PER_CLASS:
        return counts
    share = class_weights_of_layout(k, ratio)
    # The smallest n with n · w_min / Σw >= 2, found from just below it (float error and the
    # largest-remainder rounding move it by a few).
    needed = max(n, math.floor(MIN_PER_CLASS * share.sum() / share[-1]) - k)
    while class_counts(needed, k, ratio).min() < MIN_PER_CLASS:
        needed += 1
    raise LabError(
        f"{field}.n",
        f"must be at least {needed} for imbalance {ratio:g} with {k} classes (the smallest "
        f"class needs {MIN_PER_CLASS} samples: one to train on, one to validate), got {n}; "
        f"or lower {field}.imbalance",
    )


Generator = Callable[[Mapping, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def draw_imbalanced(name: str, generate: Generator, spec: Mapping, k: int,
                    rng: np.random.Generator, field: str,
                    whole_set: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Samples and labels of set ``name`` with `class_counts` per class, in label order.

    ``generate`` is the set's generator; ``rng`` the data set's own generator (never numpy's
    global one); ``whole_set`` the size of a set of real samples (digits: 1,797), whose pool is
    all of them. See the module docstring for the pools."""
    counts = check_imbalance(spec["n"], k, spec["imbalance"], field)
    largest = int(counts.max())
    if whole_set is not None:
        pool_x, pool_y = generate({**spec, "n": whole_set}, rng)
        have = np.bincount(pool_y, minlength=k)
        short = np.flatnonzero(have < counts)
        if short.size:
            c = int(short[0])
            fits = [m for m in range(spec["n"] - 1, 0, -1)
                    if (class_counts(m, k, spec["imbalance"]) <= have).all()]
            lower = f"lower n to at most {fits[0]}" if fits else "lower n"
            raise LabError(
                f"{field}.n",
                f"is too large for imbalance {spec['imbalance']:g}: class {c} would need "
                f"{counts[c]} samples and {name} has {have[c]}; {lower}",
            )
    else:
        pool_x, pool_y = generate({**spec, "n": k * largest}, rng)
        for _ in range(_XOR_POOL_ROUNDS):  # only xor's labels can fall short of `largest`
            if np.bincount(pool_y, minlength=k).min() >= largest:
                break
            more_x, more_y = generate({**spec, "n": k * largest}, rng)
            pool_x, pool_y = np.concatenate([pool_x, more_x]), np.concatenate([pool_y, more_y])
    picked = []
    for c in range(k):
        members = np.flatnonzero(pool_y == c)
        picked.append(np.sort(rng.permutation(members)[: counts[c]]))
    chosen = np.concatenate(picked)
    return pool_x[chosen], np.asarray(pool_y[chosen], dtype=np.int64)


def stratified_split(target: np.ndarray, val_fraction: float) -> tuple[np.ndarray, int]:
    """An order of the (already shuffled) samples that puts training first, and the training
    size: the last ``round(count_c · val_fraction)`` samples of each class c (at least one when
    ``val_fraction`` > 0, at most count_c − 1) go to validation; both splits keep the shuffled
    order."""
    val = np.zeros(len(target), dtype=bool)
    if val_fraction > 0:
        for c in np.unique(target):
            members = np.flatnonzero(target == c)
            size = min(max(1, int(round(len(members) * val_fraction))), len(members) - 1)
            if size > 0:
                val[members[len(members) - size:]] = True
    order = np.concatenate([np.flatnonzero(~val), np.flatnonzero(val)])
    return order, int((~val).sum())
