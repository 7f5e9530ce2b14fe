"""The OPD math: advantages, reverse-KL estimators and the policy loss. Pure functions, no state.

Sign conventions (all log-probs are natural-log, per response token):

* ``logp_student - logp_teacher`` > 0 where the student puts *more* mass on its own sample than the
  teacher does; the OPD term subtracts ``opd_kl_coef`` times it from the advantage, so such tokens
  are pushed down.  This is slime's ``apply_opd_kl_to_advantages``::

      A_t = reward_scale * A_grpo  -  opd_kl_coef * (logp_student_t - logp_teacher_t)

* Reverse KL is ``KL(student || teacher) = E_{y ~ student}[log p_s(y) - log p_t(y)]`` >= 0.
* Losses are minimised; :func:`policy_loss` is ``-A * ratio`` clipped as PPO, averaged over tokens.

Masks are 1.0 on response tokens that count and 0.0 on padding.
"""

from __future__ import annotations

import torch


def grpo_advantages(rewards_P_G: torch.Tensor, normalize_std: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages: ``(r - mean_group(r)) / (std_group(r) + eps)``.

    ``rewards_P_G`` holds G samples for each of P prompts. With ``normalize_std=False`` only the mean
    is removed. std is torch's default (unbiased), as slime computes it. A group whose rewards are all
    equal gets 0 advantage.
    """
    centred_P_G = rewards_P_G - rewards_P_G.mean(dim=-1, keepdim=True)
    if not normalize_std or rewards_P_G.shape[-1] < 2:
        return centred_P_G
    return centred_P_G / (rewards_P_G.std(dim=-1, keepdim=True) + eps)


def sequence_advantages(rewards_P_G: torch.Tensor, mode: str) -> torch.Tensor:
    """``group_norm`` (GRPO), ``group_mean`` (mean removed only) or ``raw`` (the tutorial's +1/-1 as is)."""
    if mode == "group_norm":
        return grpo_advantages(rewards_P_G, normalize_std=True)
    if mode == "group_mean":
        return grpo_advantages(rewards_P_G, normalize_std=False)
    if mode == "raw":
        return rewards_P_G.clone()
    raise ValueError(f"advantage mode {mode!r}: use group_norm, group_mean or raw")


def opd_token_advantages(
    adv_B: torch.Tensor,
    logp_student_B_T: torch.Tensor,
    logp_teacher_B_T: torch.Tensor,
    opd_kl_coef: float,
    reward_scale: float,
) -> torch.Tensor:
    """``A_t = reward_scale * A_B - opd_kl_coef * (logp_student_t - logp_teacher_t)`` (slime's order)."""
    return reward_scale * adv_B[:, None] - opd_kl_coef * (logp_student_B_T - logp_teacher_B_T)


def sampled_reverse_kl(logp_student_B_T: torch.Tensor, logp_teacher_B_T: torch.Tensor) -> torch.Tensor:
    """Per-token k1 estimator ``log p_s(y_t) - log p_t(y_t)``; unbiased for the reverse KL when y ~ student."""
    return logp_student_B_T - logp_teacher_B_T


def exact_reverse_kl(logits_student_B_T_V: torch.Tensor, logits_teacher_B_T_V: torch.Tensor) -> torch.Tensor:
    """Per-position ``sum_v p_s(v) (log p_s(v) - log p_t(v))`` over the whole vocabulary."""
    logp_s = torch.log_softmax(logits_student_B_T_V.float(), dim=-1)
    logp_t = torch.log_softmax(logits_teacher_B_T_V.float(), dim=-1)
    return (logp_s.exp() * (logp_s - logp_t)).sum(dim=-1)


def logits_grad(logits_C_V: torch.Tensor, ids_C: torch.Tensor, g_logp_C: torch.Tensor,
                teacher_logits_C_V: torch.Tensor | None = None, g_kl_C: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient w.r.t. the student's logits ``z`` of ``sum_c g_logp_c * log p_c(y_c) + sum_c g_kl_c * KL(p_c || q_c)``
    (``p = softmax(z)``, ``q = softmax(teacher_logits)``, ``y = ids``), in closed form:

        d log p(y) / d z_v   = 1[v = y] - p_v
        d KL(p || q) / d z_v = p_v * (log p_v - log q_v - KL(p || q))

    the same values autograd gives through ``log_softmax``, gather and :func:`exact_reverse_kl`, with
    one float32 pass instead of a saved (C, V) log-prob tensor and its backward. Returned in ``z``'s dtype.
    """
    logp_C_V = torch.log_softmax(logits_C_V.float(), dim=-1)
    p_C_V = logp_C_V.exp()
    g_C_V = -g_logp_C.float()[:, None] * p_C_V
    if teacher_logits_C_V is not None and g_kl_C is not None:
        diff_C_V = logp_C_V - torch.log_softmax(teacher_logits_C_V.float(), dim=-1)
        kl_C_1 = (p_C_V * diff_C_V).sum(-1, keepdim=True)
        g_C_V = g_C_V + g_kl_C.float()[:, None] * p_C_V * (diff_C_V - kl_C_1)
    g_C_V = g_C_V.scatter_add(-1, ids_C[:, None], g_logp_C.float()[:, None])
    return g_C_V.to(logits_C_V.dtype)


def topk_reverse_kl(
    logp_student_B_T_V: torch.Tensor, topk_logp_teacher_B_T_K: torch.Tensor, topk_ids_B_T_K: torch.Tensor
) -> torch.Tensor:
    """Reverse KL over the teacher's top-K tokens plus one tail bucket holding the remaining mass.

    Both distributions are coarsened to K+1 outcomes (the K ids, then "anything else"), so the result
    is a lower bound of the full reverse KL that equals it when K covers the vocabulary.
    """
    logp_s_K = torch.gather(logp_student_B_T_V, -1, topk_ids_B_T_K)
    tail_s = torch.log1p(-logp_s_K.exp().sum(-1).clamp(max=1 - 1e-6))
    tail_t = torch.log1p(-topk_logp_teacher_B_T_K.exp().sum(-1).clamp(max=1 - 1e-6))
    head = (logp_s_K.exp() * (logp_s_K - topk_logp_teacher_B_T_K)).sum(-1)
    return head + tail_s.exp() * (tail_s - tail_t)


def masked_mean(values_B_T: torch.Tensor, mask_B_T: torch.Tensor, num_tokens: float | None = None) -> torch.Tensor:
    """Mean over the tokens where ``mask`` is 1 (token-level averaging, as slime's default).

    ``num_tokens`` replaces the denominator: a micro-batch's share of a mean over a larger batch
    (the micro-batches' shares then add up to the whole batch's mean).
    """
    denom = mask_B_T.sum().clamp(min=1.0) if num_tokens is None else max(num_tokens, 1.0)
    return (values_B_T * mask_B_T).sum() / denom


def policy_loss(
    logp_B_T: torch.Tensor,
    logp_old_B_T: torch.Tensor,
    adv_B_T: torch.Tensor,
    mask_B_T: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    num_tokens: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO-clipped policy-gradient loss as slime computes it; returns (loss, clip fraction).

    ``ratio = exp(logp - logp_old)``; per token ``max(-A * ratio, -A * clip(ratio, 1-clip_low, 1+clip_high))``,
    averaged over masked tokens. On the first update of fresh samples ratio == 1, so the gradient is
    ``-A * grad logp``: plain REINFORCE with per-token advantages.
    """
    ratio_B_T = torch.exp(logp_B_T - logp_old_B_T)
    unclipped = -adv_B_T * ratio_B_T
    clipped = -adv_B_T * ratio_B_T.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask_B_T, num_tokens)
    clip_frac = masked_mean((clipped > unclipped).float(), mask_B_T, num_tokens)
    return loss, clip_frac


def opd_loss(
    logp_N: torch.Tensor,
    old_logp_N: torch.Tensor,
    adv_N: torch.Tensor,
    teacher_logp_N: torch.Tensor,
    kl_N: torch.Tensor | None,
    *,
    estimator: str,
    opd_kl_coef: float,
    reward_scale: float,
    clip_low: float,
    clip_high: float,
    num_tokens: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The OPD objective over N response tokens that are part of a batch of ``num_tokens`` tokens.

    ``adv_N`` is each token's sequence advantage ``A_grpo``; ``logp_N`` the student's log-prob of the
    token (differentiable), ``old_logp_N`` the behaviour policy's, ``teacher_logp_N`` the teacher's.

    * ``sampled`` (slime, tinker): ``A_t = reward_scale * A_grpo - opd_kl_coef * (logp_s - logp_t)``
      (``logp_s`` detached) in the PPO-clipped policy loss;
    * ``full`` / ``topk``: ``A_t = reward_scale * A_grpo`` in the policy loss, plus
      ``opd_kl_coef * mean_t KL_t`` with ``kl_N`` the per-position reverse KL (exact, or top-K + tail),
      differentiable: the same objective's gradient without one token's sampling noise.

    Means are over ``num_tokens`` (the global batch), so the micro-batches' losses add up to the
    batch's loss. Returns the loss and per-token *sums* for metrics (``pg_loss``, ``kl_loss``,
    ``clip``, ``kl_sampled``; ``kl_exact`` for ``full``).
    """
    ones = torch.ones_like(logp_N)
    if estimator == "sampled":
        adv_t = opd_token_advantages(adv_N, logp_N.detach()[:, None], teacher_logp_N[:, None], opd_kl_coef, reward_scale)[:, 0]
        kl_loss = logp_N.new_zeros(())
    else:
        adv_t = reward_scale * adv_N
        kl_loss = masked_mean(kl_N, ones, num_tokens)
    pg_loss, clip = policy_loss(logp_N, old_logp_N, adv_t, ones, clip_low, clip_high, num_tokens)
    loss = pg_loss + (opd_kl_coef * kl_loss if estimator != "sampled" else 0.0)
    sums = {"pg_loss": pg_loss.detach() * num_tokens, "kl_loss": kl_loss.detach() * num_tokens,
            "clip_frac": clip.detach() * num_tokens,
            "kl_sampled": sampled_reverse_kl(logp_N.detach(), teacher_logp_N).sum()}
    if estimator == "full":
        sums["kl_exact"] = kl_N.detach().sum()
    return loss, sums
