"""Resume: a rerun after a kill continues from the last finished step instead of starting over.

What a run finishes is kept in its staging folder (compress.outputs: `.NAME.partial-*` beside OUT), in `RESUME_DIR`:
the baseline measurement, each variant's report entry and scores (its folder is already under `variants/`), and
each torch-stage checkpoint (the pruned/distilled model, the QAT-trained model).  Each record is stored under a key
of everything its result depends on: the checkpoint's files, the loaded data, the recipe (less the fields that only
change how results are judged or timed, `UNKEYED`), the int8 preset, the targets and the library versions, plus
the step's own settings.  A record whose key differs is ignored and rebuilt, so a changed input never reuses a stale
result.

The staging folder of a killed (or interrupted) run is adopted by the next run on the same `--out`
(compress.outputs.staged, with the lock held so no live run owns it); `--no-resume` (recipe `resume: false`) removes
it instead and builds everything again.  `RESUME_DIR` is removed before the staging folder becomes OUT.

Records are pickles (a report entry and a task's scores are nested dataclasses and arrays of task-specific shapes);
compress.outputs only adopts a `RESUME_DIR` that this user owns and nobody else may write to, so what is unpickled
was written by this user's own earlier run.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from edge_compress.compress.console import info, warn
from edge_compress.compress.environment import library_versions
from edge_compress.compress.outputs import RESUME_DIR
from edge_compress.compress.ranks import world_size

# Recipe fields that change only how finished results are judged, timed or packaged, or whether to resume:
# a rerun that changes them still reuses what was built.
UNKEYED = ("resume", "max_accuracy_drop", "validate.rounds", "validate.latency_samples", "validate.warmup", "package")
CHECKPOINT_FILES = (".json", ".safetensors", ".bin", ".model", ".txt", ".py")  # config, weights, tokenizer, code

T = TypeVar("T")
# The store of the variant being built: a torch stage inside a variant (QAT) keeps its checkpoint there without the
# store being threaded through every build function's signature.
_ACTIVE: contextvars.ContextVar[_Prefixed | None] = contextvars.ContextVar("resume_store", default=None)


@dataclass
class ResumeStore:
    """Finished steps of one run, kept in its staging folder; `enabled=False` stores nothing and reuses nothing."""
    root: Path
    inputs: str                      # digest of what every step depends on
    enabled: bool = True
    reused: list[str] = field(default_factory=list)

    @staticmethod
    def open(stage: Path, ctx: Any, enabled: bool) -> ResumeStore:
        root = stage / RESUME_DIR
        if enabled:
            for leftover in stage.iterdir():  # an adopted folder: only variants and records are worth keeping
                if leftover.name not in (RESUME_DIR, "variants"):
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            root.mkdir(mode=0o700, exist_ok=True)  # private: compress.outputs adopts only such a folder
        return ResumeStore(root, run_inputs(ctx) if enabled else "", enabled)

    def drop_unbuilt(self, variants: Path, built: set[str]) -> None:
        """Remove variant folders a killed run left that this run did not build or reuse (its plan changed), so
        OUT holds only the report's variants."""
        if not variants.is_dir():
            return
        for folder in variants.iterdir():
            if folder.name not in built:
                shutil.rmtree(folder, ignore_errors=True)

    def key(self, step: str, settings: Any = None) -> str:
        return _digest(json.dumps([self.inputs, step, settings], sort_keys=True, default=repr).encode())

    def load(self, step: str, settings: Any = None) -> Any | None:
        """The stored result of `step`, or None when there is none for these inputs."""
        if not self.enabled:
            return None
        path = self._path(step)
        try:
            with path.open("rb") as handle:
                key, value = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError, TypeError):
            return None
        if key != self.key(step, settings):
            return None
        self.reused.append(step)
        info(f"resume: reusing {step} from the interrupted run")
        return value

    def save(self, step: str, value: Any, settings: Any = None) -> None:
        """Store `step`'s result; written to a temporary name and renamed, so a kill leaves the old record or the new."""
        if not self.enabled:
            return
        path = self._path(step)
        partial = path.with_suffix(".tmp")
        try:
            with partial.open("wb") as handle:
                pickle.dump((self.key(step, settings), value), handle, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:  # a result that cannot be kept is rebuilt
            partial.unlink(missing_ok=True)
            warn(f"resume: {step} cannot be kept for a rerun ({type(err).__name__}: {err})")
            return
        os.replace(partial, path)

    def checkpoint(self, step: str, settings: Any, build: Callable[[], T], save: Callable[[T, Path], None],
                   load: Callable[[Path], T]) -> T:
        """A torch-stage result: reloaded from its stored folder when its key matches, else built and stored."""
        folder = self.root / _safe(step)
        if folder.is_dir() and self.load(step, settings) is not None:
            return load(folder)
        result = build()
        if self.enabled:
            shutil.rmtree(folder, ignore_errors=True)
            save(result, folder)
            self.save(step, True, settings)   # the record last: a folder without it is never reused
        return result

    def summary(self) -> dict[str, Any] | None:
        """The report section naming what was reused (None when nothing was)."""
        if not self.reused:
            return None
        info(f"resume: reused {len(self.reused)} finished step(s) of an interrupted run: {', '.join(self.reused)} "
             "(--no-resume builds everything again)")
        return {"reused": list(self.reused)}

    def _path(self, step: str) -> Path:
        return self.root / f"{_safe(step)}.pkl"


@contextlib.contextmanager
def activated(store: ResumeStore, prefix: str) -> Iterator[None]:
    """`store` is `active_store()` inside the block, its step names prefixed (one line's QAT is not another's)."""
    token = _ACTIVE.set(_Prefixed(store, prefix) if store.enabled else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_store() -> _Prefixed | None:
    return _ACTIVE.get()


class _Prefixed:
    """A view of a store whose torch-stage checkpoints are named after the variant that needs them."""

    def __init__(self, store: ResumeStore, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def checkpoint(self, step: str, settings: Any, build: Callable[[], T], save: Callable[[T, Path], None],
                   load: Callable[[Path], T]) -> T:
        return self.store.checkpoint(f"{self.prefix} {step}", settings, build, save, load)


def state_digest(model: Any) -> str:
    """A model's weights and buffers: the same digest means the same model to train from."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def wanted(recipe: Any) -> bool:
    """Resume unless the recipe says no or the run is one of several processes: each must train the same steps
    (a process that reused a trained model would leave the others waiting for it in their collectives)."""
    if recipe.resume and world_size() > 1:
        info("resume is off under a distributed launch: every process builds every step")
        return False
    return bool(recipe.resume)


def run_inputs(ctx: Any) -> str:
    """One digest of the inputs every step depends on (the module docstring lists them)."""
    from edge_compress.compress import __version__

    recipe = ctx.recipe.model_dump(by_alias=True, mode="json")
    for path in UNKEYED:
        *parents, leaf = path.split(".")
        node = recipe
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    parts = {"checkpoint": checkpoint_digest(ctx.options.model), "data": data_digest(ctx.data), "recipe": recipe,
             "task": ctx.task.name, "preset": ctx.preset.as_dict(), "targets": ctx.targets.summary(),
             "versions": library_versions(), "edge-compress": __version__}
    return _digest(json.dumps(parts, sort_keys=True, default=repr).encode())


def checkpoint_digest(source: str) -> str:
    """The checkpoint folder's files (config, weights, tokenizer), or the hub id when it is not a local folder."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return _digest(source.encode())
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_FILES):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def data_digest(data: Any) -> str:
    """The data as loaded (eval texts and references, calibration and training texts), not the files' bytes: the
    columns and sampling that picked them are in it."""
    train = data.train
    parts = [data.eval_texts, data.references, data.calib_texts,
             None if train is None else [getattr(train, "texts", None), getattr(train, "labels", None)]]
    return _digest(json.dumps(parts, default=_plain).encode())


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else repr(value)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe(step: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in step)
