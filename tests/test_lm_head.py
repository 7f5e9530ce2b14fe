# Run: pytest tests/test_lm_head.py
"""The chunked LM head equals the unchunked (N x V) computation: values and gradients, every KL form."""

import pytest
import torch

from suite.training import opd_math
from suite.training.lm_head import TeacherDistribution, token_stats, topk_logprobs

N, H, HT, V, K = 37, 16, 24, 101, 5  # N not a multiple of the chunk: the last chunk is short


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, H, generator=g, dtype=torch.float64).requires_grad_()
    w = (0.5 * torch.randn(V, H, generator=g, dtype=torch.float64)).requires_grad_()
    ids = torch.randint(0, V, (N,), generator=g)
    ht, wt = torch.randn(N, HT, generator=g, dtype=torch.float64), 0.5 * torch.randn(V, HT, generator=g, dtype=torch.float64)
    return h, w, ids, ht, wt


def _naive(h, w, ids, ht, wt, mode):
    logp_N_V = torch.log_softmax(h @ w.T, -1)  # the whole (N x V) tensor, as the trainer used to build
    logp = logp_N_V.gather(-1, ids[:, None]).squeeze(-1)
    t_logp_N_V = torch.log_softmax(ht @ wt.T, -1)
    if mode == "full":
        kl = opd_math.exact_reverse_kl(logp_N_V, t_logp_N_V)
    elif mode == "topk":
        top = t_logp_N_V.topk(K, -1)
        kl = opd_math.topk_reverse_kl(logp_N_V, top.values, top.indices)
    else:
        kl = None
    entropy = -(logp_N_V.exp() * logp_N_V).sum(-1)
    return logp, kl, entropy


# the logits' gradient by autograd (CPU default), or in closed form (GPU default; top-K always uses autograd)
@pytest.mark.parametrize("mode,closed_form", [("none", False), ("full", False), ("topk", False),
                                              ("none", True), ("full", True)])
@pytest.mark.parametrize("chunk", [1, 8, 1000])
def test_values_and_gradients_equal_the_unchunked_computation(mode, chunk, closed_form):
    h, w, ids, ht, wt = _inputs(0)
    g = torch.Generator().manual_seed(1)
    c_logp, c_kl = torch.randn(N, generator=g, dtype=torch.float64), torch.randn(N, generator=g, dtype=torch.float64)
    logp, kl, ent = _naive(h, w, ids, ht, wt, mode)
    loss = (c_logp * logp).sum() + ((c_kl * kl).sum() if kl is not None else 0)
    gh, gw = torch.autograd.grad(loss, [h, w])

    if mode == "full":
        teacher = TeacherDistribution(hidden_N_H=ht, weight_V_H=wt)
    elif mode == "topk":
        top = torch.log_softmax(ht @ wt.T, -1).topk(K, -1)
        teacher = TeacherDistribution(topk_logp_N_K=top.values, topk_ids_N_K=top.indices)
    else:
        teacher = None
    out = token_stats(h, w, ids, teacher, chunk_size=chunk, entropy=True, closed_form=closed_form)
    assert torch.allclose(out.logp_N, logp.float(), atol=1e-6)
    assert torch.allclose(out.entropy_N, ent.float(), atol=1e-6) and not out.entropy_N.requires_grad
    if kl is None:
        assert out.kl_N is None
    else:
        assert torch.allclose(out.kl_N, kl.float(), atol=1e-6) and (out.kl_N >= -1e-6).all()
    c_loss = (c_logp * out.logp_N).sum() + ((c_kl * out.kl_N).sum() if out.kl_N is not None else 0)
    c_gh, c_gw = torch.autograd.grad(c_loss, [h, w])
    assert torch.allclose(c_gh, gh, atol=1e-5, rtol=1e-4)
    assert torch.allclose(c_gw, gw, atol=1e-5, rtol=1e-4)


def test_kl_gradient_is_the_exact_reverse_kl_gradient():
    """d KL / d logits = p_s * (log p_s - log p_t - KL): checked through the chunked path on one position."""
    g = torch.Generator().manual_seed(3)
    h = torch.eye(V, dtype=torch.float64)[:1].requires_grad_()  # logits = row 0 of W^T, so dh = dlogits @ W
    w = torch.eye(V, dtype=torch.float64).requires_grad_()  # identity head: logits = h, dW = outer(dlogits, h)
    wt = torch.eye(V, dtype=torch.float64)
    ht = torch.randn(1, V, generator=g, dtype=torch.float64)
    out = token_stats(h, w, torch.tensor([0]), TeacherDistribution(hidden_N_H=ht, weight_V_H=wt), chunk_size=1)
    (gh,) = torch.autograd.grad(out.kl_N.sum(), [h])
    p, lp, lq = torch.softmax(h.detach(), -1), torch.log_softmax(h.detach(), -1), torch.log_softmax(ht, -1)
    kl = (p * (lp - lq)).sum()
    assert torch.allclose(gh.double(), p * (lp - lq - kl), atol=1e-6)


