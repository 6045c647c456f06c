"""The project's exception tree and the `Problem` record every validator reports.

Problems are data, not exceptions: loaders collect all of them in one pass so a user sees every
mistake at once, and the last good configuration keeps serving while they are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in one input file, located precisely enough for an editor to jump to it."""

    path: str
    """The file the problem is in (as the user named it)."""
    line: int
    """1-based line number; 0 when the problem concerns the whole file."""
    column: int
    """1-based column number; 0 when unknown."""
    field: str
    """Dotted field path inside the document, e.g. `listeners[0].routes[1].timeout`."""
    message: str
    """What is wrong and, where possible, how to fix it."""

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.path}:{self.line}:{self.column}:{field} {self.message}"


class ControlPlaneError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ControlPlaneError):
    """Input configuration is invalid; carries every problem found, sorted by file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
