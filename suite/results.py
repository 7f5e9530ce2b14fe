"""Results rows: append-only JSON Lines that a crash or a parallel job cannot corrupt.

Each row is written with one ``write`` on an ``O_APPEND`` descriptor under an exclusive lock and
fsynced, so concurrent sweep jobs interleave whole lines and a crash loses at most the row being
written, never one already there. Per-sample files are written to a temp name and renamed.

A torn last line (a writer killed mid-row) is moved to ``<file>.partial`` by whichever comes first,
the next append or the next read, so it never blocks work; a bad line elsewhere is an error naming
the file and line.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 1
EVAL_ROW_KEYS = ("schema", "row_id", "kind", "task", "task_version", "n", "accuracy", "ci95", "format_failure_rate",
                 "model", "weights_sha256", "sampling", "seed", "config_hash", "command", "eval_key")
RUN_ROW_KEYS = ("schema", "row_id", "kind", "run_name", "task", "task_version", "opd_kl_coef", "reward_scale",
                "baseline_row", "final_row", "teacher_row", "paired_delta", "config_hash", "command", "seed")


class ResultsError(ValueError):
    """A results file the suite cannot read; the message names the file, line and fix."""


def append_row(path: Path, row: dict) -> None:
    """Append one row; a torn last line left by a crashed writer is moved to ``<file>.partial`` first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _set_aside_torn_tail(fd, path)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def _set_aside_torn_tail(fd: int, path: Path) -> None:
    """If the file does not end in a newline, a writer died mid-row: keep those bytes, but not in the file."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    data = os.pread(fd, size, 0)
    start = data.rfind(b"\n") + 1
    with open(path.with_name(path.name + ".partial"), "ab") as aside:
        aside.write(data[start:] + b"\n")
    os.ftruncate(fd, start)


def write_jsonl_atomic(path: Path, rows: list[dict], sort_keys: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=sort_keys, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_setting_aside_torn_tail(path: Path) -> str:
    """The file's complete lines. Under the writers' lock, so a line without its newline is a dead
    writer's torn row (a live one holds the lock until its line is whole): it is moved to ``.partial``."""
    try:
        fd = os.open(path, os.O_RDWR)
    except PermissionError:  # a read-only copy of results: leave the file alone, read only whole lines
        data = path.read_bytes()
        return data[: data.rfind(b"\n") + 1].decode()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _set_aside_torn_tail(fd, path)
        return os.pread(fd, os.fstat(fd).st_size, 0).decode()
    finally:
        os.close(fd)


def read_rows(path: Path, required: tuple[str, ...] = EVAL_ROW_KEYS) -> list[dict]:
    """Read and validate rows; a torn last line is set aside (see above); any other bad line raises
    naming the file and line number."""
    if not path.exists():
        return []
    rows = []
    for lineno, line in enumerate(_read_setting_aside_torn_tail(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}:{lineno}: not JSON ({err.msg}); move the line out of the file") from None
        missing = [k for k in required if k not in row]
        if missing:
            raise ResultsError(f"{path}:{lineno}: row lacks {missing}; it was not written by this suite's schema")
        if "schema" in required and row["schema"] != SCHEMA_VERSION:
            raise ResultsError(f"{path}:{lineno}: schema {row['schema']} != {SCHEMA_VERSION}; upgrade the suite")
        rows.append(row)
    return rows


@contextmanager
def locked(path: Path):
    """An exclusive lock across sweep processes (joblib launcher), held while the body runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
