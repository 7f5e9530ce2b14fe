# Run: pytest tests/test_trainer.py
"""A tiny OPD run: finite loss, every parameter moves, checkpoints reload, resume reproduces the run."""

import json
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoModelForCausalLM, AutoTokenizer

from suite.config import load_config
from suite.paths import REPO_ROOT, TOY_MODELS_DIR
from suite.training.trainer import OPDTrainer, list_checkpoints, read_metrics

TIMING = {"rollout_tok_s", "teacher_tok_s", "train_tok_s", "step_seconds", "rollout_seconds", "teacher_seconds",
          "reward_seconds", "update_seconds"}


def tiny_cfg(*overrides):
    base = ["trainer.num_rollout=2", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
            "trainer.global_batch_size=4", "trainer.save_interval=1", "trainer.progress_bar=false",
            "trainer.rollout_max_response_len=32"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return load_config(compose(config_name="sweep", overrides=base + list(overrides)))


def _weights(path):
    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(path).state_dict().items()}


@pytest.mark.parametrize("estimator", ["full", "sampled", "topk"])
def test_two_step_run_trains_every_parameter(tmp_path, estimator):
    cfg = tiny_cfg(f"trainer.opd_estimator={estimator}")
    last = OPDTrainer(cfg, tmp_path / "run").train()
    metrics = read_metrics(tmp_path / "run")
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert all(math.isfinite(v) for v in m.values()), m
        assert m.get("kl_exact", 0) >= 0 and 0 <= m["truncation_rate"] <= 1
        assert ("kl_exact" in m) == (estimator == "full")  # only the full estimator has the teacher's distribution
    before, after = _weights(TOY_MODELS_DIR / "student"), _weights(last)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters that did not change: {unchanged}"
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_000001", "step_000002"]


def test_checkpoint_reloads_and_generates(tmp_path):
    last = OPDTrainer(tiny_cfg(), tmp_path / "run").train()
    model, tok = AutoModelForCausalLM.from_pretrained(last), AutoTokenizer.from_pretrained(last)
    text = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                   tokenize=False)
    out = model.generate(**tok(text, return_tensors="pt", add_special_tokens=False), max_new_tokens=8, do_sample=False)
    assert out.shape[1] > 0 and (last / "trainer_state.pt").exists() and (last / "tokenizer.json").exists()


def test_resume_after_step_one_equals_the_uninterrupted_run(tmp_path):
    full_cfg = tiny_cfg("trainer.num_rollout=3")
    OPDTrainer(full_cfg, tmp_path / "a").train()
    OPDTrainer(tiny_cfg("trainer.num_rollout=1"), tmp_path / "b").train()  # "interrupted" after step 1
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:  # a half-logged step 2 from the crash
        f.write(json.dumps({"step": 2, "reward": 99.0}) + "\n")
    OPDTrainer(full_cfg, tmp_path / "b").train()
    strip = lambda ms: [{k: v for k, v in m.items() if k not in TIMING} for m in ms]  # noqa: E731
    assert strip(read_metrics(tmp_path / "a")) == strip(read_metrics(tmp_path / "b"))
    wa, wb = _weights(list_checkpoints(tmp_path / "a")[-1]), _weights(list_checkpoints(tmp_path / "b")[-1])
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_several_optimizer_steps_per_rollout(tmp_path):
    cfg = tiny_cfg("trainer.global_batch_size=2", "trainer.num_rollout=1")
    OPDTrainer(cfg, tmp_path / "run").train()
    [m] = read_metrics(tmp_path / "run")
    assert math.isfinite(m["pg_loss"]) and m["clip_frac"] >= 0


def test_bad_batch_geometry_is_refused_at_start_up():
    from suite.config import ConfigError

    with pytest.raises(ConfigError, match="global_batch_size"):
        tiny_cfg("trainer.global_batch_size=3")
