"""Contamination report: how much of a task's eval text also appears in its training rows.

    python -m suite.contamination toy_arith dapo_math

Counts exact duplicates (same problem after case/space folding), eval rows sharing any word 13-gram
with a train row (the GPT-3 paper's test; boilerplate such as dapo's "please provide the value of
m + n" trips it), and near-duplicates: eval rows sharing half or more of the shorter text's
13-grams with some train row.
"""

from __future__ import annotations

import sys

from suite.data import eval_rows, near_duplicates, overlap_key, train_rows, word_ngrams

NGRAM = 13


def overlap_report(train_problems: list[str], eval_problems: list[str], n: int = NGRAM) -> dict:
    """Exact duplicates and n-gram overlap of ``eval_problems`` against ``train_problems``."""
    train_keys = {overlap_key(p) for p in train_problems}
    train_grams: set[tuple[str, ...]] = set()
    for p in train_problems:
        train_grams |= word_ngrams(p, n)
    flagged = [p for p in eval_problems if word_ngrams(p, n) & train_grams]
    return {"n_train": len(train_problems), "n_eval": len(eval_problems), "ngram": n,
            "exact_duplicates": sum(1 for p in eval_problems if overlap_key(p) in train_keys),
            "eval_rows_with_ngram_overlap": len(flagged),
            "overlap_rate": len(flagged) / len(eval_problems) if eval_problems else 0.0,
            "near_duplicates": len(near_duplicates(eval_problems, train_problems, n)),
            "examples": flagged[:3]}


def task_report(task: str, source: str = "auto") -> dict:
    train = [r["problem"] for r in train_rows(task, source)]
    evals = [r["problem"] for r in eval_rows(task, source)]
    return {"task": task, **overlap_report(train, evals)}


def format_report(report: dict) -> str:
    return (f"{report['task']}: {report['n_eval']} eval vs {report['n_train']} train rows: "
            f"{report['exact_duplicates']} exact duplicates, {report['eval_rows_with_ngram_overlap']} eval rows "
            f"({100 * report['overlap_rate']:.1f}%) share a {report['ngram']}-gram with a train row, "
            f"{report['near_duplicates']} near-duplicates (half or more of the shorter text's {report['ngram']}-grams shared)")


def main(argv: list[str] | None = None) -> None:
    for task in (sys.argv[1:] if argv is None else argv) or ["toy_arith"]:
        print(format_report(task_report(task)))
