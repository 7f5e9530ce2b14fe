"""``python -m suite.leaderboard [RESULTS_DIR]``: rewrite the leaderboard from the rows (logic: :mod:`suite.reporting.leaderboard`)."""

from __future__ import annotations

import sys
from pathlib import Path

from suite.paths import RESULTS_DIR
from suite.reporting.leaderboard import write_leaderboard


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    results_dir = Path(args[0]) if args else RESULTS_DIR
    rows = write_leaderboard(results_dir)
    print(f"{len(rows)} configurations -> {results_dir / 'leaderboard.md'}")


if __name__ == "__main__":
    main()
