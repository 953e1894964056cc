"""What only PostgreSQL has: several replicas on one database. Each store here stands for a
replica (its own connection); the shared store tests are in tests/test_store.py."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from router.incidents import Change
from router.model import Alert
from router.routing import Routed
from router.store.base import StoreUnavailableError
from router.store.factory import open_store
from router.store.migrations import MIGRATIONS
from router.store.postgres import PostgresStore, postgres_sql
from router.teammodel import TeamModel

from pg import PostgresServer

NOW = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)


def _routed(key: str, action: str = "trigger") -> Routed:
    alert = Alert(
        source="generic",
        action=action,  # type: ignore[arg-type]
        name="CogsNulls",
        summary="COGS feed has nulls",
        severity="critical",
        pipeline="aggregate-profit",
        labels={"table": "cogs"},
        dedup_key=key,
    )
    return Routed(alert, None, "investor", key, ())


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.new_database()


@pytest.fixture
async def replicas(database: str) -> AsyncIterator[list[PostgresStore]]:
    stores = [PostgresStore(database) for _ in range(2)]
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


def test_placeholders_and_percent_signs_are_translated() -> None:
    sql = "SELECT 1 FROM t WHERE a = ? AND flags LIKE '%\"silenced\"%'"
    assert postgres_sql(sql) == "SELECT 1 FROM t WHERE a = %s AND flags LIKE '%%\"silenced\"%%'"


def test_the_url_selects_postgresql() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert store.url == "postgresql://u@h/db"


async def test_replicas_starting_together_migrate_once(database: str) -> None:
    stores = [PostgresStore(database) for _ in range(5)]
    await asyncio.gather(*(store.open() for store in stores))
    for store in stores:
        await store.close()
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert rows == [(version,) for version, _ in MIGRATIONS]


async def test_the_same_alert_on_two_replicas_at_once_opens_one_incident(
    replicas: list[PostgresStore],
) -> None:
    first, second = replicas
    changes: Counter[Change] = Counter()
    for n in range(40):
        key = f"race-{n}"
        outcomes = await asyncio.gather(
            first.ingest([_routed(key)], NOW), second.ingest([_routed(key)], NOW)
        )
        changes.update(outcome.change for [outcome] in outcomes)
        ids = {outcome.incident.id for [outcome] in outcomes if outcome.incident}
        assert len(ids) == 1
    assert changes == Counter({Change.OPEN: 40, Change.REPEAT: 40})
    assert await first.open_incident_count() == 40
    page = await first.incidents(limit=100)
    assert {incident.count for incident in page.incidents} == {2}


async def test_replicas_share_the_outbox_without_claiming_a_page_twice(
    replicas: list[PostgresStore], shipped_model: TeamModel
) -> None:
    first, second = replicas
    await first.ingest([_routed(f"page-{n}") for n in range(30)], NOW, model=shipped_model)
    lease = timedelta(minutes=1)
    claimed: list[int] = []
    for _ in range(20):
        batches = await asyncio.gather(
            first.claim_deliveries(NOW, 5, lease), second.claim_deliveries(NOW, 5, lease)
        )
        claimed += [d.notification.id for batch in batches for d in batch]
    assert claimed
    assert len(claimed) == len(set(claimed))
    depth = (await first.outbox_stats(NOW)).depth
    assert depth == len(claimed)  # every page claimed, each once (all 'sending' now)


async def _steps(store: PostgresStore, incident_ids: list[int]) -> Counter[tuple[int, int]]:
    """How many pages each (round, step) has, over the incidents."""
    steps: Counter[tuple[int, int]] = Counter()
    for incident_id in incident_ids:
        steps.update((n.round, n.step) for n in await store.notifications_of(incident_id))
    return steps


async def test_replicas_fire_each_due_step_once(
    replicas: list[PostgresStore], shipped_model: TeamModel
) -> None:
    first, second = replicas
    outcomes = await first.ingest(
        [_routed(f"esc-{n}") for n in range(20)], NOW, model=shipped_model
    )
    ids = [outcome.incident.id for outcome in outcomes if outcome.incident]
    before = await _steps(first, ids)
    later = NOW + timedelta(days=1)
    fired = await asyncio.gather(
        first.fire_due_escalations(shipped_model, later, 100),
        second.fire_due_escalations(shipped_model, later, 100),
    )
    assert sum(fired) == 20  # every due incident fired by exactly one replica
    after = await _steps(first, ids)
    assert sum(after.values()) > sum(before.values())
    assert {key: after[key] for key in before} == dict(before)  # nothing fired again


async def test_a_lost_connection_is_unavailable_then_reopened(
    replicas: list[PostgresStore], database: str
) -> None:
    store = replicas[0]
    await store.ingest([_routed("before")], NOW)
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StoreUnavailableError):
        await store.ingest([_routed("lost")], NOW)
    await store.ingest([_routed("after")], NOW)  # a new connection, no restart
    await store.ping()
    assert await store.open_incident_count() == 2


async def test_a_stopped_server_is_unavailable_and_recovers_when_it_returns(
    postgres_server: PostgresServer, database: str
) -> None:
    store = PostgresStore(database, connect_timeout=2)
    await store.open()
    try:
        await store.ingest([_routed("before")], NOW)
        postgres_server.stop_server()
        try:
            with pytest.raises(StoreUnavailableError):
                await store.ingest([_routed("down")], NOW)
            with pytest.raises(StoreUnavailableError):
                await store.ping()
        finally:
            postgres_server.start_server()
        await store.ping()
        await store.ingest([_routed("after")], NOW)
        assert await store.open_incident_count() == 2
    finally:
        await store.close()


async def test_replicas_taking_keys_in_opposite_orders_retry_instead_of_failing(
    replicas: list[PostgresStore],
) -> None:
    """Two batches open x then y, and y then x: one loses a deadlock, runs again after the
    other commits, and folds into the incidents the other opened."""
    first, second = replicas
    for n in range(5):  # a deadlock costs PostgreSQL's deadlock_timeout (1 s) to detect
        x, y = _routed(f"x-{n}"), _routed(f"y-{n}")
        outcomes = await asyncio.gather(first.ingest([x, y], NOW), second.ingest([y, x], NOW))
        changes = Counter(outcome.change for batch in outcomes for outcome in batch)
        assert changes == Counter({Change.OPEN: 2, Change.REPEAT: 2})
    assert await first.open_incident_count() == 10
