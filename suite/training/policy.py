"""A causal LM as the trainer and the teacher use it: hidden states at response positions, never logits.

Every forward here goes through the decoder only (``model.get_decoder()``) and returns the final
hidden states that predict the response tokens; :mod:`suite.training.lm_head` applies the LM head
to them chunk by chunk. Positions are counted from each sequence's first real token, as
transformers' ``generate`` does for left-padded prompts, so a sequence's log-probs do not depend on
how much padding its batch needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from suite.training import fast_decode
from suite.training.lm_head import DEFAULT_CHUNK, TeacherDistribution, TokenStats, token_stats
from suite.training.rollout import RolloutBatch


def dtype_of(name: str) -> torch.dtype:
    return getattr(torch, name)


def load_causal_lm(path: str, dtype: torch.dtype, device: torch.device | str, random_init: bool = False, seed: int = 0):
    """An HF causal LM from ``path``; ``random_init`` builds it from ``path``'s config.json alone, randomly
    initialised on ``device`` (the real-shape stand-ins: memory and speed at Qwen3's shapes without weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if not random_init:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    config = AutoConfig.from_pretrained(path)
    torch.manual_seed(seed)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def trim(batch: RolloutBatch) -> RolloutBatch:
    """Drop prompt columns that are padding in every row and response columns past the longest response."""
    prompt_real = batch.attention_mask_B_L[:, : batch.prompt_width].any(dim=0)
    first = int(prompt_real.nonzero()[0]) if prompt_real.any() else batch.prompt_width - 1
    width = int(batch.response_lengths_B.max().item()) if batch.response_mask_B_T.numel() else 0
    width = max(width, 1)
    end = batch.prompt_width + width
    logp = None if batch.sample_logp_B_T is None else batch.sample_logp_B_T[:, :width]
    return RolloutBatch(batch.input_ids_B_L[:, first:end], batch.attention_mask_B_L[:, first:end],
                        batch.response_mask_B_T[:, :width], batch.prompt_width - first, batch.truncated_B, logp)


def rows(batch: RolloutBatch, lo: int, hi: int) -> RolloutBatch:
    """Sequences ``lo:hi`` of ``batch``, trimmed."""
    sl = slice(lo, hi)
    logp = None if batch.sample_logp_B_T is None else batch.sample_logp_B_T[sl]
    return trim(RolloutBatch(batch.input_ids_B_L[sl], batch.attention_mask_B_L[sl], batch.response_mask_B_T[sl],
                             batch.prompt_width, batch.truncated_B[sl], logp))


def response_hidden(model, batch: RolloutBatch, own_layers: bool = False, checkpoint: bool = False) -> torch.Tensor:
    """Final hidden states predicting each response token, (B, T, H).

    Each row is shifted left past its prompt padding before the forward, so every row reads
    ``[prompt | response | padding]`` from column 0: causal attention alone is then exact (a real
    token only sees earlier real tokens), no padding mask is needed, and attention runs as a fused
    causal kernel (cuDNN's on an H100) instead of a masked one. Positions are 0, 1, ... from the
    first real token, as before. Response token t of a row whose prompt has n real tokens is
    predicted at column ``n - 1 + t``.
    """
    B, L = batch.input_ids_B_L.shape
    device = batch.input_ids_B_L.device
    prompt_len_B = batch.attention_mask_B_L[:, : batch.prompt_width].sum(dim=1)
    shift_B = batch.prompt_width - prompt_len_B
    cols_L = torch.arange(L, device=device)
    src_B_L = cols_L[None] + shift_B[:, None]
    ids_B_L = batch.input_ids_B_L.gather(1, src_B_L.clamp(max=L - 1))
    if own_layers and fast_decode.supports(model):
        out = fast_decode.causal_hidden(model, ids_B_L, checkpoint)
    else:
        out = model.get_decoder()(input_ids=ids_B_L, attention_mask=None, position_ids=cols_L[None].expand(B, L),
                                  use_cache=False).last_hidden_state
    T = batch.response_mask_B_T.shape[1]
    at_B_T = prompt_len_B[:, None] - 1 + torch.arange(T, device=device)[None]
    return out.gather(1, at_B_T[..., None].expand(-1, -1, out.shape[-1]))


def _prompts_worth_sharing(model) -> bool:
    """Whether a forward should run each distinct prompt once (:func:`fast_decode.shared_prompt_hidden`): Qwen3
    on CPU, where the toy world's prompts are most of its tokens. On GPU one causal forward over every row
    (:func:`response_hidden`) is faster: its attention is a fused causal kernel with no mask (measured on an
    H100, 1.7B shape, 64 x 2048 tokens: update 7.7 s shared without checkpointing, 7.0 s causal with it)."""
    return fast_decode.supports(model) and next(model.parameters()).device.type == "cpu"


def output_weight(model) -> torch.Tensor:
    return model.get_output_embeddings().weight


@dataclass
class Precision:
    """``compute`` is the dtype of the forward and backward; master weights and optimizer state stay
    float32 (:mod:`suite.training.precision`, or FSDP's mixed precision)."""

    compute: torch.dtype
    device: torch.device


class PolicyHead(torch.nn.Module):
    """The student for training: decoder forward + chunked LM head in one ``forward``.

    One module, so that under FSDP the LM head's weight is gathered while it is used (the chunked
    head reads it outside the HF model's own ``forward``).
    """

    def __init__(self, model, chunk_size: int = DEFAULT_CHUNK, own_layers: bool = False,
                 checkpoint_layers: bool = False):
        """``own_layers`` (Qwen3, one process: they call the layers' modules themselves): each distinct prompt
        runs once for its samples where that pays (:func:`fast_decode.shared_prompt_hidden`, CPU, no
        checkpointing), else the layers run through :func:`fast_decode.causal_hidden`, each recomputed in
        backward if ``checkpoint_layers``. Otherwise HF's decoder runs (it checkpoints by its own setting)."""
        super().__init__()
        self.model, self.chunk_size = model, chunk_size
        self.own_layers, self.checkpoint_layers = own_layers, checkpoint_layers
        self.share_prompts = own_layers and not checkpoint_layers and _prompts_worth_sharing(model)

    def hidden(self, batch: RolloutBatch) -> torch.Tensor:
        """Final hidden states predicting each response token of ``batch``, (B, T, H)."""
        if self.share_prompts:
            return fast_decode.shared_prompt_hidden(self.model, batch)
        return response_hidden(self.model, batch, self.own_layers, self.checkpoint_layers)

    def forward(self, batch: RolloutBatch, teacher: TeacherDistribution | None = None,
                compute_dtype: torch.dtype | None = None) -> TokenStats:
        hidden_B_T_H = self.hidden(batch)
        mask = batch.response_mask_B_T.bool()
        hidden_N_H = hidden_B_T_H[mask]
        return token_stats(hidden_N_H, output_weight(self.model), batch.response_ids_B_T[mask], teacher,
                           self.chunk_size, compute_dtype or hidden_N_H.dtype)


@torch.no_grad()
def sequence_logprobs(head: PolicyHead, batch: RolloutBatch, micro_batch_size: int, precision: Precision) -> torch.Tensor:
    """``log p(y_t)`` of every response token under ``head``'s model, (B, T) with 0 on padding; micro-batched."""
    out_B_T = torch.zeros(batch.response_mask_B_T.shape, dtype=torch.float32, device=precision.device)
    for lo in range(0, batch.input_ids_B_L.shape[0], micro_batch_size):
        mb = rows(batch, lo, lo + micro_batch_size).to(precision.device)
        stats = head(mb, compute_dtype=precision.compute)
        width = mb.response_mask_B_T.shape[1]
        block = out_B_T[lo : lo + micro_batch_size, :width]
        block[mb.response_mask_B_T.bool()] = stats.logp_N.float()
    return out_B_T
