"""The router's exceptions: one family, each carrying what a person needs to act."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DeliveryError",
    "PermanentDeliveryError",
    "RouterError",
    "TransientDeliveryError",
]

from dataclasses import dataclass


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the team model: where it is (file, key path) and what is wrong."""

    path: str
    message: str
    file: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(RouterError):
    """The team model cannot be used; `problems` lists every reason, one per key path."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)")

    def lines(self) -> list[str]:
        """One human-readable line per problem, prefixed by the file or folder."""
        return [f"{problem.file or self.source}: {problem}" for problem in self.problems]


class DeliveryError(RouterError):
    """A notification could not be delivered; says to whom and over which channel."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying (5xx, 408, 429, timeout, refused connection, SMTP 4xx).

    `retry_after` is the receiver's own `Retry-After`, in seconds, when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (4xx other than 408/429, SMTP 5xx, a bad address)."""
