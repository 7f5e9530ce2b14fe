# Run: pytest tests/test_precision.py
"""bf16 compute with float32 masters: gradients accumulate in float32, the step lands in the masters."""

import torch

from suite.training.precision import MasterWeights
from tests.test_trainer import tiny_cfg
from suite.training.trainer import OPDTrainer, list_checkpoints


def test_micro_batch_gradients_accumulate_in_float32_and_params_follow_the_masters():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 1))
    reference = [p.detach().clone() for p in model.parameters()]
    masters = MasterWeights(model)
    for p in model.parameters():
        p.data = p.data.to(torch.bfloat16)
    xs = [torch.randn(4, 8, dtype=torch.bfloat16) for _ in range(3)]
    for x in xs:  # three micro-batches
        model(x).float().sum().backward()
    assert all(p.grad is None for p in model.parameters()), "bf16 gradients are freed into the masters"
    expected = [torch.zeros_like(m) for m in masters.masters]
    for x in xs:  # the same gradients, taken one by one and summed in float32
        grads = torch.autograd.grad(model(x).float().sum(), list(model.parameters()))
        expected = [e + g.float() for e, g in zip(expected, grads)]
    for m, e in zip(masters.masters, expected):
        assert m.grad.dtype == torch.float32 and torch.allclose(m.grad, e, atol=1e-6)
    assert all(torch.equal(m.detach(), r) for m, r in zip(masters.masters, reference)), "masters keep float32 values"
    opt = torch.optim.SGD(masters.masters, lr=1e-4)  # an update far below bf16's spacing near 0.1-1
    opt.step()
    masters.copy_to_params()
    moved = [not torch.equal(m.detach(), r) for m, r in zip(masters.masters, reference)]
    assert all(moved), "the float32 masters record the small step"
    assert all(torch.equal(p, m.detach().to(torch.bfloat16)) for p, m in zip(model.parameters(), masters.masters))


def test_a_bf16_run_saves_float32_masters_and_resumes_from_them(tmp_path):
    cfg = tiny_cfg("student.dtype=bfloat16", "trainer.num_rollout=1")
    trainer = OPDTrainer(cfg, tmp_path / "run")
    last = trainer.train()
    assert trainer.masters is not None and next(trainer.head.parameters()).dtype == torch.bfloat16
    assert trainer.engine.model is trainer.head.model, "the engine samples from the bf16 parameters themselves"
    from safetensors.torch import load_file

    saved = load_file(str(last / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in saved.values())
    masters = trainer.masters.state_dict(trainer.head.model)
    assert all(torch.equal(saved[k], masters[k]) for k in saved)
    again = OPDTrainer(tiny_cfg("student.dtype=bfloat16", "trainer.num_rollout=2"), tmp_path / "run")
    again.setup()
    assert all(torch.equal(a, b) for a, b in zip(again.masters.masters, trainer.masters.masters))
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_000001"]
