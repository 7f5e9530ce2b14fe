"""Evaluation: every score goes through lm-eval here (baselines and trained checkpoints alike).

Imports the foundation modules, :mod:`suite.serving` and :mod:`suite.toyworld`; never
:mod:`suite.training` or :mod:`suite.reporting`.
"""
