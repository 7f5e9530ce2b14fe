"""Every task's rows, loaded one way: by hub name when the hub is reachable, local JSONL otherwise.

Rows come out in one schema, dapo-math's plus two fields::

    {"id": "dapo_math/123", "problem": "<bare text>", "prompt": [{"role": "user", ...}], "label": "34"}

Splits: ``eval_rows(task)`` is what lm-eval scores; ``train_rows(task)`` is what a trainer may sample.
They never share a problem (``tests/test_splits.py``), and dapo-math's train split also drops any
problem that appears in another task's eval rows (GSM8K, MATH-500, AIME), and any near-duplicate of
an eval row (half or more of the eval problem's word 13-grams; see :func:`near_duplicates`).

Every file is validated once, on load: an empty file, a line that is not a JSON object, a field
missing or empty, or a label the task's scorer cannot parse (``suite.scoring.label_is_scorable``)
stops with ``file:line`` (1-based) and the fix, or with ``on_bad_rows="skip"`` (``task.on_bad_rows``)
leaves the row out; :func:`skipped_rows` lists what was left out, for the results row.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from suite.config import machine_free_path
from suite.paths import RAW_DATA_DIR, TOY_DATA_DIR
from suite.prompts import as_chat, problem_of
from suite.scoring import label_is_scorable


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
    answer_kind: str = "integer"  # how suite.scoring compares answers (label_is_scorable): integer | latex


SOURCES: dict[str, Source] = {
    "toy_arith": Source(TOY_DATA_DIR / "eval.jsonl", "prompt", "label", prompt_is_chat=True),
    "dapo_math": Source(RAW_DATA_DIR / "dapo-math-17k.jsonl", "prompt", "label",
                        hub_id="zhuzilin/dapo-math-17k", prompt_is_chat=True),
    "gsm8k": Source(RAW_DATA_DIR / "gsm8k-test.jsonl", "question", "answer",
                    hub_id="openai/gsm8k", hub_config="main", hub_split="test"),
    "math500": Source(RAW_DATA_DIR / "math500-test.jsonl", "problem", "answer",
                      hub_id="HuggingFaceH4/MATH-500", hub_split="test", answer_kind="latex"),
    "aime24": Source(RAW_DATA_DIR / "math-aime-eval.jsonl", "question", "ref_answer",
                     where=("data_source", "AIME-2024-30")),
    "aime25": Source(RAW_DATA_DIR / "math-aime-eval.jsonl", "question", "ref_answer",
                     where=("data_source", "AIME-2025-30")),
}
TASKS = tuple(SOURCES)
# The toy world's training split: its own file (dapo-math's train split is carved out of its one file).
TOY_TRAIN = Source(TOY_DATA_DIR / "train.jsonl", "prompt", "label", prompt_is_chat=True)
DAPO_EVAL_SIZE = 500
SPLIT_SEED = 0
BAD_ROWS_FIX = ("fix or delete the row, or set task.on_bad_rows=skip to leave bad rows out "
                "(they are counted in the results row)")


class DataError(ValueError):
    """A data file or row the suite cannot use; the message names the file, the 1-based line and the fix."""


@dataclass(frozen=True)
class BadRow:
    """A row left out under ``task.on_bad_rows=skip``: where it is (``file:line``) and what is wrong."""

    where: str
    reason: str


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """False when HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set or huggingface.co does not answer."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _shown(path: Path) -> str:
    """Repo-relative when inside the repository (what a user types into an editor), else as given."""
    return machine_free_path(str(path))


def _first_bad_line(data: bytes) -> tuple[int, str] | None:
    """(1-based line, what is wrong) of the first line that is not one JSON object, or None."""
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except UnicodeDecodeError:
            return lineno, "not UTF-8 text"
        except json.JSONDecodeError as err:
            return lineno, f"not JSON ({err.msg} at column {err.colno}): {line[:60].decode(errors='replace')!r}"
        if not isinstance(value, dict):
            return lineno, f"a JSON {type(value).__name__}, not an object: {line[:60].decode(errors='replace')!r}"
    return None


