"""Training attention on GPU: PyTorch's SDPA backends (cuDNN, flash, memory-efficient) on the update's shapes.

    python scripts/bench_attention_backends.py   # on a GPU; results/bench/h100-2026-11-26-v4/training-attention-backends.txt

Causal, GQA (enable_gqa), 4 sequences x 2,250 tokens, head_dim 128: the Qwen3-1.7B (16 query heads) and
4B (32) shapes, 8 KV heads. Forward and forward + backward medians (triton.testing.do_bench); TFLOP/s
count the causal half of QK^T and PV (backward as 2.5x the forward).
"""

import torch
import torch.nn.functional as F
import triton.testing as tt
from torch.nn.attention import SDPBackend, sdpa_kernel


def main() -> None:
    for B, h, g, L in [(4, 16, 8, 2250), (4, 32, 8, 2250)]:
        q = torch.randn(B, h, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(B, g, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(B, g, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        flops = 4 * B * h * 128 * L * L / 2
        for backend in [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]:
            try:
                with sdpa_kernel([backend]):
                    def attend():
                        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                    go = torch.randn_like(attend())
                    fwd = tt.do_bench(attend, return_mode="median")
                    both = tt.do_bench(lambda: torch.autograd.grad(attend(), [q, k, v], go), return_mode="median")
                print(f"B{B} h{h} g{g} L{L} {backend.name}: fwd {fwd * 1e3:.0f} us ({flops / fwd / 1e9:.0f} TF/s), "
                      f"fwd+bwd {both * 1e3:.0f} us ({3.5 * flops / both / 1e9:.0f} TF/s)")
            except RuntimeError as err:
                print(backend.name, "failed", str(err)[:150])


if __name__ == "__main__":
    main()
