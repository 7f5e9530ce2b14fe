"""Bring results rows written before issue 11 up to date, in place, keeping every old value.

    python scripts/migrate_results.py [RESULTS_DIR]     # then: python -m suite.leaderboard [RESULTS_DIR]

Before issue 11, run names and config hashes included the repository's absolute path, eval keys knew
neither the eval rows' content nor the scoring code, and eval rows carried the strict scoring only.
For every such row this script:

* **run rows**: recomposes the run's config from its recorded ``command`` (the sweep's Hydra
  overrides), checks it against what the row recorded (trainer settings, coefficients, seed, model
  names, the weights sha256 of the baseline and teacher rows), and recomputes ``run_name``,
  ``run_dir``, ``config_hash``, ``family_hash`` and ``identity`` with the machine-free identity;
  ``results/curves/<old name>.jsonl`` is renamed to the new name;
* **eval rows**: rescores every stored response with both scorings (``suite.scoring.score_all``),
  refusing to go on if the strict results differ from the recorded ones (then the rows must be
  recomputed, not migrated); rewrites the samples file with the new fields; adds the ``flexible``
  summary, the task's current version, ``eval_rows_sha256``, ``scoring_version``, and recomputes
  ``eval_key`` and ``config_hash`` (a checkpoint, absent on this machine, keeps its recorded weights
  sha256); a checkpoint's name and path follow its run's new name.

Each changed row keeps the replaced values under ``migrated_from`` (an earlier migration's record
under ``migrated_from.previous``). Rows whose recomputed fields equal the recorded ones are left
alone, so running it twice changes nothing; after a change of the scoring code (whose fingerprint is
part of every eval key) it re-keys the eval rows, rescoring the stored responses. Generation and
training are never rerun: a row whose recorded command no longer composes the same run, whose
weights differ, or whose strict scores change is refused, and must be recomputed instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's suite, not another install

from suite.config import ModelConfig, SuiteConfig, compose_config, config_hash, family_hash, run_identity, weights_sha256  # noqa: E402
from suite.config import task_version  # noqa: E402
from suite.evaluation.harness import EVALS_FILE, eval_key, eval_rows_sha256, score_responses, summarize  # noqa: E402
from suite.paths import REPO_ROOT, RESULTS_DIR  # noqa: E402
from suite.reporting.leaderboard import RUNS_FILE  # noqa: E402
from suite.reporting.plots import CURVES_DIR  # noqa: E402
from suite.results import locked, read_rows, write_jsonl_atomic  # noqa: E402
from suite.scoring import SCORING_VERSION  # noqa: E402
from suite.sweep import run_name  # noqa: E402

ENTRY_POINTS = {"python -m suite.sweep": "sweep", "python -m suite.evaluate": "evaluate"}


class MigrationError(RuntimeError):
    """A recorded row that does not match what its own command composes; it must be recomputed instead."""


def compose_command(command: str) -> SuiteConfig:
    """The config a recorded ``python -m suite.sweep|evaluate OVERRIDES`` command composes today."""
    for prefix, config_name in ENTRY_POINTS.items():
        if command.startswith(prefix):
            overrides = [o for o in shlex.split(command[len(prefix):]) if not o.startswith(("-m", "hydra"))]
            return compose_config(config_name, overrides)
    raise MigrationError(f"command {command!r} is not a suite.sweep or suite.evaluate command; migrate it by hand")


def _check(ok: bool, row: dict, what: str) -> None:
    if not ok:
        raise MigrationError(f"row {row['row_id']}: {what}; its command no longer reproduces it, so it cannot be "
                             "migrated: rerun the command instead")


WHY = ("scripts/migrate_results.py: machine-free run identity (issue 11); eval keys with rows and scoring "
       "fingerprints; stored responses rescored with both scorings (task version 2)")


def _updated(row: dict, fresh: dict) -> dict | None:
    """``row`` with ``fresh`` fields and the replaced values under ``migrated_from``; None if nothing changes."""
    changed = [k for k, v in fresh.items() if row.get(k) != v]
    if not changed:
        return None
    record = {k: row[k] for k in changed if k in row}
    if "migrated_from" in row:
        record["previous"] = row["migrated_from"]
    return {**row, **fresh, "migrated_from": {**record, "why": WHY}}


def migrate_run(run: dict, evals: dict[str, dict]) -> dict | None:
    cfg = compose_command(run["command"])
    trainer = dataclasses.asdict(cfg.trainer)
    _check(all(trainer.get(k) == v for k, v in run["trainer"].items()), run, "recorded trainer settings differ")
    _check((cfg.opd_kl_coef, cfg.reward_scale, cfg.seed, cfg.task.name, cfg.teacher.name, cfg.student.name)
           == (run["opd_kl_coef"], run["reward_scale"], run["seed"], run["task"], run["teacher"], run["student"]),
           run, "recorded coefficients, seed, task or model names differ")
    for role, row_key in (("student", "baseline_row"), ("teacher", "teacher_row")):
        _check(weights_sha256(getattr(cfg, role).path) == evals[run[row_key]]["weights_sha256"], run,
               f"the {role} weights here differ from the ones its {row_key} scored")
    name = run_name(cfg)
    return _updated(run, {"run_name": name, "run_dir": f"outputs/runs/{name}", "config_hash": config_hash(cfg),
                          "family_hash": family_hash(cfg), "identity": run_identity(cfg),
                          "task_version": task_version(cfg.task.name)})


def _rescore_samples(results_dir: Path, row: dict) -> list[dict]:
    path = results_dir / row["samples_file"]
    samples = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = []
    for lineno, s in enumerate(samples, start=1):
        fresh = score_responses(s.get("responses") or [s["response"]], s["label"])
        _check((fresh["n_correct"], fresh["n_format_failures"]) == (s["n_correct"], s["n_format_failures"]), row,
               f"{path}:{lineno}: the strict scoring of the stored response differs from the recorded one")
        out.append({**s, **fresh})
    return out


def migrate_eval(results_dir: Path, row: dict, new_names: dict[str, str]) -> dict | None:
    samples = _rescore_samples(results_dir, row)
    summary = summarize(samples)
    _check(summary["correct"] == row["correct"] and summary["n"] == row["n"], row, "rescored totals differ")
    cfg = compose_command(row["command"])
    _check(cfg.seed == row["seed"] and cfg.task.name == row["task"], row, "recorded seed or task differs")
    model = dict(row["model"])
    if model["role"] == "checkpoint":
        run, _, rest = model["path"].removeprefix("outputs/runs/").partition("/")
        new_run = new_names.get(run, run)
        model.update(path=f"outputs/runs/{new_run}/{rest}", name=model["name"].replace(run, new_run, 1))
        path = str(REPO_ROOT / model["path"])
        spec = ModelConfig(**{**dataclasses.asdict(cfg.student), "name": model["name"], "path": path})
        cfg = dataclasses.replace(cfg, model=path)
    else:
        spec = getattr(cfg, model["role"])
        cfg = dataclasses.replace(cfg, model=model["role"])
        _check(weights_sha256(spec.path) == row["weights_sha256"], row, "the model's weights here differ")
    new = _updated(row, {**summary, "model": model, "task_version": task_version(row["task"]),
                         "eval_key": eval_key(cfg, spec, row["weights_sha256"]),
                         "config_hash": config_hash(cfg, {spec.path: row["weights_sha256"]}),
                         "eval_rows_sha256": eval_rows_sha256(cfg.task.name, cfg.task.source, cfg.task.limit),
                         "scoring_version": SCORING_VERSION})
    if new is not None:
        write_jsonl_atomic(results_dir / row["samples_file"], samples)
    return new


def migrate(results_dir: Path) -> tuple[int, int]:
    """Migrate ``results_dir`` in place; returns (run rows, eval rows) changed."""
    with locked(results_dir / ".eval.lock"), locked(results_dir / ".leaderboard.lock"):
        evals = read_rows(results_dir / EVALS_FILE)
        runs = read_rows(results_dir / RUNS_FILE, ())
        by_id = {r["row_id"]: r for r in evals}
        new_runs = [migrate_run(run, by_id) for run in runs]
        new_names = {old["run_name"]: new["run_name"] for old, new in zip(runs, new_runs)
                     if new is not None and new["run_name"] != old["run_name"]}
        new_evals = [migrate_eval(results_dir, r, new_names) for r in evals]
        for old, new in new_names.items():
            curve = results_dir / CURVES_DIR / f"{old}.jsonl"
            if curve.exists():
                os.replace(curve, results_dir / CURVES_DIR / f"{new}.jsonl")
        write_jsonl_atomic(results_dir / EVALS_FILE, [n or o for o, n in zip(evals, new_evals)], sort_keys=True)
        write_jsonl_atomic(results_dir / RUNS_FILE, [n or o for o, n in zip(runs, new_runs)], sort_keys=True)
    return sum(n is not None for n in new_runs), sum(n is not None for n in new_evals)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_DIR
    n_runs, n_evals = migrate(target)
    print(f"{target}: {n_runs} run rows and {n_evals} eval rows changed; now run `python -m suite.leaderboard {target}`")
