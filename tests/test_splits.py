# Run: pytest tests/test_splits.py
"""Train and eval rows never overlap; every task loads offline in the shared row schema."""

import json

import pytest

from suite.data import TASKS, DataError, all_rows, eval_rows, overlap_key, train_rows
from suite.paths import TOY_DATA_DIR
from suite.prompts import dapo_prompt, problem_of
from suite.toyworld.problems import make_splits

EXPECTED_EVAL_SIZES = {"toy_arith": 500, "dapo_math": 500, "gsm8k": 1319, "math500": 500, "aime24": 30, "aime25": 30}


@pytest.mark.parametrize("task", TASKS)
def test_eval_rows_load_offline_in_one_schema(task):
    rows = eval_rows(task, "local")
    assert len(rows) == EXPECTED_EVAL_SIZES[task]
    for r in rows[:50]:
        assert set(r) >= {"id", "problem", "prompt", "label"}
        assert r["prompt"][0]["role"] == "user" and "Answer: \\boxed{$Answer}" in r["prompt"][0]["content"]
        assert problem_of(r["prompt"][0]["content"]) == r["problem"]
    assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("task", ["toy_arith", "dapo_math"])
def test_train_and_eval_never_overlap(task):
    train = {overlap_key(r["problem"]) for r in train_rows(task, "local")}
    held = {overlap_key(r["problem"]) for r in eval_rows(task, "local")}
    assert train and held and not train & held


def test_dapo_train_excludes_every_eval_task():
    train = {overlap_key(r["problem"]) for r in train_rows("dapo_math", "local")}
    for task in ("gsm8k", "math500", "aime24", "aime25"):
        assert not train & {overlap_key(r["problem"]) for r in eval_rows(task, "local")}, task
    assert len(train) > 16_000  # the exclusion drops a handful of rows, not the data set


def test_dapo_train_holds_no_near_duplicate_of_an_eval_row():
    from suite.data import near_duplicates

    train = [r["problem"] for r in train_rows("dapo_math", "local")]
    held = [r["problem"] for r in eval_rows("dapo_math", "local")]
    assert near_duplicates(held, train) == set()


def test_dapo_eval_is_not_the_first_rows():
    first_ids = {r["id"] for r in all_rows("dapo_math", "local")[:500]}
    assert len(first_ids & {r["id"] for r in eval_rows("dapo_math", "local")}) < 100


def test_toy_splits_are_disjoint_and_committed_files_match_the_generator():
    splits = make_splits(seed=0, n_eval=500, n_dev=300)
    questions = {name: {p.question for p in probs} for name, probs in splits.items()}
    assert not questions["train"] & questions["eval"] and not questions["dev"] & questions["eval"]
    assert not questions["train"] & questions["dev"]
    for name, probs in splits.items():
        committed = [json.loads(line) for line in (TOY_DATA_DIR / f"{name}.jsonl").read_text().splitlines()]
        assert committed == [p.row() for p in probs], f"data/toy_arith/{name}.jsonl differs from the generator"


def test_gsm8k_label_is_the_final_number():
    row = eval_rows("gsm8k", "local")[0]
    assert row["label"].lstrip("-").isdigit()


def test_prompt_roundtrip():
    assert problem_of(dapo_prompt("What is 2 + 2?")) == "What is 2 + 2?"


def test_unknown_task_and_eval_only_training_are_refused():
    with pytest.raises(DataError, match="unknown task"):
        all_rows("gsm9k")
    with pytest.raises(DataError, match="eval-only"):
        train_rows("gsm8k", "local")


def test_bad_row_names_file_row_and_fix(tmp_path, monkeypatch):
    import dataclasses

    from suite import data

    bad = tmp_path / "gsm8k-test.jsonl"
    bad.write_text('{"question": "What is 1+1?", "answer": "#### 2"}\n{"question": "no answer field"}\n')
    monkeypatch.setitem(data.SOURCES, "gsm8k", dataclasses.replace(data.SOURCES["gsm8k"], local_file=bad))
    data.all_rows.cache_clear()
    with pytest.raises(DataError, match=r"gsm8k-test\.jsonl:2: field 'answer' is missing or null.*task\.on_bad_rows=skip"):
        eval_rows("gsm8k", "local")
    data.all_rows.cache_clear()


def test_missing_local_file_says_how_to_get_it(tmp_path, monkeypatch):
    import dataclasses

    from suite import data

    monkeypatch.setitem(data.SOURCES, "toy_arith",
                        dataclasses.replace(data.SOURCES["toy_arith"], local_file=tmp_path / "eval.jsonl"))
    data.all_rows.cache_clear()
    with pytest.raises(DataError, match="suite.toyworld.build"):
        eval_rows("toy_arith", "local")
    data.all_rows.cache_clear()
