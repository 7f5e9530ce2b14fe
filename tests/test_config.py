# Run: pytest tests/test_config.py
"""Every conf group composes into a valid SuiteConfig; bad keys and values fail naming the key."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from suite.config import ConfigError, SuiteConfig, config_hash, load_config
from suite.paths import REPO_ROOT

CONF = REPO_ROOT / "conf"
GROUPS = ("task", "teacher", "student", "backend", "eval", "trainer", "serve")


def _compose(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="evaluate", overrides=list(overrides))


def test_default_is_the_embedded_toy_world():
    cfg = load_config(_compose())
    assert cfg.task.name == "toy_arith"
    assert Path(cfg.teacher.path) == REPO_ROOT / "artifacts/toy/teacher"
    assert Path(cfg.student.path) == REPO_ROOT / "artifacts/toy/student"
    assert cfg.backend.device == "cpu" and cfg.eval.temperature == 0.0


@pytest.mark.parametrize("group, option", [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))])
def test_every_group_option_composes(group, option):
    cfg = load_config(_compose([f"{group}={option}"]))
    assert isinstance(cfg, SuiteConfig)


def test_real_scale_models_have_the_tutorial_settings():
    cfg = load_config(_compose(["teacher=qwen3_8b", "student=qwen3_4b", "trainer=tutorial", "task=dapo_math"]))
    assert (cfg.teacher.path, cfg.student.path) == ("Qwen/Qwen3-8B", "Qwen/Qwen3-4B")
    t = cfg.trainer
    assert (t.num_rollout, t.rollout_batch_size, t.n_samples_per_prompt, t.rollout_max_response_len) == (10, 16, 4, 2048)
    assert (t.rollout_temperature, t.lr) == (1.0, 1e-6)


def test_int_and_float_spellings_mean_the_same():
    a, b = load_config(_compose(["opd_kl_coef=1"])), load_config(_compose(["opd_kl_coef=1.0"]))
    assert a.opd_kl_coef == b.opd_kl_coef == 1.0 and isinstance(a.opd_kl_coef, float)
    assert config_hash(a) == config_hash(b)


def test_config_hash_changes_with_settings():
    assert config_hash(load_config(_compose())) != config_hash(load_config(_compose(["eval=sampled"])))


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match=r"task\.nmae.*Fix"):
        load_config(_compose(["+task.nmae=gsm8k"]))


def test_unknown_key_on_command_line_is_refused_by_hydra():
    with pytest.raises(Exception, match="nmae"):
        _compose(["task.nmae=gsm8k"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("task.name=gsm9k", "task.name"),
        ("eval.temperature=-1", "eval.temperature"),
        ("trainer.rollout_temperature=0", "trainer.rollout_temperature"),
        ("backend.batch_size=0", "backend.batch_size"),
        ("teacher.dtype=fp8", "dtype"),
        ("task.source=web", "task.source"),
        ("serve.device=tpu", "serve.device"),
        ("serve.logprob_temperature=0.7", "serve.logprob_temperature"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(_compose([override]))
    assert key in str(err.value) and ":" in str(err.value)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"backend\.batch_size"):
        load_config(_compose(["backend.batch_size=many"]))


def test_sglang_teacher_with_full_estimator_is_refused():
    with pytest.raises(ConfigError, match="use sampled or topk"):
        load_config(_compose(["trainer.teacher_backend=sglang", "trainer.opd_estimator=full"]))


def test_server_settings_do_not_change_an_in_process_run():
    base = config_hash(load_config(_compose()))
    assert config_hash(load_config(_compose(["serve.port=31999"]))) == base
    assert config_hash(load_config(_compose(["trainer.teacher_backend=sglang", "trainer.opd_estimator=sampled"]))) != \
        config_hash(load_config(_compose(["trainer.teacher_backend=sglang", "trainer.opd_estimator=sampled",
                                          "serve.port=31999"])))
