"""Output folders that are either complete or absent, and never someone else's files.

Rules (README, "Output folder"):

* `--out` may not be, contain or lie inside the model folder or any input file (eval/calibration data, recipe),
  with or without `--force`, and may not be the current folder or one above it.
* One run per `--out` at a time: an exclusive lock (`.NAME.lock` beside OUT, an OS file lock released by the
  kernel even when the run is killed; the file is removed when the run ends) is held for the whole run; a second
  run stops at once and names the holder.
* Everything is built in a hidden sibling staging folder (same filesystem, so the final `rename` is atomic) and
  moved into place only when the run succeeds.  A failed run removes its staging folder.  Staging folders of
  killed runs are found (the lock proves nobody owns them) and removed by the next run on that OUT, which says so.
* Resume (compress.run.resume): a staging folder that holds finished steps (`RESUME_DIR`) is kept by a run that
  is interrupted (Ctrl-C, SIGTERM) and by the cleanup of the next run's lock; the next `staged(..., resume=True)`
  adopts the newest one, and `resume=False` removes it.  Only a folder whose `RESUME_DIR` this user owns and nobody
  else may write to is adopted (its records are unpickled).
* Every OUT carries a marker file (`MARKER`).  `--force` replaces only a folder that holds the marker (an earlier
  compress result) or an empty one; anything else is refused, naming what is there.
* Under a distributed launch (several processes training together) only the main process locks, stages and
  renames; the others write into a private temporary folder that is removed (compress.ranks).
* At the final rename a folder that appeared (or was swapped) during the run is never replaced: the run's result
  is kept beside it under a visible name and the run says so.

File locking is hand-written over `fcntl`/`msvcrt` (stdlib) rather than `filelock` because the holder's pid, host and
start time are written into the lock file itself; `filelock` truncates the file on every acquire attempt.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_compress.compress.console import info
from edge_compress.compress.errors import CompressError
from edge_compress.compress.ranks import is_main_process, rank

MARKER = ".edge-compress"
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
LOW_SPACE_BYTES = 16 << 20  # below this after a failure, the failure is blamed on the full disk
RESUME_DIR = ".resume"  # finished steps inside a staging folder (compress.run.resume); kept for the next run


# ----------------------------------------------------------------------------------------------------- checks


def check_target(out: Path, force: bool, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse before any work is done, not after minutes of it."""
    out = _absolute(out)
    _check_not_input(out, inputs)
    _check_not_cwd(out)
    _check_parents(out)
    if out.exists() and not out.is_dir():
        raise CompressError(f"--out {out} is a file", "choose a folder path for --out")
    if out.is_dir():
        _check_replaceable(out, force)


def _absolute(path: Path | str) -> Path:
    """Absolute, symlinks resolved: `--out .`, `--out ../x` and links compare by the folder they name."""
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _check_not_input(out: Path, inputs: Iterable[str | Path | None]) -> None:
    for source in inputs:
        if source is None:
            continue
        path = Path(str(source)).expanduser()
        if not path.exists():
            continue  # a hub id or dataset name: nothing on disk to protect
        path = _absolute(path)
        kind = "the model folder" if path.is_dir() else "the input file"
        if out == path:
            raise CompressError(f"--out {out} is {kind} {path}", "choose a new folder for --out; compress never writes over its inputs")
        if path.is_relative_to(out):
            raise CompressError(f"--out {out} contains {kind} {path}",
                                "choose an --out that does not hold the run's inputs (replacing it would delete them)")
        if path.is_dir() and out.is_relative_to(path):
            raise CompressError(f"--out {out} lies inside {kind} {path}",
                                "choose an --out outside the model folder, e.g. a sibling folder")


def _check_not_cwd(out: Path) -> None:
    cwd = _absolute(Path.cwd())
    if cwd.is_relative_to(out):
        raise CompressError(f"--out {out} is the current folder or one above it",
                            "choose a new folder below it, e.g. --out runs/first (replacing it would delete the folder you work in)")


def _check_parents(out: Path) -> None:
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CompressError(f"--out {out}: {parent} is a file, not a folder", "choose an --out whose parent folders are folders")
            return


def _check_replaceable(out: Path, force: bool) -> None:
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    ours = (out / MARKER).is_file()
    if ours and force:
        return
    if ours:
        raise CompressError(f"--out {out} already holds the result of an earlier compress run",
                            "choose another --out, or pass --force to replace it")
    shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
    raise CompressError(f"--out {out} holds files that compress did not write ({shown})",
                        f"choose another --out; --force replaces only folders written by compress (they hold {MARKER})")


# ----------------------------------------------------------------------------------------------------- lock


@dataclass
class _Held:
    handle: int
    depth: int


_HELD: dict[Path, _Held] = {}


def lock_path(out: Path) -> Path:
    out = _absolute(out)
    return out.with_name(f".{out.name}.lock")


