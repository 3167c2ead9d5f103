"""The scorecard's live tables (core/tools/scorecard/live.py), built from run_scorecard's
``on_study`` events: once every study is in they equal the result's times, voided bases, ratios
and scores (held-out rule included); before that they hold the workloads begun so far."""

from __future__ import annotations

import math

from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab
from core.tools.scorecard.live import LiveTables
from core.tools.scorecard.run import ScorecardSpec, entry, run_scorecard
from core.tools.scorecard.workloads import Workload


def _lab(expression, start, steps) -> Lab:
    return validate_lab(Lab(name="f", steps=steps,
                            problem=FunctionProblem({"expression": expression}, start),
                            runs=(RunSpec("Reference", "sgd", {"lr": 0.01}),)))


def _inf(table):
    return {e: {w: math.inf if t is None else t for w, t in row.items()}
            for e, row in table.items()}


def test_live_tables_end_equal_to_the_result_and_fill_in_study_by_study():
    # quad's held-out variant (another start) has a target only adam reaches in time here.
    workloads = [
        Workload("quad", _lab("0.5*(x**2 + 10*y**2)", (2.0, 1.0), 60), 1e-2, 60,
                 heldout={"data_seed": 1e-9}),
        Workload("bowl", _lab("x**2 + y**2", (1.0, 1.0), 40), 1e-3, 40),
    ]
    spec = ScorecardSpec([entry("adam", "adam"), entry("sgd", "sgd"), entry("rprop", "rprop")],
                         workloads, trials=2, studies=3, heldout=True, seed=0)
    events = []
    result = run_scorecard(spec, on_study=events.append)
    names = [e.name for e in spec.entries]
    # 3 entries × (2 workloads + 1 held-out variant) × 3 studies
    assert len(events) == 27
    live = LiveTables(names, ["quad", "bowl"], events)
    assert live.times() == _inf(result["times"])
    assert live.times("grad_evals") == _inf(result["grad_evals"])
    assert live.ratios() == _inf(result["ratios_steps"])
    assert live.scores() == result["score_steps"]
    assert live.scores("grad_evals") == result["score_grad_evals"]
    assert live.voided() == result["voided"]
    assert live.heldout_times() == _inf(result["heldout_times"])
    assert any(result["voided"].values()) or any(
        t is None for row in result["heldout_times"].values() for t in row.values())
    # Each cell's best study is the fastest study of studies_detail, with its trial and lr.
    for name in names:
        for w in ("quad", "bowl"):
            rows = [s for s in result["studies_detail"][name][w] if s.get("trial") is not None]
            best = live.best(name, w)
            if not rows:
                assert best is None
                continue
            fastest = min(rows, key=lambda s: s["steps"])
            assert (best.row["trial"], best.row["lr"], best.steps) == (
                fastest["trial"], fastest["lr"], fastest["steps"])
            assert result["studies_detail"][name][w][best.study] == best.row
    # Partway (quad's studies only), the tables hold quad alone; its profile is ρ on quad.
    partial = LiveTables(names, ["quad", "bowl"], [ev for ev in events if ev.workload == "quad"])
    assert all(set(row) == {"quad"} for row in partial.times().values())
    for name in names:
        assert partial.profile(name)[0][0] == 1.0
