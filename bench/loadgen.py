"""The load generator: POSTs generic alerts to one target and reports what it saw, as JSON.

Run by `bench/ingest.py` in its own process (so its CPU is not the server's), or by hand:

    python bench/loadgen.py --url http://127.0.0.1:8080/api/v1/alerts --token T \\
        --mode closed --concurrency 64 --duration 10
    python bench/loadgen.py --url ... --token T --mode open --rate 1000 --duration 10

Each request is `{"pipeline": "aggregate-profit", "summary": "bench", "severity": "critical",
"status": "firing", "dedup_key": "bench-<n>"}` with a distinct `n` (from `--first-key` up),
so every alert opens its own incident. Anything but a 202 is an error.

Modes:

- **closed** — `--concurrency` workers each send, wait for the answer, send again, for
  `--duration` seconds. Throughput is what the server (and this process) can sustain;
  latency is from send to answer.
- **open** — sends are scheduled at fixed intervals (`1/--rate`) whatever the answers do.
  Latency is measured from each request's *scheduled* time, so a stall on either side shows
  up in every request it delayed (no coordinated omission). `max_send_lag_ms` says how far
  behind schedule this process itself fell: if it is large, the generator, not the server,
  was the bottleneck.

The report (stdout, one JSON object) has counts, achieved rate and latency percentiles in
milliseconds. `--acked-file` also writes the key numbers that got a 202, one per line, so the
driver can check each of them is in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

TIMEOUT_S = 30.0


@dataclass
class Tally:
    """What one run saw: per-request latencies (seconds) and outcomes."""

    latencies: list[float] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    max_send_lag: float = 0.0
    last_done: float = 0.0

    def record(self, key: int, outcome: str | None, latency: float, done: float) -> None:
        """One finished request: `outcome` None for a 202, else what went wrong."""
        self.latencies.append(latency)
        self.last_done = max(self.last_done, done)
        if outcome is None:
            self.acked.append(key)
        else:
            self.errors[outcome] += 1


def body_for(key: int) -> bytes:
    """The alert with dedup key `bench-<key>`."""
    alert = {
        "pipeline": "aggregate-profit",
        "summary": "bench",
        "severity": "critical",
        "status": "firing",
        "dedup_key": f"bench-{key}",
    }
    return json.dumps(alert, separators=(",", ":")).encode()


class Sender:
    """POSTs one alert and records the outcome in a `Tally`."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, tally: Tally) -> None:
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.tally = tally

    async def send(self, key: int, since: float) -> None:
        """POST alert `key`; latency is counted from `since` (a `time.perf_counter()`)."""
        self.tally.sent += 1
        outcome: str | None
        try:
            async with self.session.post(
                self.url, data=body_for(key), headers=self.headers
            ) as response:
                await response.read()
                outcome = None if response.status == 202 else f"http_{response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            outcome = type(err).__name__
        done = time.perf_counter()
        self.tally.record(key, outcome, done - since, done)


async def closed_loop(sender: Sender, first_key: int, workers: int, duration: float) -> float:
    """`workers` send-and-wait loops for `duration` seconds; returns the start time."""
    keys = iter(range(first_key, sys.maxsize))
    start = time.perf_counter()
    end = start + duration

    async def worker() -> None:
        while (now := time.perf_counter()) < end:
            await sender.send(next(keys), now)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return start


async def open_loop(sender: Sender, first_key: int, rate: float, duration: float) -> float:
    """Send at `rate` per second on a fixed schedule for `duration` seconds; returns the start.

    Each wake-up launches every request whose scheduled time has passed, so falling behind
    never thins the schedule; latency counts from the scheduled time.
    """
    interval = 1.0 / rate
    total = math.floor(rate * duration)
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    n = 0
    while n < total:
        now = time.perf_counter()
        while n < total and (scheduled := start + n * interval) <= now:
            sender.tally.max_send_lag = max(sender.tally.max_send_lag, now - scheduled)
            task = asyncio.create_task(sender.send(first_key + n, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        if n < total:
            await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
    if tasks:
        await asyncio.wait(tasks)
    return start


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def report(args: argparse.Namespace, tally: Tally, start: float) -> dict[str, object]:
    """The JSON report of one run."""
    ordered = sorted(tally.latencies)
    elapsed = max(args.duration, tally.last_done - start)
    ok = len(tally.acked)

    def ms(value: float) -> float:
        return round(value * 1000, 3)

    return {
        "mode": args.mode,
        "offered_rate": args.rate if args.mode == "open" else None,
        "concurrency": args.concurrency if args.mode == "closed" else None,
        "duration_s": round(elapsed, 3),
        "sent": tally.sent,
        "ok": ok,
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "achieved_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p90_ms": ms(percentile(ordered, 0.90)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1] if ordered else 0.0),
        "max_send_lag_ms": ms(tally.max_send_lag) if args.mode == "open" else None,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    """One run against `args.url`, as `args` says."""
    tally = Tally()
    limit = args.concurrency if args.mode == "closed" else args.connections
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sender = Sender(session, args.url, args.token, tally)
        if args.mode == "closed":
            start = await closed_loop(sender, args.first_key, args.concurrency, args.duration)
        else:
            start = await open_loop(sender, args.first_key, args.rate, args.duration)
    if args.acked_file is not None:
        args.acked_file.write_text("".join(f"{key}\n" for key in tally.acked))
    return report(args, tally, start)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="POST generic alerts at a target.")
    parser.add_argument("--url", required=True, help="the alert endpoint")
    parser.add_argument("--token", required=True, help="bearer token")
    parser.add_argument("--mode", choices=("closed", "open"), default="closed")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop workers")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop requests/s")
    parser.add_argument(
        "--connections", type=int, default=256, help="open-loop connection pool limit"
    )
    parser.add_argument("--first-key", type=int, default=0, help="first dedup key number")
    parser.add_argument("--acked-file", type=Path, help="write the acknowledged key numbers")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.rate <= 0 or args.connections < 1:
        parser.error("--duration, --concurrency, --rate and --connections must be positive")
    return args


def main() -> None:
    """Run once and print the report as one JSON line."""
    args = parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
