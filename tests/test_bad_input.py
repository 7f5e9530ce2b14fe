# Run: pytest tests/test_bad_input.py
"""Bad data and bad settings (issue 10, items 2-6), each reproduced for real and refused early.

Damaged copies of the real data files, a real checkpoint with another tokenizer, a real malicious
pickle, torn lines planted in real results and metrics files, and processes killed with SIGKILL.
Command-line cases run the real entry points against a throw-away repository root (``OPD_SUITE_HOME``
with the worktree's tasks, artifacts and raw data linked in and the toy splits copied, so damaging
them leaves the worktree alone).
"""

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from suite import data
from suite.config import ConfigError, load_config
from suite.data import DataError, eval_rows, train_rows
from suite.paths import REPO_ROOT, TOY_DATA_DIR, TOY_MODELS_DIR
from suite.results import read_rows
from suite.scoring import label_is_scorable

TINY_TRAIN = ["trainer.num_rollout=1", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
              "trainer.global_batch_size=8", "trainer.save_interval=1", "trainer.progress_bar=false",
              "trainer.rollout_max_response_len=32", "trainer.kl_eval_prompts=8"]


def cfg_of(*overrides, config_name="sweep"):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return load_config(compose(config_name=config_name, overrides=list(overrides)))


def damage(path: Path, lineno: int, edit) -> None:
    """Replace 1-based line ``lineno`` of a JSONL file with ``edit(row)`` (a dict, or raw text)."""
    lines = path.read_text().splitlines()
    new = edit(json.loads(lines[lineno - 1]))
    lines[lineno - 1] = new if isinstance(new, str) else json.dumps(new)
    path.write_text("\n".join(lines) + "\n")


def with_label(label):
    return lambda row: {**row, "label": label}


@pytest.fixture
def toy_copy(tmp_path, monkeypatch):
    """Copies of the toy eval and train files that the in-process loaders read instead of the real ones."""
    eval_file, train_file = tmp_path / "eval.jsonl", tmp_path / "train.jsonl"
    eval_file.write_bytes((TOY_DATA_DIR / "eval.jsonl").read_bytes())
    train_file.write_bytes((TOY_DATA_DIR / "train.jsonl").read_bytes())
    monkeypatch.setitem(data.SOURCES, "toy_arith", dataclasses.replace(data.SOURCES["toy_arith"], local_file=eval_file))
    monkeypatch.setattr(data, "TOY_TRAIN", dataclasses.replace(data.TOY_TRAIN, local_file=train_file))
    data.all_rows.cache_clear()
    yield eval_file, train_file
    data.all_rows.cache_clear()


@pytest.fixture
def home(tmp_path):
    """A throw-away repository root for the real entry points (``OPD_SUITE_HOME``)."""
    root = tmp_path / "home"
    (root / "data").mkdir(parents=True)
    for name in ("tasks", "artifacts", "data/raw"):
        (root / name).symlink_to(REPO_ROOT / name)
    (root / "data/toy_arith").mkdir()
    for split in ("train", "dev", "eval"):
        (root / f"data/toy_arith/{split}.jsonl").write_bytes((TOY_DATA_DIR / f"{split}.jsonl").read_bytes())
    return root


