"""What CPU are we on?  Int8 speed depends on it, so every report records it.

The flags come from py-cpuinfo, which reads /proc/cpuinfo on Linux and executes CPUID on
Windows and macOS x86, so every platform gets the same preset logic (reading /proc alone
sent Windows and macOS x86 to the reduce-range preset).  Flag spellings differ between
those sources (`avx512_vnni` in /proc, `avx512vnni` from CPUID), so they are compared with
underscores removed.  Apple Silicon reports no flags through either path; every Apple M
core has the dot-product and fp16 extensions, and `sysctl hw.optional.arm.*` says so.
The flags we care about decide the quantization preset: VNNI/AMX (fast u8s8 dot products,
full range), AVX2 without VNNI (u8s8 products can saturate in 16-bit accumulation, so use
`reduce_range`), ARM (u8s8 with symmetric weights, per-channel).
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field

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


def _normalized(flag: str) -> str:
    return flag.lower().replace("_", "")


def _apple_arm_flags() -> set[str]:
    """hw.optional.arm.FEAT_* on macOS arm64, mapped to the Linux names used above."""
    names = {"FEAT_DotProd": "asimddp", "FEAT_I8MM": "i8mm", "FEAT_FP16": "asimdhp", "FEAT_BF16": "bf16"}
    found = set()
    for feature, flag in names.items():
        result = subprocess.run(["sysctl", "-n", f"hw.optional.arm.{feature}"], capture_output=True, text=True, check=False)
        if result.stdout.strip() == "1":
            found.add(flag)
    return found


def cpu_info() -> CpuInfo:
    import cpuinfo  # py-cpuinfo

    info = cpuinfo.get_cpu_info()
    raw = {_normalized(f) for f in info.get("flags", [])}
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        raw |= {_normalized(f) for f in _apple_arm_flags()}
    return CpuInfo(
        model=info.get("brand_raw") or platform.processor() or "unknown",
        arch=platform.machine(),
        logical_cores=os.cpu_count() or 1,
        flags=tuple(f for f in INT8_FLAGS if _normalized(f) in raw),
        float16_flags=tuple(f for f in FLOAT16_FLAGS if _normalized(f) in raw),
    )
