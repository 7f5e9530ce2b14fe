"""The local OPD trainer (CPU, one GPU, or several GPUs of one host): student samples, teacher scores, student learns.

One rollout step, following slime's order:

1. draw ``rollout_batch_size`` prompts from the task's train split (a seeded RNG; under FSDP every
   rank draws the same prompts and takes its slice of whole groups);
2. sample ``n_samples_per_prompt`` responses each from the student at ``rollout_temperature``,
   from the true policy (no top-k/top-p), through the rollout engine (:mod:`suite.training.engine`);
3. score the response tokens under the teacher (:class:`suite.training.teacher.TeacherBackend`),
   asking only for what the estimator needs;
4. reward each response with :mod:`suite.scoring` (+1 correct, -1 otherwise);
5. ``A_grpo`` from the rewards of each prompt's group (``trainer.advantage_mode``), then the OPD
   objective (:func:`suite.training.opd_math.opd_loss`): ``sampled`` puts
   ``- opd_kl_coef * (logp_s - logp_t)`` into each token's advantage (slime/tinker); ``full`` and
   ``topk`` add ``opd_kl_coef`` times the per-position reverse KL as a differentiable loss;
6. one optimizer step per ``global_batch_size`` sequences, accumulated over micro-batches of
   ``micro_batch_size`` sequences. Log-probs and KL come from hidden states through the chunked LM
   head (:mod:`suite.training.lm_head`): no (sequences x tokens x vocabulary) tensor is ever built.

Precision: the student's master weights and AdamW state are float32; ``student.dtype=bfloat16``
computes forward/backward in bf16: on one device the module's parameters are bf16 and
:class:`~suite.training.precision.MasterWeights` keeps float32 masters and gradients (the rollout
engine samples from the bf16 parameters themselves); under FSDP, ``MixedPrecisionPolicy`` does the
same with sharded masters and the engine samples from a gathered bf16 copy.

Checkpoints (HF format + ``trainer_state.pt``) every ``save_interval`` rollouts and at the end;
a run directory that already has checkpoints resumes from the last one and reproduces the run.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import torch

from suite.config import SuiteConfig
from suite.results import append_row, read_rows, write_jsonl_atomic
from suite.scoring import score
from suite.training import fast_decode, opd_math
from suite.training.distributed import DistContext, full_state_dict, full_tensor, shard
from suite.training.engine import make_engine
from suite.training.fit import trainable_rows
from suite.training.policy import PolicyHead, Precision, dtype_of, load_causal_lm, rows, sequence_logprobs
from suite.training.precision import MasterWeights
from suite.training.rollout import RolloutBatch, decode_responses
from suite.training.teacher import HFTeacher, SGLangTeacher, TeacherBackend, TeacherScores

STATE_FILE = "trainer_state.pt"
METRICS_FILE = "metrics.jsonl"
SUM_METRICS = ("pg_loss", "kl_loss", "clip_frac", "kl_sampled", "kl_exact")


def list_checkpoints(run_dir: Path | str) -> list[Path]:
    """Complete checkpoints of a run, oldest first (a checkpoint is complete once its state file exists)."""
    root = Path(run_dir) / "checkpoints"
    done = [p for p in root.glob("step_*") if (p / STATE_FILE).exists()] if root.exists() else []
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def make_teacher(cfg: SuiteConfig, url: str | None = None, device: str | None = None) -> TeacherBackend:
    """The configured teacher backend; ``sglang`` talks to ``url`` (or ``serve.url``)."""
    if cfg.trainer.teacher_backend == "hf":
        t = cfg.teacher
        micro = cfg.trainer.micro_batch_size or cfg.trainer.global_batch_size
        return HFTeacher(t.path, t.dtype, t.device or device or cfg.trainer.device, micro, cfg.trainer.lm_head_chunk,
                         t.random_init)
    s = cfg.serve
    target = url or s.url or f"http://{s.host}:{s.port}"
    return SGLangTeacher(target, s.concurrency, s.request_timeout_s, s.retries, s.backoff_s)


class OPDTrainer:
    """State of one OPD run: student, optimizer, RNGs, teacher, rollout engine. ``train()`` runs it to the end."""

    def __init__(self, cfg: SuiteConfig, run_dir: Path, teacher: TeacherBackend | None = None, log=print,
                 dist: DistContext | None = None):
        self.cfg, self.t, self.run_dir, self.log = cfg, cfg.trainer, Path(run_dir), log
        self.teacher, self.tb, self.dist = teacher, None, dist  # a caller that already holds the teacher passes it in

    # ----------------------------------------------------------------------------------------- setup
    def setup(self) -> int:
        """Load everything; returns the number of rollout steps already done (0, or a resume point)."""
        from transformers import AutoTokenizer

        self.dist = self.dist or DistContext.start(self.t.distributed, self.t.device)
        dev, student = self.dist.device, self.cfg.student
        ckpts = list_checkpoints(self.run_dir)
        source = ckpts[-1] if ckpts else Path(student.path)
        self.precision = Precision(dtype_of(student.dtype), dev)
        torch.manual_seed(self.cfg.seed)  # the same initial weights on every rank
        model = load_causal_lm(str(source), torch.float32, dev, student.random_init and not ckpts, self.cfg.seed)
        if not self.dist.enabled:
            fast_decode.fuse_projections(model)  # the rollout engine shares these weights; before any optimizer
        self.masters = None
        if not self.dist.enabled and self.precision.compute != torch.float32:
            self.masters = MasterWeights(model)  # float32 copies first, then the module computes in bf16
            fast_decode.cast_parameters(model, self.precision.compute)  # buffers (rotary frequencies) stay float32
        ckpt = self.t.activation_checkpointing
        if ckpt:  # HF's layers (under FSDP) checkpoint by this setting; fast_decode's are told through the head
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # under FSDP, HF's layers: FSDP gathers each layer's weights in the layer module's own forward
        self.head = PolicyHead(model, self.t.lm_head_chunk, own_layers=not self.dist.enabled, checkpoint_layers=ckpt)
        if self.dist.enabled:
            shard(self.head, self.precision.compute)
        self.tok = AutoTokenizer.from_pretrained(source if ckpts or not student.tokenizer else student.tokenizer)
        self.engine = make_engine(self.t.rollout_engine, model, self.tok, self.precision.compute, dev,
                                  share_weights=not self.dist.enabled)
        self.teacher = self.teacher or make_teacher(self.cfg, device=str(dev))
        self.rows = trainable_rows(self.cfg, self.tok, self.run_dir)  # validated, prompts fit the context
        self.rng = random.Random(self.cfg.seed)
        self.opt = torch.optim.AdamW(self.trained_tensors(), lr=self.t.lr, betas=(0.9, 0.98),
                                     weight_decay=self.t.weight_decay, fused=dev.type == "cuda" or None)
        torch.manual_seed(self.cfg.seed + self.dist.rank)  # sampling noise: one stream per rank
        done = self._resume(ckpts[-1]) if ckpts else 0
        if self.t.tensorboard and self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(self.run_dir / "tensorboard")
        return done

    def trained_tensors(self) -> list[torch.Tensor]:
        """What the optimizer steps: the float32 masters, or the (float32 or sharded) parameters themselves."""
        return self.masters.masters if self.masters is not None else list(self.head.parameters())

    def _resume(self, ckpt: Path) -> int:
        state = torch.load(ckpt / STATE_FILE, weights_only=True)
        self._load_optimizer(state["optimizer"])
        self.rng.setstate(_as_tuple(state["python_rng"]))
        torch.set_rng_state(state["torch_rng"][self.dist.rank])
        if state.get("cuda_rng") and self.dist.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"][self.dist.rank], self.dist.device)
        self._truncate_metrics(state["step"])
        self.log(f"resuming {self.run_dir.name} from {ckpt.name}")
        return state["step"]

    def _load_optimizer(self, state: dict) -> None:
        if self.dist.enabled:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(self.head, self.opt, state, options=StateDictOptions(full_state_dict=True))
        else:
            self.opt.load_state_dict(state)

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines past the resume point, so a resumed run never duplicates a step."""
        path = self.run_dir / METRICS_FILE
        if path.exists() and self.dist.is_main:
            keep = read_rows(path, required=("step",))  # a torn last line (killed mid-write) is set aside
            write_jsonl_atomic(path, [m for m in keep if m["step"] <= step])

    # ------------------------------------------------------------------------------------- one step
    def rollout(self) -> tuple[RolloutBatch, list[dict]]:
        """This rank's share of the rollout: whole prompt groups, a prompt's samples adjacent."""
        prompts = self.rng.sample(self.rows, self.t.rollout_batch_size)  # the same draw on every rank
        per_rank = self.t.rollout_batch_size // self.dist.world_size
        mine = prompts[self.dist.rank * per_rank : (self.dist.rank + 1) * per_rank]
        group = [r for r in mine for _ in range(self.t.n_samples_per_prompt)]
        batch = self.engine.sample([r["prompt"] for r in group], self.t.rollout_temperature,
                                   self.t.rollout_max_response_len, self.cfg.student.enable_thinking)
        return batch, group

    def score_teacher(self, batch: RolloutBatch) -> TeacherScores:
        est = self.t.opd_estimator
        return self.teacher.score(batch, full=est == "full", topk=self.t.opd_topk if est == "topk" else 0)

    def advantages(self, batch: RolloutBatch, group: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence rewards (+1/-1) and advantages ``A_grpo``, both (B,)."""
        scores = [score(text, row["label"]) for text, row in zip(decode_responses(self.tok, batch), group)]
        rewards_B = torch.tensor([s.reward for s in scores])
        rewards_P_G = rewards_B.view(-1, self.t.n_samples_per_prompt)
        return rewards_B, opd_math.sequence_advantages(rewards_P_G, self.t.advantage_mode).reshape(-1)

    def update(self, batch: RolloutBatch, t_scores: TeacherScores, adv_B: torch.Tensor) -> dict:
        """Optimizer steps over this rank's sequences; returns token-weighted metric sums and grad norms."""
        self.head.train()
        n, step_size = batch.input_ids_B_L.shape[0], self.t.global_batch_size // self.dist.world_size
        old_B_T = None
        if n > step_size:  # several optimizer steps per rollout: freeze the behaviour log-probs first
            old_B_T = sequence_logprobs(self.head, batch, self.t.micro_batch_size or step_size, self.precision)
        sums, norms = dict.fromkeys(SUM_METRICS, 0.0), []
        for lo in range(0, n, step_size):
            self.opt.zero_grad(set_to_none=True)
            for k, v in self.accumulate_gradients(batch, t_scores, adv_B, old_B_T, lo, min(lo + step_size, n)).items():
                sums[k] += v
            norm = torch.nn.utils.clip_grad_norm_(self.trained_tensors(), self.t.max_grad_norm)
            norms.append(full_tensor(norm).item())
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)  # no gradient memory held through the next rollout
            if self.masters is not None:
                self.masters.copy_to_params()
        self.engine.sync(self.head.model)
        return {"sums": sums, "grad_norm": sum(norms) / len(norms)}

    def accumulate_gradients(self, batch, t_scores, adv_B, old_B_T, lo: int, hi: int) -> dict[str, float]:
        """Backward of the loss of sequences ``lo:hi`` (one optimizer step), micro-batch by micro-batch.

        The gradient equals one backward over the whole slice (``tests/test_update.py``): every
        micro-batch's loss is its tokens' sum over the global token count.
        """
        (num_tokens,) = self.dist.all_sum([batch.response_mask_B_T[lo:hi].sum().item()])
        micro, sums = self.t.micro_batch_size or (hi - lo), {}
        for a in range(lo, hi, micro):
            b = min(a + micro, hi)
            if self.dist.enabled:  # reduce gradients once, after the last micro-batch
                self.head.set_requires_gradient_sync(b == hi)
            loss, part = self._micro_loss(batch, t_scores, adv_B, old_B_T, a, b, num_tokens)
            (loss * self.dist.world_size).backward()  # FSDP averages over ranks; the loss is a global sum
            for k, v in part.items():  # summed on the device in float64: no host sync for the metrics
                sums[k] = sums[k] + v.double() if k in sums else v.double()
        return {k: float(sums[k]) if k in sums else 0.0 for k in SUM_METRICS}

    def _micro_loss(self, batch, t_scores, adv_B, old_B_T, a: int, b: int, num_tokens: float):
        mb = rows(batch, a, b)
        dev, keep = self.dist.device, mb.response_mask_B_T.bool().cpu()
        width = keep.shape[1]
        mb = mb.to(dev)
        stats = self.head(mb, t_scores.distribution(a, b, keep, dev), self.precision.compute)
        t_logp_N = t_scores.logp_B_T[a:b, :width][keep].to(dev)
        adv_N = adv_B[a:b, None].expand(-1, width)[keep].to(dev)
        old_N = stats.logp_N.detach() if old_B_T is None else old_B_T[a:b, :width][keep].to(dev)
        return opd_math.opd_loss(stats.logp_N, old_N, adv_N, t_logp_N, stats.kl_N, estimator=self.t.opd_estimator,
                                 opd_kl_coef=self.cfg.opd_kl_coef, reward_scale=self.cfg.reward_scale,
                                 clip_low=self.t.clip_low, clip_high=self.t.clip_high, num_tokens=num_tokens)

    def train_step(self, step: int) -> dict:
        phase = _PhaseClock(self.dist.device)
        batch, group = self.rollout()
        if hasattr(self.engine, "release") and self.dist.device.type == "cuda":
            self.engine.release()  # give the KV cache back before the update needs the memory
        phase.lap("rollout")
        t_scores = self.score_teacher(batch)
        phase.lap("teacher")
        rewards_B, adv_B = self.advantages(batch, group)
        phase.lap("reward")  # decoding and scoring the responses (CPU): not part of the update's time
        out = self.update(batch, t_scores, adv_B)
        phase.lap("update")
        self.last_batch = batch  # for benchmarks (suite.bench opd_step counts its FLOPs)
        local = [batch.response_mask_B_T.sum().item(), batch.attention_mask_B_L.sum().item(), rewards_B.sum().item(),
                 (rewards_B > 0).sum().item(), batch.truncated_B.sum().item(), float(len(rewards_B))]
        gen_tokens, all_tokens, reward, correct, truncated, seqs = self.dist.all_sum(local)
        sums = dict(zip(out["sums"], self.dist.all_sum(list(out["sums"].values()))))
        metrics = {k: v / max(gen_tokens, 1.0) for k, v in sums.items()
                   if k != "kl_exact" or self.t.opd_estimator == "full"}
        metrics.update(
            step=step, reward=reward / seqs, accuracy=correct / seqs, response_len=gen_tokens / seqs,
            truncation_rate=truncated / seqs, grad_norm=out["grad_norm"],
            rollout_tok_s=gen_tokens / phase.seconds["rollout"], teacher_tok_s=all_tokens / phase.seconds["teacher"],
            train_tok_s=all_tokens / phase.seconds["update"], step_seconds=sum(phase.seconds.values()),
            **{f"{k}_seconds": v for k, v in phase.seconds.items()}, **phase.peak_gb,
        )
        return metrics

    # ------------------------------------------------------------------------------ checkpoints, loop
    def save_checkpoint(self, step: int) -> Path:
        """HF checkpoint + optimizer/RNG state, written to a temp dir and renamed (never half-written)."""
        root = self.run_dir / "checkpoints"
        final, tmp = root / f"step_{step:06d}", root / f".tmp_step_{step:06d}"
        weights, optimizer = self._gather_state()
        rngs = self._gather_rngs()
        if self.dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            self.head.model.save_pretrained(tmp, state_dict=weights, safe_serialization=True)
            self.tok.save_pretrained(tmp)
            state = {"step": step, "optimizer": optimizer, "python_rng": self.rng.getstate(), **rngs}
            torch.save(state, tmp / STATE_FILE)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        self.dist.barrier()
        return final

    def _gather_state(self) -> tuple[dict | None, dict]:
        if not self.dist.enabled:  # float32 weights: the masters when the module computes in bf16
            weights = self.masters.state_dict(self.head.model) if self.masters is not None else None
            return weights, self.opt.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        weights = full_state_dict(self.head.model)
        optimizer = get_optimizer_state_dict(self.head, self.opt,
                                             options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return weights, optimizer

    def _gather_rngs(self) -> dict:
        """Every rank's torch (and CUDA) RNG state, so a resumed run samples exactly as the uninterrupted one."""
        local = [torch.get_rng_state()]
        if self.dist.device.type == "cuda":
            local.append(torch.cuda.get_rng_state(self.dist.device))
        if not self.dist.enabled:
            return {"torch_rng": [local[0]], "cuda_rng": local[1:]}
        import torch.distributed as dist

        everyone = [None] * self.dist.world_size
        dist.all_gather_object(everyone, local)
        return {"torch_rng": [x[0] for x in everyone], "cuda_rng": [x[1] for x in everyone if len(x) > 1]}

    def _log_metrics(self, metrics: dict) -> None:
        if not self.dist.is_main:
            return
        append_row(self.run_dir / METRICS_FILE, metrics)  # one locked write, fsynced: a kill loses at most this line
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, metrics["step"])

    def train(self) -> Path:
        """Run the remaining rollout steps; returns the last checkpoint."""
        from tqdm.auto import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        done = self.setup()
        bar = tqdm(range(done + 1, self.t.num_rollout + 1), initial=done, total=self.t.num_rollout,
                   desc=self.run_dir.name, disable=not (self.t.progress_bar and self.dist.is_main))
        for step in bar:
            metrics = self.train_step(step)
            self._log_metrics(metrics)
            bar.set_postfix(reward=f"{metrics['reward']:+.2f}", kl=f"{metrics.get('kl_exact', metrics['kl_sampled']):.3f}",
                            len=f"{metrics['response_len']:.0f}")
            if step % self.t.save_interval == 0 or step == self.t.num_rollout:
                self.save_checkpoint(step)
        if self.tb is not None:
            self.tb.close()
        ckpts = list_checkpoints(self.run_dir)
        if not ckpts:
            raise RuntimeError(f"{self.run_dir}: training finished without a checkpoint")
        return ckpts[-1]


class _PhaseClock:
    """Wall seconds of each phase of a step (device-synchronised) and, on GPU, its peak memory."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = {}
        self.peak_gb: dict[str, float] = {}
        self._start()

    def _start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_gb[f"peak_{name}_gb"] = torch.cuda.max_memory_allocated() / 2**30
        self.seconds[name] = max(time.perf_counter() - self.t, 1e-9)
        self._start()


def _as_tuple(state):
    """``random.setstate`` needs nested tuples; a state saved and loaded with weights_only may come back as lists."""
    return tuple(_as_tuple(x) for x in state) if isinstance(state, (list, tuple)) else state


def read_metrics(run_dir: Path | str) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    return read_rows(path, required=("step",))
