"""The one table from the suite's config to slime: every field -> the train.py flags it renders, or where
its value goes instead and why.

``TRAINER`` has one entry per :class:`suite.config.TrainerConfig` field, ``SLIME`` one per
:class:`suite.config.SlimeConfig` field, ``RUN`` the run-level fields slime sees (task, student, teacher,
``opd_kl_coef``, ``reward_scale``, ``seed``, ``runs_dir``), and ``RECIPE`` the flags no field sets (each
with its reason). :func:`train_args` renders ``python3 train.py``'s arguments from them, in this order.
tests/test_slime_plan.py fails when a field has no entry and when a rendered flag is not in slime's
argument list (``slime_flags.txt``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from suite.config import ConfigError, SuiteConfig, TrainerConfig

MODEL_ARGS = '"${MODEL_ARGS[@]}"'  # the student's architecture flags, from slime's scripts/models/<model>.sh
SLIME_TEACHER_CALL = "slime.rollout.on_policy_distillation.reward_func"
REWARD_HOOK = "suite.slime.reward_hook.post_process_rewards"
# slime's MODEL_ARGS scripts for the students it ships them for (scripts/models/ at the commit in slime_flags.txt).
MODEL_SCRIPTS = {f"Qwen3-{size}": f"scripts/models/qwen3-{size}.sh"
                 for size in ("0.6B", "1.7B", "4B", "8B", "14B", "32B")}


@dataclass(frozen=True)
class Paths:
    """Where the plan puts things (on the slime machine)."""

    prompt_data: str  # the task's train split in slime's prompt/label JSONL
    save: str  # slime's --save / --load: Megatron torch_dist iterations
    ref_load: str  # the first --load: the student's HF directory, or a torch_dist checkpoint
    hf_checkpoint: str  # the student's HF directory (shell word: may be "$HF_CHECKPOINT")
    rm_url: str  # the teacher's /generate
    tensorboard: str


Render = Callable[[SuiteConfig, Paths], list[str]]


@dataclass(frozen=True)
class Entry:
    key: str  # the config key, as on the command line
    flags: tuple[str, ...] = ()  # the slime flags it may render
    render: Render | None = None
    note: str = ""  # where the value goes instead of a flag, and why

    def args(self, cfg: SuiteConfig, paths: Paths) -> list[str]:
        return self.render(cfg, paths) if self.render else []


def _value(key: str, flag: str) -> Entry:
    """An entry whose value is passed through as ``flag value`` (``trainer.x`` / ``trainer.slime.x`` / ``x``)."""
    def render(cfg: SuiteConfig, _: Paths) -> list[str]:
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        return [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return Entry(key, (flag,), render)


def _opd(cfg: SuiteConfig, _: Paths) -> list[str]:
    if cfg.trainer.opd_estimator != "sampled":
        raise ConfigError(f"bad config value trainer.opd_estimator={cfg.trainer.opd_estimator!r}: slime applies the "
                          "KL on the sampled token (--use-opd --opd-type sglang); use trainer.opd_estimator=sampled")
    return ["--use-opd", "--opd-type", "sglang"]


def _temperature(cfg: SuiteConfig, _: Paths) -> list[str]:
    if cfg.trainer.rollout_temperature != 1.0:
        raise ConfigError(f"bad config value trainer.rollout_temperature={cfg.trainer.rollout_temperature}: slime also "
                          "sends it as the teacher's scoring temperature (slime.rollout.on_policy_distillation."
                          "reward_func, THUDM/slime#2085), which SGLang may not apply to input log-probs, while the "
                          "suite scores the teacher at T=1 (serve.logprob_temperature); use 1.0 with trainer=slime")
    return ["--rollout-temperature", "1"]


def _tensor_parallel(cfg: SuiteConfig, _: Paths) -> list[str]:
    tp = cfg.trainer.slime.tensor_model_parallel_size
    return ["--tensor-model-parallel-size", str(tp)] + (["--sequence-parallel"] if tp > 1 else [])


def _tensorboard(cfg: SuiteConfig, paths: Paths) -> list[str]:
    return ["--use-tensorboard", "--tb-project-name", paths.tensorboard] if cfg.trainer.tensorboard else []


TRAINER: tuple[Entry, ...] = (
    Entry("trainer.name", note="picks the trainer: 'slime' sends the sweep point to suite/slime"),
    _value("trainer.num_rollout", "--num-rollout"),
    _value("trainer.rollout_batch_size", "--rollout-batch-size"),
    _value("trainer.n_samples_per_prompt", "--n-samples-per-prompt"),
    _value("trainer.rollout_max_response_len", "--rollout-max-response-len"),
    Entry("trainer.rollout_temperature", ("--rollout-temperature",), _temperature,
          note="1.0 only: slime scores the teacher at the rollout temperature"),
    _value("trainer.global_batch_size", "--global-batch-size"),
    _value("trainer.lr", "--lr"),
    _value("trainer.save_interval", "--save-interval"),
    Entry("trainer.opd_estimator", ("--use-opd", "--opd-type"), _opd),
    Entry("trainer.advantage_mode", ("--advantage-estimator", "--custom-reward-post-process-path"),
          lambda cfg, _: ["--advantage-estimator", "grpo", "--custom-reward-post-process-path", REWARD_HOOK],
          note="the value reaches the reward hook as OPD_SUITE_ADVANTAGE_MODE: a custom post-process replaces "
               "slime's own group normalisation, so the hook applies raw/group_mean/group_norm itself"),
    Entry("trainer.opd_topk", note="read only by opd_estimator=topk; slime's OPD uses the sampled token"),
    _value("trainer.clip_low", "--eps-clip"),
    _value("trainer.clip_high", "--eps-clip-high"),
    _value("trainer.max_grad_norm", "--clip-grad"),
    _value("trainer.weight_decay", "--weight-decay"),
    Entry("trainer.teacher_backend", note="slime's teacher is always the SGLang server at --rm-url; this only picks "
                                          "how the suite's own before/after KL measurement reaches the teacher"),
    Entry("trainer.device", note="slime places its processes itself (trainer.slime.*); the suite's KL "
                                 "measurement runs here"),
    Entry("trainer.kl_eval_prompts", note="the suite's held-out KL measurement before and after, not slime's"),
    Entry("trainer.progress_bar", note="the local trainer's progress bar; slime logs to its job's stdout"),
    Entry("trainer.micro_batch_size", note="the local trainer's micro-batches; slime packs by "
          "trainer.slime.max_tokens_per_gpu (--use-dynamic-batch-size)"),
    Entry("trainer.activation_checkpointing", note="the local trainer's; slime's MODEL_ARGS/Megatron recompute settings "
          "come with the student's model script"),
    Entry("trainer.distributed", note="the local trainer's FSDP switch; slime's parallelism is trainer.slime.*"),
    Entry("trainer.num_gpus", note="the local trainer's FSDP process count; slime's GPUs are trainer.slime.*"),
    Entry("trainer.lm_head_chunk", note="the local trainer's chunked LM head; Megatron computes log-probs itself"),
    Entry("trainer.rollout_engine", note="the local trainer's sampler; slime's rollouts run on SGLang engines"),
    Entry("trainer.tensorboard", ("--use-tensorboard", "--tb-project-name"), _tensorboard),
    Entry("trainer.slime", note="where slime runs: the SLIME entries"),
)

SLIME: tuple[Entry, ...] = (
    Entry("trainer.slime.model_args_script", ("$MODEL_ARGS",), lambda cfg, _: [MODEL_ARGS],
          note="sourced by the plan: MODEL_ARGS, the student's architecture flags"),
    _value("trainer.slime.actor_num_nodes", "--actor-num-nodes"),
    _value("trainer.slime.actor_num_gpus_per_node", "--actor-num-gpus-per-node"),
    _value("trainer.slime.rollout_num_gpus", "--rollout-num-gpus"),
    _value("trainer.slime.rollout_num_gpus_per_engine", "--rollout-num-gpus-per-engine"),
    Entry("trainer.slime.colocate", ("--colocate",),
          lambda cfg, _: ["--colocate"] if cfg.trainer.slime.colocate else []),
    Entry("trainer.slime.tensor_model_parallel_size", ("--tensor-model-parallel-size", "--sequence-parallel"),
          _tensor_parallel),
    Entry("trainer.slime.max_tokens_per_gpu", ("--use-dynamic-batch-size", "--max-tokens-per-gpu"),
          lambda cfg, _: ["--use-dynamic-batch-size", "--max-tokens-per-gpu",
                          str(cfg.trainer.slime.max_tokens_per_gpu)]),
    _value("trainer.slime.sglang_mem_fraction_static", "--sglang-mem-fraction-static"),
    Entry("trainer.slime.ref_load", ("--ref-load",), lambda cfg, p: ["--ref-load", p.ref_load],
          note="null: the student's HF directory (slime loads HF weights into Megatron itself)"),
    Entry("trainer.slime.dry_run", note="the suite's choice: write the plan only, or run it"),
    Entry("trainer.slime.slime_dir", note="where the plan finds train.py and tools/ (the paths of its commands)"),
    Entry("trainer.slime.megatron_dir", note="the Ray job's PYTHONPATH (--runtime-env-json), as slime's examples"),
    Entry("trainer.slime.python", note="the interpreter of train.py, slime's converters and the teacher's server"),
    Entry("trainer.slime.teacher_gpu", note="CUDA_VISIBLE_DEVICES of the teacher's server when the plan starts it"),
    Entry("trainer.slime.ray_address", note="`ray job submit --address`"),
    Entry("trainer.slime.start_ray", note="`ray start --head` in the plan"),
)

RUN: tuple[Entry, ...] = (
    Entry("student.path", ("--hf-checkpoint",), lambda cfg, p: ["--hf-checkpoint", p.hf_checkpoint]),
    Entry("runs_dir", ("--load", "--save"), lambda cfg, p: ["--load", p.save, "--save", p.save],
          note="slime's iterations go to <run dir>/slime/torch_dist; a rerun resumes from the last one"),
    Entry("task.name", ("--prompt-data",), lambda cfg, p: ["--prompt-data", p.prompt_data],
          note="the task's train split (eval rows excluded), written by the plan as prompt/label JSONL"),
    Entry("student.enable_thinking", ("--apply-chat-template", "--apply-chat-template-kwargs"),
          lambda cfg, _: ["--apply-chat-template", "--apply-chat-template-kwargs",
                          json.dumps({"enable_thinking": cfg.student.enable_thinking})]),
    Entry("seed", ("--seed", "--rollout-seed"),
          lambda cfg, _: ["--seed", str(cfg.seed), "--rollout-seed", str(cfg.seed)]),
    Entry("teacher.path", ("--custom-rm-path", "--rm-url"),
          lambda cfg, p: ["--custom-rm-path", SLIME_TEACHER_CALL, "--rm-url", p.rm_url],
          note="the teacher's SGLang server (the plan starts it from the teacher's config, or serve.url)"),
    _value("opd_kl_coef", "--opd-kl-coef"),
    Entry("reward_scale", note="reaches the reward hook as OPD_SUITE_REWARD_SCALE (slime has no such flag)"),
)

RECIPE: tuple[Entry, ...] = (
    Entry("recipe.prompt_keys", ("--input-key", "--label-key"),
          lambda cfg, _: ["--input-key", "prompt", "--label-key", "label"], note="the keys the plan's prompt data has"),
    Entry("recipe.shuffle", ("--rollout-shuffle",), lambda cfg, _: ["--rollout-shuffle"],
          note="the local trainer draws prompts at random (seeded); slime's default walks the file in order"),
    Entry("recipe.optimizer", ("--optimizer", "--lr-decay-style", "--adam-beta1", "--adam-beta2"),
          lambda cfg, _: ["--optimizer", "adam", "--lr-decay-style", "constant", "--adam-beta1", "0.9",
                          "--adam-beta2", "0.98"],
          note="the local trainer's optimizer: AdamW (0.9, 0.98) at a constant lr; Megatron decays it by default"),
    Entry("recipe.no_dropout", ("--attention-dropout", "--hidden-dropout"),
          lambda cfg, _: ["--attention-dropout", "0.0", "--hidden-dropout", "0.0"],
          note="Megatron's default dropout is 0.1; Qwen3's HF config has none"),
    Entry("recipe.numerics", ("--accumulate-allreduce-grads-in-fp32", "--attention-softmax-in-fp32",
                              "--attention-backend"),
          lambda cfg, _: ["--accumulate-allreduce-grads-in-fp32", "--attention-softmax-in-fp32",
                          "--attention-backend", "flash"], note="as in slime's Qwen3 examples"),
)

TABLE: tuple[Entry, ...] = SLIME + RUN + TRAINER + RECIPE  # the order train.py's arguments come in


def train_args(cfg: SuiteConfig, paths: Paths) -> list[str]:
    """``train.py``'s arguments for ``cfg``: every entry of the table, in order."""
    slime = cfg.trainer.slime
    if slime.rollout_num_gpus % slime.rollout_num_gpus_per_engine:
        raise ConfigError(f"bad config value trainer.slime.rollout_num_gpus={slime.rollout_num_gpus}: must be a "
                          f"multiple of trainer.slime.rollout_num_gpus_per_engine={slime.rollout_num_gpus_per_engine}")
    return [arg for entry in TABLE for arg in entry.args(cfg, paths)]


