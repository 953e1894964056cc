"""A delivery worker process: the outbox loop on its own core (see router.workers).

It opens the same database as the serving process and delivers on the team model in force
there: handed over with the settings, then again down the control pipe whenever the serving
process swaps in a new one (it never reads the config file, so it ignores SIGHUP). It
delivers what is due and reports each attempt up the report pipe. It looks on a wake-up from
the control pipe, polls meanwhile, and stops on SIGTERM or SIGINT, or when the control pipe
ends (the serving process is gone): it then claims nothing more, lets the sends in flight
finish (within `ROUTER_DRAIN_TIMEOUT_SECONDS`) and exits. It runs at a lower CPU priority
than the serving process (nice 10).
"""

from __future__ import annotations

__all__ = ["main"]

import asyncio
import gc
import json
import os
import pickle
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from router.acklinks import AckSigner
from router.logs import configure_logging, known_secrets, redact_secrets
from router.metrics import Metrics
from router.outbox import DeliveryReport
from router.outbox_setup import make_outbox, smtp_sender, webhook_sender
from router.reload import changed_sections
from router.settings import Settings
from router.store import StoreUnavailableError, open_store
from router.teammodel import TeamModel
from router.workers import WAKE_FRAME, in_pipe

log = structlog.get_logger(__name__)
_FLUSH_WAIT = 2.0  # seconds to let the last reports reach the parent
MAX_FRAME = 64 * 1024 * 1024  # bytes: a team model is kilobytes; more is a broken stream
WORKER_NICENESS = 10


def _now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    """`python -m router.delivery_worker`, started by router.workers: the settings, the
    worker's number and its two pipes' descriptors arrive pickled on stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop handles it
    # The model comes from the serving process, never the file: a hang-up sent to the whole
    # process group must neither end this process nor make it read the file. SIGHUP was
    # blocked when it started (router.workers); one sent meanwhile is discarded here.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    # When the cores are contended, taking alerts in comes first: an alert refused or timed
    # out may be lost at its sender (and its retries add load), while a page waits safely
    # in the outbox. Measured on 2 cores at 1,000 alerts/s: ingest p99 30-51 ms against
    # 92 ms at the same priority, pages still delivered at the offered rate.
    os.nice(WORKER_NICENESS)
    settings, model, slot, *pipes = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our parent
    serve(settings, model, slot, _Pipes(*pipes))


@dataclass(frozen=True, slots=True)
class _Pipes:
    """This end's descriptors of the pipes to the serving process (router.workers)."""

    control: int
    reports: int


@dataclass(slots=True)
class _InForce:
    """The team model in force in the serving process, as last handed over."""

    model: TeamModel

    def adopt(self, model: TeamModel) -> None:
        """Deliver by `model` from now on."""
        redact_secrets(known_secrets(model=model))  # before anything could log them
        changed = changed_sections(self.model, model)
        self.model = model
        log.info("delivery_worker.model_updated", changed=changed)


class _Control(asyncio.Protocol):
    """Reads the control pipe (router.workers): frames of a length (4 bytes) and that many
    bytes. An empty frame is a wake-up (`on_wake`, once for all those read together); any
    other is a pickled team model (`on_model`). A frame that does not load is a broken
    hand-over, and end of file or a read error means the parent is gone: `on_stop`, and
    nothing read after it counts. A worker left on an older model than the serving
    process's must not go on delivering; its replacement starts on the current one.
    """

    def __init__(
        self,
        on_wake: Callable[[], None],
        on_model: Callable[[TeamModel], None],
        on_stop: Callable[[], None],
    ) -> None:
        self.on_wake = on_wake
        self.on_model = on_model
        self.on_stop = on_stop
        self._buffer = bytearray()
        self._stopped = False
        self._fd: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._fd = transport.get_extra_info("pipe").fileno()

    def behind(self) -> bool:
        """Whether a team model may be on its way: part of a frame here, or more than one
        wake-up's worth of bytes in the pipe (the serving process writes a wake-up only
        into an empty pipe, so more is a model). Claims, and the pages just claimed, wait:
        it may be the model that those pages were planned by (the outbox's `hold`). A lone
        wake-up waiting does not hold them: under load one nearly always is."""
        if self._stopped:
            return False
        return bool(self._buffer) or (self._fd is not None and in_pipe(self._fd) > len(WAKE_FRAME))

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        self._buffer += data
        woken = False
        while len(self._buffer) >= 4:
            size = int.from_bytes(self._buffer[:4], "big")
            if size > MAX_FRAME:
                # Waiting for the rest would hold every claim for good: delivery would stop.
                log.error("delivery_worker.bad_model", error=f"a frame of {size} bytes")
                self._stop()
                return
            end = 4 + size
            if len(self._buffer) < end:
                break
            frame = bytes(self._buffer[4:end])
            del self._buffer[:end]
            if not frame:
                woken = True
            elif not self._adopt(frame):
                return
        if woken:
            self.on_wake()

    def _adopt(self, frame: bytes) -> bool:
        try:
            model = pickle.loads(frame)  # noqa: S301 - from our parent
            if not isinstance(model, TeamModel):
                raise TypeError(f"a {type(model).__name__}, not a team model")
            self.on_model(model)
        except Exception as err:
            log.error("delivery_worker.bad_model", error=f"{type(err).__name__}: {err}")
            self._stop()
            return False
        return True

    def eof_received(self) -> bool:
        log.warning("delivery_worker.parent_gone")
        self._stop()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:  # a read error (None: end of file, or our own close)
            log.warning("delivery_worker.parent_gone", error=str(exc))
            self._stop()

    def _stop(self) -> None:
        self._stopped = True
        self._buffer.clear()
        self.on_stop()


