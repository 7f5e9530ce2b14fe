"""Per-token log-probs, reverse KL and entropy from hidden states, chunk by chunk over positions.

The logits of a response token are ``h @ W.T`` (``W`` the LM head, vocabulary V). Building them for
every token at once is a (tokens x V) tensor: 74 GiB in float32 at the tutorial's 64 x 2048 tokens
and Qwen3's V = 151,936 (``shared/notes/real-shape-memory.md``). Here the LM head is applied to
``chunk_size`` positions at a time, forward and backward, so the extra memory is O(chunk_size x V)
whatever the number of tokens:

* forward: for each chunk, logits -> the per-token outputs (no graph kept);
* backward: for each chunk, the logits are recomputed and differentiated locally; the chunk's
  gradient w.r.t. the logits gives ``dh = dz @ W`` and ``dW += dz.T @ h``.

The per-token outputs are computed by the same functions as the unchunked path
(:mod:`suite.training.opd_math`), so values and gradients equal it up to float rounding
(``tests/test_lm_head.py`` checks both). Outputs, for the N tokens given:

* ``logp_N``: ``log p_s(y_t)`` of the given ids (differentiable);
* ``kl_N``: the reverse KL per position, ``sum_v p_s(v) (log p_s(v) - log p_t(v))``, exact against
  the teacher's own logits (``teacher_hidden_N_Ht @ teacher_weight.T``, computed chunk by chunk too),
  or over the teacher's top-K plus a tail bucket (:func:`opd_math.topk_reverse_kl`); differentiable
  w.r.t. the student only. None when no teacher distribution is given;
* ``entropy_N``: the student's entropy per position (a metric: no gradient).

Liger-kernel's fused linear JSD (beta=1) computes the same reverse KL on GPU; this pure-torch path
is used everywhere because it also runs on CPU and takes the top-K and sampled forms through one
code path (liger's compiled path also failed on a second shape here, see the note above).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from suite.training import opd_math
from suite.training.kernels import compiled_on_gpu

DEFAULT_CHUNK = 1024  # positions per chunk: ~0.6 GB of float32 logits at V = 151,936


@dataclass
class TeacherDistribution:
    """What the KL term needs of the teacher at the same N positions: its logits' inputs, or its top-K."""

    hidden_N_H: torch.Tensor | None = None  # exact KL: the teacher's final hidden states ...
    weight_V_H: torch.Tensor | None = None  # ... and its LM head
    topk_logp_N_K: torch.Tensor | None = None  # top-K KL: the teacher's top-K log-probs and ids
    topk_ids_N_K: torch.Tensor | None = None

    @property
    def mode(self) -> str:
        if self.hidden_N_H is not None:
            return "full"
        return "topk" if self.topk_ids_N_K is not None else "none"


@dataclass
class TokenStats:
    logp_N: torch.Tensor
    kl_N: torch.Tensor | None
    entropy_N: torch.Tensor | None  # only when asked for: an extra pass over the vocabulary


def _chunk_outputs(logits_C_V: torch.Tensor, ids_C: torch.Tensor, t_logits_C_V: torch.Tensor | None,
                   t_topk_logp_C_K: torch.Tensor | None, t_topk_ids_C_K: torch.Tensor | None,
                   entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(logp of ids, reverse KL or None, entropy or None) for one chunk of student logits (any dtype:
    the softmax runs in float32 without a float32 copy of the logits first). The KL is exact against
    the teacher's logits ``t_logits``, or over its top-K plus a tail; None when neither is given."""
    logp_C_V = torch.log_softmax(logits_C_V, dim=-1, dtype=torch.float32)
    logp_C = logp_C_V.gather(-1, ids_C[:, None]).squeeze(-1)
    entropy_C = None
    if entropy:
        with torch.no_grad():
            entropy_C = -(logp_C_V.exp() * logp_C_V).sum(-1)
    kl_C = None
    if t_logits_C_V is not None:
        # exact_reverse_kl re-normalises logp_C_V (a no-op in value); dropping it moves the last bits, and
        # the toy runs' trajectories with them (measured: one seed's accuracy 51.2 -> 38.6% over 150 steps)
        kl_C = opd_math.exact_reverse_kl(logp_C_V, t_logits_C_V)
    elif t_topk_ids_C_K is not None:
        kl_C = opd_math.topk_reverse_kl(logp_C_V, t_topk_logp_C_K.float(), t_topk_ids_C_K)
    return logp_C, kl_C, entropy_C


def _teacher_chunk(teacher: TeacherDistribution, sl: slice):
    """The teacher's inputs to the KL for positions ``sl``: (logits, top-K log-probs, top-K ids), None where absent."""
    if teacher.mode == "full":
        with torch.no_grad():
            t_w = teacher.weight_V_H
            return teacher.hidden_N_H[sl].to(t_w.dtype) @ t_w.T, None, None
    if teacher.mode == "topk":
        return None, teacher.topk_logp_N_K[sl], teacher.topk_ids_N_K[sl]
    return None, None, None


class _ChunkedLMHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden_N_H, weight_V_H, ids_N, teacher, chunk_size, compute_dtype, entropy, closed_form):
        w = weight_V_H.to(compute_dtype)
        n = hidden_N_H.shape[0]
        logp_N = hidden_N_H.new_zeros(n, dtype=torch.float32)
        kl_N = hidden_N_H.new_zeros(n, dtype=torch.float32) if teacher.mode != "none" else None
        entropy_N = hidden_N_H.new_zeros(n, dtype=torch.float32) if entropy else None
        outputs = compiled_on_gpu(_chunk_outputs, hidden_N_H.device)  # one pass over the chunk's logits
        for lo in range(0, n, chunk_size):
            sl = slice(lo, lo + chunk_size)
            logits_C_V = hidden_N_H[sl].to(compute_dtype) @ w.T
            logp_C, kl_C, ent_C = outputs(logits_C_V, ids_N[sl], *_teacher_chunk(teacher, sl), entropy)
            logp_N[sl] = logp_C
            if entropy_N is not None:
                entropy_N[sl] = ent_C
            if kl_N is not None:
                kl_N[sl] = kl_C
        ctx.save_for_backward(hidden_N_H, weight_V_H, ids_N)
        ctx.teacher, ctx.chunk_size, ctx.compute_dtype = teacher, chunk_size, compute_dtype
        ctx.closed_form = closed_form and teacher.mode != "topk"
        if entropy_N is not None:
            ctx.mark_non_differentiable(entropy_N)
        return logp_N, kl_N, entropy_N

    @staticmethod
    def backward(ctx, g_logp_N, g_kl_N, _g_entropy):
        hidden_N_H, weight_V_H, ids_N = ctx.saved_tensors
        cd, teacher = ctx.compute_dtype, ctx.teacher
        w = weight_V_H.to(cd)
        g_hidden = torch.zeros_like(hidden_N_H) if ctx.needs_input_grad[0] else None
        g_weight = torch.zeros(weight_V_H.shape, dtype=torch.float32, device=weight_V_H.device) \
            if ctx.needs_input_grad[1] else None
        if g_logp_N is None:
            g_logp_N = torch.zeros(ids_N.shape, dtype=torch.float32, device=ids_N.device)
        for lo in range(0, hidden_N_H.shape[0], ctx.chunk_size):
            sl = slice(lo, lo + ctx.chunk_size)
            h_C_H = hidden_N_H[sl].to(cd)
            logits_C_V = h_C_H @ w.T
            g_kl_C = g_kl_N[sl] if g_kl_N is not None else None
            if ctx.closed_form:
                t_logits_C_V = _teacher_chunk(teacher, sl)[0]
                grad_fn = compiled_on_gpu(opd_math.logits_grad, logits_C_V.device)
                g_logits_C_V = grad_fn(logits_C_V, ids_N[sl], g_logp_N[sl], t_logits_C_V, g_kl_C)
            else:
                g_logits_C_V = _autograd_logits_grad(logits_C_V, ids_N[sl], _teacher_chunk(teacher, sl),
                                                     g_logp_N[sl], g_kl_C)
            if g_hidden is not None:
                g_hidden[sl] = (g_logits_C_V @ w).to(hidden_N_H.dtype)
            if g_weight is not None:
                g_weight += (g_logits_C_V.T @ h_C_H).float()
        g_weight = g_weight.to(weight_V_H.dtype) if g_weight is not None else None
        return g_hidden, g_weight, None, None, None, None, None, None


