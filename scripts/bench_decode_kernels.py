"""Kernel choices for one decode step at the Qwen3-4B shape, batch 64 (GPU; not a test).

    python scripts/bench_decode_kernels.py [--out DIR]

A decode step is ~5 matmuls with M=64 rows over each layer's weights plus one attention of a single
query per row over the KV cache: both bound by memory traffic, so each variant is reported in TB/s of
the bytes it must read. Every timing replays a CUDA graph that runs the op over 36 distinct layers'
tensors (as a decode step does: no layer's weights stay in L2 for the next), median of the replays.

GEMM back ends: cuBLAS (PyTorch's default), cuBLASLt, cuBLAS on the transposed problem or on rows
padded to 128 (other kernel families), and Inductor's max-autotune choice (Triton templates against
ATen). Attention: SDPA as the engine calls it (one query, GQA, additive mask), SDPA with each KV head's
4 query heads as 4 query rows (the cache read once per KV head), FlexAttention (PyTorch's compiled
attention, whose decode kernel splits the cache over blocks), and flash attention's variable-length
kernel over left-aligned rows, reading only each row's used columns (``seqused_k``).
Results: results/bench/h200-2026-11-26-v5/ and results/bench/NOTES.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
import triton.testing

B, LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 64, 36, 2560, 32, 8, 128, 9728, 151936
GEMMS = {"qkv": (HEADS * HEAD_DIM + 2 * KV_HEADS * HEAD_DIM, HIDDEN), "o": (HIDDEN, HEADS * HEAD_DIM),
         "gate_up": (2 * FFN, HIDDEN), "down": (HIDDEN, FFN)}


def graph_ms(run) -> float:
    """Median milliseconds of ``run()`` replayed as one CUDA graph (triton's ``do_bench_cudagraph``)."""
    return triton.testing.do_bench_cudagraph(run, rep=20, return_mode="median")


def transposed(x_M_K, w_N_K):
    """x @ w.T computed as (w @ x.T).T: cuBLAS sees N x M instead of M x N (another kernel family)."""
    return (w_N_K @ x_M_K.t()).t()


def padded_128(x_M_K, w_N_K):
    """x @ w.T with x's rows padded to 128 (cuBLAS picks its kernel by shape), the padding's rows dropped."""
    return F.linear(F.pad(x_M_K, (0, 0, 0, 128 - x_M_K.shape[0])), w_N_K)[: x_M_K.shape[0]]


def gemm_rows(backends: list[str]) -> list[dict]:
    rows = []
    dev, dt = "cuda", torch.bfloat16
    shapes = dict(GEMMS, lm_head=(VOCAB, HIDDEN))
    for name, (n, k) in shapes.items():
        count = 1 if name == "lm_head" else LAYERS
        weights = [torch.randn(n, k, device=dev, dtype=dt) * 0.02 for _ in range(count)]
        x = torch.randn(B, k, device=dev, dtype=dt)
        gbytes = count * n * k * 2 / 1e9
        autotuned = torch.compile(lambda a, w: F.linear(a, w), mode="max-autotune-no-cudagraphs", dynamic=False)
        for backend in backends:
            row = {"gemm": name, "M": B, "N": n, "K": k, "layers": count, "backend": backend}
            try:
                torch.backends.cuda.preferred_blas_library("cublaslt" if backend == "cublaslt" else "cublas")
                fn = {"inductor-max-autotune": autotuned, "cublas-transposed": transposed,
                      "cublas-m128": padded_128}.get(backend, F.linear)
                ms = graph_ms(lambda: [fn(x, w) for w in weights])
                row.update(ms=ms, us_per_layer=ms * 1e3 / count, tb_per_s=gbytes / ms)
            except Exception as err:  # noqa: BLE001 - one failing back end must not lose the others
                row["error"] = f"{type(err).__name__}: {err}"[:300]
            print(json.dumps(row), flush=True)
            rows.append(row)
        torch.backends.cuda.preferred_blas_library("cublas")
        weights = None  # freed before the next shape
        torch.cuda.empty_cache()
    return rows


def _left_aligned(cache_B_g_L_D, valid_B_L):
    """The valid columns of each row moved to its start, packed as flash's (B * L, g, D) token rows."""
    B_, g, L, D = cache_B_g_L_D.shape
    order_B_L = torch.sort((~valid_B_L).to(torch.int8), dim=1, stable=True).indices  # valid columns first, in order
    moved = cache_B_g_L_D.gather(2, order_B_L[:, None, :, None].expand(B_, g, L, D))
    return moved.transpose(1, 2).reshape(B_ * L, g, D).contiguous()


def attention_rows(lengths: list[int]) -> list[dict]:
    from torch.nn.attention.flex_attention import flex_attention

    rows, dev, dt = [], "cuda", torch.bfloat16
    flex = torch.compile(flex_attention, dynamic=False)
    g, r, D = KV_HEADS, HEADS // KV_HEADS, HEAD_DIM
    for L in lengths:
        gen = torch.Generator(device="cpu").manual_seed(L)
        caches = [(torch.randn(B, g, L, D, device=dev, dtype=dt), torch.randn(B, g, L, D, device=dev, dtype=dt))
                  for _ in range(LAYERS)]
        q = torch.randn(B, HEADS, 1, D, device=dev, dtype=dt)
        pad = torch.randint(0, max(L // 4, 1), (B,), generator=gen).to(dev)  # left padding of each row's prompt
        cols = torch.arange(L, device=dev)
        valid_B_L = (cols[None] >= pad[:, None]) & (cols[None] < L - 8)  # and the bucket's unwritten columns
        bias = torch.zeros(B, 1, 1, L, device=dev, dtype=dt).masked_fill_(~valid_B_L[:, None, None], float("-inf"))
        gbytes = LAYERS * 2 * B * g * L * D * 2 / 1e9

        def score_mod(score, b, h, q_idx, kv_idx):
            return torch.where(valid_B_L[b, kv_idx], score, -float("inf"))

        # Left-aligned rows (each row's tokens in columns [0, used_B)): flash's variable-length kernel reads
        # only the used columns of each row (``seqused_k``), so no padding or unwritten column is read.
        used_B = valid_B_L.sum(-1).to(torch.int32)
        left = [tuple(_left_aligned(c, valid_B_L) for c in kv) for kv in caches]
        cu_q = torch.arange(B + 1, device=dev, dtype=torch.int32)

        def flash_varlen(k_T_g_D, v_T_g_D):
            out = torch.ops.aten._flash_attention_forward(
                q.view(B, HEADS, D), k_T_g_D, v_T_g_D, cu_q, cu_q * L, 1, L, 0.0, False, False, seqused_k=used_B)[0]
            return out.view(B, HEADS, 1, D)

        # name: (attention of one layer's cache, every layer's cache as it takes them, masked like the engine)
        variants = {
            "sdpa-gqa-mask (engine)": (lambda k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=bias, enable_gqa=True),
                                       caches, True),
            "sdpa-grouped-mask": (lambda k, v: F.scaled_dot_product_attention(q.view(B, g, r, D), k, v, attn_mask=bias),
                                  caches, True),
            "flex-gqa-score-mod": (lambda k, v: flex(q, k, v, score_mod=score_mod, enable_gqa=True), caches, True),
            "flash-grouped-no-mask (bound)": (lambda k, v: F.scaled_dot_product_attention(q.view(B, g, r, D), k, v),
                                              caches, False),
            "flash-varlen-seqused (left-aligned)": (flash_varlen, left, True),
        }
        reference = variants["sdpa-gqa-mask (engine)"][0](*caches[0]).float()
        for name, (fn, layers, masked) in variants.items():
            row = {"attention": name, "batch": B, "columns": L, "layers": LAYERS}
            try:
                if masked:
                    out = fn(*layers[0]).reshape(B, HEADS, 1, D).float()
                    row["max_abs_vs_engine"] = (out - reference).abs().max().item()
                ms = graph_ms(lambda fn=fn, layers=layers: [fn(k, v) for k, v in layers])
                row.update(ms=ms, us_per_layer=ms * 1e3 / LAYERS, tb_per_s=gbytes / ms,
                           used_columns_fraction=used_B.sum().item() / (B * L))
            except Exception as err:  # noqa: BLE001
                row["error"] = f"{type(err).__name__}: {err}"[:300]
            print(json.dumps(row), flush=True)
            rows.append(row)
        caches = left = None
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--columns", default="320,512,2304")
    parser.add_argument("--parts", default="gemm,attention")
    parser.add_argument("--gemm-backends", default="cublas,cublaslt,cublas-transposed,cublas-m128,inductor-max-autotune")
    args = parser.parse_args()
    parts = args.parts.split(",")
    report = {"benchmark": "decode-kernels", "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
              "gemm": gemm_rows(args.gemm_backends.split(",")) if "gemm" in parts else [],
              "attention": attention_rows([int(c) for c in args.columns.split(",")]) if "attention" in parts else []}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decode-kernels.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
