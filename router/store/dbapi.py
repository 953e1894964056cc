"""What the shared job functions need of a connection, and what differs between engines.

The SQL of every store job is written once (sqlite_queries, sqlite_outbox, …) against this
small DB-API-like surface: `conn.execute(sql, params)` with `?` placeholders, rows read as
`row["col"]` or `row[0]`, `cursor.rowcount`. `sqlite3.Connection` has it as is; PostgreSQL
gets it through `router.store.postgres.PgConnection`. What cannot be spelled the same in
both lives in a `Dialect`, read with `dialect(conn)`.
"""

from __future__ import annotations

__all__ = ["SQLITE", "Connection", "Cursor", "Dialect", "dialect"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Cursor(Protocol):
    """The part of a DB-API cursor the jobs use."""

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement."""
        ...

    def fetchone(self) -> Any:
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        ...


class Connection(Protocol):
    """The part of a DB-API connection the jobs use (`sqlite3.Connection` fits as is)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor:
        """Run one statement with `?` placeholders."""
        ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """Engine differences the shared SQL needs to know about."""

    name: str
    # Appended to a SELECT that claims rows: other replicas skip what one has locked.
    skip_locked: str
    # What a job may raise for losing a race it can win on a second try (a deadlock).
    retry_errors: tuple[type[Exception], ...] = ()


SQLITE = Dialect("sqlite", "")


def dialect(conn: Connection) -> Dialect:
    """The connection's dialect: a bare `sqlite3.Connection` is SQLite."""
    found: Dialect = getattr(conn, "dialect", SQLITE)
    return found
