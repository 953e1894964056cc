"""Throughput of one and of two replicas on PostgreSQL beside one on SQLite, same run.

    .venv/bin/python bench/replicas.py [--duration S] [--concurrency N]

Starts, one phase at a time: one `router serve` on a fresh SQLite file; one on a fresh
PostgreSQL database; two on one fresh PostgreSQL database (the load spread round-robin over
both). PostgreSQL is a throwaway cluster started with the machine's `initdb`/`pg_ctl`, as
the tests do (tests/pg.py; `fsync=off` there, so PostgreSQL's figures are an upper bound
next to SQLite's `synchronous=FULL`). Every request is a generic alert with its own dedup
key (a new incident); the load is a closed loop of `--concurrency` aiohttp workers, all in
this process. After each phase every 202 is checked to be an incident in the database.
A benchmark, not a test: exit 0 whatever the figures, 1 if an accepted alert is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pg import PostgresServer
from services import RouterProcess

QUIET = {"ROUTER_RATE_LIMIT_PER_SECOND": "0", "ROUTER_LOG_LEVEL": "warning"}


async def _load(
    routers: Sequence[RouterProcess], duration: float, concurrency: int, prefix: str
) -> tuple[list[str], list[float]]:
    """Closed loop for `duration` s; the keys that got 202, and every latency."""
    accepted: list[str] = []
    latencies: list[float] = []
    counter = itertools.count()
    deadline = time.monotonic() + duration

    async def worker(session: aiohttp.ClientSession, index: int) -> None:
        router = routers[index % len(routers)]
        url = f"{router.base_url}/api/v1/alerts"
        headers = {"Authorization": f"Bearer {router.token}"}
        while time.monotonic() < deadline:
            key = f"{prefix}-{next(counter)}"
            body = {
                "pipeline": "aggregate-profit",
                "summary": f"bench {key}",
                "severity": "warning",
                "status": "firing",
                "dedup_key": key,
                "source": "bench",
            }
            started = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                if response.status == 202:
                    accepted.append(key)
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, i) for i in range(concurrency)))
    return accepted, latencies


def _stored_sqlite(path: Path) -> set[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {row[0] for row in conn.execute("SELECT dedup_key FROM incidents")}


def _stored_postgres(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT dedup_key FROM incidents").fetchall()}


def _phase(
    name: str,
    routers: list[RouterProcess],
    args: argparse.Namespace,
    stored: object,
) -> tuple[str, int, float, float, bool]:
    for router in routers:
        router.start()
    try:
        asyncio.run(_load(routers, 1.0, args.concurrency, f"{name}-warm"))
        accepted, latencies = asyncio.run(_load(routers, args.duration, args.concurrency, name))
    finally:
        for router in routers:
            router.stop()
    found = stored() if callable(stored) else set()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    return name, len(accepted), len(accepted) / args.duration, p99, set(accepted) <= found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three phases and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop workers")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        work = Path(tmp)
        database = work / "sqlite" / "router.db"
        sqlite_router = RouterProcess(work / "sqlite", database=database, env=QUIET)
        rows.append(_phase("sqlite x1", [sqlite_router], args, lambda: _stored_sqlite(database)))
        server = PostgresServer.start()
        try:
            one = server.new_database()
            env = {**QUIET, "ROUTER_DATABASE_URL": one}
            replica = RouterProcess(work / "pg1", env=env)
            rows.append(_phase("postgresql x1", [replica], args, lambda: _stored_postgres(one)))
            two = server.new_database()
            env = {**QUIET, "ROUTER_DATABASE_URL": two}
            pair = [RouterProcess(work / f"pg2-{n}", env=env) for n in range(2)]
            rows.append(_phase("postgresql x2", pair, args, lambda: _stored_postgres(two)))
        finally:
            server.stop()
    print(f"\n{'target':<15} {'accepted':>9} {'alerts/s':>9} {'p99 ms':>8}  every 202 stored")
    for name, accepted, rate, p99, durable in rows:
        print(f"{name:<15} {accepted:>9} {rate:>9.0f} {p99:>8.1f}  {durable}")
    return 0 if all(row[4] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
