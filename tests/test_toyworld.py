# Run: pytest tests/test_toyworld.py            (add -m slow for the rebuild)
"""The committed toy checkpoints are real HF checkpoints; the build reproduces them within the bands."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM

from suite.data import eval_rows
from suite.paths import TOY_DATA_DIR, TOY_MODELS_DIR
from suite.toyworld.build import ToyBuildConfig, build, is_current
from suite.toyworld.sft import greedy_accuracy, greedy_responses

TEACHER_BAND, STUDENT_BAND = (0.85, 1.0), (0.20, 0.45)


@pytest.fixture(scope="module")
def teacher():
    return AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "teacher"), AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "teacher")


def test_committed_build_is_current():
    assert is_current(TOY_MODELS_DIR, ToyBuildConfig()), "run `python -m suite.toyworld.build` and commit artifacts/toy"


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_checkpoint_is_a_qwen3_safetensors_model(role):
    model = AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / role)
    assert isinstance(model, Qwen3ForCausalLM)
    assert (TOY_MODELS_DIR / role / "model.safetensors").exists()
    assert json.loads((TOY_MODELS_DIR / role / "config.json").read_text())["model_type"] == "qwen3"


def test_student_is_smaller_than_teacher():
    n = {r: sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / r).parameters())
         for r in ("teacher", "student")}
    assert n["student"] < n["teacher"] / 2


def test_chat_template_honours_enable_thinking(teacher):
    _, tok = teacher
    msgs = [{"role": "user", "content": "What is 2 + 3?"}]
    on = tok.apply_chat_template(msgs, add_generation_prompt=True, enable_thinking=True, tokenize=False)
    off = tok.apply_chat_template(msgs, add_generation_prompt=True, enable_thinking=False, tokenize=False)
    assert on == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    assert off == on + "<think>\n\n</think>\n\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_digits_are_single_tokens(teacher):
    _, tok = teacher
    assert [tok.decode([i]) for i in tok.encode("123", add_special_tokens=False)] == ["1", "2", "3"]
    assert tok.convert_tokens_to_ids("</think>") != tok.unk_token_id


def test_teacher_generates_thinking_then_an_answer(teacher):
    model, tok = teacher
    rows = eval_rows("toy_arith", "local")[:8]
    responses = greedy_responses(model, tok, rows, thinking=True)
    assert all(r.startswith("<think>") and "</think>" in r and "Answer:" in r for r in responses)
    no_think = greedy_responses(model, tok, rows, thinking=False)
    assert all("<think>" not in r and r.startswith("Answer:") for r in no_think)


@pytest.mark.slow
def test_build_reproduces_within_bands(tmp_path):
    """Rebuild from scratch (minutes) and check the same accuracy bands on the 500 eval rows."""
    manifest = build(models_dir=tmp_path / "toy", data_dir=tmp_path / "data", force=True)
    rows = eval_rows("toy_arith", "local")
    for role, (lo, hi) in (("teacher", TEACHER_BAND), ("student", STUDENT_BAND)):
        model = AutoModelForCausalLM.from_pretrained(tmp_path / "toy" / role, torch_dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(tmp_path / "toy" / role)
        acc = greedy_accuracy(model, tok, rows)
        assert lo <= acc <= hi, f"rebuilt {role}: greedy accuracy {acc:.3f} outside [{lo}, {hi}]"
        assert manifest[role]["eval_accuracy_greedy"] == pytest.approx(acc)
    for name in ("train", "dev", "eval"):
        assert (tmp_path / "data" / f"{name}.jsonl").read_text() == (TOY_DATA_DIR / f"{name}.jsonl").read_text()
