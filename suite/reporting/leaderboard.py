"""The leaderboard: one line per configuration, its seeds folded in as replicates, before/after on the
same problems, with intervals.

    python -m suite.leaderboard            # rewrite results/leaderboard.md, .csv, .html and plots from the rows

Reads ``results/runs.jsonl`` and ``results/evals.jsonl`` (and the per-sample files for paired
statistics); writes files atomically, so a reader never sees half a table.

Runs that differ only in ``seed`` (the same ``family_hash``) are replicates of one configuration: one
line with the mean over seeds, per-seed values, the number of seeds and two-level bootstrap intervals
(seeds, then problems; :func:`suite.stats.two_level_bootstrap_ci`) that cover training variance as
well as problem sampling. Comparisons between configurations use these lines; a line with one seed
says so, and no "better" verdict is drawn from it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from suite.results import EVAL_ROW_KEYS, RUN_ROW_KEYS, read_rows
from suite.stats import mcnemar_exact_p, paired_bootstrap_ci, seed_aggregate, two_level_bootstrap_diff_ci

RUNS_FILE = "runs.jsonl"
COLUMNS = ("task", "teacher -> student", "estimator", "opd_kl_coef", "reward_scale", "steps", "n", "seeds",
           "teacher acc [95% CI]", "acc before [95% CI]", "acc after [95% CI]", "acc after per seed",
           "paired delta [95% CI]", "paired delta per seed", "McNemar p", "format failures before -> after",
           "teacher flexible acc [95% CI]", "flexible acc before [95% CI]", "flexible acc after [95% CI]",
           "flexible paired delta [95% CI]", "flexible format failures before -> after",
           "reverse KL before -> after", "wall (s)", "config", "runs")
MD_COLUMNS = ("estimator", "opd_kl_coef", "reward_scale", "steps", "n", "seeds", "acc before [95% CI]",
              "acc after [95% CI]", "acc after per seed", "paired delta [95% CI]", "McNemar p",
              "flexible acc after [95% CI]", "reverse KL before -> after", "wall (s)", "config", "runs")


@functools.lru_cache(maxsize=256)
def _sample_values(path: str, mtime_ns: int, field: str) -> dict[str, float] | None:
    values = {}
    for line in Path(path).read_text().splitlines():
        sample = json.loads(line)
        if field not in sample:
            return None  # rows written before the flexible scoring existed
        values[sample["id"]] = sample[field]
    return values


def correct_by_id(results_dir: Path, row: dict, field: str = "correct") -> dict[str, float] | None:
    """Per-problem values of an eval row (``correct``: strict, ``correct_flexible``) keyed by problem id."""
    path = Path(results_dir) / row["samples_file"]
    return _sample_values(str(path), path.stat().st_mtime_ns, field)


def paired_delta(results_dir: Path, before: dict, after: dict) -> dict:
    """after - before accuracy on the problems both rows scored, bootstrap CI and McNemar p (one run)."""
    b, a = correct_by_id(results_dir, before), correct_by_id(results_dir, after)
    ids = sorted(set(b) & set(a))
    if not ids:
        raise ValueError(f"rows {before['row_id']} and {after['row_id']} share no problems; cannot pair them")
    xb, xa = [b[i] for i in ids], [a[i] for i in ids]
    lo, hi = paired_bootstrap_ci(xb, xa)
    return {"n": len(ids), "delta": (sum(xa) - sum(xb)) / len(ids), "ci95": [lo, hi], "ci_method": "paired bootstrap 10k",
            "mcnemar_p": mcnemar_exact_p(xb, xa), "improved": sum(1 for x, y in zip(xb, xa) if y > x),
            "worsened": sum(1 for x, y in zip(xb, xa) if x > y)}


# Lines: seeds folded into one configuration --------------------------------------------------------

def family_key(run: dict) -> str:
    """Runs that differ only in seed share it: the row's ``family_hash``, or for rows written before it
    existed, a hash of the fields that define a run family."""
    if run.get("family_hash"):
        return run["family_hash"]
    trainer = {k: v for k, v in run["trainer"].items() if k not in ("progress_bar", "tensorboard")}
    fields = [run["task"], run["task_version"], run["teacher"], run["student"], run["opd_kl_coef"],
              run["reward_scale"], trainer]
    return "legacy-" + hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def latest_per_run(runs: list[dict]) -> list[dict]:
    """The latest row of each run name (a rerun of the same configuration and seed replaces the earlier one)."""
    latest: dict[str, dict] = {}
    for run in runs:
        latest[run["run_name"]] = run
    return list(latest.values())


def families(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs grouped by :func:`family_key`, each group sorted by seed."""
    out: dict[str, list[dict]] = {}
    for run in runs:
        out.setdefault(family_key(run), []).append(run)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def _matrix(results_dir: Path, rows: list[dict], ids: list[str], field: str) -> list[list[float]] | None:
    by_id = [correct_by_id(results_dir, r, field) for r in rows]
    return None if any(v is None for v in by_id) else [[v[i] for i in ids] for v in by_id]


