"""TRL benchmark (not a test): the suite's OPD step against TRL's ``DistillationTrainer``, alternating.

    pip install -e .[bench]                                   # trl==1.16.0
    python -m suite.bench trl                                 # the embedded default, CPU, one thread
    python -m suite.bench trl --steps 32 trainer.rollout_engine=generate

**The same job on both sides.** The composed sweep config (the embedded default unless overridden)
sets both: the toy student and teacher checkpoints, the task's train prompts, ``rollout_batch_size``
prompts x ``n_samples_per_prompt`` samples (128 sequences), ``rollout_max_response_len`` new tokens
(48), sampling at ``rollout_temperature`` (1) from the true policy, AdamW (lr, betas (0.9, 0.98),
weight decay, grad-norm clip) with one optimizer step per rollout, float32 on one thread. TRL is given
the suite's prompts in the suite's order (the suite's prompt RNG is copied after ``setup()`` and
drawn ahead, each prompt repeated ``n_samples_per_prompt`` times, ``shuffle_dataset=False``), and
the run checks every step that both sides saw the same prompt tokens.

**What each side computes per step** (also written into the JSON):

* suite (:class:`suite.training.trainer.OPDTrainer`, ``trainer.opd_estimator=full``): rollout with
  ``trainer.rollout_engine``; the teacher's hidden states at the response positions; the +1/-1 math
  reward and ``A_grpo``; loss = PPO-clipped policy loss on ``reward_scale * A_grpo`` +
  ``opd_kl_coef`` x mean over response tokens of the full-vocabulary reverse KL
  ``KL(p_student || p_teacher)``; backward; one AdamW step. Its GRPO + KL objective, unchanged.
* TRL (``DistillationTrainer``, ``beta=1``): ``generate`` (its ``top_k=0, top_p=1`` defaults; the
  run records the logits processors ``generate`` actually built, which must be none); student and
  teacher forwards over prompt + completion; loss = mean over completion tokens of the same
  full-vocabulary reverse KL (generalized JSD at beta=1), through its chunked divergence; backward;
  one AdamW step. TRL 1.16's trainer is always on-policy (there is no ``lmbda``), has no reward,
  and on CPU projects logits at every completion position, padding included (its compact path is
  for Triton devices only): that is its design, timed as it is.

**Timing.** One process, one thread (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``,
``TOKENIZERS_PARALLELISM=false``). TRL runs its own ``train()`` loop; a callback runs the suite's
``train_step`` between TRL's steps, so the steps alternate: suite 1, TRL 1, suite 2, TRL 2, ... A
suite step is the wall time of ``train_step``; a TRL step is the wall time from the end of the
previous suite step to TRL's ``on_step_end`` (its data loading, logging, generation, loss, backward,
clip and optimizer step; ``core`` leaves out its loop's data loading and logging). The first
``--warmup`` steps of each side are excluded. Phases: the suite's own (rollout, teacher, update);
TRL's own ``profiling_context`` reports only to wandb/mlflow/trackio, so a subclass that adds
``perf_counter`` around ``super()`` times its ``_generate_and_score_completions`` (rollout) and its
teacher ``_get_last_hidden_state`` (teacher); update is the rest of its step. Reported: each side's
median with its distribution-free 95% interval, quartiles and IQR, the ratio TRL/suite of the
medians (95% bootstrap interval over the paired steps) and the median of the per-pair ratios.

**Same work, checked.** Per step: the same prompts (token for token), the same number of sequences,
and each side's generated tokens (a random quantity: both sample, from policies that drift apart as
they train differently; the report also gives seconds per 1,000 generated tokens). The first-step
reverse KL: the suite's ``kl_exact`` of its step 1 is computed on its sampled batch before its
optimizer step; the same batch (prompt, response and response mask as the suite laid them out) is
fed to TRL's own ``compute_loss`` with TRL's student at its initial weights (the same checkpoint),
so both losses see identical samples and identical weights and must agree to float rounding
(relative difference below ``KL_REL_TOL``). Comparing independently sampled batches from one RNG
state is exact only with ``trainer.rollout_engine=generate``: both sides then call ``generate`` and
are reseeded identically before step 1, and the run also reports whether the step-1 samples are
identical and TRL's KL on its own step-1 samples. The default ``static`` engine samples by inverse
CDF with one uniform per sequence (``suite.training.fast_decode``), ``generate`` by
``torch.multinomial``: the same RNG state gives different samples by design, so there the fed-batch
comparison is the check.

Results go to ``results/bench/trl.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from suite.paths import RESULTS_DIR

TRL_VERSION = "1.16.0"  # the version measured; pyproject's `bench` extra pins it
INSTALL_HINT = "pip install -e .[bench]"
KL_REL_TOL = 1e-4  # float32 rounding of two chunked reverse-KL implementations over ~5k tokens


# ------------------------------------------------------------------------------------------- statistics
def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free interval for the median: order statistics ``(x_(k), x_(n+1-k))`` (1-based).

    ``k`` is the largest index with ``P(Binomial(n, 1/2) <= k - 1) <= (1 - level) / 2``; the interval
    covers the median with probability ``1 - 2 P(Binomial(n, 1/2) <= k - 1)`` (returned third), at
    least ``level``. Below 6 values no such ``k`` exists at 95%: the range is returned with its
    (lower) coverage ``1 - 2^(1-n)``.
    """
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("median_interval needs at least one value")
    alpha, cdf, k = (1 - level) / 2, 0.0, 0
    for j in range(n):  # cdf = P(B <= j)
        cdf += math.comb(n, j) / 2**n
        if cdf > alpha:
            break
        k = j + 1
    if k == 0:
        return xs[0], xs[-1], 1 - 2 / 2**n
    tail = sum(math.comb(n, j) for j in range(k)) / 2**n
    return xs[k - 1], xs[n - k], 1 - 2 * tail


