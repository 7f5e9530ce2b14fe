"""OPD-step benchmark (not a test): seconds, tokens/s and peak memory of each phase, and the update's MFU.

    python -m suite.bench opd_step                                      # the embedded default, CPU
    python -m suite.bench opd_step student=qwen3_1_7b_shape teacher=qwen3_4b_shape trainer=tutorial \\
        task=dapo_math trainer.device=cuda trainer.opd_estimator=full
    torchrun --nproc_per_node 2 -m suite.bench opd_step student=qwen3_4b_shape teacher=qwen3_8b_shape \\
        trainer=tutorial task=dapo_math trainer.device=cuda trainer.distributed=fsdp trainer.num_gpus=2

Runs ``--warmup`` + ``--steps`` real OPD steps of the trainer on the composed config (no checkpoints,
no evaluation) and reports the median of the timed steps. Phases: rollout (sampling), teacher
(scoring), reward (decoding and scoring the responses, CPU), update (forward + backward + optimizer).
Peak GPU memory is per phase and per GPU.
MFU = model FLOPs of the update (forward + backward: 6 x parameters per token for the matmuls,
attention's S^2 terms, the LM head only at response positions; activation recomputation is not
counted; the student only: `full` also recomputes the teacher's logits, uncounted) over its seconds and the
bf16 matmul rate measured on the same GPU in the same run.
Results go to ``results/bench/opd_step-<student>-<teacher>-<estimator>-<N>gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from suite.paths import RESULTS_DIR


def matmul_tflops(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    """The bf16 matmul rate of this GPU, measured (random data, events, after warm-up)."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (start.elapsed_time(end) / 1e3) / 1e12


def update_flops(config, batch) -> float:
    """Model FLOPs of one forward + backward over ``batch`` (matmuls, causal attention, LM head at responses)."""
    H, L, V = config.hidden_size, config.num_hidden_layers, config.vocab_size
    q_dim = config.num_attention_heads * config.head_dim
    kv_dim = config.num_key_value_heads * config.head_dim
    per_token_layer = 2 * (H * q_dim + 2 * H * kv_dim + q_dim * H + 3 * H * config.intermediate_size)
    lengths = batch.attention_mask_B_L.sum(dim=1).double()
    body = lengths.sum().item() * L * per_token_layer
    attention = L * 2 * q_dim * (lengths**2).sum().item()  # QK^T and PV, each S^2/2 x q_dim x 2 (causal)
    head = batch.response_mask_B_T.sum().item() * 2 * H * V
    return 3.0 * (body + attention + head)


def profiled_step(trainer, step: int) -> tuple[dict, str]:
    """One more step under torch.profiler: the metrics and the top operators by device (or CPU) time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = trainer.dist.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        metrics = trainer.train_step(step)
    sort = "cuda_time_total" if cuda else "cpu_time_total"
    return metrics, prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=60)


def run(overrides: list[str], steps: int, warmup: int, profile_last: bool = False) -> dict:
    from suite.config import compose_config
    from suite.training.trainer import OPDTrainer

    cfg = compose_config("sweep", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = OPDTrainer(cfg, Path(tmp) / "run", log=lambda *_: None)
        trainer.setup()
        dev = trainer.dist.device
        rate = matmul_tflops(dev) if dev.type == "cuda" else None
        timed = []
        for step in range(1, warmup + steps + 1):
            metrics = trainer.train_step(step)
            flops = update_flops(trainer.head.model.config, trainer.last_batch)
            (flops,) = trainer.dist.all_sum([flops])
            metrics["update_tflops"] = flops / 1e12
            if rate:
                metrics["update_mfu"] = flops / metrics["update_seconds"] / (rate * 1e12 * trainer.dist.world_size)
            if step > warmup:
                timed.append(metrics)
            if trainer.dist.is_main:
                print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}), flush=True)
        peaks = trainer.dist.all_gather_object({k: max(m[k] for m in timed) for k in timed[0] if k.startswith("peak_")})
        profile_table = profiled_step(trainer, warmup + steps + 1)[1] if profile_last else None
    keys = ("rollout_seconds", "teacher_seconds", "reward_seconds", "update_seconds", "step_seconds", "rollout_tok_s",
            "teacher_tok_s", "train_tok_s", "update_mfu", "update_tflops", "response_len", "kl_sampled", "kl_exact")
    report = {"benchmark": "opd_step", "overrides": overrides, "steps": steps, "warmup": warmup,
              "world_size": trainer.dist.world_size, "student": cfg.student.name, "teacher": cfg.teacher.name,
              "estimator": cfg.trainer.opd_estimator, "sequences": cfg.trainer.rollout_batch_size * cfg.trainer.n_samples_per_prompt,
              "max_new_tokens": cfg.trainer.rollout_max_response_len, "bf16_matmul_tflops": rate,
              "median": {k: statistics.median(m[k] for m in timed) for k in keys if k in timed[0]},
              "peak_memory_gb_per_gpu": peaks, "per_step": timed, "profile": profile_table,
              "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                          "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None}}
    trainer.dist.close()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.bench opd_step", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench")
    parser.add_argument("--profile", action="store_true", help="profile one extra step; top operators in the report")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the sweep config")
    args = parser.parse_args(argv)
    report = run(list(args.overrides) + ["trainer.progress_bar=false"], args.steps, args.warmup, args.profile)
    if report["world_size"] > 1 and not _is_rank0():
        return
    name = f"opd_step-{report['student']}-{report['teacher']}-{report['estimator']}-{report['world_size']}gpu.json"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    if report["profile"]:
        (args.out / name.replace(".json", "-profile.txt")).write_text(report["profile"])
        print(report["profile"])
    med = report["median"]
    print(f"\n{name}: step {med['step_seconds']:.1f}s = rollout {med['rollout_seconds']:.1f}s "
          f"({med['rollout_tok_s']:,.0f} tok/s) + teacher {med['teacher_seconds']:.1f}s "
          f"+ reward {med['reward_seconds']:.1f}s + update {med['update_seconds']:.1f}s"
          + (f" (MFU {100 * med['update_mfu']:.1f}% of {report['bf16_matmul_tflops']:.0f} TFLOP/s)"
             if "update_mfu" in med else "")
          + f"; peak GB per GPU {report['peak_memory_gb_per_gpu']}")


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
