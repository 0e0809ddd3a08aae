"""File helpers the search needs: atomic JSON, a private view of a source graph."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edge_compress.export.hf_manifest import model_files


def write_json(path: Path, data: Any) -> None:
    """Write-to-temp-then-rename: a reader (or a kill) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


def private_view(src: Path, folder: Path) -> Path:
    """`src` (and its external data) copied into `folder`: ORT's quantize_dynamic writes `<stem>-inferred.onnx`
    beside its input and deletes it, so candidates quantized in parallel from one source would delete each
    other's file. Copies, not links: onnx >= 1.21 refuses external data reached through a symbolic or hard link
    (the CVE-2026-27489 / -34446 fixes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for file in model_files(src):
        shutil.copyfile(file, folder / file.name)
    return folder / src.name
