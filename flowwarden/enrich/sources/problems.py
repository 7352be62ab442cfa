"""What a source file held that could not be used: counted, located, and never fatal.

A feed with one bad line among thousands still enriches with the rest; the bad lines are
counted and the first few kept with their file and line, for the user to see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowwarden.errors import FlowwardenError, Location

SHOWN = 20


class LookupSourceError(FlowwardenError):
    """A lookup-table source file is missing, unreadable, or not of the kind it is said to be."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One entry of a source file that was skipped, and why."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(slots=True)
class Problems:
    """Skipped entries of one file: the count, and the first ``SHOWN`` of them."""

    path: str
    count: int = 0
    shown: list[Problem] = field(default_factory=list)

    def add(self, message: str, line: int | None = None) -> None:
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append(Problem(Location(self.path, line), message))

    def summary(self) -> str:
        """One line for a report: nothing when the file was clean."""
        if not self.count:
            return ""
        first = "; ".join(str(problem) for problem in self.shown[:3])
        more = f" (first: {first})" if first else ""
        return f"{self.path}: {self.count} entries skipped{more}"
