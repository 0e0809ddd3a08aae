"""What CPU are we on?  Int8 speed depends on it, so every report records it.

Reads /proc/cpuinfo on Linux (no extra dependency); elsewhere falls back to
`platform`.  The flags we care about decide the quantization preset:
VNNI/AMX (fast u8s8 dot products, full range), AVX2 without VNNI (u8s8
products can saturate in 16-bit accumulation, so use `reduce_range`), ARM
(u8s8 with symmetric weights, per-channel).
"""
from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")
# fp16/bf16 arithmetic: whether an fp16 model can run natively on this CPU rather than through conversions.
FLOAT16_FLAGS = ("f16c", "avx512_fp16", "avx512_bf16", "amx_bf16", "asimdhp", "bf16")


@dataclass(frozen=True)
class CpuInfo:
    model: str
    arch: str
    logical_cores: int
    flags: tuple[str, ...] = field(default_factory=tuple)
    float16_flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_vnni(self) -> bool:
        return any(f in self.flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))

    @property
    def is_arm(self) -> bool:
        return self.arch.lower() in ("arm64", "aarch64") or self.arch.lower().startswith("arm")

    def features(self) -> dict[str, bool]:
        """The instruction sets that decide int8/fp16 speed, named the same on every platform."""
        has = lambda *names: any(n in self.flags + self.float16_flags for n in names)
        return {"avx2": has("avx2"), "avx512": has("avx512f"), "vnni": self.has_vnni, "amx": has("amx_int8"),
                "arm_dot_product": has("asimddp"), "arm_i8mm": has("i8mm"), "fp16": has("avx512_fp16", "asimdhp"),
                "bf16": has("avx512_bf16", "amx_bf16", "bf16")}

    def fingerprint(self) -> str:
        """Short id of the CPU class (model, architecture, cores, flags): reports with equal ids are comparable."""
        text = "|".join([self.model, self.arch, str(self.logical_cores), *self.flags, *self.float16_flags])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def as_dict(self) -> dict:
        return asdict(self) | {"has_vnni": self.has_vnni, "is_arm": self.is_arm, "features": self.features(),
                               "fingerprint": self.fingerprint()}


def cpu_info() -> CpuInfo:
    model, flags = platform.processor() or "unknown", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "cpu model") and model in ("", "unknown", platform.machine()):
                model = value.strip()
            elif key in ("flags", "features") and not flags:
                flags = set(value.split())
    return CpuInfo(
        model=model,
        arch=platform.machine(),
        logical_cores=os.cpu_count() or 1,
        flags=tuple(f for f in INT8_FLAGS if f in flags),
        float16_flags=tuple(f for f in FLOAT16_FLAGS if f in flags),
    )
