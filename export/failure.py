"""Why an export failed, in one line that names the architecture and the module, and whose fault it is.

Two things made export failures hard to act on:

* torch.onnx's TorchScript exporter prints its whole IR graph (~170 lines on a small BERT) to the process's stdout
  from C++ when a pass fails, before the exception reaches us.  `NativeLog` captures file descriptors 1 and 2
  around the export, so the dump never reaches the terminal, and the failing node's `scope:` in it names the module
  (`bert.encoder.layer.0.intermediate.intermediate_act_fn`, class `Weird`) that holds the unsupported operator.
* Any exception became "bad input" (exit 2).  `blame` tells apart the model (its own forward code, or an operator or
  module torch.onnx cannot export: the user's architecture cannot export, exit 2) from this project's code (a bug:
  exit 1), from the traceback's innermost frame.

Standard library and torch only: `export/` never imports `compress/`.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # typing.Self is Python 3.11+; the package supports 3.10
    from typing_extensions import Self

# Packages of this project: an exception raised from their own lines is a bug, not the user's model.
OUR_PACKAGES = tuple(str(Path(__file__).resolve().parents[1] / name) + os.sep for name in ("export", "compress"))
OPERATOR = re.compile(r"'((?:aten|prim|onnx|quantized)::[A-Za-z0-9_.]+)'")
SCOPE = re.compile(r"scope: (\S+)")


class NativeLog:
    """Captures what native code writes to stdout/stderr inside the block (`text` afterwards); a no-op where the
    descriptors cannot be duplicated."""

    def __init__(self) -> None:
        self.text = ""
        self._sink = None
        self._saved: list[int] = []

    def __enter__(self) -> Self:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            self._sink = tempfile.TemporaryFile()
            self._saved = [os.dup(1), os.dup(2)]
            os.dup2(self._sink.fileno(), 1)
            os.dup2(self._sink.fileno(), 2)
        except (OSError, ValueError, AttributeError):  # no real descriptors (an embedding host): leave output alone
            self._restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        for fd, saved in zip((1, 2), self._saved):
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = []
        if self._sink is not None:
            self._sink.seek(0)
            self.text = self._sink.read().decode(errors="replace")
            self._sink.close()
            self._sink = None


@dataclass(frozen=True)
class Blame:
    """Where an export failed: `ours` (a bug in this project) or the model's; the module and operator when known."""
    ours: bool
    module: str | None = None      # "bert.encoder.layer.0.intermediate.intermediate_act_fn (Weird)"
    operator: str | None = None    # "aten::special_zeta"
    where: str | None = None       # file:line of the innermost frame

    def describe(self) -> str:
        parts = [f"in module {self.module}" if self.module else None, f"operator {self.operator}" if self.operator else None]
        return ", ".join(p for p in parts if p)


def blame(model: torch.nn.Module, err: BaseException, log: str = "") -> Blame:
    """Whose fault `err` is and which module of `model` raised it (see the module docstring)."""
    frames = traceback.extract_tb(err.__traceback__) if err.__traceback__ else []
    innermost = frames[-1] if frames else None
    where = f"{innermost.filename}:{innermost.lineno}" if innermost else None
    ours = innermost is not None and innermost.filename.startswith(OUR_PACKAGES) and not _onnx_error(err)
    operator = _operator(err)
    module = _module_in_log(log, operator) if operator else None
    return Blame(ours, module or _module_in_traceback(model, err.__traceback__), operator, where)


def _onnx_error(err: BaseException) -> bool:
    """torch.onnx's own errors (unsupported operator, symbolic failures) are about the model, wherever raised."""
    errors = getattr(torch.onnx, "errors", None)
    base = getattr(errors, "OnnxExporterError", None)
    return base is not None and isinstance(err, base)


def _operator(err: BaseException) -> str | None:
    match = OPERATOR.search(str(err))
    return match.group(1) if match else None


def _module_in_log(log: str, operator: str) -> str | None:
    """The module path of the first node running `operator` in the exporter's graph dump."""
    for line in log.splitlines():
        if f"= {operator}(" in line:
            scope = SCOPE.search(line)
            return _scope_module(scope.group(1)) if scope else None
    return None


def _scope_module(scope: str) -> str | None:
    """`pkg.Root::/pkg.Layer::layer.0/pkg.Act::act` -> `layer.0.act (Act)` (each level: class::attribute)."""
    levels = [level.rpartition("::") for level in scope.split("/") if "::" in level]
    names = [name for _, _, name in levels if name]
    if not names:
        return None
    return f"{'.'.join(names)} ({levels[-1][0].rpartition('.')[2]})"


def _module_in_traceback(model: torch.nn.Module, tb: TracebackType | None) -> str | None:
    """The innermost module of `model` whose own code is on the traceback (its `self`)."""
    names = {id(module): name for name, module in model.named_modules()}
    found = None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if id(owner) in names:
            found = f"{names[id(owner)] or '(the model itself)'} ({type(owner).__name__})"
        tb = tb.tb_next
    return found