def step_summary(seconds: list[float]) -> dict:
    """n, median with its 95% interval, quartiles (inclusive method), IQR, min and max of step times."""
    n = len(seconds)
    if n == 0:
        raise ValueError("step_summary needs at least one step")
    q1, q2, q3 = statistics.quantiles(seconds, n=4, method="inclusive") if n > 1 else (seconds[0],) * 3
    lo, hi, coverage = median_interval(seconds)
    return {"n": n, "median": q2, "median_ci95": [lo, hi], "median_ci_coverage": coverage, "q1": q1, "q3": q3,
            "iqr": q3 - q1, "min": min(seconds), "max": max(seconds)}


def ratio_summary(trl_s: list[float], suite_s: list[float], iters: int = 10_000, seed: int = 0) -> dict:
    """TRL/suite: the ratio of the medians with a 95% percentile-bootstrap interval (steps resampled as
    pairs, so load that hit both sides of a pair stays paired), and the median of per-pair ratios with
    its distribution-free interval."""
    import numpy as np

    if len(trl_s) != len(suite_s) or not trl_s:
        raise ValueError(f"paired step times need equal, non-zero lengths (got {len(trl_s)} and {len(suite_s)})")
    t, s = np.asarray(trl_s, dtype=float), np.asarray(suite_s, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(t), size=(iters, len(t)))
    boot = np.median(t[idx], axis=1) / np.median(s[idx], axis=1)
    pairs = [a / b for a, b in zip(trl_s, suite_s)]
    lo, hi, coverage = median_interval(pairs)
    return {"n_pairs": len(pairs), "ratio_of_medians": statistics.median(trl_s) / statistics.median(suite_s),
            "ratio_of_medians_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "bootstrap": {"iters": iters, "seed": seed},
            "median_paired_ratio": statistics.median(pairs), "median_paired_ratio_ci95": [lo, hi],
            "median_paired_ratio_ci_coverage": coverage}


# ------------------------------------------------------------------------------------------------- TRL
def import_trl():
    """``(DistillationConfig, DistillationTrainer, version)``, or exit with the one fix when trl is missing."""
    try:
        import trl
        from trl import DistillationConfig, DistillationTrainer
    except ImportError as err:
        raise SystemExit(f"python -m suite.bench trl compares against TRL's DistillationTrainer (trl=={TRL_VERSION}), "
                         f"which cannot be imported here ({err}). Fix: {INSTALL_HINT}") from None
    if trl.__version__ != TRL_VERSION:
        print(f"note: trl {trl.__version__} is installed; this benchmark was written against {TRL_VERSION} "
              f"(`{INSTALL_HINT}` installs it)", file=sys.stderr)
    return DistillationConfig, DistillationTrainer, trl.__version__


