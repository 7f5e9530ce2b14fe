"""``python -m suite.bench NAME [options]``: run one benchmark (``--help`` lists them)."""

from __future__ import annotations

import sys

from suite.bench import opd_step, rollout, teacher_scoring, trl

BENCHMARKS = {"teacher_scoring": teacher_scoring.main, "rollout": rollout.main, "opd_step": opd_step.main,
              "trl": trl.main}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in BENCHMARKS:
        sys.exit(f"usage: python -m suite.bench {{{','.join(BENCHMARKS)}}} [options]; "
                 f"`python -m suite.bench NAME --help` lists a benchmark's options")
    BENCHMARKS[args[0]](args[1:])


if __name__ == "__main__":
    main()
