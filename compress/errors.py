"""One error type for every problem a user can fix: it carries the fix.

The CLI prints `CompressError`s as a short red message plus the hint and exits
with status 2; anything else is a bug and gets a traceback.
"""
from __future__ import annotations


class CompressError(Exception):
    """A problem with the user's input or environment, with how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message
