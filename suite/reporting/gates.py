"""Regression gates over ``results/``: does any recorded configuration fall significantly behind?

The gates read **configurations**, not single runs: runs that differ only in ``seed`` are replicates
of one configuration, aggregated as on the leaderboard (mean over seeds, two-level bootstrap interval
over seeds and then problems: :func:`suite.stats.two_level_bootstrap_ci`). So one unlucky seed among
several widens the interval instead of failing a gate, and a drop shared by the seeds fails it. With
one seed the interval covers problem sampling only (the paired bootstrap), and the message says so.
Two gates, thresholds in ``conf/gates.yaml``:

* **vs baseline**: a configuration whose paired 95% interval (after - before, same problems, mean over
  seeds) lies wholly below ``-max_drop_vs_baseline`` makes its student worse.
* **vs previous record**: when a configuration's seeds were run again (the same run names: a rerun on
  another machine or after a code change; run names do not depend on where they ran), the latest
  rows of those seeds are compared with the rows they replaced, on the same problems, seeds of each
  record resampled; an interval wholly below ``-max_drop_vs_previous`` is a regression.

Each gate returns human-readable failures naming the configuration, its runs, the numbers and the
interval; the pytest tier ``tests/gates`` fails on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from suite.paths import REPO_ROOT
from suite.reporting.leaderboard import RUNS_FILE, SCORINGS, compare_after, families, latest_per_run, replicate_line
from suite.results import EVAL_ROW_KEYS, RUN_ROW_KEYS, read_rows


@dataclass(frozen=True)
class GateThresholds:
    max_drop_vs_baseline: float = 0.0  # in accuracy (0.02 = 2 points): how far below 0 the interval may lie
    max_drop_vs_previous: float = 0.0
    min_n: int = 100  # configurations scored on fewer problems are too noisy to gate; reported, not failed

    def __post_init__(self) -> None:
        for key in ("max_drop_vs_baseline", "max_drop_vs_previous"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"conf/gates.yaml: {key}={getattr(self, key)!r} must be in [0, 1) (accuracy points/100)")
        if self.min_n < 1:
            raise ValueError(f"conf/gates.yaml: min_n={self.min_n!r} must be a positive integer")


def load_thresholds(path: Path = REPO_ROOT / "conf" / "gates.yaml") -> GateThresholds:
    merged = OmegaConf.merge(OmegaConf.structured(GateThresholds), OmegaConf.load(path))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def _fmt(delta: float, ci95: list[float], n: int, seeds: str) -> str:
    return (f"{100 * delta:+.1f} points, 95% CI [{100 * ci95[0]:+.1f}, {100 * ci95[1]:+.1f}], n={n}, {seeds}"
            + (" (one seed: the interval covers problem sampling only)" if seeds.startswith("1 seed") else ""))


def _describe(runs: list[dict]) -> str:
    first = runs[0]
    return (f"{first['task']} {first['teacher']} -> {first['student']} {first['trainer']['opd_estimator']} "
            f"opd_kl_coef={first['opd_kl_coef']:g} reward_scale={first['reward_scale']:g} "
            f"(runs {', '.join(r['run_name'] for r in runs)})")


def _seeds(runs: list[dict]) -> str:
    return f"{len(runs)} seed{'s' if len(runs) > 1 else ''} ({', '.join(str(r['seed']) for r in runs)})"


def gate_vs_baseline(results_dir: Path, runs: list[dict], evals: dict[str, dict], th: GateThresholds) -> list[str]:
    failures = []
    for members in families(latest_per_run(runs)).values():
        line = replicate_line(results_dir, members, evals, scorings=SCORINGS[:1])  # the gates read strict only
        before, after, delta = (line["strict"][k] for k in ("before", "after", "delta"))
        if line["n"] >= th.min_n and delta["ci95"][1] < -th.max_drop_vs_baseline:
            per_seed = ", ".join(f"{100 * v:+.1f}" for v in delta["per_seed"])
            failures.append(f"{_describe(members)}: worse than its baseline: {100 * before['mean']:.1f}% -> "
                            f"{100 * after['mean']:.1f}% (mean over seeds), paired delta "
                            f"{_fmt(delta['mean'], delta['ci95'], line['n'], _seeds(members))}, per seed [{per_seed}] "
                            f"(allowed drop {100 * th.max_drop_vs_baseline:.1f} points)")
    return failures


def previous_records(runs: list[dict]) -> dict[str, tuple[list[dict], list[dict]]]:
    """Per configuration: (previous rows, latest rows) of the seeds that were run more than once.

    Rows are in file order (oldest first); a seed's previous row is the last earlier one with another
    final eval (a resumed, already finished run appends a row with the same final eval: not a rerun).
    """
    by_name: dict[str, list[dict]] = {}
    for run in runs:
        by_name.setdefault(run["run_name"], []).append(run)
    out: dict[str, tuple[list[dict], list[dict]]] = {}
    for key, latest in families(latest_per_run(runs)).items():
        pairs = []
        for run in latest:
            earlier = [r for r in by_name[run["run_name"]] if r["final_row"] != run["final_row"]]
            if earlier:
                pairs.append((earlier[-1], run))
        if pairs:
            out[key] = ([p for p, _ in pairs], [c for _, c in pairs])
    return out


def gate_vs_previous(results_dir: Path, runs: list[dict], evals: dict[str, dict], th: GateThresholds) -> list[str]:
    failures = []
    for previous, current in previous_records(runs).values():
        d = compare_after(results_dir, [evals[r["final_row"]] for r in previous],
                          [evals[r["final_row"]] for r in current], f"the previous and latest rows of {_describe(current)}")
        (prev_acc, cur_acc), n = d["means"], d["n"]
        if n >= th.min_n and d["ci95"][1] < -th.max_drop_vs_previous:
            failures.append(f"{_describe(current)}: worse than its previous record (rows "
                            f"{', '.join(r['row_id'] for r in previous)}): {100 * prev_acc:.1f}% -> {100 * cur_acc:.1f}% "
                            f"(mean over seeds), {_fmt(d['delta'], d['ci95'], n, _seeds(current))} "
                            f"(allowed drop {100 * th.max_drop_vs_previous:.1f} points)")
    return failures


def check(results_dir: Path, th: GateThresholds | None = None) -> dict[str, list[str]]:
    """Run every gate over ``results_dir``; returns failures per gate (empty lists when all pass)."""
    th = th or load_thresholds()
    evals = {r["row_id"]: r for r in read_rows(results_dir / "evals.jsonl", EVAL_ROW_KEYS)}
    runs = read_rows(results_dir / RUNS_FILE, RUN_ROW_KEYS)
    return {"vs_baseline": gate_vs_baseline(results_dir, runs, evals, th),
            "vs_previous_record": gate_vs_previous(results_dir, runs, evals, th)}
