"""Building the router's aiohttp application for HTTP tests, and reading its answers.

Every app gets its own SQLite file under the test's `tmp_path`, the shipped team model (or a
variation of it), named bearer tokens, and an injected clock, so no test sleeps or reads the
wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import ClientResponse, ClientSession, TraceConfig, TraceRequestEndParams, web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from router.app import create_app
from router.config import load_team_model
from router.settings import Settings
from router.teammodel import TeamModel

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

TOKEN_NAME = "ops"
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
AUTH_JSON = {**AUTH, **JSON}
# 2026-11-24 12:00 in New York: week 5, an ordinary Tuesday; Alice primary, Bob backup.
NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
MakeApp = Callable[[web.Application], Awaitable[Client]]


class FakeClock:
    """The app's clock: stands still until a test moves it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self.now += delta


def settings(database: Path, **changes: Any) -> Settings:
    """Settings for a test app: the shipped config, one token, a database under `database`."""
    values: dict[str, Any] = {
        "config": CONFIG,
        "inbound_tokens": {TOKEN_NAME: SecretStr(TOKEN)},
        "database_url": f"sqlite:///{database / 'router.db'}",
    }
    values.update(changes)
    return Settings(**values)


def build_app(
    database: Path,
    *,
    model: TeamModel | None = None,
    clock: Callable[[], datetime] | None = None,
    **changes: Any,
) -> web.Application:
    """The router's app on a fresh SQLite file; `changes` override the settings."""
    return create_app(
        settings(database, **changes),
        model if model is not None else load_team_model(CONFIG),
        clock=clock if clock is not None else FakeClock(),
        deliver_in_background=False,  # these tests are about intake, not delivery
    )


def fixture_text(name: str) -> str:
    """A fixture body, exactly as its file has it."""
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def fixture(name: str) -> dict[str, Any]:
    """A fixture body, parsed."""
    document: dict[str, Any] = json.loads(fixture_text(name))
    return document


async def json_of(response: ClientResponse) -> Any:
    """The JSON body of a response, after checking that it says it is JSON."""
    assert response.content_type == "application/json", await response.text()
    return await response.json()


async def post_json(
    client: Client, path: str, document: object, headers: Mapping[str, str] = AUTH
) -> ClientResponse:
    """POST `document` as JSON with the test token (or the given headers)."""
    return await client.post(path, json=document, headers=dict(headers))


async def all_incidents(client: Client, **query: str) -> list[dict[str, Any]]:
    """`GET /api/v1/incidents` with `query`, the first page."""
    response = await client.get("/api/v1/incidents", params=query, headers=AUTH)
    assert response.status == 200, await response.text()
    incidents: list[dict[str, Any]] = (await json_of(response))["incidents"]
    return incidents


async def incident_detail(client: Client, incident_id: int) -> dict[str, Any]:
    """`GET /api/v1/incidents/{id}`, which must exist."""
    response = await client.get(f"/api/v1/incidents/{incident_id}", headers=AUTH)
    assert response.status == 200, await response.text()
    detail: dict[str, Any] = await json_of(response)
    return detail


def model_with_integration_key(pipeline_id: str, key: str) -> TeamModel:
    """The shipped team model with `key` as the one PagerDuty integration key of a pipeline."""
    model = load_team_model(CONFIG)
    assert model.pipeline(pipeline_id) is not None
    pipelines = [
        p.model_copy(update={"integration_keys": [SecretStr(key)]}) if p.id == pipeline_id else p
        for p in model.pipelines
    ]
    return model.model_copy(update={"pipelines": pipelines})


class AnswerLog:
    """Every status a client saw, through aiohttp's client tracing: a fixture that makes its
    clients with `trace_config()` can assert at the end that no answer was a 500."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str, int]] = []

    def trace_config(self) -> TraceConfig:
        """A trace config that records (method, path, status) of every response."""
        config = TraceConfig()
        config.on_request_end.append(self._record)
        return config

    async def _record(
        self, _session: ClientSession, _context: SimpleNamespace, params: TraceRequestEndParams
    ) -> None:
        self.answers.append((params.method, params.url.path, params.response.status))

    def server_errors(self) -> list[tuple[str, str, int]]:
        """The answers with a 5xx status other than 503 (which is the store's honest answer)."""
        return [answer for answer in self.answers if answer[2] >= 500 and answer[2] != 503]
