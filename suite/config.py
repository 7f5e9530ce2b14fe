"""The one typed configuration every entry point receives, validated at start-up.

Hydra composes ``conf/``; :func:`load_config` merges the result onto :class:`SuiteConfig` (so an
unknown key or a value of the wrong type is an error naming the key) and runs each dataclass's
``__post_init__`` checks (so a bad value is an error naming the key and the fix).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from suite.paths import repo_path

if not OmegaConf.has_resolver("repo"):
    OmegaConf.register_new_resolver("repo", repo_path)


def parallel_jobs(device: str) -> int:
    """Sweep jobs to run at once (``hydra.launcher.n_jobs``): one per CPU core for CPU training (each job
    runs one thread, the fastest setting measured on 2 cores), one at a time when jobs share a GPU."""
    import os

    return len(os.sched_getaffinity(0)) if str(device) == "cpu" else 1


if not OmegaConf.has_resolver("parallel_jobs"):
    OmegaConf.register_new_resolver("parallel_jobs", parallel_jobs)


class ConfigError(ValueError):
    """A configuration the suite refuses to run; the message names the key and the fix."""


ROLLOUT_ENGINES = ("generate", "static")  # suite/training/engine.py implements each (tests/test_engine.py checks)


def _check(ok: bool, key: str, value: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"bad config value {key}={value!r}: {fix}")


def _finite(x: float) -> bool:
    """False for nan and +-inf, which pass (or fail) range checks by accident; Hydra parses both."""
    return math.isfinite(x)


ON_BAD_ROWS = ("error", "skip")


@dataclass
class TaskConfig:
    name: str = "toy_arith"  # an lm-eval task in tasks/
    source: str = "auto"  # auto | hub | local: where rows are read from
    limit: Optional[int] = None  # score only the first N eval rows (smoke runs; rows record it)
    # A data row the suite cannot use (not JSON, a field missing or empty, a label the scorer cannot
    # parse, a prompt longer than the model's context): stop naming file and line (error), or leave it
    # out and count it in the results row (skip).
    on_bad_rows: str = "error"

    def __post_init__(self) -> None:
        from suite.data import TASKS

        _check(self.name in TASKS, "task.name", self.name, f"choose one of {', '.join(TASKS)}")
        _check(self.source in ("auto", "hub", "local"), "task.source", self.source, "use auto, hub or local")
        _check(self.limit is None or self.limit > 0, "task.limit", self.limit, "use null or a positive integer")
        _check(self.on_bad_rows in ON_BAD_ROWS, "task.on_bad_rows", self.on_bad_rows,
               "use error (stop at the first bad row, naming file and line) or skip (leave bad rows out, counted)")


@dataclass
class ModelConfig:
    """A checkpoint: a local HF directory or a hub id, and how to serve it (SGLang, later issue)."""

    name: str = "toy"
    path: str = "${repo:artifacts/toy/student}"
    dtype: str = "float32"
    enable_thinking: bool = True  # Qwen3 chat template switch
    tp_size: int = 1
    mem_fraction_static: float = 0.8
    context_length: Optional[int] = None
    tokenizer: Optional[str] = None  # tokenizer directory; null = the model's own (path)
    device: Optional[str] = None  # where an in-process copy runs (e.g. the teacher on cuda:1); null = trainer.device
    # A real-shape stand-in: build the model from path/config.json with random weights (memory and speed
    # measurements at Qwen3's shapes without downloading weights; never a model to evaluate).
    random_init: bool = False

    def __post_init__(self) -> None:
        _check(self.name.strip() != "", "<model>.name", self.name, "name the model (it labels results rows)")
        _check(self.path.strip() != "", "<model>.path", self.path, "use a local HF checkpoint directory or a hub id")
        _check(self.dtype in ("float32", "bfloat16", "float16"), "<model>.dtype", self.dtype,
               "use float32 (CPU), bfloat16 or float16")
        _check(self.tp_size >= 1, "<model>.tp_size", self.tp_size, "use a positive integer")
        _check(0 < self.mem_fraction_static <= 1, "<model>.mem_fraction_static", self.mem_fraction_static,
               "use a fraction in (0, 1]")
        _check(self.context_length is None or self.context_length >= 2, "<model>.context_length",
               self.context_length, "use null (the checkpoint's own limit) or a positive number of tokens")


@dataclass
class BackendConfig:
    """How lm-eval runs a model: ``hf`` in-process with transformers, ``sglang-generate`` through an
    SGLang server (started for the evaluation with the ``serve`` settings, or attached via ``serve.url``)."""

    name: str = "hf"
    lm_eval_model: str = "hf"
    device: str = "cpu"
    batch_size: int = 64

    def __post_init__(self) -> None:
        _check(self.lm_eval_model in ("hf", "sglang-generate"), "backend.lm_eval_model", self.lm_eval_model,
               "use hf (in-process) or sglang-generate (an SGLang server)")
        _check(self.batch_size >= 1, "backend.batch_size", self.batch_size, "use a positive integer")


@dataclass
class ServeConfig:
    """An SGLang teacher server: how to start it (or which URL to attach to) and how the client talks to it."""

    url: Optional[str] = None  # attach to a running server instead of starting one
    host: str = "127.0.0.1"
    port: int = 30000
    device: str = "auto"  # auto | cpu | cuda
    python: str = ".venv-sglang/bin/python"  # the interpreter that has sglang (scripts/setup_sglang_cpu.sh)
    startup_timeout_s: float = 300.0
    max_total_tokens: int = 4096  # CPU: bounds the KV cache (SGLang would reserve ~18 GB)
    max_running_requests: int = 8
    extra_args: list = field(default_factory=list)
    log_dir: str = "${repo:outputs/serve}"
    concurrency: int = 8  # client: requests in flight
    request_timeout_s: float = 120.0
    retries: int = 6  # client: attempts after the first, on connection errors and 5xx
    backoff_s: float = 0.5  # client: first wait; doubles each retry
    # The teacher is scored at T=1, its own distribution: SGLang ignores temperature on *input*
    # log-probs (slime PR 2319), so any other value would be silently wrong.
    logprob_temperature: float = 1.0

    def __post_init__(self) -> None:
        _check(self.device in ("auto", "cpu", "cuda"), "serve.device", self.device, "use auto, cpu or cuda")
        for key in ("max_total_tokens", "max_running_requests", "concurrency"):
            _check(getattr(self, key) >= 1, f"serve.{key}", getattr(self, key), "use a positive integer")
        _check(1 <= self.port <= 65535, "serve.port", self.port, "use a TCP port in 1..65535")
        for key in ("startup_timeout_s", "request_timeout_s"):
            value = getattr(self, key)
            _check(_finite(value) and value > 0, f"serve.{key}", value, "use a positive number of seconds")
        _check(self.retries >= 0, "serve.retries", self.retries, "use 0 (no retry) or a positive integer")
        _check(_finite(self.backoff_s) and self.backoff_s >= 0, "serve.backoff_s", self.backoff_s,
               "use 0 or a positive number of seconds")
        _check(self.python.strip() != "", "serve.python", self.python,
               "use the interpreter that has sglang (`bash scripts/setup_sglang_cpu.sh` builds .venv-sglang)")
        _check(self.logprob_temperature == 1.0, "serve.logprob_temperature", self.logprob_temperature,
               "SGLang does not temperature-scale input log-probs (slime PR 2319); the teacher is scored at 1.0")


@dataclass
class EvalConfig:
    """Sampling settings for scoring. temperature 0 is greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off; transformers would otherwise apply top_k=50 when sampling
    max_gen_toks: Optional[int] = None  # null = the task's own default
    think_end_token: str = "</think>"
    samples_per_problem: int = 1  # k > 1: avg@k and pass@k (needs temperature > 0)

    def __post_init__(self) -> None:
        _check(_finite(self.temperature) and self.temperature >= 0, "eval.temperature", self.temperature,
               "use 0 (greedy) or a positive number")
        _check(0 < self.top_p <= 1, "eval.top_p", self.top_p, "use a value in (0, 1]")
        _check(self.top_k >= 0, "eval.top_k", self.top_k, "use 0 (off) or a positive integer")
        _check(self.max_gen_toks is None or self.max_gen_toks > 0, "eval.max_gen_toks", self.max_gen_toks,
               "use null or a positive integer")
        _check(self.samples_per_problem >= 1, "eval.samples_per_problem", self.samples_per_problem,
               "use a positive integer")
        _check(self.samples_per_problem == 1 or self.temperature > 0, "eval.samples_per_problem",
               self.samples_per_problem, "several samples per problem need eval.temperature > 0 (e.g. eval=sampled)")

    def gen_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"do_sample": self.temperature > 0, "temperature": self.temperature}
        if self.temperature > 0:
            kwargs.update(top_p=self.top_p, top_k=self.top_k)
        if self.max_gen_toks is not None:
            kwargs["max_gen_toks"] = self.max_gen_toks
        return kwargs