@contextlib.contextmanager
def output_lock(out: Path, command: str = "") -> Iterator[None]:
    """Exclusive lock on `out` for the whole block; re-entrant within one process (the CLI takes it first,
    the staging step takes it again)."""
    key = _absolute(out)
    if not is_main_process():  # a distributed launch's other processes write nothing (see `staged`)
        yield
        return
    if key in _HELD:
        _HELD[key].depth += 1
        try:
            yield
        finally:
            _HELD[key].depth -= 1
        return
    path = lock_path(key)
    _check_parents(key)
    _writable(path.parent, key)
    handle = _acquire(path, key)
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "command": command}
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, json.dumps(owner).encode())
        _HELD[key] = _Held(handle, 1)
        try:
            _clean_stale(key)  # with the lock held, no live run owns them
            yield
        finally:
            del _HELD[key]
            with contextlib.suppress(OSError):  # unlink while still locked: a run that opened it meanwhile sees
                path.unlink()                   # a different file at `path` after locking and starts over
    finally:
        os.close(handle)  # closing releases the lock


def _acquire(path: Path, out: Path) -> int:
    """Open-and-lock the lock file, retrying while the file we locked is no longer the one at `path`
    (its previous holder removed it between our open and our lock)."""
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise storage_error(err, out) from err
        if not _try_lock(handle):
            os.close(handle)
            raise CompressError(f"--out {out} is in use by another compress run ({_holder(path)})",
                                "wait for that run to finish, or choose another --out")
        try:
            if os.stat(path).st_ino == os.fstat(handle).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)


def _try_lock(handle: int) -> bool:
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, getattr(errno, "EDEADLK", -1)):
            return False
        raise
    return True


def _holder(path: Path) -> str:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    if not owner:
        return "its owner has not written its name yet"
    return f"pid {owner.get('pid')} on {owner.get('host')}, started {owner.get('started')}"


