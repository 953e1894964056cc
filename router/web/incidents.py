"""`/api/v1/incidents`: list, one with its alerts and timeline, acknowledge, resolve."""

from __future__ import annotations

__all__ = ["routes"]

from typing import Any, cast

import structlog
from aiohttp import web

from router.ingest.common import clean_text
from router.model import IncidentStatus
from router.web.auth import CALLER
from router.web.body import read_json
from router.web.errors import ApiError
from router.web.keys import CLOCK, OUTBOX, STORE
from router.web.params import whole_number

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
STATUSES = ("open", "acknowledged", "resolved")
MAX_LIMIT = 1000


@routes.get("/api/v1/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    """Newest first; `?status=`, `?pipeline=`, `?limit=` (default 100), `?cursor=`."""
    query = request.query
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "bad_query", f"status must be one of {', '.join(STATUSES)}", ["status"])
    pipeline = query.get("pipeline")
    if pipeline is not None and clean_text(pipeline) != pipeline:
        # NUL and lone surrogates name no stored pipeline (intake cleans them), and PostgreSQL
        # refuses them outright. Other unprintable text (a tab, a no-break space) may be one.
        raise ApiError(
            400, "bad_query", "pipeline must not contain NUL or lone surrogates", ["pipeline"]
        )
    limit = _whole(query.get("limit", "100"), "limit", 1, MAX_LIMIT)
    cursor = query.get("cursor")
    before = None if cursor is None else _whole(cursor, "cursor", 1, 2**62)
    page = await request.app[STORE].incidents(
        status=cast(IncidentStatus | None, status),
        pipeline=pipeline,
        limit=limit,
        before=before,
    )
    incidents = [incident.to_json() for incident in page.incidents]
    next_cursor = None if page.next_cursor is None else str(page.next_cursor)
    return web.json_response({"incidents": incidents, "next": next_cursor})


@routes.get("/api/v1/incidents/{id}")
async def get_incident(request: web.Request) -> web.Response:
    """One incident with its alerts, notifications and timeline, oldest first."""
    store = request.app[STORE]
    incident_id = _incident_id(request)
    incident = await store.incident(incident_id)
    if incident is None:
        raise ApiError(404, "not_found", f"no incident {incident_id}")
    body: dict[str, Any] = incident.to_json()
    body["alerts"] = await store.alerts_of(incident_id)
    body["notifications"] = [n.to_json() for n in await store.notifications_of(incident_id)]
    body["timeline"] = [event.to_json() for event in await store.timeline(incident_id)]
    return web.json_response(body)


@routes.post("/api/v1/incidents/{id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge an open incident (idempotent); optional body `{"by": NAME}`."""
    return await _set_status(request, "acknowledged")


@routes.post("/api/v1/incidents/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    """Resolve an incident (idempotent); optional body `{"by": NAME}`."""
    return await _set_status(request, "resolved")


async def _set_status(request: web.Request, status: IncidentStatus) -> web.Response:
    incident_id = _incident_id(request)
    by = await _by(request)
    incident = await request.app[STORE].set_status(incident_id, status, by, request.app[CLOCK]())
    if incident is None:
        raise ApiError(404, "not_found", f"no incident {incident_id}")
    request.app[OUTBOX].wake()
    log.info(f"incident.{status}", incident=incident_id, by=by, status=incident.status)
    return web.json_response(incident.to_json())


async def _by(request: web.Request) -> str:
    """Who acts: the body's `by`, else the caller's token name."""
    if not request.body_exists:
        return request[CALLER]
    document = await read_json(request)
    if not isinstance(document, dict):
        raise ApiError(422, "invalid_body", 'expected an object like {"by": "Alice"}', ["(body)"])
    by = document.get("by", request[CALLER])
    if not isinstance(by, str) or not by.strip() or len(by) > 200:
        raise ApiError(422, "invalid_body", "by must be a name of 1 to 200 characters", ["by"])
    return by.strip()


def _incident_id(request: web.Request) -> int:
    return _whole(request.match_info["id"], "id", 1, 2**62, status=404)


def _whole(text: str, name: str, low: int, high: int, status: int = 400) -> int:
    value = whole_number(text, low, high)
    if value is None:
        code = "not_found" if status == 404 else "bad_query"
        raise ApiError(status, code, f"{name} must be a whole number from {low} to {high}", [name])
    return value
