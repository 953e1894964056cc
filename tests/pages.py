"""Driving a real `router serve` through paging: a webhook receiver served by the test
(an aiohttp server on the test's event loop) that records every page and can answer slowly
or not at all, a copy of the shipped config that pages every member there, and waits on
the daemon's state that poll it (they never stand in for a test's logic).

The kill -9 scenarios (tests/test_delivery_crash.py, tests/test_ha_postgres.py) share the
figures below; tests/test_workers.py uses ENV and the receiver too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from configs import copy_shipped, edit
from services import RouterProcess

ALERTS = 40
# The daemon is killed once the receiver has seen this many pages (and some are unanswered).
KILL_AFTER_RECEIVED = 6
SLOW_ANSWER = 0.5  # seconds the receiver takes to answer each page in the kill -9 test
LEASE_SECONDS = 3  # ROUTER_DELIVERY_LEASE_SECONDS: a killed daemon's claims expire this fast
ENV = {
    "ROUTER_RATE_LIMIT_PER_SECOND": "0",
    "ROUTER_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
}
MEMBERS = ("Alice", "Bob", "Charlie", "Dana")
POLL = 0.02


@dataclass
class Page:
    """One request the receiver got."""

    key: str
    incident: int
    event: str
    step: int
    answered: bool = False  # the handler returned 200 (the daemon may not have read it)


@dataclass
class Receiver:
    """A webhook receiver that records every request and answers slowly.

    Each request waits `delay` seconds, or, when `gate` is given, until the gate opens (at
    most `gate_timeout` seconds), before answering 200.
    """

    delay: float = 0.0
    gate: asyncio.Event | None = None
    gate_timeout: float = 10.0
    pages: list[Page] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        """Listen on a free loopback port; returns the webhook URL."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def close(self) -> None:
        """Stop listening (requests still waiting get at most a second)."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        page = Page(
            request.headers.get("Idempotency-Key", ""),
            int(body["incident"]["id"]),
            str(body["event"]),
            int(body["step"]),
        )
        self.pages.append(page)
        self.started.set()
        if self.gate is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gate.wait(), self.gate_timeout)
        else:
            await asyncio.sleep(self.delay)
        page.answered = True
        return web.Response(status=200)

    def keys(self) -> Counter[str]:
        """Requests per idempotency key."""
        return Counter(page.key for page in self.pages)

    def unanswered(self) -> set[str]:
        """Keys of requests the handler has not answered yet."""
        return {page.key for page in self.pages if not page.answered}


def webhook_only_config(tmp_path: Path, url: str) -> Path:
    """The shipped config with every member paged only by the receiver's webhook."""
    folder = copy_shipped(tmp_path)
    for name in MEMBERS:
        edit(
            folder / "team.yaml",
            f"{{name: {name}, email: {name.lower()}@example.com}}",
            f'{{name: {name}, webhook: "{url}"}}',
        )
    return folder


def alert_body(key: str) -> dict[str, Any]:
    return {
        "pipeline": "aggregate-profit",  # investor policy: step 1 pages the on-call primary
        "summary": f"delivery crash probe {key}",
        "severity": "critical",
        "status": "firing",
        "dedup_key": key,
        "source": "test_delivery_crash",
    }


def auth_headers(router: RouterProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {router.token}"}


async def post_alerts(router: RouterProcess, keys: list[str]) -> list[int]:
    """POST one generic alert per key, concurrently; the incident each one opened."""
    url = f"{router.base_url}/api/v1/alerts"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def post(key: str) -> int:
            async with session.post(
                url, json=alert_body(key), headers=auth_headers(router)
            ) as response:
                body = await response.json()
                assert response.status == 202, body
            [incident] = body["incidents"]
            assert incident["change"] == "opened", body
            return int(incident["id"])

        return list(await asyncio.gather(*(post(key) for key in keys)))


async def notifications_of(router: RouterProcess, incident_ids: list[int]) -> list[dict[str, Any]]:
    """Every notification of the incidents, from `GET /api/v1/incidents/{id}`."""
    found: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        for incident_id in incident_ids:
            url = f"{router.base_url}/api/v1/incidents/{incident_id}"
            async with session.get(url, headers=auth_headers(router)) as response:
                body = await response.json()
                assert response.status == 200, body
            found.extend({**n, "incident_id": incident_id} for n in body["notifications"])
    return found


async def poll(check: Callable[[], bool], *, within: float, what: str) -> None:
    """Wait until `check()` holds (it watches the daemon or the receiver); fail after `within` s."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(POLL)


async def all_sent(
    router: RouterProcess, incident_ids: list[int], *, within: float
) -> list[dict[str, Any]]:
    """Poll the API until every notification of the incidents is `sent`; returns them."""
    deadline = time.monotonic() + within
    while True:
        notifications = await notifications_of(router, incident_ids)
        if all(n["status"] == "sent" for n in notifications):
            return notifications
        if time.monotonic() > deadline:
            late = [n for n in notifications if n["status"] != "sent"]
            pytest.fail(f"{len(late)} notifications not sent after {within} s: {late[:3]}")
        await asyncio.sleep(0.1)


async def serving(router: RouterProcess) -> bool:
    """Whether the daemon still accepts HTTP connections."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
            session.get(f"{router.base_url}/healthz") as response,
        ):
            await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return False
    return True