def seed_matrices(results_dir: Path, runs: list[dict], evals: dict[str, dict], field: str = "correct",
                  ids: list[str] | None = None) -> tuple[list[str], list[list[float]], list[list[float]]] | None:
    """(problem ids, before_S_N, after_S_N) for replicates ``runs`` on the problems every row scored."""
    before = [evals[r["baseline_row"]] for r in runs]
    after = [evals[r["final_row"]] for r in runs]
    if ids is None:
        id_sets = [set(correct_by_id(results_dir, e)) for e in before + after]
        ids = sorted(set.intersection(*id_sets))
    if not ids:
        raise ValueError(f"runs {[r['run_name'] for r in runs]} share no scored problems; cannot aggregate them")
    b, a = _matrix(results_dir, before, ids, field), _matrix(results_dir, after, ids, field)
    return None if b is None or a is None else (ids, b, a)


SCORINGS = (("strict", "correct"), ("flexible", "correct_flexible"))


def replicate_line(results_dir: Path, runs: list[dict], evals: dict[str, dict], scorings=SCORINGS) -> dict:
    """The aggregated numbers of one configuration's replicates (one run row per seed), for ``scorings``
    ((name, samples field) pairs; each costs three two-level bootstraps)."""
    line: dict = {"runs": runs, "seeds": [r["seed"] for r in runs]}
    for scoring, field in scorings:
        found = seed_matrices(results_dir, runs, evals, field)
        if found is None:
            line[scoring] = None
            continue
        ids, before_S_N, after_S_N = found
        delta_S_N = [[a - b for a, b in zip(ra, rb)] for ra, rb in zip(after_S_N, before_S_N)]
        line[scoring] = {"ids": ids, "before": seed_aggregate(before_S_N),
                         "after": seed_aggregate(after_S_N), "delta": seed_aggregate(delta_S_N)}
    line["n"] = len(line["strict"]["ids"])
    return line


# Display -------------------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _acc(row: dict) -> str:
    lo, hi = row["ci95"]
    return f"{_pct(row['accuracy'])} [{_pct(lo)}, {_pct(hi)}]"


def _mean_ci(agg: dict | None, signed: bool = False) -> str:
    if agg is None:
        return "n/a"
    fmt = (lambda x: f"{100 * x:+.1f}") if signed else _pct
    return f"{fmt(agg['mean'])} [{fmt(agg['ci95'][0])}, {fmt(agg['ci95'][1])}]"


def _per_seed(line: dict, agg: dict, signed: bool = False) -> str:
    fmt = (lambda x: f"{100 * x:+.1f}") if signed else _pct
    return ", ".join(f"s{s}: {fmt(v)}" for s, v in zip(line["seeds"], agg["per_seed"]))


def _seeds(line: dict) -> str:
    return f"{len(line['seeds'])}" if len(line["seeds"]) > 1 else "1 (single seed)"


def _format_failures(evals: dict[str, dict], runs: list[dict], flexible: bool) -> str:
    def rate(row: dict) -> float | None:
        part = row.get("flexible") if flexible else row
        return None if part is None else part["format_failure_rate"]

    before = [rate(evals[r["baseline_row"]]) for r in runs]
    after = [rate(evals[r["final_row"]]) for r in runs]
    if None in before or None in after:
        return "n/a"
    return f"{_pct(sum(before) / len(before))}% -> {_pct(sum(after) / len(after))}%"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def display_row(line: dict, evals: dict[str, dict]) -> dict:
    """One leaderboard line: display columns plus ``_``-prefixed fields for the html, plots and comparisons."""
    runs, strict, flexible = line["runs"], line["strict"], line["flexible"]
    first = runs[0]
    teacher = evals[first["teacher_row"]]
    kl = [r["heldout_reverse_kl"] for r in runs]
    mcnemar = f"{first['paired_delta']['mcnemar_p']:.2g}" if len(runs) == 1 and first["paired_delta"]["mcnemar_p"] \
        is not None else "-"
    return {
        "task": f"{first['task']} v{first['task_version']}", "teacher -> student": f"{first['teacher']} -> {first['student']}",
        "estimator": first["trainer"]["opd_estimator"], "opd_kl_coef": f"{first['opd_kl_coef']:g}",
        "reward_scale": f"{first['reward_scale']:g}", "steps": first["trainer"]["num_rollout"], "n": line["n"],
        "seeds": _seeds(line), "teacher acc [95% CI]": _acc(teacher),
        "acc before [95% CI]": _mean_ci(strict["before"]), "acc after [95% CI]": _mean_ci(strict["after"]),
        "acc after per seed": _per_seed(line, strict["after"]),
        "paired delta [95% CI]": _mean_ci(strict["delta"], signed=True),
        "paired delta per seed": _per_seed(line, strict["delta"], signed=True), "McNemar p": mcnemar,
        "format failures before -> after": _format_failures(evals, runs, flexible=False),
        "teacher flexible acc [95% CI]": _acc(teacher["flexible"]) if teacher.get("flexible") else "n/a",
        "flexible acc before [95% CI]": _mean_ci(flexible and flexible["before"]),
        "flexible acc after [95% CI]": _mean_ci(flexible and flexible["after"]),
        "flexible paired delta [95% CI]": _mean_ci(flexible and flexible["delta"], signed=True),
        "flexible format failures before -> after": _format_failures(evals, runs, flexible=True),
        "reverse KL before -> after": f"{_mean([k['before'] for k in kl]):.3f} -> {_mean([k['after'] for k in kl]):.3f}",
        "wall (s)": f"{_mean([r['wall_seconds'] for r in runs]):.0f}", "config": family_key(first),
        "runs": ", ".join(r["run_name"] for r in runs),
        "_significant": strict["delta"]["ci95"][0] > 0 or strict["delta"]["ci95"][1] < 0,
        "_line": line, "_runs": runs, "_before": evals[first["baseline_row"]], "_teacher": teacher,
        "_after": [evals[r["final_row"]] for r in runs],
        "_group": f"{first['task']} v{first['task_version']}: {first['teacher']} -> {first['student']}",
        "_invocations": sorted({r.get("invocation", r["command"]) for r in runs}),
    }


