"""A stand-in for slime's tools/convert_torch_dist_to_hf.py (test code: see ../README.md): the same flags;
the stand-in's iteration (model.safetensors + common.pt + .metadata) -> an HF checkpoint."""

import argparse
import shutil
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--input-dir", required=True)
parser.add_argument("--output-dir", required=True)
parser.add_argument("--origin-hf-dir", required=True)
args = parser.parse_args()
src, out, origin = Path(args.input_dir), Path(args.output_dir), Path(args.origin_hf_dir)
if out.exists():
    raise SystemExit(f"Output directory {out} already exists. Use --force to overwrite it.")
assert (src / "common.pt").is_file() and (src / ".metadata").is_file(), f"{src} is not a complete iteration"
out.mkdir(parents=True)
shutil.copyfile(src / "model.safetensors", out / "model.safetensors")
for f in origin.iterdir():  # config and tokenizer from the origin HF directory, as slime's converter does
    if f.is_file() and not f.name.endswith(".safetensors") and f.name != "model.safetensors.index.json":
        shutil.copyfile(f, out / f.name)
print(f"[slime stand-in] converted {src} -> {out}")
