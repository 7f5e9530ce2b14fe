"""A stand-in for slime's train.py (test code: see README.md). It trains nothing."""

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import load_file, save_file

from suite.slime.flags import TRAIN, read_flag_list

unknown = read_flag_list().unknown(TRAIN, sys.argv[1:])
if unknown:
    sys.exit(f"[slime stand-in] flags slime does not have: {unknown}")
parser = argparse.ArgumentParser()
for flag in ("--hf-checkpoint", "--ref-load", "--load", "--save", "--prompt-data", "--input-key", "--label-key",
             "--custom-reward-post-process-path", "--rm-url"):
    parser.add_argument(flag, required=True)
for flag in ("--num-rollout", "--save-interval", "--n-samples-per-prompt", "--seed"):
    parser.add_argument(flag, type=int, required=True)
args, _ = parser.parse_known_args()


def latest(checkpoint_dir: Path) -> tuple[int, Path] | None:
    """Megatron's view of a --load / --ref-load directory: (iteration, weights dir), or None when empty."""
    tracker = checkpoint_dir / "latest_checkpointed_iteration.txt"
    if tracker.is_file():
        iteration = int(tracker.read_text())
        return iteration, checkpoint_dir / f"iter_{iteration:07d}"
    if (checkpoint_dir / "config.json").is_file():  # an HF directory: slime loads HF weights itself
        return -1, checkpoint_dir
    return None


# The prompt data has the keys the flags name.
first = json.loads(Path(args.prompt_data).read_text().splitlines()[0])
assert isinstance(first[args.input_key], list) and first[args.label_key], first

# The reward hook, imported and called as slime does: in the job's environment, on one prompt's samples.
module, _, name = args.custom_reward_post_process_path.rpartition(".")
hook = getattr(importlib.import_module(module), name)
teacher_answer = {"meta_info": {"input_token_logprobs": [[None, 1, None]] + [[-0.5, t, None] for t in range(8)]}}
samples = [SimpleNamespace(response=f"Answer: {first[args.label_key]}" if i == 0 else "no answer",
                           label=first[args.label_key], response_length=3, reward=teacher_answer, group_index=0)
           for i in range(args.n_samples_per_prompt)]
raw, rewards = hook(SimpleNamespace(n_samples_per_prompt=args.n_samples_per_prompt), samples)
print(f"[slime stand-in] reward hook: raw {raw} -> {rewards}", flush=True)
assert samples[0].teacher_log_probs == [-0.5] * 3

save = Path(args.save)
start = latest(Path(args.load)) or latest(Path(args.ref_load))
if start is None:
    sys.exit(f"[slime stand-in] nothing to load at --load {args.load} or --ref-load {args.ref_load}")
iteration, weights_dir = start
weights = load_file(weights_dir / "model.safetensors")
for rollout_id in range(iteration + 1, args.num_rollout):
    if (rollout_id + 1) % args.save_interval and rollout_id != args.num_rollout - 1:
        continue  # slime saves when (rollout_id + 1) % save_interval == 0 and at the last rollout
    gen = torch.Generator().manual_seed(args.seed * 1000 + rollout_id)
    weights = {k: v + 0.02 * v.std() * torch.randn(v.shape, generator=gen) if v.is_floating_point() and v.numel() > 1
               else v for k, v in weights.items()}
    out = save / f"iter_{rollout_id:07d}"
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, out / "model.safetensors")
    torch.save({"args": {"iteration": rollout_id}}, out / "common.pt")
    (out / ".metadata").write_text("stand-in")
    (save / "latest_checkpointed_iteration.txt").write_text(str(rollout_id))
    print(f"[slime stand-in] saved {out}", flush=True)
print(f"[slime stand-in] done; env OPD_SUITE_ADVANTAGE_MODE={os.environ['OPD_SUITE_ADVANTAGE_MODE']}", flush=True)