@dataclass
class SlimeConfig:
    """``trainer=slime``: where slime runs the job (paths and GPUs on the slime machine). Only trainer=slime
    reads these; suite/slime/mapping.py maps each one to slime's flags."""

    dry_run: Optional[bool] = None  # null: true where slime is absent (no slime_dir, no SLIME_DIR, no package)
    slime_dir: Optional[str] = None  # slime's source checkout (train.py, tools/); null: $SLIME_DIR or the package
    megatron_dir: str = "/root/Megatron-LM"  # on the Ray job's PYTHONPATH (slime's docker image layout)
    python: str = "python3"  # the slime machine's interpreter (train.py, converters, the teacher's SGLang)
    model_args_script: Optional[str] = None  # slime's scripts/models/*.sh for the student; null: by student.path
    ref_load: Optional[str] = None  # slime's first checkpoint; null: the student's HF dir (slime loads it)
    actor_num_nodes: int = 1
    actor_num_gpus_per_node: int = 8
    rollout_num_gpus: int = 8
    rollout_num_gpus_per_engine: int = 2
    colocate: bool = True  # actor and rollout engines share the GPUs (slime offloads between phases)
    tensor_model_parallel_size: int = 2
    max_tokens_per_gpu: int = 9216  # dynamic batching: tokens per GPU per micro-batch
    sglang_mem_fraction_static: float = 0.7  # the rollout engines' share of GPU memory
    teacher_gpu: int = 8  # CUDA_VISIBLE_DEVICES of the teacher's server when the plan starts it (serve.url null)
    ray_address: str = "http://127.0.0.1:8265"
    start_ray: bool = True  # the plan runs `ray start --head` (false: submit to a running cluster)

    def __post_init__(self) -> None:
        for key in ("actor_num_nodes", "actor_num_gpus_per_node", "rollout_num_gpus_per_engine",
                    "tensor_model_parallel_size", "max_tokens_per_gpu"):
            _check(getattr(self, key) >= 1, f"trainer.slime.{key}", getattr(self, key), "use a positive integer")
        _check(self.rollout_num_gpus >= 0 and self.teacher_gpu >= 0, "trainer.slime.rollout_num_gpus",
               self.rollout_num_gpus, "use non-negative GPU counts and indices")
        _check(0 < self.sglang_mem_fraction_static < 1, "trainer.slime.sglang_mem_fraction_static",
               self.sglang_mem_fraction_static, "use a fraction in (0, 1)")
        _check(self.actor_num_gpus_per_node % self.tensor_model_parallel_size == 0,
               "trainer.slime.tensor_model_parallel_size", self.tensor_model_parallel_size,
               f"must divide trainer.slime.actor_num_gpus_per_node = {self.actor_num_gpus_per_node}")


