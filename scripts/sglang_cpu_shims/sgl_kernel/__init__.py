"""Import shim for SGLang on a CPU without Intel AMX (installed only into .venv-sglang).

PyPI's sgl_kernel / sglang-kernel are CUDA builds. SGLang's CPU engine imports this module for
kernels (e.g. copy_all_layer_kv_cache_cpu) that it calls only on Intel AMX CPUs; on other CPUs
nothing here runs. Any attribute resolves to a function that raises, so a call would fail loudly.
"""


def __getattr__(name):
    def _unavailable(*args, **kwargs):
        raise NotImplementedError(f"sgl_kernel.{name}: no CPU build on PyPI (shim from scripts/sglang_cpu_shims)")

    return _unavailable