def read_local_jsonl(path: Path, missing_fix: str = "restore it") -> list[tuple[str, dict]]:
    """``(where, row)`` for each row of a local JSONL file; ``where`` is ``file:line``, 1-based as editors count.

    ``datasets.load_dataset`` does the reading (its Arrow cache and type handling, as for hub data); when
    it fails, the file is scanned here to name the first bad line instead of surfacing Arrow's traceback.
    """
    import datasets

    if not path.exists():
        raise DataError(f"{_shown(path)}: data file is missing; {missing_fix}")
    data = path.read_bytes()
    linenos = [i for i, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    if not linenos:
        raise DataError(f"{_shown(path)}: the file is empty (no rows); {missing_fix}")
    json_log = logging.getLogger("datasets.packaged_modules.json.json")
    level = json_log.level
    json_log.setLevel(logging.CRITICAL)  # its own parse-error line counts rows from 0; ours names the line
    try:
        ds = datasets.load_dataset("json", data_files={"data": str(path)}, split="data")
    except Exception:  # noqa: BLE001 - datasets wraps Arrow's parse errors in several types
        bad = _first_bad_line(data)
        if bad is None:
            raise
        raise DataError(f"{_shown(path)}:{bad[0]}: {bad[1]}; each line must be one JSON object: fix or delete "
                        "the line") from None
    finally:
        json_log.setLevel(level)
    rows = ds.to_list()
    if len(rows) != len(linenos):  # never seen: datasets split lines differently; count rows instead
        return [(f"{_shown(path)} row {i}", r) for i, r in enumerate(rows, start=1)]
    return [(f"{_shown(path)}:{n}", r) for n, r in zip(linenos, rows)]


def _load_raw(task: str, src: Source, source_mode: str) -> list[tuple[str, dict]]:
    use_hub = src.hub_id is not None and (source_mode == "hub" or (source_mode == "auto" and hub_reachable()))
    if use_hub:
        import datasets

        ds = datasets.load_dataset(src.hub_id, src.hub_config, split=src.hub_split)
        raw = [(f"{src.hub_id} ({src.hub_split}) row {i}", r) for i, r in enumerate(ds.to_list(), start=1)]
    else:
        fix = ("run `python -m suite.toyworld.build --force`" if task == "toy_arith"
               else f"copy it from shared/data (see {_shown(RAW_DATA_DIR / 'README.md')})")
        raw = read_local_jsonl(src.local_file, fix)
    if src.where is not None:
        key, value = src.where
        raw = [(where, r) for where, r in raw if r.get(key) == value]
    return raw


def _label(task: str, raw: object) -> str:
    text = str(raw).strip()
    if task == "gsm8k":  # GSM8K's answer is a worked solution ending "#### 1,234"
        text = text.split("####")[-1].strip().replace(",", "") if "####" in text else ""
    return text


def _normalize(task: str, src: Source, row_id: str, raw: dict) -> dict:
    """The row in the suite's schema; raises ValueError saying what is wrong with it."""
    for key in (src.question_key, src.answer_key):
        if raw.get(key) is None:  # datasets fills a field absent from this row (present in others) with None
            present = sorted(k for k, v in raw.items() if v is not None)
            raise ValueError(f"field {key!r} is missing or null (the row has {present})")
    question = raw[src.question_key]
    if src.prompt_is_chat:
        if not (isinstance(question, list) and question and isinstance(question[0], dict)
                and isinstance(question[0].get("content"), str)):
            raise ValueError(f"field {src.question_key!r} must be a chat list [{{'role': 'user', 'content': ...}}]")
        problem, prompt = problem_of(question[0]["content"]), question
    else:
        problem, prompt = str(question).strip(), as_chat(str(question))
    if not problem:
        raise ValueError(f"field {src.question_key!r} holds no problem text")
    label = _label(task, raw[src.answer_key])
    if not label:
        what = "no final answer after '####'" if task == "gsm8k" else "an empty answer"
        raise ValueError(f"field {src.answer_key!r} holds {what}")
    if not label_is_scorable(label, src.answer_kind):
        kind = "an integer" if src.answer_kind == "integer" else "an answer math-verify can parse"
        raise ValueError(f"label {label!r} (field {src.answer_key!r}) is not {kind}, so suite.scoring would "
                         f"score every response to it 0 ({task} compares {src.answer_kind} answers)")
    return {"id": row_id, "problem": problem, "prompt": prompt, "label": label}


_WHERE: dict[str, str] = {}  # row id -> "file:line", for messages about a row found later (e.g. its length)


def row_location(row: dict) -> str:
    """``file:line`` (1-based) of a row this module loaded, for messages that name it."""
    return _WHERE.get(row["id"], row["id"])


@functools.lru_cache(maxsize=None)
def _validated(task: str, split: str, source_mode: str,
               on_bad_rows: str) -> tuple[tuple[dict, ...], tuple[BadRow, ...]]:
    """Every row of one task file, validated once: (good rows, rows left out under ``skip``).

    Ids count rows from 0 before validation, so leaving a bad row out never renumbers the others.
    """
    if task not in SOURCES:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    if on_bad_rows not in ("error", "skip"):
        raise DataError(f"on_bad_rows={on_bad_rows!r}: use error or skip")
    src, prefix = (TOY_TRAIN, f"{task}/train/") if split == "train" else (SOURCES[task], f"{task}/")
    good, bad = [], []
    for index, (where, raw) in enumerate(_load_raw(task, src, source_mode)):
        try:
            row = _normalize(task, src, f"{prefix}{index}", raw)
        except ValueError as err:
            if on_bad_rows == "error":
                raise DataError(f"{where}: {err}; {BAD_ROWS_FIX}") from None
            bad.append(BadRow(where, str(err)))
            continue
        _WHERE[row["id"]] = where
        good.append(row)
    if not good:
        raise DataError(f"{task}: no usable rows ({len(bad)} bad, e.g. {bad[0].where}: {bad[0].reason}); fix the data")
    return tuple(good), tuple(bad)


def all_rows(task: str, source_mode: str = "auto", on_bad_rows: str = "error") -> tuple[dict, ...]:
    """Every usable row of ``task``'s data (eval and, for dapo-math, train), validated on load."""
    return _validated(task, "all", source_mode, on_bad_rows)[0]


all_rows.cache_clear = _validated.cache_clear  # type: ignore[attr-defined]  # forget every file read (tests)


def skipped_rows(task: str, source_mode: str = "auto", split: str = "eval") -> tuple[BadRow, ...]:
    """Rows of ``task``'s data file (``split="train"``: its training file) that ``on_bad_rows=skip`` leaves out."""
    train_file = split == "train" and task == "toy_arith"
    return _validated(task, "train" if train_file else "all", source_mode, "skip")[1]


def model_context_length(path: str, configured: int | None = None) -> int | None:
    """Tokens a prompt plus its response may span in the model at ``path``: the checkpoint's position
    limit (``max_position_embeddings`` or the like), or ``configured`` (``<model>.context_length``) when
    smaller; None when neither is known."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    limits = [getattr(config, k) for k in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length")
              if isinstance(getattr(config, k, None), int)]
    limits += [configured] if configured else []
    return min(limits) if limits else None


def prompt_token_counts(rows: list[dict], tokenizer, enable_thinking: bool) -> list[int]:
    """Tokens of each row's prompt as the model sees it: its own chat template with the generation prompt,
    no extra special tokens (how rollouts and lm-eval's ``hf`` backend encode it)."""
    texts = [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, enable_thinking=enable_thinking,
                                           tokenize=False) for r in rows]
    encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    return [len(ids) for ids in encoded]


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


def eval_rows(task: str, source_mode: str = "auto", on_bad_rows: str = "error") -> list[dict]:
    """The rows lm-eval scores for ``task``."""
    rows = all_rows(task, source_mode, on_bad_rows)
    if task == "dapo_math":  # a seeded-hash sample of 500, not the first rows (the tutorial's defect)
        keep = _dapo_eval_ids(rows)
        return [r for r in rows if r["id"] in keep]
    return list(rows)


def train_rows(task: str, source_mode: str = "auto", on_bad_rows: str = "error") -> list[dict]:
    """Rows a trainer may sample for ``task``: disjoint from every task's eval rows."""
    if task == "toy_arith":
        rows = _validated(task, "train", source_mode, on_bad_rows)[0]
        held = {overlap_key(r["problem"]) for r in eval_rows("toy_arith", source_mode, on_bad_rows)}
        return [r for r in rows if overlap_key(r["problem"]) not in held]
    if task != "dapo_math":
        raise DataError(f"task {task!r} is eval-only; train on 'dapo_math' or 'toy_arith'")
    held_rows = [r["problem"] for t in ("dapo_math", "gsm8k", "math500", "aime24", "aime25")
                 for r in eval_rows(t, source_mode, on_bad_rows)]
    held = {overlap_key(p) for p in held_rows}
    rows = [r for r in all_rows("dapo_math", source_mode, on_bad_rows) if overlap_key(r["problem"]) not in held]
    near = near_duplicates([r["problem"] for r in rows], held_rows)  # re-worded copies of eval problems
    return [r for i, r in enumerate(rows) if i not in near]


def rows_fingerprint(rows: list[dict] | tuple[dict, ...]) -> str:
    """sha256 of the rows' canonical JSON (sorted keys, compact, UTF-8): what cache keys and run names use
    to notice that the data a result came from has changed."""
    text = json.dumps(list(rows), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def eval_rows_sha256(task: str, source: str, limit: int | None, on_bad_rows: str = "error") -> str:
    """Fingerprint of the rows lm-eval scores: the task's eval rows (bad ones left out under
    ``on_bad_rows=skip``), the first ``limit`` of them."""
    return rows_fingerprint(eval_rows(task, source, on_bad_rows)[:limit])
