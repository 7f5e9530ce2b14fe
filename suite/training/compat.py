"""Teacher/student compatibility, checked at start-up before anything is scored or trained.

OPD feeds the student's sampled token ids to the teacher and compares the two distributions position
by position, so both models must share one tokenizer: the same logit width (``vocab_size``), the same
token for every id, the same special-token ids, and the same chat template (the prompt the teacher
conditions on is the one the student saw). A mismatch used to surface as a tensor-shape error deep
inside the KL, after the teacher's eval row had been appended; here it is one message listing every
difference. (A cross-tokenizer mode, if ever added, would opt out of this check.)
"""

from __future__ import annotations

from suite.config import ModelConfig, SuiteConfig


class ModelPairError(ValueError):
    """Teacher and student cannot be paired; the message lists each difference and the fix."""


def _load(role: str, model: ModelConfig):
    from transformers import AutoConfig, AutoTokenizer

    try:
        return AutoConfig.from_pretrained(model.path), AutoTokenizer.from_pretrained(model.path)
    except (OSError, ValueError) as err:
        raise ModelPairError(f"{role}.path={model.path!r}: cannot read its config and tokenizer ({err}); point "
                             f"{role}.path at a local HF checkpoint directory, or download the hub id first") from None


def _first_difference(a: str, b: str) -> str:
    """Where two texts first differ: line, column, and a few characters of each around it."""
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    line, col = a.count("\n", 0, i) + 1, i - (a.rfind("\n", 0, i) + 1) + 1
    return (f"first at line {line}, column {col}: teacher ...{a[max(0, i - 20):i + 30]!r} vs student "
            f"...{b[max(0, i - 20):i + 30]!r}")


def _vocab_difference(t_tok, s_tok) -> str | None:
    t_vocab, s_vocab = t_tok.get_vocab(), s_tok.get_vocab()
    if t_vocab == s_vocab:
        return None
    t_by_id, s_by_id = {i: w for w, i in t_vocab.items()}, {i: w for w, i in s_vocab.items()}
    differ = sorted(i for i in set(t_by_id) | set(s_by_id) if t_by_id.get(i) != s_by_id.get(i))
    i = differ[0]
    return (f"tokenizer vocabulary: {len(differ)} token ids differ, e.g. id {i}: teacher {t_by_id.get(i)!r} vs "
            f"student {s_by_id.get(i)!r} (teacher {len(t_vocab)} tokens, student {len(s_vocab)})")


def pair_differences(teacher: ModelConfig, student: ModelConfig) -> list[str]:
    """Each way the teacher and student tokenizers/configs differ (empty: compatible)."""
    (t_cfg, t_tok), (s_cfg, s_tok) = _load("teacher", teacher), _load("student", student)
    diffs = []
    if t_cfg.vocab_size != s_cfg.vocab_size:
        diffs.append(f"vocabulary size (config.json vocab_size, the logit width): teacher {t_cfg.vocab_size} vs "
                     f"student {s_cfg.vocab_size}")
    vocab = _vocab_difference(t_tok, s_tok)
    if vocab:
        diffs.append(vocab)
    for attr in ("eos_token_id", "pad_token_id", "bos_token_id", "unk_token_id"):
        t_id, s_id = getattr(t_tok, attr, None), getattr(s_tok, attr, None)
        if t_id != s_id:
            diffs.append(f"special token {attr}: teacher {t_id} vs student {s_id}")
    t_special = dict(zip(t_tok.all_special_tokens, t_tok.all_special_ids))
    s_special = dict(zip(s_tok.all_special_tokens, s_tok.all_special_ids))
    if t_special != s_special:
        only = sorted(set(t_special.items()) ^ set(s_special.items()))
        diffs.append(f"special tokens: {len(only)} (token, id) pairs in one model only, e.g. {only[:3]}")
    t_tpl, s_tpl = str(t_tok.chat_template or ""), str(s_tok.chat_template or "")
    if t_tpl != s_tpl:
        diffs.append(f"chat template differs, {_first_difference(t_tpl, s_tpl)}")
    return diffs


def check_teacher_student(cfg: SuiteConfig) -> None:
    """Raise :class:`ModelPairError` naming every difference between ``cfg.teacher`` and ``cfg.student``."""
    diffs = pair_differences(cfg.teacher, cfg.student)
    if diffs:
        raise ModelPairError(
            f"teacher {cfg.teacher.name} ({cfg.teacher.path}) cannot teach student {cfg.student.name} "
            f"({cfg.student.path}): the teacher scores the student's token ids, so both need one tokenizer.\n  "
            + "\n  ".join(diffs)
            + "\nFix: pick a teacher of the student's model family (same tokenizer and chat template), e.g. "
            "teacher=qwen3_8b with student=qwen3_4b, or the toy pair (teacher=toy student=toy).")
