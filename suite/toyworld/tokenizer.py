"""A small byte-level BPE tokenizer with Qwen3's special tokens and chat template.

Built with ``tokenizers`` the way Qwen2/3's ``tokenizer.json`` is laid out (same pre-tokenizer
regex, so every digit is its own token), and saved as a ``PreTrainedTokenizerFast`` with the chat
template in ``tokenizer_config.json`` so transformers 4.x (SGLang, vLLM) and 5.x both load it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

# Qwen2/Qwen3's pre-tokenizer pattern: single digits, words, punctuation runs, newlines.
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
THINK, END_THINK = "<think>", "</think>"
SPECIAL = (PAD, IM_START, IM_END)  # ids 0, 1, 2
NON_SPECIAL_ADDED = (THINK, END_THINK)  # Qwen3 keeps these visible in decoded text

# Qwen3's template reduced to what the toy world needs: plain turns, and an empty think block
# after the generation prompt when enable_thinking is false.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL) + list(NON_SPECIAL_ADDED),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return tok


def save_tokenizer(tok: Tokenizer, out_dir: Path, model_max_length: int) -> None:
    """Write tokenizer.json + tokenizer_config.json + special_tokens_map.json (4.x and 5.x loadable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))
    # Mark think tokens as non-special added tokens, the way Qwen3 ships them.
    data = json.loads((out_dir / "tokenizer.json").read_text())
    for entry in data["added_tokens"]:
        entry["special"] = entry["content"] in SPECIAL
    (out_dir / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
    added = {
        str(e["id"]): {
            "content": e["content"], "lstrip": False, "normalized": False,
            "rstrip": False, "single_word": False, "special": e["special"],
        }
        for e in data["added_tokens"]
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": PAD,
        "unk_token": None,
        "additional_special_tokens": [IM_START, IM_END],
        "model_max_length": model_max_length,
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special_map = {"eos_token": IM_END, "pad_token": PAD, "additional_special_tokens": [IM_START, IM_END]}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
