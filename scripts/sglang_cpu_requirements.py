"""Print sglang's install requirements minus the CUDA-only ones (used by setup_sglang_cpu.sh)."""

from importlib.metadata import requires

from packaging.requirements import Requirement

CUDA_ONLY = ("sglang-kernel", "sgl-kernel", "flashinfer", "flash-attn", "flash_attn", "cuda-python", "nvidia-",
             "nvshmem", "sgl-deep-ep", "sgl-deep-gemm", "sgl-flash-mla", "deep-ep", "deep-gemm", "quack-kernels",
             "humming-kernels", "tilelang", "torch", "torchvision", "torchaudio", "torchcodec", "torch_memory_saver",
             "torch-memory-saver", "timm", "apache-tvm-ffi", "deepseek-recipe", "kernels")

for line in requires("sglang") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    name = req.name.lower()
    if any(name == c or (c.endswith("-") and name.startswith(c)) or name.startswith(c + "[") or
           (c in ("flashinfer", "flash-attn", "flash_attn", "nvshmem") and name.startswith(c)) for c in CUDA_ONLY):
        continue
    print(str(req).split(";")[0].strip())
