"""Planted results for the leaderboard and gate tests: a recorded run's final scoring with problems flipped wrong."""

import json
import uuid
from pathlib import Path

from suite.results import append_row, read_rows, write_jsonl_atomic
from suite.stats import wilson_interval


def keep_seed_zero(results: Path) -> None:
    """Drops every recorded run but the seed-0 ones (the tests plant other seeds themselves)."""
    runs = [r for r in read_rows(results / "runs.jsonl", ()) if r["seed"] == 0]
    write_jsonl_atomic(results / "runs.jsonl", runs)


def plant_final_eval(results: Path, template: dict, flips: int, start: int = 0) -> tuple[dict, dict]:
    """Appends a copy of ``template``'s final eval row whose first ``flips`` correct problems from problem
    ``start`` on (wrapping around) are marked wrong; returns (the recorded eval row, the planted one)."""
    final = {r["row_id"]: r for r in read_rows(results / "evals.jsonl")}[template["final_row"]]
    samples = [json.loads(x) for x in (results / final["samples_file"]).read_text().splitlines()]
    flipped = 0
    for i in list(range(start, len(samples))) + list(range(start)):
        if samples[i]["correct"] and flipped < flips:
            samples[i].update(correct=0, n_correct=0, correct_flexible=0, n_correct_flexible=0)
            flipped += 1
    new_id = f"planted-{uuid.uuid4().hex[:8]}"
    write_jsonl_atomic(results / "samples" / f"{new_id}.jsonl", samples)
    n, correct = len(samples), sum(s["correct"] for s in samples)
    flex = sum(s["correct_flexible"] for s in samples)
    planted = {**final, "row_id": new_id, "samples_file": f"samples/{new_id}.jsonl", "correct": correct,
               "accuracy": correct / n, "ci95": list(wilson_interval(correct, n)),
               "flexible": {**final["flexible"], "correct": flex, "accuracy": flex / n}}
    append_row(results / "evals.jsonl", planted)
    return final, planted
