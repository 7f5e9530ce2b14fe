# Run: pytest tests/test_evaluate.py
"""`suite.evaluate` scores through real lm-eval and writes a complete results row and its samples."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from suite.config import load_config
from suite.evaluation.harness import eval_rows_sha256, evaluate, weights_sha256
from suite.paths import REPO_ROOT, TOY_MODELS_DIR
from suite.results import EVAL_ROW_KEYS, read_rows
from suite.scoring import score_all

pytestmark = pytest.mark.integration


def _cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return load_config(compose(config_name="evaluate", overrides=[f"results_dir={tmp_path}", *overrides]))


@pytest.fixture(scope="module")
def teacher_row(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results")
    return tmp, evaluate(_cfg(tmp, "model=teacher"), command="pytest teacher")


def test_lm_eval_scores_the_teacher_inside_its_band(teacher_row):
    _, row = teacher_row
    assert row["n"] == 500 and row["task"] == "toy_arith" and row["task_version"] == 2
    assert row["accuracy"] >= 0.85, f"teacher accuracy {row['accuracy']:.3f} below the 85% band"
    lo, hi = row["ci95"]
    assert lo < row["accuracy"] < hi and hi - lo < 0.08


def test_row_records_provenance(teacher_row):
    tmp, row = teacher_row
    [stored] = read_rows(tmp / "evals.jsonl")
    assert stored == json.loads(json.dumps(row, sort_keys=True))
    assert set(EVAL_ROW_KEYS) <= set(row)
    assert row["weights_sha256"] == weights_sha256(str(TOY_MODELS_DIR / "teacher"))
    assert row["sampling"]["do_sample"] is False and row["sampling"]["enable_thinking"] is True
    assert row["sampling"]["max_gen_toks"] == 96 and row["command"] == "pytest teacher"
    assert len(row["config_hash"]) == 12 and row["seed"] == 0


def test_samples_file_matches_the_row(teacher_row):
    tmp, row = teacher_row
    samples = [json.loads(line) for line in (tmp / row["samples_file"]).read_text().splitlines()]
    assert len(samples) == row["n"]
    assert sum(s["correct"] for s in samples) == row["correct"]
    assert sum(s["format_failure"] for s in samples) == row["format_failures"]
    assert all("Answer:" in s["response"] for s in samples if not s["format_failure"])


def test_row_reports_both_scorings_with_intervals(teacher_row):
    tmp, row = teacher_row
    samples = [json.loads(line) for line in (tmp / row["samples_file"]).read_text().splitlines()]
    flex = row["flexible"]
    assert row["scoring"] == "strict" and flex["correct"] == sum(s["correct_flexible"] for s in samples)
    assert flex["format_failures"] == sum(s["format_failure_flexible"] for s in samples)
    assert flex["accuracy"] == flex["correct"] / row["n"] and flex["ci95"][0] < flex["accuracy"] < flex["ci95"][1]
    assert 0 <= flex["format_failure_rate"] <= row["format_failure_rate"]  # the toy teacher boxes its Answer: line
    for s in samples:  # both scorings of every response, recomputed from the stored text
        both = score_all(s["response"], s["label"])
        assert (s["correct"], s["correct_flexible"]) == (int(both["strict"].correct), int(both["flexible"].correct))
    assert row["eval_rows_sha256"] == eval_rows_sha256("toy_arith", "auto", None) and row["scoring_version"]


def test_student_scores_below_teacher_on_the_same_rows(tmp_path, teacher_row):
    row = evaluate(_cfg(tmp_path, "model=student", "task.limit=100"), command="pytest student")
    assert row["n"] == 100 and row["limit"] == 100
    assert row["accuracy"] < teacher_row[1]["accuracy"]


def test_checkpoint_path_and_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        evaluate(_cfg(tmp_path, f"model={tmp_path}/nowhere"))
    row = evaluate(_cfg(tmp_path, f"model={TOY_MODELS_DIR / 'student'}", "task.limit=8"))
    assert row["model"]["role"] == "checkpoint" and row["n"] == 8


def test_several_samples_per_problem_give_avg_and_pass_at_k(tmp_path):
    row = evaluate(_cfg(tmp_path, "model=student", "eval=sampled", "eval.samples_per_problem=4", "task.limit=30"))
    assert row["n"] == 30 and row["samples_per_problem"] == 4 and row["metric"] == "avg@4"
    assert row["ci_method"] == "bootstrap over problems" and row["ci95"][0] <= row["accuracy"] <= row["ci95"][1]
    p = row["pass_at_k"]
    assert p["k"] == 4 and row["accuracy"] <= p["value"] <= 1 and p["ci95"][0] <= p["value"] <= p["ci95"][1]
    assert row["flexible"]["metric"] == "avg@4" and row["flexible"]["pass_at_k"]["k"] == 4
    samples = [json.loads(x) for x in (tmp_path / row["samples_file"]).read_text().splitlines()]
    assert all(len(s["responses"]) == 4 and s["n_correct"] == round(4 * s["correct"]) for s in samples)
    assert sum(s["n_correct"] for s in samples) == row["correct"]


def test_greedy_with_several_samples_is_refused():
    from suite.config import ConfigError

    with pytest.raises(ConfigError, match="samples_per_problem"):
        _cfg(Path("/tmp"), "eval.samples_per_problem=4")
