"""Fused kernels on GPU, plain functions on CPU: the one place the training and decode paths compile.

:func:`compiled_on_gpu` wraps a pure tensor function with ``torch.compile`` when it runs on a GPU
(the elementwise work between the matmuls then runs as a few fused kernels, forward and backward,
instead of many float32 passes) and returns it unchanged on CPU, where the toy world's runs are
recorded bit for bit and compiling would cost more than it saves.
"""

from __future__ import annotations

import torch

RECOMPILE_LIMIT = 64  # compiled variants per function: every distinct static shape, grad mode and device
_COMPILED: dict[tuple, object] = {}


def compiled_on_gpu(fn, device: torch.device, static_shapes: bool = False):
    """``fn`` compiled for ``device`` (cached), or ``fn`` itself off GPU. ``static_shapes``: one whole graph
    per shape or an error (what a captured CUDA graph needs); otherwise a shape becomes dynamic at its
    first change, so micro-batches of new lengths reuse the kernels. The static and dynamic wrappers of
    one function share torch.compile's cache, and with it one limit on recompilations, raised here: past
    it a function would run eager (dynamic) or fail (static)."""
    if torch.device(device).type != "cuda":
        return fn
    key = (fn, static_shapes)
    if key not in _COMPILED:
        import torch._dynamo as dynamo

        dynamo.config.recompile_limit = max(dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        _COMPILED[key] = torch.compile(fn, dynamic=False if static_shapes else None, fullgraph=static_shapes)
    return _COMPILED[key]
