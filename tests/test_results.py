# Run: pytest tests/test_results.py
"""Results rows survive parallel writers and crashes; statistics match exact values; committed rows are
migrated to the machine-free identity and keep the values they replaced."""

import dataclasses
import json
import math
import multiprocessing as mp
import shlex

import pytest
from hydra import compose, initialize_config_dir

from suite.config import config_hash, family_hash, load_config, weights_sha256
from suite.evaluation.harness import eval_key
from suite.paths import REPO_ROOT, RESULTS_DIR
from suite.results import ResultsError, append_row, read_rows
from suite.sweep import run_name
from suite.stats import (bootstrap_mean_ci, mcnemar_exact_p, paired_bootstrap_ci, pass_at_k, seed_aggregate,
                         two_level_bootstrap_ci, two_level_bootstrap_diff_ci, wilson_interval)


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


# Seeds as replicates: the two-level bootstrap -------------------------------------------------------

# Planted: 3 seeds x 6 problems of paired differences (after - before); seed 2 is the unlucky one.
PLANTED_S_N = [[1, 0, 1, 0, 0, 1], [1, 1, 0, 0, 1, 0], [0, -1, 0, 0, -1, 0]]


def _naive_two_level(values_S_N, iters, seed, level=0.95):
    """The same two-level bootstrap written as plain loops (the same random draws, in the same order)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    S, n = len(values_S_N), len(values_S_N[0])
    problems = rng.integers(0, n, size=(iters, n))
    seeds = rng.integers(0, S, size=(iters, S))
    means = []
    for b in range(iters):
        per_seed = [sum(values_S_N[s][i] for i in problems[b]) / n for s in seeds[b]]
        means.append(sum(per_seed) / S)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, 1 - (1 - level) / 2))


def test_seed_aggregate_exact_values_on_a_planted_example():
    agg = seed_aggregate(PLANTED_S_N)
    assert agg["per_seed"] == pytest.approx([3 / 6, 3 / 6, -2 / 6])
    assert agg["mean"] == pytest.approx((3 + 3 - 2) / 18) and (agg["seeds"], agg["n"]) == (3, 6)
    assert agg["ci95"] == pytest.approx(list(_naive_two_level(PLANTED_S_N, 10_000, 0)), abs=1e-12)
    assert two_level_bootstrap_ci(PLANTED_S_N, iters=300, seed=7) == \
        pytest.approx(_naive_two_level(PLANTED_S_N, 300, 7), abs=1e-12)


def test_two_level_with_one_seed_is_the_paired_bootstrap_exactly():
    before = [0] * 70 + [1] * 30
    after = [0] * 55 + [1] * 45
    diff = [a - b for a, b in zip(after, before)]
    assert two_level_bootstrap_ci([diff]) == paired_bootstrap_ci(before, after)  # replicate for replicate
    assert two_level_bootstrap_ci([after]) == bootstrap_mean_ci(after)
    assert two_level_bootstrap_diff_ci([before], [after]) == pytest.approx(paired_bootstrap_ci(before, after), abs=1e-12)


def test_two_level_without_training_variance_is_the_one_level_interval():
    diff = [1, 0, 0, 1, -1, 0, 1, 1, 0, 0] * 10
    one_level = two_level_bootstrap_ci([diff])
    assert two_level_bootstrap_ci([diff, diff, diff]) == pytest.approx(one_level, abs=1e-12)


def test_two_level_without_problem_variance_is_the_bootstrap_over_seeds():
    # Each seed's values are constant: replicates are means of 2 seeds drawn from {0.1, 0.3}: 0.1, 0.2 or 0.3.
    lo, hi = two_level_bootstrap_ci([[0.1] * 50, [0.3] * 50])
    assert (lo, hi) == pytest.approx((0.1, 0.3), abs=1e-12)


def test_two_level_interval_covers_training_variance_that_the_one_level_one_misses():
    import numpy as np

    rng = np.random.default_rng(3)
    per_seed_shift = [0.15, 0.05, -0.05]  # three trainings of one configuration that disagree
    rows = [(rng.random(500) < 0.4 + shift).astype(int).tolist() for shift in per_seed_shift]
    pooled = sum(rows, [])
    lo1, hi1 = bootstrap_mean_ci(pooled)  # problems only, as if 1,500 independent problems
    lo2, hi2 = two_level_bootstrap_ci(rows)
    assert hi2 - lo2 > 2 * (hi1 - lo1)
    assert lo2 <= sum(pooled) / len(pooled) <= hi2


def test_two_level_refuses_ragged_matrices():
    with pytest.raises(ValueError, match="one value per problem"):
        two_level_bootstrap_ci([[1, 0], [1]])
    with pytest.raises(ValueError, match="same problems"):
        two_level_bootstrap_diff_ci([[1, 0]], [[1, 0, 1]])


# Committed results: migrated to the machine-free identity, old values kept ---------------------------

STALE = ("results/ no longer matches what its recorded commands compute here (a config default, the data, the "
         "weights or the scoring code changed since): rerun the sweep (`make demo`), or, if only the scoring code or "
         "the identity rules changed, `python scripts/migrate_results.py`")


def test_committed_runs_have_the_names_a_fresh_clone_computes():
    runs = read_rows(RESULTS_DIR / "runs.jsonl", ())
    evals = {r["row_id"]: r for r in read_rows(RESULTS_DIR / "evals.jsonl")}
    assert runs
    for run in runs:
        overrides = shlex.split(run["command"].removeprefix("python -m suite.sweep"))
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            cfg = load_config(compose(config_name="sweep", overrides=overrides))
        assert (run["run_name"], run["config_hash"], run["family_hash"]) == \
            (run_name(cfg), config_hash(cfg), family_hash(cfg)), STALE
        for role, row_key in (("student", "baseline_row"), ("teacher", "teacher_row")):  # a fresh clone reuses them
            model = getattr(cfg, role)
            key = eval_key(dataclasses.replace(cfg, model=role), model, weights_sha256(model.path))
            assert evals[run[row_key]]["eval_key"] == key, STALE
        old = run.get("migrated_from")
        if old:  # the name it replaced (it held the absolute path of the machine it ran on) is kept
            assert old["run_name"] != run["run_name"]
            assert old["run_name"].rsplit("-", 1)[0] == run["run_name"].rsplit("-", 1)[0]  # only the hash moved
            first = evals[run["final_row"]]["migrated_from"]
            while "previous" in first:  # migrated more than once: the oldest record holds the original version
                first = first["previous"]
            assert first["task_version"] == 1
