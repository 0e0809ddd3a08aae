"""The one rich console everything prints through (stderr, so stdout stays scriptable).

Messages are plain text: `info`, `warn` and `error` escape them, so user paths such as `[/data]` or hints such as
`pip install 'edge-compress[datasets]'` print as written instead of being read as rich markup.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Wide enough for the summary table when output goes to a log file or CI (rich assumes 80).
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)


def warn(message: str) -> None:
    if _level["own"] > LEVELS["warning"]:
        return
    console.print(f"[yellow]warning:[/] {escape(message)}")


def info(message: str) -> None:
    if _level["own"] > LEVELS["info"]:
        return
    console.print(f"[cyan]•[/] {escape(message)}")


def error(message: str, hint: str = "") -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        console.print(f"[bold]fix:[/] {escape(hint)}")


class _PlainProgress:
    """What `progress()` gives when stderr is not a terminal: one line per finished task, with its duration,
    instead of redrawn bars (which log files keep as kilobytes of control characters)."""

    def __init__(self) -> None:
        self.tasks: dict[int, dict] = {}

    def add_task(self, description: str, total: float | None = None, **_: object) -> int:
        self.tasks[len(self.tasks)] = {"description": description, "total": total, "done": 0.0, "start": time.perf_counter()}
        return len(self.tasks) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, advance: float = 0, completed: float | None = None, **_: object) -> None:
        state = self.tasks[task]
        state["done"] = completed if completed is not None else state["done"] + advance
        if state["total"] is not None and state["done"] >= state["total"] and not state.get("printed"):
            self._line(state)

    def _line(self, state: dict) -> None:
        state["printed"] = True
        count = f" {state['done']:g}/{state['total']:g}" if state["total"] is not None else ""
        console.print(f"  {escape(state['description'])}{count} in {time.perf_counter() - state['start']:.1f} s")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        for state in self.tasks.values():
            if not state.get("printed") and exc[0] is None:
                self._line(state)


def progress() -> Progress | _PlainProgress:
    if not console.is_terminal:
        return _PlainProgress()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)



LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_level = {"own": LEVELS["info"]}


def set_verbosity(level: str | None) -> None:
    """`--log-level`: compress's own lines at `level`, and the libraries through their own controls: transformers'
    and huggingface_hub's verbosity (read from the environment when they are imported, so set before), Python
    logging for torch, onnxscript and accelerate, and onnxruntime's default logger severity.  None: compress at info, the
    libraries at their defaults (warning)."""
    import logging
    import os

    _level["own"] = LEVELS[level or "info"]
    if level is None:
        return
    os.environ["TRANSFORMERS_VERBOSITY"] = level
    os.environ["HF_HUB_VERBOSITY"] = level
    for name in ("torch", "onnxscript", "accelerate"):
        logging.getLogger(name).setLevel(LEVELS[level])
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(LEVELS[level])
    import onnxruntime

    onnxruntime.set_default_logger_severity({"debug": 0, "info": 1, "warning": 2, "error": 3}[level])
