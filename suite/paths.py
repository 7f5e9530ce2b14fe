"""Where the suite keeps things. ``OPD_SUITE_HOME`` overrides the repository root."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("OPD_SUITE_HOME", Path(__file__).resolve().parents[1]))
TASKS_DIR = REPO_ROOT / "tasks"
DATA_DIR = REPO_ROOT / "data"
RAW_DATA_DIR = DATA_DIR / "raw"
TOY_DATA_DIR = DATA_DIR / "toy_arith"
TOY_MODELS_DIR = REPO_ROOT / "artifacts" / "toy"
RESULTS_DIR = REPO_ROOT / "results"


def repo_path(relative: str) -> str:
    """Absolute path of ``relative`` under the repository root (OmegaConf resolver ``${repo:...}``)."""
    return str(REPO_ROOT / relative)
