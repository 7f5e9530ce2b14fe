# Run: pytest tests/test_scoring.py
"""The one scoring module: the tutorial's strict scoring (normaliser, thinking text, several answers,
garbage) and the flexible one (last box or last number), side by side on edge cases."""

import pytest

from suite.scoring import (SCORING_VERSION, _code_fingerprint, last_boxed, last_number, normalize_integer_answer,
                           parse_integer, score, score_all, score_flexible, score_integer, score_latex)


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("\\boxed{34}", "34"),
        ("$34$", "34"),
        ("\\$1,234", "1234"),
        ("\\text{34}", "34"),
        ("x = 5", "5"),
        ("a = b = \\boxed{12}", "12"),
        ("1 234", "1234"),
        ("$\\boxed{-7}$", "-7"),
    ],
)
def test_tutorial_normaliser(raw, normalized):
    assert normalize_integer_answer(raw) == normalized


@pytest.mark.parametrize("text, value", [("42", 42), ("+42", 42), ("042", 42), ("42.0", 42), ("-3", -3), ("42.", 42),
                                         ("4.5", None), ("forty", None), ("", None), ("4/2", None)])
def test_parse_integer(text, value):
    assert parse_integer(text) == value


def test_correct_boxed_answer():
    s = score_integer("<think>\n3 + 8 = 11\n</think>\n\nAnswer: \\boxed{11}", "11")
    assert s.correct and s.format_ok and s.extracted == "11" and s.reward == 1.0


def test_wrong_answer_is_well_formed():
    s = score_integer("Answer: \\boxed{12}", "11")
    assert not s.correct and s.format_ok and s.reward == -1.0


def test_last_answer_line_wins():
    response = "Answer: 5\nWait, let me recheck.\nAnswer: \\boxed{7}"
    assert score_integer(response, "7").correct
    assert not score_integer(response, "5").correct


def test_answer_inside_thinking_then_final_answer():
    response = "<think>\nMaybe Answer: 3? no.\n</think>\n\nAnswer: \\boxed{4}"
    assert score_integer(response, 4).correct


def test_answer_is_case_insensitive_and_ends_at_line_end():
    s = score_integer("ANSWER: 12\nsome trailing text 99", "12")
    assert s.correct and s.extracted == "12"


def test_equation_keeps_text_after_last_equals():
    assert score_integer("Answer: 7 * 8 + 3 = 59", "59").correct


def test_integer_label_matches_float_form():
    assert score_integer("Answer: \\boxed{12.0}", "12").correct


@pytest.mark.parametrize("garbage", ["", "no answer here", "Answer:", "Answer: \\boxed{}", "Answer: twelve",
                                     "\x00\x01 Answer: \\boxed{1/0}", None, "Answer: " + "9" * 5000 + "x"])
def test_garbage_scores_zero_and_counts_as_format_failure(garbage):
    s = score(garbage, "12")
    assert not s.correct and not s.format_ok


def test_missing_answer_line_has_no_extraction():
    assert score_integer("The result is 12.", "12").extracted is None


def test_non_integer_label_rejected_by_integer_scorer():
    with pytest.raises(ValueError, match="not an integer"):
        score_integer("Answer: 1", "\\frac{1}{2}")


def test_last_boxed_balances_braces():
    assert last_boxed("x \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\frac{1}{2}") is None


