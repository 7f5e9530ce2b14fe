"""One ``trainer=slime`` sweep point: write the plan; unless it is a dry run, run it and bring slime's
checkpoints back into the suite.

``suite.sweep.run_job`` calls :func:`run_slime_job` and hands it its own ``run_name`` and ``record_run``,
so a slime run is named, scored and recorded exactly like a local one: the baseline and the teacher
through the same cached lm-eval rows; every iteration slime saved converted to HF with slime's
``tools/convert_torch_dist_to_hf.py`` (into ``<run>/checkpoints/step_<iteration + 1>``, as the local
trainer names its checkpoints) and scored through the same lm-eval path; the held-out reverse KL
before and after; the run row (paired statistics against the baseline) from ``record_run``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from suite.config import SuiteConfig
from suite.evaluation.harness import cached_eval, ensure_local_model
from suite.paths import REPO_ROOT
from suite.serving.server import SGLangServer
from suite.slime.plan import (SlimeNotFound, SlimePlan, build_plan, check_flags, converter_command, find_slime,
                              is_dry_run, not_found_message, write_plan)
from suite.training.heldout import cached_heldout_reverse_kl
from suite.training.trainer import make_teacher

TRACKER = "latest_checkpointed_iteration.txt"  # Megatron writes it once an iteration's save is complete
ITER_RE = re.compile(r"iter_(\d{7})$")


def saved_iterations(save_dir: Path | str) -> list[tuple[int, Path]]:
    """slime's complete saved iterations, oldest first: ``iter_NNNNNNN`` directories up to the tracker's
    iteration that hold torch_dist's ``.metadata`` and ``common.pt`` (what the converter reads)."""
    save_dir = Path(save_dir)
    tracker = save_dir / TRACKER
    if not tracker.is_file():
        return []
    text = tracker.read_text().strip()
    if not text.isdigit():
        raise ValueError(f"{tracker}: expected an iteration number, got {text!r} (a converted checkpoint, not a "
                         "training run's iterations); move it away or use a fresh run directory")
    found = []
    for path in save_dir.iterdir():
        match = ITER_RE.match(path.name)
        complete = (path / ".metadata").is_file() and (path / "common.pt").is_file()
        if match and int(match.group(1)) <= int(text) and complete:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _tee(argv: list[str], log: Path, **kwargs) -> int:
    """Run ``argv``, its output both to our stdout and to ``log``; returns the exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                                **kwargs) as proc:
        for line in proc.stdout:  # type: ignore[union-attr]
            sys.stdout.write(line)
            fh.write(line)
        return proc.wait()


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def launch(cfg: SuiteConfig, plan: SlimePlan) -> float | None:
    """Run ``plan.sh`` unless slime already saved the last iteration; returns the training seconds it recorded."""
    saved = saved_iterations(plan.paths.save)
    if not saved or saved[-1][0] < cfg.trainer.num_rollout - 1:
        log = plan.dir / "plan.log"
        print(f"running {plan.dir / 'plan.sh'} (log {log})", flush=True)
        code = _tee(["bash", str(plan.dir / "plan.sh")], log, cwd=REPO_ROOT)
        if code != 0:
            raise RuntimeError(f"{plan.dir / 'plan.sh'} exited with code {code}; log {log}:\n{_tail(log)}")
    seconds = plan.dir / "train_seconds.txt"
    return float(seconds.read_text()) if seconds.is_file() else None


def origin_hf_dir(cfg: SuiteConfig, plan: SlimePlan) -> str:
    """The student's HF directory (a hub id: the snapshot plan.sh resolved)."""
    if Path(cfg.student.path).is_dir():
        return str(Path(cfg.student.path).resolve())
    resolved = plan.dir / "hf_checkpoint.txt"
    if not resolved.is_file():
        raise FileNotFoundError(f"{resolved} is missing: plan.sh writes it when it resolves {cfg.student.path}; "
                                f"run {plan.dir / 'plan.sh'} first")
    return resolved.read_text().strip()


