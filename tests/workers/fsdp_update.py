"""Run by tests/test_distributed.py under torchrun: one FSDP update on this rank's slice of a saved rollout.

    torchrun --nproc_per_node 2 tests/workers/fsdp_update.py INPUT OUTPUT [overrides...]
"""

import sys

import torch

from suite.training.rollout import RolloutBatch
from suite.training.teacher import TeacherScores
from suite.training.trainer import OPDTrainer
from tests.test_trainer import tiny_cfg


def main(inp: str, out: str, overrides: list[str]) -> None:
    saved = torch.load(inp, weights_only=False)  # written by the test itself
    trainer = OPDTrainer(tiny_cfg("trainer.distributed=fsdp", *overrides), saved["run_dir"])
    trainer.setup()
    r, w = trainer.dist.rank, trainer.dist.world_size
    n = saved["batch"].input_ids_B_L.shape[0] // w
    sl = slice(r * n, (r + 1) * n)
    b = saved["batch"]
    mine = RolloutBatch(b.input_ids_B_L[sl], b.attention_mask_B_L[sl], b.response_mask_B_T[sl], b.prompt_width,
                        b.truncated_B[sl])
    s = saved["scores"]
    pick = lambda x: None if x is None else x[sl]  # noqa: E731
    scores = TeacherScores(s.logp_B_T[sl], pick(s.hidden_B_T_H), s.weight_V_H, pick(s.topk_ids_B_T_K), pick(s.topk_logp_B_T_K))
    result = trainer.update(mine, scores, saved["adv_B"][sl])
    weights = {k: v.clone() for k, v in trainer.engine.model.state_dict().items()}  # the synced rollout copy
    ckpt = trainer.save_checkpoint(1)
    if trainer.dist.is_main:
        torch.save({"weights": weights, "grad_norm": result["grad_norm"], "checkpoint": str(ckpt)}, out)
    trainer.dist.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
