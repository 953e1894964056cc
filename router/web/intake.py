"""The alert receivers: Alertmanager, Grafana, the generic alert (PagerDuty is its own module).

Each handler turns its body into `Alert`s, routes them, and answers 202 only after the
store has committed them.
"""

from __future__ import annotations

__all__ = ["accept", "routes"]

from collections.abc import Callable, Sequence

import structlog
from aiohttp import web

from router.incidents import Change
from router.ingest import alertmanager, generic, grafana
from router.ingest.common import InvalidAlertError
from router.model import Alert
from router.routing import route
from router.store.base import IngestOutcome
from router.web.auth import CALLER
from router.web.body import read_json
from router.web.errors import ApiError
from router.web.keys import CLOCK, CONFIG, METRICS, OUTBOX, STORE

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
Parser = Callable[[object, str], list[Alert]]


@routes.post("/api/v1/alerts/alertmanager")
async def alertmanager_webhook(request: web.Request) -> web.Response:
    """Prometheus Alertmanager's webhook (`version: "4"`)."""
    return await _receive(request, lambda doc, label: alertmanager.parse(doc, pipeline_label=label))


@routes.post("/api/v1/alerts/grafana")
async def grafana_webhook(request: web.Request) -> web.Response:
    """Grafana alerting's webhook contact point."""
    return await _receive(request, lambda doc, label: grafana.parse(doc, pipeline_label=label))


@routes.post("/api/v1/alerts")
async def generic_alert(request: web.Request) -> web.Response:
    """The router's own alert: `pipeline`, `summary`, `severity`, `status`, …"""
    return await _receive(request, lambda doc, _label: generic.parse(doc))


async def _receive(request: web.Request, parse: Parser) -> web.Response:
    document = await read_json(request)
    label = request.app[CONFIG].model.routing.pipeline_label
    try:
        alerts = parse(document, label)
    except InvalidAlertError as err:
        request.app[METRICS].alerts_rejected.labels("invalid").inc()
        raise ApiError(
            422, "invalid_alert", "the body is JSON of the wrong shape", err.details
        ) from None
    outcomes = await accept(request, alerts)
    incidents = [
        {"id": o.incident.id if o.incident else None, "change": o.change.value} for o in outcomes
    ]
    return web.json_response(
        {"status": "accepted", "alerts": len(alerts), "incidents": incidents}, status=202
    )


async def accept(request: web.Request, alerts: Sequence[Alert]) -> list[IngestOutcome]:
    """Route and durably store `alerts` (with their first pages); log and count each one."""
    app = request.app
    model, now = app[CONFIG].model, app[CLOCK]()
    routed = [route(model, alert) for alert in alerts]
    caller = request.get(CALLER)
    outcomes = await app[STORE].ingest(routed, now, caller, model)
    if any(o.change is not Change.REPEAT and o.incident for o in outcomes):
        app[OUTBOX].wake()
    for item, outcome in zip(routed, outcomes, strict=True):
        pipeline = item.pipeline.id if item.pipeline else "unknown"
        app[METRICS].alerts_received.labels(item.alert.source, pipeline).inc()
        log.info(
            "alert.received",
            source=item.alert.source,
            caller=caller,
            pipeline=item.alert.pipeline,
            known_pipeline=item.pipeline is not None,
            dedup_key=item.dedup_key,
            incident=outcome.incident.id if outcome.incident else None,
            change=outcome.change.value,
        )
    structlog.contextvars.bind_contextvars(
        incidents=[o.incident.id for o in outcomes if o.incident]
    )
    return outcomes
