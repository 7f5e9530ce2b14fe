"""Wall and training time of a run directory, summed over every invocation that worked on it.

A sweep job killed at step 17 and resumed has run twice; its run row reports the time of both, not
only of the invocation that finished. Each invocation keeps one file,
``<run_dir>/clock/<start>-<pid>.json``, rewritten atomically every ``beat_s`` seconds by a daemon
thread, so an invocation killed with SIGKILL still counts up to its last beat (at most ``beat_s``
seconds are lost). Time is what was spent, including steps redone after a resume.
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from suite.results import write_jsonl_atomic

CLOCK_DIR = "clock"


class RunClock:
    """``with RunClock(run_dir) as clock:`` ... ``with clock.training(): train()`` ... ``clock.totals()``."""

    def __init__(self, run_dir: Path | str, beat_s: float = 2.0):
        self.dir = Path(run_dir) / CLOCK_DIR
        self.beat_s = beat_s
        self.start = time.time()
        self.path = self.dir / f"{int(self.start * 1000)}-{os.getpid()}.json"
        self.train_done, self.train_since = 0.0, None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="run-clock")

    def __enter__(self) -> "RunClock":
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._write()

    @contextmanager
    def training(self):
        """Count the body as training time (as well as wall time)."""
        self.train_since = time.time()
        self._write()
        try:
            yield
        finally:
            self.train_done += time.time() - self.train_since
            self.train_since = None
            self._write()

    def _record(self) -> dict:
        now = time.time()
        train = self.train_done + (now - self.train_since if self.train_since is not None else 0.0)
        return {"started": self.start, "wall_seconds": now - self.start, "train_seconds": train}

    def _write(self) -> None:
        with self._lock:
            write_jsonl_atomic(self.path, [self._record()])

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_s):
            self._write()

    def totals(self) -> dict:
        """Seconds summed over every invocation of this run directory (this one up to now), and their count."""
        self._write()
        records = [json.loads(p.read_text()) for p in sorted(self.dir.glob("*.json"))]
        return {"wall_seconds": round(sum(r["wall_seconds"] for r in records), 1),
                "train_seconds": round(sum(r["train_seconds"] for r in records), 1), "invocations": len(records)}
