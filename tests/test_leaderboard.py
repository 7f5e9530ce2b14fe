# Run: pytest tests/test_leaderboard.py
"""The leaderboard regenerates from results/ alone: md, csv, html (sortable, with provenance), plots; seeds
fold into one line per configuration, with per-seed values and two-level intervals."""

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from suite.reporting.contamination import overlap_report
from suite.data import near_duplicates
from suite.reporting.leaderboard import write_leaderboard
from suite.paths import REPO_ROOT, RESULTS_DIR
from suite.results import append_row, read_rows
from suite.stats import seed_aggregate
from tests.planting import keep_seed_zero, plant_final_eval


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    results = tmp_path_factory.mktemp("lb") / "results"
    shutil.copytree(RESULTS_DIR, results, ignore=shutil.ignore_patterns("leaderboard.*", "plots"))
    rows = write_leaderboard(results)
    return results, rows


def test_every_recorded_configuration_is_a_line_with_n_and_intervals(rebuilt):
    results, rows = rebuilt
    runs = read_rows(results / "runs.jsonl", ())
    assert len(rows) == len({r["family_hash"] for r in runs}) > 0
    assert sum(len(r["_runs"]) for r in rows) == len({r["run_name"] for r in runs})
    table = list(csv.DictReader((results / "leaderboard.csv").open()))
    for row in table:
        assert int(row["n"]) >= 100
        for col in ("acc before [95% CI]", "acc after [95% CI]", "paired delta [95% CI]", "teacher acc [95% CI]",
                    "flexible acc after [95% CI]", "flexible paired delta [95% CI]", "teacher flexible acc [95% CI]"):
            assert re.fullmatch(r"[+-]?\d+\.\d \[[+-]?\d+\.\d, [+-]?\d+\.\d\]", row[col]), (col, row[col])
        assert re.fullmatch(r"\d+\.\d% -> \d+\.\d%", row["flexible format failures before -> after"])
        assert row["commands"].startswith("python -m suite.sweep") and "temperature" in row["sampling"]
        assert row["seeds"] in ("1 (single seed)", *map(str, range(2, 100)))


def test_committed_leaderboard_is_up_to_date(rebuilt):
    results, _ = rebuilt
    assert (results / "leaderboard.md").read_text() == (RESULTS_DIR / "leaderboard.md").read_text(), \
        "results/leaderboard.md is stale: run `python -m suite.leaderboard`"


def test_html_is_self_contained_sortable_and_links_provenance(rebuilt):
    results, rows = rebuilt
    page = (results / "leaderboard.html").read_text()
    assert "table.sortable th" in page and page.count("<img") == len(list((results / "plots").glob("*.png")))
    assert "src=\"data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")
    for r in rows:
        for run in r["_runs"]:
            assert f'href="#run-{run["row_id"]}"' in page and f'id="run-{run["row_id"]}"' in page
            for text in (run["command"], '"task_version"', '"sampling"', '"temperature"', '"family_hash"'):
                assert html.escape(text) in page, text
    assert "flexible acc after" in page and "acc after per seed" in page


def test_plots_are_real_pngs(rebuilt):
    results, _ = rebuilt
    pngs = sorted((results / "plots").glob("*.png"))
    assert {p.name.split("_")[0] for p in pngs} == {"acc", "curves"}
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_contamination_report_counts_overlap_exactly():
    train = ["Tom has 3 apples and gets 5 more. How many apples does Tom have now in the basket today?"]
    evals = ["Tom has 3 apples and gets 5 more. How many apples does Tom have now in the basket today?",
             "A completely different problem about the number of ways to tile a board with dominoes here"]
    report = overlap_report(train, evals)
    assert (report["exact_duplicates"], report["eval_rows_with_ngram_overlap"], report["near_duplicates"]) == (1, 1, 1)
    reworded = ["Tom has 3 apples and gets 5 more. How many apples does Tom have now in the basket today? Explain."]
    assert near_duplicates(reworded, train) == {0} and near_duplicates(evals[1:], train) == set()


# Seeds as replicates on planted rows ------------------------------------------------------------------

def _plant_seed(results, template: dict, seed: int, flips: int, start: int = 0) -> dict:
    """Another seed of ``template``'s configuration whose final checkpoint got ``flips`` more problems wrong
    (the first ``flips`` correct ones from problem ``start`` on)."""
    _, planted = plant_final_eval(results, template, flips, start)
    name = template["run_name"].replace(f"-s{template['seed']}-", f"-s{seed}-")
    run = {**template, "row_id": f"run-{planted['row_id']}", "run_name": name, "seed": seed,
           "final_row": planted["row_id"]}
    append_row(results / "runs.jsonl", run)
    return run


