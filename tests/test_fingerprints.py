# Run: pytest tests/test_fingerprints.py
"""Fixing bad data invalidates what was computed from it (issue 10, item 1), reproduced for real.

In a copy of the repository (``OPD_SUITE_HOME``): damage a data file, evaluate or train on it,
restore the file, run again; the cached eval row and the trained run made from the damaged file are
not reused, while unchanged data still is.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from suite.paths import REPO_ROOT

pytestmark = pytest.mark.integration

TINY = ["trainer.num_rollout=2", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
        "trainer.global_batch_size=8", "trainer.save_interval=2", "trainer.kl_eval_prompts=8",
        "trainer.progress_bar=false", "task.limit=20"]
_CACHED_EVAL = """
import json, sys
from hydra import compose, initialize_config_dir
from suite.config import load_config
from suite.evaluation.harness import cached_eval
from suite.paths import REPO_ROOT
with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
    cfg = load_config(compose(config_name="sweep", overrides=sys.argv[1:]))
row = cached_eval(cfg, "teacher", "pytest")
print(json.dumps({k: row[k] for k in ("row_id", "accuracy", "eval_key", "eval_rows_sha256")}))
"""


@pytest.fixture
def home(tmp_path) -> Path:
    """A clone of what the toy sweep reads, so damaging its data leaves this checkout alone."""
    for part in ("conf", "tasks", "data/toy_arith", "artifacts/toy"):
        shutil.copytree(REPO_ROOT / part, tmp_path / "home" / part)
    return tmp_path / "home"


def _run(home: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPD_SUITE_HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _damage_labels(path: Path, first: int | None = None) -> bytes:
    """Shift the labels of the first ``first`` rows (all when None) by one; returns the original bytes."""
    original = path.read_bytes()
    rows = [json.loads(x) for x in original.decode().splitlines()]
    for r in rows[:first]:
        r["label"] = str(int(r["label"]) + 1)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return original


def test_eval_row_scored_on_damaged_rows_is_not_reused_after_the_fix(home, tmp_path):
    args = ["-c", _CACHED_EVAL, f"results_dir={tmp_path}/results", "task.limit=20"]
    eval_file = home / "data/toy_arith/eval.jsonl"
    original = _damage_labels(eval_file, first=20)
    damaged = json.loads(_run(home, args).stdout.splitlines()[-1])
    eval_file.write_bytes(original)  # the fix
    fixed = json.loads(_run(home, args).stdout.splitlines()[-1])
    again = json.loads(_run(home, args).stdout.splitlines()[-1])
    assert damaged["accuracy"] <= 0.1 and fixed["accuracy"] >= 0.85  # every damaged label is off by one
    assert fixed["row_id"] != damaged["row_id"] and fixed["eval_key"] != damaged["eval_key"]  # recomputed
    assert fixed["eval_rows_sha256"] != damaged["eval_rows_sha256"]
    assert again["row_id"] == fixed["row_id"]  # unchanged data: the cache still works
    rows = [json.loads(x) for x in (tmp_path / "results/evals.jsonl").read_text().splitlines()]
    assert [r["row_id"] for r in rows] == [damaged["row_id"], fixed["row_id"]]  # the damaged row is kept, not reused


def test_run_trained_on_damaged_rows_is_not_resumed_after_the_fix(home, tmp_path):
    args = ["-m", "suite.sweep", *TINY, f"results_dir={tmp_path}/results", f"runs_dir={tmp_path}/runs",
            f"hydra.run.dir={tmp_path}/hydra"]
    train_file = home / "data/toy_arith/train.jsonl"
    original = _damage_labels(train_file)  # every training label wrong: the reward teaches nonsense
    _run(home, args)
    train_file.write_bytes(original)  # the fix
    _run(home, args)
    runs = [json.loads(x) for x in (tmp_path / "results/runs.jsonl").read_text().splitlines()]
    assert len(runs) == 2
    damaged, fixed = runs
    assert fixed["run_name"] != damaged["run_name"], "the fixed data resumed the run trained on damaged rows"
    assert fixed["identity"]["task"]["train_rows_sha256"] != damaged["identity"]["task"]["train_rows_sha256"]
    assert fixed["final_row"] != damaged["final_row"]
    steps = [json.loads(x)["step"] for x in (tmp_path / "runs" / fixed["run_name"] / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # trained from scratch, not resumed from the damaged run's checkpoint
    # The eval rows did not change, so the baseline and the teacher rows are reused: the key is the data.
    assert (fixed["baseline_row"], fixed["teacher_row"]) == (damaged["baseline_row"], damaged["teacher_row"])
