"""The embedded store: SQLite in WAL mode, one connection in one thread, group commit.

Writes queue up while a commit is in flight; the writer task runs everything queued in one
transaction (each job in its own savepoint, so one failing job does not undo the others)
and pays one fsync for all of them. `synchronous=FULL`: a write is on disk before its
caller hears "done", so a 202 survives `kill -9` and power loss alike.
"""

from __future__ import annotations

__all__ = ["SqliteStore"]

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from router.model import Incident, IncidentStatus, Notification, TimelineEvent
from router.routing import Routed
from router.store import sqlite_escalation as escalation
from router.store import sqlite_outbox as outbox
from router.store import sqlite_queries as q
from router.store import sqlite_runtime as runtime
from router.store.base import (
    Delivery,
    DeliveryOutcome,
    IncidentPage,
    IngestOutcome,
    OutboxStats,
    RuntimeEntry,
    RuntimeKind,
    RuntimeSilence,
    StoreUnavailableError,
)
from router.store.migrations import MIGRATIONS
from router.teammodel import LeaveEntry, Override, Silence, TeamModel

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
log = structlog.get_logger(__name__)


class SqliteStore:
    """`Store` on a SQLite file."""

    def __init__(self, path: Path, *, max_batch: int = 512) -> None:
        self.path = path
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed: with group commit, fewer than writes

    async def open(self) -> None:
        """Open the file (creating its folder), apply migrations, start the writer."""
        self._conn = await self._in_thread(self._connect)
        self._writer = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    async def close(self) -> None:
        """Let queued writes commit, then close the connection."""
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        if self._conn is not None:
            await self._in_thread(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        """A trivial query through the same thread as every other."""
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def ingest(
        self,
        routed: Sequence[Routed],
        now: datetime,
        caller: str | None = None,
        model: TeamModel | None = None,
    ) -> list[IngestOutcome]:
        """Fold alerts into incidents (and start escalations); returns once committed."""
        job = partial(q.ingest, routed=routed, now=now, caller=caller, model=model)
        result: list[IngestOutcome] = await self._write(job)
        return result

    async def fire_due_escalations(self, model: TeamModel, now: datetime, limit: int) -> int:
        """Fire due escalation steps."""
        job = partial(escalation.fire_due, model=model, now=now, limit=limit)
        fired: int = await self._write(job)
        return fired

    async def claim_deliveries(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        """Lease due notifications for delivery."""
        job = partial(outbox.claim, now=now, limit=limit, lease=lease)
        claimed: list[Delivery] = await self._write(job)
        return claimed

    async def renew_lease(self, notification_id: int, held: datetime, until: datetime) -> bool:
        """Extend a claim that is still ours."""
        job = partial(outbox.renew_lease, notification_id=notification_id, held=held, until=until)
        renewed: bool = await self._write(job)
        return renewed

    async def record_delivery(self, outcome: DeliveryOutcome) -> None:
        """Store a delivery attempt's outcome."""
        await self._write(partial(outbox.record, outcome=outcome))

    async def notifications_of(self, incident_id: int) -> list[Notification]:
        """An incident's notifications."""
        found: list[Notification] = await self._read(
            partial(outbox.notifications_of, incident_id=incident_id)
        )
        return found

    async def outbox_stats(self, now: datetime) -> OutboxStats:
        """Depth, oldest undelivered age, dead letters."""
        stats: OutboxStats = await self._read(partial(outbox.outbox_stats, now=now))
        return stats

    async def dead_letters(self, limit: int) -> list[Notification]:
        """Recent dead letters."""
        found: list[Notification] = await self._read(partial(outbox.dead_letters, limit=limit))
        return found

    async def meta_secret(self, key: str) -> str:
        """An install-wide secret, created on first use."""
        value: str = await self._write(partial(outbox.meta_secret, key=key))
        return value

    async def incidents(
        self,
        *,
        status: IncidentStatus | None = None,
        pipeline: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> IncidentPage:
        """Incidents newest first."""
        page: IncidentPage = await self._read(
            partial(q.incidents, status=status, pipeline=pipeline, limit=limit, before=before)
        )
        return page

    async def incident(self, incident_id: int) -> Incident | None:
        """One incident, or None."""
        found: Incident | None = await self._read(partial(q.incident, incident_id=incident_id))
        return found

    async def alerts_of(self, incident_id: int) -> list[dict[str, object]]:
        """An incident's alerts."""
        rows: list[dict[str, object]] = await self._read(
            partial(q.alerts_of, incident_id=incident_id)
        )
        return rows

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """An incident's timeline."""
        events: list[TimelineEvent] = await self._read(partial(q.timeline, incident_id=incident_id))
        return events

    async def set_status(
        self, incident_id: int, status: IncidentStatus, by: str, now: datetime
    ) -> Incident | None:
        """Acknowledge or resolve; returns once committed."""
        job = partial(q.set_status, incident_id=incident_id, status=status, by=by, now=now)
        found: Incident | None = await self._write(job)
        return found

    async def open_incident_count(self) -> int:
        """Incidents not resolved."""
        count: int = await self._read(q.open_count)
        return count

    async def add_runtime(self, entry: LeaveEntry | Override, by: str, now: datetime) -> int:
        """Persist a runtime entry."""
        entry_id: int = await self._write(partial(runtime.add_runtime, entry=entry, by=by, now=now))
        return entry_id

    async def delete_runtime(
        self, kind: RuntimeKind, entry_id: int, by: str, now: datetime
    ) -> bool:
        """Withdraw a runtime entry."""
        job = partial(runtime.delete_runtime, kind=kind, entry_id=entry_id, by=by, now=now)
        done: bool = await self._write(job)
        return done

    async def runtime_entries(self, kind: RuntimeKind) -> list[RuntimeEntry]:
        """Runtime entries in force."""
        entries: list[RuntimeEntry] = await self._read(partial(runtime.runtime_entries, kind=kind))
        return entries

    async def add_silence(self, silence: Silence, by: str, now: datetime) -> int:
        """Persist a silence."""
        silence_id: int = await self._write(
            partial(runtime.add_silence, silence=silence, by=by, now=now)
        )
        return silence_id

    async def delete_silence(self, silence_id: int, by: str, now: datetime) -> bool:
        """End a silence early."""
        job = partial(runtime.delete_silence, silence_id=silence_id, by=by, now=now)
        done: bool = await self._write(job)
        return done

    async def runtime_silences(self) -> list[RuntimeSilence]:
        """Runtime silences not withdrawn."""
        found: list[RuntimeSilence] = await self._read(runtime.runtime_silences)
        return found

    # -- plumbing ---------------------------------------------------------------------------

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

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as err:
            raise StoreUnavailableError(f"SQLite {self.path}: {err}") from err

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        return await self._in_thread(job, conn)

    async def _write(self, job: Job) -> Any:
        self._connection()
        if self._writer is None or self._writer.done():
            # Queued work would wait forever: refuse it, so the caller answers 503.
            raise StoreUnavailableError("the SQLite writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailableError("the SQLite store is not open")
        return self._conn

    async def _write_loop(self) -> None:
        while (first := await self._queue.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._commit(batch)
            if stop:
                return

    async def _commit(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._in_thread(
                _run_batch, self._connection(), [job for job, _ in batch]
            )
        except Exception as err:  # every waiting caller must hear of it
            log.error("store.commit_failed", error=str(err), batch=len(batch))
            failure = (
                err if isinstance(err, StoreUnavailableError) else StoreUnavailableError(str(err))
            )
            results = [failure] * len(batch)
        else:
            self.commits += 1
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # the caller went away; its write still committed (or not) with the rest
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _run_batch(conn: sqlite3.Connection, jobs: list[Job]) -> list[Any]:
    """Every job in one transaction, each in a savepoint; one COMMIT (one fsync) for all."""
    results: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                results.append(job(conn))
            except Exception as err:
                conn.execute("ROLLBACK TO job")
                results.append(err)
            conn.execute("RELEASE job")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


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
