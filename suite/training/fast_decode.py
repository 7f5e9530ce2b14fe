"""A static-KV-cache decoder for Qwen3 models, with CUDA-graph-captured decode steps on GPU.

transformers' ``generate`` spends a decode step in Python and kernel launches (~2% of the GPU's
bandwidth limit at the Qwen3-4B shape, batch 64: ``shared/notes/real-shape-memory.md``). This
decoder runs the HF model's own weights and linear modules (embeddings, projections, rotary
frequencies, LM head: nothing is copied) around a preallocated KV cache, so a decode step has fixed
shapes and addresses and can be replayed as one CUDA graph. Written here: the attention over the cache
and the pointwise math between the matmuls (RMS norms, rotary embedding, SwiGLU, sampling), as pure
functions that compile into fused kernels on GPU.

Cache layout, one (B, kv_heads, capacity, head_dim) tensor per layer for keys and values::

    columns [0, prompt_capacity)            prompts, right-aligned (left padding masked out)
    columns [prompt_capacity, capacity)     generated tokens, column prompt_capacity + t for step t

Positions count from each sequence's first real token (as ``generate`` and the trainer do). A decode
step attends over the first ``prompt_capacity + bucket`` columns only (one graph per bucket of steps:
buckets of 64 to ``MAX_BUCKET`` steps, at most ``MAX_GRAPHS`` of them up to 2,048 new tokens), so early
steps do not read the whole cache. Sampling is exact: argmax of ``p / E`` with ``E ~ Exp(1)`` i.i.d. picks token v with
probability ``p_v`` (the exponential race), with no top-k/top-p; it needs no host synchronisation,
so it is captured in the graph too.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from suite.training.kernels import compiled_on_gpu

MAX_BUCKET, MAX_GRAPHS = 256, 8  # decode steps a bucket (one CUDA graph each), and graphs a rollout up to 2,048 steps


# The decode step's pointwise work, restated as pure functions of tensors (the math of transformers'
# Qwen3RMSNorm, rotary embedding and SwiGLU) so that on GPU each compiles once into a fused kernel
# shared by every layer. A decode step at batch 64 is ~65 tiny kernels a layer otherwise, and their
# fixed per-kernel cost, not memory traffic, set its time (measured on an H100: 7.4 ms a step for the
# Qwen3-1.7B shape where reading the weights takes ~1.3 ms). tests/test_engine.py checks the engine's
# log-probs against the trainer's (HF modules) recomputation.
def rms_norm(x, weight, eps: float):
    dtype = x.dtype
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)


def add_rms_norm(x, delta, weight, eps: float):
    """The residual add, then the next norm: returns (new residual stream, its normalised copy)."""
    x = x + delta
    return x, rms_norm(x, weight, eps)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def qk_norm_rope(q_B_S_h_D, k_B_S_g_D, q_weight, k_weight, cos_B_S_D, sin_B_S_D, eps: float):
    """Per-head q/k RMS norms (Qwen3), then rotary embedding; returns heads-first (B, h, S, D), (B, g, S, D)."""
    q = rms_norm(q_B_S_h_D, q_weight, eps).transpose(1, 2)
    k = rms_norm(k_B_S_g_D, k_weight, eps).transpose(1, 2)
    cos, sin = cos_B_S_D[:, None], sin_B_S_D[:, None]
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def silu_mul(gate, up):
    return F.silu(gate) * up


def race_sample(logits_B_V, inv_temperature, exponentials_B_V):
    """argmax of p / E with E ~ Exp(1): token v with probability p_v; also its log-prob."""
    logp_B_V = torch.log_softmax(logits_B_V.float() * inv_temperature, dim=-1)
    token_B = (logp_B_V.exp() / exponentials_B_V).argmax(dim=-1)
    return token_B, logp_B_V.gather(-1, token_B[:, None]).squeeze(-1)


POINTWISE = {"rms_norm": rms_norm, "add_rms_norm": add_rms_norm, "qk_norm_rope": qk_norm_rope,
             "silu_mul": silu_mul, "race_sample": race_sample}


def pointwise(device: torch.device, static_shapes: bool = False) -> dict:
    """The pointwise functions for a forward on ``device``: compiled into fused kernels on GPU
    (:func:`kernels.compiled_on_gpu`; HF's modules run ~10 unfused elementwise kernels per norm, in
    float32: fused, the update at the 1.7B shape went from 9.8 to 7.0 s on an H100,
    results/bench/NOTES.md), ``static_shapes`` for captured decode steps; the eager functions on CPU."""
    return {name: compiled_on_gpu(f, device, static_shapes) for name, f in POINTWISE.items()}


FUSED = ((lambda layer: layer.self_attn, ("q_proj", "k_proj", "v_proj"), "fused_qkv"),
         (lambda layer: layer.mlp, ("gate_proj", "up_proj"), "fused_gate_up"))


def cast_parameters(model, dtype: torch.dtype) -> None:
    """Every parameter's data to ``dtype`` (buffers such as rotary frequencies untouched); fused groups
    stay views of one buffer. The parameter objects (and hooks on them) are kept."""
    done = set()
    for layer in model.get_decoder().layers:
        for owner_of, names, attr in FUSED:
            owner = owner_of(layer)
            buffer = getattr(owner, attr, None)
            if buffer is None:
                continue
            buffer, start = buffer.to(dtype), 0
            for name in names:
                weight = getattr(owner, name).weight
                weight.data = buffer[start : start + weight.shape[0]]
                start += weight.shape[0]
                done.add(id(weight))
            object.__setattr__(owner, attr, buffer)
    for param in model.parameters():
        if id(param) not in done:
            param.data = param.data.to(dtype)


def fuse_projections(model) -> None:
    """Lay out each layer's q/k/v weights, and its gate/up weights, in one buffer each, the parameters
    becoming views of it: a decode step then runs one matmul per group (fewer, larger kernels). In
    place, values unchanged, no extra memory. Call it before an optimizer takes the parameters (the
    parameter objects are replaced). A model this module does not support is left as it is."""
    if not supports(model):
        return
    for layer in model.get_decoder().layers:
        for owner_of, names, attr in FUSED:
            _fuse(owner_of(layer), names, attr)


def _fuse(owner, names: tuple[str, ...], attr: str) -> None:
    linears = [getattr(owner, n) for n in names]
    if getattr(owner, attr, None) is not None or any(lin.bias is not None for lin in linears):
        return
    buffer = torch.cat([lin.weight.detach() for lin in linears])
    start = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight = torch.nn.Parameter(buffer[start : start + rows], requires_grad=lin.weight.requires_grad)
        start += rows
    object.__setattr__(owner, attr, buffer)  # a plain attribute: not a parameter or buffer of the module


def _qkv(layer, h_B_S_H, cos, sin, fn, eps: float, fused: bool):
    """Queries, keys (normed, rotated) and values of the normalised input ``h``, heads first. ``fused`` uses
    the q/k/v weights' shared buffer (one matmul; no gradient reaches the parameters through it)."""
    attn = layer.self_attn
    B, S, _ = h_B_S_H.shape
    D = attn.head_dim
    qkv = getattr(attn, "fused_qkv", None) if fused else None
    if qkv is not None:
        q, k, v = F.linear(h_B_S_H, qkv).split(
            [attn.q_proj.weight.shape[0], attn.k_proj.weight.shape[0], attn.v_proj.weight.shape[0]], dim=-1)
    else:
        q, k, v = attn.q_proj(h_B_S_H), attn.k_proj(h_B_S_H), attn.v_proj(h_B_S_H)
    q, k, v = q.reshape(B, S, -1, D), k.reshape(B, S, -1, D), v.reshape(B, S, -1, D).transpose(1, 2)
    q, k = fn["qk_norm_rope"](q, k, attn.q_norm.weight, attn.k_norm.weight, cos, sin, eps)
    return q, k, v