@pytest.mark.parametrize(
    "response, label, correct",
    [
        ("Answer: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True),
        ("Answer: \\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", True),
        ("Answer: \\boxed{0.5}", "\\frac{1}{2}", True),
        ("Answer: $\\sqrt{2}/2$", "\\frac{\\sqrt{2}}{2}", True),
        ("Answer: \\boxed{(1, 2]}", "(1,2]", True),
        ("Answer: \\boxed{\\frac{1}{3}}", "\\frac{1}{2}", False),
        ("Answer: \\boxed{x^2+1}", "1+x^2", True),
    ],
)
def test_latex_equivalence(response, label, correct):
    s = score_latex(response, label)
    assert s.format_ok and s.correct == correct


def test_latex_dispatch_and_failures():
    assert score("Answer: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}").correct
    assert not score("no answer", "\\frac{1}{2}").format_ok
    assert not score("Answer: \\boxed{\\frac{1}{2}", "\\frac{1}{2}").format_ok  # unclosed box


# Two scorings: strict (the tutorial's last Answer: line) and flexible (last \boxed{} or last number) ---------

@pytest.mark.parametrize(
    "response, label, strict, flexible, extracted",
    [
        # (strict correct, format ok), (flexible correct, format ok), flexible extraction
        ("Answer: \\boxed{11}", "11", (True, True), (True, True), "11"),
        ("The sum is \\boxed{11}.", "11", (False, False), (True, True), "11"),  # no Answer: line
        ("Answer: 5\nWait, recheck: the total is \\boxed{7}", "7", (False, True), (True, True), "7"),  # they differ
        ("Answer: 7\nthen 12 more steps", "7", (True, True), (False, True), "12"),  # strict right, last number wrong
        ("\\boxed{3} first, then \\boxed{4}", "4", (False, False), (True, True), "4"),  # several boxes: the last
        ("So 2 + 3 = 5", "5", (False, False), (True, True), "5"),  # no box: the last number
        ("She pays $1,234 in total", "1234", (False, False), (True, True), "1234"),  # thousands separators
        ("\\boxed{1,234,567}", "1234567", (False, False), (True, True), "1234567"),
        ("the change is -12 degrees", "-12", (False, False), (True, True), "-12"),  # negative
        ("x = -5", "-5", (False, False), (True, True), "-5"),
        ("from 3-5 people", "5", (False, False), (True, True), "5"),  # a range's dash is no minus sign
        ("\\boxed{12 \\text{ apples}}", "12", (False, False), (True, True), "12"),  # one number in the box
        ("\\boxed{x = 5}", "5", (False, False), (True, True), "5"),
        ("\\boxed{\\frac{1}{2}} and 2", "2", (False, False), (False, False), None),  # a fraction: no integer answer
        ("\\boxed{}", "3", (False, False), (False, False), None),  # empty box
        ("\\boxed{12", "12", (False, False), (True, True), "12"),  # unclosed box: the last number
        ("the answer is 4.5", "4", (False, False), (False, True), "4.5"),  # a number, wrong: not a format failure
        ("Answer: 12.0", "12", (True, True), (True, True), "12.0"),
        ("no numbers here", "3", (False, False), (False, False), None),
        ("", "3", (False, False), (False, False), None),
        (None, "3", (False, False), (False, False), None),
        ("<think>maybe 9</think>\n\nAnswer: \\boxed{10}", "10", (True, True), (True, True), "10"),
    ],
)
def test_strict_and_flexible_on_edge_cases(response, label, strict, flexible, extracted):
    both = score_all(response, label)
    assert (both["strict"].correct, both["strict"].format_ok) == strict
    assert (both["flexible"].correct, both["flexible"].format_ok) == flexible
    assert both["flexible"].extracted == extracted
    assert both["strict"] == score(response, label)  # the strict scoring is the one training rewards use


@pytest.mark.parametrize(
    "response, label, correct, format_ok",
    [
        ("so \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True, True),  # nested braces
        ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt{2}}{2}", True, True),
        ("first \\boxed{1} then \\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", True, True),
        ("the value is 0.5", "\\frac{1}{2}", True, True),  # no box: the last number, compared by math-verify
        ("\\boxed{}", "\\frac{1}{2}", False, False),
        ("nothing", "\\frac{1}{2}", False, False),
    ],
)
def test_flexible_latex_answers(response, label, correct, format_ok):
    s = score_flexible(response, label)
    assert (s.correct, s.format_ok) == (correct, format_ok)


@pytest.mark.parametrize("text, number", [("a 1,234 b 56", "56"), ("1,234", "1234"), ("-3.5 and", "-3.5"),
                                           ("v2 costs 10.", "10"), ("none", None), ("12,34", "34")])
def test_last_number(text, number):
    assert last_number(text) == number


def test_scoring_version_follows_code_not_comments(tmp_path):
    base = 'def f(x):\n    """Doc."""\n    return x + 1  # why\n'
    variants = {"comment": base.replace("# why", "# another reason"), "docstring": base.replace("Doc.", "Other doc."),
                "code": base.replace("x + 1", "x + 2")}
    fingerprints = {}
    for name, text in {"base": base, **variants}.items():
        (tmp_path / f"{name}.py").write_text(text)
        fingerprints[name] = _code_fingerprint(tmp_path / f"{name}.py")
    assert fingerprints["comment"] == fingerprints["docstring"] == fingerprints["base"] != fingerprints["code"]
    assert len(SCORING_VERSION) == 16
