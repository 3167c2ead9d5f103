"""The shipped check of the zoo (resources/zoo_checks.json, core/optim/zoo_checks.py): made for the
installed zoo versions, covering every raceable zoo optimizer, and what a fresh check finds."""

from __future__ import annotations

import json

from core.optim.catalog import get_optimizer_info
from core.optim.check_report import FAILED, Adapters
from core.optim.checkup import check_optimizer
from core.optim.zoo import zoo_names, zoo_refusals
from core.optim.zoo_checks import SEED, ZOO_CHECKS_FILE, shipped_failures, shipped_results


def test_the_shipped_file_is_for_the_installed_zoo_and_covers_every_raceable_optimizer():
    data = json.loads(ZOO_CHECKS_FILE.read_text(encoding="utf-8"))
    # A moved pin without `python -m core.optim.zoo_checks` fails here, not silently.
    assert shipped_results(), "the shipped file is not for the installed zoo versions"
    refused = zoo_refusals()
    assert set(data["results"]) == {ref for ref in zoo_names() if ref not in refused}


def test_the_shipped_verdicts_are_what_a_fresh_check_finds():
    results, failures = shipped_results(), shipped_failures()
    for ref in ("pytorch_optimizer:QHAdam", "pytorch_optimizer:Lion"):
        info = get_optimizer_info(ref)
        report = check_optimizer(info.cls, info.torch_kwargs({}), seed=SEED, name=ref,
                                 build=info.build, declared=Adapters.of(info))
        fresh = [r.key for r in report.results if r.status == FAILED]
        assert fresh == list(results[ref]), ref
    assert "state_dict" in failures["pytorch_optimizer:QHAdam"]
    assert "pytorch_optimizer:Lion" not in failures


def test_a_file_for_other_versions_or_a_broken_file_badges_nothing(tmp_path):
    data = json.loads(ZOO_CHECKS_FILE.read_text(encoding="utf-8"))
    data["versions"] = {package: "0.0.1" for package in data["versions"]}
    other = tmp_path / "zoo_checks.json"
    other.write_text(json.dumps(data))
    assert shipped_failures(other) == {}
    other.write_text("{not json")
    assert shipped_failures(other) == {}
    assert shipped_failures(tmp_path / "missing.json") == {}