@dataclass
class TrainerConfig:
    """The OPD recipe. The first nine names are the tutorial's SlimeRecipe fields."""

    name: str = "local"
    num_rollout: int = 150
    rollout_batch_size: int = 64
    n_samples_per_prompt: int = 1
    rollout_max_response_len: int = 64
    rollout_temperature: float = 1.0
    global_batch_size: int = 64
    lr: float = 1e-3
    save_interval: int = 50
    opd_estimator: str = "sampled"  # sampled (slime/tinker) | full (exact reverse KL) | topk (top-K + tail)
    advantage_mode: str = "group_norm"  # group_norm (GRPO) | group_mean | raw (the tutorial's +1/-1)
    opd_topk: int = 16  # K of the topk estimator
    clip_low: float = 0.2
    clip_high: float = 0.28
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    teacher_backend: str = "hf"  # hf (in-process) | sglang (a server: `serve` settings)
    device: str = "cpu"
    # How the step runs (not what it computes; outside the config hash):
    micro_batch_size: Optional[int] = None  # sequences per forward/backward; null = a whole optimizer step
    activation_checkpointing: bool = False  # recompute each decoder layer in backward (real shapes)
    distributed: str = "none"  # none (one process) | fsdp (FSDP2 under torchrun, one process per GPU)
    num_gpus: int = 1  # processes under fsdp (GPUs; CPU processes with gloo when device=cpu)
    lm_head_chunk: int = 1024  # positions per chunk of the LM head (memory O(chunk x vocab))
    rollout_engine: str = "static"  # static (fast, Qwen3) | generate (transformers); suite/training/engine.py
    kl_eval_prompts: int = 256  # held-out prompts for the before/after reverse-KL measurement
    progress_bar: bool = True
    tensorboard: bool = False
    slime: SlimeConfig = field(default_factory=SlimeConfig)  # read only by trainer=slime

    def __post_init__(self) -> None:
        for key in ("num_rollout", "rollout_batch_size", "n_samples_per_prompt", "rollout_max_response_len",
                    "global_batch_size", "save_interval", "opd_topk", "lm_head_chunk"):
            _check(getattr(self, key) >= 1, f"trainer.{key}", getattr(self, key), "use a positive integer")
        _check(_finite(self.rollout_temperature) and self.rollout_temperature > 0, "trainer.rollout_temperature",
               self.rollout_temperature,
               "on-policy sampling needs a positive temperature (1.0 samples the true policy)")
        _check(_finite(self.lr) and self.lr > 0, "trainer.lr", self.lr, "use a positive learning rate")
        _check(_finite(self.clip_low) and 0 <= self.clip_low < 1, "trainer.clip_low", self.clip_low,
               "use a value in [0, 1) (slime: 0.2); the ratio is clipped below at 1 - clip_low")
        _check(_finite(self.clip_high) and self.clip_high >= 0, "trainer.clip_high", self.clip_high,
               "use a non-negative value (slime: 0.28); the ratio is clipped above at 1 + clip_high")
        _check(_finite(self.max_grad_norm) and self.max_grad_norm > 0, "trainer.max_grad_norm", self.max_grad_norm,
               "use a positive norm (1.0 is the usual value)")
        _check(_finite(self.weight_decay) and self.weight_decay >= 0, "trainer.weight_decay", self.weight_decay,
               "use 0 or a positive value")
        _check(self.kl_eval_prompts >= 1, "trainer.kl_eval_prompts", self.kl_eval_prompts, "use a positive integer")
        _check(self.opd_estimator in ("sampled", "full", "topk"), "trainer.opd_estimator", self.opd_estimator,
               "use sampled, full or topk")
        _check(self.advantage_mode in ("group_norm", "group_mean", "raw"), "trainer.advantage_mode",
               self.advantage_mode, "use group_norm, group_mean or raw")
        _check(self.teacher_backend in ("hf", "sglang"), "trainer.teacher_backend", self.teacher_backend,
               "use hf (in-process) or sglang (a server)")
        _check(not (self.teacher_backend == "sglang" and self.opd_estimator == "full"), "trainer.opd_estimator",
               self.opd_estimator, "an SGLang teacher returns sampled-token or top-K log-probs: use sampled or topk")
        if self.tensorboard and self.name != "slime":  # slime's tensorboard runs on the slime machine
            import importlib.util

            _check(importlib.util.find_spec("tensorboard") is not None, "trainer.tensorboard", True,
                   "`pip install tensorboard`, or set trainer.tensorboard=false (metrics.jsonl is always written)")
        samples = self.rollout_batch_size * self.n_samples_per_prompt
        _check(samples % self.global_batch_size == 0, "trainer.global_batch_size", self.global_batch_size,
               f"must divide rollout_batch_size * n_samples_per_prompt = {samples}")
        _check(self.micro_batch_size is None or self.micro_batch_size >= 1, "trainer.micro_batch_size",
               self.micro_batch_size, "use null (a whole optimizer step) or a positive integer")
        _check(self.distributed in ("none", "fsdp"), "trainer.distributed", self.distributed,
               "use none (one process) or fsdp (torchrun --nproc_per_node N -m suite.train ...)")
        _check(self.num_gpus >= 1 and (self.num_gpus == 1 or self.distributed == "fsdp"), "trainer.num_gpus",
               self.num_gpus, "use 1, or set trainer.distributed=fsdp to spread the student over several GPUs")
        _check(self.rollout_batch_size % self.num_gpus == 0 and self.global_batch_size % self.num_gpus == 0,
               "trainer.num_gpus", self.num_gpus, "must divide trainer.rollout_batch_size and trainer.global_batch_size "
               "(each GPU takes whole prompt groups)")
        _check(self.rollout_engine in ROLLOUT_ENGINES, "trainer.rollout_engine", self.rollout_engine,
               f"use one of {', '.join(ROLLOUT_ENGINES)}")