def run_layers(model, x_B_S_H, cos, sin, attend_fn, fn=POINTWISE, fused: bool = False, checkpoint: bool = False):
    """Every decoder layer on S new tokens per row (the HF model's own weights and linear modules);
    ``attend_fn(i, q, k, v)`` returns layer i's attention output (and may store K/V). Returns the final
    norm's output, (B, S, H). Differentiable unless ``fused`` (decode only); ``checkpoint`` recomputes
    each layer in backward from its residual-stream input alone (activation checkpointing, as HF's
    ``gradient_checkpointing_enable`` does)."""
    decoder = model.get_decoder()
    layers, eps = decoder.layers, model.config.rms_norm_eps
    h_B_S_H = None if checkpoint else fn["rms_norm"](x_B_S_H, layers[0].input_layernorm.weight, eps)
    for i, layer in enumerate(layers):
        next_norm = layers[i + 1].input_layernorm.weight if i + 1 < len(layers) else decoder.norm.weight
        body = functools.partial(_layer, layer, i, next_norm, cos, sin, attend_fn, fn, eps, fused)
        if checkpoint:  # the layer's input norm is recomputed inside it: one (B, S, H) tensor kept a layer
            x_B_S_H, h_B_S_H = torch.utils.checkpoint.checkpoint(
                lambda x, body=body, w=layer.input_layernorm.weight: body(x, fn["rms_norm"](x, w, eps)),
                x_B_S_H, use_reentrant=False)
        else:
            x_B_S_H, h_B_S_H = body(x_B_S_H, h_B_S_H)
    return h_B_S_H


