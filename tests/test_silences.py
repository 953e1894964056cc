"""Silences: matching alerts are recorded and page nobody; escalation starts when they end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from router.web.keys import ESCALATOR

from apphelpers import AUTH, NOW, FakeClock, build_app

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path, clock: FakeClock) -> Client:
    return await aiohttp_client(build_app(tmp_path, clock=clock))


async def _alert(client: Client, pipeline: str, key: str, **labels: str) -> int:
    body = {
        "pipeline": pipeline,
        "summary": f"{pipeline} is late",
        "severity": "critical",
        "status": "firing",
        "dedup_key": key,
        "labels": labels,
    }
    response = await client.post("/api/v1/alerts", json=body, headers=AUTH)
    assert response.status == 202, await response.text()
    incident_id: int = (await response.json())["incidents"][0]["id"]
    return incident_id


async def _detail(client: Client, incident_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/incidents/{incident_id}", headers=AUTH)
    detail: dict[str, Any] = await response.json()
    return detail


async def _silence(client: Client, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/silences", json=fields, headers=AUTH)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def test_a_silenced_alert_is_recorded_pages_nobody_and_escalates_when_the_silence_ends(
    client: Client, clock: FakeClock
) -> None:
    ends = (NOW + 30 * MINUTE).isoformat()
    await _silence(client, pipeline="aggregate-profit", ends=ends, comment="backfill")
    incident_id = await _alert(client, "aggregate-profit", "k1")
    detail = await _detail(client, incident_id)
    assert detail["notifications"] == []
    assert "silenced" in detail["flags"]
    assert any(e["kind"] == "incident.silenced" for e in detail["timeline"])
    clock.advance(29 * MINUTE)
    assert await client.app[ESCALATOR].fire_due() == 0
    clock.advance(MINUTE)
    assert await client.app[ESCALATOR].fire_due() == 1
    detail = await _detail(client, incident_id)
    assert [(n["event"], n["recipient"]) for n in detail["notifications"]] == [
        ("incident.triggered", "Alice")
    ]


async def test_a_silence_resolved_incident_never_pages(client: Client, clock: FakeClock) -> None:
    await _silence(client, pipeline="aggregate-profit", ends=(NOW + 30 * MINUTE).isoformat())
    incident_id = await _alert(client, "aggregate-profit", "k1")
    response = await client.post(f"/api/v1/incidents/{incident_id}/resolve", headers=AUTH)
    assert response.status == 200
    clock.advance(31 * MINUTE)
    await client.app[ESCALATOR].fire_due()
    assert (await _detail(client, incident_id))["notifications"] == []


async def test_label_matchers_silence_only_matching_alerts(client: Client) -> None:
    await _silence(client, matchers={"table": "cogs"}, ends=(NOW + 30 * MINUTE).isoformat())
    quiet = await _alert(client, "aggregate-profit", "k1", table="cogs")
    loud = await _alert(client, "aggregate-profit", "k2", table="orders")
    assert (await _detail(client, quiet))["notifications"] == []
    assert len((await _detail(client, loud))["notifications"]) == 1


async def test_ending_a_silence_early_escalates_what_it_held_back(
    client: Client, clock: FakeClock
) -> None:
    created = await _silence(
        client, pipeline="aggregate-profit", ends=(NOW + 60 * MINUTE).isoformat()
    )
    incident_id = await _alert(client, "aggregate-profit", "k1")
    clock.advance(5 * MINUTE)
    response = await client.delete(f"/api/v1/silences/{created['id']}", headers=AUTH)
    assert response.status == 204
    assert len((await _detail(client, incident_id))["notifications"]) == 1
    again = await client.delete(f"/api/v1/silences/{created['id']}", headers=AUTH)
    assert again.status == 404


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"ends": "2026-11-25T00:00"}, "(body)"),
        ({"pipeline": "no-such", "ends": "2026-11-25T00:00"}, "pipeline"),
        ({"pipeline": "aggregate-profit", "ends": "2026-11-01T00:00"}, "ends"),
        ({"pipeline": "aggregate-profit"}, "ends"),
    ],
)
async def test_a_bad_silence_is_refused_with_its_field(
    client: Client, fields: dict[str, Any], path: str
) -> None:
    response = await client.post("/api/v1/silences", json=fields, headers=AUTH)
    assert response.status == 422
    details = (await response.json())["error"]["details"]
    assert path in [d["path"] for d in details]


async def test_silences_are_listed_with_author_and_whether_active(client: Client) -> None:
    await _silence(client, pipeline="aggregate-growth", ends=(NOW + MINUTE).isoformat())
    response = await client.get("/api/v1/silences", headers=AUTH)
    listed = (await response.json())["runtime"]
    assert [(s["pipeline"], s["author"], s["active"]) for s in listed] == [
        ("aggregate-growth", "ops", True)
    ]


async def test_ending_an_unrelated_silence_does_not_hurry_an_incident_a_silence_once_held(
    client: Client, clock: FakeClock
) -> None:
    """The incident waited out one silence and paged step 1; ending another silence, which
    never held it, must leave its step 2 at its time."""
    await _silence(client, pipeline="aggregate-profit", ends=(NOW + 10 * MINUTE).isoformat())
    other = await _silence(
        client, pipeline="aggregate-growth", ends=(NOW + 60 * MINUTE).isoformat()
    )
    incident_id = await _alert(client, "aggregate-profit", "k1")
    clock.advance(10 * MINUTE)
    assert await client.app[ESCALATOR].fire_due() == 1  # step 1, once the silence ended
    clock.advance(2 * MINUTE)
    response = await client.delete(f"/api/v1/silences/{other['id']}", headers=AUTH)
    assert response.status == 204
    detail = await _detail(client, incident_id)
    assert [(n["step"], n["recipient"]) for n in detail["notifications"]] == [(1, "Alice")]