def _autograd_logits_grad(logits_C_V, ids_C, teacher_chunk, g_logp_C, g_kl_C):
    """The chunk's gradient w.r.t. its logits by autograd through :func:`_chunk_outputs` (any KL form)."""
    logits_C_V = logits_C_V.detach().requires_grad_()
    with torch.enable_grad():
        logp_C, kl_C, _ = _chunk_outputs(logits_C_V, ids_C, *teacher_chunk, entropy=False)
        outs, grads = [logp_C], [g_logp_C]
        if kl_C is not None and g_kl_C is not None:
            outs.append(kl_C)
            grads.append(g_kl_C)
        (g_logits_C_V,) = torch.autograd.grad(outs, [logits_C_V], grads)
    return g_logits_C_V


def token_stats(hidden_N_H: torch.Tensor, weight_V_H: torch.Tensor, ids_N: torch.Tensor,
                teacher: TeacherDistribution | None = None, chunk_size: int = DEFAULT_CHUNK,
                compute_dtype: torch.dtype | None = None, entropy: bool = False,
                closed_form: bool | None = None) -> TokenStats:
    """Student log-probs of ``ids_N``, reverse KL to ``teacher`` and (``entropy``) the entropy, at N positions,
    chunked.

    ``compute_dtype`` is the matmul dtype (default: the hidden states'); the softmax and everything
    after it run in float32, as the unchunked path does. ``closed_form`` (default: on GPU) takes the
    logits' gradient from :func:`opd_math.logits_grad` (the token log-prob and exact KL; top-K always
    goes through autograd); CPU keeps autograd, which leaves the toy world's recorded runs bit-identical.
    """
    teacher = teacher or TeacherDistribution()
    cd = compute_dtype or hidden_N_H.dtype
    closed = hidden_N_H.is_cuda if closed_form is None else closed_form
    logp_N, kl_N, entropy_N = _ChunkedLMHead.apply(hidden_N_H, weight_V_H, ids_N, teacher, chunk_size, cd, entropy,
                                                   closed)
    return TokenStats(logp_N, kl_N, entropy_N)


@torch.no_grad()
def topk_logprobs(hidden_N_H: torch.Tensor, weight_V_H: torch.Tensor, k: int, chunk_size: int = DEFAULT_CHUNK,
                  compute_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``k`` log-probs and ids at each of N positions, (N, k) each, chunk by chunk."""
    cd = compute_dtype or hidden_N_H.dtype
    w = weight_V_H.to(cd)
    vals, ids = [], []
    for lo in range(0, hidden_N_H.shape[0], chunk_size):
        logp = torch.log_softmax(hidden_N_H[lo : lo + chunk_size].to(cd) @ w.T, dim=-1, dtype=torch.float32)
        top = logp.topk(k, dim=-1)
        vals.append(top.values)
        ids.append(top.indices)
    if not vals:
        return hidden_N_H.new_zeros(0, k, dtype=torch.float32), torch.zeros(0, k, dtype=torch.long, device=hidden_N_H.device)
    return torch.cat(vals), torch.cat(ids)
