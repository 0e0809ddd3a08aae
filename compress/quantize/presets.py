"""Int8 settings chosen from the CPU the model will run on (recorded in the report).

Why each choice (from ONNX Runtime's quantization guide and MLAS kernels):
- x86 with VNNI/AMX: u8 activations x s8 weights run on VPDPBUSD/AMX with 32-bit
  accumulation, so the full 8-bit range is safe.
- x86 AVX2/AVX-512 without VNNI: u8s8 goes through VPMADDUBSW, whose 16-bit
  intermediate sums can saturate; `reduce_range` (7-bit weights) avoids that.
- ARM (NEON dot-product / i8mm): u8s8 with symmetric per-channel weights is the
  fast path on both low- and high-end cores.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from edge_compress.export.hardware import CpuInfo


@dataclass(frozen=True)
class Int8Preset:
    name: str
    activation_type: str  # "uint8" | "int8"
    weight_type: str      # "int8" | "uint8"
    per_channel: bool
    reduce_range: bool
    weight_symmetric: bool
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "vnni": Int8Preset("vnni", "uint8", "int8", True, False, True, "VNNI/AMX int8 dot products: full range is safe"),
    "avx2": Int8Preset("avx2", "uint8", "int8", True, True, True, "no VNNI: 16-bit u8s8 sums can saturate, so weights use 7 bits"),
    "arm64": Int8Preset("arm64", "uint8", "int8", True, False, True, "ARM dot-product kernels: u8s8, symmetric per-channel weights"),
}


def preset_for(cpu: CpuInfo, name: str = "auto") -> Int8Preset:
    if name != "auto":
        return PRESETS[name]
    if cpu.is_arm:
        return PRESETS["arm64"]
    return PRESETS["vnni"] if cpu.has_vnni else PRESETS["avx2"]
