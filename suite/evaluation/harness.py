"""Score a checkpoint on a task through lm-eval; append one results row, write its samples beside it.

    python -m suite.evaluate                          # toy student on toy_arith, greedy
    python -m suite.evaluate -m model=teacher,student
    python -m suite.evaluate model=outputs/run/ckpt task=gsm8k

Baselines and OPD checkpoints go through this same path, so their numbers are comparable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
import uuid
import dataclasses
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from suite.config import (ModelConfig, SuiteConfig, config_hash, machine_free_path, task_version,
                          weights_sha256)
from suite.data import eval_rows, eval_rows_sha256, skipped_rows
from suite.evaluation.context_budget import describe_budget, generation_budget
from suite.paths import TASKS_DIR, TOY_MODELS_DIR
from suite.results import SCHEMA_VERSION, append_row, locked, read_rows, write_jsonl_atomic
from suite.scoring import SCORING_VERSION, SCORINGS, score_all
from suite.stats import bootstrap_mean_ci, pass_at_k, wilson_interval

EVALS_FILE = "evals.jsonl"


def resolve_model(cfg: SuiteConfig) -> tuple[str, ModelConfig]:
    """(role, model config) for ``cfg.model``: the teacher, the student, or a checkpoint path."""
    if cfg.model in ("teacher", "student"):
        return cfg.model, getattr(cfg, cfg.model)
    path = Path(cfg.model).expanduser()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"model={cfg.model!r}: no config.json there; pass teacher, student or an HF "
                                "checkpoint directory (one with config.json and *.safetensors)")
    # A checkpoint inherits the student's settings (dtype, thinking) and changes only the path.
    name = f"{path.parent.parent.name}/{path.name}" if path.parent.name == "checkpoints" else path.name
    return "checkpoint", ModelConfig(**{**asdict(cfg.student), "name": name, "path": str(path.resolve())})


def eval_key(cfg: SuiteConfig, model: ModelConfig, weights: str | None) -> str:
    """What makes two evaluations interchangeable: the same weights, task version, eval rows (their
    content, not their file), sampling settings and scoring code.

    The seed counts only when sampling: greedy decoding of the same weights gives the same answers, so
    the replicates of a multi-seed sweep share one baseline and one teacher row.
    """
    key = {"weights": weights or machine_free_path(model.path), "dtype": model.dtype,
           "thinking": model.enable_thinking, "context_length": model.context_length,
           "task": cfg.task.name, "version": task_version(cfg.task.name), "limit": cfg.task.limit,
           "rows_sha256": eval_rows_sha256(cfg.task.name, cfg.task.source, cfg.task.limit, cfg.task.on_bad_rows),
           "eval": asdict(cfg.eval), "backend": cfg.backend.lm_eval_model, "scoring": SCORING_VERSION}
    if cfg.eval.temperature > 0:
        key["seed"] = cfg.seed
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def ensure_local_model(model: ModelConfig) -> None:
    if Path(model.path).resolve().is_relative_to(TOY_MODELS_DIR.resolve()):
        from suite.toyworld.build import ensure_toy_world

        ensure_toy_world()


def run_lm_eval(cfg: SuiteConfig, model: ModelConfig, budget: dict | None = None) -> dict:
    """lm-eval on ``model``: in-process (``hf``) or through an SGLang server serving it (``sglang-generate``);
    ``budget`` (:func:`generation_budget`) sets the context and a clamped ``max_gen_toks``."""
    budget = budget or {}
    if cfg.backend.lm_eval_model != "sglang-generate":
        model_args = {"pretrained": model.path, "dtype": model.dtype, "enable_thinking": model.enable_thinking}
        if budget.get("context_length"):
            model_args["max_length"] = budget["context_length"]
        if model.enable_thinking:
            model_args["think_end_token"] = cfg.eval.think_end_token
        return _simple_evaluate(cfg, model_args, budget)
    from suite.serving.server import SGLangServer

    if not model.enable_thinking:
        raise ValueError(f"{model.name}: backend=sglang renders the tokenizer's default chat template (thinking "
                         "on); use backend=hf for enable_thinking=false")
    with SGLangServer(model, cfg.serve) as url:  # the server serves the model under evaluation
        model_args = {"base_url": f"{url}/generate", "tokenizer": model.path, "num_concurrent": cfg.serve.concurrency,
                      "max_length": budget.get("context_length") or model.context_length or 2048}
        return _simple_evaluate(cfg, model_args, budget)


def _simple_evaluate(cfg: SuiteConfig, model_args: dict, budget: dict) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    # Indexing lm-eval's own ~14,700 task configs costs ~4.7 s per evaluation here; the suite's tasks
    # (which override lm-eval's gsm8k/aime of the same names) are all in tasks/, so only another task needs them.
    own_task = (TASKS_DIR / cfg.task.name / f"{cfg.task.name}.yaml").exists()
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=not own_task,
                          metadata={"source": cfg.task.source, "on_bad_rows": cfg.task.on_bad_rows})
    task: object = cfg.task.name
    if cfg.eval.samples_per_problem > 1:  # lm-eval's `repeats`: k generations per problem
        from lm_eval.tasks import get_task_dict

        task = get_task_dict([cfg.task.name], manager)[cfg.task.name]
        task.config.repeats = cfg.eval.samples_per_problem
    return lm_eval.simple_evaluate(
        model=cfg.backend.lm_eval_model,
        model_args=model_args,
        tasks=[task],
        task_manager=manager,
        batch_size=cfg.backend.batch_size,
        device=cfg.backend.device,
        apply_chat_template=True,
        gen_kwargs={**cfg.eval.gen_kwargs(), **({"max_gen_toks": budget["max_gen_toks"]} if budget.get("clamped")
                                                 else {})},  # a clamp (context_budget.py) overrides the task's
        log_samples=True,
        limit=cfg.task.limit,
        random_seed=cfg.seed,
        numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed,
        fewshot_random_seed=cfg.seed,
        bootstrap_iters=0,  # intervals are computed here (Wilson), not by lm-eval's bootstrap
    )


SUFFIX = {"strict": "", "flexible": "_flexible"}  # sample-row field suffix per scoring


def score_responses(responses: list[str], label: str) -> dict:
    """Per-problem fields for ``k`` responses under both scorings (suite.scoring): counts, and 0/1 for one
    response per problem or the fraction over k; ``extracted`` holds the first response's answers."""
    outcomes = [score_all(r, label) for r in responses]
    k, row = len(outcomes), {"k": len(outcomes)}
    for name in SCORINGS:
        correct = sum(o[name].correct for o in outcomes)
        failures = sum(not o[name].format_ok for o in outcomes)
        sfx = SUFFIX[name]
        row.update({f"n_correct{sfx}": correct, f"n_format_failures{sfx}": failures,
                    f"correct{sfx}": correct if k == 1 else correct / k,
                    f"format_failure{sfx}": failures if k == 1 else failures / k})
    row["extracted"] = {name: outcomes[0][name].extracted for name in SCORINGS}
    return row