def run_cli(home: Path, module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPD_SUITE_HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    hydra_dir = f"hydra.sweep.dir={home}/multirun" if "-m" in args else f"hydra.run.dir={home}/run"
    return subprocess.run([sys.executable, "-m", module, *args, hydra_dir], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ item 2: labels that cannot be scored
def test_label_is_scorable_exact_cases():
    assert label_is_scorable("18", "integer") and label_is_scorable("336^\\circ", "integer")
    assert label_is_scorable("\\frac{14}{3}", "latex") and label_is_scorable("7", "latex")
    for label in ("abc", "n/a", "", "  ", "1.5"):
        assert not label_is_scorable(label, "integer"), label
    assert not label_is_scorable("\\frac{1}{2", "latex")  # unbalanced: math-verify cannot parse it


@pytest.mark.integration
def test_unscorable_eval_label_stops_evaluation_naming_file_and_line(home):
    damage(home / "data/toy_arith/eval.jsonl", 7, with_label("abc"))
    proc = run_cli(home, "suite.evaluate", "model=teacher", "task.limit=20")
    assert proc.returncode != 0
    assert "data/toy_arith/eval.jsonl:7: label 'abc'" in proc.stderr and "task.on_bad_rows=skip" in proc.stderr
    assert not (home / "results/evals.jsonl").exists(), "nothing may be scored on a file with a bad label"


@pytest.mark.integration
def test_skip_leaves_bad_rows_out_and_counts_them_in_the_row(tmp_path, toy_copy):
    from suite.evaluation.harness import evaluate

    eval_file, _ = toy_copy
    bad_id = eval_rows("toy_arith", "local")[2]["id"]
    damage(eval_file, 3, with_label("abc"))
    damage(eval_file, 5, lambda row: {k: v for k, v in row.items() if k != "label"})
    data.all_rows.cache_clear()
    row = evaluate(cfg_of(f"results_dir={tmp_path}", "model=teacher", "task.limit=20", "task.on_bad_rows=skip",
                          config_name="evaluate"), command="pytest")
    assert row["n"] == 20 and row["skipped_rows"] == 2 and row["on_bad_rows"] == "skip"
    assert [e.split(":")[1] for e in row["skipped_examples"]] == ["3", "5"]
    samples = [json.loads(x) for x in (tmp_path / row["samples_file"]).read_text().splitlines()]
    assert bad_id not in {s["id"] for s in samples} and all(label_is_scorable(s["label"], "integer") for s in samples)


def test_training_on_unscorable_labels_is_refused_before_any_step(tmp_path, toy_copy):
    from suite.training.trainer import OPDTrainer

    _, train_file = toy_copy
    rows = [json.loads(x) for x in train_file.read_text().splitlines()]
    train_file.write_text("".join(json.dumps({**r, "label": "n/a"}) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"train\.jsonl:1: label 'n/a' .* is not an integer"):
        OPDTrainer(cfg_of(*TINY_TRAIN), tmp_path / "run").train()
    with pytest.raises(DataError, match="no usable rows"):
        OPDTrainer(cfg_of(*TINY_TRAIN, "task.on_bad_rows=skip"), tmp_path / "run").train()
    assert not (tmp_path / "run/checkpoints").exists()


# ------------------------------------------------------- item 3: every setting checked, for the whole grid
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_typo_anywhere_in_the_grid_stops_the_sweep_before_job_0(home, launcher):
    proc = run_cli(home, "suite.sweep", "-m", "opd_kl_coef=0.25,abc", "reward_scale=1,-1", f"hydra/launcher={launcher}",
                   *TINY_TRAIN, timeout=120)
    assert proc.returncode == 1
    err = proc.stderr
    assert "3 of 4 sweep points refused before any job started" in err
    assert "job 2 (opd_kl_coef=abc reward_scale=1): bad config value for 'opd_kl_coef': Value 'abc'" in err
    assert "job 1 (opd_kl_coef=0.25 reward_scale=-1): bad config value reward_scale=-1.0: use a non-negative" in err
    assert not (home / "outputs").exists() and not (home / "results").exists(), "no job may have started"


@pytest.mark.parametrize("override, key", [
    ("reward_scale=-1", "reward_scale"), ("reward_scale=nan", "reward_scale"), ("opd_kl_coef=inf", "opd_kl_coef"),
    ("seed=-1", "seed"), ("task.on_bad_rows=ignore", "task.on_bad_rows"), ("trainer.lr=0", "trainer.lr"),
    ("trainer.clip_low=1", "trainer.clip_low"), ("trainer.clip_high=-0.1", "trainer.clip_high"),
    ("trainer.max_grad_norm=0", "trainer.max_grad_norm"), ("trainer.weight_decay=-1", "trainer.weight_decay"),
    ("trainer.kl_eval_prompts=0", "trainer.kl_eval_prompts"), ("trainer.rollout_temperature=inf", "rollout_temperature"),
    ("serve.port=70000", "serve.port"), ("serve.backoff_s=-1", "serve.backoff_s"),
    ("serve.request_timeout_s=0", "serve.request_timeout_s"), ("+student.context_length=0", "context_length"),
    ("eval.temperature=nan", "eval.temperature"),
])
def test_numeric_knobs_are_range_checked(override, key):
    with pytest.raises(ConfigError, match=key):
        cfg_of(override)


def test_zero_reward_scale_is_pure_distillation_but_zero_and_zero_is_refused():
    assert cfg_of("reward_scale=0").reward_scale == 0.0
    with pytest.raises(ConfigError, match="nothing to learn from"):
        cfg_of("reward_scale=0", "opd_kl_coef=0")


# ------------------------------------------------------------------ item 4: data errors say where
def test_empty_file_names_the_file(toy_copy):
    eval_file, _ = toy_copy
    eval_file.write_text("")
    with pytest.raises(DataError, match=r"eval\.jsonl: the file is empty .*suite\.toyworld\.build"):
        eval_rows("toy_arith", "local")


def test_non_json_training_line_names_file_and_line(toy_copy):
    _, train_file = toy_copy
    damage(train_file, 3, lambda row: '{"prompt": [{"role": "user", "content": "x"}], "label": ')
    with pytest.raises(DataError, match=r"train\.jsonl:3: not JSON"):
        train_rows("toy_arith", "local")


def test_json_line_that_is_not_an_object_names_file_and_line(toy_copy):
    eval_file, _ = toy_copy
    damage(eval_file, 2, lambda row: "[1, 2]")
    with pytest.raises(DataError, match=r"eval\.jsonl:2: a JSON list, not an object"):
        eval_rows("toy_arith", "local")


def test_fewer_usable_training_rows_than_a_rollout_batch_is_refused(toy_copy):
    from suite.training.fit import trainable_rows
    from transformers import AutoTokenizer

    _, train_file = toy_copy
    train_file.write_text("".join(train_file.read_text().splitlines(keepends=True)[:3]))
    tok = AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "student")
    with pytest.raises(DataError, match=r"3 usable training rows, fewer than trainer\.rollout_batch_size=4"):
        trainable_rows(cfg_of(*TINY_TRAIN), tok)


@pytest.mark.integration
def test_non_json_eval_line_is_one_short_message_not_an_arrow_traceback(home):
    damage(home / "data/toy_arith/eval.jsonl", 5, lambda row: "{this is not json")
    proc = run_cli(home, "suite.evaluate", "task.limit=10", timeout=300)
    assert proc.returncode != 0 and "data/toy_arith/eval.jsonl:5: not JSON" in proc.stderr
    assert "pyarrow" not in proc.stderr and "DatasetGenerationError" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 30, proc.stderr


def test_missing_field_is_reported_as_missing_with_a_1_based_line(toy_copy):
    eval_file, _ = toy_copy
    damage(eval_file, 1, lambda row: {k: v for k, v in row.items() if k != "label"})
    with pytest.raises(DataError, match=r"eval\.jsonl:1: field 'label' is missing or null \(the row has "
                                        r"\['kind', 'prompt', 'solution'\]\)"):
        eval_rows("toy_arith", "local")
    damage(eval_file, 1, with_label("  "))
    data.all_rows.cache_clear()
    with pytest.raises(DataError, match=r"eval\.jsonl:1: field 'label' holds an empty answer"):
        eval_rows("toy_arith", "local")


def long_prompt(row):
    chat = row["prompt"]
    return {**row, "prompt": [{**chat[0], "content": chat[0]["content"] + " 7" * 100_000}]}  # 200k characters


def test_over_long_training_prompt_is_refused_before_any_allocation(tmp_path, toy_copy):
    from suite.training.fit import read_data_report, trainable_rows
    from suite.training.trainer import OPDTrainer
    from transformers import AutoTokenizer

    _, train_file = toy_copy
    damage(train_file, 4, long_prompt)
    with pytest.raises(DataError, match=r"train\.jsonl:4: prompt is \d{5,} tokens; with "
                                        r"trainer\.rollout_max_response_len=32 it must be at most 480"):
        OPDTrainer(cfg_of(*TINY_TRAIN), tmp_path / "run").train()
    tok = AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "student")
    rows = trainable_rows(cfg_of(*TINY_TRAIN, "task.on_bad_rows=skip"), tok, tmp_path / "skip")
    report = read_data_report(tmp_path / "skip")
    assert report["skipped_rows"] == 1 and report["skipped"][0]["where"].endswith("train.jsonl:4")
    assert report["train_rows"] == len(rows) == len(train_rows("toy_arith", "local")) - 1


@pytest.mark.integration
def test_over_long_eval_prompt_is_truncated_and_counted_in_the_row(tmp_path, toy_copy):
    from suite.evaluation.harness import evaluate

    eval_file, _ = toy_copy
    damage(eval_file, 2, long_prompt)
    row = evaluate(cfg_of(f"results_dir={tmp_path}", "task.limit=4", config_name="evaluate"), command="pytest")
    assert row["n"] == 4 and row["truncated_prompts"] == 1
    budget = row["generation_budget"]
    assert budget["context_length"] == 512 and budget["longest_prompt"] > 100_000 and not budget["clamped"]


@pytest.mark.integration
def test_readme_gsm8k_smoke_run_clamps_generation_to_the_context_and_records_it(tmp_path):
    from suite.evaluation.harness import evaluate

    row = evaluate(cfg_of(f"results_dir={tmp_path}", "task=gsm8k", "task.limit=3", config_name="evaluate"),
                   command="pytest")
    budget = row["generation_budget"]
    assert row["n"] == 3 and budget["max_gen_toks_requested"] == 2048 and budget["clamped"]
    assert budget["longest_prompt"] + budget["max_gen_toks"] <= budget["context_length"] == 512
    assert row["sampling"]["max_gen_toks"] == budget["max_gen_toks"] and row["truncated_prompts"] == 0


# ------------------------------------------------------------- item 5: a torn line never blocks work
def test_torn_eval_row_is_set_aside_on_read_and_the_baseline_is_reused(tmp_path):
    from suite.evaluation.harness import cached_eval

    cfg = cfg_of(f"results_dir={tmp_path}", "task.limit=10")
    first = cached_eval(cfg, "student", "pytest")  # a real eval row
    with open(tmp_path / "evals.jsonl", "a") as f:
        f.write('{"schema": 1, "row_id": "torn-by-a-kill", "acc')  # a writer killed mid-row
    again = cached_eval(cfg, "student", "pytest")
    assert again["row_id"] == first["row_id"], "the baseline lookup reuses the row instead of stopping"
    assert (tmp_path / "evals.jsonl.partial").read_text() == '{"schema": 1, "row_id": "torn-by-a-kill", "acc\n'
    assert [r["row_id"] for r in read_rows(tmp_path / "evals.jsonl")] == [first["row_id"]]


def test_torn_metrics_line_does_not_stop_resume(tmp_path):
    from suite.training.trainer import OPDTrainer, read_metrics

    OPDTrainer(cfg_of(*TINY_TRAIN), tmp_path / "run").train()
    with open(tmp_path / "run/metrics.jsonl", "a") as f:
        f.write('{"step": 2, "reward": 0.')  # killed while logging step 2
    OPDTrainer(cfg_of(*TINY_TRAIN, "trainer.num_rollout=2"), tmp_path / "run").train()
    assert [m["step"] for m in read_metrics(tmp_path / "run")] == [1, 2]
    assert (tmp_path / "run/metrics.jsonl.partial").read_text() == '{"step": 2, "reward": 0.\n'


# ----------------------------------------------------------------------- item 6: the smaller faults
class _Payload:
    """What a copied run directory could carry: unpickling it runs a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_trainer_state_is_loaded_weights_only_and_a_code_carrying_pickle_is_refused(tmp_path):
    from suite.training.trainer import STATE_FILE, OPDTrainer, list_checkpoints

    OPDTrainer(cfg_of(*TINY_TRAIN), tmp_path / "run").train()
    state_file = list_checkpoints(tmp_path / "run")[-1] / STATE_FILE
    state = torch.load(state_file, weights_only=True)  # what the suite saves loads the safe way
    assert state["step"] == 1 and isinstance(state["python_rng"], tuple)
    marker = tmp_path / "code-ran"
    torch.save({**state, "extra": _Payload(marker)}, state_file)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        OPDTrainer(cfg_of(*TINY_TRAIN, "trainer.num_rollout=2"), tmp_path / "run").train()
    assert not marker.exists(), "resuming must not run code from trainer_state.pt"
    torch.load(state_file, weights_only=False)  # the payload is real: the unsafe load runs it
    assert marker.exists()


@pytest.fixture(scope="module")
def other_tokenizer_teacher(tmp_path_factory):
    """The toy teacher with one more special token, resized embeddings and a renamed assistant role."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("other-teacher")
    tok = AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "teacher")
    model = AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "teacher")
    tok.add_tokens(["<|tool|>"], special_tokens=True)
    tok.chat_template = tok.chat_template.replace("<|im_start|>assistant", "<|im_start|>model")
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_teacher_with_another_tokenizer_is_refused_before_any_eval_row(tmp_path, other_tokenizer_teacher):
    from suite.sweep import run_job
    from suite.training.compat import ModelPairError

    cfg = cfg_of(*TINY_TRAIN, f"teacher.path={other_tokenizer_teacher}", f"results_dir={tmp_path}/results",
                 f"runs_dir={tmp_path}/runs", "task.limit=10")
    with pytest.raises(ModelPairError) as err:
        run_job(cfg, "pytest")
    msg = str(err.value)
    assert "vocabulary size (config.json vocab_size, the logit width): teacher 446 vs student 445" in msg
    assert "id 445: teacher '<|tool|>' vs student None" in msg
    assert "chat template differs" in msg and "'<|im_start|>model" in msg
    assert not (tmp_path / "results").exists(), "no eval row of the bad teacher may be appended"


