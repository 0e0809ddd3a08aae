"""CPU detection: the same flags from /proc/cpuinfo (Linux) and CPUID (Windows, macOS x86) spellings."""
from __future__ import annotations

import cpuinfo
from edge_compress.compress.quantize.presets import preset_for
from edge_compress.export.hardware import cpu_info


def _fake_cpu(monkeypatch, flags: list[str], system: str = "Windows", machine: str = "AMD64") -> None:
    monkeypatch.setattr(cpuinfo, "get_cpu_info", lambda: {"flags": flags, "brand_raw": "Test CPU"})
    monkeypatch.setattr("platform.system", lambda: system)
    monkeypatch.setattr("platform.machine", lambda: machine)


def test_cpuid_spellings_give_the_vnni_preset_off_linux(monkeypatch):
    _fake_cpu(monkeypatch, ["avx2", "avx512f", "avx512vnni", "f16c"])
    cpu = cpu_info()
    assert cpu.model == "Test CPU"
    assert cpu.flags == ("avx2", "avx512f", "avx512_vnni") and cpu.has_vnni
    assert preset_for(cpu).reduce_range is False


def test_avx2_without_vnni_keeps_reduce_range(monkeypatch):
    _fake_cpu(monkeypatch, ["avx2", "fma"], system="Linux", machine="x86_64")
    cpu = cpu_info()
    assert not cpu.has_vnni
    assert preset_for(cpu).reduce_range is True


def test_apple_silicon_features_come_from_sysctl(monkeypatch):
    import subprocess

    _fake_cpu(monkeypatch, [], system="Darwin", machine="arm64")
    answers = {"hw.optional.arm.FEAT_DotProd": "1\n", "hw.optional.arm.FEAT_I8MM": "0\n"}

    def sysctl(args, **_):
        return subprocess.CompletedProcess(args, 0, stdout=answers.get(args[-1], ""))

    monkeypatch.setattr(subprocess, "run", sysctl)
    cpu = cpu_info()
    assert cpu.is_arm and cpu.features()["arm_dot_product"] and not cpu.features()["arm_i8mm"]
