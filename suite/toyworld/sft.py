"""Supervised fine-tuning of the toy teacher and student, and a fast greedy accuracy check.

The accuracy check here is only the build's stopping rule on the *dev* split; reported numbers
come from ``python -m suite.evaluate`` (lm-eval) on the eval split.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from suite.scoring import score
from suite.toyworld.problems import worked_solution


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a toy Qwen3 checkpoint."""

    hidden_size: int
    num_hidden_layers: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int


@dataclass(frozen=True)
class SFTSpec:
    """SFT schedule. Training stops at the first dev check at or above ``stop_at_dev_acc``."""

    max_steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    first_check: int  # no dev check before this step
    check_every: int
    stop_at_dev_acc: float
    thinking_fraction: float  # share of SFT rows rendered with enable_thinking=True


def new_model(spec: ModelSpec, tok: PreTrainedTokenizerFast, max_positions: int, seed: int) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tok),
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        rope_theta=10000.0,
        **spec.__dict__,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def encode_example(tok: PreTrainedTokenizerFast, row: dict, thinking: bool) -> tuple[list[int], int]:
    """Token ids of prompt + worked solution + <|im_end|>, and the prompt length (not trained on)."""
    prompt_ids = tok.apply_chat_template(
        row["prompt"], add_generation_prompt=True, enable_thinking=thinking, tokenize=True, return_dict=False
    )
    target = worked_solution(row["solution"], row["label"], thinking) + tok.eos_token
    return list(prompt_ids) + tok.encode(target, add_special_tokens=False), len(prompt_ids)


def _batch(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    input_ids_B_T = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels_B_T = torch.full_like(input_ids_B_T, -100)
    mask_B_T = torch.zeros_like(input_ids_B_T)
    for i, (ids, n_prompt) in enumerate(examples):
        input_ids_B_T[i, : len(ids)] = torch.tensor(ids)
        labels_B_T[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        mask_B_T[i, : len(ids)] = 1
    return {"input_ids": input_ids_B_T, "attention_mask": mask_B_T, "labels": labels_B_T}


def response_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over response tokens; the LM head runs only where a label is."""
    hidden_B_T_H = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels_B_T = batch["labels"][:, 1:]
    keep_B_T = labels_B_T != -100
    logits_N_V = model.lm_head(hidden_B_T_H[:, :-1][keep_B_T])
    return torch.nn.functional.cross_entropy(logits_N_V, labels_B_T[keep_B_T])


def _lr_factor(step: int, spec: SFTSpec) -> float:
    if step < spec.warmup_steps:
        return (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.max_steps - spec.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def sft(model, tok, train_rows: list[dict], dev_rows: list[dict], spec: SFTSpec, seed: int, log=print) -> dict:
    """Train ``model`` in place; returns the steps taken and the dev accuracy at the stop."""
    rng = random.Random(seed)
    encoded = {think: [encode_example(tok, r, think) for r in train_rows] for think in (True, False)}
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.98), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, spec))
    dev_acc, start = float("nan"), time.time()
    for step in range(1, spec.max_steps + 1):
        model.train()
        picks = [(rng.randrange(len(train_rows)), rng.random() < spec.thinking_fraction) for _ in range(spec.batch_size)]
        batch = _batch([encoded[think][i] for i, think in picks], tok.pad_token_id)
        loss = response_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step >= spec.first_check and (step - spec.first_check) % spec.check_every == 0:
            dev_acc = greedy_accuracy(model, tok, dev_rows)
            log(f"  step {step:5d}  loss {loss.item():.4f}  dev acc {dev_acc:.3f}  ({time.time() - start:.0f}s)")
            if dev_acc >= spec.stop_at_dev_acc:
                return {"steps": step, "dev_accuracy": dev_acc, "seconds": round(time.time() - start, 1)}
    return {"steps": spec.max_steps, "dev_accuracy": dev_acc, "seconds": round(time.time() - start, 1)}


@torch.no_grad()
def greedy_responses(model, tok, rows: list[dict], thinking: bool = True, batch_size: int = 128,
                     max_new_tokens: int = 48) -> list[str]:
    """Greedy completions (decoded, special tokens skipped) for dapo-schema rows."""
    model.eval()
    tok.padding_side = "left"
    out: list[str] = []
    for i in range(0, len(rows), batch_size):
        texts = [
            tok.apply_chat_template(r["prompt"], add_generation_prompt=True, enable_thinking=thinking, tokenize=False)
            for r in rows[i : i + batch_size]
        ]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        gen = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        out += tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def greedy_accuracy(model, tok, rows: list[dict], thinking: bool = True) -> float:
    responses = greedy_responses(model, tok, rows, thinking=thinking)
    return sum(score(resp, r["label"]).correct for resp, r in zip(responses, rows)) / len(rows)
