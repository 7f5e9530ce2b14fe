"""The one place that turns a model response into a score.

Tasks (``tasks/*/utils.py``), training rewards and tests all call this module.

Integer answers follow the OPD tutorial's semantics (slime's dapo-math reward):

1. take the text after the **last** ``Answer:`` (case-insensitive) up to the end of that line;
2. strip ``\\$``, ``$``, commas, spaces, ``\\text{``, ``\\boxed{`` and ``}``;
3. keep the text after the last ``=`` (so ``Answer: x = 5`` gives ``5``);
4. compare as integers when the label is an integer (``05``, ``+5`` and ``5.0`` all equal ``5``).

LaTeX answers (MATH-500, ...) are compared for mathematical equivalence with ``math-verify``,
falling back to normalised string equality when it cannot parse either side.

A response with no ``Answer:`` line, or whose answer does not parse as the label's kind, scores 0
and is a *format failure*; scoring never raises on model output.

That is the **strict** scoring (:func:`score`); training rewards use it. Evaluation also reports a
**flexible** scoring (:func:`score_flexible`), in the spirit of lm-eval's ``flexible-extract`` filter,
so a model that answers in another format is visible instead of silently scoring zero:

1. the content of the **last** ``\\boxed{...}`` anywhere in the response (balanced braces), when
   there is a closed one: for integer labels normalised as above, else the one number inside it
   (``\\boxed{12 \\text{ apples}}`` gives 12; a box with several numbers, like ``\\frac{1}{2}``, none);
2. otherwise the **last number** anywhere in the response (``-12``, ``1,234``, ``3.5``).

For a flexible score, a format failure is a response with neither (or a box holding no number, for
integer labels); a non-integer number is a wrong answer, not a format failure.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

_ANSWER_RE = re.compile(r"answer\s*:[ \t]*([^\n]*)", re.IGNORECASE)
_INT_RE = re.compile(r"[+-]?\d+")
_DECIMAL_RE = re.compile(r"[+-]?\d+\.\d*")
# Order matters: "\$" before "$", "\boxed{" / "\text{" before "}".
_STRIPPED = ("\\$", "$", ",", " ", "\\text{", "\\boxed{", "}")
# A number not glued to a digit or a dot on its left (so "3-5" gives 5, not -5); thousands separators allowed.
_NUMBER_RE = re.compile(r"(?<![\d.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
SCORINGS = ("strict", "flexible")


@dataclass(frozen=True)
class Score:
    """Outcome of scoring one response against one label."""

    correct: bool
    format_ok: bool
    extracted: str | None  # the normalised answer string, None when there was no Answer: line

    @property
    def reward(self) -> float:
        """The tutorial's verifiable reward: +1 when correct, -1 otherwise."""
        return 1.0 if self.correct else -1.0


def last_answer_line(response: str) -> str | None:
    """Text after the last ``Answer:`` in ``response`` (to the end of its line), or None."""
    matches = _ANSWER_RE.findall(response or "")
    return matches[-1].strip() if matches else None


def normalize_integer_answer(text: str) -> str:
    """The tutorial's normaliser: strip decorations, keep what follows the last ``=``."""
    for token in _STRIPPED:
        text = text.replace(token, "")
    return text.split("=")[-1].strip()


def parse_integer(text: str) -> int | None:
    """``"42"``, ``"+42"``, ``"042"``, ``"42.0"`` -> 42; anything else -> None."""
    text = text.strip().rstrip(".")
    if _INT_RE.fullmatch(text):
        return int(text)
    if _DECIMAL_RE.fullmatch(text):
        value = float(text)
        return int(value) if value.is_integer() else None
    return None


def is_integer_label(label: str) -> bool:
    return parse_integer(str(label)) is not None


