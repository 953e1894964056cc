"""Runtime leave and overrides: `POST/GET /api/v1/leave`, `DELETE /api/v1/leave/{id}`, and
the same under `/api/v1/overrides`. Persisted, audited (who and when), merged with the
config's entries before every on-call resolution.
"""

from __future__ import annotations

__all__ = ["effective_entries", "routes"]

from typing import Any

import structlog
from aiohttp import web

from router.crosscheck import check_span
from router.store.base import RuntimeEntry, RuntimeKind
from router.teammodel import LeaveEntry, Override
from router.web.auth import CALLER
from router.web.body import read_json
from router.web.errors import ApiError
from router.web.keys import CLOCK, CONFIG, STORE
from router.web.params import whole_number
from router.web.validation import validated

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
KINDS: dict[str, RuntimeKind] = {"leave": "leave", "overrides": "override"}
MAX_ID = 2**62


async def effective_entries(app: web.Application) -> tuple[list[LeaveEntry], list[Override]]:
    """The config's leave and overrides, then the runtime ones (later overrides win)."""
    model, store = app[CONFIG].model, app[STORE]
    leave = [e.entry for e in await store.runtime_entries("leave")]
    overrides = [e.entry for e in await store.runtime_entries("override")]
    runtime_leave = [e for e in leave if isinstance(e, LeaveEntry)]
    runtime_overrides = [e for e in overrides if isinstance(e, Override)]
    return [*model.leave, *runtime_leave], [*model.overrides, *runtime_overrides]


@routes.get("/api/v1/{kind:leave|overrides}")
async def list_entries(request: web.Request) -> web.Response:
    """The config's entries and the runtime ones in force."""
    kind = KINDS[request.match_info["kind"]]
    model = request.app[CONFIG].model
    configured = model.leave if kind == "leave" else model.overrides
    runtime = await request.app[STORE].runtime_entries(kind)
    return web.json_response(
        {
            "config": [e.model_dump(mode="json", by_alias=True) for e in configured],
            "runtime": [_entry_json(e) for e in runtime],
        }
    )


@routes.post("/api/v1/{kind:leave|overrides}")
async def add_entry(request: web.Request) -> web.Response:
    """Validate like the config file does, persist, answer 201 with the entry's id."""
    kind = KINDS[request.match_info["kind"]]
    document = await read_json(request)
    entry = _validate(kind, document, request)
    by, now = request[CALLER], request.app[CLOCK]()
    entry_id = await request.app[STORE].add_runtime(entry, by, now)
    log.info(f"{kind}.added", id=entry_id, who=entry.who, by=by)
    return web.json_response(_entry_json(RuntimeEntry(entry_id, entry, by, now)), status=201)


@routes.delete("/api/v1/{kind:leave|overrides}/{id}")
async def delete_entry(request: web.Request) -> web.Response:
    """Withdraw a runtime entry; the record stays for the audit trail."""
    kind = KINDS[request.match_info["kind"]]
    text = request.match_info["id"]
    entry_id = whole_number(text, 1, MAX_ID) or 0
    deleted = await request.app[STORE].delete_runtime(
        kind, entry_id, request[CALLER], request.app[CLOCK]()
    )
    if not deleted:
        raise ApiError(404, "not_found", f"no runtime {kind} entry {text}")
    log.info(f"{kind}.deleted", id=entry_id, by=request[CALLER])
    return web.Response(status=204)


def _validate(kind: RuntimeKind, document: Any, request: web.Request) -> LeaveEntry | Override:
    model = request.app[CONFIG].model
    model_type: type[LeaveEntry | Override] = Override if kind == "override" else LeaveEntry
    return validated(model_type, document, lambda entry: check_span(model, "", entry), "entry")


def _entry_json(entry: RuntimeEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        **entry.entry.model_dump(mode="json", by_alias=True),
        "created_by": entry.created_by,
        "created_at": entry.created_at.isoformat(),
    }
