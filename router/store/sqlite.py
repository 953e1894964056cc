"""The embedded store: SQLite in WAL mode, one connection in one thread, group commit
(router.store.threaded). `synchronous=FULL`: a write is on disk before its caller hears
"done", so a 202 survives `kill -9` and power loss alike.
"""

from __future__ import annotations

__all__ = ["SqliteStore"]

import sqlite3
from pathlib import Path

import structlog

from router.store.migrations import MIGRATIONS
from router.store.threaded import ThreadedStore

log = structlog.get_logger(__name__)


class SqliteStore(ThreadedStore):
    """`Store` on a SQLite file."""

    engine = "sqlite"
    _unavailable = (sqlite3.Error, OSError)

    def __init__(self, path: Path, *, max_batch: int = 512) -> None:
        super().__init__(max_batch=max_batch)
        self.path = path

    def _describe(self) -> str:
        return f"SQLite {self.path}"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=5000",
        ):
            conn.execute(f"PRAGMA {pragma}")
        _migrate(conn)
        return conn


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
    for version, script in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store.migrated", engine="sqlite", version=version)
