"""Every task's rows, loaded one way: by hub name when the hub is reachable, local JSONL otherwise.

Rows come out in one schema, dapo-math's plus two fields::

    {"id": "dapo_math/123", "problem": "<bare text>", "prompt": [{"role": "user", ...}], "label": "34"}

Splits: ``eval_rows(task)`` is what lm-eval scores; ``train_rows(task)`` is what a trainer may sample.
They never share a problem (``tests/test_splits.py``), and dapo-math's train split also drops any
problem that appears in another task's eval rows (GSM8K, MATH-500, AIME), and any near-duplicate of
an eval row (half or more of the eval problem's word 13-grams; see :func:`near_duplicates`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from suite.paths import RAW_DATA_DIR, TOY_DATA_DIR
from suite.prompts import as_chat, problem_of


@dataclass(frozen=True)
class Source:
    """Where a task's rows come from, and which fields hold the problem and the answer."""

    local_file: Path
    question_key: str
    answer_key: str
    hub_id: str | None = None  # datasets.load_dataset name, used when the hub is reachable
    hub_config: str | None = None
    hub_split: str = "train"
    where: tuple[str, str] | None = None  # keep rows whose field equals value
    prompt_is_chat: bool = False  # the question field already holds the dapo chat prompt


SOURCES: dict[str, Source] = {
    "toy_arith": Source(TOY_DATA_DIR / "eval.jsonl", "prompt", "label", prompt_is_chat=True),
    "dapo_math": Source(RAW_DATA_DIR / "dapo-math-17k.jsonl", "prompt", "label",
                        hub_id="zhuzilin/dapo-math-17k", prompt_is_chat=True),
    "gsm8k": Source(RAW_DATA_DIR / "gsm8k-test.jsonl", "question", "answer",
                    hub_id="openai/gsm8k", hub_config="main", hub_split="test"),
    "math500": Source(RAW_DATA_DIR / "math500-test.jsonl", "problem", "answer",
                      hub_id="HuggingFaceH4/MATH-500", hub_split="test"),
    "aime24": Source(RAW_DATA_DIR / "math-aime-eval.jsonl", "question", "ref_answer",
                     where=("data_source", "AIME-2024-30")),
    "aime25": Source(RAW_DATA_DIR / "math-aime-eval.jsonl", "question", "ref_answer",
                     where=("data_source", "AIME-2025-30")),
}
TASKS = tuple(SOURCES)
DAPO_EVAL_SIZE = 500
SPLIT_SEED = 0