def convert_iterations(cfg: SuiteConfig, plan: SlimePlan) -> list[Path]:
    """Each saved iteration as an HF checkpoint (converted once, written to a temp name and renamed)."""
    saved = saved_iterations(plan.paths.save)
    if not saved:
        raise RuntimeError(f"slime saved no complete iteration under {plan.paths.save} (no {TRACKER}); "
                           f"see {plan.dir / 'plan.log'}")
    env = {**os.environ, "PYTHONPATH": f"{cfg.trainer.slime.megatron_dir}:{plan.slime_dir}"}
    out = []
    for iteration, iter_dir in saved:
        final = plan.run_dir / "checkpoints" / f"step_{iteration + 1:06d}"
        if not ((final / "config.json").is_file() and any(final.glob("*.safetensors"))):
            tmp = final.with_name(f".tmp_{final.name}")
            shutil.rmtree(tmp, ignore_errors=True)
            argv = converter_command(cfg, plan, str(iter_dir), str(tmp), origin_hf_dir(cfg, plan))
            log = plan.dir / f"convert-{iter_dir.name}.log"
            code = _tee(argv, log, cwd=plan.slime_dir, env=env)
            if code != 0 or not (tmp / "config.json").is_file():
                raise RuntimeError(f"converting {iter_dir} failed (exit {code}): {' '.join(argv)}; log {log}:\n"
                                   f"{_tail(log)}")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        out.append(final)
    return out


def heldout_kl_before_after(cfg: SuiteConfig, checkpoint: Path) -> tuple[float, float]:
    """The held-out reverse KL of the student before and after, with the suite's teacher backend."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(SGLangServer(cfg.teacher, cfg.serve)) if cfg.trainer.teacher_backend == "sglang" \
            else None
        teacher = make_teacher(cfg, url)
        results = Path(cfg.results_dir)
        return (cached_heldout_reverse_kl(cfg, cfg.student.path, teacher, results),
                cached_heldout_reverse_kl(cfg, checkpoint, teacher, results))


def summary(cfg: SuiteConfig, plan: SlimePlan, info: dict) -> str:
    s = cfg.trainer.slime
    engines = s.rollout_num_gpus // s.rollout_num_gpus_per_engine
    teacher = (f"teacher on GPU {s.teacher_gpu} ({cfg.teacher.path}, SGLang)" if plan.teacher_argv
               else f"teacher attached at {info['teacher']['url']}")
    return "\n".join([
        f"slime plan for {plan.run_dir.name}: {plan.dir / 'plan.sh'}",
        f"  data: {info['data']['rows']} rows of {cfg.task.name}'s train split (eval rows excluded) -> "
        f"{info['data']['path']}",
        f"  GPUs: actor {s.actor_num_nodes}x{s.actor_num_gpus_per_node} (TP {s.tensor_model_parallel_size}), rollout "
        f"{s.rollout_num_gpus} ({engines} SGLang engines x {s.rollout_num_gpus_per_engine})"
        f"{', colocated' if s.colocate else ''}; {teacher}",
        f"  flags checked against {info['checked_against'].get('slime')}",
    ])


def run_slime_job(cfg: SuiteConfig, command: str, run_name: Callable[[SuiteConfig], str],
                  record_run: Callable[..., dict]) -> dict | None:
    """One sweep point on slime; returns the run row, or None for a dry run (the plan is written and printed)."""
    slime_dir = find_slime(cfg)
    dry_run = is_dry_run(cfg, slime_dir)
    run_dir = Path(cfg.runs_dir) / run_name(cfg)
    plan = build_plan(cfg, run_dir, slime_dir)
    check_flags(plan, cfg)
    info = write_plan(cfg, plan)
    print(summary(cfg, plan, info), flush=True)
    if dry_run:
        print(plan.script)
        why = "trainer.slime.dry_run=true" if slime_dir else "slime not found here"
        print(f"dry run ({why}): nothing launched. On the slime machine: bash {plan.dir / 'plan.sh'}, then "
              "the same command with trainer.slime.dry_run=false converts and scores slime's iterations "
              "(or run that command alone: it runs the plan first).", flush=True)
        return None
    if slime_dir is None:
        raise SlimeNotFound(not_found_message(plan.dir / "plan.sh"))
    start = time.time()
    for model in (cfg.student, cfg.teacher):
        ensure_local_model(model)
    before = cached_eval(cfg, "student", command)
    teacher_row = cached_eval(cfg, "teacher", command)
    train_seconds = launch(cfg, plan)
    checkpoints = convert_iterations(cfg, plan)
    rows = [cached_eval(cfg, str(c), command) for c in checkpoints]
    for checkpoint, row in zip(checkpoints, rows):
        print(f"{checkpoint.name}: acc {row['accuracy']:.3f} (n={row['n']})", flush=True)
    kl = heldout_kl_before_after(cfg, checkpoints[-1])
    times = {"wall_seconds": round(time.time() - start, 1),
             "train_seconds": None if train_seconds is None else round(train_seconds, 1), "invocations": 1}
    return record_run(cfg, run_dir, checkpoints[-1], (before, rows[-1], teacher_row), kl, times, command)
