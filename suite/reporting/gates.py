"""Regression gates over ``results/``: does any recorded checkpoint fall significantly behind?

Two gates, thresholds in ``conf/gates.yaml``:

* **vs baseline**: a run whose paired 95% interval (after - before, same problems) lies wholly below
  ``-max_drop_vs_baseline`` made its student worse.
* **vs best of its family**: a run family is every run of the same task, model pair and recipe that
  differs only by seed or date. The family's **latest** run is compared, on the same problems, with
  the family's best recorded run; a paired interval wholly below ``-max_drop_vs_best`` is a regression.

Each gate returns human-readable failures naming the run, the numbers and the interval; the pytest
tier ``tests/gates`` fails on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from suite.reporting.leaderboard import RUNS_FILE, paired_delta
from suite.paths import REPO_ROOT
from suite.results import EVAL_ROW_KEYS, RUN_ROW_KEYS, read_rows


@dataclass(frozen=True)
class GateThresholds:
    max_drop_vs_baseline: float = 0.0  # in accuracy (0.02 = 2 points): how far below 0 the interval may lie
    max_drop_vs_best: float = 0.0
    min_n: int = 100  # runs scored on fewer problems are too noisy to gate; they are reported, not failed

    def __post_init__(self) -> None:
        for key in ("max_drop_vs_baseline", "max_drop_vs_best"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"conf/gates.yaml: {key}={getattr(self, key)!r} must be in [0, 1) (accuracy points/100)")
        if self.min_n < 1:
            raise ValueError(f"conf/gates.yaml: min_n={self.min_n!r} must be a positive integer")


def load_thresholds(path: Path = REPO_ROOT / "conf" / "gates.yaml") -> GateThresholds:
    merged = OmegaConf.merge(OmegaConf.structured(GateThresholds), OmegaConf.load(path))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def family_key(run: dict) -> tuple:
    """Runs that differ only by seed (and when they ran) belong to one family."""
    trainer = {k: v for k, v in run["trainer"].items() if k not in ("progress_bar", "tensorboard")}
    return (run["task"], run["task_version"], run["teacher"], run["student"], run["opd_kl_coef"],
            run["reward_scale"], tuple(sorted(trainer.items())))


def _fmt(d: dict) -> str:
    return f"{100 * d['delta']:+.1f} points, 95% CI [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}], n={d['n']}"


def gate_vs_baseline(runs: list[dict], evals: dict[str, dict], th: GateThresholds) -> list[str]:
    failures = []
    for run in runs:
        d = run["paired_delta"]
        if d["n"] >= th.min_n and d["ci95"][1] < -th.max_drop_vs_baseline:
            before, after = evals[run["baseline_row"]], evals[run["final_row"]]
            failures.append(f"{run['run_name']}: worse than its baseline: {100 * before['accuracy']:.1f}% -> "
                            f"{100 * after['accuracy']:.1f}%, paired delta {_fmt(d)} (allowed drop "
                            f"{100 * th.max_drop_vs_baseline:.1f} points)")
    return failures


def gate_vs_best(runs: list[dict], evals: dict[str, dict], results_dir: Path, th: GateThresholds) -> list[str]:
    families: dict[tuple, list[dict]] = {}
    for run in runs:  # runs are in file order, i.e. oldest first
        families.setdefault(family_key(run), []).append(run)
    failures = []
    for members in families.values():
        latest = members[-1]
        best = max(members, key=lambda r: evals[r["final_row"]]["accuracy"])
        if best is latest:
            continue
        d = paired_delta(results_dir, evals[best["final_row"]], evals[latest["final_row"]])
        if d["n"] >= th.min_n and d["ci95"][1] < -th.max_drop_vs_best:
            failures.append(f"{latest['run_name']} (row {latest['row_id']}): worse than the best run of its family "
                            f"{best['run_name']} (row {best['row_id']}): {100 * evals[best['final_row']]['accuracy']:.1f}% "
                            f"-> {100 * evals[latest['final_row']]['accuracy']:.1f}%, paired delta {_fmt(d)}")
    return failures


def check(results_dir: Path, th: GateThresholds | None = None) -> dict[str, list[str]]:
    """Run every gate over ``results_dir``; returns failures per gate (empty lists when all pass)."""
    th = th or load_thresholds()
    evals = {r["row_id"]: r for r in read_rows(results_dir / "evals.jsonl", EVAL_ROW_KEYS)}
    runs = read_rows(results_dir / RUNS_FILE, RUN_ROW_KEYS)
    return {"vs_baseline": gate_vs_baseline(runs, evals, th),
            "vs_best_of_family": gate_vs_best(runs, evals, results_dir, th)}
