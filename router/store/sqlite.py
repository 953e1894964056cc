"""The embedded store: SQLite in WAL mode with group commit (router.store.threaded); the
jobs run on the event loop and only the commits in the store's thread; reads use a second
connection in a thread of their own. `synchronous=FULL`: a write is on disk before its
caller hears "done", so a 202 survives `kill -9` and power loss alike.
"""

from __future__ import annotations

__all__ = ["SqliteStore"]

import asyncio
import fcntl
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import structlog

from router.store.base import StoreUnavailableError
from router.store.checkpoint import WAL_SIZE_LIMIT, Checkpointer
from router.store.migrations import MIGRATIONS
from router.store.threaded import Job, ThreadedStore, commit, rollback, run_guarded

T = TypeVar("T")
log = structlog.get_logger(__name__)


class SqliteStore(ThreadedStore):
    """`Store` on a SQLite file."""

    engine = "sqlite"
    _unavailable = (sqlite3.Error, OSError)

    def __init__(self, path: Path, *, max_batch: int = 512, fsync_commits: bool = True) -> None:
        super().__init__(max_batch=max_batch)
        self.path = path
        # Off only for a delivery worker's bookkeeping (claims, outcomes), see open_store.
        self.fsync_commits = fsync_commits
        self._writer_lock: BinaryIO | None = None
        self._reader: sqlite3.Connection | None = None  # used in the read thread only
        self._read_executor: ThreadPoolExecutor | None = None
        # The serving process checkpoints; a delivery worker leaves it to the serving process.
        self.checkpointer = Checkpointer(path) if fsync_commits else None

    def _describe(self) -> str:
        return f"SQLite {self.path}"

    async def open(self) -> None:
        """Connect the writer (migrations) and the reader, start the writer task."""
        await super().open()
        self._read_executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-read")
        if self.checkpointer is not None:
            self.checkpointer.start()

    async def close(self) -> None:
        """Let queued writes commit, close both connections and the writer lock's file."""
        await super().close()
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        if self._read_executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._read_executor, self._close_reader)
            self._read_executor.shutdown(wait=True)
            self._read_executor = None
        if self._writer_lock is not None:
            self._writer_lock.close()
            self._writer_lock = None

    async def _read(self, job: Callable[[Any], T]) -> T:
        """On the reader connection, in a thread of its own: WAL shows a read the last
        committed state without waiting for the writer, and a long one (counting a large
        table for /metrics) neither holds up the event loop nor queues behind writes."""
        self._connection()
        if self._read_executor is None:
            raise StoreUnavailableError(f"the {self.engine} store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._read_executor, self._on_reader, job)
        except self._unavailable as err:
            raise StoreUnavailableError(f"{self._describe()}: {err}") from err

    def _on_reader(self, job: Callable[[Any], T]) -> T:
        if self._reader is None:
            self._reader = self._connect_reader()
        return job(self._reader)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def _execute(self, jobs: list[Job]) -> list[Any]:
        """The jobs run here, on the event loop, between a BEGIN and a COMMIT that run in the
        store's thread when they have to wait (for the writer lock, for fsync) and here when
        they need not.

        Run in a thread, each SQL statement would give up the GIL and then wait for it
        behind the event loop: a batch's dozens of statements took milliseconds each under
        load. Here they cost what they cost: microseconds. A job that raises rolls the
        batch back, and the batch runs again in the thread, each job in a savepoint."""
        conn = self._begin_now()
        if conn is None:
            conn = await self._in_thread(self._begin)
        try:
            results = [job(conn) for job in jobs]
        except Exception:
            await self._in_thread(self._rollback, conn)
            return await self._in_thread(self._with_lock, partial(run_guarded, jobs=jobs))
        except BaseException:
            await self._in_thread(self._rollback, conn)
            raise
        if self.fsync_commits:
            await self._in_thread(self._commit_and_unlock, conn)  # waits for fsync
        else:
            self._commit_and_unlock(conn)  # no fsync: as quick as the statements
        return results

    def _lock(self) -> None:
        """An exclusive `flock` on `<database>.writer`. SQLite admits one writer; another
        process's writer (a delivery worker) waiting on SQLite's own lock polls with sleeps
        of up to 100 ms, while one blocked here is woken the moment the lock is free."""
        if self._writer_lock is None:
            self._writer_lock = self.path.with_name(self.path.name + ".writer").open("a+b")
        fcntl.flock(self._writer_lock, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        if self._writer_lock is not None:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    def _begin_now(self) -> sqlite3.Connection | None:
        """BEGIN on the event loop if the writer lock is free (the usual case: saves a hop
        to the thread and back); None if another process holds it."""
        if self._conn is None or self._writer_lock is None:
            return None
        try:
            fcntl.flock(self._writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            # With the lock ours, no other writer holds SQLite's: this does not wait.
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock()
            raise
        conn: sqlite3.Connection = self._conn
        return conn

    def _begin(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        conn: sqlite3.Connection = self._conn
        self._lock()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock()
            raise
        return conn

    def _rollback(self, conn: sqlite3.Connection) -> None:
        try:
            rollback(conn)
        finally:
            self._unlock()

    def _commit_and_unlock(self, conn: sqlite3.Connection) -> None:
        try:
            commit(conn)
        finally:
            self._unlock()

    def _with_lock(self, job: Callable[[Any], T]) -> T:
        self._lock()
        try:
            return self._with_connection(job)
        finally:
            self._unlock()

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in ("busy_timeout=5000", "query_only=ON"):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL" if self.fsync_commits else "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=5000",
            "wal_autocheckpoint=0",  # router.store.checkpoint does it, off the commit path
            f"journal_size_limit={WAL_SIZE_LIMIT}",  # applied by this connection's commits
        ):
            conn.execute(f"PRAGMA {pragma}")
        # Migrations write: they take turns with the other processes' writers like every
        # write, or a BEGIN on the event loop (`_begin_now`) could wait on SQLite's lock.
        self._lock()
        try:
            _migrate(conn)
        finally:
            self._unlock()
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
