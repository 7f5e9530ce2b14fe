# Run: pytest tests/test_config.py
"""Every conf group composes into a valid SuiteConfig; bad keys and values fail naming the key; run
identity (config hash, run name) depends on what defines a run, never on where the repository lives."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from suite.config import ConfigError, SuiteConfig, config_hash, family_hash, load_config
from suite.paths import REPO_ROOT
from suite.sweep import run_name

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
    assert config_hash(load_config(_compose(["serve.max_running_requests=2"]))) == base
    sglang = ["trainer.teacher_backend=sglang", "trainer.opd_estimator=sampled"]
    served = config_hash(load_config(_compose(sglang)))
    assert config_hash(load_config(_compose([*sglang, "serve.max_running_requests=2"]))) != served
    # where the server runs is no part of the run: its address, interpreter and log directory
    assert config_hash(load_config(_compose([*sglang, "serve.port=31999", "serve.host=0.0.0.0", "serve.log_dir=/x",
                                             "serve.python=/usr/bin/python3"]))) == served


def test_output_locations_and_display_settings_are_not_part_of_the_hash():
    base = config_hash(load_config(_compose()))
    assert config_hash(load_config(_compose(["results_dir=/elsewhere/results", "runs_dir=/elsewhere/runs",
                                             "trainer.progress_bar=false"]))) == base


def test_seeds_are_replicates_of_one_family():
    names, families = {}, {}
    for coef in ("0.5", "1"):
        for seed in ("0", "1", "2"):
            cfg = load_config(_compose([f"opd_kl_coef={coef}", f"seed={seed}"]))
            names[coef, seed], families[coef, seed] = run_name(cfg), family_hash(cfg)
    assert len(set(names.values())) == 6 and all(f"-s{seed}-" in names[c, seed] for c, seed in names)
    assert families["0.5", "0"] == families["0.5", "1"] == families["0.5", "2"] != families["1", "0"]


# Machine-free run identity: the same configuration in two clones, at different paths --------------

_IDENTITY_SCRIPT = """
import json, sys
from hydra import compose, initialize_config_dir
from suite.config import config_hash, family_hash, load_config
from suite.paths import REPO_ROOT
from suite.sweep import run_name
with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
    cfg = load_config(compose(config_name="sweep", overrides=sys.argv[1:]))
print(json.dumps({"run_name": run_name(cfg), "config_hash": config_hash(cfg), "family_hash": family_hash(cfg),
                  "student_path": cfg.student.path}))
"""


def _clone(root: Path) -> Path:
    """What the toy sweep reads of a repository, copied to ``root`` (a clone at another path)."""
    for part in ("conf", "tasks", "data/toy_arith", "artifacts/toy"):
        shutil.copytree(REPO_ROOT / part, root / part)
    return root


def _identity_in(home: Path, *overrides: str) -> dict:
    env = {**os.environ, "OPD_SUITE_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _IDENTITY_SCRIPT, *overrides], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_clones(tmp_path_factory):
    return _clone(tmp_path_factory.mktemp("clone_a") / "opd-suite"), _clone(tmp_path_factory.mktemp("clone_b") / "x" / "y")


def test_the_same_config_in_two_clones_gets_the_same_run_name(two_clones):
    a, b = (_identity_in(home, "opd_kl_coef=0.5", "seed=1") for home in two_clones)
    assert a["student_path"] != b["student_path"]  # really two places...
    assert a["run_name"] == b["run_name"] and a["config_hash"] == b["config_hash"]  # ...one identity
    here = run_name(load_config(_compose(["opd_kl_coef=0.5", "seed=1"])))
    assert a["run_name"] == here  # and the same as in this checkout


def test_changed_training_rows_or_weights_change_the_run_name(two_clones, tmp_path):
    home = two_clones[1]
    clean = _identity_in(home)
    train = home / "data/toy_arith/train.jsonl"
    original = train.read_bytes()
    rows = [json.loads(x) for x in original.decode().splitlines()]
    rows[0]["label"] = str(int(rows[0]["label"]) + 1)  # one damaged label among 8,000 rows
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        damaged = _identity_in(home)
    finally:
        train.write_bytes(original)
    weights = home / "artifacts/toy/student/model.safetensors"
    original_weights = weights.read_bytes()
    weights.write_bytes(original_weights[:-1] + bytes([original_weights[-1] ^ 1]))  # one bit of one weight
    try:
        retrained = _identity_in(home)
    finally:
        weights.write_bytes(original_weights)
    assert len({clean["run_name"], damaged["run_name"], retrained["run_name"]}) == 3
    assert _identity_in(home) == clean  # restored files: the original identity again
