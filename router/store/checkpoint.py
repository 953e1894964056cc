"""Copying SQLite's write-ahead log back into the database file, off the commit path.

By default SQLite does this inside a COMMIT now and then (every 1,000 pages), and that
COMMIT, with the write lock held, then also writes and fsyncs the database file: under
load, every few hundred alerts one batch of 202s waits for it. The writers turn that off
(`wal_autocheckpoint=0`) and this task runs a PASSIVE checkpoint every second from a
connection and thread of its own: it neither takes the write lock nor waits for readers,
so commits go on meanwhile. `journal_size_limit` (set on the writers too: a connection
applies it when it commits) keeps the log file from staying at its largest size.
"""

from __future__ import annotations

__all__ = ["Checkpointer"]

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)
INTERVAL = 1.0  # seconds between checkpoints
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the log file is cut back to after a checkpoint


class Checkpointer:
    """Checkpoints the database at `path` every `interval` seconds until `stop()`."""

    def __init__(self, path: Path, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.runs = 0  # checkpoints completed (for tests)

    def start(self) -> None:
        """Begin the periodic checkpoints (inside the running event loop)."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._task = asyncio.create_task(self._loop(), name="sqlite-checkpoint")

    async def stop(self) -> None:
        """End the loop, run one last checkpoint, close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is None:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(sqlite3.Error, OSError):
            await loop.run_in_executor(self._executor, self._checkpoint)
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def checkpoint(self) -> None:
        """One PASSIVE checkpoint, in the checkpointer's thread (after `start()`)."""
        if self._executor is None:
            raise RuntimeError("Checkpointer.start() has not been called")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._checkpoint)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.checkpoint()
            except (sqlite3.Error, OSError) as err:
                # The next commit still works without it; the log just grows until then.
                log.warning("store.checkpoint_failed", error=str(err))

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
