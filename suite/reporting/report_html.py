"""The self-contained HTML leaderboard: sortable tables, plots inlined, provenance one click away."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;cursor:pointer;user-select:none}th:hover{background:#e0e0e0}
td.l,th.l{text-align:left}tr.noise td{color:#777}
details{margin:4px 0}pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto}
img{max-width:100%;border:1px solid #ddd;margin:6px 0}
.note{font-size:13px;color:#444}
"""
# Click a header to sort by that column (numbers by value, text alphabetically; click again to reverse).
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th,i)=>th.addEventListener('click',()=>{
 const tb=th.closest('table').tBodies[0], rows=[...tb.rows], dir=th.dataset.dir==='asc'?-1:1;
 const key=r=>{const t=r.cells[i].dataset.v??r.cells[i].textContent; const x=parseFloat(t); return isNaN(x)?t:x;};
 rows.sort((a,b)=>{const x=key(a),y=key(b); return (x>y?1:x<y?-1:0)*dir;});
 th.dataset.dir=dir===1?'asc':'desc'; rows.forEach(r=>tb.appendChild(r));}));
document.querySelectorAll('a[href^="#run-"]').forEach(a=>a.addEventListener('click',()=>{
 document.getElementById(a.getAttribute('href').slice(1)).open=true;}));
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _cell(value, numeric: float | None = None, left: bool = False) -> str:
    attrs = (f' data-v="{numeric}"' if numeric is not None else "") + (' class="l"' if left else "")
    return f"<td{attrs}>{value}</td>"


def _mean(scoring: str, part: str):
    """Sort key: a line's mean (``before``, ``after`` or ``delta``) under a scoring; None when not recorded."""
    return lambda r: r["_line"][scoring][part]["mean"] if r["_line"][scoring] else None


# (column, numeric sort key of a leaderboard line or None, left-aligned)
_HEAD = (
    ("estimator", None, True), ("opd_kl_coef", lambda r: float(r["opd_kl_coef"]), False),
    ("reward_scale", lambda r: float(r["reward_scale"]), False), ("steps", lambda r: r["steps"], False),
    ("n", lambda r: r["n"], False), ("seeds", lambda r: len(r["_runs"]), False),
    ("acc before [95% CI]", _mean("strict", "before"), False), ("acc after [95% CI]", _mean("strict", "after"), False),
    ("acc after per seed", None, True), ("paired delta [95% CI]", _mean("strict", "delta"), False),
    ("McNemar p", None, False), ("format failures before -> after", None, False),
    ("flexible acc after [95% CI]", _mean("flexible", "after"), False),
    ("flexible paired delta [95% CI]", _mean("flexible", "delta"), False),
    ("flexible format failures before -> after", None, False),
    ("reverse KL before -> after", None, False), ("wall (s)", lambda r: float(r["wall (s)"]), False),
)


def _row(r: dict) -> str:
    cells = [_cell(html.escape(str(r[name])), key(r) if key else None, left) for name, key, left in _HEAD]
    links = " ".join(f'<a href="#run-{html.escape(run["row_id"])}">s{run["seed"]}</a>' for run in r["_runs"])
    cells.append(_cell(f"{html.escape(r['config'])} ({links})", left=True))
    cls = "" if r["_significant"] else ' class="noise"'
    return f"<tr{cls}>" + "".join(cells) + "</tr>"


def _provenance(run: dict, after: dict) -> str:
    info = {"run": run["run_name"], "config_hash": run["config_hash"], "family_hash": run.get("family_hash"),
            "command": run["command"], "invocation": run.get("invocation"), "task_version": run["task_version"],
            "seed": run["seed"], "sampling": after["sampling"], "trainer": run["trainer"],
            "identity": run.get("identity"), "migrated_from": run.get("migrated_from"),
            "baseline_row": run["baseline_row"], "final_row": run["final_row"], "teacher_row": run.get("teacher_row")}
    return (f'<details id="run-{html.escape(run["row_id"])}"><summary>{html.escape(run["run_name"])} '
            f'(config {html.escape(run["config_hash"])})</summary><pre>{html.escape(json.dumps(info, indent=2))}</pre></details>')


def render_html(groups: dict[str, list[dict]], plots: dict[str, list[Path]], contamination: list[str],
                intro: list[str], comparisons: dict[str, list[str]]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>OPD leaderboard</title>",
             f"<style>{_STYLE}</style></head><body><h1>OPD leaderboard</h1>"]
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in intro]
    for group, rows in groups.items():
        teacher = f"{rows[0]['teacher acc [95% CI]']} (strict), {rows[0]['teacher flexible acc [95% CI]']} (flexible)"
        parts.append(f"<h2>{html.escape(group)}</h2><p class='note'>teacher accuracy {html.escape(teacher)}; "
                     "grey rows: paired interval includes 0 (within noise). Click a header to sort.</p>")
        names = [(name, left) for name, _, left in _HEAD] + [("config (runs by seed)", True)]
        head = "".join(f'<th{" class=l" if left else ""}>{html.escape(name)}</th>' for name, left in names)
        parts.append(f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>")
        parts += [_row(r) for r in rows]
        parts.append("</tbody></table>")
        if comparisons.get(group):
            parts.append("<p class='note'>Between configurations (after training, paired on the same problems, seeds "
                         "resampled):</p><ul>")
            parts += [f"<li class='note'>{html.escape(c)}</li>" for c in comparisons[group]]
            parts.append("</ul>")
        parts += [_img(p) for p in plots.get(group, [])]
        parts.append("<h3>Provenance</h3>" + "".join(_provenance(run, after) for r in rows
                                                     for run, after in zip(r["_runs"], r["_after"])))
    if contamination:
        parts.append("<h2>Contamination (train vs eval rows)</h2><ul>")
        parts += [f"<li>{html.escape(line)}</li>" for line in contamination]
        parts.append("</ul>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)
