# Run: pytest tests/test_leaderboard.py
"""The leaderboard regenerates from results/ alone: md, csv, html (sortable, with provenance), plots."""

import csv
import html
import re
import shutil

import pytest

from suite.reporting.contamination import overlap_report
from suite.data import near_duplicates
from suite.reporting.leaderboard import write_leaderboard
from suite.paths import RESULTS_DIR
from suite.results import read_rows


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    results = tmp_path_factory.mktemp("lb") / "results"
    shutil.copytree(RESULTS_DIR, results, ignore=shutil.ignore_patterns("leaderboard.*", "plots"))
    rows = write_leaderboard(results)
    return results, rows


def test_every_recorded_run_is_a_row_with_n_and_intervals(rebuilt):
    results, rows = rebuilt
    runs = read_rows(results / "runs.jsonl", ())
    assert len(rows) == len({r["run_name"] for r in runs}) > 0
    table = list(csv.DictReader((results / "leaderboard.csv").open()))
    for row in table:
        assert int(row["n"]) >= 100
        for col in ("acc before [95% CI]", "acc after [95% CI]", "paired delta [95% CI]", "teacher acc [95% CI]"):
            assert re.fullmatch(r"[+-]?\d+\.\d \[[+-]?\d+\.\d, [+-]?\d+\.\d\]", row[col]), (col, row[col])
        assert row["command"].startswith("python -m suite.sweep") and "temperature" in row["sampling"]


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
        run = r["_run"]
        assert f'href="#run-{run["row_id"]}"' in page and f'id="run-{run["row_id"]}"' in page
        for text in (run["command"], '"task_version"', '"sampling"', '"temperature"'):
            assert html.escape(text) in page, text


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