def score_integer(response: str, label: str | int) -> Score:
    """Score a response whose gold answer is an integer (toy_arith, dapo-math, GSM8K, AIME)."""
    gold = parse_integer(str(label))
    if gold is None:
        raise ValueError(f"label {label!r} is not an integer; use score_latex for LaTeX answers")
    line = last_answer_line(response)
    if line is None:
        return Score(correct=False, format_ok=False, extracted=None)
    normalized = normalize_integer_answer(line)
    value = parse_integer(normalized)
    if value is None:
        return Score(correct=False, format_ok=False, extracted=normalized)
    return Score(correct=value == gold, format_ok=True, extracted=normalized)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` with balanced braces, or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None  # unbalanced: malformed


def _latex_candidate(response: str) -> str | None:
    line = last_answer_line(response)
    if line is None:
        return None
    boxed = last_boxed(line)
    if boxed is not None:
        return boxed.strip()
    if "\\boxed{" in line:
        return None  # an opened but unclosed box
    return line.replace("\\$", "").strip().strip("$").strip().rstrip(".")


def _normalize_latex(text: str) -> str:
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "")
    text = text.replace("dfrac", "frac").replace("tfrac", "frac").replace("^\\circ", "")
    return re.sub(r"\s+", "", text).strip("$").rstrip(".")


def latex_equivalent(predicted: str, gold: str) -> bool:
    """Mathematical equivalence via math-verify, else normalised string equality."""
    if _normalize_latex(predicted) == _normalize_latex(gold):
        return True
    try:
        from math_verify import parse, verify
    except ImportError:  # math-verify is a core dependency; stay total if it is missing
        return False
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        pred_parsed = parse(f"${predicted}$", parsing_timeout=None)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # noqa: BLE001 - math-verify raises many kinds on odd LaTeX; never crash scoring
        return False


def score_latex(response: str, label: str) -> Score:
    """Score a response whose gold answer is a LaTeX expression (MATH-500)."""
    candidate = _latex_candidate(response)
    if not candidate:
        return Score(correct=False, format_ok=False, extracted=candidate)
    return Score(correct=latex_equivalent(candidate, str(label)), format_ok=True, extracted=candidate)


def score(response: str, label: str | int) -> Score:
    """Score any response: integer semantics when the label is an integer, LaTeX equivalence otherwise."""
    if is_integer_label(str(label)):
        return score_integer(response, label)
    return score_latex(response, str(label))


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands separators removed (``"1,234"`` -> ``"1234"``), or None."""
    found = _NUMBER_RE.findall(text or "")
    return found[-1].replace(",", "") if found else None


def _parse_number(text: str) -> float | None:
    text = text.strip().rstrip(".")
    return float(text) if _INT_RE.fullmatch(text) or _DECIMAL_RE.fullmatch(text) else None


def flexible_candidate(response: str, integer: bool) -> str | None:
    """The flexible scoring's answer: the last closed ``\\boxed{}``'s content, else the last number."""
    boxed = last_boxed(response or "")
    if boxed is None:
        return last_number(response or "")
    if not integer:
        return boxed.strip() or None
    normalized = normalize_integer_answer(boxed)
    if _parse_number(normalized) is not None:
        return normalized
    numbers = _NUMBER_RE.findall(boxed)  # "12 \\text{ apples}" -> 12; "\\frac{1}{2}" is no integer: no answer
    return numbers[0].replace(",", "") if len(numbers) == 1 else None


def score_flexible(response: str, label: str | int) -> Score:
    """Score any response by its final box or final number (integer labels compared as numbers)."""
    integer = is_integer_label(str(label))
    candidate = flexible_candidate(response, integer)
    if not candidate:
        return Score(correct=False, format_ok=False, extracted=candidate)
    if not integer:
        return Score(correct=latex_equivalent(candidate, str(label)), format_ok=True, extracted=candidate)
    well_formed = _parse_number(candidate) is not None
    correct = well_formed and parse_integer(candidate) == parse_integer(str(label))  # exact: no float rounding
    return Score(correct=correct, format_ok=well_formed, extracted=candidate)


def score_all(response: str, label: str | int) -> dict[str, Score]:
    """Both scorings of one response: ``{"strict": ..., "flexible": ...}`` (see :data:`SCORINGS`)."""
    return {"strict": score(response, label), "flexible": score_flexible(response, label)}


def _code_fingerprint(path: Path) -> str:
    """sha256 of this module's syntax tree without docstrings: any code change, no comment or docstring edit."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


# Part of every eval key: a cached eval row is reused only if it was scored by this very code.
SCORING_VERSION = _code_fingerprint(Path(__file__))


def label_is_scorable(label: str | int, kind: str = "auto") -> bool:
    """Whether :func:`score` can ever count a response correct against gold ``label``.

    ``kind`` is how the task compares answers: ``integer`` (the label must be an integer; ``336^\\circ``
    counts, since the LaTeX path compares it as 336), ``latex`` or ``auto`` (an integer, or LaTeX that
    math-verify parses). An unscorable label would silently score every response against it 0.
    """
    text = str(label).strip()
    if not text:
        return False
    if is_integer_label(text) or parse_integer(_normalize_latex(text)) is not None:
        return True  # every kind compares integers
    if kind == "integer":
        return False
    try:
        from math_verify import parse
    except ImportError:  # math-verify missing: scoring falls back to string equality, which any text allows
        return True
    return len(parse(f"${text}$", parsing_timeout=None)) == 2  # [expression, text]; [text] alone = not parsed
