# Run: pytest tests/test_rollout.py
"""Rollouts sample from the true policy (no hidden top-k) and lay out responses as documented."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from suite.data import train_rows
from suite.paths import TOY_MODELS_DIR
from suite.training.rollout import decode_responses, encode_prompts, sample_rollouts
from suite.training.teacher import HFTeacher


@pytest.fixture(scope="module")
def student():
    return AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "student"), AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "student")


def test_first_token_frequencies_follow_the_softmax(student):
    """At T=4 much of the mass lies outside the top 50 tokens: transformers' default top_k=50 would drop it."""
    model, tok = student
    temperature, n = 4.0, 6000
    chat = train_rows("toy_arith", "local")[0]["prompt"]
    enc = encode_prompts(tok, [chat], enable_thinking=True)
    with torch.no_grad():
        probs_V = torch.softmax(model(**enc).logits[0, -1] / temperature, dim=-1)
    outside_top50 = 1 - probs_V.topk(50).values.sum().item()
    assert outside_top50 > 0.2, "test needs a spread distribution"
    torch.manual_seed(0)
    batch = sample_rollouts(model, tok, [chat] * n, temperature, max_new_tokens=1, enable_thinking=True)
    first_B = batch.response_ids_B_T[:, 0]
    top50 = set(probs_V.topk(50).indices.tolist())
    empirical_outside = sum(1 for t in first_B.tolist() if t not in top50) / n
    assert empirical_outside == pytest.approx(outside_top50, abs=0.03)
    counts = torch.bincount(first_B, minlength=probs_V.numel()).float() / n
    assert (counts - probs_V).abs().sum().item() / 2 < 0.12  # total variation, 6000 samples over a spread


def test_layout_masks_cut_after_first_eos(student):
    model, tok = student
    torch.manual_seed(0)
    chats = [r["prompt"] for r in train_rows("toy_arith", "local")[:16]]
    batch = sample_rollouts(model, tok, chats, 1.0, max_new_tokens=48, enable_thinking=True)
    B, L = batch.input_ids_B_L.shape
    assert batch.response_mask_B_T.shape == (B, L - batch.prompt_width)
    for i in range(B):
        n = int(batch.response_lengths_B[i])
        ids = batch.response_ids_B_T[i]
        if not batch.truncated_B[i]:
            assert ids[n - 1].item() == tok.eos_token_id and (ids[: n - 1] != tok.eos_token_id).all()
        assert (ids[n:] == tok.pad_token_id).all()
    assert len(decode_responses(tok, batch)) == B


def test_teacher_logprobs_align_with_a_per_sequence_forward(student):
    """Batched, padded scoring equals scoring each sequence alone (alignment and padding are right)."""
    model, tok = student
    teacher = HFTeacher(str(TOY_MODELS_DIR / "teacher"))
    torch.manual_seed(1)
    chats = [r["prompt"] for r in train_rows("toy_arith", "local")[:6]]
    batch = sample_rollouts(model, tok, chats, 1.0, max_new_tokens=48, enable_thinking=True)
    scores = teacher.score(batch, full=True, topk=4)
    hidden_size = teacher.model.config.hidden_size
    assert scores.hidden_B_T_H.shape == (*batch.response_mask_B_T.shape, hidden_size)
    for i in range(len(chats)):
        keep = batch.attention_mask_B_L[i].bool()
        ids = batch.input_ids_B_L[i][keep][None]
        n = int(batch.response_lengths_B[i])
        with torch.no_grad():
            logp = torch.log_softmax(teacher.model(input_ids=ids).logits[0, -n - 1 : -1], -1)
        alone = logp.gather(-1, ids[0, -n:, None]).squeeze(-1)
        assert torch.allclose(scores.logp_B_T[i, :n], alone, atol=1e-4)
        assert torch.allclose(scores.topk_logp_B_T_K[i, :n], logp.topk(4, -1).values, atol=1e-4)
        assert torch.equal(scores.topk_ids_B_T_K[i, :n], logp.topk(4, -1).indices)
        head_logits = scores.hidden_B_T_H[i, :n] @ scores.weight_V_H.T  # the hidden states reproduce the logits
        assert torch.allclose(torch.log_softmax(head_logits, -1), logp, atol=1e-4)


def test_the_sampled_path_never_asks_the_teacher_for_a_distribution(student):
    """sampled: token log-probs only; topk: (B, T, K); neither carries hidden states or a (B, T, V) tensor."""
    model, tok = student
    teacher = HFTeacher(str(TOY_MODELS_DIR / "teacher"))
    torch.manual_seed(2)
    batch = sample_rollouts(model, tok, [r["prompt"] for r in train_rows("toy_arith", "local")[:4]], 1.0,
                            max_new_tokens=16, enable_thinking=True)
    sampled = teacher.score(batch)
    assert sampled.logp_B_T.shape == batch.response_mask_B_T.shape
    assert sampled.hidden_B_T_H is None and sampled.weight_V_H is None and sampled.topk_ids_B_T_K is None
    topk = teacher.score(batch, topk=3)
    assert topk.topk_ids_B_T_K.shape == (*batch.response_mask_B_T.shape, 3) and topk.hidden_B_T_H is None
