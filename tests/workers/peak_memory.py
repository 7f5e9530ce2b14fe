"""Run by tests/test_memory.py in a fresh process: peak extra RSS of one OPD update at Qwen3's vocabulary.

    python tests/workers/peak_memory.py {chunked,unchunked} CONFIG_DIR OUT.json

A 2-layer, 64-wide Qwen3 with the real vocabulary (151,936) and the real tokenizer, random weights, toy prompts;
4 sequences x 128 response tokens (512 tokens), full-vocabulary reverse KL. ``chunked`` runs the
trainer's update; ``unchunked`` the whole-(tokens x vocab) computation the trainer used to do, as the
reference the bound must exclude.
"""

import gc
import json
import sys

import torch

from suite.training.trainer import OPDTrainer
from tests.test_trainer import tiny_cfg
from tests.test_update import _reference_loss


def _status_mb(field: str) -> float:
    line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB


def reset_peak_mb() -> float:
    """Resets the process's peak-RSS mark to its current RSS and returns that RSS.

    The update's own peak is what is measured: rollout, teacher scoring and one-time compilation
    before it set higher marks on some machines (CI saw a 0 MB "extra" for the update that way).
    """
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # Linux >= 4.0: "5" resets VmHWM
        f.write("5")
    return _status_mb("VmRSS")


def main(mode: str, config_dir: str, out: str) -> None:
    model = [f"student.path={config_dir}", f"teacher.path={config_dir}", "student.random_init=true",
             "teacher.random_init=true", "teacher.name=tiny-v151936-t"]
    tok = "student.tokenizer=${repo:artifacts/qwen3/tokenizer}"
    cfg = tiny_cfg(*model, tok, "trainer.opd_estimator=full", "trainer.rollout_batch_size=2",
                   "trainer.n_samples_per_prompt=2", "trainer.rollout_max_response_len=128", "trainer.lm_head_chunk=32",
                   "task.name=toy_arith")
    trainer = OPDTrainer(cfg, out + ".run")
    trainer.setup()
    torch.manual_seed(0)
    batch, group = trainer.rollout()
    assert int(batch.response_mask_B_T.sum()) == 512, "random weights never stop: 4 x 128 tokens"
    scores = trainer.score_teacher(batch)
    _, adv_B = trainer.advantages(batch, group)
    earlier_peak = _status_mb("VmHWM")
    before = reset_peak_mb()
    if mode == "chunked":
        trainer.accumulate_gradients(batch, scores, adv_B, None, 0, batch.input_ids_B_L.shape[0])
    else:
        _reference_loss(trainer, batch, scores, adv_B, "full").backward()
    json.dump({"mode": mode, "earlier_peak_mb": earlier_peak, "rss_before_mb": before,
               "peak_after_mb": _status_mb("VmHWM")}, open(out, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:])
