"""A request id for every request: bound in the log context of all it logs, echoed back.

A caller (or the proxy in front) may send its own `X-Request-Id`; a short plain token is
kept so that one id follows the request across services, anything else is replaced by a
fresh one. The id is answered in `X-Request-Id`, so a user can quote it and an operator can
find every log line the request wrote.
"""

from __future__ import annotations

__all__ = ["REQUEST_ID_HEADER", "request_id_middleware"]

import random
import re

import structlog
from aiohttp import web

from router.web.errors import Handler

REQUEST_ID_HEADER = "X-Request-Id"
# What a sane id from outside looks like: short, and nothing a log line or header would mangle.
_SANE = re.compile(r"[A-Za-z0-9._:-]{8,64}")


def _fresh_id() -> str:
    """32 hex digits. A correlation id, not a secret: the process's seeded PRNG, not
    os.urandom, whose system call gives up the GIL and under load waits to get it back."""
    return f"{random.getrandbits(128):032x}"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind `request_id` for the request's log lines and answer it in `X-Request-Id`."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _SANE.fullmatch(offered) else _fresh_id()
    # aiohttp runs each request in a task of its own (with a copy of the context), so the
    # binding ends with the request, yet still reaches the access log line written after it.
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as err:  # a redirect; errors became responses further in
        err.headers[REQUEST_ID_HEADER] = request_id
        raise
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
