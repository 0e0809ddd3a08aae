"""edge-compress: a fine-tuned Hugging Face transformer -> small, fast, validated ONNX models.

The version has one source, pyproject.toml; the installed package metadata carries it here.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-compress")
except PackageNotFoundError:  # a source tree on sys.path without `pip install -e .`
    __version__ = "0+unknown"
