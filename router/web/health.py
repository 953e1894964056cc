"""Liveness and readiness, for load balancers and Kubernetes probes (no credentials)."""

from __future__ import annotations

__all__ = ["routes"]

from aiohttp import web

from router.web.keys import MODEL

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """200 while the process serves."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when the team model is loaded; the database joins this check with the store."""
    if MODEL not in request.app:
        return web.json_response({"status": "not ready", "reason": "no team model"}, status=503)
    return web.json_response({"status": "ready"})
