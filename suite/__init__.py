"""opd-suite: on-policy distillation benchmark and training suite."""

__version__ = "0.1.0"
