"""Training: the OPD math, rollouts, teacher backends, the trainer and its measurements.

Imports the foundation modules (``suite.config``, ``suite.data``, ``suite.scoring``, ``suite.results``)
and :mod:`suite.serving`; never :mod:`suite.evaluation` or :mod:`suite.reporting`.
"""
