"""Several GPUs of one host: FSDP2 (``fully_shard``) under ``torchrun``, data-parallel rollouts.

    torchrun --nproc_per_node 2 -m suite.train trainer.distributed=fsdp ...

One process per device. Each rank samples, scores and trains on its own slice of the rollout's
prompts (whole GRPO groups, so advantages need no communication); the student's float32 master
weights, gradients and optimizer state are sharded across ranks (``fully_shard`` on every decoder
layer and on the whole :class:`~suite.training.policy.PolicyHead`), with bf16 compute where the
student's dtype asks for it (``MixedPrecisionPolicy``; gradients reduced in float32).

The single-process path (``trainer.distributed=none``) is the default and never imports
``torch.distributed``: :class:`DistContext` for one process is a few attributes.

Loss scaling: each rank's loss is its tokens' sum divided by the *global* token count of the
optimizer step, and FSDP averages gradients over ranks, so the loss is multiplied by the world size;
the update then equals the one-process update on the whole batch (``tests/test_distributed.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, mode: str, device: str) -> "DistContext":
        """``none``: this process alone on ``device``. ``fsdp``: join the torchrun group (gloo on CPU, nccl on GPU)."""
        if mode == "none":
            return cls(device=torch.device(device))
        import torch.distributed as dist

        if "RANK" not in os.environ:
            raise RuntimeError("trainer.distributed=fsdp runs under torchrun: `torchrun --nproc_per_node N -m suite.train "
                               "...` (or trainer.distributed=none for one process)")
        local = int(os.environ.get("LOCAL_RANK", 0))
        on_gpu = device.startswith("cuda")
        if on_gpu:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if on_gpu else "gloo")
        dev = torch.device(f"cuda:{local}") if on_gpu else torch.device("cpu")
        return cls(dist.get_rank(), dist.get_world_size(), dev, True)

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum of each value over ranks (identity for one process)."""
        if not self.enabled:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def all_gather_object(self, obj) -> list:
        """Every rank's ``obj``, in rank order (``[obj]`` for one process)."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def shard(head: torch.nn.Module, compute: torch.dtype) -> None:
    """FSDP2 over ``head``: every decoder layer, then the whole (embeddings, final norm, LM head)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32)
    for layer in head.model.get_decoder().layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(head, mp_policy=mp)


def full_tensor(param: torch.Tensor) -> torch.Tensor:
    """The whole parameter: all-gathered for a sharded (DTensor) parameter, itself otherwise."""
    return param.full_tensor() if hasattr(param, "full_tensor") else param


@torch.no_grad()
def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Copy ``src``'s parameters into ``dst`` of the same architecture (cast to ``dst``'s dtype), by name.

    Sharded source parameters are gathered one at a time, so the peak is one full parameter.
    """
    dst_params = dict(dst.named_parameters())
    for name, p in src.named_parameters():
        dst_params[name].copy_(full_tensor(p))


def full_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A full (unsharded) CPU state dict, gathered on every rank (only rank 0 writes it)."""
    return {k: full_tensor(v).detach().cpu() for k, v in module.state_dict().items()}
