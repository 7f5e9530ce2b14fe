# Run: pytest tests/test_update.py
"""The chunked, micro-batched update computes the gradient of the unchunked, whole-batch OPD loss."""

import pytest
import torch

from suite.training import fast_decode, opd_math
from tests.test_trainer import tiny_cfg
from suite.training.trainer import OPDTrainer


def _reference_loss(trainer, batch, scores, adv_B, estimator):
    """The OPD loss as the trainer computed it before chunking: whole (B, T, V) log-probs, one backward."""
    cfg, model, teacher = trainer.cfg, trainer.head.model, trainer.teacher.model
    pos = (batch.attention_mask_B_L.long().cumsum(-1) - 1).clamp(min=0)  # positions from the first real token
    P = batch.prompt_width
    logits = model(input_ids=batch.input_ids_B_L, attention_mask=batch.attention_mask_B_L, position_ids=pos).logits
    logp_B_T_V = torch.log_softmax(logits[:, P - 1 : -1].float(), -1)
    with torch.no_grad():
        t_logits = teacher(input_ids=batch.input_ids_B_L, attention_mask=batch.attention_mask_B_L, position_ids=pos).logits
        t_logp_B_T_V = torch.log_softmax(t_logits[:, P - 1 : -1].float(), -1)
    mask, ids = batch.response_mask_B_T, batch.response_ids_B_T
    logp_B_T = logp_B_T_V.gather(-1, ids[..., None]).squeeze(-1) * mask
    t_logp_B_T = t_logp_B_T_V.gather(-1, ids[..., None]).squeeze(-1) * mask
    assert torch.allclose(t_logp_B_T, scores.logp_B_T, atol=1e-5)  # the chunked teacher agrees too
    if estimator == "sampled":
        adv_B_T = opd_math.opd_token_advantages(adv_B, logp_B_T.detach(), t_logp_B_T, cfg.opd_kl_coef, cfg.reward_scale)
        kl = 0.0
    else:
        adv_B_T = (cfg.reward_scale * adv_B)[:, None].expand_as(logp_B_T)
        if estimator == "full":
            kl_B_T = opd_math.exact_reverse_kl(logp_B_T_V, t_logp_B_T_V)
        else:
            top = t_logp_B_T_V.topk(cfg.trainer.opd_topk, -1)
            kl_B_T = opd_math.topk_reverse_kl(logp_B_T_V, top.values, top.indices)
        kl = cfg.opd_kl_coef * opd_math.masked_mean(kl_B_T, mask)
    pg, _ = opd_math.policy_loss(logp_B_T, logp_B_T.detach(), adv_B_T * mask, mask, cfg.trainer.clip_low,
                                 cfg.trainer.clip_high)
    return pg + kl


def _grads(trainer):
    return {n: p.grad.clone() for n, p in trainer.head.named_parameters() if p.grad is not None}


# Without checkpointing the student's forward shares prompts (fast_decode.shared_prompt_hidden); with it,
# fast_decode.causal_hidden runs the layers, checkpointed.
@pytest.mark.parametrize("estimator,checkpointing", [("full", False), ("sampled", False), ("topk", False),
                                                     ("full", True), ("sampled", True)])
def test_micro_batched_chunked_gradient_equals_the_whole_batch_gradient(tmp_path, monkeypatch, estimator, checkpointing):
    cfg = tiny_cfg(f"trainer.opd_estimator={estimator}", "trainer.lm_head_chunk=7", "opd_kl_coef=0.7",
                   "reward_scale=1.5", "trainer.advantage_mode=raw", f"trainer.activation_checkpointing={checkpointing}")
    trainer = OPDTrainer(cfg, tmp_path / "run")
    trainer.setup()
    assert trainer.head.share_prompts != checkpointing and trainer.head.model.is_gradient_checkpointing == checkpointing
    torch.manual_seed(3)
    batch, group = trainer.rollout()
    assert batch.response_lengths_B.unique().numel() > 1, "the test needs padding between responses"
    scores = trainer.score_teacher(batch)
    _, adv_B = trainer.advantages(batch, group)
    n = batch.input_ids_B_L.shape[0]
    trainer.head.train()
    layer_runs = []  # fast_decode runs every layer of the student: count them
    layer = fast_decode._layer
    monkeypatch.setattr(fast_decode, "_layer", lambda *a, **k: layer_runs.append(1) or layer(*a, **k))

    trainer.head.zero_grad()
    _reference_loss(trainer, batch, scores, adv_B, estimator).backward()
    reference = _grads(trainer)
    for micro in (1, 3, n):
        trainer.t.micro_batch_size = micro
        trainer.head.zero_grad()
        trainer.accumulate_gradients(batch, scores, adv_B, None, 0, n)
        got = _grads(trainer)
        # per micro-batch, twice each layer: the forward and its recomputation in backward (checkpointing),
        # or the prompts' pass and the responses' pass (shared prompts)
        assert len(layer_runs) == 2 * trainer.head.model.config.num_hidden_layers * -(-n // micro)
        layer_runs.clear()
        assert got.keys() == reference.keys()
        for name in reference:
            assert torch.allclose(got[name], reference[name], atol=1e-6, rtol=1e-4), (micro, name)
