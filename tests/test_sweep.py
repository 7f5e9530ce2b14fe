# Run: pytest tests/test_sweep.py
"""`python -m suite.sweep` composes for every coefficient and runs end to end under both launchers."""

import csv
import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from suite.config import load_config
from suite.paths import REPO_ROOT
from suite.sweep import run_name

TINY = ["trainer.num_rollout=2", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
        "trainer.global_batch_size=8", "trainer.save_interval=2", "trainer.kl_eval_prompts=16",
        "trainer.progress_bar=false", "task.limit=40"]


@pytest.mark.parametrize("coef", ["0.5", "1", "2", "1.0"])
def test_sweep_composes_for_every_coefficient(coef):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = load_config(compose(config_name="sweep", overrides=[f"opd_kl_coef={coef}", "reward_scale=2"]))
    assert cfg.opd_kl_coef == float(coef) and cfg.reward_scale == 2.0
    assert f"-kl{float(coef):g}-rs2-" in run_name(cfg)


def test_run_names_differ_across_coefficients_and_agree_for_1_and_1_0():
    names = {}
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        for coef in ("0.5", "1", "1.0", "2"):
            names[coef] = run_name(load_config(compose(config_name="sweep", overrides=[f"opd_kl_coef={coef}"])))
    assert names["1"] == names["1.0"] and len(set(names.values())) == 3


@pytest.mark.integration
@pytest.mark.parametrize("launcher", [pytest.param("basic", marks=pytest.mark.slow), "parallel"])
def test_multirun_end_to_end(tmp_path, launcher):
    """The default launcher (parallel processes) in the default tier; the basic one with the rebuild."""
    cmd = [sys.executable, "-m", "suite.sweep", "-m", "opd_kl_coef=0.5,2", *TINY, f"hydra/launcher={launcher}",
           f"results_dir={tmp_path}/results", f"runs_dir={tmp_path}/runs", f"hydra.sweep.dir={tmp_path}/multirun"]
    if launcher == "parallel":
        cmd.append("hydra.launcher.n_jobs=2")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "results"
    runs = [json.loads(x) for x in (results / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["opd_kl_coef"] for r in runs) == [0.5, 2.0]
    evals = [json.loads(x) for x in (results / "evals.jsonl").read_text().splitlines()]
    baselines = {r["baseline_row"] for r in runs}
    assert len(baselines) == 1, "the baseline is scored once and shared"
    assert len(evals) == 4  # the student baseline and the teacher once each, one per run
    assert len({r["teacher_row"] for r in runs}) == 1
    for r in runs:
        d = r["paired_delta"]
        assert d["n"] == 40 and d["ci95"][0] <= d["delta"] <= d["ci95"][1]
        assert r["heldout_reverse_kl"]["before"] > 0 and r["heldout_reverse_kl"]["after"] > 0
    table = list(csv.DictReader((results / "leaderboard.csv").open()))
    assert sorted(row["opd_kl_coef"] for row in table) == ["0.5", "2"]
    md = (results / "leaderboard.md").read_text()
    assert "paired delta" in md and md.count("\n| full | ") == 2 and "## toy_arith v2: toy-teacher -> toy-student" in md
    assert (results / "leaderboard.html").exists() and len(list((results / "plots").glob("*.png"))) == 2
    assert len(list((results / "curves").glob("*.jsonl"))) == 2
