"""Leaderboard plots (PNG, matplotlib, no display needed).

* ``acc_vs_coef_<group>.png``: accuracy after OPD against ``opd_kl_coef``, one line per ``reward_scale``,
  95% Wilson bars, with the baseline student and the teacher as bands.
* ``curves_<group>.png``: training curves per run (reward, reverse KL, sample accuracy) from the
  per-step metrics the sweep copies into ``results/curves/<run>.jsonl``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

CURVES_DIR = "curves"
PLOTS_DIR = "plots"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_vs_coef(group: str, runs: list[dict], evals: dict[str, dict], out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    by_scale: dict[float, list[dict]] = defaultdict(list)
    for run in runs:
        by_scale[run["reward_scale"]].append(run)
    for scale, members in sorted(by_scale.items()):
        members.sort(key=lambda r: r["opd_kl_coef"])
        x = [r["opd_kl_coef"] for r in members]
        acc = [100 * evals[r["final_row"]]["accuracy"] for r in members]
        lo = [a - 100 * evals[r["final_row"]]["ci95"][0] for a, r in zip(acc, members)]
        hi = [100 * evals[r["final_row"]]["ci95"][1] - a for a, r in zip(acc, members)]
        ax.errorbar(x, acc, yerr=[lo, hi], marker="o", capsize=4, label=f"after OPD, reward_scale={scale:g}")
    for row_key, label, color in (("baseline_row", "student before", "tab:gray"), ("teacher_row", "teacher", "tab:green")):
        ref = evals[runs[0][row_key]]
        ax.axhline(100 * ref["accuracy"], color=color, linestyle="--", linewidth=1, label=f"{label} (n={ref['n']})")
        ax.axhspan(100 * ref["ci95"][0], 100 * ref["ci95"][1], color=color, alpha=0.12)
    ax.set_xlabel("opd_kl_coef")
    ax.set_ylabel("greedy accuracy (%), 95% CI")
    n = evals[runs[0]["final_row"]]["n"]
    ax.set_title(f"{group}: accuracy vs opd_kl_coef (n={n} per point)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / f"acc_vs_coef_{_slug(group)}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_training_curves(group: str, runs: list[dict], results_dir: Path, out: Path) -> Path | None:
    curves = {}
    for run in runs:
        path = results_dir / CURVES_DIR / f"{run['run_name']}.jsonl"
        if path.exists():
            curves[run["run_name"]] = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if not curves:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100)
    panels = (("reward", "train reward (+1/-1)"), ("kl", "reverse KL / token (train samples)"),
              ("accuracy", "train sample accuracy"))
    for name, steps in sorted(curves.items()):
        x = [m["step"] for m in steps]
        label = name.split("-s0-")[0] if "-s0-" in name else name
        for ax, (key, _) in zip(axes, panels):
            y = [m.get("kl_exact", m.get("kl_sampled")) if key == "kl" else m[key] for m in steps]
            ax.plot(x, _smooth(y), label=label, linewidth=1.2)
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title + " (moving avg 10)", fontsize=9)
        ax.set_xlabel("rollout step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{group}: training curves", fontsize=10)
    fig.tight_layout()
    path = out / f"curves_{_slug(group)}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _smooth(values: list[float], window: int = 10) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def write_plots(results_dir: Path, groups: dict[str, list[dict]], evals: dict[str, dict]) -> list[Path]:
    out = results_dir / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, runs in groups.items():
        paths.append(plot_accuracy_vs_coef(group, runs, evals, out))
        curve = plot_training_curves(group, runs, results_dir, out)
        if curve:
            paths.append(curve)
    return paths
