"""One OPD job per Hydra multirun point: baseline, train, score, append, regenerate the leaderboard.

    python -m suite.sweep -m opd_kl_coef=0.5,1,2
    python -m suite.sweep -m opd_kl_coef=0.5,1,2 reward_scale=1,2
    python -m suite.sweep -m opd_kl_coef=0.5,1,2 hydra/launcher=joblib   # jobs in parallel

Per job: make sure the toy world exists (when the models are the toy ones); score the baseline
student through lm-eval once (cached by weights hash + task version + sampling); train (resuming an
interrupted run of the same config); score the last checkpoint through the same lm-eval path;
measure the per-token reverse KL to the teacher on held-out prompts before and after; append a run
row to ``results/runs.jsonl`` and rewrite ``results/leaderboard.md`` / ``.csv``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shlex
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from suite.config import SuiteConfig, config_hash, load_config
from suite.data import eval_rows
from suite.evaluate import EVALS_FILE, display_path, ensure_local_model, eval_key, evaluate, resolve_model, weights_sha256
from suite.leaderboard import RUNS_FILE, paired_delta, write_leaderboard
from suite.results import SCHEMA_VERSION, append_row, read_rows
from suite import opd_math
from suite.rollout import response_logprobs, sample_rollouts, token_logprobs
from suite.plots import CURVES_DIR
from suite.serve import SGLangServer
from suite.trainer import METRICS_FILE, OPDTrainer, make_teacher, read_metrics


INVOCATION_ENV = "OPD_SUITE_INVOCATION"


def run_name(cfg: SuiteConfig) -> str:
    """Readable and unique: the swept hyper-parameters, then the hash of everything else."""
    t = cfg.trainer
    return (f"{cfg.task.name}-{cfg.student.name}-{t.opd_estimator}-kl{cfg.opd_kl_coef:g}-rs{cfg.reward_scale:g}"
            f"-s{cfg.seed}-{config_hash(cfg)[:6]}")


@contextmanager
def _locked(path: Path):
    """An exclusive lock across sweep processes (joblib launcher), held while the body runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def cached_eval(cfg: SuiteConfig, model: str, command: str) -> dict:
    """The eval row of ``model`` (teacher, student or a checkpoint), reused when one with the same eval key exists."""
    results_dir = Path(cfg.results_dir)
    model_cfg = dataclasses.replace(cfg, model=model)
    _, spec = resolve_model(model_cfg)
    with _locked(results_dir / ".eval.lock"):
        key = eval_key(model_cfg, spec, weights_sha256(spec.path))
        cached = [r for r in read_rows(results_dir / EVALS_FILE) if r["eval_key"] == key]
        if cached:
            print(f"{spec.name}: reusing eval {cached[-1]['row_id']} (acc {cached[-1]['accuracy']:.3f}, n={cached[-1]['n']})")
            return cached[-1]
        return evaluate(model_cfg, command=command)


