"""Validate every point of a Hydra multirun before any job starts.

    python -m suite.sweep -m opd_kl_coef=0.25,abc     # refused in seconds, before job 0 trains

Hydra composes each job's config only when that job starts, so a typo in the third value of a sweep
would surface after two jobs had trained. :class:`GridCheck` is a Hydra callback (registered in
``conf/evaluate.yaml``, inherited by ``conf/sweep.yaml``) whose ``on_multirun_start`` expands the grid
and validates every point's composed config into a :class:`suite.config.SuiteConfig`.

Why a callback and not a check in the entry point: ``on_multirun_start`` runs once, in the launching
process, after Hydra has parsed the command line and composed the primary config and before the
sweeper hands any job to the launcher, for the basic launcher (jobs in this process) and the joblib
launcher (jobs in worker processes) alike. It expands the grid with the basic sweeper's own
``split_arguments`` (sweep values from the command line and ``hydra.sweeper.params``) and composes
each point with ``ConfigLoader.load_sweep_config``, the call both launchers make per job, so the
configs checked here are the configs the jobs get. An entry point parsing ``sys.argv`` itself would
re-implement Hydra's command-line grammar and miss ``hydra.sweeper.params``.

Hydra 1.3 turns an exception raised in a callback into a warning and carries on
(``hydra/_internal/callbacks.py``), so the callback ends the process with ``SystemExit`` and the
message (exit status 1) instead of raising.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from suite.config import ConfigError, SuiteConfig, load_config


def grid_points(config: DictConfig) -> list[list[str]]:
    """The overrides of every job the basic sweeper will launch, in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    task = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    [points] = BasicSweeper.split_arguments(parser.parse_overrides(params + task), None)
    return points


def compose_point(config: DictConfig, point: list[str]) -> SuiteConfig:
    """The validated config a job with ``point`` as its overrides receives (raises ConfigError)."""
    from hydra.core.global_hydra import GlobalHydra

    composed = GlobalHydra.instance().config_loader().load_sweep_config(config, point)
    with read_write(composed), open_dict(composed):  # what Hydra removes before calling the task function
        del composed["hydra"]
    return load_config(composed)


def validate_grid(config: DictConfig, check_model_pairs: bool = False) -> list[SuiteConfig]:
    """Every point's config, or one ConfigError listing every refused point (job number and overrides)."""
    points = grid_points(config)
    shared = set.intersection(*(set(p) for p in points)) if len(points) > 1 else set()
    configs, refused = [], []
    for number, point in enumerate(points):
        try:
            configs.append(compose_point(config, point))
        except Exception as err:  # noqa: BLE001 - ConfigError, or Hydra's own composition errors
            swept = [o for o in point if o not in shared] or point  # what tells this job from the others
            refused.append(f"  job {number} ({' '.join(swept) or 'no overrides'}): {err}")
    if refused:
        raise ConfigError(f"{len(refused)} of {len(points)} sweep points refused before any job started:\n"
                          + "\n".join(refused))
    if check_model_pairs:
        from suite.training.compat import check_teacher_student

        pairs = {(c.teacher.path, c.student.path): c for c in configs}
        for cfg in pairs.values():
            if Path(cfg.teacher.path).is_dir() and Path(cfg.student.path).is_dir():  # hub ids: checked per job
                check_teacher_student(cfg)
    return configs


class GridCheck(Callback):
    """``hydra.callbacks.grid_check``: :func:`validate_grid` at multirun start (``check_model_pairs``:
    also teacher/student compatibility of every pair in the grid, for the sweep)."""

    def __init__(self, check_model_pairs: bool = False) -> None:
        self.check_model_pairs = check_model_pairs

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_grid(config, self.check_model_pairs)
        except ValueError as err:  # ConfigError, ModelPairError, DataError: a message for the user
            raise SystemExit(f"Error: {err}") from None
