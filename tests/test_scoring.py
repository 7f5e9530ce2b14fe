# Run: pytest tests/test_scoring.py
"""The one scoring module: the tutorial's normaliser, thinking text, several answers, garbage."""

import pytest

from suite.scoring import last_boxed, normalize_integer_answer, parse_integer, score, score_integer, score_latex


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
