# Run: pytest tests/test_slime_reward_hook.py
"""The reward post-process slime imports: teacher log-probs, strict dapo-math rewards, explicit advantages."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from suite.paths import REPO_ROOT
from suite.slime import reward_hook
from suite.slime.reward_hook import (ADVANTAGE_MODE_ENV, REWARD_SCALE_ENV, RewardHookError, group_advantages,
                                     post_process_rewards)
from suite.training.opd_math import sequence_advantages


def _sample(response, label="34", response_length=3, group_index=0, prompt_tokens=4):
    """A sample with the fields slime passes; the reward is the teacher's /generate answer for
    prompt_tokens + response_length tokens (entry 0 has no log-prob, as SGLang returns it)."""
    n = prompt_tokens + response_length
    logprobs = [[None, 0, None]] + [[-0.1 * t, t, None] for t in range(1, n)]
    return SimpleNamespace(response=response, label=label, response_length=response_length, group_index=group_index,
                           reward={"meta_info": {"input_token_logprobs": logprobs}})


@pytest.fixture
def env(monkeypatch):
    def set_env(mode, scale):
        monkeypatch.setenv(ADVANTAGE_MODE_ENV, mode)
        monkeypatch.setenv(REWARD_SCALE_ENV, str(scale))
    return set_env


def test_raw_mode_is_the_tutorials_reward_times_the_scale(env):
    env("raw", 2)
    samples = [_sample("work\nAnswer: \\boxed{34}"), _sample("Answer: 35"), _sample("no answer line"),
               _sample("Answer: $34$")]
    raw, rewards = post_process_rewards(SimpleNamespace(n_samples_per_prompt=4), samples)
    assert raw == [1.0, -1.0, -1.0, 1.0]
    assert rewards == [2.0, -2.0, -2.0, 2.0]


def test_teacher_logprobs_are_the_last_response_length_tokens(env):
    env("raw", 1)
    samples = [_sample("Answer: 34", response_length=3, prompt_tokens=4)]
    post_process_rewards(SimpleNamespace(n_samples_per_prompt=1), samples)
    # 7 tokens: entries 1..6 carry log-probs -0.1 * t; the response is the last 3 (t = 4, 5, 6)
    assert samples[0].teacher_log_probs == pytest.approx([-0.4, -0.5, -0.6])


def test_group_norm_and_group_mean_are_per_prompt_group(env):
    env("group_norm", 1)
    groups = [_sample("Answer: 34", group_index=0), _sample("Answer: 1", group_index=0),
              _sample("Answer: 1", group_index=1), _sample("Answer: 1", group_index=1)]
    raw, rewards = post_process_rewards(SimpleNamespace(n_samples_per_prompt=2), groups)
    assert raw == [1.0, -1.0, -1.0, -1.0]
    # group 0: mean 0, unbiased std sqrt(2): +-1/sqrt(2); group 1: all equal -> 0
    assert rewards == pytest.approx([2 ** -0.5, -(2 ** -0.5), 0.0, 0.0], abs=1e-5)
    assert group_advantages([1, -1, -1, -1], 4, "group_mean") == [1.5, -0.5, -0.5, -0.5]


@pytest.mark.parametrize("mode", ["raw", "group_mean", "group_norm"])
@pytest.mark.parametrize("group_size", [1, 4])
def test_advantages_equal_the_local_trainers(mode, group_size):
    """The hook's pure-Python advantages are the local trainer's (suite.training.opd_math), so trainer=slime
    and the local trainer optimise the same A_grpo."""
    rewards = torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0, 1.0])
    local = sequence_advantages(rewards.view(-1, group_size), mode).flatten().tolist()
    assert group_advantages(rewards.tolist(), group_size, mode) == pytest.approx(local, abs=1e-6)


def test_mixed_prompt_groups_are_refused(env):
    env("group_norm", 1)
    samples = [_sample("Answer: 34", group_index=0), _sample("Answer: 34", group_index=1)]
    with pytest.raises(RewardHookError, match="mix prompt groups"):
        post_process_rewards(SimpleNamespace(n_samples_per_prompt=2), samples)


def test_missing_environment_names_the_variable(monkeypatch):
    monkeypatch.delenv(ADVANTAGE_MODE_ENV, raising=False)
    monkeypatch.setenv(REWARD_SCALE_ENV, "1")
    with pytest.raises(RewardHookError, match=ADVANTAGE_MODE_ENV):
        post_process_rewards(SimpleNamespace(n_samples_per_prompt=1), [_sample("Answer: 34")])
    monkeypatch.setenv(ADVANTAGE_MODE_ENV, "raw")
    monkeypatch.setenv(REWARD_SCALE_ENV, "two")
    with pytest.raises(RewardHookError, match=REWARD_SCALE_ENV):
        post_process_rewards(SimpleNamespace(n_samples_per_prompt=1), [_sample("Answer: 34")])


def test_a_reward_that_is_not_the_teachers_answer_says_which_rm_to_use(env):
    env("raw", 1)
    sample = _sample("Answer: 34")
    sample.reward = 1.0  # what slime's built-in math RMs return
    with pytest.raises(RewardHookError, match="on_policy_distillation.reward_func"):
        post_process_rewards(SimpleNamespace(n_samples_per_prompt=1), [sample])


def test_too_few_teacher_logprobs_are_refused(env):
    env("raw", 1)
    sample = _sample("Answer: 34", response_length=3, prompt_tokens=0)  # 3 tokens, only 2 carry log-probs
    with pytest.raises(RewardHookError, match="scored 2 tokens"):
        post_process_rewards(SimpleNamespace(n_samples_per_prompt=1), [sample])


def test_importing_the_hook_loads_nothing_heavy():
    """slime imports the hook inside its own processes: no torch, no transformers, only suite.scoring."""
    code = ("import sys, suite.slime.reward_hook as h; heavy = {'torch', 'transformers', 'datasets', 'lm_eval', "
            "'omegaconf', 'hydra'} & set(sys.modules); suite = sorted(m for m in sys.modules if m.startswith('suite'));"
            " print(sorted(heavy), suite)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] ['suite', 'suite.scoring', 'suite.slime', 'suite.slime.reward_hook']", out.stdout
    assert reward_hook.__doc__ and "624b824a898a" in reward_hook.__doc__  # the slime commit its fields were read at
