"""The one exception type the CLI turns into a clear message instead of a traceback."""

from __future__ import annotations


class CivmonError(Exception):
    """A problem the user can fix; `hint` says how."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message
