"""Build the toy world: data splits, tokenizer, teacher and student checkpoints.

    python -m suite.toyworld.build            # build if missing or stale, else reuse
    python -m suite.toyworld.build --force    # rebuild
    python -m suite.toyworld.build --out DIR  # build somewhere else (the reproduction test does)

Deterministic: one seed, one CPU thread, deterministic torch kernels. Cached: a build is reused
when ``manifest.json`` records the same build-config hash. The committed checkpoints in
``artifacts/toy`` were made by this command, so a fresh clone skips training.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from suite.paths import TOY_DATA_DIR, TOY_MODELS_DIR
from suite.toyworld.problems import make_splits
from suite.toyworld.sft import ModelSpec, SFTSpec, greedy_accuracy, new_model, sft
from suite.toyworld.tokenizer import save_tokenizer, train_tokenizer

BUILD_FORMAT = 1  # bump when the build code changes what it produces


@dataclass(frozen=True)
class ToyBuildConfig:
    seed: int = 0
    n_eval: int = 500
    n_dev: int = 300
    vocab_size: int = 1024  # BPE saturates below this on the toy corpus
    max_positions: int = 512
    teacher: ModelSpec = ModelSpec(128, 3, 384, 4, 2, 32)
    teacher_sft: SFTSpec = SFTSpec(max_steps=1600, batch_size=64, lr=3e-3, warmup_steps=30, first_check=600,
                                   check_every=100, stop_at_dev_acc=0.92, thinking_fraction=0.8)
    student: ModelSpec = ModelSpec(64, 2, 256, 2, 1, 32)
    # The student's starting accuracy is a dial: stop at the first dev check >= 30%.
    student_sft: SFTSpec = SFTSpec(max_steps=1500, batch_size=64, lr=3e-3, warmup_steps=30, first_check=250,
                                   check_every=25, stop_at_dev_acc=0.30, thinking_fraction=0.8)
    format: int = field(default=BUILD_FORMAT)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def write_splits(cfg: ToyBuildConfig, data_dir: Path) -> dict[str, list[dict]]:
    """Write train/dev/eval JSONL (dapo-math schema + solution) and return the rows."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = {name: [p.row() for p in probs] for name, probs in make_splits(cfg.seed, cfg.n_eval, cfg.n_dev).items()}
    for name, split_rows in rows.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in split_rows)
        (data_dir / f"{name}.jsonl").write_text(text)
    return rows


def _corpus(rows: dict[str, list[dict]]):
    from suite.toyworld.problems import worked_solution

    for split_rows in rows.values():
        for r in split_rows:
            yield r["prompt"][0]["content"]
            yield worked_solution(r["solution"], r["label"], thinking=True)


def is_current(models_dir: Path, cfg: ToyBuildConfig) -> bool:
    manifest = models_dir / "manifest.json"
    if not manifest.exists():
        return False
    recorded = json.loads(manifest.read_text()).get("build_config_hash")
    return recorded == cfg.digest() and all((models_dir / m / "model.safetensors").exists() for m in ("teacher", "student"))


def _build_model(role: str, cfg: ToyBuildConfig, tok, rows, out_dir: Path, tok_dir: Path, log) -> dict:
    spec, sft_spec = (cfg.teacher, cfg.teacher_sft) if role == "teacher" else (cfg.student, cfg.student_sft)
    seed = cfg.seed + (1 if role == "teacher" else 2)
    model = new_model(spec, tok, cfg.max_positions, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{role}: {n_params:,} parameters, SFT up to {sft_spec.max_steps} steps")
    stats = sft(model, tok, rows["train"], rows["dev"], sft_spec, seed, log=log)
    stats["eval_accuracy_greedy"] = greedy_accuracy(model, tok, rows["eval"])
    log(f"{role}: stopped at step {stats['steps']}, dev {stats['dev_accuracy']:.3f}, "
        f"eval {stats['eval_accuracy_greedy']:.3f} ({stats['seconds']}s)")
    target = out_dir / role
    model.save_pretrained(target, safe_serialization=True)
    for f in tok_dir.iterdir():
        shutil.copy(f, target / f.name)
    return {"parameters": n_params, **stats}


def build(cfg: ToyBuildConfig = ToyBuildConfig(), models_dir: Path = TOY_MODELS_DIR, data_dir: Path = TOY_DATA_DIR,
          force: bool = False, log=print) -> dict:
    """Build (or reuse) the toy world; returns the manifest. Writes to a temp dir, then swaps in."""
    if not force and is_current(models_dir, cfg):
        log(f"toy world is current in {models_dir} (build {cfg.digest()})")
        return json.loads((models_dir / "manifest.json").read_text())
    import torch
    from transformers import PreTrainedTokenizerFast

    threads = min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)  # a fixed thread count keeps float reductions, hence the build, repeatable
    torch.use_deterministic_algorithms(True)
    start = time.time()
    rows = write_splits(cfg, data_dir)
    log("splits: " + ", ".join(f"{k} {len(v)}" for k, v in rows.items()) + f" -> {data_dir}")
    models_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".toy-build-", dir=models_dir.parent))
    tok_dir = staging / "tokenizer"
    save_tokenizer(train_tokenizer(_corpus(rows), cfg.vocab_size), tok_dir, cfg.max_positions)
    tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    manifest = {"build_config_hash": cfg.digest(), "config": dataclasses.asdict(cfg), "vocab_size": len(tok),
                "torch": torch.__version__,
                "threads": threads}
    for role in ("teacher", "student"):
        manifest[role] = _build_model(role, cfg, tok, rows, staging, tok_dir, log)
    shutil.rmtree(tok_dir)  # each checkpoint carries its own copy
    manifest["build_seconds"] = round(time.time() - start, 1)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    # Swap in only a complete build: a crash above never leaves a half-written world.
    if models_dir.exists():
        shutil.rmtree(models_dir)
    os.replace(staging, models_dir)
    log(f"toy world built in {manifest['build_seconds']}s -> {models_dir}")
    return manifest


def ensure_toy_world(log=print) -> dict:
    """Reuse the committed/cached toy world, building it only when missing or stale."""
    return build(log=log)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TOY_MODELS_DIR, help="checkpoint directory")
    parser.add_argument("--data-out", type=Path, default=TOY_DATA_DIR, help="split directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    args = parser.parse_args(argv)
    build(models_dir=args.out, data_dir=args.data_out, force=args.force)


if __name__ == "__main__":
    main()
