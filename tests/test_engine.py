# Run: pytest tests/test_engine.py
"""Rollout engines: the static-cache engine samples the same policy, in the same layout, from the current weights."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from suite.config import ROLLOUT_ENGINES
from suite.data import train_rows
from suite.paths import TOY_MODELS_DIR
from suite.training.engine import ENGINES, GenerateEngine, StaticEngine
from suite.training.policy import PolicyHead, Precision, sequence_logprobs
from suite.training.rollout import encode_prompts

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def student():
    return AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "student"), AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "student")


def _chats(n, repeats=1):
    return [r["prompt"] for r in train_rows("toy_arith", "local")[:n] for _ in range(repeats)]


def test_every_configurable_engine_exists():
    assert set(ROLLOUT_ENGINES) == set(ENGINES)


def test_decode_step_samples_follow_the_softmax(student):
    """The second token's frequencies, given the most common first token, match the model's softmax at T=2."""
    model, tok = student
    engine, temperature, n = StaticEngine(model, tok, torch.float32, CPU, True), 2.0, 6000
    chat = _chats(1)[0]
    torch.manual_seed(0)
    batch = engine.sample([chat] * n, temperature, 2, True)
    first, second = batch.response_ids_B_T[:, 0], batch.response_ids_B_T[:, 1]
    token = torch.mode(first).values.item()
    picked = second[(first == token) & (batch.response_mask_B_T[:, 1] > 0)]
    assert picked.numel() > 1000, "the test needs a frequent first token"
    enc = encode_prompts(tok, [chat], enable_thinking=True)
    ids = torch.cat([enc["input_ids"], torch.tensor([[token]])], dim=1)
    with torch.no_grad():
        probs_V = torch.softmax(model(input_ids=ids).logits[0, -1] / temperature, dim=-1)
    counts = torch.bincount(picked, minlength=probs_V.numel()).float() / picked.numel()
    assert (counts - probs_V).abs().sum().item() / 2 < 0.08  # total variation
    assert (probs_V.max() - counts[probs_V.argmax()]).abs() < 0.04


@pytest.mark.parametrize("engine_cls", [GenerateEngine, StaticEngine])
def test_first_token_frequencies_follow_the_softmax(student, engine_cls):
    """At T=4 much of the mass lies outside the top 50 tokens: a hidden top_k=50 would drop it."""
    model, tok = student
    temperature, n, chat = 4.0, 6000, _chats(1)[0]
    with torch.no_grad():
        probs_V = torch.softmax(model(**encode_prompts(tok, [chat], True)).logits[0, -1] / temperature, dim=-1)
    assert 1 - probs_V.topk(50).values.sum().item() > 0.2, "test needs a spread distribution"
    torch.manual_seed(0)
    first_B = engine_cls(model, tok, torch.float32, CPU, True).sample([chat] * n, temperature, 1, True).response_ids_B_T[:, 0]
    counts = torch.bincount(first_B, minlength=probs_V.numel()).float() / n
    assert (counts - probs_V).abs().sum().item() / 2 < 0.12


def test_reported_logprobs_equal_the_trainers_recomputation(student):
    model, tok = student
    torch.manual_seed(1)
    batch = StaticEngine(model, tok, torch.float32, CPU, True).sample(_chats(8, 2), 1.0, 48, True)
    again = sequence_logprobs(PolicyHead(model), batch, 16, Precision(torch.float32, CPU))
    mask = batch.response_mask_B_T
    assert torch.allclose(batch.sample_logp_B_T * mask, again * mask, atol=1e-4)
    assert (batch.sample_logp_B_T * (1 - mask)).abs().max() == 0


def test_near_greedy_samples_and_layout_equal_generate(student):
    """At T=0.01 both engines decode greedily: the same tokens, EOS cuts, padding and truncation flags."""
    model, tok = student
    chats = _chats(12, 2)
    torch.manual_seed(2)
    ref = GenerateEngine(model, tok, torch.float32, CPU, True).sample(chats, 0.01, 24, True)
    got = StaticEngine(model, tok, torch.float32, CPU, True).sample(chats, 0.01, 24, True)
    assert ref.prompt_width == got.prompt_width
    for name in ("input_ids_B_L", "attention_mask_B_L", "response_mask_B_T", "truncated_B"):
        assert torch.equal(getattr(ref, name), getattr(got, name)), name
    assert ref.truncated_B.any() and not ref.truncated_B.all(), "the test needs both kinds of response"


@pytest.mark.parametrize("engine_cls", [GenerateEngine, StaticEngine])
def test_a_copy_engine_samples_from_the_weights_it_was_synced_to(student, engine_cls):
    """With its own copy (bf16 on GPU; float32 here), the engine follows the trainer only after sync()."""
    _, tok = student
    model = AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "student")
    engine = engine_cls(model, tok, torch.float32, CPU, share_weights=False)
    assert engine.model is not model
    def greedy(e):  # near-greedy, same RNG stream each time: equal weights give equal samples
        torch.manual_seed(0)
        return e.sample(_chats(8), 0.01, 24, True).input_ids_B_L

    old = greedy(engine_cls(model, tok, torch.float32, CPU, True))  # the same engine on the trainer's own tensors
    with torch.no_grad():  # an "optimizer step" that changes the greedy responses
        torch.manual_seed(4)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    new = greedy(engine_cls(model, tok, torch.float32, CPU, True))
    assert not torch.equal(old, new), "the perturbation should change the responses"
    assert torch.equal(greedy(engine), old)  # not synced yet: the old policy
    engine.sync(model)
    assert torch.equal(greedy(engine), new)
    theirs, mine = model.state_dict(), engine.model.state_dict()
    assert all(torch.equal(theirs[k], mine[k]) for k in theirs)
