"""lm-eval hooks for aime24; data loading and scoring live in suite (one module each)."""

from suite.evaluation.lm_eval_glue import doc_to_text, loader, process_results  # noqa: F401

load = loader("aime24")
