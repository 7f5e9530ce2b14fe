"""Held-out reverse KL(student || teacher): a before/after measurement of an OPD run (nothing trains on it)."""

from __future__ import annotations

from pathlib import Path

import torch

from suite.config import SuiteConfig
from suite.training import opd_math
from suite.training.fit import heldout_rows
from suite.training.rollout import response_logprobs, sample_rollouts, token_logprobs


@torch.no_grad()
def heldout_reverse_kl(cfg: SuiteConfig, model_path: str | Path, teacher) -> float:
    """Per-token reverse KL(student || teacher) on the student's own T=1 samples of held-out prompts.

    Exact over the vocabulary when the teacher returns full distributions, else the sampled-token
    estimate. Only a measurement: nothing here trains, so using eval prompts leaks nothing.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, cfg.student.dtype))
    model = model.to(cfg.trainer.device).eval()
    tok = AutoTokenizer.from_pretrained(model_path)
    rows = heldout_rows(cfg, tok)[: cfg.trainer.kl_eval_prompts]  # validated; prompts that fit the context
    torch.manual_seed(cfg.seed + 12345)
    total, tokens = 0.0, 0.0
    for lo in range(0, len(rows), 128):
        batch = sample_rollouts(model, tok, [r["prompt"] for r in rows[lo : lo + 128]], 1.0,
                                cfg.trainer.rollout_max_response_len, cfg.student.enable_thinking)
        t_scores = teacher.score(batch, full=cfg.trainer.teacher_backend == "hf")
        logp_B_T_V = response_logprobs(model, batch)
        if t_scores.logp_full_B_T_V is not None:
            kl_B_T = opd_math.exact_reverse_kl(logp_B_T_V, t_scores.logp_full_B_T_V)
        else:
            kl_B_T = opd_math.sampled_reverse_kl(token_logprobs(logp_B_T_V, batch.response_ids_B_T), t_scores.logp_B_T)
        total += (kl_B_T * batch.response_mask_B_T).sum().item()
        tokens += batch.response_mask_B_T.sum().item()
    return total / max(tokens, 1.0)
