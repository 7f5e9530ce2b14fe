"""The training rows a run may sample: validated data whose prompts fit the models' context.

A prompt plus ``trainer.rollout_max_response_len`` tokens must fit in the student's positions (it
generates and is trained on the whole sequence) and, with an in-process teacher, in the teacher's (it
scores the same sequence). An over-long row used to reach ``generate`` and ask for a 25.6 GB
allocation; here it is refused at start-up naming its file and line, or left out under
``task.on_bad_rows=skip``. What was left out is written to ``<run_dir>/data_report.json``, which the
sweep copies into the run row.
"""

from __future__ import annotations

import json
from pathlib import Path

from suite.config import ConfigError, SuiteConfig
from suite.data import (BAD_ROWS_FIX, DataError, eval_rows, model_context_length, prompt_token_counts, row_location,
                        skipped_rows, train_rows)
from suite.results import write_jsonl_atomic

REPORT_FILE = "data_report.json"


def training_context(cfg: SuiteConfig) -> int | None:
    """Tokens a prompt + response may span: the student's limit and, in-process, the teacher's."""
    limits = [model_context_length(cfg.student.path, cfg.student.context_length)]
    if cfg.trainer.teacher_backend == "hf":
        limits.append(model_context_length(cfg.teacher.path, cfg.teacher.context_length))
    known = [n for n in limits if n]
    return min(known) if known else None


def _fitting(cfg: SuiteConfig, rows: list[dict], tokenizer) -> tuple[list[dict], list[tuple[dict, int]], int | None, int | None]:
    """(rows whose prompt leaves room for ``rollout_max_response_len`` tokens, [(too long row, its prompt
    tokens)], the prompt budget, the context); everything fits where no context is known."""
    context = training_context(cfg)
    if context is None:
        return rows, [], None, None
    budget = context - cfg.trainer.rollout_max_response_len
    if budget < 1:
        raise ConfigError(f"bad config value trainer.rollout_max_response_len={cfg.trainer.rollout_max_response_len!r}: "
                          f"the models' context is {context} tokens, leaving no room for a prompt; use a "
                          "smaller response length")
    lengths = prompt_token_counts(rows, tokenizer, cfg.student.enable_thinking)
    too_long = [(r, n) for r, n in zip(rows, lengths) if n > budget]
    return [r for r, n in zip(rows, lengths) if n <= budget], too_long, budget, context


def trainable_rows(cfg: SuiteConfig, tokenizer, run_dir: Path | None = None) -> list[dict]:
    """``train_rows`` of ``cfg.task`` whose prompts fit; raises DataError/ConfigError naming the cause."""
    t, task = cfg.trainer, cfg.task
    skipped = [{"where": b.where, "reason": b.reason} for b in skipped_rows(task.name, task.source, "train")
               ] if task.on_bad_rows == "skip" else []
    rows, too_long, budget, context = _fitting(cfg, train_rows(task.name, task.source, task.on_bad_rows), tokenizer)
    for row, n in too_long:
        reason = (f"prompt is {n} tokens; with trainer.rollout_max_response_len={t.rollout_max_response_len} "
                  f"it must be at most {budget} (the models' context is {context} tokens)")
        if task.on_bad_rows == "error":
            raise DataError(f"{row_location(row)}: {reason}; {BAD_ROWS_FIX} ({len(too_long)} rows too long)")
        skipped.append({"where": row_location(row), "reason": reason})
    if len(rows) < t.rollout_batch_size:
        raise DataError(f"{task.name}: {len(rows)} usable training rows, fewer than trainer.rollout_batch_size="
                        f"{t.rollout_batch_size} ({len(skipped)} left out); fix the data or use a smaller batch")
    if run_dir is not None:
        report = {"train_rows": len(rows), "skipped_rows": len(skipped), "on_bad_rows": task.on_bad_rows,
                  "context": context, "skipped": skipped[:20]}
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        write_jsonl_atomic(Path(run_dir) / REPORT_FILE, [report])
    return rows


def heldout_rows(cfg: SuiteConfig, tokenizer, limit: int) -> list[dict]:
    """The first ``limit`` eval rows for the held-out KL measurement: validated under ``task.on_bad_rows``,
    and only those whose prompt leaves room for ``rollout_max_response_len`` tokens (a measurement: an
    over-long prompt is left out rather than refused, as evaluation truncates and counts it rather than
    refusing). Tokenises ``limit`` rows at a time, not the whole split."""
    rows, kept = eval_rows(cfg.task.name, cfg.task.source, cfg.task.on_bad_rows), []
    for lo in range(0, len(rows), max(limit, 1)):
        if len(kept) >= limit:
            break
        kept += _fitting(cfg, rows[lo : lo + limit], tokenizer)[0]
    return kept[:limit]


def read_data_report(run_dir: Path | str) -> dict | None:
    """What :func:`trainable_rows` recorded for a run (rows used, rows left out and why), or None."""
    path = Path(run_dir) / REPORT_FILE
    return json.loads(path.read_text()) if path.exists() else None
