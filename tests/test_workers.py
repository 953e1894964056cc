"""Delivery worker processes (router.workers): a real `router serve` with its default of one
worker, pages to a webhook receiver served by this test.

The worker is a process of its own, so these tests wait on processes (a restart, an exit)
by polling; no wait stands in for the logic under test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from router.settings import Settings
from router.teammodel import TeamModel
from router.workers import DeliveryWorkers

from services import RouterProcess
from test_delivery_crash import ENV, Receiver, _all_sent, _poll, _post_alerts, _webhook_only_config

WORKER_GONE_WITHIN = 20.0  # the drain timeout (10 s by default) and a margin
CONFIG = Path(__file__).resolve().parent.parent / "config"


def _alive(pid: int) -> bool:
    """Running, not merely a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children() -> list[int]:
    """This process's child processes (the workers are started from its main thread)."""
    me = os.getpid()
    return [int(pid) for pid in Path(f"/proc/{me}/task/{me}/children").read_text().split()]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RouterProcess, Receiver]]:
    """A started `router serve` (one worker) paging every member at a receiver."""
    receiver = Receiver()
    config = _webhook_only_config(tmp_path, await receiver.start())
    router = RouterProcess(tmp_path, config=config, env=ENV)
    try:
        await _start(router)
        yield router, receiver
    finally:
        router.stop()
        await receiver.close()


async def _start(router: RouterProcess) -> list[int]:
    await asyncio.to_thread(router.start)
    await _poll(lambda: bool(router.worker_pids()), within=15, what="the delivery worker")
    return router.worker_pids()


async def _get(router: RouterProcess, path: str) -> str:
    headers = {"Authorization": f"Bearer {router.token}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{router.base_url}{path}", headers=headers) as response,
    ):
        assert response.status == 200
        return await response.text()


@pytest.mark.timeout(60)
async def test_a_killed_worker_is_replaced_and_pages_still_go_out(
    served: tuple[RouterProcess, Receiver],
) -> None:
    router, receiver = served
    [first] = router.worker_pids()
    os.kill(first, signal.SIGKILL)
    await _poll(lambda: router.worker_pids() not in ([], [first]), within=15, what="a new worker")
    incident_ids = await _post_alerts(router, ["after-restart-1", "after-restart-2"])
    await _all_sent(router, incident_ids, within=15)
    assert {page.incident for page in receiver.pages} == set(incident_ids)
    assert "delivery_worker.exited" in router.events()


@pytest.mark.timeout(60)
async def test_the_worker_leaves_when_the_serving_process_dies(
    served: tuple[RouterProcess, Receiver],
) -> None:
    router, _ = served
    workers = router.worker_pids()
    router.kill9_server_only()
    await _poll(
        lambda: not any(_alive(pid) for pid in workers),
        within=WORKER_GONE_WITHIN,
        what="the orphaned worker to exit",
    )
    assert "delivery_worker.parent_gone" in router.events()


@pytest.mark.timeout(60)
async def test_status_and_metrics_count_what_the_worker_delivered(
    served: tuple[RouterProcess, Receiver],
) -> None:
    router, _ = served
    incident_ids = await _post_alerts(router, ["counted-1"])
    await _all_sent(router, incident_ids, within=15)

    def reported() -> bool:
        return "webhook" in _status_now(router)["outbox"]["last_delivery"]

    await _poll(reported, within=10, what="the worker's report to reach /status")
    outbox = _status_now(router)["outbox"]
    assert outbox["delivery_workers"] == {"configured": 1, "running": 1}
    assert outbox["last_delivery"]["webhook"]["result"] == "sent"
    assert outbox["last_delivery"]["webhook"]["incident"] == incident_ids[0]
    metrics = await _get(router, "/metrics")
    assert 'router_notifications_total{channel="webhook",result="sent"} 1.0' in metrics
    assert "router_delivery_workers_running 1.0" in metrics


def _status_now(router: RouterProcess) -> dict[str, Any]:
    status, body = router.get("/status")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