@pytest.fixture
def planted(tmp_path):
    """The recorded results with their seed-0 runs only: the tests plant other seeds themselves."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS_DIR, results, ignore=shutil.ignore_patterns("leaderboard.*", "plots"))
    keep_seed_zero(results)
    return results


def _line(rows, coef):
    [row] = [r for r in rows if r["opd_kl_coef"] == coef]
    return row


def test_seeds_fold_into_one_line_with_exact_per_seed_values(planted):
    template = [r for r in read_rows(planted / "runs.jsonl", ()) if r["opd_kl_coef"] == 1.0][0]
    _plant_seed(planted, template, seed=1, flips=5)
    _plant_seed(planted, template, seed=2, flips=12, start=250)
    rows = write_leaderboard(planted, contamination=False)
    line = _line(rows, "1")
    assert len(rows) == 3 and [r["seed"] for r in line["_runs"]] == [0, 1, 2] and line["seeds"] == "3"
    evals = {r["row_id"]: r for r in read_rows(planted / "evals.jsonl")}
    base = evals[template["final_row"]]["accuracy"]
    after = line["_line"]["strict"]["after"]
    assert after["per_seed"] == pytest.approx([base, base - 5 / 500, base - 12 / 500])
    assert after["mean"] == pytest.approx(base - 17 / 1500)
    # the interval is the two-level bootstrap of the seeds x problems matrix read from the sample files
    matrix = []
    for run in line["_runs"]:
        by_id = {s["id"]: s["correct"] for s in map(json.loads, (planted / evals[run["final_row"]]["samples_file"])
                                                    .read_text().splitlines())}
        matrix.append([by_id[i] for i in sorted(by_id)])
    assert after["ci95"] == pytest.approx(seed_aggregate(matrix)["ci95"], abs=1e-12)
    assert line["acc after per seed"] == ", ".join(f"s{s}: {100 * v:.1f}" for s, v in zip((0, 1, 2), after["per_seed"]))
    md = (planted / "leaderboard.md").read_text()
    assert md.count("\n| full | ") == 3 and "| 3 |" in md and md.count("1 (single seed)") == 2


def test_single_seed_lines_draw_no_verdict_and_replicated_lines_do(planted):
    runs = read_rows(planted / "runs.jsonl", ())
    rows = write_leaderboard(planted, contamination=False)
    md = (planted / "leaderboard.md").read_text()
    assert "no verdict: both lines have one seed" in md and ": better" not in md
    for template in runs:  # three seeds for every configuration, each a few problems apart
        for seed, flips in ((1, 4), (2, 9)):
            _plant_seed(planted, template, seed=seed, flips=flips, start=100 * seed)
    rows = write_leaderboard(planted, contamination=False)
    md = (planted / "leaderboard.md").read_text()
    assert all(r["seeds"] == "3" for r in rows) and "no verdict" not in md
    assert md.count("not distinguishable (within noise)") + md.count(": better") == 2


@pytest.mark.integration
@pytest.mark.slow  # with the rebuild: the committed 3-seed results exercise aggregation in the default tier
def test_a_two_seed_sweep_aggregates_real_rows(tmp_path):
    """The tiny sweep with seed=0,1 (task.limit=40): one configuration, one line, two seeds."""
    tiny = ["trainer.num_rollout=2", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
            "trainer.global_batch_size=8", "trainer.save_interval=2", "trainer.kl_eval_prompts=16",
            "trainer.progress_bar=false", "task.limit=40"]
    cmd = [sys.executable, "-m", "suite.sweep", "-m", "seed=0,1", *tiny, f"results_dir={tmp_path}/results",
           f"runs_dir={tmp_path}/runs", f"hydra.sweep.dir={tmp_path}/multirun"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "results"
    runs = read_rows(results / "runs.jsonl", ())
    evals = {r["row_id"]: r for r in read_rows(results / "evals.jsonl")}
    assert sorted(r["seed"] for r in runs) == [0, 1] and len({r["run_name"] for r in runs}) == 2
    assert len({r["family_hash"] for r in runs}) == 1
    assert len({r["baseline_row"] for r in runs}) == 1 and len(evals) == 4  # greedy: one baseline for both seeds
    [line] = write_leaderboard(results, contamination=False)
    after = line["_line"]["strict"]["after"]
    assert after["per_seed"] == [evals[r["final_row"]]["accuracy"] for r in sorted(runs, key=lambda r: r["seed"])]
    assert after["mean"] == pytest.approx(sum(after["per_seed"]) / 2) and line["seeds"] == "2" and line["n"] == 40
    delta = line["_line"]["strict"]["delta"]
    assert delta["per_seed"] == pytest.approx([r["paired_delta"]["delta"] for r in sorted(runs, key=lambda r: r["seed"])])
    assert delta["ci95"][0] <= delta["mean"] <= delta["ci95"][1]
    table = list(csv.DictReader((results / "leaderboard.csv").open()))
    assert len(table) == 1 and table[0]["seed_values"] == "0 1"
