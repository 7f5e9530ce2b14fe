"""bf16 compute with float32 master weights on one device (Megatron-style ``main_grad``).

The module's own parameters are bf16: forward and backward run in bf16 with no casts (autocast over
float32 parameters re-casts every weight on every call and keeps the residual stream in float32;
on an H100 that cost was a large part of the update). For each parameter a float32 master copy
holds the optimizer's view:

* gradients: a hook adds each micro-batch's bf16 gradient into the master's float32 ``.grad`` as
  soon as it is computed, and frees the bf16 one, so accumulation over micro-batches is float32;
* the optimizer (AdamW, float32 state) steps on the masters;
* after the step the masters are copied back into the bf16 parameters.

(bf16 master weights would drop the updates: at lr 1e-6 a step is far below bf16's spacing.) The
rollout engine can sample from the bf16 parameters directly: they are the current policy.
Multi-GPU runs get the same split from FSDP2's ``MixedPrecisionPolicy``.
"""

from __future__ import annotations

import torch


class MasterWeights:
    def __init__(self, module: torch.nn.Module):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.masters = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        for p, m in zip(self.params, self.masters):
            p.register_post_accumulate_grad_hook(self._accumulate_into(m))

    @staticmethod
    def _accumulate_into(master: torch.Tensor):
        def hook(param: torch.Tensor) -> None:
            if master.grad is None:
                master.grad = param.grad.float()
            else:
                master.grad.add_(param.grad)
            param.grad = None

        return hook

    @torch.no_grad()
    def copy_to_params(self) -> None:
        """After an optimizer step: the bf16 parameters take the (rounded) new master values."""
        for p, m in zip(self.params, self.masters):
            p.copy_(m)

    def state_dict(self, module: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The float32 master weights keyed like ``module.state_dict()`` (what checkpoints save)."""
        by_id = {id(p): m for p, m in zip(self.params, self.masters)}
        out = {}
        for name, t in module.state_dict(keep_vars=True).items():
            out[name] = by_id[id(t)].detach() if id(t) in by_id else t.detach().float()
        return out
