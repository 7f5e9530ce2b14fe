"""Teacher backends: score the student's responses under the teacher.

Every backend implements :class:`TeacherBackend`. ``hf`` runs the teacher in-process with
transformers (the embedded default, and one-GPU setups); an SGLang server backend implements the
same interface (its own issue). A backend returns log-probs aligned to the batch's response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from suite.rollout import RolloutBatch, response_logits, token_logprobs


@dataclass
class TeacherScores:
    logp_B_T: torch.Tensor  # log p_teacher of each sampled response token (0 on padding)
    logp_full_B_T_V: torch.Tensor | None = None  # the whole distribution, when the backend has it
    topk_ids_B_T_K: torch.Tensor | None = None
    topk_logp_B_T_K: torch.Tensor | None = None


class TeacherBackend(Protocol):
    def score(self, batch: RolloutBatch, full: bool = False, topk: int = 0) -> TeacherScores:
        """Teacher log-probs of ``batch``'s response tokens; ``full``/``topk`` ask for more of the distribution."""
        ...


class HFTeacher:
    """The teacher in-process: one forward pass per batch, at the teacher's own temperature of 1."""

    def __init__(self, path: str, dtype: str = "float32", device: str = "cpu"):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
        self.device = device

    @torch.no_grad()
    def score(self, batch: RolloutBatch, full: bool = False, topk: int = 0) -> TeacherScores:
        logp_B_T_V = torch.log_softmax(response_logits(self.model, batch).float(), dim=-1)
        scores = TeacherScores(token_logprobs(logp_B_T_V, batch.response_ids_B_T) * batch.response_mask_B_T)
        if full:
            scores.logp_full_B_T_V = logp_B_T_V
        if topk:
            scores.topk_logp_B_T_K, scores.topk_ids_B_T_K = logp_B_T_V.topk(topk, dim=-1)
        return scores
