"""`GET /api/v1/oncall`, `/api/v1/schedule` and `/api/v1/schedule.ics`."""

from __future__ import annotations

__all__ = ["routes"]

from datetime import datetime

from aiohttp import web

from router.ics import schedule_to_ics
from router.oncall import resolve
from router.schedule import Span, schedule, shifts_window
from router.teammodel import TeamModel
from router.timeutil import parse_instant
from router.web.errors import ApiError
from router.web.keys import CLOCK, CONFIG
from router.web.params import whole_number
from router.web.runtime import effective_entries

routes = web.RouteTableDef()
MAX_WEEKS = 520


@routes.get("/api/v1/oncall")
async def oncall(request: web.Request) -> web.Response:
    """Effective primary and backup at `?at=` (default now), with reasons."""
    model = request.app[CONFIG].model
    at = _instant(request, "at", model)
    leave, overrides = await effective_entries(request.app)
    return web.json_response(resolve(model, at, leave, overrides).to_json(model))


@routes.get("/api/v1/schedule")
async def schedule_json(request: web.Request) -> web.Response:
    """The effective schedule from `?from=` for `?weeks=` shifts (default 4)."""
    model = request.app[CONFIG].model
    spans = await _spans(request, model)
    tz = model.team.tz
    rows = [
        {
            "from": s.starts.astimezone(tz).isoformat(),
            "to": s.ends.astimezone(tz).isoformat(),
            **s.oncall.to_json(model),
        }
        for s in spans
    ]
    return web.json_response({"timezone": model.team.timezone, "spans": rows})


@routes.get("/api/v1/schedule.ics")
async def schedule_ics(request: web.Request) -> web.Response:
    """The same schedule as an iCalendar feed."""
    model = request.app[CONFIG].model
    body = schedule_to_ics(await _spans(request, model), request.app[CLOCK]())
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


async def _spans(request: web.Request, model: TeamModel) -> list[Span]:
    first = _instant(request, "from", model)
    text = request.query.get("weeks", "4")
    weeks = whole_number(text, 1, MAX_WEEKS)
    if weeks is None:
        message = f"weeks must be a whole number from 1 to {MAX_WEEKS}"
        raise ApiError(400, "bad_query", message, ["weeks"])
    leave, overrides = await effective_entries(request.app)
    return schedule(model, *shifts_window(model, first, weeks), leave, overrides)


def _instant(request: web.Request, name: str, model: TeamModel) -> datetime:
    """An ISO date-time query parameter (team-local without an offset), default now."""
    text = request.query.get(name)
    if text is None:
        return request.app[CLOCK]()
    try:
        return parse_instant(text, model.team.tz)
    except ValueError as err:
        raise ApiError(400, "bad_query", f"{name}: {err}", [name]) from None
