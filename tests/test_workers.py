"""Delivery worker processes (router.workers): a real `router serve` with its default of one
worker, pages to a webhook receiver served by this test.

The worker is a process of its own, so these tests wait on processes (a restart, an exit)
by polling; no wait stands in for the logic under test.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from router import delivery_worker
from router.settings import Settings
from router.teammodel import TeamModel
from router.workers import WAKE_FRAME, DeliveryWorkers, _Running, model_frame

from pages import ENV, Receiver, all_sent, poll, post_alerts, webhook_only_config
from services import RouterProcess

WORKER_GONE_WITHIN = 20.0  # the drain timeout (10 s by default) and a margin
CONFIG = Path(__file__).resolve().parent.parent / "config"


def _alive(pid: int) -> bool:
    """Running, not merely a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _workers(tmp_path: Path, model: Callable[[], TeamModel], count: int = 1) -> DeliveryWorkers:
    """Workers on a fresh database under `tmp_path`, with the shipped config's path."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'router.db'}", config=CONFIG)
    return DeliveryWorkers(settings, count, on_report=lambda _report: None, model=model)


@asynccontextmanager
async def _running(workers: DeliveryWorkers) -> AsyncIterator[DeliveryWorkers]:
    """`workers` started, with every worker process alive; stopped on the way out, even
    when the test fails (no process outlives its test)."""
    await workers.start()
    try:
        await poll(lambda: workers.running == workers.count, within=10, what="the worker processes")
        yield workers
    finally:
        await asyncio.wait_for(workers.stop(), 20)


def _children() -> list[int]:
    """This process's child processes (the workers are started from its main thread)."""
    me = os.getpid()
    return [int(pid) for pid in Path(f"/proc/{me}/task/{me}/children").read_text().split()]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RouterProcess, Receiver]]:
    """A started `router serve` (one worker) paging every member at a receiver."""
    receiver = Receiver()
    config = webhook_only_config(tmp_path, await receiver.start())
    router = RouterProcess(tmp_path, config=config, env=ENV)
    try:
        await _start(router)
        yield router, receiver
    finally:
        router.stop()
        await receiver.close()


async def _start(router: RouterProcess) -> list[int]:
    await asyncio.to_thread(router.start)
    await poll(lambda: bool(router.worker_pids()), within=15, what="the delivery worker")
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
    await poll(lambda: router.worker_pids() not in ([], [first]), within=15, what="a new worker")
    incident_ids = await post_alerts(router, ["after-restart-1", "after-restart-2"])
    await all_sent(router, incident_ids, within=15)
    assert {page.incident for page in receiver.pages} == set(incident_ids)
    assert "delivery_worker.exited" in router.events()


