"""``main.py surface``: train a network lab, then write the loss surface around it to surface.npz.

    python main.py surface LAB --out DIR [--grid G] [--directions random|pca|hessian]
                           [--span S] [--steps N | --steps-from-lab] [--every K]

What it computes and what surface.npz holds: core/landscape/race_surface.py. This module parses
the flags, prints the summary and leaves a user's mistake to main.py as a `LabError`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from cli.code_consent import add_trust_flag, load_lab_for
from core.errors import LabError
from core.landscape import curvature
from core.landscape import fused as landscape_fused
from core.landscape.race_surface import (
    DEFAULT_GRID,
    DIRECTIONS,
    MAX_GRID,
    MIN_GRID,
    check_grid,
    check_positive,
    check_steps,
    compute_race_surface,
    write_surface_npz,
)


def _sharpness_text(value: float, not_converged: bool) -> str:
    """A measured λ_max, or why there is none (never a made-up number)."""
    if math.isfinite(value):
        return f"{value:.6g}"
    if not_converged:
        return (f"not converged (within {curvature.SHARPNESS_MAX_PRODUCTS} Hessian-vector "
                "products)")
    return "n/a (no finite weights)"


def _print_edges(surface) -> None:
    """Each run's own edge of stability at its final lr, and the (preconditioned, for
    Adam/RMSprop) sharpness it is compared with (core/landscape/adaptive_edge.py)."""
    if surface.edge_of_stability is None:
        return
    for i, label in enumerate(surface.labels):
        edge, rule = surface.edge_of_stability[i], surface.edge_rules[i]
        if not math.isfinite(edge):
            print(f"{label:<24} edge of stability: {rule}")
            continue
        pre = surface.preconditioned_sharpness[i]
        against = ""
        if "P⁻¹H" in rule:
            against = (f"  preconditioned sharpness λ₁(P⁻¹H) {pre:.6g}" if math.isfinite(pre)
                       else "  preconditioned sharpness not converged or not available")
        print(f"{label:<24} edge of stability {edge:.6g} ({rule}){against}")


def _cmd_surface(args: argparse.Namespace) -> int:
    check_grid(args.grid)  # before loading or training anything
    check_positive(args.span, "--span")
    check_steps(args.steps)
    if args.every is not None and args.every < 1:
        raise LabError("--every", f"must be a whole number >= 1, got {args.every}")
    lab = load_lab_for(args)
    try:
        surface = compute_race_surface(
            lab, grid=args.grid, directions=args.directions, span=args.span,
            steps=args.steps, every=args.every,
        )
    except LabError as exc:
        raise exc.from_file(str(args.lab)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_surface_npz(out / "surface.npz", surface)
    center_label = surface.labels[surface.center_run]
    print(f"{args.grid}×{args.grid} surface around {center_label!r} ({surface.directions} "
          f"directions, span {surface.span:.3g}): loss {surface.center_loss:.6g} at the centre")
    if "explained_variance" in surface.extra:
        ratio = surface.extra["explained_variance"]
        print(f"explained variance {ratio[0]:.1%} + {ratio[1]:.1%}")
    if "eigenvalues" in surface.extra:
        values = surface.extra["eigenvalues"]
        if np.all(np.isfinite(values)):
            print(f"Hessian eigenvalues {values[0]:.6g}, {values[1]:.6g}")
        else:
            print(f"Hessian eigenvalues not converged within {curvature.HESSIAN_MAX_PRODUCTS} "
                  "Hessian-vector products: the plane lies along the best approximations")
    failed = surface.arrays()["sharpness_not_converged"]
    for label, value, path, bad in zip(surface.labels, surface.sharpness, surface.paths, failed):
        off = float(np.max(path["off_plane"])) if len(path["off_plane"]) else math.nan
        print(f"{label:<24} sharpness {_sharpness_text(value, bool(bad))}  "
              f"max off-plane distance {off:.3g}")
    _print_edges(surface)
    slow = landscape_fused.unavailable_reason()
    if slow:
        print(f"note: computed by the torch engine, without the native kernel ({slow}): "
              "the same numbers, more slowly")
    print(f"wrote {out / 'surface.npz'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``surface`` sub-command; its ``args.handler(args)`` returns the exit code."""
    parser = subparsers.add_parser(
        "surface", help="train a network lab and write the loss surface around it (surface.npz)"
    )
    parser.add_argument("lab", help="a *.lab.json file with a network problem")
    add_trust_flag(parser)
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID,
                        help=f"points per axis, {MIN_GRID} to {MAX_GRID} (default {DEFAULT_GRID})")
    parser.add_argument("--directions", choices=DIRECTIONS, default="random",
                        help="plane directions (default random, filter-normalised)")
    parser.add_argument("--span", type=float, default=None,
                        help="half-width of the α and β axes (default: 1 for random; "
                             "for pca/hessian large enough to hold every path)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None,
                        help="train this many steps instead of the lab's own")
    length.add_argument("--steps-from-lab", action="store_true",
                        help="train for the lab's own steps (the default)")
    parser.add_argument("--every", type=int, default=None,
                        help="keep each run's weights every K steps (default steps/100)")
    parser.set_defaults(handler=_cmd_surface)
    return parser
