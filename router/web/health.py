"""Liveness, readiness, status and metrics: for load balancers, probes and operators."""

from __future__ import annotations

__all__ = ["routes"]

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from router import __version__
from router.oncall import resolve
from router.store.base import StoreUnavailableError
from router.web.keys import (
    CLOCK,
    CONFIG,
    METRICS,
    OUTBOX,
    STARTED,
    STORE,
    WORKERS,
)
from router.web.runtime import effective_entries

routes = web.RouteTableDef()
PING_TIMEOUT = 2.0


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """200 while the process serves."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when the team model is loaded and the database answers; else 503 and why."""
    try:
        await asyncio.wait_for(request.app[STORE].ping(), PING_TIMEOUT)
    except (StoreUnavailableError, TimeoutError) as err:
        return _not_ready(f"database: {err or 'no answer within 2 s'}")
    return web.json_response({"status": "ready"})


def _not_ready(reason: str) -> web.Response:
    return web.json_response({"status": "not ready", "reason": reason}, status=503)


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    """What an operator checks first: version, uptime, config, who is on call, incidents."""
    app = request.app
    model, now = app[CONFIG].model, app[CLOCK]()
    leave, overrides = await effective_entries(app)
    oncall = resolve(model, now, leave, overrides)
    body: dict[str, Any] = {
        "version": __version__,
        "uptime_seconds": round((now - app[STARTED]).total_seconds(), 3),
        "config": {
            "path": str(app[CONFIG].path),
            "digest": app[CONFIG].digest,
            "loaded_at": app[CONFIG].loaded_at.isoformat(),
        },
        "oncall": oncall.to_json(model),
        "oncall_gap": oncall.primary is None,
        "incidents": {"open": await app[STORE].open_incident_count()},
        "outbox": await _outbox_status(app, now),
    }
    return web.json_response(body)


async def _outbox_status(app: web.Application, now: datetime) -> dict[str, Any]:
    stats = await app[STORE].outbox_stats(now)
    dead = await app[STORE].dead_letters(10)
    return {
        "depth": stats.depth,
        "oldest_undelivered_age_seconds": stats.oldest_age_seconds,
        "dead_letters": stats.dead,
        "recent_dead_letters": [{**n.to_json(), "incident_id": n.incident_id} for n in dead],
        "last_delivery": app[OUTBOX].last_result,
        "delivery_workers": _workers_status(app),
    }


def _workers_status(app: web.Application) -> dict[str, int]:
    """Delivery worker processes configured and alive (none: the serving process delivers)."""
    workers = app.get(WORKERS)
    if workers is None:
        return {"configured": 0, "running": 0}
    return {"configured": workers.count, "running": workers.running}


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    app = request.app
    metrics_ = app[METRICS]
    metrics_.incidents_open.set(await app[STORE].open_incident_count())
    metrics_.escalations_exhausted.set(await app[STORE].exhausted_incident_count())
    leave, overrides = await effective_entries(app)
    oncall = resolve(app[CONFIG].model, app[CLOCK](), leave, overrides)
    metrics_.oncall_gap.set(1 if oncall.primary is None else 0)
    stats = await app[STORE].outbox_stats(app[CLOCK]())
    metrics_.outbox_depth.set(stats.depth)
    metrics_.outbox_oldest_seconds.set(stats.oldest_age_seconds or 0)
    metrics_.dead_letters.set(stats.dead)
    metrics_.delivery_workers.set(_workers_status(app)["running"])
    return web.Response(
        body=app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