def serve(settings: Settings, model: TeamModel, slot: int, pipes: _Pipes) -> None:
    """Deliver until stopped, on the team model the serving process has in force; exits 1
    on an unusable database, 3 if the outbox loop ended by itself."""
    secrets = known_secrets(settings, model)
    configure_logging(settings.log_level, settings.log_format, secrets=secrets)
    structlog.contextvars.bind_contextvars(delivery_worker=slot)
    in_force = _InForce(model)
    # As in the serving process (router.app.run): what start-up allocated lives as long as
    # the process, so the collector need not walk it again (a full collection of it took
    # 25 ms here, a pause for every page in flight).
    gc.collect()
    gc.freeze()
    try:
        asyncio.run(_deliver(settings, in_force, pipes))
    except StoreUnavailableError as err:
        log.error("delivery_worker.cannot_open_store", error=str(err))
        sys.exit(1)


async def _deliver(settings: Settings, in_force: _InForce, pipes: _Pipes) -> None:
    loop = asyncio.get_running_loop()
    store = open_store(settings.database_url, fsync_commits=False)
    await store.open()
    signer = AckSigner()
    signer.set_key(await store.meta_secret("ack_link_key"))
    webhooks = webhook_sender(settings)
    await webhooks.start()
    smtp = smtp_sender(settings)
    pipe, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(pipes.reports, "wb", 0))
    report = _Reports(pipe)
    stop = asyncio.Event()
    control = _Control(lambda: outbox.wake(), in_force.adopt, stop.set)  # noqa: PLW0108 - outbox: below
    outbox = make_outbox(
        settings,
        store,
        webhooks,
        smtp,
        model=lambda: in_force.model,
        signer=signer,
        clock=_now,
        metrics=Metrics(),  # unused: every attempt is reported to the parent instead
        report=report.add,
        hold=control.behind,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    control_pipe, _ = await loop.connect_read_pipe(
        lambda: control, os.fdopen(pipes.control, "rb", 0)
    )
    log.info("delivery_worker.ready", pid=os.getpid())
    try:
        await _run_until_stopped(outbox.run(stop), stop, settings.drain_timeout_seconds)
    finally:
        control_pipe.close()
        report.write()  # first: a close that fails must not keep reports from the parent
        await webhooks.close()
        await smtp.close()
        await store.close()
        await _flush(pipe)


async def _run_until_stopped(
    run: Coroutine[Any, Any, None], stop: asyncio.Event, drain: float
) -> None:
    """Run the outbox until `stop`, then give it `drain` seconds to finish its sends. If the
    loop ends by itself (a bug), exit non-zero: the parent starts a fresh worker."""
    task = asyncio.ensure_future(run)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    if task.done() and not stop.is_set():
        stopping.cancel()
        why = "cancelled" if task.cancelled() else repr(task.exception())
        log.error("delivery_worker.outbox_ended", error=why)
        raise SystemExit(3)
    try:
        await asyncio.wait_for(task, drain)
    except TimeoutError:
        log.warning("delivery_worker.drain_timeout", seconds=drain)


class _Reports:
    """Delivery reports for the parent, one JSON line each, written once per loop turn: a
    write per page was a system call per page here and a wake-up per page there."""

    def __init__(self, pipe: asyncio.WriteTransport) -> None:
        self.pipe = pipe
        self._lines: list[bytes] = []

    def add(self, item: DeliveryReport) -> None:
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.write)
        self._lines.append(json.dumps(item.to_json(), separators=(",", ":")).encode() + b"\n")

    def write(self) -> None:
        lines, self._lines = self._lines, []
        if lines and not self.pipe.is_closing():
            self.pipe.write(b"".join(lines))


async def _flush(pipe: asyncio.WriteTransport) -> None:
    """Let buffered reports reach the parent (if it is still there), then close."""
    waited = 0.0
    while pipe.get_write_buffer_size() and waited < _FLUSH_WAIT:
        await asyncio.sleep(0.05)
        waited += 0.05
    pipe.close()


if __name__ == "__main__":
    main()
