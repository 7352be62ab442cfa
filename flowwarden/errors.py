"""The error hierarchy: every user-facing problem is a FlowwardenError with a location."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file, and optionally a line and column (1-based)."""

    path: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


class FlowwardenError(Exception):
    """Root of every error flowwarden reports to a user (printed without a traceback)."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.message == other.message
            and self.location == other.location
        )

    def __hash__(self) -> int:
        return hash((type(self), self.message, self.location))


class RuleLoadError(FlowwardenError):
    """A rule, data model or helper file could not be loaded or failed validation."""


class ConfigError(FlowwardenError):
    """The configuration file is missing, malformed or holds an invalid value."""


class LogFormatError(FlowwardenError):
    """An input could not be read as the log type it claims to be."""


class SourceError(FlowwardenError):
    """An input source (path, glob, S3 URL) could not be listed or opened."""


class ExtractionError(FlowwardenError):
    """A rule's Python could not be turned into the condition IR."""


class RenderError(FlowwardenError):
    """A backend cannot render a node of the condition IR."""


class EngineError(FlowwardenError):
    """An engine stopped before a scan finished (Spark's JVM, say)."""


class UsageError(FlowwardenError):
    """The command line asked for something that cannot be done."""