def test_topk_logprobs_equal_the_unchunked_topk():
    h, w, _, _, _ = _inputs(2)
    vals, ids = topk_logprobs(h.detach(), w.detach(), K, chunk_size=7)
    top = torch.log_softmax(h.detach() @ w.detach().T, -1).topk(K, -1)
    assert torch.equal(ids, top.indices) and torch.allclose(vals, top.values.float(), atol=1e-6)


def test_no_tensor_of_tokens_times_vocabulary_is_kept_for_backward():
    """What the graph saves is O(N x H + V x H), never N x V: the saved tensors are the inputs."""
    h, w, ids, ht, wt = _inputs(4)
    out = token_stats(h, w, ids, TeacherDistribution(hidden_N_H=ht, weight_V_H=wt), chunk_size=4)
    saved = out.logp_N.grad_fn.saved_tensors
    assert {tuple(t.shape) for t in saved} == {(N, H), (V, H), (N,)}


@pytest.mark.parametrize("with_kl", [False, True])
def test_closed_form_logits_gradient_equals_autograd(with_kl):
    g = torch.Generator().manual_seed(5)
    z, zt = (3 * torch.randn(9, V, generator=g, dtype=torch.float64) for _ in range(2))
    ids = torch.randint(0, V, (9,), generator=g)
    g_logp, g_kl = torch.randn(9, generator=g, dtype=torch.float64), torch.randn(9, generator=g, dtype=torch.float64)
    z_ = z.clone().requires_grad_()
    logp_V = torch.log_softmax(z_, -1)
    loss = (g_logp * logp_V.gather(-1, ids[:, None]).squeeze(-1)).sum()
    if with_kl:
        loss = loss + (g_kl * opd_math.exact_reverse_kl(logp_V, zt)).sum()
    (expected,) = torch.autograd.grad(loss, [z_])
    got = opd_math.logits_grad(z, ids, g_logp, zt if with_kl else None, g_kl if with_kl else None)
    assert got.dtype == z.dtype and torch.allclose(got, expected, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU path (compiled, closed-form gradient) needs CUDA")
@pytest.mark.parametrize("mode", ["none", "full"])
def test_cuda_closed_form_path_matches_autograd_in_bf16(mode):
    """On GPU the chunk outputs are compiled and the logits' gradient is closed-form: same result as autograd."""
    g = torch.Generator(device="cuda").manual_seed(0)
    n, h_dim, v = 300, 64, 5000
    h = torch.randn(n, h_dim, device="cuda", generator=g).bfloat16().requires_grad_()
    w = (0.2 * torch.randn(v, h_dim, device="cuda", generator=g)).bfloat16().requires_grad_()
    ids = torch.randint(0, v, (n,), device="cuda", generator=g)
    teacher = TeacherDistribution(hidden_N_H=torch.randn(n, h_dim, device="cuda", generator=g).bfloat16(),
                                  weight_V_H=(0.2 * torch.randn(v, h_dim, device="cuda", generator=g)).bfloat16()) \
        if mode == "full" else None
    grads = []
    for closed in (False, True):
        out = token_stats(h, w, ids, teacher, chunk_size=128, closed_form=closed)
        loss = out.logp_N.sum() + (out.kl_N.sum() if out.kl_N is not None else 0)
        grads.append(torch.autograd.grad(loss, [h, w]))
    for a, b in zip(*grads):
        assert (a.float() - b.float()).norm() / b.float().norm() < 1e-2
    # the compiled forward against the eager one on CPU, from the same bf16 inputs in float32
    cpu_teacher = None if teacher is None else TeacherDistribution(hidden_N_H=teacher.hidden_N_H.float().cpu(),
                                                                   weight_V_H=teacher.weight_V_H.float().cpu())
    ref = token_stats(h.detach().float().cpu(), w.detach().float().cpu(), ids.cpu(), cpu_teacher, chunk_size=128)
    assert torch.allclose(out.logp_N.detach().cpu(), ref.logp_N, atol=0.1, rtol=0.02)
    if ref.kl_N is not None:
        assert torch.allclose(out.kl_N.detach().cpu(), ref.kl_N, atol=0.05, rtol=0.05)
