"""What every ``tasks/*/utils.py`` wires into lm-eval: one loader, one prompt, one scorer."""

from __future__ import annotations

from typing import Callable

from suite.data import eval_rows
from suite.scoring import score_all


def loader(task: str) -> Callable[..., dict]:
    """An lm-eval ``custom_dataset`` for ``task``: a ``{"test": Dataset}`` of its eval rows.

    lm-eval calls it with the task's metadata (and model args) as keywords; ``source`` picks
    ``auto`` (hub when reachable, else local), ``hub`` or ``local``; ``on_bad_rows`` is
    ``task.on_bad_rows`` (``error`` or ``skip``, see :mod:`suite.data`).
    """

    def load(source: str = "auto", on_bad_rows: str = "error", **_ignored) -> dict:
        import datasets

        rows = eval_rows(task, source, on_bad_rows)
        return {"test": datasets.Dataset.from_list([{**r, "prompt_text": r["prompt"][0]["content"]} for r in rows])}

    return load


def doc_to_text(doc: dict) -> str:
    """The user turn; lm-eval's ``apply_chat_template`` wraps it in the model's own template."""
    return doc["prompt_text"]


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    """lm-eval's per-document metrics: the strict scoring (the tutorial's) and the flexible one."""
    scores = score_all(results[0], doc["label"])
    strict, flexible = scores["strict"], scores["flexible"]
    return {"exact_match": int(strict.correct), "format_failure": int(not strict.format_ok),
            "exact_match_flexible": int(flexible.correct), "format_failure_flexible": int(not flexible.format_ok)}