def check_comparable(cfg) -> None:
    """Refuse settings under which the two sides would not do the same job (the message names the key)."""
    from suite.config import ConfigError

    t = cfg.trainer
    sequences = t.rollout_batch_size * t.n_samples_per_prompt
    problems = [
        (t.opd_estimator != "full", f"trainer.opd_estimator={t.opd_estimator!r}: TRL's loss is the full-vocabulary "
                                    "reverse KL; use trainer.opd_estimator=full"),
        (t.teacher_backend != "hf", f"trainer.teacher_backend={t.teacher_backend!r}: TRL runs its teacher in-process; "
                                    "use trainer.teacher_backend=hf"),
        (t.distributed != "none", f"trainer.distributed={t.distributed!r}: the comparison runs in one process; "
                                  "use trainer.distributed=none"),
        (t.global_batch_size != sequences, f"trainer.global_batch_size={t.global_batch_size}: TRL steps its optimizer "
                                           f"once per rollout; set it to the rollout's {sequences} sequences"),
        (sequences % (t.micro_batch_size or sequences) != 0, f"trainer.micro_batch_size={t.micro_batch_size}: must "
                                                             f"divide the {sequences} sequences"),
    ]
    for bad, message in problems:
        if bad:
            raise ConfigError(f"bad config value {message} (python -m suite.bench trl)")


def trl_config(DistillationConfig, cfg, out_dir: Path, total_steps: int):
    """TRL's settings for the suite's job: the same batch, lengths, sampling, optimizer and precision."""
    t = cfg.trainer
    sequences = t.rollout_batch_size * t.n_samples_per_prompt
    per_device = t.micro_batch_size or sequences
    return DistillationConfig(
        output_dir=str(out_dir), max_steps=total_steps, seed=cfg.seed,
        per_device_train_batch_size=per_device, gradient_accumulation_steps=sequences // per_device,
        max_completion_length=t.rollout_max_response_len, temperature=t.rollout_temperature, top_k=0, top_p=1.0,
        beta=1.0, learning_rate=t.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=t.weight_decay,
        adam_beta1=0.9, adam_beta2=0.98, max_grad_norm=t.max_grad_norm, optim="adamw_torch",
        activation_checkpointing=t.activation_checkpointing, bf16=cfg.student.dtype == "bfloat16", fp16=False,
        use_cpu=t.device == "cpu",
        chat_template_kwargs={"enable_thinking": cfg.student.enable_thinking}, shuffle_dataset=False,
        dataloader_num_workers=0, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
    )