def _sample_rows(samples: list[dict]) -> list[dict]:
    """One row per problem, scored here by suite.scoring on every one of its k responses."""
    rows = []
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        responses = [r if isinstance(r, str) else r[0] for r in s["resps"][0]]
        row = {"doc_id": s["doc_id"], "id": s["doc"]["id"], "label": s["doc"]["label"], "response": responses[0],
               **score_responses(responses, s["doc"]["label"])}
        if len(responses) > 1:
            row["responses"] = responses
        rows.append(row)
    return rows


def _scoring_summary(samples: list[dict], sfx: str) -> dict:
    n, k = len(samples), samples[0]["k"] if samples else 1
    correct = sum(s[f"n_correct{sfx}"] for s in samples)
    failures = sum(s[f"n_format_failures{sfx}"] for s in samples)
    out = {"correct": correct, "accuracy": correct / (n * k) if n else None,
           "format_failures": failures, "format_failure_rate": failures / (n * k) if n else None}
    if k == 1:
        out.update(ci95=list(wilson_interval(correct, n)), ci_method="wilson")
    else:
        out.update(ci95=list(bootstrap_mean_ci([s[f"correct{sfx}"] for s in samples])),
                   ci_method="bootstrap over problems", metric=f"avg@{k}")
        per_problem = [pass_at_k(k, s[f"n_correct{sfx}"], k) for s in samples]
        out["pass_at_k"] = {"k": k, "value": sum(per_problem) / n, "ci95": list(bootstrap_mean_ci(per_problem))}
    return out


def summarize(samples: list[dict]) -> dict:
    """n, k, and per scoring: accuracy (avg@k) with its 95% interval, format failures, pass@k when k > 1.

    The strict scoring (the tutorial's) fills the row's top-level fields; the flexible one is under
    ``flexible``, with the same fields.
    """
    n, k = len(samples), samples[0]["k"] if samples else 1
    return {"n": n, "samples_per_problem": k, **_scoring_summary(samples, SUFFIX["strict"]), "scoring": "strict",
            "flexible": _scoring_summary(samples, SUFFIX["flexible"])}


