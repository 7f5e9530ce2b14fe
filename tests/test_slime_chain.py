# Run: pytest tests/test_slime_chain.py
"""A slime run end to end, with a stand-in for slime (tests/slime_standin: slime cannot run on a CPU):
plan -> launch (bash plan.sh, `ray job submit ... train.py`) -> slime's saved iterations -> slime's
converter -> lm-eval on each checkpoint (real lm-eval, the toy student) -> a run row in results/runs.jsonl
like a local run's -> the leaderboard."""

import csv
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from suite.paths import REPO_ROOT

STANDIN = REPO_ROOT / "tests" / "slime_standin"


class _Health(BaseHTTPRequestHandler):
    """The teacher's /health, which the plan waits for (the stand-in slime never calls the teacher)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.integration
def test_slime_run_lands_in_the_results_like_a_local_run(tmp_path, teacher_url):
    overrides = [
        "trainer=slime", "trainer.slime.dry_run=false", f"trainer.slime.python={sys.executable}",
        "trainer.slime.model_args_script=scripts/models/toy.sh", f"serve.url={teacher_url}",
        "trainer.num_rollout=4", "trainer.save_interval=2", "trainer.rollout_batch_size=4",
        "trainer.n_samples_per_prompt=2", "trainer.global_batch_size=8", "trainer.device=cpu",
        "trainer.kl_eval_prompts=8", "trainer.rollout_max_response_len=48", "trainer.progress_bar=false",
        "trainer.advantage_mode=group_norm", "reward_scale=2", "task.limit=20",
    ]
    env = {**os.environ, "SLIME_DIR": str(STANDIN), "PATH": f"{STANDIN / 'bin'}:{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "suite.sweep", *overrides, f"runs_dir={tmp_path}/runs",
                           f"results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/hydra"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout

    # launch: the plan ran the stand-in through `ray job submit`, with the reward hook's environment
    assert "[ray stand-in] job:" in out and "reward hook: raw [1.0, -1.0] -> [1.4142" in out
    assert "OPD_SUITE_ADVANTAGE_MODE=group_norm" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    save = run_dir / "slime" / "torch_dist"
    assert sorted(p.name for p in save.glob("iter_*")) == ["iter_0000001", "iter_0000003"]  # slime's save points

    # conversion: each iteration became an HF checkpoint, named as the local trainer names them
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["step_000002", "step_000004"]
    assert (run_dir / "slime" / "convert-iter_0000003.log").read_text().startswith("[slime stand-in] converted")

    # scoring: the baseline, the teacher and both checkpoints through the same lm-eval path
    results = tmp_path / "results"
    evals = [json.loads(x) for x in (results / "evals.jsonl").read_text().splitlines()]
    assert sorted(e["model"]["name"] for e in evals) == sorted(
        ["toy-student", "toy-teacher", f"{run_dir.name}/step_000002", f"{run_dir.name}/step_000004"])
    assert all(e["n"] == 20 and e["lm_eval_version"] for e in evals)

    # the run row: the same columns as a local run's, the last checkpoint against the baseline
    (row,) = [json.loads(x) for x in (results / "runs.jsonl").read_text().splitlines()]
    local_columns = {"schema", "row_id", "kind", "run_name", "run_dir", "checkpoint", "task", "task_version", "teacher",
                     "student", "opd_kl_coef", "reward_scale", "trainer", "seed", "config_hash", "baseline_row",
                     "final_row", "teacher_row", "paired_delta", "heldout_reverse_kl", "train_reward", "train_seconds",
                     "wall_seconds", "invocations", "data", "command", "invocation", "family_hash", "identity"}
    assert set(row) == local_columns
    by_id = {e["row_id"]: e for e in evals}
    assert row["run_name"] == run_dir.name and row["checkpoint"] == "step_000004"
    assert by_id[row["final_row"]]["model"]["name"].endswith("step_000004")
    assert by_id[row["baseline_row"]]["model"]["role"] == "student" and by_id[row["teacher_row"]]["model"]["role"] \
        == "teacher"
    d = row["paired_delta"]
    assert d["n"] == 20 and d["ci95"][0] <= d["delta"] <= d["ci95"][1] and 0 <= d["mcnemar_p"] <= 1
    assert row["heldout_reverse_kl"]["before"] > 0 and row["heldout_reverse_kl"]["after"] > 0
    assert row["trainer"]["name"] == "slime" and row["trainer"]["slime.colocate"] is True
    assert row["reward_scale"] == 2.0 and row["train_seconds"] is not None
    assert run_dir.name.endswith(row["config_hash"][:6])  # the row's config is the run directory's
    table = list(csv.DictReader((results / "leaderboard.csv").open()))
    assert [r["runs"] for r in table] == [run_dir.name]
