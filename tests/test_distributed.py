# Run: pytest tests/test_distributed.py
"""The FSDP2 path (two processes, gloo on CPU) takes the same optimizer step as one process."""

import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from suite.paths import REPO_ROOT
from suite.training.trainer import OPDTrainer
from tests.test_trainer import tiny_cfg


@pytest.mark.parametrize("estimator", ["full", pytest.param("sampled", marks=pytest.mark.slow)])
def test_two_process_fsdp_step_equals_the_one_process_step(tmp_path, estimator):
    overrides = [f"trainer.opd_estimator={estimator}", "trainer.micro_batch_size=2", "trainer.global_batch_size=8",
                 "trainer.advantage_mode=raw"]
    one = OPDTrainer(tiny_cfg(*overrides), tmp_path / "one")
    one.setup()
    one.head.share_prompts = False  # the same forward as the FSDP ranks (shared prompts: tests/test_update.py)
    torch.manual_seed(5)
    batch, group = one.rollout()
    scores = one.score_teacher(batch)
    _, adv_B = one.advantages(batch, group)
    torch.save({"batch": batch, "scores": scores, "adv_B": adv_B, "run_dir": str(tmp_path / "two")}, tmp_path / "in.pt")
    result = one.update(batch, scores, adv_B)

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO_ROOT / "tests" / "workers" / "fsdp_update.py"), str(tmp_path / "in.pt"), str(tmp_path / "out.pt"),
           *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    two = torch.load(tmp_path / "out.pt", weights_only=False)
    assert two["grad_norm"] == pytest.approx(result["grad_norm"], rel=1e-4)
    mine = one.head.model.state_dict()
    for name, value in two["weights"].items():
        assert torch.allclose(value, mine[name], atol=1e-6), name
    saved = AutoModelForCausalLM.from_pretrained(two["checkpoint"]).state_dict()  # rank 0 wrote the whole model
    for name, value in saved.items():
        assert torch.allclose(value, mine[name], atol=1e-6), name


def test_torchrun_launch_trains_and_resumes(tmp_path):
    """The sweep's launcher: two CPU processes train 2 steps, then resume to 3 from the saved (gathered) state."""
    from suite.train import launch_distributed
    from suite.training.trainer import list_checkpoints, read_metrics

    run = tmp_path / "run"
    base = ["trainer.distributed=fsdp", "trainer.num_gpus=2", "trainer.global_batch_size=8", "trainer.micro_batch_size=2"]
    last = launch_distributed(tiny_cfg(*base), run)
    assert last.name == "step_000002" and [m["step"] for m in read_metrics(run)] == [1, 2]
    before = AutoModelForCausalLM.from_pretrained(REPO_ROOT / "artifacts" / "toy" / "student").state_dict()
    after = AutoModelForCausalLM.from_pretrained(last).state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before), "every parameter moves"
    last = launch_distributed(tiny_cfg(*base, "trainer.num_rollout=3"), run)
    assert [p.name for p in list_checkpoints(run)] == ["step_000001", "step_000002", "step_000003"]
    assert [m["step"] for m in read_metrics(run)] == [1, 2, 3]
