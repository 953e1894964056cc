"""Pages survive the daemon dying mid-delivery: `kill -9` and SIGTERM with a slow receiver.

A real `router serve` pages every member through a webhook served by this test (an aiohttp
server on the test's event loop) that answers slowly, so deliveries are in flight when the
daemon is killed. The outbox delivers at least once: a page the receiver had not answered when
the daemon died is sent again after the restart, once its lease expires, with the same
`Idempotency-Key` so that the receiver can drop it (SPEC section 4, "Delivery").

Blocking process management (start, wait for exit) runs in a thread so the receiver keeps
answering meanwhile; waits poll the other process and never stand in for the test's logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
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
_POLL = 0.02


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


def _webhook_only_config(tmp_path: Path, url: str) -> Path:
    """The shipped config with every member paged only by the receiver's webhook."""
    folder = copy_shipped(tmp_path)
    for name in MEMBERS:
        edit(
            folder / "team.yaml",
            f"{{name: {name}, email: {name.lower()}@example.com}}",
            f'{{name: {name}, webhook: "{url}"}}',
        )
    return folder


def _alert(key: str) -> dict[str, Any]:
    return {
        "pipeline": "aggregate-profit",  # investor policy: step 1 pages the on-call primary
        "summary": f"delivery crash probe {key}",
        "severity": "critical",
        "status": "firing",
        "dedup_key": key,
        "source": "test_delivery_crash",
    }


