"""Prompt formatting shared by every task: slime's dapo-math training template."""

from __future__ import annotations

DAPO_TEMPLATE = (
    "Solve the following math problem step by step. The last line of your response should be of the "
    "form Answer: \\boxed{{$Answer}} where $Answer is the answer to the problem.\n\n{problem}\n\n"
    'Remember to put your answer on its own line after "Answer:".'
)
_PREFIX, _SUFFIX = DAPO_TEMPLATE.split("{problem}")
_PREFIX = _PREFIX.replace("{{", "{").replace("}}", "}")


def dapo_prompt(problem: str) -> str:
    """Wrap a bare problem in the dapo-math instruction (the ``Answer: \\boxed{N}`` format)."""
    return DAPO_TEMPLATE.format(problem=problem.strip())


def problem_of(prompt: str) -> str:
    """Inverse of :func:`dapo_prompt`: the bare problem text (used to check split overlap)."""
    if prompt.startswith(_PREFIX) and prompt.endswith(_SUFFIX):
        return prompt[len(_PREFIX) : len(prompt) - len(_SUFFIX)].strip()
    return prompt.strip()


def as_chat(problem: str) -> list[dict[str, str]]:
    """The dapo-math row schema's ``prompt`` field for one problem."""
    return [{"role": "user", "content": dapo_prompt(problem)}]
