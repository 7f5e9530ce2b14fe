# Run: pytest tests/test_results.py
"""Results rows survive parallel writers and crashes; statistics match exact values."""

import json
import math
import multiprocessing as mp

import pytest

from suite.results import ResultsError, append_row, read_rows
from suite.stats import bootstrap_mean_ci, mcnemar_exact_p, paired_bootstrap_ci, pass_at_k, wilson_interval


def _writer(path, worker, count):
    for i in range(count):
        append_row(path, {"worker": worker, "i": i, "pad": "x" * 5000})


def test_parallel_writers_never_interleave_or_lose_rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    rows = read_rows(path, required=("worker", "i"))
    assert len(rows) == 200 and {(r["worker"], r["i"]) for r in rows} == {(w, i) for w in range(4) for i in range(50)}


def test_torn_row_from_a_crash_is_set_aside_and_earlier_rows_survive(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_row(path, {"a": 1})
    with open(path, "a") as f:
        f.write('{"a": 2, "half')  # a writer killed mid-row
    append_row(path, {"a": 3})
    assert [r["a"] for r in read_rows(path, required=("a",))] == [1, 3]
    assert (tmp_path / "rows.jsonl.partial").read_text() == '{"a": 2, "half\n'


def test_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "evals.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\nnot json\n")
    with pytest.raises(ResultsError, match=r"evals\.jsonl:2: not JSON"):
        read_rows(path, required=("a",))
    path.write_text(json.dumps({"a": 1}) + "\n")
    with pytest.raises(ResultsError, match=r"evals\.jsonl:1: row lacks \['b'\]"):
        read_rows(path, required=("a", "b"))


def test_wilson_interval_exact_values():
    lo, hi = wilson_interval(143, 500)
    assert (round(lo, 4), round(hi, 4)) == (0.2481, 0.3271)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_pass_at_k_exact_values():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 2) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))  # 0.7
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_mcnemar_exact_values():
    before, after = [0] * 10 + [1] * 5, [1] * 10 + [1] * 5  # 10 improved, 0 worsened
    assert mcnemar_exact_p(before, after) == pytest.approx(2 / 2**10)
    assert mcnemar_exact_p([1, 0], [1, 0]) == 1.0
    assert mcnemar_exact_p([0.5], [1.0]) is None


def test_bootstrap_intervals_cover_their_estimates():
    before = [0] * 70 + [1] * 30
    after = [0] * 55 + [1] * 45
    lo, hi = paired_bootstrap_ci(before, after)
    assert lo < 0.15 < hi and lo > 0  # 15 more problems right out of 100, all in one direction
    lo, hi = bootstrap_mean_ci([0.0, 0.5, 1.0, 1.0])
    assert 0 <= lo < 0.625 < hi <= 1
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1], [1, 0])
