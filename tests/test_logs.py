"""Logs: JSON lines, no secret in any of them, and the ids that follow one alert end to end.

The end-to-end test runs a real `router serve` (JSON logs, debug level, every secret the
router knows set to a distinctive value) through a full cycle, alert → page → ack through the
link in the page → resolve, against a webhook receiver served by the test, then reads every
line the daemon wrote. The other tests pin the redaction rules and the request id one by one.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from router.config import load_team_model
from router.logs import REDACTED, Redactor, known_secrets
from router.settings import Settings
from router.web.requestid import REQUEST_ID_HEADER

from apphelpers import MakeClient, build_app
from configs import copy_shipped, edit
from services import RouterProcess

BEARER = "bearer-tok-7Qx2LmZ9pR4vWs"
HMAC_SECRETS = ("hmac-one-K8s3Wd0Yt6NqJe", "hmac-two-Ga5Ub9Mo2IhYr")
SMTP_PASSWORD = "smtp-pass-Vb5Jc1Hx9Ue2Tf"
CHANNEL_SECRET = "channel-secret-Fm7Ra4Gk2Lz8"
INTEGRATION_KEY = "integration-key-Pn3Ts6Ey1Bo5"
HOOK_PASSWORD = "hook-pass-Zu4Ci8Oq3Xa7Dn"  # URL credentials of the members' webhook
SECRETS = (BEARER, *HMAC_SECRETS, SMTP_PASSWORD, CHANNEL_SECRET, INTEGRATION_KEY, HOOK_PASSWORD)
MEMBERS = ("Alice", "Bob", "Charlie", "Dana")
ACK_REQUEST_ID = "ack-post-0123456789"
T = TypeVar("T")


@dataclass
class Receiver:
    """A webhook receiver that records every body and answers 200."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen on a free loopback port; returns the port."""
        app = web.Application()
        app.router.add_post("/{path:.*}", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port: int = self._runner.addresses[0][1]
        return port

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.Response(status=200)

    def page(self, event: str, incident: int) -> dict[str, Any] | None:
        """The first body of `event` for `incident`, if it came."""
        return next(
            (
                body
                for body in self.bodies
                if body["event"] == event and body["incident"]["id"] == incident
            ),
            None,
        )


def _config(tmp_path: Path, port: int) -> Path:
    """The shipped config, every member paged by a webhook with URL credentials, a pipeline
    with a PagerDuty integration key, and a fallback chat channel with its own secret."""
    folder = copy_shipped(tmp_path)
    hook = f"http://hook:{HOOK_PASSWORD}@127.0.0.1:{port}"
    for name in MEMBERS:
        edit(
            folder / "team.yaml",
            f"{{name: {name}, email: {name.lower()}@example.com}}",
            f'{{name: {name}, webhook: "{hook}/members/{name.lower()}"}}',
        )
    edit(
        folder / "pipelines.yaml",
        "    runbook: aggregate-profit\n",
        f'    runbook: aggregate-profit\n    integration_keys: ["{INTEGRATION_KEY}"]\n',
    )
    edit(
        folder / "pipelines.yaml",
        "  fallback_escalation: investor",
        "  fallback_escalation: investor\n  fallback_channel: ops-room",
    )
    edit(
        folder / "escalation.yaml",
        "channels: {}",
        f'channels:\n  ops-room: {{type: webhook, url: "{hook}/room", secret: "{CHANNEL_SECRET}"}}',
    )
    return folder


def _alert(status: str) -> dict[str, Any]:
    return {
        "pipeline": "aggregate-profit",
        "summary": "COGS feed has nulls",
        "severity": "critical",
        "status": status,
        "dedup_key": "logs-e2e-cogs-nulls",
    }


async def _until(check: Callable[[], T | None], *, within: float, what: str) -> T:
    """Poll `check()` (it watches the daemon or the receiver) until it returns a value."""
    deadline = time.monotonic() + within
    while (value := check()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def _records(text: str) -> list[dict[str, Any]]:
    """Every line of the log as JSON; a line that is not a JSON object fails the test."""
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def _logged(router: RouterProcess, event: str, incident: int) -> bool | None:
    found = any(
        r.get("event") == event and r.get("incident") == incident for r in _records(router.log())
    )
    return True if found else None


async def _cycle(router: RouterProcess, receiver: Receiver) -> tuple[int, str, str]:
    """Alert → page → ack (GET, then POST) → resolve; returns (incident, request id, token)."""
    auth = {"Authorization": f"Bearer {BEARER}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        async with http.post(
            f"{router.base_url}/api/v1/alerts", json=_alert("firing"), headers=auth
        ) as response:
            body = await response.json()
            assert response.status == 202, body
            request_id = response.headers[REQUEST_ID_HEADER]
        incident = int(body["incidents"][0]["id"])
        page = await _until(
            lambda: receiver.page("incident.triggered", incident), within=20, what="the page"
        )
        ack_url: str = page["ack_url"]
        token = ack_url.rsplit("/ack/", 1)[1]
        async with http.get(ack_url) as response:
            assert response.status == 200, await response.text()
        headers = {REQUEST_ID_HEADER: ACK_REQUEST_ID}
        async with http.post(ack_url, headers=headers) as response:
            assert response.status == 200, await response.text()
            assert "acknowledged" in await response.text()
            assert response.headers[REQUEST_ID_HEADER] == ACK_REQUEST_ID
        # A careless client puts credentials in a query string: the access log has them.
        query = "&".join(f"s{n}={secret}" for n, secret in enumerate(SECRETS))
        async with http.get(f"{router.base_url}/healthz?{query}") as response:
            assert response.status == 200
        async with http.post(
            f"{router.base_url}/api/v1/alerts", json=_alert("resolved"), headers=auth
        ) as response:
            assert response.status == 202, await response.text()
        await _until(
            lambda: receiver.page("incident.resolved", incident), within=20, what="the resolve"
        )
        await _until(
            lambda: _logged(router, "incident.acknowledged", incident), within=10, what="ack log"
        )
    return incident, request_id, token


@pytest.mark.timeout(90)
async def test_a_full_cycle_logs_json_lines_without_secrets_and_with_ids_end_to_end(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    config = _config(tmp_path, await receiver.start())
    env = {
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": "debug",
        "ROUTER_HMAC_SECRET": ",".join(HMAC_SECRETS),
        "ROUTER_SMTP_USERNAME": "router",
        "ROUTER_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    router = RouterProcess(tmp_path, config=config, tokens={"monitor": BEARER}, env=env)
    try:
        await asyncio.to_thread(router.start)
        incident, request_id, ack_token = await _cycle(router, receiver)
        assert await asyncio.to_thread(router.terminate) == 0
    finally:
        router.stop()
        await receiver.close()

    text = router.log()
    records = _records(text)
    for record in records:
        assert {"timestamp", "level", "event"} <= record.keys(), record
    for secret in (*SECRETS, ack_token):
        assert secret not in text, f"{secret!r} is in the log"

    def lines(event: str) -> list[dict[str, Any]]:
        return [r for r in records if r["event"] == event and r.get("incident") == incident]

    [received] = [r for r in lines("alert.received") if r["change"] == "opened"]
    assert received["request_id"] == request_id
    sent = lines("notification.sent")
    assert sent, "no notification.sent line for the incident"
    assert records.index(received) < records.index(sent[0])
    assert lines("incident.acknowledged")[0]["request_id"] == ACK_REQUEST_ID
    # aiohttp's access log goes through the same pipeline: JSON, the request id, no token.
    [ack_access] = [
        r for r in records if "POST /ack/" in r["event"] and r.get("request_id") == ACK_REQUEST_ID
    ]
    assert f"/ack/{REDACTED} " in ack_access["event"]
    assert any("/healthz?s0=***&s1=***" in r["event"] for r in records)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: ***"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "***"}'),
        ("sent with bearer abc123 to the hook", "sent with bearer *** to the hook"),
        ("https://user:pa55@hooks.example.com/x", "https://***@hooks.example.com/x"),
        ("smtp://mailer@mail.example.com:587", "smtp://***@mail.example.com:587"),
        ("see https://example.com/a?b=c@d", "see https://example.com/a?b=c@d"),
        ('"GET /ack/12.QWxpY2U.1790000000.9f8e HTTP/1.1" 200', '"GET /ack/*** HTTP/1.1" 200'),
        (
            "https://router.example.com/ack/3.Qm9i.1.ab?x=1",
            "https://router.example.com/ack/***?x=1",
        ),
        ("the token expired", "the token expired"),
        ("plain text, nothing to hide", "plain text, nothing to hide"),
    ],
)
def test_patterns_mask_headers_url_credentials_and_ack_tokens(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_known_secrets_are_masked_anywhere_in_an_event_at_any_depth() -> None:
    redactor = Redactor(["s3cr3t-value", "s3cr3t-value-longer", "ab"])
    event = {
        "event": "thing.happened",
        "error": "refused s3cr3t-value-longer and s3cr3t-value",
        "nested": {"list": ["x s3cr3t-value y", 3, None], "ok": True},
        "password": "anything at all",
        "headers": {"Authorization": "Token zzz", "Accept": "ab"},
        "path": Path("/tmp/s3cr3t-value"),
    }
    assert redactor(None, "info", event) == {
        "event": "thing.happened",
        "error": "refused *** and ***",
        "nested": {"list": ["x *** y", 3, None], "ok": True},
        "password": REDACTED,
        "headers": {"Authorization": REDACTED, "Accept": "ab"},  # "ab" is too short to mask
        "path": "/tmp/***",
    }


def test_known_secrets_come_from_the_settings_and_the_team_model(tmp_path: Path) -> None:
    folder = _config(tmp_path, 9)
    settings = Settings(
        config=folder,
        inbound_tokens={"monitor": SecretStr(BEARER)},
        hmac_secret=SecretStr(",".join(HMAC_SECRETS)),
        smtp_password=SecretStr(SMTP_PASSWORD),
    )
    found = set(known_secrets(settings, load_team_model(folder)))
    assert set(SECRETS) <= found  # and the comma-separated list as written


async def test_every_answer_carries_a_request_id_and_a_sane_one_from_outside_is_kept(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(build_app(tmp_path))
    fresh = await client.get("/healthz")
    refused = await client.get("/api/v1/incidents")  # no token: an error answer has one too
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers[REQUEST_ID_HEADER])
    assert refused.status == 401
    assert refused.headers[REQUEST_ID_HEADER] != fresh.headers[REQUEST_ID_HEADER]
    kept = await client.get("/healthz", headers={REQUEST_ID_HEADER: "lb-7f3a9c2e:1"})
    assert kept.headers[REQUEST_ID_HEADER] == "lb-7f3a9c2e:1"
    for insane in ("short", "x" * 65, "has space in it", "new\\nline-injected"):
        replaced = await client.get("/healthz", headers={REQUEST_ID_HEADER: insane})
        assert replaced.headers[REQUEST_ID_HEADER] != insane