@torch.no_grad()
def heldout_reverse_kl(cfg: SuiteConfig, model_path: str | Path, teacher) -> float:
    """Per-token reverse KL(student || teacher) on the student's own T=1 samples of held-out prompts.

    Exact over the vocabulary when the teacher returns full distributions, else the sampled-token
    estimate. Only a measurement: nothing here trains, so using eval prompts leaks nothing.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, cfg.student.dtype))
    model = model.to(cfg.trainer.device).eval()
    tok = AutoTokenizer.from_pretrained(model_path)
    rows = eval_rows(cfg.task.name, cfg.task.source)[: cfg.trainer.kl_eval_prompts]
    torch.manual_seed(cfg.seed + 12345)
    total, tokens = 0.0, 0.0
    for lo in range(0, len(rows), 128):
        batch = sample_rollouts(model, tok, [r["prompt"] for r in rows[lo : lo + 128]], 1.0,
                                cfg.trainer.rollout_max_response_len, cfg.student.enable_thinking)
        t_scores = teacher.score(batch, full=cfg.trainer.teacher_backend == "hf")
        logp_B_T_V = response_logprobs(model, batch)
        if t_scores.logp_full_B_T_V is not None:
            kl_B_T = opd_math.exact_reverse_kl(logp_B_T_V, t_scores.logp_full_B_T_V)
        else:
            kl_B_T = opd_math.sampled_reverse_kl(token_logprobs(logp_B_T_V, batch.response_ids_B_T), t_scores.logp_B_T)
        total += (kl_B_T * batch.response_mask_B_T).sum().item()
        tokens += batch.response_mask_B_T.sum().item()
    return total / max(tokens, 1.0)


def run_job(cfg: SuiteConfig, command: str) -> dict:
    """One sweep point end to end; returns the run row it appended."""
    start = time.time()
    for model in (cfg.student, cfg.teacher):
        ensure_local_model(model)
    before = cached_eval(cfg, "student", command)
    teacher_row = cached_eval(cfg, "teacher", command)
    run_dir = Path(cfg.runs_dir) / run_name(cfg)
    with contextlib.ExitStack() as stack:
        url = None
        if cfg.trainer.teacher_backend == "sglang":  # start the teacher's server for this job (or attach)
            url = stack.enter_context(SGLangServer(cfg.teacher, cfg.serve))
        teacher = make_teacher(cfg, url)
        kl_before = heldout_reverse_kl(cfg, cfg.student.path, teacher)
        train_start = time.time()
        checkpoint = OPDTrainer(cfg, run_dir, teacher=teacher).train()
        train_seconds = time.time() - train_start
        kl_after = heldout_reverse_kl(cfg, checkpoint, teacher)
    after = cached_eval(cfg, str(checkpoint), command)
    results_dir = Path(cfg.results_dir)
    metrics = read_metrics(run_dir)
    row = {
        "schema": SCHEMA_VERSION, "row_id": f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "kind": "run", "run_name": run_dir.name, "run_dir": display_path(str(run_dir)), "checkpoint": checkpoint.name,
        "task": cfg.task.name, "task_version": after["task_version"], "teacher": cfg.teacher.name,
        "student": cfg.student.name, "opd_kl_coef": cfg.opd_kl_coef, "reward_scale": cfg.reward_scale,
        "trainer": dataclasses.asdict(cfg.trainer), "seed": cfg.seed, "config_hash": config_hash(cfg),
        "baseline_row": before["row_id"], "final_row": after["row_id"], "teacher_row": teacher_row["row_id"],
        "paired_delta": paired_delta(results_dir, before, after),
        "heldout_reverse_kl": {"before": kl_before, "after": kl_after, "prompts": min(cfg.trainer.kl_eval_prompts,
                                                                                        before["n"])},
        "train_reward": {"first": metrics[0]["reward"], "last": metrics[-1]["reward"]} if metrics else None,
        "train_seconds": round(train_seconds, 1), "wall_seconds": round(time.time() - start, 1), "command": command,
        "invocation": os.environ.get(INVOCATION_ENV, command),
    }
    curves = results_dir / CURVES_DIR / f"{run_dir.name}.jsonl"
    curves.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / METRICS_FILE, curves)  # results/ alone can redraw the training curves
    with _locked(results_dir / ".leaderboard.lock"):
        append_row(results_dir / RUNS_FILE, row)
        write_leaderboard(results_dir)
    d = row["paired_delta"]
    print(f"{row['run_name']}: acc {before['accuracy']:.3f} -> {after['accuracy']:.3f}, delta {d['delta']:+.3f} "
          f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], reverse KL {kl_before:.3f} -> {kl_after:.3f}, "
          f"{row['wall_seconds']:.0f}s")
    return row


@hydra.main(version_base="1.3", config_path="../conf", config_name="sweep")
def main(dict_cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    run_job(load_config(dict_cfg), command="python -m suite.sweep " + shlex.join(HydraConfig.get().overrides.task))


if __name__ == "__main__":
    # The whole multirun command line, visible to every job (joblib workers inherit the environment).
    os.environ.setdefault(INVOCATION_ENV, "python -m suite.sweep " + shlex.join(sys.argv[1:]))
    main()
