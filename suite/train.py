"""``python -m suite.train``: one OPD training run, no evaluation (the sweep adds baselines, scoring, rows).

    python -m suite.train opd_kl_coef=0.5                                  # one process (CPU or one GPU)
    torchrun --nproc_per_node 2 -m suite.train trainer.distributed=fsdp trainer.num_gpus=2 \\
        student=qwen3_4b_shape teacher=qwen3_8b_shape trainer=tutorial task=dapo_math
    torchrun --nproc_per_node 2 -m suite.train --config outputs/runs/NAME/config.yaml  # what the sweep launches

Overrides are composed with Hydra's compose API (not ``@hydra.main``) so that every torchrun rank
builds the same config without creating output directories. The run directory is
``runs_dir/<run name>`` unless ``--run-dir`` says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from suite.config import SuiteConfig, compose_config, load_config


def run_dir_for(cfg: SuiteConfig) -> Path:
    from suite.sweep import run_name

    return Path(cfg.runs_dir) / run_name(cfg)


def launch_distributed(cfg: SuiteConfig, run_dir: Path) -> Path:
    """Train under ``torchrun`` (``trainer.num_gpus`` processes) from this process; returns the last checkpoint.

    The resolved config is written to ``run_dir/config.yaml`` and every rank reads it back, so the
    ranks and the calling sweep job agree on every value.
    """
    import subprocess
    import sys

    from omegaconf import OmegaConf

    from suite.training.trainer import list_checkpoints

    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(cfg.trainer.num_gpus),
           "-m", "suite.train", "--config", str(config_file), "--run-dir", str(run_dir)]
    subprocess.run(cmd, check=True)
    return list_checkpoints(run_dir)[-1]


def main(argv: list[str] | None = None) -> Path:
    from omegaconf import OmegaConf

    from suite.training.trainer import OPDTrainer

    parser = argparse.ArgumentParser(prog="python -m suite.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="a saved config.yaml (written by the sweep) instead of overrides")
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    cfg = load_config(OmegaConf.load(args.config)) if args.config else compose_config("sweep", args.overrides)
    return OPDTrainer(cfg, args.run_dir or run_dir_for(cfg)).train()


if __name__ == "__main__":
    main()
