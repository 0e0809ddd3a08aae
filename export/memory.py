"""Peak memory of building and running one model, on the host or on the GPU.

Host: Linux keeps the process's resident high-water mark (VmHWM) and lets a
process reset it (`/proc/self/clear_refs` <- 5), so the peak of one session is
measurable without a subprocess.  GPU: ONNX Runtime's CUDA arena keeps what it
grew to until the session is freed, so device memory in use after the runs,
less before, is the session's peak (device-wide: other processes count too).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

MIB = 1024 * 1024
_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


@contextlib.contextmanager
def peak_memory(device: str = "cpu") -> Iterator[Callable[[], float | None]]:
    """Yields a function giving the peak MiB used inside the block (None where this platform cannot tell)."""
    read = _gpu_used if device == "cuda" else _host_peak
    before = _host_rss() if device == "cpu" and _reset_host_peak() else (read() if device == "cuda" else None)
    result: list[float | None] = [None]
    try:
        yield lambda: result[0]
    finally:
        after = read() if before is not None else None
        result[0] = round((after - before) / MIB, 1) if after is not None and before is not None else None


def _reset_host_peak() -> bool:
    try:
        _CLEAR.write_text("5")
        return True
    except OSError:  # not Linux, or a kernel without peak reset
        return False


def _status_bytes(key: str) -> int | None:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def _host_rss() -> int | None:
    return _status_bytes("VmRSS")


def _host_peak() -> int | None:
    return _status_bytes("VmHWM")


def _gpu_used() -> int | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info(0)
        return total - free
    except Exception:  # noqa: BLE001 -- a CPU-only torch build, or no driver
        return None