def table_rows(results_dir: Path) -> list[dict]:
    """One display row per configuration (latest row of each seed), sorted by task, model pair and coefficients."""
    evals = {r["row_id"]: r for r in read_rows(results_dir / "evals.jsonl", EVAL_ROW_KEYS)}
    runs = latest_per_run(read_rows(results_dir / RUNS_FILE, RUN_ROW_KEYS))
    out = [display_row(replicate_line(results_dir, members, evals), evals) for members in families(runs).values()]
    return sorted(out, key=lambda r: (r["task"], r["teacher -> student"], r["estimator"], float(r["reward_scale"]),
                                      float(r["opd_kl_coef"])))


INTRO = [
    "Generated by `python -m suite.leaderboard` from results/runs.jsonl and results/evals.jsonl.",
    "One line per configuration: runs that differ only in `seed` are replicates, folded into one line (mean over "
    "seeds, the per-seed values, the number of seeds). Accuracy: greedy, scored through lm-eval on the task's eval "
    "split (disjoint from training rows) with the tutorial's strict scoring (last `Answer:` line); the flexible "
    "scoring (last \\boxed{} or last number) is shown beside it. Intervals: 95%, two-level bootstrap (10,000 "
    "resamples of seeds, then of problems shared by the seeds), so they cover training variance across seeds as "
    "well as problem sampling; with one seed this is the paired bootstrap over problems, and training variance is "
    "not measured. Paired delta: after - before on the same problems. McNemar p (exact): single-seed lines only. "
    "Teacher: one eval row, 95% Wilson interval. Reverse KL: per token, KL(student || teacher) on the student's own "
    "T=1 samples of held-out prompts, mean over seeds; wall: mean per run.",
]


def group_rows(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["_group"], []).append(r)
    return groups


def compare_after(results_dir: Path, a_rows: list[dict], b_rows: list[dict], what: str) -> dict:
    """``b - a`` in mean strict accuracy of two sets of final eval rows (seeds), on the problems every row
    scored; two-level interval (seeds, then problems). ``what`` names the two sides in errors."""
    ids = sorted(set.intersection(*(set(correct_by_id(results_dir, e)) for e in a_rows + b_rows)))
    if not ids:
        raise ValueError(f"{what} share no scored problems; cannot compare them")
    a_S_N, b_S_N = _matrix(results_dir, a_rows, ids, "correct"), _matrix(results_dir, b_rows, ids, "correct")
    lo, hi = two_level_bootstrap_diff_ci(a_S_N, b_S_N)
    a_mean, b_mean = _mean([_mean(r) for r in a_S_N]), _mean([_mean(r) for r in b_S_N])
    return {"n": len(ids), "delta": b_mean - a_mean, "ci95": [lo, hi], "seeds": (len(a_S_N), len(b_S_N)),
            "means": (a_mean, b_mean)}


def compare_lines(results_dir: Path, a: dict, b: dict) -> dict:
    """``b - a`` in mean accuracy after training (:func:`compare_after` of the two lines' final rows)."""
    return compare_after(results_dir, a["_after"], b["_after"], f"lines {a['config']} and {b['config']}")


