"""Shim: see torchvision/__init__.py."""

from torchvision import _unavailable
from torchvision.transforms import InterpolationMode  # noqa: F401  (re-exported, as the real module does)


def __getattr__(name):
    return _unavailable(f"transforms.functional.{name}")
