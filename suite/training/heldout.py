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
    fast_decode.fuse_projections(model)
    head = PolicyHead(model, t.lm_head_chunk, own_layers=True)
    tok = AutoTokenizer.from_pretrained(model_path)
    engine = make_engine(t.rollout_engine, model, tok, precision.compute, device, share_weights=True)
    prompts = heldout_rows(cfg, tok, t.kl_eval_prompts)  # validated; prompts that fit the context
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


HELDOUT_FILE = "heldout_kl.jsonl"


def heldout_key(cfg: SuiteConfig, model_path: str | Path) -> str:
    """What makes two held-out KL measurements the same: the model measured (by weights), the teacher,
    the task's eval rows, the sampling (seed, length, thinking, sampler) and how the teacher is asked."""
    import hashlib
    import json
    from dataclasses import replace

    from suite.config import model_identity, task_version
    from suite.data import eval_rows_sha256

    t = cfg.trainer
    key = {"model": model_identity(replace(cfg.student, path=str(model_path))), "teacher": model_identity(cfg.teacher),
           "task": cfg.task.name, "version": task_version(cfg.task.name),
           "rows": eval_rows_sha256(cfg.task.name, cfg.task.source, None, cfg.task.on_bad_rows),
           "prompts": t.kl_eval_prompts, "max_new_tokens": t.rollout_max_response_len, "seed": cfg.seed,
           "teacher_backend": t.teacher_backend, "engine": t.rollout_engine}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cached_heldout_reverse_kl(cfg: SuiteConfig, model_path: str | Path, teacher, results_dir: Path) -> float:
    """:func:`heldout_reverse_kl`, computed once per key across a sweep's jobs (the baseline's "before"
    is the same for every coefficient of a seed) and recorded in ``results/heldout_kl.jsonl``."""
    from datetime import datetime, timezone

    from suite.results import append_row, locked, read_rows

    path, key = Path(results_dir) / HELDOUT_FILE, heldout_key(cfg, model_path)
    with locked(Path(results_dir) / ".heldout_kl.lock"):
        found = [r for r in read_rows(path, required=("key", "reverse_kl")) if r["key"] == key]
        if found:
            return found[-1]["reverse_kl"]
        value = heldout_reverse_kl(cfg, model_path, teacher)
        from suite.config import machine_free_path

        append_row(path, {"key": key, "reverse_kl": value, "model": machine_free_path(str(model_path)), "seed": cfg.seed,
                          "prompts": cfg.trainer.kl_eval_prompts, "created": datetime.now(timezone.utc).isoformat()})
        return value
