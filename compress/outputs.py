"""Output folders that are either complete or absent.

Everything is built in a hidden sibling folder (same filesystem, so the final
`rename` is atomic) and moved into place only when the run succeeds.  A failed
run removes its staging folder; an existing OUT is replaced only with --force.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from compress.errors import CompressError


def check_target(out: Path, force: bool) -> None:
    """Refuse before any work is done, not after minutes of it."""
    if out.exists() and not out.is_dir():
        raise CompressError(f"--out {out} is a file", "choose a folder path for --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        what = "results of an earlier run" if (out / "report.json").exists() else "files"
        raise CompressError(f"--out {out} already holds {what}", "choose another --out, or pass --force to replace it")


@contextlib.contextmanager
def staged(out: Path, force: bool) -> Iterator[Path]:
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
