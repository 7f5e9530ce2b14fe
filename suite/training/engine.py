"""Rollout engines: sample the student's current policy for the trainer (``trainer.rollout_engine``).

An engine holds the model it samples from and is told after every optimizer step to take the
trainer's new weights (:meth:`sync`): the same tensors when the trainer's model can sample as it is
(one process, float32), otherwise a copy in the compute dtype refreshed from the (possibly sharded)
float32 master weights. Every engine samples the true policy at the given temperature (no
top-k/top-p), stops a response at its first ``<|im_end|>`` and returns the same
:class:`~suite.training.rollout.RolloutBatch` layout.

* ``generate``: transformers' ``generate``, the reference;
* ``static``: :mod:`suite.training.fast_decode`, a static KV cache around the model's own modules with
  CUDA-graph-captured decode steps on GPU (Qwen3 architectures; others fall back to ``generate``).
  It also reports each sampled token's log-prob.
"""

from __future__ import annotations

import torch

from suite.training import fast_decode
from suite.training.distributed import copy_weights
from suite.training.rollout import RolloutBatch, encode_prompts, layout, sample_rollouts

PROMPT_ALIGN = 16  # prompt capacity is rounded up to this (graphs survive small changes of prompt width; every
# decode step reads the capacity's columns, so a coarser rounding reads more padding)
EOS_CHECK_EVERY = 16  # decode steps between host checks for "every sequence has finished"


class GenerateEngine:
    def __init__(self, model, tok, compute: torch.dtype, device: torch.device, share_weights: bool):
        self.tok, self.shared = tok, share_weights
        if share_weights:
            self.model = model
        else:  # a separate copy in the compute dtype, refreshed by sync()
            from transformers import AutoModelForCausalLM

            with torch.device(device):
                self.model = AutoModelForCausalLM.from_config(model.config, dtype=compute)
            self.model.eval()
            self.sync(model)

    def sync(self, model) -> None:
        """Take the trainer's current weights (after every optimizer step)."""
        if not self.shared:
            copy_weights(model, self.model)

    @torch.no_grad()
    def sample(self, chats: list[list[dict]], temperature: float, max_new_tokens: int,
               enable_thinking: bool) -> RolloutBatch:
        was_training = self.model.training
        batch = sample_rollouts(self.model, self.tok, chats, temperature, max_new_tokens, enable_thinking)
        self.model.train(was_training)
        return batch


class StaticEngine(GenerateEngine):
    """Static KV cache + (on GPU) one CUDA graph per decode-length bucket; ``generate`` for other architectures.

    The cache and graphs are kept between rollouts of the same batch size and prompt capacity, and
    released with :meth:`release` (the trainer does so on GPU before the update, to give the memory back).
    """

    def __init__(self, model, tok, compute, device, share_weights, use_graphs: bool = True, attention: str = "auto"):
        super().__init__(model, tok, compute, device, share_weights)
        self.use_graphs, self.attention, self.decoder = use_graphs, attention, None
        if not share_weights:
            fast_decode.fuse_projections(self.model)  # its own copy: safe to re-lay out (sync copies by name)

    def release(self) -> None:
        self.decoder = None

    def _decoder_for(self, batch: int, prompt_width: int, max_new: int) -> fast_decode.StaticDecoder:
        graphs = self.use_graphs and next(self.model.parameters()).device.type == "cuda"
        capacity = -(-prompt_width // PROMPT_ALIGN) * PROMPT_ALIGN if graphs else prompt_width
        d = self.decoder
        if not graphs or d is None or (d.B, d.Pc, d.Tmax) != (batch, capacity, max_new):
            self.decoder = None  # free the old cache before allocating the new one
            self.decoder = fast_decode.StaticDecoder(self.model, batch, capacity, max_new, graphs, self.attention)
        return self.decoder

    @torch.no_grad()
    def sample(self, chats, temperature, max_new_tokens, enable_thinking) -> RolloutBatch:
        if not fast_decode.supports(self.model):
            return super().sample(chats, temperature, max_new_tokens, enable_thinking)
        was_training = self.model.training
        self.model.eval()
        dev = next(self.model.parameters()).device
        first_of_run = [i for i in range(len(chats)) if i == 0 or chats[i] != chats[i - 1]]
        counts_U = torch.diff(torch.tensor(first_of_run + [len(chats)], device=dev))  # samples of each distinct prompt
        enc = encode_prompts(self.tok, [chats[i] for i in first_of_run], enable_thinking)
        ids_U_P, mask_U_P = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
        B, eos = len(chats), self.tok.eos_token_id
        dec = self._decoder_for(B, ids_U_P.shape[1], max_new_tokens)
        tokens_B_T = torch.full((B, max_new_tokens), self.tok.pad_token_id, dtype=torch.long, device=dev)
        logp_B_T = torch.zeros(B, max_new_tokens, dtype=torch.float32, device=dev)
        rows_R = torch.arange(B, device=dev)  # which sequences the decoder's rows are (eager steps drop finished ones)
        done_R = torch.zeros(B, dtype=torch.bool, device=dev)
        dec.prefill(ids_U_P, mask_U_P, counts_U, temperature)
        for t in range(max_new_tokens):
            tokens_B_T[rows_R, t] = dec.next_B
            logp_B_T[rows_R, t] = dec.next_logp_B
            done_R |= dec.next_B == eos
            if t + 1 == max_new_tokens:
                break
            if not dec.use_graphs:  # eager (CPU): checking is free; drop rows once a quarter of them finished
                if bool(done_R.all()):
                    break
                if int(done_R.sum()) * 4 >= rows_R.numel():
                    keep = (~done_R).nonzero().squeeze(-1)
                    dec.keep_rows(keep)
                    rows_R, done_R = rows_R[keep], done_R[keep]
            elif (t + 1) % EOS_CHECK_EVERY == 0 and bool(done_R.all()):
                break
            dec.token_B.copy_(dec.next_B)
            dec.step(t + 1)
            dec.pos_B += 1
        self.model.train(was_training)
        prompts_B_P, masks_B_P = (x.repeat_interleave(counts_U, dim=0) for x in (ids_U_P, mask_U_P))
        return layout(prompts_B_P, masks_B_P, tokens_B_T, eos, self.tok.pad_token_id, logp_B_T)


ENGINES = {"generate": GenerateEngine, "static": StaticEngine}


def make_engine(name: str, model, tok, compute: torch.dtype, device: torch.device, share_weights: bool):
    if name not in ENGINES:
        raise ValueError(f"trainer.rollout_engine={name!r}: use one of {', '.join(ENGINES)}")
    return ENGINES[name](model, tok, compute, device, share_weights)