def _layer(layer, i: int, next_norm, cos, sin, attend_fn, fn, eps: float, fused: bool, x_B_S_H, h_B_S_H):
    """Decoder layer ``i`` on the residual stream ``x`` and its normalised copy ``h``: returns both after it."""
    B, S, _ = x_B_S_H.shape
    q, k, v = _qkv(layer, h_B_S_H, cos, sin, fn, eps, fused)
    out = attend_fn(i, q, k, v)
    attn_out = layer.self_attn.o_proj(out.transpose(1, 2).reshape(B, S, -1))
    x_B_S_H, h = fn["add_rms_norm"](x_B_S_H, attn_out, layer.post_attention_layernorm.weight, eps)
    mlp = layer.mlp
    gate_up = getattr(mlp, "fused_gate_up", None) if fused else None
    gate, up = F.linear(h, gate_up).chunk(2, dim=-1) if gate_up is not None else (mlp.gate_proj(h), mlp.up_proj(h))
    mlp_out = mlp.down_proj(fn["silu_mul"](gate, up))
    return fn["add_rms_norm"](x_B_S_H, mlp_out, next_norm, eps)


def causal_hidden(model, ids_B_L: torch.Tensor, checkpoint: bool = False) -> torch.Tensor:
    """Final hidden states, (B, L, H), of rows that each start at column 0 (no left padding: positions
    0, 1, ...), under causal attention alone: one fused causal kernel with no mask (cuDNN's on an H100).
    The same math as the HF model's forward, with the pointwise work fused on GPU (:func:`pointwise`);
    ``checkpoint`` recomputes each layer in backward (only while gradients are taken)."""
    decoder = model.get_decoder()
    B, L = ids_B_L.shape
    x_B_L_H = decoder.embed_tokens(ids_B_L)
    cos, sin = decoder.rotary_emb(x_B_L_H, torch.arange(L, device=ids_B_L.device)[None].expand(B, L))

    def causal(i, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    return run_layers(model, x_B_L_H, cos, sin, causal, pointwise(ids_B_L.device),
                      checkpoint=checkpoint and torch.is_grad_enabled())


def prompt_inputs(decoder, ids_U_P: torch.Tensor, mask_U_P: torch.Tensor):
    """(embeddings, rotary cos, sin, positions, causal mask (U, 1, P, P)) of U left-padded prompts, for a
    forward over the prompts alone (a pad attends to itself only: no fully masked row, no NaN)."""
    P, device = ids_U_P.shape[1], ids_U_P.device
    pos_U_P = (mask_U_P.long().cumsum(-1) - 1).clamp(min=0)
    causal_P_P = torch.ones(P, P, dtype=torch.bool, device=device).tril()
    pads_see_themselves = torch.eye(P, dtype=torch.bool, device=device)
    mask_U_1_P_P = (causal_P_P & (mask_U_P.bool()[:, None, :] | pads_see_themselves))[:, None]
    x = decoder.embed_tokens(ids_U_P)
    cos, sin = decoder.rotary_emb(x, pos_U_P)
    return x, cos, sin, pos_U_P, mask_U_1_P_P


def shared_prompt_hidden(model, batch) -> torch.Tensor:
    """Final hidden states predicting each response token of ``batch`` (a RolloutBatch), (B, T, H), as
    :func:`suite.training.policy.response_hidden` computes them, but each distinct prompt (a prompt's
    samples are adjacent rows) runs through the layers once and its keys and values are shared by its
    samples' responses (gradients from every sample flow back into it). With 4 samples a prompt and
    prompts ~3/4 of the tokens (the toy world), this is about half the work of one forward over every row.
    """
    P, T = batch.prompt_width, batch.response_mask_B_T.shape[1]
    prompts_B_P, masks_B_P = batch.input_ids_B_L[:, :P], batch.attention_mask_B_L[:, :P]
    B, device = prompts_B_P.shape[0], prompts_B_P.device
    new_B = torch.ones(B, dtype=torch.bool, device=device)
    new_B[1:] = (prompts_B_P[1:] != prompts_B_P[:-1]).any(1) | (masks_B_P[1:] != masks_B_P[:-1]).any(1)
    first_U = new_B.nonzero().squeeze(-1)
    counts_U = torch.diff(torch.cat([first_U, torch.tensor([B], device=device)]))
    index_B = torch.repeat_interleave(counts_U, output_size=B)  # the one host sync; each layer then only gathers
    rep = lambda x: x.index_select(0, index_B)  # noqa: E731
    ids_U_P, mask_U_P = prompts_B_P[first_U], masks_B_P[first_U].bool()
    decoder = model.get_decoder()

    x, cos, sin, pos_U_P, mask_U_1_P_P = prompt_inputs(decoder, ids_U_P, mask_U_P)
    prompt_kv = []

    def over_prompt(i, q, k, v):
        prompt_kv.append((k, v))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_U_1_P_P, enable_gqa=True)

    fn = pointwise(device)
    h_U_P_H = run_layers(model, x, cos, sin, over_prompt, fn)

    pos_B_T = rep(pos_U_P[:, -1:] + 1) + torch.arange(T, device=device)[None]
    causal_T_T = torch.ones(T, T, dtype=torch.bool, device=device).tril()
    mask_B_1_T_L = torch.cat([rep(mask_U_P)[:, None, :].expand(B, T, P), causal_T_T.expand(B, T, T)], dim=-1)[:, None]
    x = decoder.embed_tokens(batch.response_ids_B_T)
    cos, sin = decoder.rotary_emb(x, pos_B_T)

    def over_prompt_and_response(i, q, k, v):
        pk, pv = prompt_kv[i]
        return F.scaled_dot_product_attention(q, torch.cat([rep(pk), k], dim=2), torch.cat([rep(pv), v], dim=2),
                                              attn_mask=mask_B_1_T_L, enable_gqa=True)

    h_B_T_H = run_layers(model, x, cos, sin, over_prompt_and_response, fn)
    return torch.cat([rep(h_U_P_H[:, -1:]), h_B_T_H[:, :-1]], dim=1)


