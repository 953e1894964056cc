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
import signal
import time
from pathlib import Path

import pytest

from pages import (
    ALERTS,
    ENV,
    KILL_AFTER_RECEIVED,
    LEASE_SECONDS,
    POLL,
    SLOW_ANSWER,
    Receiver,
    all_sent,
    notifications_of,
    poll,
    post_alerts,
    serving,
    webhook_only_config,
)
from services import RouterProcess


@pytest.mark.timeout(90)
async def test_kill_9_mid_delivery_loses_no_page_and_duplicates_keep_their_key(
    tmp_path: Path,
) -> None:
    receiver = Receiver(delay=SLOW_ANSWER)
    config = webhook_only_config(tmp_path, await receiver.start())
    try:
        first = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(first.start)
        try:
            incident_ids = await post_alerts(first, [f"crash-{n}" for n in range(ALERTS)])
            await poll(
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
                for n in await notifications_of(restarted, incident_ids)
            }
            # Every incident pages one member, over the webhook only.
            assert len(expected) == ALERTS
            await poll(
                lambda: {page.incident for page in receiver.pages} >= set(incident_ids),
                within=LEASE_SECONDS + 40,
                what="every incident's page at the receiver after the restart",
            )
            notifications = await all_sent(restarted, incident_ids, within=20)
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
    config = webhook_only_config(tmp_path, await receiver.start())
    try:
        router = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(router.start)
        try:
            incident_ids = await post_alerts(router, ["sigterm-probe"])
            await asyncio.wait_for(receiver.started.wait(), timeout=15)
            router.process.send_signal(signal.SIGTERM)
            # The daemon stops listening first, then drains the outbox: once it refuses
            # connections it is shutting down with the page still in flight. Now answer it.
            deadline = time.monotonic() + 10
            while await serving(router):
                assert time.monotonic() < deadline, "SIGTERM did not stop the listener"
                await asyncio.sleep(POLL)
            assert receiver.unanswered(), "the page was answered before the shutdown began"
            # A reload during the drain (`systemctl reload` at the wrong moment) must not end
            # it: SIGHUP until the draining daemon says it ignored one (those sent before its
            # drain began reload the unchanged file).
            deadline = time.monotonic() + 10
            while "shutdown.reload_ignored" not in router.events():
                assert router.process.poll() is None, f"SIGHUP ended the drain: {router.log()}"
                assert time.monotonic() < deadline, "no SIGHUP reached the draining daemon"
                router.process.send_signal(signal.SIGHUP)
                await asyncio.sleep(POLL)
            gate.set()
            code = await asyncio.to_thread(router.process.wait, 15)
            drained = "notification.sent" in router.events()
            timed_out = "outbox.drain_timeout" in router.events()
        finally:
            router.stop()

        restarted = RouterProcess(tmp_path, config=config, env=ENV)
        await asyncio.to_thread(restarted.start)
        try:
            [notification] = await all_sent(restarted, incident_ids, within=LEASE_SECONDS + 20)
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
