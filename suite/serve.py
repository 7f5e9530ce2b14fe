"""``python -m suite.serve``: serve the teacher behind SGLang until Ctrl-C (logic: :mod:`suite.serving.server`).

    python -m suite.serve                       # the toy teacher, CPU flags
    python -m suite.serve teacher=qwen3_8b serve.device=cuda
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from suite.config import load_config
from suite.serving.server import SGLangServer


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(dict_cfg: DictConfig) -> None:
    cfg = load_config(dict_cfg)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwind, so the server is stopped too
    with SGLangServer(cfg.teacher, cfg.serve) as url:
        print(f"serving {cfg.teacher.path} at {url} (log {Path(cfg.serve.log_dir)}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