@dataclass
class SuiteConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    model: str = "student"  # what `suite.evaluate` scores: teacher | student | a checkpoint path
    opd_kl_coef: float = 1.0
    reward_scale: float = 1.0
    seed: int = 0
    results_dir: str = "${repo:results}"
    runs_dir: str = "${repo:outputs/runs}"

    def __post_init__(self) -> None:
        _check(self.model.strip() != "", "model", self.model, "use teacher, student or a checkpoint directory")
        _check(_finite(self.opd_kl_coef) and self.opd_kl_coef >= 0, "opd_kl_coef", self.opd_kl_coef,
               "use a non-negative coefficient (0 turns the teacher's KL term off)")
        # 0 is meaningful: pure distillation, the teacher's KL term alone (on-policy distillation without a
        # task reward). A negative scale rewards wrong answers, so it is refused.
        _check(_finite(self.reward_scale) and self.reward_scale >= 0, "reward_scale", self.reward_scale,
               "use a non-negative scale (1 is the tutorial's; 0 trains on the teacher's KL term alone)")
        _check(self.opd_kl_coef > 0 or self.reward_scale > 0, "reward_scale", self.reward_scale,
               "reward_scale=0 and opd_kl_coef=0 leave nothing to learn from; make one of them positive")
        _check(0 <= self.seed < 2**32, "seed", self.seed, "use an integer in [0, 2**32) (numpy's seed range)")


