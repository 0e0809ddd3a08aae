"""One error type for every problem a user can fix: it carries the fix.

The CLI prints `CompressError`s as an `error:` line plus a `fix:` line and exits with `USER_ERROR`; anything
else is a bug and exits with `INTERNAL_ERROR` after a traceback.  Exit statuses are part of the CLI contract
(README, "Exit status").
"""
from __future__ import annotations

OK = 0
INTERNAL_ERROR = 1  # a bug: a traceback follows
USER_ERROR = 2  # bad input or environment: `error:` and `fix:` lines say what to change
NO_SELECTION = 3  # `compress run` finished and wrote its report, but no variant qualified


class CompressError(Exception):
    """A problem with the user's input or environment, with how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message
