# Run: pytest tests/test_bench_trl.py
"""The TRL benchmark (``python -m suite.bench trl``): its statistics against exact values, its refusals, the
message when trl is missing, and (where trl is installed) a two-step run end to end."""

import importlib.util
import json
import random
import subprocess
import sys

import pytest

from suite.bench import trl as bench_trl
from suite.config import ConfigError, compose_config
from suite.paths import REPO_ROOT

HAS_TRL = importlib.util.find_spec("trl") is not None
TINY = ["trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2", "trainer.global_batch_size=8",
        "trainer.rollout_max_response_len=16"]


def test_missing_trl_exits_with_the_install_command(monkeypatch):
    # A fake for a fault the shared venv cannot show when trl is installed: None in sys.modules makes
    # `import trl` raise ImportError exactly as an absent package does.
    from suite.bench.__main__ import main

    monkeypatch.setitem(sys.modules, "trl", None)
    with pytest.raises(SystemExit) as exc:
        main(["trl", "--steps", "1"])
    message = str(exc.value.code)
    assert "pip install -e .[bench]" in message and "DistillationTrainer" in message


def test_benchmark_modules_do_not_import_trl():
    code = "import sys, suite.bench.__main__, suite.bench.trl; print('trl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_median_interval_exact_order_statistics():
    # n=10: P(B<=1) = 11/1024 <= 0.025 < P(B<=2) = 56/1024, so (x_2, x_9) with coverage 1 - 22/1024.
    assert bench_trl.median_interval([float(x) for x in range(10, 0, -1)]) == (2.0, 9.0, 1 - 22 / 1024)
    # n=20: P(B<=5) = 21700/2^20 <= 0.025 < P(B<=6), so (x_6, x_15).
    lo, hi, coverage = bench_trl.median_interval([float(x) for x in range(1, 21)])
    assert (lo, hi) == (6.0, 15.0) and coverage == pytest.approx(1 - 2 * 21700 / 2**20, abs=1e-15)
    # Below 6 values no 95% interval exists: the range, with its own coverage 1 - 2^(1-n).
    assert bench_trl.median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0, 1 - 2 / 32)
    with pytest.raises(ValueError):
        bench_trl.median_interval([])


def test_step_summary_quartiles_and_iqr():
    s = bench_trl.step_summary([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s["n"], s["median"], s["q1"], s["q3"], s["iqr"], s["min"], s["max"]) == (5, 3.0, 2.0, 4.0, 2.0, 1.0, 5.0)
    assert s["median_ci95"] == [1.0, 5.0]
    one = bench_trl.step_summary([0.5])
    assert (one["median"], one["iqr"]) == (0.5, 0.0)


def test_ratio_summary_exact_cases():
    suite_s = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    exact = bench_trl.ratio_summary([2 * x for x in suite_s], suite_s)
    assert exact["ratio_of_medians"] == 2.0 and exact["ratio_of_medians_ci95"] == [2.0, 2.0]
    assert exact["median_paired_ratio"] == 2.0 and exact["median_paired_ratio_ci95"] == [2.0, 2.0]
    spread = bench_trl.ratio_summary([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    assert spread["ratio_of_medians"] == 2.5 and spread["median_paired_ratio"] == 2.5
    assert spread["median_paired_ratio_ci95"] == [1.0, 4.0] and spread["median_paired_ratio_ci_coverage"] == 1 - 2 / 16
    lo, hi = spread["ratio_of_medians_ci95"]
    assert 1.0 <= lo <= 2.5 <= hi <= 4.0
    assert bench_trl.ratio_summary([1.0, 2.0, 3.0, 4.0], [1.0] * 4) == spread  # seeded: the same interval again
    with pytest.raises(ValueError):
        bench_trl.ratio_summary([1.0], [1.0, 2.0])


def test_prompt_plan_is_the_trainers_next_draws_and_leaves_its_rng_alone():
    rows = [{"id": i} for i in range(50)]
    rng = random.Random(7)
    state = rng.getstate()
    plan = bench_trl.prompt_plan(rng, rows, 4, 3)
    assert rng.getstate() == state
    assert plan == [rng.sample(rows, 4) for _ in range(3)]  # what the trainer's rollout() draws, step by step


@pytest.mark.parametrize("override, key", [("trainer.opd_estimator=sampled", "trainer.opd_estimator"),
                                           ("trainer.global_batch_size=64", "trainer.global_batch_size"),
                                           ("trainer.micro_batch_size=48", "trainer.micro_batch_size"),
                                           ("trainer.distributed=fsdp", "trainer.distributed")])
def test_refuses_settings_where_the_two_sides_differ(override, key):
    with pytest.raises(ConfigError, match=key):
        bench_trl.check_comparable(compose_config("sweep", [override]))


@pytest.mark.skipif(not HAS_TRL, reason="needs trl: pip install -e .[bench]")
def test_two_steps_end_to_end_do_the_same_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    bench_trl.main(["--steps", "1", "--warmup", "1", "--out", str(tmp_path), *TINY, "trainer.rollout_engine=generate"])
    report = json.loads((tmp_path / "trl.json").read_text())
    work = report["same_work"]
    assert work["ok"], work["checks"]
    # Same RNG state, same prompts, same weights, both through generate: the same samples and the same KL.
    assert work["same_rng_step1"]["identical_samples"]
    assert work["same_rng_step1"]["trl_kl_own_samples"] == pytest.approx(work["same_rng_step1"]["suite_kl_exact"],
                                                                         rel=bench_trl.KL_REL_TOL)
    assert work["trl_generate"]["processors"] == [] and work["trl_generate"]["generation_config"]["top_k"] == 0
    assert [len(report["per_step"][side]) for side in ("suite", "trl")] == [2, 2]
    assert all(r["sequences"] == 8 for side in ("suite", "trl") for r in report["per_step"][side])
    assert report["ratio_trl_over_suite"]["n_pairs"] == 1 and report["ratio_trl_over_suite"]["ratio_of_medians"] > 0
    assert "opd_estimator=full" in report["computes"]["suite"] and "beta=1" in report["computes"]["trl"]
