"""Delivery in worker processes: the serving process takes alerts and escalates, children
deliver the pages.

Why: CPython runs one thread of Python at a time. In one process, rendering and sending
pages compete with intake for that thread, so a storm of pages slows every 202 and a storm
of alerts slows every page. A worker process delivers on another core. Both processes work
on the same database: the outbox rows are the hand-over, as between replicas (claims with
a lease), so nothing is lost if either process dies.

Between the serving process and each worker, two pipes:
- control (parent → child): frames of a length (4 bytes) and that many bytes, in order.
  - An empty frame is a wake-up: "new notifications are due, look now". None is written
    while the worker has bytes left to read (in the pipe or still buffered here): those end
    with a wake-up already, so the pipe never fills with them. A worker also looks every
    half second without one.
  - Any other frame is the team model in force, pickled, each time the serving process
    swaps in a new one (SIGHUP), followed by a wake-up. A worker never reads the config
    file itself, so a file saved between two reads, or broken after the serving process
    read it, cannot part them.
  - One stream for both, so the pages planned by a new model are announced after it, and
    the model is written before any page is planned by it. The pipe is enlarged to 1 MiB
    where the system allows, so a model (kilobytes) goes into it whole. A worker neither
    claims nor starts the pages it claimed while it is behind on the pipe (part of a frame
    read, or bytes waiting in the pipe): it has the model before it sends a page planned by
    it. (A model larger than the pipe's free space leaves a narrow window: its tail waits
    here, and a claim already under way may return before the worker has read the start.)
  - End of file means the parent is gone: the worker stops claiming, finishes the sends in
    flight and exits.
- reports (child → parent): one JSON line per delivery attempt (`DeliveryReport`), which
  the parent counts in `/metrics` and `/status`, the endpoints it serves.

A worker that exits is started again after a back-off (1 s, doubling to 30 s). On shutdown
each worker gets SIGTERM, drains (`ROUTER_DRAIN_TIMEOUT_SECONDS`) and exits; one that does
not is killed.
"""

from __future__ import annotations

__all__ = ["DeliveryWorkers", "in_pipe", "model_frame"]

import asyncio
import contextlib
import fcntl
import json
import os
import pickle
import signal
import struct
import sys
import termios
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import structlog

from router.outbox import DeliveryReport
from router.settings import Settings
from router.teammodel import TeamModel

log = structlog.get_logger(__name__)
_FIRST_BACKOFF = 1.0
_MAX_BACKOFF = 30.0
_HEALTHY_AFTER = 60.0  # a worker that ran this long restarts without a back-off
_KILL_MARGIN = 5.0  # beyond the drain timeout, before SIGKILL


@dataclass(slots=True)
class _Running:
    process: asyncio.subprocess.Process
    control: asyncio.WriteTransport
    reports: asyncio.ReadTransport
    model: TeamModel  # the last one handed to it


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


WAKE_FRAME = bytes(4)  # an empty frame
CONTROL_PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged process


def _unread(control: asyncio.WriteTransport) -> int:
    """Bytes written for the worker that it has not read: buffered here, or in the pipe (0
    where the system cannot say: a wake-up too many costs the worker one look)."""
    if buffered := control.get_write_buffer_size():
        return buffered
    return in_pipe(control.get_extra_info("pipe").fileno())


def in_pipe(fd: int) -> int:
    """Bytes waiting in the pipe `fd` is an end of (Linux answers for either end)."""
    try:
        waiting: int = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, bytes(4)))[0]
    except (OSError, ValueError):
        return 0
    return waiting


def model_frame(model: TeamModel) -> bytes:
    """A team model as it travels down the control pipe: its length (4 bytes), its pickle."""
    data = pickle.dumps(model)
    return len(data).to_bytes(4, "big") + data


class _ReportLines(asyncio.Protocol):
    """Reads the JSON lines a worker writes; a line that does not parse is logged."""

    def __init__(self, on_report: Callable[[DeliveryReport], None]) -> None:
        self.on_report = on_report
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                report = DeliveryReport.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as err:
                log.error("delivery_worker.bad_report", error=str(err))
                continue
            self.on_report(report)


