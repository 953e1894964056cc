"""Who may call the API: a bearer token from `ROUTER_INBOUND_TOKENS`, compared in constant time.

Open paths (health, metrics) need nothing. With no tokens configured every protected path
answers 401: the router never runs open by accident.
"""

from __future__ import annotations

__all__ = ["auth_middleware", "caller_name"]

import hmac
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import SecretStr

from router.web.errors import ApiError, Handler

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CALLER: web.RequestKey[str] = web.RequestKey("caller", str)


def caller_name(tokens: Mapping[str, SecretStr], header: str | None) -> str | None:
    """The name of the token in an `Authorization: Bearer …` header, or None."""
    if header is None or not header.startswith("Bearer "):
        return None
    offered = header.removeprefix("Bearer ").strip().encode()
    found = None
    for name, token in tokens.items():
        # Compare against every token so timing does not tell which one nearly matched.
        if hmac.compare_digest(offered, token.get_secret_value().encode()):
            found = name
    return found


def auth_middleware(tokens: Mapping[str, SecretStr]) -> Middleware:
    """Refuse protected paths without a valid bearer token (401 with `WWW-Authenticate`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        if not tokens:
            raise _unauthorized("no credentials are configured: set ROUTER_INBOUND_TOKENS")
        name = caller_name(tokens, request.headers.get("Authorization"))
        if name is None:
            raise _unauthorized("missing or invalid bearer token")
        request[CALLER] = name
        return await handler(request)

    return middleware


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
