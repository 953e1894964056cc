"""The plumbing both engines share: one connection in one executor thread, group commit.

Writes queue up while a commit is in flight; the writer task runs everything queued in one
transaction and pays one commit for all of them (if a job fails, the batch runs again with
each job in its own savepoint, so it does not undo the others). Reads run in the same
thread. Every job is a plain synchronous function of a `Connection` (router.store.dbapi),
shared by SQLite and PostgreSQL, so the SQL exists once. A lost connection fails the calls
that were using it with StoreUnavailableError (→ 503) and is opened again on the next use.
"""

from __future__ import annotations

__all__ = ["Job", "ThreadedStore", "commit", "rollback", "run_batch", "run_guarded"]

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog

from router.model import Incident, IncidentStatus, Notification, TimelineEvent
from router.moments import MomentCache
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
from router.store.dbapi import dialect
from router.teammodel import LeaveEntry, Override, Silence, TeamModel

T = TypeVar("T")
Job = Callable[[Any], Any]
log = structlog.get_logger(__name__)


class ThreadedStore:
    """`Store` on a DB-API-like connection owned by one executor thread.

    A subclass says how to connect (`_connect`, run in that thread), which exceptions mean
    the database is unusable (`_unavailable`), and whether a connection is lost (`_lost`).
    """

    engine = "database"
    _unavailable: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, *, max_batch: int = 512) -> None:
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.engine)
        self._conn: Any = None
        self._open = False
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed: with group commit, fewer than writes
        self._moments = MomentCache()  # used by one write job at a time

    def _connect(self) -> Any:
        raise NotImplementedError

    def _lost(self, conn: Any) -> bool:  # noqa: ARG002 - engines that can lose one say so
        return False

    def _describe(self) -> str:
        return self.engine

    async def open(self) -> None:
        """Connect, apply migrations, start the writer."""
        self._conn = await self._in_thread(self._connect)
        self._open = True
        self._writer = asyncio.create_task(self._write_loop(), name=f"{self.engine}-writer")

    async def close(self) -> None:
        """Let queued writes commit, then close the connection."""
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        self._open = False
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
        job = partial(
            q.ingest, routed=routed, now=now, caller=caller, model=model, moments=self._moments
        )
        result: list[IngestOutcome] = await self._write(job)
        return result

    async def fire_due_escalations(self, model: TeamModel, now: datetime, limit: int) -> int:
        """Fire due escalation steps."""
        job = partial(escalation.fire_due, model=model, now=now, limit=limit, moments=self._moments)
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

    async def record_delivery(self, outcome: DeliveryOutcome) -> bool:
        """Store a delivery attempt's outcome, if its lease still holds."""
        stored: bool = await self._write(partial(outbox.record, outcome=outcome))
        return stored

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

    async def exhausted_incident_count(self) -> int:
        """Open incidents whose escalation ran out."""
        count: int = await self._read(q.exhausted_count)
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

    async def delete_silence(self, silence_id: int, by: str, now: datetime, tz: ZoneInfo) -> bool:
        """End a silence early."""
        job = partial(runtime.delete_silence, silence_id=silence_id, by=by, now=now, tz=tz)
        done: bool = await self._write(job)
        return done

    async def runtime_silences(self) -> list[RuntimeSilence]:
        """Runtime silences not withdrawn."""
        found: list[RuntimeSilence] = await self._read(runtime.runtime_silences)
        return found

    # -- plumbing ---------------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except self._unavailable as err:
            raise StoreUnavailableError(f"{self._describe()}: {err}") from err

    def _with_connection(self, job: Callable[[Any], T]) -> T:
        """In the thread: run `job` on the connection, opening it again if it was lost."""
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            return job(conn)
        except BaseException:
            if self._lost(conn):
                self._conn = None
                log.warning("store.connection_lost", engine=self.engine)
                try:
                    conn.close()
                except Exception as err:  # it is gone either way
                    log.debug("store.close_failed", error=str(err))
            raise

    async def _read(self, job: Callable[[Any], T]) -> T:
        self._connection()
        return await self._in_thread(self._with_connection, job)

    async def _write(self, job: Job) -> Any:
        self._connection()
        if self._writer is None or self._writer.done():
            # Queued work would wait forever: refuse it, so the caller answers 503.
            raise StoreUnavailableError(f"the {self.engine} writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    def _connection(self) -> None:
        if not self._open:
            raise StoreUnavailableError(f"the {self.engine} store is not open")

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

    async def _execute(self, jobs: list[Job]) -> list[Any]:
        """One batch of writes in one transaction, in the thread (SqliteStore runs the jobs
        on the event loop and only the commit in the thread)."""
        return await self._in_thread(self._with_connection, partial(run_batch, jobs=jobs))

    async def _commit(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        jobs = [job for job, _ in batch]
        try:
            results = await self._execute(jobs)
        except Exception as err:  # every waiting caller must hear of it
            self._moments.forget()  # it may hold runtime entries of the batch rolled back
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


_ATTEMPTS = 3


def run_batch(conn: Any, jobs: list[Job]) -> list[Any]:
    """Every job in one transaction; one COMMIT (one fsync) for all.

    The common case, where no job fails, runs the jobs back to back. If one raises, that
    transaction is rolled back and the batch runs again with each job in its own savepoint,
    so the failing job does not undo the others (jobs are functions of the database alone,
    so running them again is safe). Savepoints cost two statements per job: most batches
    never need them.
    """
    if (results := _run_plain(conn, jobs)) is not None:
        return results
    return run_guarded(conn, jobs)


def _run_plain(conn: Any, jobs: list[Job]) -> list[Any] | None:
    """The batch without savepoints, committed; None (nothing committed) if a job raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        results = [job(conn) for job in jobs]
    except Exception:
        rollback(conn)
        return None
    except BaseException:
        rollback(conn)
        raise
    commit(conn)
    return results


def commit(conn: Any) -> None:
    """COMMIT; if that fails, ROLLBACK what is left of the transaction and raise."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: Any) -> None:
    """ROLLBACK if a transaction is open (a failed statement may have ended it already)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def run_guarded(conn: Any, jobs: list[Job]) -> list[Any]:
    """Each job in a savepoint: a failing job is rolled back alone.

    A job that loses a deadlock (replicas' batches taking the same rows in other orders) is
    rolled back to its savepoint and run again after the commit, in the next transaction,
    once the other replica's batch is through; SQLite, with one writer, has no such error.
    """
    results: list[Any] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    retryable = dialect(conn).retry_errors
    for attempt in range(_ATTEMPTS):
        again: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for index in pending:
                conn.execute("SAVEPOINT job")
                try:
                    results[index] = jobs[index](conn)
                except Exception as err:
                    conn.execute("ROLLBACK TO job")
                    if isinstance(err, retryable) and attempt < _ATTEMPTS - 1:
                        again.append(index)
                    else:
                        results[index] = err
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        if not again:
            break
        log.info("store.jobs_retried", count=len(again), reason="deadlock")
        pending = again
    return results
