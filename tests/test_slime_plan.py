# Run: pytest tests/test_slime_plan.py
"""trainer=slime: one mapping table covers every field, every rendered flag is slime's, the tutorial's recipe
renders to the tutorial's flags, and `python -m suite.sweep trainer=slime` writes and prints a plan."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from suite.config import ConfigError, SlimeConfig, TrainerConfig, config_hash, family_hash, load_config
from suite.paths import REPO_ROOT
from suite.slime.flags import SGLANG_SERVER, TO_HF, TRAIN, read_flag_list
from suite.slime.mapping import MODEL_ARGS, RECIPE, RUN, SLIME, TABLE, TRAINER, Paths, trainer_record
from suite.slime.plan import build_plan, check_flags, converter_command
from suite.slime.runner import launch, saved_iterations

TUTORIAL = ["trainer=slime", "teacher=qwen3_8b", "student=qwen3_4b", "task=dapo_math"]
RUN_DIR = Path("/runs/example")
PATHS = Paths(prompt_data="D", save="S", ref_load="R", hf_checkpoint="H", rm_url="U", tensorboard="T")


def _cfg(overrides=()):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return load_config(compose(config_name="sweep", overrides=[*TUTORIAL, *overrides]))


def test_every_trainer_field_has_one_entry():
    keys = [e.key for e in TABLE]
    assert len(keys) == len(set(keys)), "one entry per field"
    expected = {f"trainer.{f.name}" for f in dataclasses.fields(TrainerConfig)} | \
               {f"trainer.slime.{f.name}" for f in dataclasses.fields(SlimeConfig)}
    assert expected - {e.key for e in TRAINER + SLIME} == set(), "trainer fields without a mapping entry"
    assert {e.key for e in TRAINER + SLIME} - expected == set(), "entries for fields that do not exist"
    for entry in TABLE:
        assert entry.flags or entry.note, f"{entry.key}: no flag and no note saying why not applicable"


def test_every_mapped_flag_is_in_slimes_argument_list():
    flags = read_flag_list()
    for entry in TRAINER + SLIME + RUN + RECIPE:
        unknown = [f for f in entry.flags if f != "$MODEL_ARGS" and f not in flags.commands[TRAIN]]
        assert not unknown, f"{entry.key} maps to flags slime does not have: {unknown}"


@pytest.mark.parametrize("overrides", [[], ["trainer.slime.colocate=false",
                                            "trainer.slime.tensor_model_parallel_size=1", "opd_kl_coef=0.5"]])
def test_each_entry_renders_only_the_flags_it_declares(overrides):
    cfg = _cfg(overrides)
    cfg.trainer.tensorboard = bool(overrides)  # set directly: the config refuses it where tensorboard is absent
    for entry in TABLE:
        rendered = [a for a in entry.args(cfg, PATHS) if a.startswith("--") or a == MODEL_ARGS]
        declared = {"$MODEL_ARGS" if f == "$MODEL_ARGS" else f for f in entry.flags}
        assert {"$MODEL_ARGS" if a == MODEL_ARGS else a for a in rendered} <= declared, entry.key


def test_the_flag_list_names_the_commits_it_came_from():
    flags = read_flag_list()
    assert flags.refs["slime"].startswith("THUDM/slime@624b824a898ab0ec1fcb4d373004c7f3852bf515")
    assert "Megatron-LM@" in flags.refs["megatron"] and "0.5.15.post1" in flags.refs["sglang"]
    assert len(flags.commands[TRAIN]) > 1000 and flags.commands[TRAIN]["--use-opd"] == "slime"
    assert flags.commands[TRAIN]["--tensor-model-parallel-size"] == "megatron"
    assert "--sglang-tp-size" not in flags.commands[TRAIN]  # slime sets the engines' TP itself (skipped_args)


def test_tutorial_recipe_renders_to_the_tutorials_flags():
    """Golden: the tutorial's job (Qwen3-8B teacher behind SGLang, Qwen3-4B student, dapo-math, 10 rollouts x
    16 prompts x 4 samples, <= 2048 tokens, T=1, lr 1e-6, global batch 64, opd_kl_coef 1, +1/-1 reward as the
    advantage) on 8 colocated GPUs, written out by hand."""
    cfg = _cfg()
    plan = build_plan(cfg, RUN_DIR, Path("/root/slime"))
    expected = [
        MODEL_ARGS, "--actor-num-nodes", "1", "--actor-num-gpus-per-node", "8", "--rollout-num-gpus", "8",
        "--rollout-num-gpus-per-engine", "2", "--colocate", "--tensor-model-parallel-size", "2", "--sequence-parallel",
        "--use-dynamic-batch-size", "--max-tokens-per-gpu", "9216", "--sglang-mem-fraction-static", "0.7",
        "--ref-load", '"$HF_CHECKPOINT"', "--hf-checkpoint", '"$HF_CHECKPOINT"',
        "--load", "/runs/example/slime/torch_dist", "--save", "/runs/example/slime/torch_dist",
        "--prompt-data", "/runs/example/slime/train.jsonl",
        "--apply-chat-template", "--apply-chat-template-kwargs", '{"enable_thinking": true}',
        "--seed", "0", "--rollout-seed", "0",
        "--custom-rm-path", "slime.rollout.on_policy_distillation.reward_func",
        "--rm-url", "http://127.0.0.1:30000/generate", "--opd-kl-coef", "1",
        "--num-rollout", "10", "--rollout-batch-size", "16", "--n-samples-per-prompt", "4",
        "--rollout-max-response-len", "2048", "--rollout-temperature", "1", "--global-batch-size", "64",
        "--lr", "1e-06", "--save-interval", "5", "--use-opd", "--opd-type", "sglang",
        "--advantage-estimator", "grpo",
        "--custom-reward-post-process-path", "suite.slime.reward_hook.post_process_rewards",
        "--eps-clip", "0.2", "--eps-clip-high", "0.28", "--clip-grad", "1", "--weight-decay", "0",
        "--input-key", "prompt", "--label-key", "label", "--rollout-shuffle",
        "--optimizer", "adam", "--lr-decay-style", "constant", "--adam-beta1", "0.9", "--adam-beta2", "0.98",
        "--attention-dropout", "0.0", "--hidden-dropout", "0.0",
        "--accumulate-allreduce-grads-in-fp32", "--attention-softmax-in-fp32", "--attention-backend", "flash",
    ]
    assert plan.train_argv == expected
    assert plan.teacher_argv == ["python3", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B",
                                 "--host", "127.0.0.1", "--port", "30000", "--dtype", "bfloat16", "--tp-size", "1",
                                 "--context-length", "8192", "--mem-fraction-static", "0.8"]
    assert plan.job_env["OPD_SUITE_ADVANTAGE_MODE"] == "raw" and plan.job_env["OPD_SUITE_REWARD_SCALE"] == "1"
    assert plan.job_env["PYTHONPATH"] == f"/root/Megatron-LM:/root/slime:{REPO_ROOT}"
    script = plan.script
    assert "source /root/slime/scripts/models/qwen3-4B.sh" in script
    assert "CUDA_VISIBLE_DEVICES=8 python3 -m sglang.launch_server" in script
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 ray start --head --num-gpus 8" in script
    assert "-- python3 /root/slime/train.py" in script
    check_flags(plan, cfg)  # nothing outside slime's argument list


def test_teacher_and_converter_commands_use_flags_their_tools_have():
    cfg = _cfg()
    plan = build_plan(cfg, RUN_DIR, None)
    flags = read_flag_list()
    assert flags.unknown(SGLANG_SERVER, plan.teacher_argv) == []
    assert flags.unknown(TO_HF, converter_command(cfg, plan, "i", "o", "h")) == []
    assert plan.slime_dir == Path("/root/slime") and not plan.slime_found


def test_attaching_to_a_teacher_url_starts_no_server():
    plan = build_plan(_cfg(["serve.url=http://teacher-host:31000"]), RUN_DIR, None)
    assert plan.teacher_argv is None and "sglang.launch_server" not in plan.script
    assert plan.train_argv[plan.train_argv.index("--rm-url") + 1] == "http://teacher-host:31000/generate"
    assert "urlopen(sys.argv[1], timeout=5)' http://teacher-host:31000/health" in plan.script


def test_a_flag_outside_the_list_is_refused():
    cfg = _cfg()
    plan = build_plan(cfg, RUN_DIR, None)
    plan.train_argv.append("--opd-kl-coeff")
    with pytest.raises(ConfigError, match="--opd-kl-coeff"):
        check_flags(plan, cfg)


@pytest.mark.parametrize("override, key", [
    ("trainer.opd_estimator=full", "trainer.opd_estimator"),
    ("trainer.rollout_temperature=0.7", "trainer.rollout_temperature"),
    ("trainer.slime.rollout_num_gpus=7", "trainer.slime.rollout_num_gpus"),
    ("student=toy", "trainer.slime.model_args_script"),
])
def test_settings_slime_cannot_run_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_plan(_cfg([override]), RUN_DIR, None)


def test_dry_run_does_not_change_the_run():
    a, b = _cfg(["trainer.slime.dry_run=true"]), _cfg(["trainer.slime.dry_run=false"])
    from suite.sweep import run_name

    assert (run_name(a), config_hash(a), family_hash(a)) == (run_name(b), config_hash(b), family_hash(b))
    assert "slime.dry_run" not in trainer_record(a.trainer) and trainer_record(a.trainer)["slime.colocate"] is True
    local = load_config({})  # the local trainer's row has exactly the fields it had before slime existed
    assert "slime" not in trainer_record(local.trainer) and not any(k.startswith("slime") for k in
                                                                      trainer_record(local.trainer))


def _iteration(save: Path, n: int, complete=True):
    d = save / f"iter_{n:07d}"
    d.mkdir(parents=True)
    (d / "common.pt").write_text("x")
    if complete:
        (d / ".metadata").write_text("x")


def test_saved_iterations_are_complete_ones_up_to_the_tracker(tmp_path):
    assert saved_iterations(tmp_path) == []
    _iteration(tmp_path, 4)
    _iteration(tmp_path, 9)
    _iteration(tmp_path, 14, complete=False)  # being written
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("9")
    _iteration(tmp_path, 19)  # newer than the tracker: its save has not finished
    assert [n for n, _ in saved_iterations(tmp_path)] == [4, 9]
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("release")
    with pytest.raises(ValueError, match="release"):
        saved_iterations(tmp_path)


def test_launch_is_skipped_once_the_last_iteration_is_saved(tmp_path):
    cfg = _cfg(["trainer.num_rollout=2", "trainer.save_interval=1"])
    plan = build_plan(cfg, tmp_path / "run", None)
    plan.dir.mkdir(parents=True)
    (plan.dir / "plan.sh").write_text("exit 3\n")  # would fail if it ran
    save = Path(plan.paths.save)
    _iteration(save, 0)
    (save / "latest_checkpointed_iteration.txt").write_text("0")
    with pytest.raises(RuntimeError, match="exited with code 3"):
        launch(cfg, plan)  # iteration 1 (the last) is missing: the plan runs
    _iteration(save, 1)
    (save / "latest_checkpointed_iteration.txt").write_text("1")
    (plan.dir / "train_seconds.txt").write_text("812\n")
    assert launch(cfg, plan) == 812.0


def _sweep(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "SLIME_DIR"}
    return subprocess.run([sys.executable, "-m", "suite.sweep", *args, f"runs_dir={tmp_path}/runs",
                           f"results_dir={tmp_path}/results", f"hydra.sweep.dir={tmp_path}/multirun",
                           f"hydra.run.dir={tmp_path}/run"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env={**env, "OMP_NUM_THREADS": "1"})


def test_sweep_writes_and_prints_one_plan_per_point(tmp_path):
    """`python -m suite.sweep -m trainer=slime ... opd_kl_coef=0.5,1,2` where slime is absent: a dry run that
    writes each point's plan and data (the train split only) and scores nothing."""
    proc = _sweep(tmp_path, "-m", *TUTORIAL, "opd_kl_coef=0.5,1,2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    plans = sorted((tmp_path / "runs").glob("*/slime/plan.json"))
    assert len(plans) == 3 and proc.stdout.count("#!/usr/bin/env bash") == 3
    coefs = []
    for path in plans:
        info = json.loads(path.read_text())
        argv = info["train"]["argv"]
        coefs.append(argv[argv.index("--opd-kl-coef") + 1])
        assert (path.parent / "plan.sh").read_text().count("--opd-kl-coef") == 1
        assert info["data"]["split"] == "train" and info["data"]["rows"] > 16000
        assert info["checked_against"]["slime"].startswith("THUDM/slime@624b824a898a")
    assert sorted(coefs) == ["0.5", "1", "2"]
    from suite.data import eval_rows
    held = {r["label"] + r["prompt"][0]["content"] for r in eval_rows("dapo_math")}
    data = [json.loads(x) for x in (plans[0].parent / "train.jsonl").read_text().splitlines()]
    assert not held & {r["label"] + r["prompt"][0]["content"] for r in data}, "eval rows in slime's prompt data"
    assert "dry run (slime not found here)" in proc.stdout
    assert not (tmp_path / "results").exists(), "a dry run scores nothing"


def test_running_without_slime_stops_with_one_message(tmp_path):
    proc = _sweep(tmp_path, *TUTORIAL, "trainer.slime.dry_run=false")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr  # one message, no traceback
    assert "needs slime" in proc.stderr and "SLIME_DIR" in proc.stderr and "git clone https://github.com/THUDM/slime" \
        in proc.stderr and "plan.sh" in proc.stderr