class DataError(ValueError):
    """A data file or row the suite cannot use; the message names the file, the row and the fix."""


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """False when HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set or huggingface.co does not answer."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _load_raw(task: str, source_mode: str) -> list[dict]:
    import datasets

    src = SOURCES[task]
    use_hub = src.hub_id is not None and (source_mode == "hub" or (source_mode == "auto" and hub_reachable()))
    if use_hub:
        ds = datasets.load_dataset(src.hub_id, src.hub_config, split=src.hub_split)
    else:
        if not src.local_file.exists():
            fix = ("run `python -m suite.toyworld.build`" if task == "toy_arith"
                   else f"copy it from shared/data (see {RAW_DATA_DIR / 'README.md'})")
            raise DataError(f"{task}: local data file {src.local_file} is missing; {fix}")
        ds = datasets.load_dataset("json", data_files={"data": str(src.local_file)}, split="data")
    rows = ds.to_list()
    if src.where is not None:
        key, value = src.where
        rows = [r for r in rows if r.get(key) == value]
    return rows


def _label(task: str, raw: object) -> str:
    text = str(raw).strip()
    if task == "gsm8k":  # GSM8K's answer is a worked solution ending "#### 1,234"
        text = text.split("####")[-1].strip().replace(",", "")
    return text


def _normalize(task: str, index: int, raw: dict) -> dict:
    src = SOURCES[task]
    where = f"{task} row {index} of {src.local_file.name}"
    if raw.get(src.question_key) is None or raw.get(src.answer_key) is None:  # datasets fills gaps with None
        raise DataError(f"{where}: needs fields {src.question_key!r} and {src.answer_key!r}, has {sorted(raw)}; "
                        "fix the row or the Source in suite/data.py")
    question = raw[src.question_key]
    if src.prompt_is_chat:
        if not (isinstance(question, list) and question and isinstance(question[0], dict) and "content" in question[0]):
            raise DataError(f"{where}: 'prompt' must be a chat list [{{'role': 'user', 'content': ...}}]")
        problem, prompt = problem_of(question[0]["content"]), question
    else:
        problem, prompt = str(question).strip(), as_chat(str(question))
    label = _label(task, raw[src.answer_key])
    if not problem or not label:
        raise DataError(f"{where}: empty problem or label; drop or fix the row")
    return {"id": f"{task}/{index}", "problem": problem, "prompt": prompt, "label": label}


@functools.lru_cache(maxsize=None)
def all_rows(task: str, source_mode: str = "auto") -> tuple[dict, ...]:
    if task not in SOURCES:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return tuple(_normalize(task, i, r) for i, r in enumerate(_load_raw(task, source_mode)))


def overlap_key(problem: str) -> str:
    """What makes two problems 'the same' for split checks: case- and whitespace-insensitive text."""
    return re.sub(r"\s+", " ", problem).strip().lower()


def word_ngrams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def near_duplicates(candidates: list[str], references: list[str], n: int = 13, share: float = 0.5) -> set[int]:
    """Indices of ``candidates`` that share at least ``share`` of the word n-grams of the shorter text
    of some (candidate, reference) pair; symmetric, so it flags a copy in either direction.

    Catches re-worded copies (DAPO-17k holds variants of competition problems); boilerplate phrases
    shared by many problems stay far below half of a problem's n-grams.
    """
    ref_grams = [word_ngrams(r, n) for r in references]
    index: dict[tuple[str, ...], list[int]] = {}
    for j, grams in enumerate(ref_grams):
        for g in grams:
            index.setdefault(g, []).append(j)
    out = set()
    for i, text in enumerate(candidates):
        hits: dict[int, int] = {}
        grams = word_ngrams(text, n)
        for g in grams:
            for j in index.get(g, ()):
                hits[j] = hits.get(j, 0) + 1
        if any(count >= share * min(len(grams), len(ref_grams[j])) for j, count in hits.items()):
            out.add(i)
    return out


def _rank(problem: str) -> str:
    return hashlib.sha256(f"{SPLIT_SEED}:{overlap_key(problem)}".encode()).hexdigest()


def _dapo_eval_ids(rows: tuple[dict, ...]) -> set[str]:
    ranked = sorted(rows, key=lambda r: _rank(r["problem"]))
    return {r["id"] for r in ranked[:DAPO_EVAL_SIZE]}


def eval_rows(task: str, source_mode: str = "auto") -> list[dict]:
    """The rows lm-eval scores for ``task``."""
    rows = all_rows(task, source_mode)
    if task == "dapo_math":  # a seeded-hash sample of 500, not the first rows (the tutorial's defect)
        keep = _dapo_eval_ids(rows)
        return [r for r in rows if r["id"] in keep]
    return list(rows)


def train_rows(task: str, source_mode: str = "auto") -> list[dict]:
    """Rows a trainer may sample for ``task``: disjoint from every task's eval rows."""
    if task == "toy_arith":
        raw = [json.loads(line) for line in (TOY_DATA_DIR / "train.jsonl").read_text().splitlines()]
        rows = [{"id": f"toy_arith/train/{i}", "problem": problem_of(r["prompt"][0]["content"]), **r}
                for i, r in enumerate(raw)]
        held = {overlap_key(r["problem"]) for r in eval_rows("toy_arith", source_mode)}
        return [r for r in rows if overlap_key(r["problem"]) not in held]
    if task != "dapo_math":
        raise DataError(f"task {task!r} is eval-only; train on 'dapo_math' or 'toy_arith'")
    held_rows = [r["problem"] for t in ("dapo_math", "gsm8k", "math500", "aime24", "aime25")
                 for r in eval_rows(t, source_mode)]
    held = {overlap_key(p) for p in held_rows}
    rows = [r for r in all_rows("dapo_math", source_mode) if overlap_key(r["problem"]) not in held]
    near = near_duplicates([r["problem"] for r in rows], held_rows)  # re-worded copies of eval problems
    return [r for i, r in enumerate(rows) if i not in near]


def rows_fingerprint(rows: list[dict] | tuple[dict, ...]) -> str:
    """sha256 of the rows' canonical JSON (sorted keys, compact, UTF-8): what cache keys and run names use
    to notice that the data a result came from has changed."""
    text = json.dumps(list(rows), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
