"""How much an evaluation may generate, given the model's context and the prompts it will see.

lm-eval gives a prompt ``max_length - max_gen_toks`` tokens and silently left-truncates a longer one;
a task's ``max_gen_toks`` larger than the model's context (GSM8K's 2048 on the toy model's 512
positions) makes it fail outright. The suite decides here, before lm-eval starts:

* when the task's ``max_gen_toks`` (or ``eval.max_gen_toks``) fits next to the longest prompt, nothing
  changes;
* otherwise generation is clamped to what the context leaves after the longest prompt, but never below
  a quarter of the context (one outlier prompt must not starve every other row's answer); the clamp
  is recorded in the eval row;
* a prompt longer than what is left is left-truncated by lm-eval, as before, and now counted in the
  row (``truncated_prompts``).

Clamping rather than refusing: a smoke run such as ``python -m suite.evaluate task=gsm8k
task.limit=20`` on the toy model is expected to run; the row says the budget it ran with, so a
clamped row is never mistaken for one at the task's full budget.
"""

from __future__ import annotations

import re

from suite.config import ModelConfig, SuiteConfig
from suite.data import model_context_length, prompt_token_counts
from suite.paths import TASKS_DIR

LM_EVAL_DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HFLM.max_gen_toks when a task sets none


def task_max_gen_toks(task: str) -> int | None:
    """``generation_kwargs.max_gen_toks`` of ``tasks/<task>/<task>.yaml`` (read as text: it has !function tags)."""
    found = re.search(r"^\s+max_gen_toks:\s*(\d+)", (TASKS_DIR / task / f"{task}.yaml").read_text(), re.MULTILINE)
    return int(found.group(1)) if found else None


def generation_budget(cfg: SuiteConfig, model: ModelConfig, rows: list[dict]) -> dict:
    """The context, the requested and the granted ``max_gen_toks``, and how many prompts lm-eval will truncate."""
    from transformers import AutoTokenizer

    requested = cfg.eval.max_gen_toks or task_max_gen_toks(cfg.task.name) or LM_EVAL_DEFAULT_MAX_GEN_TOKS
    budget = {"context_length": None, "longest_prompt": None, "max_gen_toks_requested": requested,
              "max_gen_toks": requested, "clamped": False, "truncated_prompts": 0}
    try:
        context = model_context_length(model.path, model.context_length)
    except OSError as err:
        raise FileNotFoundError(f"model {model.name}: cannot read {model.path!r} ({err}); point the model's path at "
                                "a local HF checkpoint directory, or download the hub id first") from None
    if context is None or not rows:
        return budget
    lengths = prompt_token_counts(rows, AutoTokenizer.from_pretrained(model.path), model.enable_thinking)
    # sglang-generate keeps one position back (lm-eval's API models use max_length - 1).
    usable = context - 1 if cfg.backend.lm_eval_model == "sglang-generate" else context
    longest = max(lengths)
    granted = requested if longest + requested <= usable else min(requested, max(usable - longest, usable // 4))
    budget.update(context_length=context, longest_prompt=longest, max_gen_toks=granted, clamped=granted < requested,
                  truncated_prompts=sum(n > usable - granted for n in lengths))
    return budget


def describe_budget(budget: dict) -> str | None:
    """One line for the log when the budget changed anything, else None."""
    notes = []
    if budget["clamped"]:
        notes.append(f"max_gen_toks clamped {budget['max_gen_toks_requested']} -> {budget['max_gen_toks']} "
                     f"(context {budget['context_length']} tokens, longest prompt {budget['longest_prompt']})")
    if budget["truncated_prompts"]:
        notes.append(f"{budget['truncated_prompts']} prompts longer than the context left after generation: lm-eval "
                     "left-truncates them (counted in the row as truncated_prompts)")
    return "; ".join(notes) or None
