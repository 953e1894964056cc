"""The daemon's HTTP surface, through a real aiohttp server on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from router.app import create_app
from router.config import load_team_model
from router.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Thanksgiving 2026, 17:00 UTC = 12:00 in New York: Bob covers Alice's holiday.
NOW = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def _app(database: Path, tokens: dict[str, str] | None = None) -> web.Application:
    tokens = {"ops": TOKEN} if tokens is None else tokens
    secrets = {name: SecretStr(value) for name, value in tokens.items()}
    settings = Settings(
        config=ROOT / "config",
        inbound_tokens=secrets,
        database_url=f"sqlite:///{database / 'router.db'}",
    )
    model = load_team_model(ROOT / "config")
    return create_app(settings, model, clock=lambda: NOW, deliver_in_background=False)


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path) -> Client:
    return await aiohttp_client(_app(tmp_path))


async def _json(response: Any) -> Any:
    assert response.content_type == "application/json"
    return await response.json()


async def test_healthz_needs_no_credentials(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await _json(response))["status"] == "ok"


async def test_readyz_is_ready_with_a_loaded_model(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200


async def test_oncall_without_token_is_401_with_json_error(client: Client) -> None:
    response = await client.get("/api/v1/oncall")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = await _json(response)
    assert body["error"]["code"] == "unauthorized"


async def test_oncall_with_a_wrong_token_is_401(client: Client) -> None:
    response = await client.get("/api/v1/oncall", headers={"Authorization": "Bearer nope"})
    assert response.status == 401


async def test_oncall_defaults_to_the_injected_clock(client: Client) -> None:
    response = await client.get("/api/v1/oncall", headers=AUTH)
    body = await _json(response)
    assert response.status == 200
    assert body["at"] == "2026-11-26T12:00:00-05:00"
    assert (body["week"], body["primary"], body["backup"]) == (5, "Bob", "Charlie")
    assert body["reasons"][1] == "2026-11-26 is Thanksgiving Day (US): Alice hands primary to Bob"


@pytest.mark.parametrize(
    ("at", "week", "primary", "backup"),
    [
        ("2026-11-24T12:00", 5, "Alice", "Bob"),
        ("2026-11-30T08:59", 5, "Alice", "Bob"),
        ("2026-11-30T09:00", 6, "Bob", "Charlie"),
        ("2026-12-25T15:00:00Z", 9, "Bob", "Charlie"),
    ],
)
async def test_oncall_at_answers_like_the_cli(
    client: Client, at: str, week: int, primary: str, backup: str
) -> None:
    response = await client.get("/api/v1/oncall", params={"at": at}, headers=AUTH)
    body = await _json(response)
    assert (body["week"], body["primary"], body["backup"]) == (week, primary, backup)
    assert {"at", "nominal_primary", "nominal_backup", "reasons"} <= body.keys()


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("tomorrow", "at: 'tomorrow' is not an ISO 8601 date or date-time"),
        ("", "at: '' is not an ISO 8601 date or date-time"),
        ("9999-12-31T23:59", "at: '9999-12-31T23:59' must be between the years 1900 and 2999"),
        ("0001-01-01", "at: '0001-01-01' must be between the years 1900 and 2999"),
    ],
)
async def test_oncall_with_a_bad_instant_is_400_naming_the_parameter(
    client: Client, at: str, message: str
) -> None:
    response = await client.get("/api/v1/oncall", params={"at": at}, headers=AUTH)
    assert response.status == 400
    body = await _json(response)
    assert body["error"]["details"] == ["at"]
    assert body["error"]["message"].startswith(message)


async def test_schedule_spans_tile_and_split_on_the_holiday(client: Client) -> None:
    response = await client.get(
        "/api/v1/schedule", params={"from": "2026-11-24", "weeks": "2"}, headers=AUTH
    )
    spans = (await _json(response))["spans"]
    assert spans[0]["from"] == "2026-11-23T09:00:00-05:00"
    assert spans[-1]["to"] == "2026-12-07T09:00:00-05:00"
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(spans))
    thanksgiving = [s for s in spans if s["from"] == "2026-11-26T00:00:00-05:00"]
    assert [(s["primary"], s["backup"], s["to"]) for s in thanksgiving] == [
        ("Bob", "Charlie", "2026-11-27T00:00:00-05:00")
    ]


@pytest.mark.parametrize("weeks", ["0", "-1", "x", "521"])
async def test_schedule_refuses_a_bad_week_count(client: Client, weeks: str) -> None:
    response = await client.get("/api/v1/schedule", params={"weeks": weeks}, headers=AUTH)
    assert response.status == 400
    assert (await _json(response))["error"]["details"] == ["weeks"]


async def test_schedule_ics_is_a_valid_calendar_with_one_event_per_span(client: Client) -> None:
    params = {"from": "2026-12-21T09:00", "weeks": "1"}
    response = await client.get("/api/v1/schedule.ics", params=params, headers=AUTH)
    assert response.status == 200
    assert response.content_type == "text/calendar"
    calendar = icalendar.Calendar.from_ical(await response.read())
    events = list(calendar.walk("VEVENT"))
    summaries = [str(event["SUMMARY"]) for event in events]
    assert summaries == [
        "On call: Alice (backup Bob)",
        "On call: Bob (backup Charlie)",
        "On call: Alice (backup Bob)",
    ]
    assert len({str(event["UID"]) for event in events}) == 3


async def test_unknown_path_and_wrong_method_are_json_errors(client: Client) -> None:
    missing = await client.get("/api/v1/nope", headers=AUTH)
    assert missing.status == 404
    assert (await _json(missing))["error"]["code"] == "not_found"
    wrong = await client.post("/api/v1/oncall", headers=AUTH)
    assert wrong.status == 405
    assert (await _json(wrong))["error"]["code"] == "method_not_allowed"


async def test_with_no_tokens_configured_the_api_refuses_and_says_why(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(_app(tmp_path, tokens={}))
    response = await client.get("/api/v1/oncall", headers=AUTH)
    assert response.status == 401
    assert "ROUTER_INBOUND_TOKENS" in (await _json(response))["error"]["message"]
    assert (await client.get("/healthz")).status == 200


async def test_any_of_several_named_tokens_is_accepted(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(_app(tmp_path, {"grafana": "g-token", "ops": "o-token"}))
    for token in ("g-token", "o-token"):
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/oncall", headers=headers)).status == 200
