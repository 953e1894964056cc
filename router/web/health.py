"""Liveness, readiness, status and metrics: for load balancers, probes and operators."""

from __future__ import annotations

__all__ = ["routes"]

import asyncio
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from router import __version__
from router.oncall import resolve
from router.store.base import StoreUnavailableError
from router.web.keys import CLOCK, CONFIG_DIGEST, METRICS, MODEL, SETTINGS, STARTED, STORE
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
    if MODEL not in request.app:
        return _not_ready("no team model is loaded")
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
    model, now = app[MODEL], app[CLOCK]()
    leave, overrides = await effective_entries(app)
    oncall = resolve(model, now, leave, overrides)
    body: dict[str, Any] = {
        "version": __version__,
        "uptime_seconds": round((now - app[STARTED]).total_seconds(), 3),
        "config": {"path": str(app[SETTINGS].config), "digest": app[CONFIG_DIGEST]},
        "oncall": oncall.to_json(model),
        "oncall_gap": oncall.primary is None,
        "incidents": {"open": await app[STORE].open_incident_count()},
    }
    return web.json_response(body)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    app = request.app
    app[METRICS].incidents_open.set(await app[STORE].open_incident_count())
    return web.Response(
        body=app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
