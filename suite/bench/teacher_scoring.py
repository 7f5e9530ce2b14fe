"""Teacher-scoring benchmark (not a test): the SGLang client against a bare loop, to ``results/bench/``.

    python -m suite.bench teacher_scoring              # start an SGLang server for the toy teacher
    python -m suite.bench teacher_scoring --url URL    # or measure a running one

``teacher_scoring`` scores the same batch of student rollouts (prompt + response token ids) through
the teacher server three ways, each repeated, median reported:

* a tight loop: one bare ``POST /generate`` after another (urllib, no threads, no checks);
* ``SGLangTeacher`` with concurrency 1 (the suite's client: alignment checks, tensors, retries);
* ``SGLangTeacher`` with its configured concurrency;

and SGLang's own timing of the tight loop's requests (the sum of ``meta_info.e2e_latency``).
Client overhead = client(concurrency 1) / tight loop - 1 (goal <= 10%).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import urllib.request
from pathlib import Path

import torch

from suite.paths import RESULTS_DIR, TOY_MODELS_DIR


def _rollouts(n: int):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from suite.data import train_rows
    from suite.training.rollout import sample_rollouts

    student = AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "student")
    tok = AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "student")
    torch.manual_seed(0)
    return sample_rollouts(student, tok, [r["prompt"] for r in train_rows("toy_arith", "local")[:n]], 1.0, 48, True)


def _tight_loop(url: str, sequences: list[list[int]]) -> tuple[float, float]:
    """(wall seconds, summed server e2e_latency) for sequential bare requests."""
    server, start = 0.0, time.perf_counter()
    for ids in sequences:
        body = json.dumps({"input_ids": ids, "sampling_params": {"max_new_tokens": 0, "temperature": 1.0},
                           "return_logprob": True, "logprob_start_len": 0}).encode()
        req = urllib.request.Request(f"{url}/generate", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            server += json.loads(resp.read())["meta_info"].get("e2e_latency", float("nan"))
    return time.perf_counter() - start, server


def teacher_scoring(url: str, n: int, repeats: int, concurrency: int) -> dict:
    from suite.training.teacher import SGLangTeacher

    batch = _rollouts(n)
    sequences = [batch.input_ids_B_L[i][batch.attention_mask_B_L[i].bool()].tolist() for i in range(n)]
    tokens = sum(len(s) for s in sequences)
    _tight_loop(url, sequences[:4])  # warm-up
    loop, server, c1, cn = [], [], [], []
    def run_loop() -> None:
        wall, srv = _tight_loop(url, sequences)
        loop.append(wall)
        server.append(srv)

    def run_client(clients: int, out: list) -> None:
        start = time.perf_counter()
        SGLangTeacher(url, concurrency=clients).score(batch)
        out.append(time.perf_counter() - start)

    for i in range(repeats):  # alternate the order, so neither side always meets a just-woken server
        steps = [run_loop, lambda: run_client(1, c1), lambda: run_client(concurrency, cn)]
        for step in steps if i % 2 == 0 else steps[::-1]:
            step()
    med = {k: statistics.median(v) for k, v in (("tight_loop", loop), ("server_e2e", server), ("client_c1", c1),
                                                 (f"client_c{concurrency}", cn))}
    return {
        "benchmark": "teacher_scoring", "sequences": n, "tokens": tokens, "repeats": repeats,
        "seconds_median": med, "tokens_per_s": {k: tokens / v for k, v in med.items()},
        "client_overhead_vs_tight_loop": med["client_c1"] / med["tight_loop"] - 1,
        "tight_loop_overhead_vs_server": med["tight_loop"] / med["server_e2e"] - 1,
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.bench teacher_scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running SGLang server serving the toy teacher (else one is started)")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench")
    args = parser.parse_args(argv)
    if args.url:
        report = teacher_scoring(args.url, args.sequences, args.repeats, args.concurrency)
    else:
        from suite.config import compose_config
        from suite.serving.server import SGLangServer

        cfg = compose_config("evaluate", ["serve.port=31777"])
        with SGLangServer(cfg.teacher, cfg.serve) as url:
            report = teacher_scoring(url, args.sequences, args.repeats, args.concurrency)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "teacher_scoring.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
