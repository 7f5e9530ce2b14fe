"""On-policy rollouts: sample responses from the student's true policy and lay them out for training.

Layout of a :class:`RolloutBatch` (B sequences, prompt width P, response width T)::

    input_ids_B_L = [pad .. pad | prompt tokens | response tokens | pad .. pad]   (L = P + T)
                     <------------- P -------------> <------------ T ------------>

Prompts are left-padded (RoPE makes a constant position offset harmless), responses are cut after
the first ``<|im_end|>`` (which stays in the loss), and ``response_mask_B_T`` marks the kept tokens.
The logits that predict response token t sit at position ``P - 1 + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# transformers' generate() applies top_k=50 by default when sampling; top_k=0 and top_p=1.0 turn
# every filter off so samples follow softmax(logits / T) exactly (tests/test_rollout.py checks it).
TRUE_POLICY = {"do_sample": True, "top_k": 0, "top_p": 1.0, "min_p": None, "typical_p": 1.0,
               "repetition_penalty": 1.0}


@dataclass
class RolloutBatch:
    input_ids_B_L: torch.Tensor
    attention_mask_B_L: torch.Tensor
    response_mask_B_T: torch.Tensor  # float, 1.0 on kept response tokens
    prompt_width: int
    truncated_B: torch.Tensor  # bool: no <|im_end|> within the length limit
    sample_logp_B_T: torch.Tensor | None = None  # the sampler's log-prob of each token at its temperature, if reported

    @property
    def response_ids_B_T(self) -> torch.Tensor:
        return self.input_ids_B_L[:, self.prompt_width :]

    @property
    def response_lengths_B(self) -> torch.Tensor:
        return self.response_mask_B_T.sum(dim=1)

    def to(self, device) -> "RolloutBatch":
        logp = None if self.sample_logp_B_T is None else self.sample_logp_B_T.to(device)
        return RolloutBatch(self.input_ids_B_L.to(device), self.attention_mask_B_L.to(device),
                            self.response_mask_B_T.to(device), self.prompt_width, self.truncated_B.to(device), logp)


def encode_prompts(tok, chats: list[list[dict]], enable_thinking: bool) -> dict[str, torch.Tensor]:
    texts = [tok.apply_chat_template(c, add_generation_prompt=True, enable_thinking=enable_thinking, tokenize=False)
             for c in chats]
    tok.padding_side = "left"
    return tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)


@torch.no_grad()
def sample_rollouts(model, tok, chats: list[list[dict]], temperature: float, max_new_tokens: int,
                    enable_thinking: bool) -> RolloutBatch:
    """Sample one response per chat from ``model`` at ``temperature`` with no top-k/top-p filtering."""
    model.eval()
    enc = {k: v.to(model.device) for k, v in encode_prompts(tok, chats, enable_thinking).items()}
    out_B_L = model.generate(**enc, temperature=temperature, max_new_tokens=max_new_tokens,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **TRUE_POLICY)
    prompt_width = enc["input_ids"].shape[1]
    return layout(enc["input_ids"], enc["attention_mask"], out_B_L[:, prompt_width:], tok.eos_token_id, tok.pad_token_id)


def layout(prompt_B_P: torch.Tensor, prompt_mask_B_P: torch.Tensor, response_B_T: torch.Tensor, eos_id: int,
           pad_id: int, sample_logp_B_T: torch.Tensor | None = None) -> RolloutBatch:
    """The :class:`RolloutBatch` of left-padded prompts and sampled responses: each response is cut
    after its first EOS (kept, in the loss); everything after it is padding; columns past the longest
    response are dropped."""
    is_eos_B_T = response_B_T == eos_id
    # Keep tokens up to and including the first EOS; everything after it is padding.
    eos_seen_before_B_T = torch.cumsum(is_eos_B_T.long(), dim=1) - is_eos_B_T.long()
    response_mask_B_T = (eos_seen_before_B_T == 0).float()
    width = max(int(response_mask_B_T.sum(1).max().item()), 1) if response_B_T.shape[0] else 0
    response_mask_B_T, response_B_T = response_mask_B_T[:, :width], response_B_T[:, :width]
    attention_mask_B_L = torch.cat([prompt_mask_B_P.to(response_mask_B_T.device), response_mask_B_T.long()], dim=1)
    ids_B_L = torch.cat([prompt_B_P.to(response_B_T.device), response_B_T], dim=1)
    input_ids_B_L = torch.where(attention_mask_B_L.bool(), ids_B_L, torch.full_like(ids_B_L, pad_id))
    if sample_logp_B_T is not None:
        sample_logp_B_T = sample_logp_B_T[:, :width] * response_mask_B_T
    return RolloutBatch(input_ids_B_L, attention_mask_B_L, response_mask_B_T, prompt_B_P.shape[1],
                        ~is_eos_B_T[:, :width].any(dim=1), sample_logp_B_T)


def decode_responses(tok, batch: RolloutBatch) -> list[str]:
    ids = batch.response_ids_B_T
    return [tok.decode(ids[i, : int(n)], skip_special_tokens=True) for i, n in enumerate(batch.response_lengths_B)]
