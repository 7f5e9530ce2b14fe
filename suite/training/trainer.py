"""The local OPD trainer (one GPU or CPU): student samples, teacher scores, student learns.

One rollout step, following slime's order:

1. draw ``rollout_batch_size`` prompts from the task's train split (a seeded RNG);
2. sample ``n_samples_per_prompt`` responses each from the student at ``rollout_temperature``,
   from the true policy (no top-k/top-p);
3. score the response tokens under the teacher (:class:`suite.training.teacher.TeacherBackend`);
4. reward each response with :mod:`suite.scoring` (+1 correct, -1 otherwise);
5. ``A_grpo`` from the rewards of each prompt's group (``trainer.advantage_mode``), then
   * ``opd_estimator=sampled`` (slime/tinker): ``A_t = reward_scale*A_grpo - opd_kl_coef*(logp_s - logp_t)``
     on the sampled token, trained with the PPO-clipped policy loss;
   * ``full`` / ``topk``: ``A_t = reward_scale*A_grpo`` in the policy loss, plus ``opd_kl_coef`` times the
     exact per-position reverse KL (over the vocabulary, or the teacher's top-K plus a tail bucket) as a
     differentiable loss: the same objective's gradient without the sampling noise of one token;
6. one optimizer step per ``global_batch_size`` sequences.

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

from suite.training import opd_math
from suite.config import SuiteConfig
from suite.results import append_row, read_rows, write_jsonl_atomic
from suite.training.rollout import RolloutBatch, decode_responses, response_logprobs, sample_rollouts, token_logprobs
from suite.scoring import score
from suite.training.fit import trainable_rows
from suite.training.teacher import HFTeacher, SGLangTeacher, TeacherBackend

STATE_FILE = "trainer_state.pt"
METRICS_FILE = "metrics.jsonl"


def list_checkpoints(run_dir: Path | str) -> list[Path]:
    """Complete checkpoints of a run, oldest first (a checkpoint is complete once its state file exists)."""
    root = Path(run_dir) / "checkpoints"
    done = [p for p in root.glob("step_*") if (p / STATE_FILE).exists()] if root.exists() else []
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def make_teacher(cfg: SuiteConfig, url: str | None = None) -> TeacherBackend:
    """The configured teacher backend; ``sglang`` talks to ``url`` (or ``serve.url``)."""
    if cfg.trainer.teacher_backend == "hf":
        return HFTeacher(cfg.teacher.path, cfg.teacher.dtype, cfg.trainer.device)
    s = cfg.serve
    target = url or s.url or f"http://{s.host}:{s.port}"
    return SGLangTeacher(target, s.concurrency, s.request_timeout_s, s.retries, s.backoff_s)


class OPDTrainer:
    """State of one OPD run: student, optimizer, RNGs, teacher. ``train()`` runs it to the end."""

    def __init__(self, cfg: SuiteConfig, run_dir: Path, teacher: TeacherBackend | None = None, log=print):
        self.cfg, self.t, self.run_dir, self.log = cfg, cfg.trainer, Path(run_dir), log
        self.teacher, self.tb = teacher, None  # a caller that already holds the teacher passes it in

    # ----------------------------------------------------------------------------------------- setup
    def setup(self) -> int:
        """Load everything; returns the number of rollout steps already done (0, or a resume point)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ckpts = list_checkpoints(self.run_dir)
        source = ckpts[-1] if ckpts else Path(self.cfg.student.path)
        torch.manual_seed(self.cfg.seed)
        self.student = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, self.cfg.student.dtype))
        self.student.to(self.t.device)
        self.tok = AutoTokenizer.from_pretrained(source)
        self.teacher = self.teacher or make_teacher(self.cfg)
        self.rows = trainable_rows(self.cfg, self.tok, self.run_dir)  # validated, prompts fit the context
        self.rng = random.Random(self.cfg.seed)
        self.opt = torch.optim.AdamW(self.student.parameters(), lr=self.t.lr, betas=(0.9, 0.98),
                                     weight_decay=self.t.weight_decay)
        done = 0
        if ckpts:
            state = torch.load(ckpts[-1] / STATE_FILE, weights_only=True)  # tensors and plain types only: no code
            self.opt.load_state_dict(state["optimizer"])
            self.rng.setstate(state["python_rng"])
            torch.set_rng_state(state["torch_rng"])
            done = state["step"]
            self._truncate_metrics(done)
            self.log(f"resuming {self.run_dir.name} from {ckpts[-1].name}")
        if self.t.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(self.run_dir / "tensorboard")
        return done

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines past the resume point, so a resumed run never duplicates a step."""
        path = self.run_dir / METRICS_FILE
        if path.exists():
            keep = read_rows(path, required=("step",))  # a torn last line (killed mid-write) is set aside
            write_jsonl_atomic(path, [m for m in keep if m["step"] <= step])

    # ------------------------------------------------------------------------------------- one step
    def rollout(self) -> tuple[RolloutBatch, list[dict]]:
        prompts = self.rng.sample(self.rows, self.t.rollout_batch_size)
        group = [r for r in prompts for _ in range(self.t.n_samples_per_prompt)]  # a prompt's samples adjacent
        batch = sample_rollouts(self.student, self.tok, [r["prompt"] for r in group], self.t.rollout_temperature,
                                self.t.rollout_max_response_len, self.cfg.student.enable_thinking)
        return batch, group

    def advantages(self, batch: RolloutBatch, group: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence rewards (+1/-1) and advantages ``A_grpo``, both (B,)."""
        scores = [score(text, row["label"]) for text, row in zip(decode_responses(self.tok, batch), group)]
        rewards_B = torch.tensor([s.reward for s in scores])
        rewards_P_G = rewards_B.view(self.t.rollout_batch_size, self.t.n_samples_per_prompt)
        return rewards_B, opd_math.sequence_advantages(rewards_P_G, self.t.advantage_mode).reshape(-1)

    def _minibatch_loss(self, mb: RolloutBatch, t_logp_B_T, t_full, t_topk, adv_B, old_logp_B_T) -> dict:
        est, coef, mask = self.t.opd_estimator, self.cfg.opd_kl_coef, mb.response_mask_B_T
        logp_full_B_T_V = response_logprobs(self.student, mb)
        logp_B_T = token_logprobs(logp_full_B_T_V, mb.response_ids_B_T) * mask
        old = logp_B_T.detach() if old_logp_B_T is None else old_logp_B_T
        if est == "sampled":
            adv_B_T = opd_math.opd_token_advantages(adv_B, logp_B_T.detach(), t_logp_B_T, coef, self.cfg.reward_scale)
            kl_loss = torch.zeros(())
        else:
            adv_B_T = (self.cfg.reward_scale * adv_B)[:, None].expand_as(logp_B_T)
            kl_B_T = (opd_math.exact_reverse_kl(logp_full_B_T_V, t_full) if est == "full"
                      else opd_math.topk_reverse_kl(logp_full_B_T_V, *t_topk))
            kl_loss = opd_math.masked_mean(kl_B_T, mask)
        pg_loss, clip_frac = opd_math.policy_loss(logp_B_T, old, adv_B_T * mask, mask, self.t.clip_low, self.t.clip_high)
        loss = pg_loss + (coef * kl_loss if est != "sampled" else 0.0)
        out = {"loss": loss, "pg_loss": pg_loss.item(), "kl_loss": kl_loss.item(), "clip_frac": clip_frac.item(),
               "kl_sampled": opd_math.masked_mean(opd_math.sampled_reverse_kl(logp_B_T.detach(), t_logp_B_T), mask).item()}
        if t_full is not None:
            out["kl_exact"] = opd_math.masked_mean(opd_math.exact_reverse_kl(logp_full_B_T_V.detach(), t_full), mask).item()
        return out

    def train_step(self, step: int) -> dict:
        t0 = time.time()
        batch, group = self.rollout()
        t1 = time.time()
        need_full = self.t.opd_estimator == "full" or self.t.teacher_backend == "hf"  # hf: also for the kl_exact metric
        t_scores = self.teacher.score(batch, full=need_full, topk=self.t.opd_topk if self.t.opd_estimator == "topk" else 0)
        t2 = time.time()
        rewards_B, adv_B = self.advantages(batch, group)
        adv_B = adv_B.to(self.t.device)
        self.student.train()
        size, n = self.t.global_batch_size, batch.input_ids_B_L.shape[0]
        parts, old_all = [], None
        if n > size:  # several optimizer steps per rollout: freeze the behaviour log-probs first
            with torch.no_grad():
                old_all = token_logprobs(response_logprobs(self.student, batch),
                                         batch.response_ids_B_T) * batch.response_mask_B_T
        for lo in range(0, n, size):
            sl = slice(lo, lo + size)
            mb = RolloutBatch(batch.input_ids_B_L[sl], batch.attention_mask_B_L[sl], batch.response_mask_B_T[sl],
                              batch.prompt_width, batch.truncated_B[sl])
            full = t_scores.logp_full_B_T_V[sl] if t_scores.logp_full_B_T_V is not None else None
            topk = ((t_scores.topk_logp_B_T_K[sl], t_scores.topk_ids_B_T_K[sl])
                    if t_scores.topk_ids_B_T_K is not None else None)
            out = self._minibatch_loss(mb, t_scores.logp_B_T[sl], full, topk, adv_B[sl],
                                       None if old_all is None else old_all[sl])
            self.opt.zero_grad(set_to_none=True)
            out.pop("loss").backward()
            out["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.t.max_grad_norm).item()
            self.opt.step()
            parts.append(out)
        t3 = time.time()
        gen_tokens, all_tokens = batch.response_mask_B_T.sum().item(), batch.attention_mask_B_L.sum().item()
        metrics = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
        metrics.update(
            step=step, reward=rewards_B.mean().item(), accuracy=(rewards_B > 0).float().mean().item(),
            response_len=batch.response_lengths_B.float().mean().item(),
            truncation_rate=batch.truncated_B.float().mean().item(),
            rollout_tok_s=gen_tokens / max(t1 - t0, 1e-9), teacher_tok_s=all_tokens / max(t2 - t1, 1e-9),
            train_tok_s=all_tokens / max(t3 - t2, 1e-9), step_seconds=t3 - t0,
        )
        return metrics

    # ------------------------------------------------------------------------------ checkpoints, loop
    def save_checkpoint(self, step: int) -> Path:
        """HF checkpoint + optimizer/RNG state, written to a temp dir and renamed (never half-written)."""
        root = self.run_dir / "checkpoints"
        final, tmp = root / f"step_{step:06d}", root / f".tmp_step_{step:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        self.student.save_pretrained(tmp, safe_serialization=True)
        self.tok.save_pretrained(tmp)
        state = {"step": step, "optimizer": self.opt.state_dict(), "python_rng": self.rng.getstate(),
                 "torch_rng": torch.get_rng_state()}
        torch.save(state, tmp / STATE_FILE)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final

    def _log_metrics(self, metrics: dict) -> None:
        path = self.run_dir / METRICS_FILE
        append_row(path, metrics)  # one locked write, fsynced: a kill loses at most this line
        if self.tb is not None:
            for k, v in metrics.items():
                if k != "step":
                    self.tb.add_scalar(k, v, metrics["step"])

    def train(self) -> Path:
        """Run the remaining rollout steps; returns the last checkpoint."""
        from tqdm.auto import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        done = self.setup()
        bar = tqdm(range(done + 1, self.t.num_rollout + 1), initial=done, total=self.t.num_rollout,
                   desc=self.run_dir.name, disable=not self.t.progress_bar)
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


def read_metrics(run_dir: Path | str) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    return read_rows(path, required=("step",))