def compose_config(config_name: str, overrides: list[str]) -> SuiteConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` (Hydra's compose API) and validate it."""
    from hydra import compose, initialize_config_dir

    from suite.paths import REPO_ROOT

    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return load_config(compose(config_name=config_name, overrides=list(overrides)))


def load_config(cfg: DictConfig | dict) -> SuiteConfig:
    """Validate a composed Hydra config into a :class:`SuiteConfig`, or raise :class:`ConfigError`."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SuiteConfig), cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except ConfigKeyError as err:
        parent, _, leaf = (err.full_key or "").rpartition(".")
        valid = _valid_keys(parent)
        raise ConfigError(
            f"unknown config key '{err.full_key}'" + f"; valid keys {f'under {parent!r}' if parent else 'at the top level'}: {', '.join(valid)}"
            + ". Fix: correct the spelling (see suite/config.py for every key) or remove the key."
        ) from None
    except OmegaConfBaseException as err:
        first_line = str(err.msg).splitlines()[0]
        raise ConfigError(f"bad config value for '{err.full_key}': {first_line}. Fix: give a value of the right type "
                          "(see suite/config.py).") from None


def _valid_keys(dotted: str) -> list[str]:
    node: Any = SuiteConfig
    for part in filter(None, dotted.split(".")):
        node = {f.name: f for f in fields(node)}[part].default_factory  # type: ignore[union-attr]
    return [f.name for f in fields(node)]


# Run identity ------------------------------------------------------------------------------------
# What defines a run or an evaluation, never where the repository, the data or the outputs live:
# models by weights sha256 (a hub id when there are no local weights), the task by name, version and
# a fingerprint of its training rows, and every setting. Two clones of the repository in different
# directories, or on different machines, give the same run names and hashes.

_NOT_IDENTITY = ("results_dir", "runs_dir")  # where results go
_SERVE_LOCATION = ("url", "host", "port", "python", "log_dir")  # where a server runs, not what it computes
_TRAINER_DISPLAY = ("progress_bar", "tensorboard")  # what is shown while training, not what is trained
# How a step runs, not what it computes (micro-batching, memory, processes, sampler implementation).
_TRAINER_EXECUTION = ("micro_batch_size", "activation_checkpointing", "distributed", "lm_head_chunk",
                      "rollout_engine", "num_gpus")
# Settings added after results were recorded: at their default they leave the identity as it was.
_MODEL_DEFAULTS = {"tokenizer": None, "random_init": False}


def machine_free_path(path: str) -> str:
    """Repo-relative for paths inside the repository (the same in every clone), else as given."""
    from suite.paths import REPO_ROOT

    resolved = Path(path).expanduser().resolve()
    return str(resolved.relative_to(REPO_ROOT.resolve())) if resolved.is_relative_to(REPO_ROOT.resolve()) else path


def weights_sha256(path: str) -> str | None:
    """sha256 over a checkpoint's ``*.safetensors`` (else ``*.bin``) files, sorted by name; None for a hub id.

    Cached per process on the files' names, sizes and modification times (hashing 16 GB takes a minute).
    """
    directory = Path(path).expanduser()
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin"))
    if not files:
        return None
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _hash_files(str(directory.resolve()), stamp)


@functools.lru_cache(maxsize=64)
def _hash_files(directory: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        with open(Path(directory) / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def task_version(task: str) -> str | int | None:
    """``metadata.version`` of ``tasks/<task>/<task>.yaml`` (read as text: the YAML has !function tags)."""
    from suite.paths import TASKS_DIR

    text = (TASKS_DIR / task / f"{task}.yaml").read_text()
    found = re.search(r"^\s+version:\s*(\S+)", text.split("metadata:", 1)[-1], re.MULTILINE)
    if not found:
        return None
    return int(found.group(1)) if found.group(1).isdigit() else found.group(1)


@functools.lru_cache(maxsize=None)
def train_rows_sha256(task: str, source: str, on_bad_rows: str = "error") -> str | None:
    """Fingerprint of the rows a trainer samples for ``task`` (``suite.data.train_rows``); None for an
    eval-only task (GSM8K, MATH-500, AIME: ``train_rows`` refuses them, and so does the trainer).

    Cached per process, like the rows themselves (``suite.data.all_rows``).
    """
    from suite.data import DataError, rows_fingerprint, train_rows

    try:
        return rows_fingerprint(train_rows(task, source, on_bad_rows))
    except DataError:
        return None


def model_identity(model: ModelConfig, weights: str | None = None) -> dict[str, Any]:
    """A model's settings with its path replaced by its weights' sha256 (or, with no local weights, the hub id).

    Where it runs (``device``) is not part of it; a tokenizer directory is named repo-relative."""
    data = asdict(model)
    path = data.pop("path")
    data.pop("device")
    for key, default in _MODEL_DEFAULTS.items():
        if data[key] == default:
            data.pop(key)
    if data.get("tokenizer"):
        data["tokenizer"] = machine_free_path(data["tokenizer"])
    sha = weights or weights_sha256(path)
    data["weights_sha256" if sha else "hub_id"] = sha or machine_free_path(path)
    return data


def run_identity(cfg: SuiteConfig, weights: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything that defines a run, free of machine paths; :func:`config_hash` hashes it.

    ``weights`` maps a model path to its known sha256, for checkpoints not on this machine (migrating
    recorded results); other paths are hashed from their files.
    """
    weights = weights or {}
    data = asdict(cfg)
    for key in _NOT_IDENTITY:
        data.pop(key)
    for role in ("teacher", "student"):
        model = getattr(cfg, role)
        data[role] = model_identity(model, weights.get(model.path))
    if cfg.model not in ("teacher", "student"):  # a checkpoint scored by suite.evaluate
        sha = weights.get(cfg.model) or weights_sha256(cfg.model)
        data["model"] = {"weights_sha256": sha} if sha else {"path": machine_free_path(cfg.model)}
    data["task"].update(version=task_version(cfg.task.name),
                        train_rows_sha256=train_rows_sha256(cfg.task.name, cfg.task.source, cfg.task.on_bad_rows))
    if data["task"]["on_bad_rows"] == "error":  # the default: absent from identities recorded before it existed
        data["task"].pop("on_bad_rows")
    if cfg.trainer.teacher_backend == "hf":  # server settings cannot change an in-process run
        data.pop("serve")
    else:
        for key in _SERVE_LOCATION:
            data["serve"].pop(key)
    for key in _TRAINER_DISPLAY + _TRAINER_EXECUTION:
        data["trainer"].pop(key)
    slime = data["trainer"].pop("slime")  # read only by trainer=slime; a dry run is the same run
    if cfg.trainer.name == "slime":
        data["trainer"]["slime"] = {k: v for k, v in slime.items() if k != "dry_run"}
    return data


def _short_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(cfg: SuiteConfig, weights: Mapping[str, str] | None = None) -> str:
    """A short, stable hash of everything that defines a run (not where it ran or where its results go)."""
    return _short_hash(run_identity(cfg, weights))


def family_hash(cfg: SuiteConfig, weights: Mapping[str, str] | None = None) -> str:
    """The hash of the run's identity without its seed: runs that differ only in ``seed`` are replicates."""
    identity = run_identity(cfg, weights)
    identity.pop("seed")
    return _short_hash(identity)
