"""The store's ingest job alone: CPU per alert to open an incident and plan its first page.

No HTTP, no delivery: alerts are routed in advance and handed to a SQLite store in this
process, `--batch` at a time (as concurrent requests would share one group commit), each a
new incident of the shipped `config/` that pages at once. This is the part of a 202 that is
the router's own (bench/ingest.py measures the whole request). Compare two commits by
running the older one with `PYTHONPATH=<a worktree of it>`, interleaved:

    .venv/bin/python bench/store_job.py --alerts 30000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from router.config import load_team_model
from router.ingest import generic
from router.logs import configure_logging
from router.routing import Routed, route
from router.store import open_store
from router.teammodel import TeamModel

CONFIG = Path(__file__).resolve().parent.parent / "config"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _routed(model: TeamModel, number: int) -> Routed:
    body = {
        "pipeline": "aggregate-profit",
        "summary": "bench",
        "severity": "critical",
        "status": "firing",
        "dedup_key": f"bench-{number}",
    }
    return route(model, generic.parse(body)[0])


async def _run(alerts: int, batch: int, warmup: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for `alerts` new incidents after `warmup` others."""
    model = load_team_model(CONFIG)
    store = open_store(f"sqlite:///{tempfile.mkdtemp(prefix='store-job-')}/router.db")
    await store.open()
    try:
        warm = [_routed(model, 10_000_000 + n) for n in range(warmup)]
        measured = [_routed(model, n) for n in range(alerts)]
        for start in range(0, warmup, batch):
            chunk = warm[start : start + batch]
            await asyncio.gather(*(store.ingest([item], NOW, "bench", model) for item in chunk))
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, alerts, batch):
            chunk = measured[start : start + batch]
            await asyncio.gather(
                *(
                    store.ingest([item], NOW + timedelta(microseconds=start + n), "bench", model)
                    for n, item in enumerate(chunk)
                )
            )
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await store.close()


def main() -> None:
    """Run and print µs of CPU and of wall time per alert."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=32, help="alerts per group commit")
    parser.add_argument("--warmup", type=int, default=1_000)
    args = parser.parse_args()
    configure_logging("warning", "console")
    cpu, wall = asyncio.run(_run(args.alerts, args.batch, args.warmup))
    print(
        f"{args.alerts} alerts in batches of {args.batch}: "
        f"{1e6 * cpu / args.alerts:.0f} µs CPU and {1e6 * wall / args.alerts:.0f} µs wall per alert"
    )


if __name__ == "__main__":
    main()
