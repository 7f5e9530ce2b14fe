# Run: pytest -m gates
"""Regression gates: pass on the recorded results, fail on planted regressions (a gate that cannot fail is a defect)."""

import json
import shutil
import uuid
from pathlib import Path

import pytest

from suite.reporting.gates import GateThresholds, check, load_thresholds
from suite.reporting.leaderboard import paired_delta
from suite.paths import RESULTS_DIR
from suite.results import append_row, read_rows, write_jsonl_atomic
from suite.stats import wilson_interval

pytestmark = pytest.mark.gates


def test_recorded_results_pass_every_gate():
    runs = read_rows(RESULTS_DIR / "runs.jsonl", ())
    assert runs, "results/runs.jsonl is empty: the gates would check nothing (run `make demo`)"
    failures = check(RESULTS_DIR)
    assert failures == {"vs_baseline": [], "vs_best_of_family": []}, "\n".join(sum(failures.values(), []))


@pytest.fixture
def results(tmp_path) -> Path:
    shutil.copytree(RESULTS_DIR, tmp_path / "results")
    return tmp_path / "results"


def _plant_run(results: Path, flips: int, **changes) -> dict:
    """A new run copied from the first recorded one whose final checkpoint got ``flips`` problems wrong."""
    template = read_rows(results / "runs.jsonl", ())[0]
    evals = {r["row_id"]: r for r in read_rows(results / "evals.jsonl")}
    final = evals[template["final_row"]]
    samples = [json.loads(x) for x in (results / final["samples_file"]).read_text().splitlines()]
    flipped = 0
    for s in samples:
        if s["correct"] and flipped < flips:
            s["correct"], flipped = 0, flipped + 1
    new_id = f"planted-{uuid.uuid4().hex[:8]}"
    write_jsonl_atomic(results / "samples" / f"{new_id}.jsonl", samples)
    correct = sum(s["correct"] for s in samples)
    eval_row = {**final, "row_id": new_id, "samples_file": f"samples/{new_id}.jsonl", "correct": correct,
                "accuracy": correct / len(samples), "ci95": list(wilson_interval(correct, len(samples)))}
    append_row(results / "evals.jsonl", eval_row)
    run = {**template, "row_id": f"run-{new_id}", "final_row": new_id, **changes}
    run["paired_delta"] = paired_delta(results, evals[run["baseline_row"]], eval_row)
    append_row(results / "runs.jsonl", run)
    return run


def test_planted_regression_below_baseline_fails(results):
    run = _plant_run(results, flips=120, run_name="planted-worse-than-baseline", seed=7)
    failures = check(results)["vs_baseline"]
    assert len(failures) == 1 and "planted-worse-than-baseline" in failures[0]
    assert "worse than its baseline" in failures[0] and "95% CI" in failures[0]
    assert run["paired_delta"]["ci95"][1] < 0


def test_planted_regression_below_best_of_family_fails(results):
    _plant_run(results, flips=60, run_name="planted-family-regression", seed=7)  # same family, a later seed
    failures = check(results)
    assert failures["vs_baseline"] == []  # not significantly below the baseline: only the family gate catches it
    assert len(failures["vs_best_of_family"]) == 1
    assert "planted-family-regression" in failures["vs_best_of_family"][0]
    assert "worse than the best run of its family" in failures["vs_best_of_family"][0]


def test_a_drop_within_noise_passes(results):
    _plant_run(results, flips=3, run_name="planted-noise", seed=7)
    assert check(results) == {"vs_baseline": [], "vs_best_of_family": []}


def test_thresholds_come_from_conf_and_loosen_the_gate(results):
    assert load_thresholds() == GateThresholds()  # conf/gates.yaml holds the defaults
    _plant_run(results, flips=60, run_name="planted-family-regression", seed=7)
    assert check(results, GateThresholds(max_drop_vs_best=0.5))["vs_best_of_family"] == []


def test_small_samples_are_not_gated(results):
    _plant_run(results, flips=120, run_name="planted", seed=7)
    assert check(results, GateThresholds(min_n=10_000)) == {"vs_baseline": [], "vs_best_of_family": []}