class DeliveryWorkers:
    """`count` delivery worker processes, kept running until `stop()`."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        on_report: Callable[[DeliveryReport], None],
        model: Callable[[], TeamModel],
    ) -> None:
        self.settings = settings
        self.model = model  # the serving process's team model, which a new worker starts on
        self.count = count
        self.on_report = on_report
        self._running: dict[int, _Running] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._spawning = asyncio.Lock()
        self._wake_pending = False

    @property
    def running(self) -> int:
        """Workers alive now."""
        return sum(1 for r in self._running.values() if r.process.returncode is None)

    async def start(self) -> None:
        """Start the workers and their supervisors."""
        for slot in range(self.count):
            self._supervisors.append(
                asyncio.create_task(self._supervise(slot), name=f"delivery-worker-{slot}")
            )

    def wake(self) -> None:
        """Tell every worker to look for due notifications (once per loop iteration)."""
        if self._wake_pending:
            return
        self._wake_pending = True
        asyncio.get_running_loop().call_soon(self._send_wake)

    def _send_wake(self) -> None:
        self._wake_pending = False
        for running in self._running.values():
            # A closing pipe: the worker is gone, and its supervisor starts another.
            control = running.control
            if not control.is_closing() and not _unread(control):
                control.write(WAKE_FRAME)

    def model_changed(self) -> None:
        """The serving process swapped in a new team model: hand it to every worker."""
        model = self.model()
        frame = model_frame(model)  # once for all of them
        for running in self._running.values():
            self._hand_model(running, model, frame)

    def _hand_model(self, running: _Running, model: TeamModel, frame: bytes) -> None:
        if model is running.model or running.control.is_closing():
            return  # a closed pipe: the worker is gone, and its replacement starts on `model`
        running.control.write(frame + WAKE_FRAME)  # buffered: never blocks the loop
        running.model = model

    def _catch_up(self, running: _Running) -> None:
        """Hand a just-registered worker the model in force if it changed while the worker
        started (`model_changed` did not reach it then)."""
        model = self.model()
        if model is not running.model:
            self._hand_model(running, model, model_frame(model))

    async def stop(self) -> None:
        """SIGTERM every worker, wait for it to drain, kill what is left."""
        self._stopping.set()
        for running in self._running.values():
            if running.process.returncode is None:
                running.process.send_signal(signal.SIGTERM)
        if self._supervisors:
            await asyncio.wait(self._supervisors)

    async def _supervise(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        backoff = _FIRST_BACKOFF
        while not self._stopping.is_set():
            started = loop.time()
            try:
                running = await self._spawn(slot)
            except OSError as err:
                # No process (fork refused, out of memory): try again, never give up on
                # delivery for good.
                log.error("delivery_worker.spawn_failed", worker=slot, error=str(err))
                code = None
            except Exception:
                # A bug (a team model that does not pickle, say) must not end delivery
                # silently with the supervisor: it is logged and tried again like the rest.
                log.exception("delivery_worker.spawn_failed", worker=slot)
                code = None
            else:
                self._running[slot] = running
                self._catch_up(running)
                code = await self._exit_code(running.process)
                self._detach(slot)
            if self._stopping.is_set():
                return
            if loop.time() - started >= _HEALTHY_AFTER:
                backoff = _FIRST_BACKOFF
            log.error("delivery_worker.exited", worker=slot, exitcode=code, restart_in=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _spawn(self, slot: int) -> _Running:
        ours: list[int] = []  # control (we write), reports (we read)
        theirs: list[int] = []  # the same numbers in the child
        try:
            for child_reads in (True, False):
                read, write = os.pipe()
                ours.append(write if child_reads else read)
                theirs.append(read if child_reads else write)
            # Linux only; refused above the system's limit or the user's pipe quota: the
            # default size (64 KiB) then, which only narrows what a model may weigh whole.
            if hasattr(fcntl, "F_SETPIPE_SZ"):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(ours[0], fcntl.F_SETPIPE_SZ, CONTROL_PIPE_SIZE)
            process = await self._start_child(theirs)
        except BaseException:
            _close_all(ours)
            raise
        finally:
            # Our copies of the child's ends must go, or no side would ever see end of file.
            _close_all(theirs)
        return await self._connect(slot, process, theirs, ours)

    async def _start_child(self, child_fds: list[int]) -> asyncio.subprocess.Process:
        """The child starts with SIGHUP blocked (the mask is inherited): a hang-up sent to
        the whole process group while it imports (most of a second) would end it. It
        ignores SIGHUP before unblocking it. One start at a time: two interleaved would
        each restore the mask the other saw, leaving SIGHUP blocked here for good."""
        async with self._spawning:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
            try:
                return await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "router.delivery_worker",
                    stdin=asyncio.subprocess.PIPE,
                    pass_fds=child_fds,
                )
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    async def _connect(
        self, slot: int, process: asyncio.subprocess.Process, theirs: list[int], ours: list[int]
    ) -> _Running:
        """Hand the child what it starts on, and wrap our pipe ends in transports."""
        loop = asyncio.get_running_loop()
        control_fd, reports_fd = ours
        control_file = os.fdopen(control_fd, "wb", buffering=0)
        reports_file = os.fdopen(reports_fd, "rb", buffering=0)
        opened: list[asyncio.BaseTransport | BinaryIO] = [control_file, reports_file]
        model = self.model()
        try:
            await self._hand_over(process, (self.settings, model, slot, *theirs))
            control, _ = await loop.connect_write_pipe(asyncio.Protocol, control_file)
            opened[0] = control
            reports, _ = await loop.connect_read_pipe(
                lambda: _ReportLines(self.on_report), reports_file
            )
        except BaseException:
            for each in opened:
                each.close()
            # A child that got no settings would wait on its stdin for ever.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        log.info("delivery_worker.started", worker=slot, pid=process.pid)
        return _Running(process, control, reports, model)

    async def _hand_over(
        self, process: asyncio.subprocess.Process, started: tuple[Any, ...]
    ) -> None:
        """Send the child what it starts on. The settings travel by pipe, not environment
        or argv: they hold secrets. So does the model in force, not the file: if the file was
        broken since (and the serving process kept its model), a restarted worker still
        delivers. A child that died at once fails this write; it is then waited for like
        any other exit."""
        assert process.stdin is not None
        handed = pickle.dumps(started)
        with contextlib.suppress(ConnectionError):
            process.stdin.write(handed)
            await process.stdin.drain()
        process.stdin.close()

    async def _exit_code(self, process: asyncio.subprocess.Process) -> int:
        """Wait for the process to end; past the drain timeout after `stop()`, kill it."""
        ended = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([ended, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not ended.done():
            # Again, for a worker started while `stop()` was signalling the others.
            process.send_signal(signal.SIGTERM)
            grace = self.settings.drain_timeout_seconds + _KILL_MARGIN
            try:
                await asyncio.wait_for(asyncio.shield(ended), grace)
            except TimeoutError:
                log.warning("delivery_worker.killed", pid=process.pid, after_seconds=grace)
                process.kill()
        return await ended

    def _detach(self, slot: int) -> None:
        running = self._running.pop(slot, None)
        if running is None:
            return
        running.control.close()
        running.reports.close()
