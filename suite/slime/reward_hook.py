"""The reward post-process slime imports: ``--custom-reward-post-process-path
suite.slime.reward_hook.post_process_rewards``.

slime calls it in its rollout process once per rollout, ``post_process_rewards(args, samples)``, after
each sample's reward function ran (``slime/ray/rollout.py``: ``_post_process_rewards``). The plan pairs
it with slime's own teacher call, ``--custom-rm-path slime.rollout.on_policy_distillation.reward_func``,
which stores the teacher's ``/generate`` answer (log-probs of prompt + response) as ``sample.reward``.
A custom post-process *replaces* slime's GRPO group normalisation, so this hook does it, explicitly:

1. the teacher's log-probs of the response tokens -> ``sample.teacher_log_probs`` (what
   ``--use-opd --opd-type sglang`` subtracts: ``A_t - opd_kl_coef * (logp_student_t - logp_teacher_t)``);
2. the dapo-math reward of each response from :func:`suite.scoring.score` (strict: +1 correct, -1
   otherwise, a response without a parseable ``Answer:`` line included);
3. the sequence advantage per ``OPD_SUITE_ADVANTAGE_MODE`` (``raw``: the reward as is, the tutorial's;
   ``group_mean``: minus its prompt group's mean; ``group_norm``: GRPO, ``(r - mean) / (std + 1e-6)``
   with the unbiased std, as slime and ``suite.training.opd_math.sequence_advantages`` compute it),
   times ``OPD_SUITE_REWARD_SCALE``.

Returns ``(raw_rewards, rewards)`` as slime expects: the +1/-1 rewards (logged by slime as
``raw_reward``) and the scaled advantages (slime's ``grpo`` estimator broadcasts them over the tokens).

Both settings come from the environment of the Ray job (the plan's ``--runtime-env-json``), because
slime's ``args`` has no place for them; a missing or bad value stops the rollout with the variable's name.

Fields read from slime's ``Sample`` (``slime/utils/types.py`` at THUDM/slime@624b824a898a, 2026-08-21):
``response`` (str), ``label`` (str | None), ``response_length`` (int), ``reward`` (the teacher's answer:
``reward["meta_info"]["input_token_logprobs"]``, a list of ``[logprob, token_id, ...]``, entry 0 being
``None`` for the first token), ``group_index`` (int | None); written: ``teacher_log_probs`` (list[float],
turned into a float32 tensor by slime). From ``args``: ``n_samples_per_prompt`` (samples arrive grouped
by prompt, ``n_samples_per_prompt`` at a time, as slime's own normalisation assumes).

This module imports only the standard library and :mod:`suite.scoring` (slime imports it in its processes).
"""

from __future__ import annotations

import math
import os

from suite.scoring import score

ADVANTAGE_MODE_ENV = "OPD_SUITE_ADVANTAGE_MODE"
REWARD_SCALE_ENV = "OPD_SUITE_REWARD_SCALE"
ADVANTAGE_MODES = ("raw", "group_mean", "group_norm")


class RewardHookError(RuntimeError):
    """The hook cannot post-process this rollout; the message names the sample or variable and the fix."""


def settings_from_env(env: dict | None = None) -> tuple[str, float]:
    """``(advantage_mode, reward_scale)`` from the Ray job's environment."""
    env = os.environ if env is None else env
    mode, scale = env.get(ADVANTAGE_MODE_ENV), env.get(REWARD_SCALE_ENV)
    if mode not in ADVANTAGE_MODES:
        raise RewardHookError(f"{ADVANTAGE_MODE_ENV}={mode!r}: use one of {', '.join(ADVANTAGE_MODES)}; the suite's "
                              "slime plan sets it in --runtime-env-json from trainer.advantage_mode")
    try:
        return mode, float(scale)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RewardHookError(f"{REWARD_SCALE_ENV}={scale!r}: use a number; the suite's slime plan sets it in "
                              "--runtime-env-json from reward_scale") from None


def group_advantages(rewards: list[float], group_size: int, mode: str) -> list[float]:
    """Sequence advantages of consecutive groups of ``group_size`` rewards (one group per prompt).

    ``raw`` returns the rewards; ``group_mean`` subtracts each group's mean; ``group_norm`` also divides
    by the group's unbiased standard deviation plus 1e-6 (a group of one is only centred). Example:
    ``group_advantages([1, -1, -1, -1], 4, "group_mean") == [1.5, -0.5, -0.5, -0.5]``.
    """
    if mode not in ADVANTAGE_MODES:
        raise ValueError(f"advantage mode {mode!r}: use one of {', '.join(ADVANTAGE_MODES)}")
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    if mode == "raw":
        return [float(r) for r in rewards]
    out: list[float] = []
    for lo in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[lo : lo + group_size]]
        mean = sum(group) / group_size
        centred = [r - mean for r in group]
        if mode == "group_norm" and group_size > 1:
            std = math.sqrt(sum(c * c for c in centred) / (group_size - 1))
            centred = [c / (std + 1e-6) for c in centred]
        out.extend(centred)
    return out


def teacher_response_logprobs(teacher_answer: dict, response_length: int, where: str) -> list[float]:
    """The teacher's log-probs of the last ``response_length`` tokens from its ``/generate`` answer."""
    try:
        entries = teacher_answer["meta_info"]["input_token_logprobs"]
    except (TypeError, KeyError):
        raise RewardHookError(f"{where}: sample.reward is not the teacher's /generate answer (no "
                              "meta_info.input_token_logprobs); run with --custom-rm-path "
                              "slime.rollout.on_policy_distillation.reward_func") from None
    values = [e[0] for e in entries[1:]]  # entry 0 (the first prompt token) has no log-prob
    if response_length < 1 or len(values) < response_length:
        raise RewardHookError(f"{where}: the teacher scored {len(values)} tokens, the response has "
                              f"{response_length}; the teacher must score prompt + response (logprob_start_len 0)")
    return [float(v) for v in values[-response_length:]]


def post_process_rewards(args, samples: list) -> tuple[list[float], list[float]]:
    """slime's reward post-process: teacher log-probs onto each sample; (+1/-1 rewards, scaled advantages)."""
    mode, scale = settings_from_env()
    group_size = int(args.n_samples_per_prompt)
    for lo in range(0, len(samples), group_size):
        indices = {getattr(s, "group_index", None) for s in samples[lo : lo + group_size]}
        if len(indices) > 1:
            raise RewardHookError(f"samples {lo}..{lo + group_size - 1} mix prompt groups {sorted(map(str, indices))}; "
                                  "the hook needs each prompt's n_samples_per_prompt samples together")
    raw = []
    for i, sample in enumerate(samples):
        sample.teacher_log_probs = teacher_response_logprobs(sample.reward, sample.response_length, f"sample {i}")
        if sample.label is None:
            raise RewardHookError(f"sample {i} has no label; the prompt data needs --label-key label")
        raw.append(score(sample.response, sample.label).reward)
    return raw, [scale * a for a in group_advantages(raw, group_size, mode)]