def supports(model) -> bool:
    """Qwen3-architecture decoders (the toy models and every Qwen3 config here)."""
    return getattr(model.config, "model_type", None) == "qwen3"


class StaticDecoder:
    """Prefill + decode steps for a batch of B sequences over a fixed-capacity KV cache."""

    def __init__(self, model, batch_size: int, prompt_capacity: int, max_new_tokens: int, use_graphs: bool,
                 attention: str = "auto"):
        """``use_graphs`` captures decode steps as CUDA graphs (GPU only); eager steps can drop finished rows.
        ``attention``: ``sdpa`` (PyTorch's fused kernel), ``matmul`` (two batched matmuls and a softmax)
        or ``auto`` (sdpa on GPU, matmul on CPU)."""
        self.model, self.decoder = model, model.get_decoder()
        cfg = model.config
        self.B, self.Pc, self.Tmax = batch_size, prompt_capacity, max_new_tokens
        # Short rollouts get short buckets (less of the cache read in vain), long ones few graphs to capture.
        self.bucket = min(MAX_BUCKET, max(64, -(-max_new_tokens // (64 * MAX_GRAPHS)) * 64))
        self.capacity = prompt_capacity + max_new_tokens
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        shape = (batch_size, cfg.num_key_value_heads, self.capacity, cfg.head_dim)
        self.k = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(cfg.num_hidden_layers)]
        self.v = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(cfg.num_hidden_layers)]
        self.valid_B_L = torch.zeros(batch_size, self.capacity, dtype=torch.bool, device=self.device)
        # Decode-step inputs and outputs live in fixed buffers so a captured graph can be replayed.
        self.token_B = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        self.pos_B = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        self.col = torch.zeros(1, dtype=torch.long, device=self.device)
        self.inv_temperature = torch.ones((), dtype=torch.float32, device=self.device)
        self.next_B = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        self.next_logp_B = torch.zeros(batch_size, dtype=torch.float32, device=self.device)
        self.use_graphs = use_graphs and self.device.type == "cuda"
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.pool = None
        self.attention = attention if attention != "auto" else ("sdpa" if self.device.type == "cuda" else "matmul")
        # fused kernels for the decode step when it is captured (compiled at the first warm-up, before capture)
        self.fn = pointwise(self.device, static_shapes=True) if self.use_graphs else POINTWISE

    # ------------------------------------------------------------------------------ the forward pass
    def _layers(self, x_B_S_H, cos, sin, attend_fn):
        return run_layers(self.model, x_B_S_H, cos, sin, attend_fn, self.fn, fused=True)

    def _sample(self, h_B_H) -> None:
        """Exact sampling from softmax(logits / T) into ``next_B``, with its log-prob into ``next_logp_B``."""
        logits = self.model.get_output_embeddings()(h_B_H)
        if self.use_graphs:  # no host synchronisation: capturable
            token, logp = self.fn["race_sample"](logits, self.inv_temperature,
                                                 torch.empty(logits.shape, device=self.device).exponential_(1.0))
            self.next_B.copy_(token)
            self.next_logp_B.copy_(logp)
            return
        # inverse CDF: the same distribution, one uniform per row instead of V exponentials (CPU)
        logp_B_V = torch.log_softmax(logits.float() * self.inv_temperature, dim=-1)
        cdf_B_V = logp_B_V.exp().cumsum(-1)
        u_B_1 = torch.rand(cdf_B_V.shape[0], 1, device=cdf_B_V.device) * cdf_B_V[:, -1:]
        self.next_B.copy_(torch.searchsorted(cdf_B_V, u_B_1, right=True).squeeze(-1).clamp(max=cdf_B_V.shape[1] - 1))
        self.next_logp_B.copy_(logp_B_V.gather(-1, self.next_B[:, None]).squeeze(-1))

    @torch.no_grad()
    def prefill(self, ids_U_P: torch.Tensor, mask_U_P: torch.Tensor, counts_U: torch.Tensor, temperature: float) -> None:
        """Write U distinct (left-padded) prompts into the cache, each into ``counts_U`` rows (a prompt's
        samples share its prefill), and sample every row's first response token independently."""
        U, P = ids_U_P.shape
        assert int(counts_U.sum()) == self.B and P <= self.Pc
        index_B = torch.repeat_interleave(counts_U, output_size=self.B)
        rep = lambda x: x.index_select(0, index_B)  # noqa: E731
        self.valid_B_L.zero_()
        self.valid_B_L[:, self.Pc - P : self.Pc] = rep(mask_U_P.bool())
        self.inv_temperature.fill_(1.0 / temperature)
        x, cos, sin, pos_U_P, mask_U_1_P_P = prompt_inputs(self.decoder, ids_U_P, mask_U_P)

        def over_prompt(i, q, k, v):
            self.k[i][:, :, self.Pc - P : self.Pc] = rep(k)
            self.v[i][:, :, self.Pc - P : self.Pc] = rep(v)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_U_1_P_P, enable_gqa=True)

        fn, self.fn = self.fn, POINTWISE  # prefill shapes change every rollout: eager, never recompiled
        try:
            h = self._layers(x, cos, sin, over_prompt)
        finally:
            self.fn = fn
        self._sample(rep(h[:, -1]))
        self.pos_B.copy_(rep(pos_U_P[:, -1]) + 1)  # the position of response token 0, fed at the first decode step

    def _decode(self, attend: int) -> None:
        """One decode step: feed ``token_B`` at column ``col``, sample the next token."""
        self.valid_B_L.index_fill_(1, self.col, True)
        mask = self.valid_B_L[:, None, None, :attend]
        if self.attention == "sdpa":  # as an additive bias, made once a step (SDPA would convert it in every layer)
            mask = torch.zeros(mask.shape, dtype=self.dtype, device=self.device).masked_fill_(~mask, float("-inf"))
        x = self.decoder.embed_tokens(self.token_B[:, None])
        cos, sin = self.decoder.rotary_emb(x, self.pos_B[:, None])

        def over_cache(i, q, k, v):
            self.k[i].index_copy_(2, self.col, k)
            self.v[i].index_copy_(2, self.col, v)
            return self._one_query_attention(q, self.k[i][:, :, :attend], self.v[i][:, :, :attend], mask)

        self._sample(self._layers(x, cos, sin, over_cache)[:, 0])

    def _one_query_attention(self, q_B_h_1_D, k_B_g_L_D, v_B_g_L_D, mask_B_1_1_L):
        """Attention of one new token per row over the cache: SDPA's fused kernel, or two small batched
        matmuls (several times faster on CPU than SDPA with a boolean mask for a single query)."""
        if self.attention == "sdpa":
            return F.scaled_dot_product_attention(q_B_h_1_D, k_B_g_L_D, v_B_g_L_D, attn_mask=mask_B_1_1_L, enable_gqa=True)
        B, h, _, D = q_B_h_1_D.shape
        g = k_B_g_L_D.shape[1]
        q_B_g_r_D = q_B_h_1_D.view(B, g, h // g, D)  # query heads grouped by the KV head they share
        scores_B_g_r_L = (q_B_g_r_D @ k_B_g_L_D.transpose(-1, -2)) * D ** -0.5
        scores_B_g_r_L = scores_B_g_r_L.masked_fill(~mask_B_1_1_L, float("-inf"))
        out_B_g_r_D = torch.softmax(scores_B_g_r_L, dim=-1) @ v_B_g_L_D
        return out_B_g_r_D.reshape(B, h, 1, D)

    def keep_rows(self, rows_R: torch.Tensor) -> None:
        """Drop every row not in ``rows_R`` (finished sequences) from the cache and the step buffers (eager only)."""
        assert not self.use_graphs, "captured graphs need fixed shapes"
        self.k = [c.index_select(0, rows_R) for c in self.k]
        self.v = [c.index_select(0, rows_R) for c in self.v]
        for name in ("valid_B_L", "token_B", "pos_B", "next_B", "next_logp_B"):
            setattr(self, name, getattr(self, name).index_select(0, rows_R))
        self.B = rows_R.numel()

    def step(self, t: int) -> None:
        """Decode step t (t >= 1): ``token_B`` (response token t-1, at position ``pos_B``) is fed, token t is
        sampled into ``next_B``; replays a graph on GPU. The caller advances ``pos_B`` afterwards."""
        self.col.fill_(self.Pc + t - 1)
        if not self.use_graphs:  # eager: attend over exactly the columns written so far
            self._decode(self.Pc + t)
            return
        attend = min(self.Pc + ((t - 1) // self.bucket + 1) * self.bucket, self.capacity)
        if attend not in self.graphs:
            self.graphs[attend] = self._capture(attend)
        self.graphs[attend].replay()

    def _capture(self, attend: int) -> torch.cuda.CUDAGraph:
        # Warm up on a side stream (cuBLAS workspaces, lazy inits), then capture; the cache and the valid
        # mask are rewritten by the real replay, so the warm-up's writes at `col` are harmless.
        snapshot = (self.valid_B_L.clone(), self.next_B.clone(), self.next_logp_B.clone())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._decode(attend)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            self._decode(attend)
        self.pool = graph.pool()
        self.valid_B_L.copy_(snapshot[0])  # undo the warm-up and capture runs' side effects
        self.next_B.copy_(snapshot[1])
        self.next_logp_B.copy_(snapshot[2])
        return graph
