"""The one rich console everything prints through (stderr, so stdout stays scriptable)."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Wide enough for the summary table when output goes to a log file or CI (rich assumes 80).
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {message}")


def info(message: str) -> None:
    console.print(f"[cyan]•[/] {message}")


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)
