"""Benchmarks (not tests): ``python -m suite.bench NAME``; numbers go to ``results/bench/``."""
