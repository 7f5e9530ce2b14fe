"""An SGLang server for the teacher: start, wait for health, attach, tear down.

    python -m suite.serve                       # serve the toy teacher until Ctrl-C
    python -m suite.serve teacher=qwen3_8b serve.device=cuda

The model settings (path, dtype, tp size, memory fraction, context length) come from the teacher's
config; the server settings from ``serve``. On a machine without a GPU the CPU flags are used
(``--device cpu``, torch-native attention, a bounded KV cache, ``--sleep-on-idle``); the SGLang CPU
environment is built by ``scripts/setup_sglang_cpu.sh``. With ``serve.url`` set, nothing is started:
the suite attaches to that server.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from suite.config import ModelConfig, ServeConfig
from suite.paths import REPO_ROOT


class ServerError(RuntimeError):
    """The server did not come up, or died; the message names the command, the URL and the log."""


def _gpu_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def sglang_python(serve: ServeConfig) -> str:
    """The interpreter that runs SGLang (``serve.python``, repo-relative unless absolute)."""
    return serve.python if Path(serve.python).is_absolute() else str(REPO_ROOT / serve.python)


def check_sglang_environment(serve: ServeConfig) -> None:
    """Raise :class:`ServerError` with the fix when ``serve.python`` is missing or has no sglang."""
    python = sglang_python(serve)
    fix = ("Fix: `bash scripts/setup_sglang_cpu.sh` builds the CPU environment in .venv-sglang (about 2 minutes), "
           "or set serve.python=/path/to/python of an environment with sglang (e.g. serve.python=$(which python) "
           "on a GPU machine), or attach to a running server with serve.url=http://HOST:PORT")
    if not Path(python).exists():
        raise ServerError(f"no SGLang environment: serve.python={serve.python!r} ({python}) does not exist. {fix}")
    has_sglang = "import importlib.util, sys; sys.exit(importlib.util.find_spec('sglang') is None)"
    probe = subprocess.run([python, "-c", has_sglang], capture_output=True, timeout=60)
    if probe.returncode != 0:
        raise ServerError(f"serve.python={serve.python!r} ({python}) has no sglang package "
                          f"(exit {probe.returncode}: {probe.stderr.decode(errors='replace')[-200:]!r}). {fix}")


def launch_command(model: ModelConfig, serve: ServeConfig) -> list[str]:
    """The ``sglang.launch_server`` command line for ``model`` under ``serve``."""
    python = sglang_python(serve)
    cmd = [python, "-m", "sglang.launch_server", "--model-path", model.path, "--host", serve.host,
           "--port", str(serve.port), "--dtype", model.dtype, "--tp-size", str(model.tp_size)]
    if model.context_length:
        cmd += ["--context-length", str(model.context_length)]
    device = serve.device if serve.device != "auto" else ("cuda" if _gpu_available() else "cpu")
    if device == "cpu":
        cmd += ["--device", "cpu", "--attention-backend", "torch_native", "--max-total-tokens",
                str(serve.max_total_tokens), "--max-running-requests", str(serve.max_running_requests), "--sleep-on-idle"]
    else:
        cmd += ["--mem-fraction-static", str(model.mem_fraction_static)]
    return cmd + list(serve.extra_args)


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class SGLangServer:
    """A teacher server as a context manager: ``with SGLangServer(model, serve) as url: ...``."""

    def __init__(self, model: ModelConfig, serve: ServeConfig):
        self.model, self.serve = model, serve
        self.proc: subprocess.Popen | None = None
        self.url = serve.url or f"http://{serve.host}:{serve.port}"
        self.log_path = Path(serve.log_dir) / f"sglang-{serve.port}.log"

    def start(self) -> str:
        if self.serve.url:  # attach: someone else runs it
            self.wait_healthy()
            return self.url
        check_sglang_environment(self.serve)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "SGLANG_USE_CPU_ENGINE": "1" if "cpu" in self.command() else "0"}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # its own process group: stop() ends all of it
        log.close()
        atexit.register(self.stop)  # a normal exit (or SIGTERM, see main) never leaves the server behind
        self.wait_healthy()
        return self.url

    def command(self) -> list[str]:
        return launch_command(self.model, self.serve)

    def wait_healthy(self) -> None:
        deadline = time.time() + self.serve.startup_timeout_s
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"SGLang exited with code {self.proc.returncode} before {self.url} was healthy; "
                                  f"log {self.log_path}:\n{self._log_tail()}")
            if is_healthy(self.url):
                return
            time.sleep(1.0)
        self.stop()
        raise ServerError(f"{self.url} not healthy after {self.serve.startup_timeout_s}s "
                          f"(serve.startup_timeout_s); log {self.log_path}:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGINT: SGLang's HTTP server stops at once (uvicorn's graceful stop); on SIGTERM its watchdog
        # drains in 5 s polls (measured here: 0.4 s against 5.6 s to exit).
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
