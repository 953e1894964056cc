"""The store on both engines, with the same test code: folding, group commit, savepoint
isolation, migrations, runtime entries. PostgreSQL runs for real (tests/pg.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest

from router.config import load_team_model
from router.incidents import Change
from router.model import Alert
from router.routing import Routed
from router.store.base import StoreUnavailableError
from router.store.migrations import MIGRATIONS
from router.store.postgres import PostgresStore
from router.store.sqlite import SqliteStore
from router.store.sqlite_runtime import runtime_generation
from router.store.threaded import ThreadedStore
from router.teammodel import LeaveEntry, Override

from pg import PostgresServer

MakeStore = Callable[[], ThreadedStore]

NOW = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def _routed(key: str, action: str = "trigger", summary: str = "COGS feed has nulls") -> Routed:
    alert = Alert(
        source="generic",
        action=action,  # type: ignore[arg-type]
        name="CogsNulls",
        summary=summary,
        severity="critical",
        pipeline="aggregate-profit",
        labels={"table": "cogs"},
        dedup_key=key,
    )
    return Routed(alert, None, "investor", key, ())


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """Unopened stores, all on one fresh database of the engine under test."""
    if request.param == "sqlite":
        path = tmp_path / "db" / "router.db"
        return lambda: SqliteStore(path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.new_database()
    return lambda: PostgresStore(url)


@pytest.fixture
async def store(make_store: MakeStore) -> AsyncIterator[ThreadedStore]:
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


async def test_alerts_fold_open_repeat_resolve_then_open_anew(store: ThreadedStore) -> None:
    changes = []
    for action in ("trigger", "trigger", "resolve", "trigger"):
        [outcome] = await store.ingest([_routed("k1", action)], NOW)
        changes.append(outcome.change)
    assert changes == [Change.OPEN, Change.REPEAT, Change.RESOLVE, Change.OPEN]
    page = await store.incidents()
    assert [(i.status, i.count) for i in page.incidents] == [("open", 1), ("resolved", 3)]


async def test_resolve_for_no_incident_is_recorded_but_opens_nothing(store: ThreadedStore) -> None:
    [outcome] = await store.ingest([_routed("ghost", "resolve")], NOW)
    assert outcome.change is Change.ORPHAN
    assert outcome.incident is None
    assert (await store.incidents()).incidents == []


async def test_concurrent_writes_share_commits(store: ThreadedStore) -> None:
    """Group commit: 200 concurrent alerts are all stored, in far fewer transactions."""
    await asyncio.gather(*(store.ingest([_routed(f"k{n}")], NOW) for n in range(200)))
    assert await store.open_incident_count() == 200
    assert store.commits < 100


async def test_a_failing_write_does_not_undo_the_others_in_its_batch(store: ThreadedStore) -> None:
    def broken(conn: Any) -> None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    results = await asyncio.gather(
        store.ingest([_routed("before")], NOW),
        store._write(broken),  # the savepoint mechanism itself is under test
        store.ingest([_routed("after")], NOW),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.OperationalError | psycopg.errors.UndefinedTable)
    assert await store.open_incident_count() == 2


async def test_close_commits_writes_already_queued(make_store: MakeStore) -> None:
    first = make_store()
    await first.open()
    pending = [asyncio.ensure_future(first.ingest([_routed(f"q{n}")], NOW)) for n in range(50)]
    await asyncio.sleep(0)  # let every write reach the queue (no wall-clock wait)
    await first.close()
    assert all(task.done() and not task.exception() for task in pending)
    second = make_store()
    await second.open()
    assert await second.open_incident_count() == 50
    await second.close()


async def test_migrations_run_once_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "router.db"
    for _ in range(3):
        store = SqliteStore(path)
        await store.open()
        await store.ingest([_routed("same")], NOW)
        await store.close()
    with sqlite3.connect(path) as conn:
        applied = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert applied == [(version,) for version, _ in MIGRATIONS]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_one_unresolved_incident_per_key_is_enforced_by_the_database(
    store: ThreadedStore,
) -> None:
    await store.ingest([_routed("dup")], NOW)

    def second_open(conn: Any) -> None:
        conn.execute(
            "INSERT INTO incidents (dedup_key, status, name, summary, severity, opened_at,"
            " updated_at, escalation, source) VALUES ('dup', 'open', 'n', 's', 'info', 'x',"
            " 'x', 'investor', 'generic')"
        )

    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        await store._write(second_open)


async def test_status_changes_are_idempotent_and_recorded(store: ThreadedStore) -> None:
    [outcome] = await store.ingest([_routed("ack")], NOW)
    assert outcome.incident is not None
    incident_id = outcome.incident.id
    later = NOW + timedelta(minutes=5)
    acked = await store.set_status(incident_id, "acknowledged", "Bob", later)
    assert acked is not None
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at) == (
        "acknowledged",
        "Bob",
        later,
    )
    again = await store.set_status(incident_id, "acknowledged", "Dana", later)
    assert again is not None
    assert again.acknowledged_by == "Bob"
    resolved = await store.set_status(incident_id, "resolved", "Alice", later)
    assert resolved is not None
    assert resolved.status == "resolved"
    assert await store.set_status(incident_id, "acknowledged", "Bob", later) == resolved
    kinds = [event.kind for event in await store.timeline(incident_id)]
    assert kinds == ["alert.opened", "incident.acknowledged", "incident.resolved"]
    assert await store.set_status(999, "resolved", "Alice", later) is None


async def test_runtime_entries_are_added_listed_and_withdrawn(store: ThreadedStore) -> None:
    leave = LeaveEntry.model_validate({"who": "Alice", "from": "2026-12-01", "to": "2026-12-05"})
    override = Override.model_validate(
        {"slot": "primary", "who": "Dana", "from": "2026-12-10T09:00", "to": "2026-12-11T09:00"}
    )
    leave_id = await store.add_runtime(leave, "ops", NOW)
    await store.add_runtime(override, "ops", NOW)
    [stored] = await store.runtime_entries("leave")
    assert (stored.id, stored.entry, stored.created_by, stored.created_at) == (
        leave_id,
        leave,
        "ops",
        NOW,
    )
    assert [e.entry for e in await store.runtime_entries("override")] == [override]
    assert await store.delete_runtime("override", leave_id, "ops", NOW) is False
    assert await store.delete_runtime("leave", leave_id, "ops", NOW) is True
    assert await store.delete_runtime("leave", leave_id, "ops", NOW) is False
    assert await store.runtime_entries("leave") == []


async def test_a_closed_store_is_unavailable(make_store: MakeStore) -> None:
    store = make_store()
    with pytest.raises(StoreUnavailableError):
        await store.ping()


async def test_an_unusable_path_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = SqliteStore(blocker / "router.db")
    with pytest.raises(StoreUnavailableError):
        await store.open()


async def test_runtime_generation_changes_with_every_add_and_withdrawal(
    store: ThreadedStore,
) -> None:
    """The on-call cache reloads runtime entries only when this value changes."""

    async def generation() -> tuple[int, int]:
        found: tuple[int, int] = await store._read(runtime_generation)
        return found

    seen = [await generation()]
    entry = LeaveEntry.model_validate({"who": "Bob", "from": "2026-12-01", "to": "2026-12-02"})
    leave_id = await store.add_runtime(entry, "ops", NOW)
    seen.append(await generation())
    cover = Override.model_validate(
        {"who": "Dana", "slot": "primary", "from": "2026-12-01", "to": "2026-12-02"}
    )
    await store.add_runtime(cover, "ops", NOW)
    seen.append(await generation())
    assert await store.delete_runtime("leave", leave_id, "ops", NOW)
    seen.append(await generation())
    assert not await store.delete_runtime("leave", leave_id, "ops", NOW)  # already withdrawn
    seen.append(await generation())
    assert len(set(seen[:4])) == 4
    assert seen[4] == seen[3]


async def test_sqlite_checkpoints_off_the_commit_path(tmp_path: Path) -> None:
    """Commits never copy the log back themselves; the checkpointer does, all of it."""
    path = tmp_path / "router.db"
    store = SqliteStore(path)
    assert store.checkpointer is not None
    # Its timer stays out of the way: this test asks for the one checkpoint it checks.
    store.checkpointer.interval = 3600
    await store.open()
    try:
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        empty = path.stat().st_size  # the database file before anything is copied into it
        for n in range(40):
            await store.ingest([_routed(f"checkpoint-{n}")], NOW)
        assert path.stat().st_size == empty  # the commits left their pages in the log
        await store.checkpointer.checkpoint()
        assert path.stat().st_size > empty
    finally:
        await store.close()


async def test_a_delivery_workers_store_neither_fsyncs_nor_checkpoints(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "router.db", fsync_commits=False)
    await store.open()
    try:
        assert store.checkpointer is None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        await store.close()


@pytest.mark.parametrize("pipeline", ["aggregate-profit", None])
async def test_a_new_incident_is_returned_exactly_as_it_is_stored(
    store: ThreadedStore, pipeline: str | None
) -> None:
    """Opening an incident builds it from the values inserted instead of reading the row
    back: the two must not differ (times, flags, a missing pipeline)."""
    routed = _routed("fresh")
    alert = replace(routed.alert, pipeline=pipeline)
    flags = () if pipeline else ("unknown_pipeline",)
    at = datetime(2026, 11, 26, 17, 0, 0, 123456, tzinfo=UTC)
    [outcome] = await store.ingest([replace(routed, alert=alert, flags=flags)], at)
    assert outcome.change is Change.OPEN
    assert outcome.incident is not None
    assert outcome.incident == await store.incident(outcome.incident.id)


async def test_a_failed_commit_leaves_no_runtime_entry_in_the_on_call_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An override added in a batch whose COMMIT failed must page nobody afterwards, even
    once another entry brings the count of entries (the cache's key) back to that number."""
    model = load_team_model(ROOT / "config")
    store = SqliteStore(tmp_path / "router.db")
    await store.open()
    try:

        async def paged(key: str) -> set[str]:
            [outcome] = await store.ingest([_routed(key)], NOW, None, model)
            assert outcome.incident is not None
            return {n.recipient for n in await store.notifications_of(outcome.incident.id)}

        primary = await paged("before")
        ghost = next(m.name for m in model.team.members if m.name not in primary)
        covers_now = {"slot": "primary", "from": NOW - timedelta(hours=1)}
        covers_now["to"] = NOW + timedelta(hours=1)
        failures = [sqlite3.OperationalError("disk I/O error")]

        def commit_failing_once(conn: sqlite3.Connection) -> None:
            if failures:
                conn.execute("ROLLBACK")
                raise failures.pop()
            conn.execute("COMMIT")

        monkeypatch.setattr("router.store.sqlite.commit", commit_failing_once)
        batch = await asyncio.gather(  # one batch: the ingest reads the override just added
            store.add_runtime(Override.model_validate({**covers_now, "who": ghost}), "ops", NOW),
            store.ingest([_routed("during")], NOW, None, model),
            return_exceptions=True,
        )
        assert [type(result) for result in batch] == [StoreUnavailableError] * 2
        later = {"slot": "primary", "who": ghost, "from": NOW + timedelta(days=30)}
        later["to"] = NOW + timedelta(days=31)
        await store.add_runtime(Override.model_validate(later), "ops", NOW)

        assert await paged("after") == primary
    finally:
        await store.close()