def best_vs_rest(results_dir: Path, rows: list[dict]) -> list[str]:
    """Compare the group's best line with every other line on the same problems: is 'best' real?

    A verdict needs replicates on both sides: with one seed, the spread between two trainings of the same
    configuration (2-3 points on the toy world) is unmeasured, so a single-seed comparison draws none.
    """
    if len(rows) < 2:
        return []
    best = max(rows, key=lambda r: r["_line"]["strict"]["after"]["mean"])
    notes = []
    for other in rows:
        if other is best:
            continue
        d = compare_lines(results_dir, other, best)
        single = [name for name, row in (("the best", best), ("the other", other)) if len(row["_runs"]) == 1]
        if single:
            who = "both lines have" if len(single) == 2 else f"{single[0]} line has"
            verdict = f"no verdict: {who} one seed (training variance unmeasured; run seed=0,1,2)"
        else:
            verdict = "better" if d["ci95"][0] > 0 else "not distinguishable (within noise)"
        notes.append(f"best ({_label(best)}) vs {_label(other)}: {100 * d['delta']:+.1f} points "
                     f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}], n={d['n']}, seeds "
                     f"{d['seeds'][1]} vs {d['seeds'][0]}: {verdict}")
    return notes


def _label(r: dict) -> str:
    return f"{r['estimator']}, opd_kl_coef={r['opd_kl_coef']}, reward_scale={r['reward_scale']}"


def render_markdown(groups: dict[str, list[dict]], plots: dict[str, list[Path]], contamination: list[str],
                    comparisons: dict[str, list[str]]) -> str:
    lines = ["# OPD leaderboard", "", *INTRO, ""]
    for group, rows in groups.items():
        lines += [f"## {group}", "", f"Teacher accuracy: {rows[0]['teacher acc [95% CI]']} (strict), "
                  f"{rows[0]['teacher flexible acc [95% CI]']} (flexible).", "",
                  "| " + " | ".join(MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS)]
        lines += ["| " + " | ".join(str(r[c]) for c in MD_COLUMNS) + " |" for r in rows]
        noise = [f"{_label(r)} ({r['config']})" for r in rows if not r["_significant"]]
        if noise:
            lines += ["", f"Within noise (paired interval includes 0): {', '.join(noise)}."]
        if comparisons.get(group):
            lines += ["", "Between configurations (after training, paired on the same problems, seeds resampled):", ""]
            lines += [f"- {c}" for c in comparisons[group]]
        made_by = sorted({inv for r in rows for inv in r["_invocations"]})
        lines += ["", "Made by: " + "; ".join(f"`{m}`" for m in made_by),
                  "(each run's own command, config and sampling settings: leaderboard.csv, leaderboard.html).", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plots.get(group, [])]
        lines.append("")
    if contamination:
        lines += ["## Contamination (train vs eval rows)", ""] + [f"- {c}" for c in contamination]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    extra = ["commands", "sampling", "task_version", "seed_values"]
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS) + extra, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "commands": "; ".join(sorted({run["command"] for run in r["_runs"]})),
                         "sampling": json.dumps(r["_after"][0]["sampling"], sort_keys=True),
                         "task_version": r["_runs"][0]["task_version"],
                         "seed_values": " ".join(str(s) for s in r["_line"]["seeds"])})
    return buf.getvalue()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_leaderboard(results_dir: Path, contamination: bool = True) -> list[dict]:
    """Rewrite leaderboard.md/.csv/.html and the plots from the rows in ``results_dir``; returns the lines."""
    from suite.reporting.contamination import format_report, task_report
    from suite.reporting.plots import write_plots
    from suite.reporting.report_html import render_html

    results_dir = Path(results_dir)
    rows = table_rows(results_dir)
    groups = group_rows(rows)
    plots: dict[str, list[Path]] = {g: write_plots(results_dir, g, rs) for g, rs in groups.items()}
    tasks = sorted({r["_runs"][0]["task"] for r in rows})
    notes = [format_report(task_report(t)) for t in tasks] if contamination else []
    comparisons = {g: best_vs_rest(results_dir, rs) for g, rs in groups.items()}
    _write_atomic(results_dir / "leaderboard.md", render_markdown(groups, plots, notes, comparisons))
    _write_atomic(results_dir / "leaderboard.csv", render_csv(rows))
    _write_atomic(results_dir / "leaderboard.html", render_html(groups, plots, notes, INTRO, comparisons))
    for line in notes:
        print(line)
    return rows


def main(argv: list[str] | None = None) -> None:
    from suite.paths import RESULTS_DIR

    args = sys.argv[1:] if argv is None else argv
    results_dir = Path(args[0]) if args else RESULTS_DIR
    rows = write_leaderboard(results_dir)
    print(f"{len(rows)} configurations -> {results_dir / 'leaderboard.md'}")
