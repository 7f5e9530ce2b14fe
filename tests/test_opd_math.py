# Run: pytest tests/test_opd_math.py
"""The OPD math against exact values: advantages, KL estimators, clipping."""

import math

import pytest
import torch

from suite.training import opd_math


def test_grpo_group_normalisation_exact():
    rewards_P_G = torch.tensor([[1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    adv = opd_math.grpo_advantages(rewards_P_G)
    # mean -0.5; unbiased std = sqrt((1.5^2 + 3 * 0.5^2) / 3) = 1
    assert adv[0].tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5], rel=1e-5)
    assert adv[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # all equal: no signal
    group_of_three = opd_math.grpo_advantages(torch.tensor([[1.0, 0.0, 0.0]]))
    assert group_of_three[0].tolist() == pytest.approx([2 / 3 / math.sqrt(1 / 3), -1 / 3 / math.sqrt(1 / 3), -1 / 3 / math.sqrt(1 / 3)],
                                              rel=1e-5)


def test_advantage_modes():
    r = torch.tensor([[1.0, -1.0]])
    assert opd_math.sequence_advantages(r, "raw").tolist() == [[1.0, -1.0]]
    assert opd_math.sequence_advantages(r, "group_mean").tolist() == [[1.0, -1.0]]
    assert opd_math.sequence_advantages(torch.tensor([[1.0, 1.0, -1.0]]), "group_mean").tolist()[0] == pytest.approx(
        [2 / 3, 2 / 3, -4 / 3])
    with pytest.raises(ValueError, match="group_norm"):
        opd_math.sequence_advantages(r, "gae")


def test_opd_token_advantages_sign_and_scale():
    adv_B = torch.tensor([1.0, -1.0])
    logp_s = torch.tensor([[-1.0, -2.0], [-0.5, -0.5]])
    logp_t = torch.tensor([[-2.0, -1.0], [-0.5, -3.0]])
    out = opd_math.opd_token_advantages(adv_B, logp_s, logp_t, opd_kl_coef=0.5, reward_scale=2.0)
    # 2*A - 0.5*(s - t): a token the student over-weights (s > t) is pushed down
    assert out.tolist() == [[2.0 - 0.5, 2.0 + 0.5], [-2.0, -2.0 - 1.25]]


def test_zero_coef_is_pure_reward_and_zero_scale_is_pure_kl():
    adv_B, s, t = torch.tensor([0.7]), torch.tensor([[-1.0]]), torch.tensor([[-3.0]])
    assert opd_math.opd_token_advantages(adv_B, s, t, 0.0, 1.0).item() == pytest.approx(0.7)
    assert opd_math.opd_token_advantages(adv_B, s, t, 1.0, 0.0).item() == pytest.approx(-2.0)


def test_exact_reverse_kl_on_a_toy_distribution():
    p_s, p_t = torch.tensor([0.5, 0.25, 0.25]), torch.tensor([0.25, 0.25, 0.5])
    expected = sum(a * math.log(a / b) for a, b in zip(p_s.tolist(), p_t.tolist()))
    got = opd_math.exact_reverse_kl(p_s.log()[None, None], p_t.log()[None, None]).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert opd_math.exact_reverse_kl(p_s.log()[None, None], p_s.log()[None, None]).item() == pytest.approx(0, abs=1e-7)


def test_sampled_estimator_mean_equals_exact_reverse_kl():
    torch.manual_seed(0)
    logits_s, logits_t = torch.randn(12), torch.randn(12)
    logp_s, logp_t = logits_s.log_softmax(-1), logits_t.log_softmax(-1)
    exact = opd_math.exact_reverse_kl(logits_s[None, None], logits_t[None, None]).item()
    y = torch.multinomial(logp_s.exp(), 200_000, replacement=True)
    estimate = opd_math.sampled_reverse_kl(logp_s[y], logp_t[y]).mean().item()
    assert estimate == pytest.approx(exact, abs=0.01)
    # and the expectation is exact when taken analytically
    assert (logp_s.exp() * opd_math.sampled_reverse_kl(logp_s, logp_t)).sum().item() == pytest.approx(exact, abs=1e-6)


def test_topk_estimator_is_a_lower_bound_and_exact_at_full_k():
    torch.manual_seed(1)
    logp_s = torch.randn(1, 3, 20).log_softmax(-1)
    logp_t = torch.randn(1, 3, 20).log_softmax(-1)
    exact = opd_math.exact_reverse_kl(logp_s, logp_t)
    for k in (1, 4, 10):
        vals, ids = logp_t.topk(k, dim=-1)
        approx = opd_math.topk_reverse_kl(logp_s, vals, ids)
        assert (approx <= exact + 1e-5).all() and (approx >= -1e-6).all()
    vals, ids = logp_t.topk(19, dim=-1)  # K = V-1: the tail bucket is the one remaining token
    assert opd_math.topk_reverse_kl(logp_s, vals, ids) == pytest.approx(exact, abs=1e-4)


def test_masked_mean_ignores_padding():
    v, m = torch.tensor([[1.0, 2.0, 100.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    assert opd_math.masked_mean(v, m).item() == 1.5


def test_policy_loss_on_policy_is_reinforce():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    adv, mask = torch.tensor([[2.0, -1.0]]), torch.ones(1, 2)
    loss, clip_frac = opd_math.policy_loss(logp, logp.detach(), adv, mask)
    assert loss.item() == pytest.approx(-(2.0 - 1.0) / 2) and clip_frac.item() == 0.0
    loss.backward()
    assert logp.grad.tolist() == [[-1.0, 0.5]]  # -A / n_tokens


def test_policy_loss_clips_like_ppo():
    old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5]]))  # ratios 1.5 and 0.5
    mask = torch.ones(1, 2)
    # positive advantage: ratio 1.5 is clipped to 1.28 (clip_high); ratio 0.5 stays (the pessimistic side)
    loss, frac = opd_math.policy_loss(logp, old, torch.tensor([[1.0, 1.0]]), mask, clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx((-1.28 + -0.5) / 2) and frac.item() == pytest.approx(0.5)
    # negative advantage: the pessimistic side is the unclipped ratio 1.5; 0.5 is clipped up to 0.8
    loss, frac = opd_math.policy_loss(logp, old, torch.tensor([[-1.0, -1.0]]), mask, clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx((1.5 + 0.8) / 2) and frac.item() == pytest.approx(0.5)
