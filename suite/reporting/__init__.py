"""Reporting: leaderboard (md, csv, html), plots, regression gates, contamination report.

Reads what evaluation and training wrote to ``results/``; imports only the foundation modules.
"""
