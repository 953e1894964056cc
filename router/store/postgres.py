"""The shared engine: PostgreSQL, for more than one replica.

The same synchronous job functions as SQLite (router.store.sqlite_queries and friends) run
through psycopg 3 in the store's own executor thread (router.store.threaded), behind
`PgConnection`, a small adapter that speaks the jobs' dialect: `?` placeholders, rows read
by name or position, `BEGIN IMMEDIATE`. What differs is in `POSTGRES` (a `Dialect`): claims
take `FOR UPDATE SKIP LOCKED`, so replicas share the outbox and the escalation timers, and a
deadlock between replicas' batches is retried. An alert another replica opened first is
folded into its incident (`INSERT … ON CONFLICT DO NOTHING`, then read). Migrations run
under an advisory lock, so several replicas starting at once apply each version once.
"""

from __future__ import annotations

__all__ = ["POSTGRES", "PgConnection", "PostgresStore", "pg_row"]

import re
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg.errors
import structlog
from psycopg.pq import TransactionStatus
from psycopg.rows import RowMaker

from router.store.dbapi import Dialect
from router.store.migrations import MIGRATIONS
from router.store.threaded import ThreadedStore

log = structlog.get_logger(__name__)

POSTGRES = Dialect(
    "postgresql",
    " FOR UPDATE SKIP LOCKED",
    (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure),
)
_MIGRATION_LOCK = 0x524F55544552  # "ROUTER": one advisory lock key for schema changes
_IDENTITY = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"


class Row(tuple[Any, ...]):
    """A result row readable as `row["col"]` and as `row[0]`, like `sqlite3.Row`."""

    _names: dict[str, int]

    def __new__(cls, names: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        """Column names, in order."""
        return list(self._names)


def pg_row(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    """psycopg row factory making `Row`s."""
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


def postgres_sql(sql: str) -> str:
    """The jobs' SQL as psycopg takes it: `%` escaped, then `?` placeholders become `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection (autocommit: the jobs say BEGIN and COMMIT) with the jobs' API."""

    dialect = POSTGRES

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Row]:
        """Run one statement written for the jobs (`?` placeholders, `BEGIN IMMEDIATE`)."""
        if sql == "BEGIN IMMEDIATE":
            sql = "BEGIN"
        cursor: psycopg.Cursor[Row] = self.raw.cursor(row_factory=pg_row)
        return cursor.execute(postgres_sql(sql), tuple(parameters))

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (or failed and not yet rolled back)."""
        return not self.lost and self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def lost(self) -> bool:
        """Whether the server went away: the connection must be opened again."""
        return self.raw.closed or self.raw.broken

    def close(self) -> None:
        """Close the server connection."""
        self.raw.close()


def postgres_migrations() -> tuple[tuple[int, str], ...]:
    """The shared migrations with PostgreSQL's spelling of an auto-increment key. Timestamps
    stay TEXT (fixed-width UTC ISO), so the shared SQL compares them the same way."""
    return tuple(
        (version, re.sub(r"\bid INTEGER PRIMARY KEY\b", _IDENTITY, script))
        for version, script in MIGRATIONS
    )


def migrate(conn: PgConnection) -> None:
    """Apply missing migrations in one transaction, holding the advisory lock, so replicas
    starting together wait for each other instead of racing."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_version").fetchall()}
        for version, script in postgres_migrations():
            if version in applied:
                continue
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            log.info("store.migrated", engine="postgresql", version=version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction and not conn.lost:
            conn.execute("ROLLBACK")
        raise


class PostgresStore(ThreadedStore):
    """`Store` on a PostgreSQL database shared by every replica."""

    engine = "postgresql"
    _unavailable = (psycopg.OperationalError, psycopg.InterfaceError, OSError)

    def __init__(self, url: str, *, max_batch: int = 512, connect_timeout: int = 5) -> None:
        super().__init__(max_batch=max_batch)
        self.url = url
        self.connect_timeout = connect_timeout

    def _describe(self) -> str:
        # The URL may carry a password: never put it in an error message.
        return "PostgreSQL"

    def _connect(self) -> PgConnection:
        raw = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=self.connect_timeout,
            application_name="pipeline-alert-router",
        )
        conn = PgConnection(raw)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _lost(self, conn: Any) -> bool:
        return bool(conn.lost)
