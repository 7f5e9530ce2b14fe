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
import os
import shlex
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import hydra
from omegaconf import DictConfig

from suite.config import SuiteConfig, config_hash, family_hash, load_config, machine_free_path, run_identity
from suite.evaluation.harness import cached_eval, ensure_local_model
from suite.reporting.leaderboard import RUNS_FILE, paired_delta, write_leaderboard
from suite.results import SCHEMA_VERSION, append_row, locked, write_jsonl_atomic
from suite.reporting.plots import CURVES_DIR
from suite.serving.server import SGLangServer
from suite.slime.mapping import trainer_record
from suite.train import launch_distributed
from suite.training.compat import check_teacher_student
from suite.training.fit import read_data_report
from suite.training.heldout import cached_heldout_reverse_kl
from suite.training.run_clock import RunClock
from suite.training.trainer import OPDTrainer, make_teacher, read_metrics


INVOCATION_ENV = "OPD_SUITE_INVOCATION"


def run_name(cfg: SuiteConfig) -> str:
    """Readable and unique: the swept hyper-parameters, then the hash of everything else (machine-free:
    weights by sha256, training rows by fingerprint; see ``suite.config.run_identity``)."""
    t = cfg.trainer
    return (f"{cfg.task.name}-{cfg.student.name}-{t.opd_estimator}-kl{cfg.opd_kl_coef:g}-rs{cfg.reward_scale:g}"
            f"-s{cfg.seed}-{config_hash(cfg)[:6]}")


def run_job(cfg: SuiteConfig, command: str) -> dict | None:
    """One sweep point end to end; returns the run row it appended (None: a slime dry run wrote its plan)."""
    if cfg.trainer.name == "slime":  # slime trains (suite/slime); naming, scoring and the row are the same
        from suite.slime.runner import run_slime_job

        return run_slime_job(cfg, command, run_name, record_run)
    with RunClock(Path(cfg.runs_dir) / run_name(cfg)) as clock:  # time summed over resumed invocations
        return _run_job(cfg, command, clock)


def _run_job(cfg: SuiteConfig, command: str, clock: RunClock) -> dict:
    for model in (cfg.student, cfg.teacher):
        ensure_local_model(model)
    check_teacher_student(cfg)  # before any eval row: a mismatched pair stops here, not inside the KL
    before = cached_eval(cfg, "student", command)
    teacher_row = cached_eval(cfg, "teacher", command)
    run_dir = Path(cfg.runs_dir) / run_name(cfg)
    with contextlib.ExitStack() as stack:
        url = None
        if cfg.trainer.teacher_backend == "sglang":  # start the teacher's server for this job (or attach)
            url = stack.enter_context(SGLangServer(cfg.teacher, cfg.serve))
        teacher = make_teacher(cfg, url)
        kl_before = cached_heldout_reverse_kl(cfg, cfg.student.path, teacher, Path(cfg.results_dir))  # once a sweep
        with clock.training():
            if cfg.trainer.distributed == "fsdp":  # the ranks hold their own teachers (or share the server)
                served = dataclasses.replace(cfg, serve=dataclasses.replace(cfg.serve, url=url)) if url else cfg
                checkpoint = launch_distributed(served, run_dir)
            else:
                checkpoint = OPDTrainer(cfg, run_dir, teacher=teacher).train()
        kl_after = cached_heldout_reverse_kl(cfg, checkpoint, teacher, Path(cfg.results_dir))
    after = cached_eval(cfg, str(checkpoint), command)
    return record_run(cfg, run_dir, checkpoint, (before, after, teacher_row), (kl_before, kl_after), clock.totals(),
                      command)


def record_run(cfg: SuiteConfig, run_dir: Path, checkpoint: Path, evals: tuple[dict, dict, dict],
               kl: tuple[float, float], times: dict, command: str) -> dict:
    """Append the run row (paired statistics of ``evals`` = baseline, trained, teacher) and rewrite the
    leaderboard; shared by the local trainer and slime (suite/slime/runner.py). ``times``: wall and
    train seconds summed over the run's invocations (train_seconds None when unknown) and their count."""
    (before, after, teacher_row), (kl_before, kl_after) = evals, kl
    results_dir = Path(cfg.results_dir)
    metrics = read_metrics(run_dir)
    row = {
        "schema": SCHEMA_VERSION, "row_id": f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "kind": "run", "run_name": run_dir.name, "run_dir": machine_free_path(str(run_dir)), "checkpoint": checkpoint.name,
        "task": cfg.task.name, "task_version": after["task_version"], "teacher": cfg.teacher.name,
        "student": cfg.student.name, "opd_kl_coef": cfg.opd_kl_coef, "reward_scale": cfg.reward_scale,
        "trainer": trainer_record(cfg.trainer), "seed": cfg.seed, "config_hash": config_hash(cfg),
        "family_hash": family_hash(cfg), "identity": run_identity(cfg),  # replicates share family_hash
        "baseline_row": before["row_id"], "final_row": after["row_id"], "teacher_row": teacher_row["row_id"],
        "paired_delta": paired_delta(results_dir, before, after),
        "heldout_reverse_kl": {"before": kl_before, "after": kl_after, "prompts": min(cfg.trainer.kl_eval_prompts,
                                                                                        before["n"])},
        "train_reward": {"first": metrics[0]["reward"], "last": metrics[-1]["reward"]} if metrics else None,
        "data": read_data_report(run_dir),  # training rows used and left out (suite/training/fit.py)
        **times, "command": command, "invocation": os.environ.get(INVOCATION_ENV, command),
    }
    if metrics:  # slime logs its own metrics; the local trainer writes metrics.jsonl
        curves = results_dir / CURVES_DIR / f"{run_dir.name}.jsonl"
        curves.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl_atomic(curves, metrics)  # results/ alone can redraw the training curves (never a torn copy)
    with locked(results_dir / ".leaderboard.lock"):
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
