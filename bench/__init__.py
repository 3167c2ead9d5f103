"""Descent Lab benchmarks (`make bench` = ``python -m bench [name ...]``).

Every benchmark runs its naive baseline beside ours in the same process and run, and prints one
line ``BENCH <name>: <value> <unit> (x<ratio> vs <baseline>)``. Absolute times are noisy on the
shared 2-core build machines; the ratios are what to compare between runs (README.md, Benchmarks).

Results also go to ``bench/results/latest.json`` (git-ignored).
"""

# name -> module in this package exposing ``run() -> dict`` (the dict of `bench.common.report`).
BENCHMARKS = {
    "engine-overhead": "bench.engine_overhead",
    "gui-latency": "bench.gui_latency",
    "startup": "bench.startup",
    "zoo-startup": "bench.zoo_startup",
    "surface-small": "bench.surface_small",
    "surface-peak": "bench.surface_peak",
    "surface-follow": "bench.surface_follow",
    "surface-follow-gui": "bench.surface_follow_gui",
    "side-by-side": "bench.side_by_side",
    "byo-overhead": "bench.byo_overhead",
    "history-memory": "bench.history_memory",
    "sweep-throughput": "bench.sweep_throughput",
    "scorecard-throughput": "bench.scorecard_throughput",
    "lessons": "bench.lessons",
    "fuzz": "bench.fuzz",
    "crash-recovery": "bench.crash_recovery",
    "soak": "bench.soak",
    "sequence-race": "bench.sequence_race",
    "rl-envs": "bench.rl_envs",
}
