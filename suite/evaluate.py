"""``python -m suite.evaluate``: score a model on a task through lm-eval (logic: :mod:`suite.evaluation.harness`).

    python -m suite.evaluate                          # toy student on toy_arith, greedy
    python -m suite.evaluate -m model=teacher,student
    python -m suite.evaluate model=outputs/run/ckpt task=gsm8k
"""

from __future__ import annotations

import shlex

import hydra
from omegaconf import DictConfig

from suite.config import load_config
from suite.evaluation.harness import evaluate


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(dict_cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    evaluate(load_config(dict_cfg), command="python -m suite.evaluate " + shlex.join(HydraConfig.get().overrides.task))


if __name__ == "__main__":
    main()