def hook_environment(cfg: SuiteConfig) -> dict[str, str]:
    """What the reward hook reads from the Ray job's environment (``trainer.advantage_mode``, ``reward_scale``)."""
    from suite.slime.reward_hook import ADVANTAGE_MODE_ENV, REWARD_SCALE_ENV

    return {ADVANTAGE_MODE_ENV: cfg.trainer.advantage_mode, REWARD_SCALE_ENV: f"{cfg.reward_scale:g}"}


def model_args_script(cfg: SuiteConfig) -> str:
    """slime's MODEL_ARGS script for the student, relative to slime's checkout (or as configured)."""
    if cfg.trainer.slime.model_args_script:
        return cfg.trainer.slime.model_args_script
    script = MODEL_SCRIPTS.get(Path(cfg.student.path).name)
    if script is None:
        raise ConfigError(f"bad config value trainer.slime.model_args_script=None: slime needs the student's "
                          f"architecture flags and {cfg.student.path!r} is not one of {', '.join(MODEL_SCRIPTS)}; "
                          "set trainer.slime.model_args_script to a scripts/models/*.sh that defines MODEL_ARGS")
    return script


def trainer_record(trainer: TrainerConfig) -> dict:
    """The trainer settings a run row records: the local trainer's as before; slime's placement flattened
    to ``slime.<key>`` (rows stay flat and hashable), without ``dry_run`` (it does not change a run)."""
    record = dataclasses.asdict(trainer)
    slime = record.pop("slime")
    if trainer.name == "slime":
        record.update({f"slime.{k}": v for k, v in slime.items() if k != "dry_run"})
    return record