@pytest.mark.timeout(60)
async def test_the_worker_leaves_when_the_serving_process_dies(
    served: tuple[RouterProcess, Receiver],
) -> None:
    router, _ = served
    workers = router.worker_pids()
    router.kill9_server_only()
    await poll(
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
    incident_ids = await post_alerts(router, ["counted-1"])
    await all_sent(router, incident_ids, within=15)

    def reported() -> bool:
        return "webhook" in _status_now(router)["outbox"]["last_delivery"]

    await poll(reported, within=10, what="the worker's report to reach /status")
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


@dataclass
class _Moved:
    """A started `router serve` paging at `before`; `after` is where its config file will
    send every page once `_move_every_member` rewrites it."""

    router: RouterProcess
    before: Receiver
    after: Receiver


@pytest.fixture
async def moved(tmp_path: Path) -> AsyncIterator[_Moved]:
    """Two receivers, and a router paging every member at the first."""
    before, after = Receiver(), Receiver()
    config = webhook_only_config(tmp_path, await before.start())
    await after.start()
    router = RouterProcess(tmp_path, config=config, env=ENV)
    try:
        await _start(router)
        yield _Moved(router, before, after)
    finally:
        router.stop()
        await before.close()
        await after.close()


def _move_every_member(moved: _Moved) -> None:
    """Save the config file with every member paged at `after` (no reload)."""
    team = Path(moved.router._env["ROUTER_CONFIG"]) / "team.yaml"
    team.write_text(team.read_text().replace(moved.before.url, moved.after.url))


@pytest.mark.timeout(60)
async def test_sighup_hands_the_reloaded_model_to_the_worker(moved: _Moved) -> None:
    router, before, after = moved.router, moved.before, moved.after
    first = await post_alerts(router, ["before-reload"])
    await all_sent(router, first, within=15)
    _move_every_member(moved)
    router.process.send_signal(signal.SIGHUP)
    await poll(
        lambda: "delivery_worker.model_updated" in router.events(),
        within=15,
        what="the worker to get the new model",
    )
    # The serving process read the file; the worker did not, it was handed the model.
    assert router.events().count("config.reloaded") == 1
    second = await post_alerts(router, ["after-reload"])
    await all_sent(router, second, within=15)
    assert [page.incident for page in before.pages] == first
    assert [page.incident for page in after.pages] == second
    # A reload that fails (a broken file) keeps the model in force, and hands nothing over.
    (Path(router._env["ROUTER_CONFIG"]) / "team.yaml").write_text("team: [not: a team\n")
    router.process.send_signal(signal.SIGHUP)
    await poll(
        lambda: "config.reload_failed" in router.events(), within=15, what="the failed reload"
    )
    third = await post_alerts(router, ["after-a-failed-reload"])
    await all_sent(router, third, within=15)
    assert [page.incident for page in after.pages] == second + third
    assert router.events().count("delivery_worker.model_updated") == 1


async def test_a_worker_that_cannot_be_started_is_tried_again_not_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_model: TeamModel
) -> None:
    """Fault injection: no Python to start (as if fork were refused)."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    monkeypatch.setattr("router.workers._FIRST_BACKOFF", 0.01)  # not a real second's wait
    workers = _workers(tmp_path, lambda: shipped_model)
    with structlog.testing.capture_logs() as logged:
        await workers.start()
        await poll(  # the first try, then another after the back-off
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
    await poll(lambda: router.worker_pids() not in ([], [first]), within=15, what="a new worker")
    incident_ids = await post_alerts(router, ["after-a-broken-file"])
    await all_sent(router, incident_ids, within=15)
    assert [page.incident for page in receiver.pages] == incident_ids


@pytest.mark.timeout(60)
async def test_a_worker_never_reads_the_config_file_so_a_hangup_cannot_part_it_from_the_server(
    moved: _Moved,
) -> None:
    """A hang-up sent to the whole process group (a closed terminal, `kill -HUP -<pgid>`)
    or to the worker alone reaches a file the serving process has not read (saved since, or
    half-written). Were the worker to read it, it would page by another team model than
    the one the serving process plans with; nor may SIGHUP end it (its default action)."""
    router = moved.router
    await poll(
        lambda: "delivery_worker.ready" in router.events(), within=15, what="a running worker"
    )
    _move_every_member(moved)
    [worker] = router.worker_pids()
    os.kill(worker, signal.SIGHUP)
    incident_ids = await post_alerts(router, ["after-a-hangup"])
    await all_sent(router, incident_ids, within=15)
    assert [page.incident for page in moved.before.pages] == incident_ids
    assert moved.after.pages == []
    assert router.worker_pids() == [worker]


def _worker_stderr(capfd: pytest.CaptureFixture[str]) -> Callable[[str], bool]:
    """`logged(event)`: whether a worker process wrote `event` to the inherited stderr."""
    output: list[str] = []

    def logged(event: str) -> bool:
        output.append(capfd.readouterr().err)
        return event in "".join(output)

    return logged


async def test_a_hangup_while_a_worker_is_starting_does_not_end_it(
    tmp_path: Path, shipped_model: TeamModel, capfd: pytest.CaptureFixture[str]
) -> None:
    """A worker just started is likely still importing (most of a second), before it has
    set SIGHUP aside; SIGHUP's default action would end it."""
    workers = _workers(tmp_path, lambda: shipped_model)
    worker_logged = _worker_stderr(capfd)
    with structlog.testing.capture_logs() as logged:
        async with _running(workers):
            [running] = workers._running.values()
            running.process.send_signal(signal.SIGHUP)
            await poll(
                lambda: worker_logged("delivery_worker.ready"),
                within=20,
                what="the worker to start",
            )
            assert workers.running == 1
            assert [e for e in logged if e["event"] == "delivery_worker.exited"] == []


