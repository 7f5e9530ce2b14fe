"""Rollout engines: sample the student's current policy for the trainer (``trainer.rollout_engine``).

An engine holds the model it samples from and is told after every optimizer step to take the
trainer's new weights (:meth:`sync`): the same tensors when the trainer's model can sample as it is
(one process, float32), otherwise a copy in the compute dtype refreshed from the (possibly sharded)
float32 master weights.

* ``generate``: transformers' ``generate`` from the true policy (no top-k/top-p), the reference.
"""

from __future__ import annotations

import torch

from suite.training.distributed import copy_weights
from suite.training.rollout import RolloutBatch, sample_rollouts


class GenerateEngine:
    def __init__(self, model, tok, compute: torch.dtype, device: torch.device, share_weights: bool):
        self.tok, self.shared = tok, share_weights
        if share_weights:
            self.model = model
        else:  # a separate copy in the compute dtype, refreshed by sync()
            from transformers import AutoModelForCausalLM

            with torch.device(device):
                self.model = AutoModelForCausalLM.from_config(model.config, dtype=compute)
            self.sync(model)

    def sync(self, model) -> None:
        if not self.shared:
            copy_weights(model, self.model)

    def sample(self, chats: list[list[dict]], temperature: float, max_new_tokens: int,
               enable_thinking: bool) -> RolloutBatch:
        was_training = self.model.training
        batch = sample_rollouts(self.model, self.tok, chats, temperature, max_new_tokens, enable_thinking)
        self.model.train(was_training)
        return batch


ENGINES = {"generate": GenerateEngine}


def make_engine(name: str, model, tok, compute: torch.dtype, device: torch.device, share_weights: bool):
    if name not in ENGINES:
        raise ValueError(f"trainer.rollout_engine={name!r}: use one of {', '.join(ENGINES)}")
    return ENGINES[name](model, tok, compute, device, share_weights)
