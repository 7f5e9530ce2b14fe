"""Leaderboard plots (PNG, matplotlib, no display needed).

* ``acc_vs_coef_<group>.png``: accuracy after OPD against ``opd_kl_coef``, one line per ``reward_scale``:
  the mean over seeds with its two-level 95% interval (seeds, then problems) and each seed as a dot,
  with the baseline student and the teacher as bands.
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


def plot_accuracy_vs_coef(group: str, lines: list[dict], out: Path) -> Path:
    """``lines``: the group's leaderboard lines (``suite.reporting.leaderboard.display_row``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    by_scale: dict[float, list[dict]] = defaultdict(list)
    for line in lines:
        by_scale[float(line["reward_scale"])].append(line)
    for scale, members in sorted(by_scale.items()):
        members.sort(key=lambda r: float(r["opd_kl_coef"]))
        x = [float(r["opd_kl_coef"]) for r in members]
        aggs = [r["_line"]["strict"]["after"] for r in members]
        acc = [100 * a["mean"] for a in aggs]
        lo = [m - 100 * a["ci95"][0] for m, a in zip(acc, aggs)]
        hi = [100 * a["ci95"][1] - m for m, a in zip(acc, aggs)]
        bars = ax.errorbar(x, acc, yerr=[lo, hi], marker="o", capsize=4,
                           label=f"after OPD, reward_scale={scale:g} (mean over seeds)")
        dots = [(xi, 100 * v) for xi, a in zip(x, aggs) for v in a["per_seed"]]
        ax.scatter([d[0] for d in dots], [d[1] for d in dots], s=12, alpha=0.6, color=bars[0].get_color())
    first = lines[0]
    for ref, label, color in ((first["_before"], "student before", "tab:gray"), (first["_teacher"], "teacher", "tab:green")):
        ax.axhline(100 * ref["accuracy"], color=color, linestyle="--", linewidth=1, label=f"{label} (n={ref['n']})")
        ax.axhspan(100 * ref["ci95"][0], 100 * ref["ci95"][1], color=color, alpha=0.12)
    ax.set_xlabel("opd_kl_coef")
    ax.set_ylabel("greedy accuracy (%), 95% CI")
    seeds = sorted({len(r["_runs"]) for r in lines})
    ax.set_title(f"{group}: accuracy vs opd_kl_coef\n(n={first['n']} per point, seeds per point: "
                 f"{', '.join(map(str, seeds))}; dots: single seeds)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
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
        label = name.rsplit("-", 1)[0]  # the run name without its hash: coefficients and seed
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


def write_plots(results_dir: Path, group: str, lines: list[dict]) -> list[Path]:
    """The accuracy-vs-coefficient plot and the training curves of one group's leaderboard lines."""
    out = results_dir / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_accuracy_vs_coef(group, lines, out)]
    curve = plot_training_curves(group, [run for line in lines for run in line["_runs"]], results_dir, out)
    if curve:
        paths.append(curve)
    return paths
