"""`/api/v1/silences`: maintenance windows. Matching alerts are recorded in their incident
and page nobody; if the incident is still open when the silence ends, escalation starts then.
"""

from __future__ import annotations

__all__ = ["routes"]

from typing import Any

import structlog
from aiohttp import web

from router.crosscheck import check_silence
from router.store.base import RuntimeSilence
from router.teammodel import Silence
from router.web.auth import CALLER
from router.web.body import read_json
from router.web.errors import ApiError
from router.web.keys import CLOCK, CONFIG, ESCALATOR, STORE
from router.web.params import whole_number
from router.web.validation import validated

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/v1/silences")
async def list_silences(request: web.Request) -> web.Response:
    """The config's silences and the runtime ones not withdrawn, with whether each is active."""
    model, now = request.app[CONFIG].model, request.app[CLOCK]()
    tz = model.team.tz
    runtime = await request.app[STORE].runtime_silences()
    return web.json_response(
        {
            "config": [
                {**s.model_dump(mode="json"), "active": s.active(now, tz)} for s in model.silences
            ],
            "runtime": [{**_json(s), "active": s.silence.active(now, tz)} for s in runtime],
        }
    )


@routes.post("/api/v1/silences")
async def add_silence(request: web.Request) -> web.Response:
    """`{pipeline?, matchers?, starts? (default now), ends, author? (default caller), comment?}`."""
    document = await read_json(request)
    now, caller = request.app[CLOCK](), request[CALLER]
    if isinstance(document, dict):
        document = {"starts": now.isoformat(timespec="minutes"), "author": caller, **document}
    model = request.app[CONFIG].model
    silence = validated(Silence, document, lambda s: check_silence(model, "", s), "silence")
    silence_id = await request.app[STORE].add_silence(silence, caller, now)
    log.info("silence.added", id=silence_id, author=silence.author, pipeline=silence.pipeline)
    return web.json_response(_json(RuntimeSilence(silence_id, silence, caller, now)), status=201)


@routes.delete("/api/v1/silences/{id}")
async def delete_silence(request: web.Request) -> web.Response:
    """End a silence early; incidents it held back escalate now."""
    silence_id = whole_number(request.match_info["id"], 1, 2**62) or 0
    now = request.app[CLOCK]()
    tz = request.app[CONFIG].model.team.tz
    if not await request.app[STORE].delete_silence(silence_id, request[CALLER], now, tz):
        raise ApiError(404, "not_found", f"no runtime silence {request.match_info['id']}")
    log.info("silence.deleted", id=silence_id, by=request[CALLER])
    await request.app[ESCALATOR].fire_due()
    return web.Response(status=204)


def _json(entry: RuntimeSilence) -> dict[str, Any]:
    return {
        "id": entry.id,
        **entry.silence.model_dump(mode="json"),
        "created_by": entry.created_by,
        "created_at": entry.created_at.isoformat(),
    }
