"""``python -m suite.contamination TASK [TASK ...]``: train/eval overlap report (logic: :mod:`suite.reporting.contamination`)."""

from __future__ import annotations

import sys

from suite.reporting.contamination import format_report, task_report


def main(argv: list[str] | None = None) -> None:
    for task in (sys.argv[1:] if argv is None else argv) or ["toy_arith"]:
        print(format_report(task_report(task)))


if __name__ == "__main__":
    main()
