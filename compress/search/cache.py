"""Sensitivity results on disk, keyed by what determines them: the graph's bytes, the feeds, the setting.

A sensitivity pass builds and runs one candidate per unit (hundreds for an LM); a rerun of the same
model on the same calibration data with the same scheme must not pay that again. Rows are stored unit by
unit as they arrive, so an interrupted pass resumes where it stopped. Only the parent process writes
(workers return rows), and every write replaces the file atomically.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from edge_compress.compress.search.files import write_json
from edge_compress.export.hf_manifest import model_files


def fingerprint(path: Path, feeds: Iterable[dict[str, np.ndarray]], setting: dict[str, Any]) -> str:
    """sha256 over the model's files, every feed (names, dtypes, shapes, bytes) and the JSON of `setting`."""
    digest = hashlib.sha256()
    for file in model_files(path):
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    for feed in feeds:
        for name in sorted(feed):
            array = np.ascontiguousarray(feed[name])
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes())
    digest.update(json.dumps(setting, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class Cache:
    """{key: {unit: row}} in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def rows(self, key: str) -> dict[str, Any]:
        return dict(self._data.get(key, {}))

    def put(self, key: str, unit: str, row: dict[str, Any]) -> None:
        self._data.setdefault(key, {})[unit] = row
        write_json(self.path, self._data)