def timed_trainer_class(DistillationTrainer):
    """TRL's trainer with ``perf_counter`` around three of its methods (``super()`` does all the work)."""

    class TimedDistillationTrainer(DistillationTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.bench_phases, self.bench_rollouts, self.bench_losses = {}, [], []

        def _generate_and_score_completions(self, inputs):
            start = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            self.bench_phases["rollout"] = self.bench_phases.get("rollout", 0.0) + time.perf_counter() - start
            self.bench_rollouts.append(out)  # read after the step's clock stops
            return out

        def _get_last_hidden_state(self, unwrapped_model, *args, **kwargs):
            start = time.perf_counter()
            out = super()._get_last_hidden_state(unwrapped_model, *args, **kwargs)
            if unwrapped_model is self.accelerator.unwrap_model(self.teacher_model):
                self.bench_phases["teacher"] = self.bench_phases.get("teacher", 0.0) + time.perf_counter() - start
            return out

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self.bench_losses.append(float((out[0] if return_outputs else out).detach()))
            return out

    return TimedDistillationTrainer


def _token_lists(ids_B_L: torch.Tensor, mask_B_L: torch.Tensor) -> list[list[int]]:
    return [row[m.bool()].tolist() for row, m in zip(ids_B_L.cpu(), mask_B_L.cpu())]


def trl_kl_on_batch(trl_trainer, batch) -> float:
    """TRL's own loss (mean full-vocabulary reverse KL at beta=1) on a suite ``RolloutBatch``, no gradient."""
    P = batch.prompt_width
    dev = trl_trainer.accelerator.device
    mask_B_T = batch.response_mask_B_T.long()
    inputs = {"prompt_ids": batch.input_ids_B_L[:, :P], "prompt_mask": batch.attention_mask_B_L[:, :P],
              "completion_ids": batch.input_ids_B_L[:, P:], "completion_mask": mask_B_T,
              "num_items_in_batch": mask_B_T.sum()}
    with torch.no_grad():
        loss = trl_trainer.compute_loss(trl_trainer.model, {k: v.to(dev) for k, v in inputs.items()})
    trl_trainer.bench_losses.pop()  # a check, not a training step
    return float(loss)


def record_logits_processors(model) -> dict:
    """Wrap ``model``'s (transformers-private) ``_get_logits_processor`` to record what ``generate`` built."""
    seen: dict = {}
    original = getattr(model, "_get_logits_processor", None)
    if original is None:
        return {"processors": "unknown: transformers has no _get_logits_processor"}

    def recording(*args, **kwargs):
        processors = original(*args, **kwargs)
        seen.setdefault("processors", [type(p).__name__ for p in processors])
        config = kwargs.get("generation_config")
        if config is not None:
            seen.setdefault("generation_config", {k: getattr(config, k, None) for k in
                                                  ("do_sample", "temperature", "top_k", "top_p", "min_p",
                                                   "typical_p", "repetition_penalty")})
        return processors

    model._get_logits_processor = recording
    return seen


# ------------------------------------------------------------------------------------------- the run
def prompt_plan(rng: random.Random, rows: list[dict], per_step: int, steps: int) -> list[list[dict]]:
    """The prompts the suite's trainer draws at each of its next ``steps`` rollouts, from a copy of its RNG
    (it draws ``rng.sample(rows, per_step)`` once per rollout; the run checks the prompts step by step)."""
    ahead = random.Random()
    ahead.setstate(rng.getstate())
    return [ahead.sample(rows, per_step) for _ in range(steps)]


class Alternation:
    """Runs the suite's steps between TRL's (from TRL's callbacks) and keeps both sides' per-step records."""

    def __init__(self, suite, trl_trainer, seed: int, total: int):
        self.suite, self.trl, self.seed, self.total = suite, trl_trainer, seed, total
        self.suite_rows: list[dict] = []
        self.trl_rows: list[dict] = []
        self.suite_rollouts: dict[int, dict] = {}
        self.resume = self.core_start = time.perf_counter()

    def suite_step(self, step: int) -> None:
        start = time.perf_counter()
        metrics = self.suite.train_step(step)
        seconds = time.perf_counter() - start
        batch = self.suite.last_batch
        P = batch.prompt_width
        self.suite_rollouts[step] = {
            "prompts": _token_lists(batch.input_ids_B_L[:, :P], batch.attention_mask_B_L[:, :P]),
            "responses": _token_lists(batch.response_ids_B_T, batch.response_mask_B_T)}
        rollout, teacher = metrics["rollout_seconds"], metrics["teacher_seconds"]
        self.suite_rows.append({"step": step, "seconds": seconds, "rollout": rollout, "teacher": teacher,
                                "update": seconds - rollout - teacher, "sequences": int(batch.input_ids_B_L.shape[0]),
                                "gen_tokens": int(batch.response_mask_B_T.sum()), "kl": metrics.get("kl_exact"),
                                "reward": metrics["reward"]})

    def trl_step_begin(self, step: int) -> None:
        if step == 1:
            torch.manual_seed(self.seed)  # the RNG state the suite's step 1 started from
        self.trl.bench_phases, self.trl.bench_rollouts, self.trl.bench_losses = {}, [], []
        self.core_start = time.perf_counter()

    def trl_step_end(self, step: int) -> None:
        now = time.perf_counter()
        seconds, phases = now - self.resume, self.trl.bench_phases
        rollouts = self.trl.bench_rollouts
        prompts = [p for r in rollouts for p in _token_lists(r["prompt_ids"], r["prompt_mask"])]
        responses = [x for r in rollouts for x in _token_lists(r["completion_ids"], r["completion_mask"])]
        mine = self.suite_rollouts.pop(step)
        rollout, teacher = phases.get("rollout", 0.0), phases.get("teacher", 0.0)
        self.trl_rows.append({"step": step, "seconds": seconds, "core_seconds": now - self.core_start,
                              "rollout": rollout, "teacher": teacher, "update": seconds - rollout - teacher,
                              "sequences": len(responses), "gen_tokens": sum(map(len, responses)),
                              "kl": sum(self.trl.bench_losses), "same_prompts": prompts == mine["prompts"],
                              "same_samples": responses == mine["responses"]})
        if step < self.total:
            self.suite_step(step + 1)
        self.resume = time.perf_counter()

    def callback(self):
        from transformers import TrainerCallback

        alternation = self

        class Alternate(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                alternation.trl_step_begin(state.global_step + 1)

            def on_step_end(self, args, state, control, **kwargs):
                alternation.trl_step_end(state.global_step)

        return Alternate()


def build_trl_trainer(cfg, plan: list[list[dict]], out_dir: Path):
    """TRL's trainer on the suite's checkpoints (loaded as the suite loads them) and the suite's prompt plan."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from suite.training.policy import dtype_of, load_causal_lm

    DistillationConfig, DistillationTrainer, _ = import_trl()
    s, te = cfg.student, cfg.teacher
    student = load_causal_lm(s.path, dtype_of(s.dtype), "cpu", s.random_init, cfg.seed)
    teacher = load_causal_lm(te.path, dtype_of(te.dtype), "cpu", te.random_init, cfg.seed)
    tok = AutoTokenizer.from_pretrained(s.tokenizer or s.path, padding_side="left")
    samples = cfg.trainer.n_samples_per_prompt
    rows = [{"prompt": r["prompt"]} for prompts in plan for r in prompts for _ in range(samples)]
    trainer = timed_trainer_class(DistillationTrainer)(
        model=student, teacher_model=teacher, args=trl_config(DistillationConfig, cfg, out_dir, len(plan)),
        train_dataset=Dataset.from_list(rows), processing_class=tok)
    for quiet in (PrinterCallback, ProgressCallback):  # no per-step printing (the suite prints nothing either)
        trainer.remove_callback(quiet)
    return trainer


def run(overrides: list[str], steps: int, warmup: int) -> dict:
    """Set up both sides, check the first-step KL on one batch, then alternate ``warmup + steps`` steps."""
    from suite.config import compose_config
    from suite.training.trainer import OPDTrainer

    cfg = compose_config("sweep", overrides)
    check_comparable(cfg)
    total = warmup + steps
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        suite = OPDTrainer(cfg, Path(tmp) / "suite", log=lambda *_: None)
        suite.setup()
        plan = prompt_plan(suite.rng, suite.rows, cfg.trainer.rollout_batch_size, total)
        trl_trainer = build_trl_trainer(cfg, plan, Path(tmp) / "trl")
        sampling = record_logits_processors(trl_trainer.model)
        alternation = Alternation(suite, trl_trainer, cfg.seed, total)
        trl_trainer.add_callback(alternation.callback())
        torch.manual_seed(cfg.seed)  # both sides' step 1 starts from this RNG state (TRL's: see trl_step_begin)
        alternation.suite_step(1)
        first = alternation.suite_rows[0]
        fed = {"suite_kl_exact": first["kl"], "trl_loss_on_suite_batch": trl_kl_on_batch(trl_trainer, suite.last_batch)}
        alternation.resume = time.perf_counter()
        trl_trainer.train()
        stops = {"suite": [suite.tok.eos_token_id], "trl": list(trl_trainer.eos_token_ids)}
    report = build_report(cfg, alternation, warmup, fed, sampling, stops)
    report.update(overrides=overrides, steps=steps, warmup=warmup,
                  load_average={"before": list(load_before), "after": list(os.getloadavg())})
    return report


# ------------------------------------------------------------------------------------------- the report
def computes(cfg) -> dict:
    """What each side's step computes, in words (written into the report and printed under the table)."""
    t = cfg.trainer
    sequences = t.rollout_batch_size * t.n_samples_per_prompt
    job = (f"{t.rollout_batch_size} prompts x {t.n_samples_per_prompt} samples = {sequences} sequences, <= "
           f"{t.rollout_max_response_len} new tokens, T={t.rollout_temperature} true policy")
    return {
        "suite": f"OPDTrainer.train_step: {job} ({t.rollout_engine} engine); teacher hidden states at the response "
                 f"positions; +1/-1 reward and A_grpo ({t.advantage_mode}); loss = PPO-clipped policy loss on "
                 f"{cfg.reward_scale} x A_grpo + {cfg.opd_kl_coef} x mean_t KL(p_student || p_teacher) over the full "
                 f"vocabulary (opd_estimator=full); backward; one AdamW step",
        "trl": f"DistillationTrainer (beta=1, always on-policy): {job} (transformers generate); student and teacher "
               f"forwards over prompt + completion; loss = mean_t KL(p_student || p_teacher) over the full "
               f"vocabulary (no reward term); backward; one AdamW step",
    }


def side_summary(rows: list[dict]) -> dict:
    seconds = [r["seconds"] for r in rows]
    per_1k = [1000 * r["seconds"] / max(r["gen_tokens"], 1) for r in rows]
    out = {"step_seconds": step_summary(seconds),
           "phase_median_seconds": {k: statistics.median(r[k] for r in rows) for k in ("rollout", "teacher", "update")},
           "seconds_per_1k_generated_tokens": step_summary(per_1k),
           "sequences_per_step": sorted({r["sequences"] for r in rows}),
           "generated_tokens_per_step_mean": statistics.mean(r["gen_tokens"] for r in rows)}
    if "core_seconds" in rows[0]:
        out["core_step_seconds"] = step_summary([r["core_seconds"] for r in rows])
    return out


def same_work(cfg, alternation: Alternation, fed: dict, sampling: dict, stops: dict) -> dict:
    suite_rows, trl_rows = alternation.suite_rows, alternation.trl_rows
    diff = abs(fed["suite_kl_exact"] - fed["trl_loss_on_suite_batch"])
    fed.update(abs_diff=diff, rel_diff=diff / max(abs(fed["suite_kl_exact"]), 1e-12), tolerance=KL_REL_TOL,
               how="suite kl_exact of its step-1 batch (before its optimizer step) vs TRL's compute_loss on that "
                   "same batch at TRL's initial weights (the same checkpoint)")
    fed["equal"] = fed["rel_diff"] <= KL_REL_TOL
    engine = cfg.trainer.rollout_engine
    rng = {"rollout_engine": engine, "identical_samples": trl_rows[0]["same_samples"],
           "suite_kl_exact": suite_rows[0]["kl"], "trl_kl_own_samples": trl_rows[0]["kl"]}
    if engine != "generate":
        rng["note"] = ("not comparable by design: the static engine samples by inverse CDF with one uniform per "
                       "sequence, generate by torch.multinomial; the same RNG state gives different samples "
                       "(use trainer.rollout_engine=generate for this check); the fed-batch KL is the check")
    filters = [p for p in sampling.get("processors", ["unknown"]) if p != "TemperatureLogitsWarper"]
    checks = {
        "sequences_equal_every_step": all(s["sequences"] == t["sequences"] for s, t in zip(suite_rows, trl_rows)),
        "prompts_equal_every_step": all(t["same_prompts"] for t in trl_rows),
        "first_step_kl_equal": fed["equal"],
        "trl_samples_true_policy": not filters,
        "stop_tokens_equal": stops["suite"] == stops["trl"],
    }
    if engine == "generate":
        checks["identical_step1_samples"] = rng["identical_samples"]
    return {"ok": all(checks.values()), "checks": checks, "first_step_kl_fed_batch": fed, "same_rng_step1": rng,
            "trl_generate": sampling, "stop_tokens": stops,
            "generated_tokens_per_step": {"suite": [r["gen_tokens"] for r in suite_rows],
                                          "trl": [r["gen_tokens"] for r in trl_rows]}}


def machine_info() -> dict:
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM"), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "trl": import_trl()[2]}


def build_report(cfg, alternation: Alternation, warmup: int, fed: dict, sampling: dict, stops: dict) -> dict:
    suite_rows = [r for r in alternation.suite_rows if r["step"] > warmup]
    trl_rows = [r for r in alternation.trl_rows if r["step"] > warmup]
    t = cfg.trainer
    return {
        "benchmark": "trl",
        "job": {"student": cfg.student.name, "teacher": cfg.teacher.name, "task": cfg.task.name, "seed": cfg.seed,
                "prompts_per_step": t.rollout_batch_size, "samples_per_prompt": t.n_samples_per_prompt,
                "sequences": t.rollout_batch_size * t.n_samples_per_prompt, "max_new_tokens": t.rollout_max_response_len,
                "temperature": t.rollout_temperature, "rollout_engine": t.rollout_engine, "lr": t.lr,
                "student_dtype": cfg.student.dtype, "device": t.device},
        "computes": computes(cfg),
        "suite": side_summary(suite_rows),
        "trl": side_summary(trl_rows),
        "ratio_trl_over_suite": ratio_summary([r["seconds"] for r in trl_rows], [r["seconds"] for r in suite_rows]),
        "same_work": same_work(cfg, alternation, fed, sampling, stops),
        "per_step": {"suite": alternation.suite_rows, "trl": alternation.trl_rows},
        "machine": machine_info(),
    }


def table(report: dict) -> str:
    def ci(s: dict) -> str:
        return f"{s['median']:.2f} [{s['median_ci95'][0]:.2f}, {s['median_ci95'][1]:.2f}]"

    lines = ["| side | step s, median [95% CI] | IQR | rollout | teacher | update | tokens/step | s per 1k tokens |",
             "|---|---|---|---|---|---|---|---|"]
    for name, key in (("suite", "suite"), ("TRL", "trl")):
        side = report[key]
        ph = side["phase_median_seconds"]
        lines.append(f"| {name} | {ci(side['step_seconds'])} | {side['step_seconds']['iqr']:.2f} | {ph['rollout']:.2f} | "
                     f"{ph['teacher']:.2f} | {ph['update']:.2f} | {side['generated_tokens_per_step_mean']:,.0f} | "
                     f"{side['seconds_per_1k_generated_tokens']['median']:.3f} |")
    r, w = report["ratio_trl_over_suite"], report["same_work"]
    fed = w["first_step_kl_fed_batch"]
    lines += [
        "",
        f"TRL/suite, ratio of medians: {r['ratio_of_medians']:.2f} [{r['ratio_of_medians_ci95'][0]:.2f}, "
        f"{r['ratio_of_medians_ci95'][1]:.2f}] (n={r['n_pairs']} pairs); median of paired ratios "
        f"{r['median_paired_ratio']:.2f} [{r['median_paired_ratio_ci95'][0]:.2f}, {r['median_paired_ratio_ci95'][1]:.2f}]",
        f"same work: {'ok' if w['ok'] else 'FAILED'} {w['checks']}",
        f"first-step reverse KL on the suite's batch: suite {fed['suite_kl_exact']:.6f}, TRL "
        f"{fed['trl_loss_on_suite_batch']:.6f} (relative difference {fed['rel_diff']:.1e})",
        f"TRL's generate built logits processors: {w['trl_generate'].get('processors')}",
        f"suite computes: {report['computes']['suite']}",
        f"TRL computes: {report['computes']['trl']}",
        f"phases: median seconds; update = the rest of the step. Machine: {report['machine']['cpu']}, "
        f"{report['machine']['torch_threads']} thread; load average before/after "
        f"{report['load_average']['before'][0]:.2f}/{report['load_average']['after'][0]:.2f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.bench trl", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each side")
    parser.add_argument("--warmup", type=int, default=2, help="first steps of each side left out of the statistics")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one process runs both sides)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the sweep config (both sides follow them)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"--steps {args.steps} --warmup {args.warmup}: at least one timed step, no negative warm-up")
    import_trl()  # the fix, before minutes of loading
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the tokenizer's batch encode must not add threads either
    torch.set_num_threads(args.threads)
    report = run(list(args.overrides), args.steps, args.warmup)
    report["command"] = " ".join(["python -m suite.bench trl", *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "trl.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nwritten: {path}")
    if not report["same_work"]["ok"]:
        sys.exit(f"the two sides did not do the same work: {report['same_work']['checks']} (see {path})")
