"""Held-out reverse KL(student || teacher): a before/after measurement of an OPD run (nothing trains on it)."""

from __future__ import annotations

from pathlib import Path

import torch

from suite.config import SuiteConfig
from suite.training.fit import heldout_rows
from suite.training.policy import PolicyHead, Precision, dtype_of, load_causal_lm, rows
from suite.training import fast_decode
from suite.training.engine import make_engine

PROMPTS_PER_BATCH = 128


@torch.no_grad()
def heldout_reverse_kl(cfg: SuiteConfig, model_path: str | Path, teacher) -> float:
    """Per-token reverse KL(student || teacher) on the student's own T=1 samples of held-out prompts.

    Exact over the vocabulary when the teacher is in-process (its hidden states and LM head, chunk by
    chunk next to the student's: no (B, T, V) tensor), else the sampled-token estimate (unbiased for
    the same quantity). Only a measurement: nothing here trains, so using eval prompts leaks nothing.
    """
    from transformers import AutoTokenizer

    t = cfg.trainer
    device = torch.device(t.device)
    precision = Precision(dtype_of(cfg.student.dtype), device)
    model = load_causal_lm(str(model_path), precision.compute, device).eval()
    if fast_decode.supports(model):
        fast_decode.fuse_projections(model)
    head, tok = PolicyHead(model, t.lm_head_chunk), AutoTokenizer.from_pretrained(model_path)
    engine = make_engine(t.rollout_engine, model, tok, precision.compute, device, share_weights=True)
    prompts = heldout_rows(cfg, tok)[: t.kl_eval_prompts]  # validated; prompts that fit the context
    torch.manual_seed(cfg.seed + 12345)
    total, tokens = 0.0, 0.0
    micro = t.micro_batch_size or PROMPTS_PER_BATCH
    for lo in range(0, len(prompts), PROMPTS_PER_BATCH):
        batch = engine.sample([r["prompt"] for r in prompts[lo : lo + PROMPTS_PER_BATCH]], 1.0,
                              t.rollout_max_response_len, cfg.student.enable_thinking)
        scores = teacher.score(batch, full=t.teacher_backend == "hf")
        for a in range(0, batch.input_ids_B_L.shape[0], micro):
            mb = rows(batch, a, a + micro)
            keep = mb.response_mask_B_T.bool().cpu()
            teacher_dist = scores.distribution(a, a + micro, keep, device)
            stats = head(mb.to(device), teacher_dist, precision.compute)
            if stats.kl_N is not None:
                total += stats.kl_N.sum().item()
            else:
                total += (stats.logp_N.cpu() - scores.logp_B_T[a : a + micro, : keep.shape[1]][keep]).sum().item()
            tokens += keep.sum().item()
    return total / max(tokens, 1.0)
