"""Seeded arithmetic word problems in dapo-math's schema, with ``<think>`` worked solutions.

Every distinct question text is enumerated once, then assigned to exactly one of the
train / dev / eval splits by a seeded hash of the text, so splits can never overlap.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

from suite.prompts import as_chat

NAMES = ("Tom", "Ana", "Li", "Sam", "Mia", "Omar")
OBJECTS = ("apples", "books", "coins", "cards", "stamps", "pens")
OPERANDS = range(2, 13)  # a, b in 2..12
ADDENDS = range(1, 21)  # c in 1..20 for a*b+c


@dataclass(frozen=True)
class Problem:
    question: str
    steps: tuple[str, ...]  # the worked solution, one equation per line
    answer: int
    kind: str

    def row(self) -> dict:
        """dapo-math schema plus the worked solution (``solution``) and the template (``kind``)."""
        return {"prompt": as_chat(self.question), "label": str(self.answer), "solution": "\n".join(self.steps), "kind": self.kind}


def _plain_add(a: int, b: int) -> Problem:
    return Problem(f"What is {a} + {b}?", (f"{a} + {b} = {a + b}",), a + b, "add")


def _worded_add(a: int, b: int, name: str, obj: str) -> Problem:
    q = f"{name} has {a} {obj} and gets {b} more. How many {obj} does {name} have now?"
    return Problem(q, (f"{a} + {b} = {a + b}",), a + b, "worded_add")


def _worded_sub(a: int, b: int, name: str, obj: str) -> Problem:
    q = f"{name} has {a} {obj} and gives away {b}. How many {obj} are left?"
    return Problem(q, (f"{a} - {b} = {a - b}",), a - b, "worded_sub")


def _mul_add(a: int, b: int, c: int) -> Problem:
    steps = (f"{a} * {b} = {a * b}", f"{a * b} + {c} = {a * b + c}")
    return Problem(f"What is {a} * {b} + {c}?", steps, a * b + c, "mul_add")


def all_problems() -> list[Problem]:
    """Every distinct problem of the toy world (about 8,900), in a fixed order."""
    pairs = list(itertools.product(OPERANDS, OPERANDS))
    people = list(itertools.product(NAMES, OBJECTS))
    out = [_plain_add(a, b) for a, b in pairs]
    out += [_worded_add(a, b, n, o) for (a, b), (n, o) in itertools.product(pairs, people)]
    out += [_worded_sub(a, b, n, o) for (a, b), (n, o) in itertools.product(pairs, people) if a > b]
    out += [_mul_add(a, b, c) for (a, b), c in itertools.product(pairs, ADDENDS)]
    return out


def _rank(seed: int, question: str) -> str:
    return hashlib.sha256(f"{seed}:{question}".encode()).hexdigest()


def make_splits(seed: int, n_eval: int, n_dev: int) -> dict[str, list[Problem]]:
    """Disjoint splits by question text: the ``n_eval`` lowest seeded hashes are eval, the next ``n_dev`` dev."""
    ranked = sorted(all_problems(), key=lambda p: _rank(seed, p.question))
    return {
        "eval": ranked[:n_eval],
        "dev": ranked[n_eval : n_eval + n_dev],
        "train": ranked[n_eval + n_dev :],
    }


def worked_solution(solution: str, label: str | int, thinking: bool) -> str:
    """The assistant text SFT targets: a ``<think>`` block (when thinking) then the answer line."""
    final = f"Answer: \\boxed{{{label}}}"
    return f"<think>\n{solution}\n</think>\n\n{final}" if thinking else final
