"""Shim: see torchvision/__init__.py."""

from torchvision import _unavailable


def __getattr__(name):
    return _unavailable(f"transforms.v2.functional.{name}")
