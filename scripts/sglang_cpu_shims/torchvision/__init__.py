"""Import shim for SGLang on CPU (installed only into .venv-sglang; never into the suite's own env).

Every torchvision wheel on PyPI links a CUDA torch, which cannot load beside torch 2.13.0+cpu. SGLang
(multimodal configs) and transformers (image utils) import a few torchvision names at import time;
the text models the suite serves never call them. The names exist so imports succeed; calling one
raises, so a multimodal code path fails loudly instead of silently.
"""

__version__ = "0.0.0+opd-suite-shim"


def _unavailable(name):
    def fail(*args, **kwargs):
        raise NotImplementedError(f"torchvision.{name}: torchvision is a shim in .venv-sglang (text models only)")

    return fail


def __getattr__(name):
    return _unavailable(name)
