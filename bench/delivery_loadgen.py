"""The delivery benchmark's load generator: posts one alert per request to the router or to
Alertmanager and records, per alert, when it was sent and whether it was accepted.

Run by `bench/delivery.py` in its own process, or by hand:

    python bench/delivery_loadgen.py --kind router --url http://127.0.0.1:8080 --token T \\
        --mode open --rate 1000 --duration 5 --out sent.json
    python bench/delivery_loadgen.py --kind am --url http://127.0.0.1:9093 \\
        --mode closed --concurrency 64 --duration 5 --out sent.json

Alert `n` (from `--first-key` up) is:

- `router`: `POST /api/v1/alerts` with a bearer token, the generic alert
  `{"pipeline": "aggregate-profit", "summary": "bench", "severity": "critical",
  "status": "firing", "dedup_key": "bench-<n>"}`; accepted means `202`;
- `am`: `POST /api/v2/alerts` with a one-alert list, labels `alertname=BenchAlert`,
  `pipeline=aggregate-profit`, `severity=critical`, `id=<n>` (so every alert is its own group
  under `group_by: ['...']`), annotation `summary`, `startsAt` now; accepted means `200`.

Send times are `time.monotonic()` (Linux `CLOCK_MONOTONIC`, shared by every process of the
machine, so `bench/webhook_sink.py`'s arrival times are on the same clock). In the open loop
an alert's send time is its *scheduled* time (sends never wait for answers; a generator that
falls behind shows it as `max_send_lag_ms`, and the delay counts against the target rather
than vanishing); in the closed loop it is the moment the worker sends it.

The HTTP client is a few lines of asyncio (keep-alive HTTP/1.1, one request at a time per
connection, at most `--concurrency` or `--connections` connections) rather than aiohttp's:
at 4,000 alerts/s on two cores every microsecond the generator spends is taken from the
server under test, and aiohttp's client costs about twice as much (20,000 requests at
4,000/s to `bench/ceiling_server.py`: 2.5 CPU-seconds here, 4.3 with `bench/loadgen.py`).

`--out` gets `{"records": [[n, sent_at, accepted], ...], ...the summary}`; stdout gets the
summary as one JSON line (counts, ingest latency percentiles, first and last send time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT_S = 30.0
AM_ALERTNAME = "BenchAlert"
PIPELINE = "aggregate-profit"


@dataclass
class Tally:
    """Per-alert records and outcomes of one run."""

    records: list[tuple[int, float, bool]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    max_send_lag: float = 0.0
    last_done: float = 0.0


def router_body(key: int) -> bytes:
    """The generic alert with dedup key `bench-<key>`."""
    alert = {
        "pipeline": PIPELINE,
        "summary": "bench",
        "severity": "critical",
        "status": "firing",
        "dedup_key": f"bench-{key}",
    }
    return json.dumps(alert, separators=(",", ":")).encode()


def am_body_maker() -> Callable[[int], bytes]:
    """Alertmanager API v2 bodies: one alert, labelled `id=<key>`, starting now."""
    starts = datetime.now(UTC).isoformat()

    def body(key: int) -> bytes:
        alert = {
            "labels": {
                "alertname": AM_ALERTNAME,
                "pipeline": PIPELINE,
                "severity": "critical",
                "id": str(key),
            },
            "annotations": {"summary": "bench"},
            "startsAt": starts,
            "generatorURL": "http://bench.invalid/",
        }
        return json.dumps([alert], separators=(",", ":")).encode()

    return body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write on."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the request in flight, if any."""
        self.transport = None
        self.reusable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError(str(exc or "connection closed")))

    def data_received(self, data: bytes) -> None:
        """Buffer until the response is complete, then hand its status to the waiter."""
        self.buffer += data
        status = self._complete_response()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def _complete_response(self) -> int | None:
        """The status of the buffered response once all of it has arrived (and drop it)."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "chunked" in headers.get("transfer-encoding", ""):
            # Small answers only: the body ends with the last (empty) chunk.
            last = self.buffer.find(b"0\r\n\r\n", end + 4)
            if last < 0:
                return None
            total = last + 5
        else:
            total = end + 4 + int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < total:
                return None
        del self.buffer[:total]
        if headers.get("connection") == "close":
            self.reusable = False
        return int(lines[0].split(" ", 2)[1])

    async def request(self, payload: bytes) -> int:
        """Send one complete request; its response status."""
        if self.transport is None:
            raise ConnectionResetError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Up to `limit` keep-alive connections to one host; a request waits for a free one."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host = host
        self.port = port
        self.limit = limit
        self.opened = 0
        self.idle: asyncio.Queue[Connection | None] = asyncio.Queue()
        self.everyone: list[Connection] = []

    async def acquire(self) -> Connection:
        """An idle connection, a new one (below the limit), or the next one released."""
        try:
            conn = self.idle.get_nowait()
        except asyncio.QueueEmpty:
            if self.opened < self.limit:
                self.opened += 1
                conn = None
            else:
                conn = await self.idle.get()
        if conn is None:  # below the limit, or a closed connection's slot handed on
            try:
                _, conn = await asyncio.get_running_loop().create_connection(
                    Connection, self.host, self.port
                )
            except OSError:
                self.release(None)
                raise
            self.everyone.append(conn)
        return conn

    def release(self, conn: Connection | None) -> None:
        """Give a connection back; a broken one gives back its slot."""
        if conn is not None and not conn.reusable:
            conn.close()
            conn = None
        self.idle.put_nowait(conn)

    def close(self) -> None:
        """Close every connection."""
        for conn in self.everyone:
            conn.close()


class Sender:
    """POSTs one alert and records its send time and outcome."""

    def __init__(self, pool: Pool, args: argparse.Namespace) -> None:
        self.pool = pool
        self.tally = Tally()
        url = urlsplit(args.url)
        host = f"{url.hostname}:{url.port}"
        if args.kind == "router":
            path, auth = "/api/v1/alerts", f"Authorization: Bearer {args.token}\r\n"
            self.accepted = 202
            self.body: Callable[[int], bytes] = router_body
        else:
            path, auth = "/api/v2/alerts", ""
            self.accepted = 200
            self.body = am_body_maker()
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: "
        ).encode()

    async def send(self, key: int, sent_at: float) -> None:
        """POST alert `key`, sent (or scheduled) at `sent_at` (monotonic seconds)."""
        body = self.body(key)
        payload = b"%s%d\r\n\r\n%s" % (self.head, len(body), body)
        outcome: str | None
        conn: Connection | None = None
        try:
            async with asyncio.timeout(TIMEOUT_S):
                conn = await self.pool.acquire()
                status = await conn.request(payload)
            outcome = None if status == self.accepted else f"http_{status}"
        except (TimeoutError, OSError, ValueError, IndexError) as err:
            outcome = type(err).__name__
            if conn is not None:
                conn.reusable = False
        if conn is not None:
            self.pool.release(conn)
        done = time.monotonic()
        tally = self.tally
        tally.records.append((key, sent_at, outcome is None))
        tally.latencies.append(done - sent_at)
        tally.last_done = max(tally.last_done, done)
        if outcome is not None:
            tally.errors[outcome] += 1


async def closed_loop(sender: Sender, first_key: int, workers: int, duration: float) -> float:
    """`workers` send-and-wait loops for `duration` seconds; returns the start time."""
    keys = iter(range(first_key, sys.maxsize))
    start = time.monotonic()
    end = start + duration

    async def worker() -> None:
        while (now := time.monotonic()) < end:
            await sender.send(next(keys), now)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return start


async def open_loop(sender: Sender, first_key: int, rate: float, duration: float) -> float:
    """Send at `rate` per second on a fixed schedule for `duration` seconds; returns the start.

    Each wake-up launches every request whose scheduled time has passed, so falling behind
    never thins the schedule.
    """
    interval = 1.0 / rate
    total = math.floor(rate * duration)
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    n = 0
    while n < total:
        now = time.monotonic()
        while n < total and (scheduled := start + n * interval) <= now:
            sender.tally.max_send_lag = max(sender.tally.max_send_lag, now - scheduled)
            task = asyncio.create_task(sender.send(first_key + n, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        if n < total:
            await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks)
    return start


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(args: argparse.Namespace, tally: Tally, start: float) -> dict[str, object]:
    """The run's counts and ingest (send → answer) latency."""
    ordered = sorted(tally.latencies)
    sent_times = [sent_at for _, sent_at, _ in tally.records]
    return {
        "kind": args.kind,
        "mode": args.mode,
        "offered_rate": args.rate if args.mode == "open" else None,
        "concurrency": args.concurrency if args.mode == "closed" else None,
        "start": start,
        "first_sent": min(sent_times, default=start),
        "last_sent": max(sent_times, default=start),
        "last_answer": tally.last_done,
        "sent": len(tally.records),
        "acked": sum(1 for *_, ok in tally.records if ok),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "ingest_p50_ms": round(1000 * percentile(ordered, 0.50), 3),
        "ingest_p99_ms": round(1000 * percentile(ordered, 0.99), 3),
        "max_send_lag_ms": round(1000 * tally.max_send_lag, 3) if args.mode == "open" else None,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    """One run as `args` says; writes `--out`, returns the summary."""
    limit = args.concurrency if args.mode == "closed" else args.connections
    url = urlsplit(args.url)
    pool = Pool(url.hostname or "127.0.0.1", url.port or 80, limit)
    sender = Sender(pool, args)
    try:
        if args.mode == "closed":
            start = await closed_loop(sender, args.first_key, args.concurrency, args.duration)
        else:
            start = await open_loop(sender, args.first_key, args.rate, args.duration)
    finally:
        pool.close()
    result = summary(args, sender.tally, start)
    document = {**result, "records": sender.tally.records}
    args.out.write_text(json.dumps(document, separators=(",", ":")))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="POST alerts at the router or Alertmanager.")
    parser.add_argument("--kind", choices=("router", "am"), required=True)
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--token", default="", help="bearer token (router)")
    parser.add_argument("--mode", choices=("closed", "open"), default="open")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop workers")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop alerts/s")
    parser.add_argument(
        "--connections", type=int, default=256, help="open-loop connection pool limit"
    )
    parser.add_argument("--first-key", type=int, default=0, help="first alert number")
    parser.add_argument("--out", type=Path, required=True, help="per-alert records (JSON)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.rate <= 0 or args.connections < 1:
        parser.error("--duration, --concurrency, --rate and --connections must be positive")
    return args


def main() -> None:
    """Run once and print the summary as one JSON line."""
    args = parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
