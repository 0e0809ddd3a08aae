"""What a result was measured with: library versions, CPU, threads, int8 preset (recorded in every report and manifest)."""
from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from edge_compress.compress.quantize.presets import Int8Preset
from edge_compress.export.hardware import CpuInfo
from edge_compress.export.runtime import available_providers

LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "onnxscript", "onnx-ir")


def library_versions() -> dict[str, str]:
    """Installed versions; of onnxruntime and onnxruntime-gpu (same import, one or the other) only what is installed."""
    return {"python": platform.python_version(), **{lib: v for lib in LIBRARIES if (v := _version(lib))}}


def _version(lib: str) -> str | None:
    try:
        return version(lib)
    except PackageNotFoundError:
        return None


def environment(cpu: CpuInfo, preset: Int8Preset, threads: int) -> dict[str, Any]:
    return {"cpu": cpu.as_dict(), "threads": threads, "int8_preset": preset.as_dict(), "providers": available_providers(),
            "platform": platform.platform(), "versions": library_versions()}