def test_grid_with_a_mismatched_pair_is_refused_before_job_0(home, other_tokenizer_teacher):
    proc = run_cli(home, "suite.sweep", "-m", "opd_kl_coef=0.5,1", f"teacher.path={other_tokenizer_teacher}",
                   *TINY_TRAIN, timeout=120)
    assert proc.returncode == 1 and "cannot teach student toy-student" in proc.stderr
    assert not (home / "results").exists() and not (home / "outputs").exists()


def test_missing_sglang_environment_names_the_setup_script(tmp_path):
    from suite.config import ModelConfig, ServeConfig
    from suite.serving.server import ServerError, SGLangServer

    missing = ServeConfig(python=str(tmp_path / "no-venv/bin/python"), log_dir=str(tmp_path))
    with pytest.raises(ServerError, match=r"does not exist\. Fix: `bash scripts/setup_sglang_cpu\.sh`.*serve\.python="):
        SGLangServer(ModelConfig(path=str(TOY_MODELS_DIR / "teacher")), missing).start()
    without = ServeConfig(python=sys.executable, log_dir=str(tmp_path))  # the suite's venv has no sglang
    with pytest.raises(ServerError, match=r"has no sglang package.*setup_sglang_cpu\.sh"):
        SGLangServer(ModelConfig(path=str(TOY_MODELS_DIR / "teacher")), without).start()


_CLOCKED_CHILD = """
import sys, time
from suite.training.run_clock import RunClock
with RunClock(sys.argv[1], beat_s=0.1) as clock:
    with clock.training():
        print("training", flush=True)
        time.sleep(600)
"""


def test_time_is_summed_over_an_invocation_killed_with_sigkill(tmp_path):
    from suite.training.run_clock import RunClock

    child = subprocess.Popen([sys.executable, "-c", _CLOCKED_CHILD, str(tmp_path / "run")], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "training"
    time.sleep(1.5)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with RunClock(tmp_path / "run") as clock:
        with clock.training():
            time.sleep(0.5)
        totals = clock.totals()
    assert totals["invocations"] == 2
    assert totals["train_seconds"] >= 1.5 + 0.5 - 0.2  # the killed one counts up to its last beat (0.1 s)
    assert totals["wall_seconds"] >= totals["train_seconds"]
