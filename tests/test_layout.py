# Run: pytest tests/test_layout.py
"""The package's imports go one way: foundation <- serving <- training, evaluation <- reporting <- slime, entry
points."""

import ast
from pathlib import Path

from suite.paths import REPO_ROOT

SUITE = REPO_ROOT / "suite"
# Each subpackage may import the foundation and the packages listed for it, nothing else of the suite.
ALLOWED = {
    "serving": set(),
    "toyworld": set(),
    "training": {"serving"},
    "evaluation": {"serving", "toyworld"},
    "reporting": set(),
    "slime": {"serving", "training", "evaluation", "reporting"},  # orchestration, beside suite/sweep.py
}
FOUNDATION = {"config", "paths", "data", "prompts", "scoring", "results", "stats"}


def _suite_imports(path: Path) -> set[str]:
    """The first component after ``suite.`` of every import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "suite" else [])
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("suite.")}
    return found


def test_subpackages_import_only_downward():
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in (SUITE / pkg).rglob("*.py"):
            extra = _suite_imports(path) - FOUNDATION - allowed - {pkg}
            if extra:
                bad.append(f"{path.relative_to(REPO_ROOT)} imports suite.{sorted(extra)}")
    assert not bad, "imports against the layering: " + "; ".join(bad)


def test_foundation_imports_no_subpackage():
    bad = []
    for name in FOUNDATION:
        extra = _suite_imports(SUITE / f"{name}.py") - FOUNDATION
        if extra:
            bad.append(f"suite/{name}.py imports suite.{sorted(extra)}")
    assert not bad, "; ".join(bad)


def test_slime_reward_hook_imports_only_the_foundation():
    """slime imports suite.slime.reward_hook inside its own processes: the standard library and the foundation."""
    import sys

    path = SUITE / "slime" / "reward_hook.py"
    assert _suite_imports(path) <= FOUNDATION
    tree = ast.parse(path.read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
            {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots - {"suite", "__future__"} <= set(sys.stdlib_module_names)
