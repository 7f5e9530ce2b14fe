"""Rollout benchmark (not a test): tokens/s of transformers' ``generate`` and of the static-cache engine.

    python -m suite.bench rollout                                   # CPU: the toy student, 32 prompts x 4, 48 tokens
    python -m suite.bench rollout --device cuda --models qwen3-1.7b,qwen3-4b --batch 64 --new-tokens 256,2048

Same prompts (the task's training prompts in the model's chat template), batch, length, temperature 1
and true-policy sampling for every engine, in one run; each timing is the median of ``--repeats``
after a warm-up (which also captures the CUDA graphs). GPU models are the real-shape stand-ins
(``artifacts/qwen3/shapes``, random weights, bf16). For the static engine the run also reports how
far its own log-probs of its samples are from the trainer's recomputation. Results go to
``results/bench/rollout-<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from suite.paths import REPO_ROOT, RESULTS_DIR, TOY_MODELS_DIR

SHAPES_DIR = REPO_ROOT / "artifacts" / "qwen3"


def _load(name: str, device: torch.device):
    from transformers import AutoTokenizer

    from suite.training.policy import load_causal_lm

    if name == "toy":
        path = TOY_MODELS_DIR / "student"
        return load_causal_lm(str(path), torch.float32, device), AutoTokenizer.from_pretrained(path), torch.float32
    model = load_causal_lm(str(SHAPES_DIR / "shapes" / name), torch.bfloat16, device, random_init=True)
    return model, AutoTokenizer.from_pretrained(SHAPES_DIR / "tokenizer"), torch.bfloat16


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_engine(engine, chats, new_tokens: int, repeats: int, device) -> tuple[list[float], object]:
    torch.manual_seed(0)
    # Warm-up over the whole length for every engine: the static engine compiles and captures every
    # bucket's graph; generate's first full-length run was ~1.9x slower than its next ones after a
    # 32-token warm-up (an H200, 4B shape, 256 tokens: 17.6 s, then 9.2 and 9.6 s), its caching
    # allocator and kernels meeting each cache length for the first time.
    engine.sample(chats, 1.0, new_tokens, True)
    times, batch = [], None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        batch = engine.sample(chats, 1.0, new_tokens, True)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times, batch


def _logp_gap(model, batch, dtype, device) -> dict:
    from suite.training.policy import PolicyHead, Precision, sequence_logprobs

    again = sequence_logprobs(PolicyHead(model, own_layers=True), batch.to(device), 8, Precision(dtype, device))
    mask = batch.response_mask_B_T.to(device)
    gap = (again - batch.sample_logp_B_T.to(device)).abs() * mask
    return {"max_abs": gap.max().item(), "mean_abs": (gap.sum() / mask.sum()).item()}


def profile_decode_step(engine, replays: int = 20) -> str:
    """Kernels of one captured decode step (the last bucket's graph), from ``replays`` replays under
    torch.profiler: the top operators by device time, and the device time of one step."""
    from torch.profiler import ProfilerActivity, profile

    dec = engine.decoder
    graph = dec.graphs[max(dec.graphs)]
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(replays):
            graph.replay()
        torch.cuda.synchronize()
    events = prof.key_averages()
    per_step_ms = sum(e.self_device_time_total for e in events) / replays / 1e3
    table = events.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=70)
    return f"decode step (attend {max(dec.graphs)} columns): {per_step_ms:.3f} ms of kernels a step\n{table}"


def bench_model(name: str, device: torch.device, batch: int, samples: int, lengths: list[int], engines: list[str],
                repeats: int, task: str, profile: bool = False) -> list[dict]:
    from suite.data import train_rows
    from suite.training.engine import ENGINES, StaticEngine

    from suite.training import fast_decode

    model, tok, dtype = _load(name, device)
    model.eval()
    fast_decode.fuse_projections(model)  # as the trainer lays out its student (generate is unaffected)
    prompts = [r["prompt"] for r in train_rows(task, "local")[: batch // samples]]
    chats = [p for p in prompts for _ in range(samples)]
    rows = []
    for new_tokens in lengths:
        for engine_name in engines:  # variants: static-eager (no CUDA graphs), static-matmul (matmul attention),
            base, _, variant = engine_name.partition("-")  # static-cublaslt (matmuls through cuBLASLt)
            if device.type == "cuda":
                torch.backends.cuda.preferred_blas_library("cublaslt" if variant == "cublaslt" else "cublas")
            cls = ENGINES[base]
            engine = cls(model, tok, dtype, device, True) if cls is not StaticEngine else StaticEngine(
                model, tok, dtype, device, True, use_graphs=variant != "eager",
                attention="matmul" if variant == "matmul" else "auto")
            row = {"model": name, "engine": engine_name, "batch": len(chats), "new_tokens": new_tokens}
            try:
                times, out = _time_engine(engine, chats, new_tokens, repeats, device)
                tokens = out.response_mask_B_T.sum().item()
                row.update(seconds=statistics.median(times), all_seconds=times, tokens=tokens,
                           tokens_per_s=tokens / statistics.median(times))
                if out.sample_logp_B_T is not None:
                    row["logp_vs_trainer"] = _logp_gap(model, out, dtype, device)
                if profile and getattr(engine, "decoder", None) is not None and engine.decoder.graphs:
                    row["profile"] = profile_decode_step(engine)
                    print(row["profile"], flush=True)
            except Exception as err:  # noqa: BLE001 - one failing variant must not lose the others' numbers
                row["error"] = f"{type(err).__name__}: {err}"[:500]
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
            del engine
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.bench rollout", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=None, help="toy (CPU default) or shapes: qwen3-1.7b,qwen3-4b")
    parser.add_argument("--batch", type=int, default=None, help="sequences (CPU default 128, GPU 64)")
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--new-tokens", default=None, help="comma-separated (CPU default 48, GPU 256,2048)")
    parser.add_argument("--engines", default="generate,static")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench")
    parser.add_argument("--profile", action="store_true", help="GPU: the kernels of one captured decode step")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    models = (args.models or ("qwen3-1.7b,qwen3-4b" if gpu else "toy")).split(",")
    lengths = [int(x) for x in (args.new_tokens or ("256,2048" if gpu else "48")).split(",")]
    batch = args.batch or (64 if gpu else 128)
    if not gpu:
        torch.set_num_threads(1)
    rows = []
    for name in models:
        task = "toy_arith" if name == "toy" else "dapo_math"
        rows += bench_model(name, device, batch, args.samples_per_prompt, lengths, args.engines.split(","),
                            args.repeats, task, args.profile)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__}
    if gpu:
        machine["gpu"] = torch.cuda.get_device_name(device)
    report = {"benchmark": "rollout", "machine": machine, "rows": rows,
              "speedup_vs_generate": _speedups(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"rollout-{device.type}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(_table(rows))


def _speedups(rows: list[dict]) -> dict:
    base = {(r["model"], r["new_tokens"]): r["tokens_per_s"] for r in rows if r["engine"] == "generate" and "tokens_per_s" in r}
    return {f"{r['model']}/{r['new_tokens']}/{r['engine']}": r["tokens_per_s"] / base[(r["model"], r["new_tokens"])]
            for r in rows if r["engine"] != "generate" and "tokens_per_s" in r and (r["model"], r["new_tokens"]) in base}


def _table(rows: list[dict]) -> str:
    lines = ["| model | engine | batch | new tokens | seconds | tokens/s | logp gap to trainer (max) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = f"{r['logp_vs_trainer']['max_abs']:.2g}" if "logp_vs_trainer" in r else "-"
        if "error" in r:
            lines.append(f"| {r['model']} | {r['engine']} | {r['batch']} | {r['new_tokens']} | error: {r['error'][:80]} | | |")
        else:
            lines.append(f"| {r['model']} | {r['engine']} | {r['batch']} | {r['new_tokens']} | {r['seconds']:.2f} | "
                         f"{r['tokens_per_s']:,.0f} | {gap} |")
    return "\n".join(lines)
