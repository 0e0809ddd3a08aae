"""Where independent candidates run: a `concurrent.futures.Executor`, chosen by name.

Every candidate (one unit's sensitivity build, one search trial) is independent of the others, so any
executor works: a local process pool by default (separate processes, because each build holds the
GIL in protobuf and numpy and each ONNX Runtime session wants its own threads), `inline` for tests and
debugging, and `ray` to map the same jobs onto a Ray cluster (issue 15: an existing engine, no
home-made scheduling). Ray is not a dependency: its executor exists only when `ray` imports.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from edge_compress.compress.errors import CompressError


class InlineExecutor(Executor):
    """Runs each job at submit time in this process: deterministic order, tracebacks where they happen."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 -- a job's failure belongs to its future, as in a pool
            future.set_exception(err)
        return future


class RayExecutor(Executor):
    """Each job a Ray task; Ray's ObjectRef converts to a concurrent.futures.Future, so callers do not change."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=num_cpus, ignore_reinit_error=True, log_to_driver=False)
        self._remote = ray.remote(_call)
        self._max_workers = num_cpus or int(ray.cluster_resources().get("CPU", 1))  # read like ProcessPoolExecutor's

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._remote.remote(fn, args, kwargs).future()


def _call(fn, args, kwargs):
    return fn(*args, **kwargs)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def make_executor(name: str = "process", workers: int | None = None) -> Executor:
    """`process` (default), `inline` or `ray`."""
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        # spawn, not fork: a forked ONNX Runtime / torch process can deadlock on locks held by the parent's threads
        return ProcessPoolExecutor(max_workers=workers or default_workers(), mp_context=multiprocessing.get_context("spawn"))
    if name == "ray":
        try:
            return RayExecutor(num_cpus=workers)
        except ImportError as err:
            raise CompressError("--executor ray needs Ray, which is not installed",
                                "pip install 'edge-compress[ray]' (Ray is an optional extra), or use --executor process") from err
    raise CompressError(f"unknown executor '{name}'", "use process, inline or ray")