@pytest.mark.timeout(60)
async def test_sighup_reloads_the_worker_too(tmp_path: Path) -> None:
    before, after = Receiver(), Receiver()
    config = _webhook_only_config(tmp_path, await before.start())
    new_url = await after.start()
    router = RouterProcess(tmp_path, config=config, env=ENV)
    try:
        await _start(router)
        first = await _post_alerts(router, ["before-reload"])
        await _all_sent(router, first, within=15)
        team = config / "team.yaml"
        team.write_text(team.read_text().replace(before.url, new_url))  # every member's
        router.process.send_signal(signal.SIGHUP)
        await _poll(
            lambda: router.events().count("config.reloaded") >= 2,  # the server and the worker
            within=15,
            what="both processes to reload",
        )
        second = await _post_alerts(router, ["after-reload"])
        await _all_sent(router, second, within=15)
        assert [page.incident for page in before.pages] == first
        assert [page.incident for page in after.pages] == second
    finally:
        router.stop()
        await before.close()
        await after.close()


async def test_a_worker_that_cannot_be_started_is_tried_again_not_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_model: TeamModel
) -> None:
    """Fault injection: no Python to start (as if fork were refused)."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    monkeypatch.setattr("router.workers._FIRST_BACKOFF", 0.01)  # not a real second's wait
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'router.db'}")
    workers = DeliveryWorkers(
        settings, 1, on_report=lambda _report: None, model=lambda: shipped_model
    )
    with structlog.testing.capture_logs() as logged:
        await workers.start()
        await _poll(  # the first try, then another after the back-off
            lambda: sum(e["event"] == "delivery_worker.spawn_failed" for e in logged) >= 2,
            within=10,
            what="the failed start to be tried again",
        )
        [supervisor] = workers._supervisors
        assert not supervisor.done()  # waiting to try again, not dead
        assert workers.running == 0
        await asyncio.wait_for(workers.stop(), 5)
    assert supervisor.done()
    assert supervisor.exception() is None


@pytest.mark.timeout(60)
async def test_a_worker_restarted_after_the_config_file_broke_delivers_on_the_model_in_force(
    served: tuple[RouterProcess, Receiver],
) -> None:
    """Someone saved a broken team model (no SIGHUP yet, or one that kept the old model);
    then the worker died. Its replacement must not read the broken file and stop paging."""
    router, receiver = served
    config = Path(router._env["ROUTER_CONFIG"])
    (config / "team.yaml").write_text("team: [this is not: a team\n")
    [first] = router.worker_pids()
    os.kill(first, signal.SIGKILL)
    await _poll(lambda: router.worker_pids() not in ([], [first]), within=15, what="a new worker")
    incident_ids = await _post_alerts(router, ["after-a-broken-file"])
    await _all_sent(router, incident_ids, within=15)
    assert [page.incident for page in receiver.pages] == incident_ids


async def test_a_sighup_while_a_worker_is_starting_reloads_it_instead_of_ending_it(
    tmp_path: Path, shipped_model: TeamModel, capfd: pytest.CaptureFixture[str]
) -> None:
    """The serving process forwards SIGHUP to its workers at once; a worker is then
    likely still importing (most of a second), before it has a handler."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'router.db'}", config=CONFIG)
    workers = DeliveryWorkers(
        settings, 1, on_report=lambda _report: None, model=lambda: shipped_model
    )
    output: list[str] = []

    def worker_logged(event: str) -> bool:
        output.append(capfd.readouterr().err)  # the worker writes to the inherited stderr
        return event in "".join(output)

    with structlog.testing.capture_logs() as logged:
        await workers.start()
        await _poll(lambda: workers.running == 1, within=10, what="the worker process")
        workers.signal(signal.SIGHUP)
        await _poll(
            lambda: worker_logged("config.reloaded"), within=20, what="the held-back reload"
        )
        assert workers.running == 1
        assert [e for e in logged if e["event"] == "delivery_worker.exited"] == []
        await asyncio.wait_for(workers.stop(), 20)


async def test_a_worker_start_that_fails_after_the_fork_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a team model that cannot be handed over (it does not pickle). The
    supervisor must log it and try again, and kill each child it could not start."""
    monkeypatch.setattr("router.workers._FIRST_BACKOFF", 0.01)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'router.db'}")
    unpicklable: Any = lambda: None  # noqa: E731 - the point is that it is a lambda
    workers = DeliveryWorkers(
        settings, 1, on_report=lambda _report: None, model=lambda: unpicklable
    )
    with structlog.testing.capture_logs() as logged:
        await workers.start()
        await _poll(
            lambda: sum(e["event"] == "delivery_worker.spawn_failed" for e in logged) >= 2,
            within=10,
            what="the failed start to be tried again",
        )
        [supervisor] = workers._supervisors
        assert not supervisor.done()
        await asyncio.wait_for(workers.stop(), 5)
    assert supervisor.exception() is None
    assert [pid for pid in _children() if _alive(pid)] == []