def _writable(folder: Path, out: Path) -> None:
    """The nearest existing folder must be writable (creating the rest is then possible)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise storage_error(err, out) from err


# ----------------------------------------------------------------------------------------------------- staging


def stale_staging(out: Path) -> list[Path]:
    """Staging folders of earlier runs on `out`; only call with the lock held (then no live run owns them)."""
    out = _absolute(out)
    if not out.parent.is_dir():
        return []
    return sorted(p for p in out.parent.iterdir() if p.is_dir() and p.name.startswith((f".{out.name}.partial-", f".{out.name}.old-")))


def resumable(out: Path) -> Path | None:
    """The newest staging folder of an earlier run on `out` that holds finished steps and that only this user can
    have written (call with the lock held)."""
    out = _absolute(out)
    found = [p for p in stale_staging(out) if p.name.startswith(f".{out.name}.partial-") and (p / RESUME_DIR).is_dir()
             and _private(p / RESUME_DIR)]
    return max(found, key=lambda p: (p / RESUME_DIR).stat().st_mtime, default=None)


def _private(path: Path) -> bool:
    stat = path.stat()
    return (not hasattr(os, "getuid") or stat.st_uid == os.getuid()) and not stat.st_mode & 0o022


def _clean_stale(out: Path, keep: Path | None = None) -> None:
    keep = resumable(out) if keep is None else keep
    for folder in stale_staging(out):
        if folder == keep:
            continue  # what `staged` resumes from (or removes, with resume off)
        if folder.name.startswith(f".{out.name}.old-") and not out.exists() and (folder / MARKER).is_file():
            folder.rename(out)  # killed between moving the old result aside and moving the new one in
            info(f"restored {out} from {folder.name}, left by a run that was interrupted while replacing it")
            continue
        _remove_stale(folder)


def _remove_stale(folder: Path) -> None:
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    shutil.rmtree(folder, ignore_errors=True)
    info(f"removed {folder} ({size / 1e6:.1f} MB), left by an interrupted run on this --out")


@dataclass(frozen=True)
class _Found:
    """What was at OUT when the run began: nothing, or a folder identified by device and inode."""
    identity: tuple[int, int] | None

    @staticmethod
    def at(out: Path) -> _Found:
        if not out.exists():
            return _Found(None)
        stat = out.stat()
        return _Found((stat.st_dev, stat.st_ino))

    def still(self, out: Path) -> bool:
        return _Found.at(out) == self


@contextlib.contextmanager
def staged(out: Path, force: bool, inputs: Iterable[str | Path | None] = (), command: str | None = None,
           resume: bool = False) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes `out` (with `MARKER`), on failure it is removed.
    With `resume`, the staging folder of a killed run on `out` is yielded again (its finished steps are reused by
    compress.run.resume), and an interrupted run keeps its own for the next run."""
    out = _absolute(out)
    command = shlex.join(sys.argv) if command is None else command
    if not is_main_process():
        with _scratch(out, force, inputs) as scratch:
            yield scratch
        return
    with output_lock(out, command):
        check_target(out, force, inputs)
        found = _Found.at(out)
        staging = _adopt(out) if resume else None
        if staging is None:
            staging = _new_staging(out)
        try:
            yield staging
            shutil.rmtree(staging / RESUME_DIR, ignore_errors=True)
            _usual_modes(staging)
            (staging / MARKER).write_text(json.dumps({"tool": "edge-compress", "command": command,
                                                       "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        except BaseException as err:
            if resume and isinstance(err, (KeyboardInterrupt, SystemExit)) and (staging / RESUME_DIR).is_dir():
                info(f"kept {staging.name} beside --out: the same command resumes from its finished steps "
                     "(--no-resume starts over)")
                raise
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(err, Exception) and not isinstance(err, CompressError) and disk_full(err, out):
                raise storage_error(err, out) from err
            raise
        _move_into_place(staging, out, found)


@contextlib.contextmanager
def _scratch(out: Path, force: bool, inputs: Iterable[str | Path | None]) -> Iterator[Path]:
    """What a non-main process of a distributed launch writes into: a private temporary folder, removed at the end.
    It runs the same checks, so bad input stops every process the same way; only the main process writes OUT."""
    check_target(out, force, inputs)
    with tempfile.TemporaryDirectory(prefix=f"edge-compress-rank{rank()}-") as scratch:
        yield Path(scratch)


def _adopt(out: Path) -> Path | None:
    """The staging folder a killed run on `out` left with finished steps, if any (the others are removed)."""
    keep = resumable(out)
    _clean_stale(out, keep=keep)
    if keep is not None:
        info(f"resuming from {keep.name}, left by an interrupted run on this --out")
    return keep


def _new_staging(out: Path) -> Path:
    for folder in stale_staging(out):  # with resume off, a kept staging folder is not wanted any more
        if folder.name.startswith(f".{out.name}.partial-"):
            _remove_stale(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would make OUT private once renamed
    except OSError as err:
        raise storage_error(err, out) from err
    return staging


def _usual_modes(folder: Path) -> None:
    """Every file and folder of a finished output gets the modes the user's umask gives new files: libraries write
    some through temporary files (mkstemp: 0600; torch's external weights, atomic JSON), which would leave one
    file of a shared model folder unreadable to the others that can read the rest."""
    mask = _umask()
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(staging: Path, out: Path, found: _Found) -> None:
    changed = not found.still(out) or (found.identity is not None and not (out / MARKER).is_file() and any(out.iterdir()))
    if changed:
        kept = _keep_aside(staging, out)
        raise CompressError(f"{out} appeared or changed while this run was working, so it was left as it is; "
                            f"this run's result is in {kept}",
                            f"look at both folders, then move or remove {out} and rename {kept} to it")
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    try:
        staging.rename(out)
    except OSError as err:  # a folder appeared in the instant between the check and the rename
        if old is not None:
            old.rename(out)
        kept = _keep_aside(staging, out)
        raise CompressError(f"{out} appeared while this run was finishing ({err.strerror}); this run's result is in {kept}",
                            f"move or remove {out}, then rename {kept} to it") from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _keep_aside(staging: Path, out: Path) -> Path:
    kept = out.with_name(f"{out.name}.compress-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    staging.rename(kept)
    return kept


# ----------------------------------------------------------------------------------------------------- storage errors


def disk_full(err: BaseException, where: Path) -> bool:
    """True if `err` (or what caused it) is ENOSPC/EDQUOT, or the disk holding `where` is all but full now:
    libraries that write through protobuf or C++ report a full disk as their own, unrelated-looking error."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(_existing(where)).free < LOW_SPACE_BYTES
    except OSError:
        return False


def storage_error(err: BaseException, out: Path) -> CompressError:
    """A user-facing error for an output-filesystem failure (full, read-only, not a folder), else a generic one."""
    code = err.errno if isinstance(err, OSError) else None
    if disk_full(err, out):
        free = _free_mb(out)
        return CompressError(f"the disk holding {out} is full ({free} free): writing the output failed ({_describe(err)})",
                             "free some space or choose an --out on a disk with room (a run needs a few times the model's size)")
    if code == errno.EROFS:
        return CompressError(f"cannot write {out}: the file system is read-only", "choose an --out on a writable disk")
    if code in READ_ONLY:
        return CompressError(f"cannot write {out}: permission denied ({_describe(err)})",
                             "choose an --out in a folder you may write to")
    if code == errno.ENOTDIR:
        return CompressError(f"cannot create {out}: a parent of it is a file ({_describe(err)})",
                             "choose an --out whose parent folders are folders")
    return CompressError(f"cannot write {out}: {_describe(err)}", "check that the disk holding --out is writable and has room")


def raise_if_disk_full(err: BaseException, out: Path) -> None:
    """For the pipeline's per-variant error handler: a full disk fails the run, not just the variant."""
    if disk_full(err, out):
        raise storage_error(err, out) from err


def _existing(path: Path) -> Path:
    path = _absolute(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free_mb(out: Path) -> str:
    try:
        return f"{shutil.disk_usage(_existing(out)).free / 1e6:.0f} MB"
    except OSError:
        return "unknown"


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f": {err.filename}" if err.filename else "")
    return f"{type(err).__name__}: {err}".splitlines()[0]