def evaluate(cfg: SuiteConfig, command: str | None = None) -> dict:
    """Score ``cfg.model`` on ``cfg.task`` through lm-eval; returns the results row it appended."""
    role, model = resolve_model(cfg)
    ensure_local_model(model)
    rows = eval_rows(cfg.task.name, cfg.task.source, cfg.task.on_bad_rows)[: cfg.task.limit]  # bad data stops here
    budget = generation_budget(cfg, model, rows)
    if describe_budget(budget):
        print(f"{cfg.task.name} | {model.name}: {describe_budget(budget)}")
    start = time.time()
    out = run_lm_eval(cfg, model, budget)
    wall = time.time() - start
    task = cfg.task.name
    samples = _sample_rows(out["samples"][task])
    summary = summarize(samples)
    task_cfg = out["configs"][task]
    weights = weights_sha256(model.path)
    row_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    results_dir = Path(cfg.results_dir)
    samples_file = results_dir / "samples" / f"{row_id}.jsonl"
    write_jsonl_atomic(samples_file, samples)
    row = {
        "schema": SCHEMA_VERSION, "row_id": row_id, "kind": "eval",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task, "task_version": task_cfg.get("metadata", {}).get("version"), "source": cfg.task.source,
        "limit": cfg.task.limit, **summary, **_data_checks(cfg, budget),
        "model": {"role": role, "name": model.name, "path": machine_free_path(model.path)},
        "weights_sha256": weights, "eval_key": eval_key(cfg, model, weights),
        "eval_rows_sha256": eval_rows_sha256(task, cfg.task.source, cfg.task.limit, cfg.task.on_bad_rows),
        "scoring_version": SCORING_VERSION,
        "backend": asdict(cfg.backend),
        "sampling": {**task_cfg.get("generation_kwargs", {}), **cfg.eval.gen_kwargs(),
                     "max_gen_toks": budget["max_gen_toks"], "enable_thinking": model.enable_thinking,
                     "apply_chat_template": True},
        "seed": cfg.seed, "config_hash": config_hash(cfg),
        "command": command or "python -m suite.evaluate " + shlex.join(sys.argv[1:]),
        "samples_file": os.path.relpath(samples_file, results_dir), "wall_seconds": round(wall, 1),
        "lm_eval_version": out.get("config", {}).get("lm_eval_version") or _lm_eval_version(),
    }
    append_row(results_dir / EVALS_FILE, row)
    flex = row["flexible"]
    print(f"{task} v{row['task_version']} | {model.name} | n={row['n']} strict acc={row['accuracy']:.3f} "
          f"[{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}] format-fail={row['format_failure_rate']:.3f} | flexible "
          f"acc={flex['accuracy']:.3f} [{flex['ci95'][0]:.3f}, {flex['ci95'][1]:.3f}] format-fail="
          f"{flex['format_failure_rate']:.3f} | {wall:.0f}s -> {results_dir / EVALS_FILE}")
    return row


def _data_checks(cfg: SuiteConfig, budget: dict) -> dict:
    """Row fields: rows left out (``task.on_bad_rows=skip``), prompts lm-eval truncated, the generation budget."""
    skipped = skipped_rows(cfg.task.name, cfg.task.source) if cfg.task.on_bad_rows == "skip" else ()
    return {"on_bad_rows": cfg.task.on_bad_rows, "skipped_rows": len(skipped),
            "skipped_examples": [f"{b.where}: {b.reason}" for b in skipped[:5]],
            "truncated_prompts": budget["truncated_prompts"], "generation_budget": budget}


def _lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def cached_eval(cfg: SuiteConfig, model: str, command: str) -> dict:
    """The eval row of ``model`` (teacher, student or a checkpoint), reused when one with the same eval key exists."""
    results_dir = Path(cfg.results_dir)
    model_cfg = dataclasses.replace(cfg, model=model)
    _, spec = resolve_model(model_cfg)
    with locked(results_dir / ".eval.lock"):
        key = eval_key(model_cfg, spec, weights_sha256(spec.path))
        cached = [r for r in read_rows(results_dir / EVALS_FILE) if r["eval_key"] == key]
        if cached:
            print(f"{spec.name}: reusing eval {cached[-1]['row_id']} (acc {cached[-1]['accuracy']:.3f}, n={cached[-1]['n']})")
            return cached[-1]
        return evaluate(model_cfg, command=command)