def _headers(router: RouterProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {router.token}"}


async def _post_alerts(router: RouterProcess, keys: list[str]) -> list[int]:
    """POST one generic alert per key, concurrently; the incident each one opened."""
    url = f"{router.base_url}/api/v1/alerts"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def post(key: str) -> int:
            async with session.post(url, json=_alert(key), headers=_headers(router)) as response:
                body = await response.json()
                assert response.status == 202, body
            [incident] = body["incidents"]
            assert incident["change"] == "opened", body
            return int(incident["id"])

        return list(await asyncio.gather(*(post(key) for key in keys)))


async def _notifications(router: RouterProcess, incident_ids: list[int]) -> list[dict[str, Any]]:
    """Every notification of the incidents, from `GET /api/v1/incidents/{id}`."""
    found: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        for incident_id in incident_ids:
            url = f"{router.base_url}/api/v1/incidents/{incident_id}"
            async with session.get(url, headers=_headers(router)) as response:
                body = await response.json()
                assert response.status == 200, body
            found.extend({**n, "incident_id": incident_id} for n in body["notifications"])
    return found


async def _poll(check: Callable[[], bool], *, within: float, what: str) -> None:
    """Wait until `check()` holds (it watches the daemon or the receiver); fail after `within` s."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(_POLL)


async def _all_sent(
    router: RouterProcess, incident_ids: list[int], *, within: float
) -> list[dict[str, Any]]:
    """Poll the API until every notification of the incidents is `sent`; returns them."""
    deadline = time.monotonic() + within
    while True:
        notifications = await _notifications(router, incident_ids)
        if all(n["status"] == "sent" for n in notifications):
            return notifications
        if time.monotonic() > deadline:
            late = [n for n in notifications if n["status"] != "sent"]
            pytest.fail(f"{len(late)} notifications not sent after {within} s: {late[:3]}")
        await asyncio.sleep(0.1)


async def _serving(router: RouterProcess) -> bool:
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


@pytest.mark.timeout(90)
async def test_kill_9_mid_delivery_loses_no_page_and_duplicates_keep_their_key(
    tmp_path: Path,
) -> None:
    receiver = Receiver(delay=SLOW_ANSWER)
    config = _webhook_only_config(tmp_path, await receiver.start())
    try:
        first = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(first.start)
        try:
            incident_ids = await _post_alerts(first, [f"crash-{n}" for n in range(ALERTS)])
            await _poll(
                lambda: len(receiver.pages) >= KILL_AFTER_RECEIVED and bool(receiver.unanswered()),
                within=30,
                what=f"{KILL_AFTER_RECEIVED} pages at the receiver, some still unanswered",
            )
            # No await between the snapshot and the kill: the receiver cannot answer in
            # between, so every key in `in_flight` is one the daemon never saw a 200 for.
            in_flight = receiver.unanswered()
            before_kill = receiver.keys()
            first.kill9()
        finally:
            first.stop()
        assert len(before_kill) < ALERTS, "every page went out before the kill: nothing in flight"

        restarted = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(restarted.start)
        try:
            expected = {
                n["idempotency_key"]: n["incident_id"]
                for n in await _notifications(restarted, incident_ids)
            }
            # Every incident pages one member, over the webhook only.
            assert len(expected) == ALERTS
            await _poll(
                lambda: {page.incident for page in receiver.pages} >= set(incident_ids),
                within=LEASE_SECONDS + 40,
                what="every incident's page at the receiver after the restart",
            )
            notifications = await _all_sent(restarted, incident_ids, within=20)
        finally:
            restarted.stop()
    finally:
        await receiver.close()

    received = receiver.keys()
    duplicates = {key: count for key, count in received.items() if count > 1}
    print(
        f"accepted {len(incident_ids)}, received before the kill {before_kill.total()} "
        f"({len(in_flight)} unanswered at the kill), requests {received.total()}, "
        f"delivered unique {len(received)}, duplicates {sum(duplicates.values()) - len(duplicates)}"
        f" (keys sent twice or more: {len(duplicates)})"
    )
    assert set(received) == set(expected), set(received) ^ set(expected)
    for page in receiver.pages:
        # A redelivery carries the original's key, and the key names the page it carries.
        assert page.incident == expected[page.key], page
        assert (page.event, page.step) == ("incident.triggered", 1), page
    # Pages the daemon never heard a 200 for were sent again after the restart ...
    assert in_flight <= set(duplicates), in_flight - set(duplicates)
    # ... and a page is sent at most twice: once by the dead daemon (perhaps still in a
    # socket buffer at the kill, so not yet counted in `before_kill`), once after restart.
    assert max(received.values()) <= 2, duplicates
    assert all(n["status"] == "sent" and n["channel"] == "webhook" for n in notifications)


@pytest.mark.timeout(60)
async def test_sigterm_mid_delivery_exits_0_and_the_page_is_never_lost_even_with_a_sighup(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    receiver = Receiver(gate=gate)
    config = _webhook_only_config(tmp_path, await receiver.start())
    try:
        router = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(router.start)
        try:
            incident_ids = await _post_alerts(router, ["sigterm-probe"])
            await asyncio.wait_for(receiver.started.wait(), timeout=15)
            router.process.send_signal(signal.SIGTERM)
            # The daemon stops listening first, then drains the outbox: once it refuses
            # connections it is shutting down with the page still in flight. Now answer it.
            deadline = time.monotonic() + 10
            while await _serving(router):
                assert time.monotonic() < deadline, "SIGTERM did not stop the listener"
                await asyncio.sleep(_POLL)
            assert receiver.unanswered(), "the page was answered before the shutdown began"
            # A reload during the drain (`systemctl reload` at the wrong moment) must not end
            # it: SIGHUP until the draining daemon says it ignored one (those sent before its
            # drain began reload the unchanged file).
            deadline = time.monotonic() + 10
            while "shutdown.reload_ignored" not in router.events():
                assert router.process.poll() is None, f"SIGHUP ended the drain: {router.log()}"
                assert time.monotonic() < deadline, "no SIGHUP reached the draining daemon"
                router.process.send_signal(signal.SIGHUP)
                await asyncio.sleep(_POLL)
            gate.set()
            code = await asyncio.to_thread(router.process.wait, 15)
            drained = "notification.sent" in router.events()
            timed_out = "outbox.drain_timeout" in router.events()
        finally:
            router.stop()

        restarted = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(restarted.start)
        try:
            [notification] = await _all_sent(restarted, incident_ids, within=LEASE_SECONDS + 20)
        finally:
            restarted.stop()
    finally:
        await receiver.close()

    received = receiver.keys()
    print(
        f"exit code {code}, delivered before exit: {drained}, drain timed out: {timed_out}, "
        f"requests {received.total()} for {len(received)} key(s)"
    )
    assert code == 0, router.log()
    assert set(received) == {notification["idempotency_key"]}
    # The drain finished the send in flight: the page went out once, before the exit.
    assert drained, router.log()
    assert not timed_out, router.log()
    assert received.total() == 1, "a page delivered during the drain was sent again"