async def test_a_model_swapped_in_while_a_worker_starts_reaches_it(
    tmp_path: Path,
    shipped_model: TeamModel,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload between the hand-over of the start-up model and the worker's registration
    (when `model_changed` would not yet reach it) must not leave it on the old model."""
    in_force = [shipped_model]
    workers = _workers(tmp_path, lambda: in_force[0])
    hand_over = workers._hand_over

    async def reload_meanwhile(*args: Any) -> None:
        await hand_over(*args)
        # Another model, as a reload makes: here without the shipped runbooks.
        in_force[0] = shipped_model.model_copy(update={"runbooks": {}})

    monkeypatch.setattr(workers, "_hand_over", reload_meanwhile)
    worker_logged = _worker_stderr(capfd)
    async with _running(workers):
        await poll(
            lambda: worker_logged(
                '"changed": ["runbooks"], "event": "delivery_worker.model_updated"'
            ),
            within=20,
            what="the swapped-in model to reach the worker",
        )
        [running] = workers._running.values()
        assert running.model is in_force[0]


async def test_a_worker_start_that_fails_after_the_fork_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a team model that cannot be handed over (it does not pickle). The
    supervisor must log it and try again, and kill each child it could not start."""
    monkeypatch.setattr("router.workers._FIRST_BACKOFF", 0.01)
    unpicklable: Any = lambda: None  # noqa: E731 - the point is that it is a lambda
    workers = _workers(tmp_path, lambda: unpicklable)
    with structlog.testing.capture_logs() as logged:
        await workers.start()
        await poll(
            lambda: sum(e["event"] == "delivery_worker.spawn_failed" for e in logged) >= 2,
            within=10,
            what="the failed start to be tried again",
        )
        [supervisor] = workers._supervisors
        assert not supervisor.done()
        await asyncio.wait_for(workers.stop(), 5)
    assert supervisor.exception() is None
    assert [pid for pid in _children() if _alive(pid)] == []


async def test_two_workers_starting_together_leave_sighup_unblocked_here(
    tmp_path: Path, shipped_model: TeamModel
) -> None:
    """Each start blocks SIGHUP around the fork and restores the mask it found; two starts
    interleaved would restore each other's, leaving the serving process deaf to reloads."""
    workers = _workers(tmp_path, lambda: shipped_model, count=2)
    assert signal.SIGHUP not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    async with _running(workers):
        assert signal.SIGHUP not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


async def test_a_model_the_worker_cannot_load_makes_it_restart_on_the_current_one(
    tmp_path: Path,
    shipped_model: TeamModel,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: a frame that is not a pickled team model. Carrying on with the old
    model would part the worker from the serving process; it stops, and its replacement
    starts on the model in force."""
    monkeypatch.setattr("router.workers._FIRST_BACKOFF", 0.01)
    workers = _workers(tmp_path, lambda: shipped_model)
    worker_logged = _worker_stderr(capfd)
    with structlog.testing.capture_logs() as logged:
        async with _running(workers):
            [first] = workers._running.values()
            first.control.write(len(b"junk").to_bytes(4, "big") + b"junk")
            await poll(
                lambda: worker_logged("delivery_worker.bad_model"),
                within=20,
                what="the worker to refuse the frame",
            )
            await poll(
                lambda: (
                    any(r.process is not first.process for r in workers._running.values())
                    and workers.running == 1
                ),
                within=30,
                what="a replacement worker",
            )
            # It stopped itself (drained, exit 0); it did not crash.
            exits = [e["exitcode"] for e in logged if e["event"] == "delivery_worker.exited"]
            assert exits == [0]


async def test_a_start_that_fails_closes_the_pipes_it_made(
    tmp_path: Path, shipped_model: TeamModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: out of descriptors at the second pipe (EMFILE), then a child that
    cannot be started. The supervisor tries again and again; no try may leak a pipe."""
    workers = _workers(tmp_path, lambda: shipped_model)
    real_pipe = os.pipe
    made: list[int] = []

    def second_pipe_fails() -> tuple[int, int]:
        made.append(1)
        if len(made) == 2:
            raise OSError(24, "Too many open files")
        return real_pipe()

    async def no_child(_fds: list[int]) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    open_before = len(os.listdir("/proc/self/fd"))
    with monkeypatch.context() as patched:
        patched.setattr(os, "pipe", second_pipe_fails)
        with pytest.raises(OSError, match="Too many open files"):
            await workers._spawn(0)
    assert len(made) == 2
    monkeypatch.setattr(workers, "_start_child", no_child)
    with pytest.raises(OSError, match="Resource temporarily unavailable"):
        await workers._spawn(0)
    assert len(os.listdir("/proc/self/fd")) == open_before


@pytest.mark.parametrize(("chunk", "looks"), [(1, 3), (None, 1)])
def test_the_control_pipe_keeps_a_model_ahead_of_the_wake_up_written_after_it(
    shipped_model: TeamModel, chunk: int | None, looks: int
) -> None:
    """A page planned by a new model is announced after that model on the same stream, so
    however the bytes arrive (a byte at a time, or in one piece), the worker has the model
    before it looks; wake-ups read together are one look."""
    stream = model_frame(shipped_model) + WAKE_FRAME * 3
    seen: list[str] = []
    control = delivery_worker._Control(
        on_wake=lambda: seen.append("wake"),
        on_model=lambda model: seen.append("model" if model == shipped_model else "?"),
        on_stop=lambda: seen.append("stop"),
    )
    step = chunk or len(stream)
    for start in range(0, len(stream), step):
        control.data_received(stream[start : start + step])
    assert seen == ["model"] + ["wake"] * looks
    control.eof_received()  # the serving process is gone
    assert seen[-1] == "stop"


async def test_wake_ups_reach_the_worker_once_per_read_and_follow_every_model(
    tmp_path: Path, shipped_model: TeamModel
) -> None:
    """The serving process's side of the control pipe, on a real pipe: a wake-up is written
    only when the worker has read everything before it, so the pipe never fills with them;
    a new model is always followed by one."""
    loop = asyncio.get_running_loop()
    in_force = [shipped_model]
    workers = _workers(tmp_path, lambda: in_force[0])
    theirs, ours = os.pipe()
    os.set_blocking(theirs, False)
    control, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(ours, "wb", 0))
    process: Any = None  # not a process: nothing here reaches it
    workers._running[0] = _Running(process, control, control, shipped_model)  # type: ignore[arg-type]

    async def woken() -> bytes:
        workers.wake()
        await asyncio.sleep(0)  # wake-ups go out once per loop turn
        return os.read(theirs, 1 << 20)

    try:
        assert await woken() == WAKE_FRAME
        workers.wake()
        await asyncio.sleep(0)
        workers.wake()  # the first is still unread: this one is not written
        await asyncio.sleep(0)
        assert os.read(theirs, 1 << 20) == WAKE_FRAME
        in_force[0] = shipped_model.model_copy(update={"runbooks": {}})
        workers.model_changed()
        assert os.read(theirs, 1 << 20) == model_frame(in_force[0]) + WAKE_FRAME
        assert await woken() == WAKE_FRAME
    finally:
        control.close()
        os.close(theirs)


def test_a_worker_holds_its_claims_while_part_of_a_frame_has_arrived(
    shipped_model: TeamModel,
) -> None:
    """`behind` is the outbox's hold: true from a frame's first byte to its last."""
    frame = model_frame(shipped_model)
    seen: list[object] = []
    control = delivery_worker._Control(seen.clear, seen.append, seen.clear)
    assert not control.behind()
    control.data_received(frame[:10])
    assert control.behind()
    control.data_received(frame[10:])
    assert not control.behind()
    assert seen == [shipped_model]


def test_a_frame_too_large_to_be_a_model_stops_the_worker_instead_of_holding_its_claims() -> None:
    """A broken length prefix would have the worker wait for bytes that never come, holding
    every claim meanwhile: delivery would stop without a word. It stops, and is replaced."""
    seen: list[str] = []
    control = delivery_worker._Control(
        on_wake=lambda: seen.append("wake"),
        on_model=lambda _model: seen.append("model"),
        on_stop=lambda: seen.append("stop"),
    )
    control.data_received((delivery_worker.MAX_FRAME + 1).to_bytes(4, "big") + b"x")
    assert seen == ["stop"]
    assert not control.behind()
    control.data_received(WAKE_FRAME)  # nothing read after a stop counts
    assert seen == ["stop"]


async def test_a_worker_is_behind_while_bytes_wait_in_the_pipe_not_only_once_it_reads_them(
    shipped_model: TeamModel,
) -> None:
    """The model is in the pipe before any page planned by it is stored; a claim returning
    then must find the worker behind, though it has read none of the frame yet."""
    read, write = os.pipe()
    seen: list[object] = []
    control = delivery_worker._Control(seen.clear, seen.append, seen.clear)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: control, os.fdopen(read, "rb", 0)
    )
    try:
        assert not control.behind()
        os.write(write, model_frame(shipped_model))
        assert control.behind()  # not read yet: in the pipe
        for _ in range(100):  # the loop reads it on one of its next turns
            if not control.behind():
                break
            await asyncio.sleep(0)
        assert not control.behind()
        assert seen == [shipped_model]
    finally:
        transport.close()
        os.close(write)


async def test_workers_start_where_pipes_cannot_be_resized(
    tmp_path: Path, shipped_model: TeamModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F_SETPIPE_SZ is Linux's: elsewhere (a developer's macOS) the pipe keeps its size and
    the worker must start all the same, or nothing would be delivered."""
    monkeypatch.delattr(fcntl, "F_SETPIPE_SZ", raising=False)
    async with _running(_workers(tmp_path, lambda: shipped_model)) as workers:
        assert workers.running == 1


async def test_a_lone_wake_up_in_the_pipe_does_not_hold_claims(shipped_model: TeamModel) -> None:
    """Under load a wake-up nearly always waits in the pipe; holding claims for it would
    refuse one claim in ten (measured at 1,000 pages/s). Only more than a wake-up is a
    model on its way."""
    read, write = os.pipe()
    seen: list[object] = []
    control = delivery_worker._Control(seen.clear, seen.append, seen.clear)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: control, os.fdopen(read, "rb", 0)
    )
    try:
        os.write(write, WAKE_FRAME)
        assert not control.behind()
        os.write(write, model_frame(shipped_model) + WAKE_FRAME)
        assert control.behind()
    finally:
        transport.close()
        os.close(write)
