"""Who may call the API, and how often.

A caller proves itself with `Authorization: Bearer <token>` (a named token from
`ROUTER_INBOUND_TOKENS`, compared in constant time) or an `X-Router-Signature` HMAC of the
body. Open paths (health, metrics, one-click ack links, PagerDuty's endpoint whose routing
key is its credential) need neither. With no credentials configured every protected path
answers 401: the router never runs open by accident. Each caller has a rate limit.
"""

from __future__ import annotations

__all__ = ["CALLER", "auth_middleware", "caller_name"]

import hmac
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import SecretStr

from router.signing import (
    GRAFANA_SIGNATURE_HEADERS,
    GRAFANA_TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
    verify,
    verify_grafana,
)
from router.web.errors import ApiError, Handler
from router.web.keys import CLOCK, LIMITER, METRICS, SETTINGS

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/enqueue"})
OPEN_PREFIXES = ("/ack/",)
HMAC_CALLER = "hmac"
CALLER: web.RequestKey[str] = web.RequestKey("caller", str)


def caller_name(tokens: Mapping[str, SecretStr], header: str | None) -> str | None:
    """The name of the token in an `Authorization: Bearer …` header, or None."""
    scheme, _, credentials = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None  # the scheme name is case-insensitive (RFC 9110)
    offered = credentials.strip().encode()
    found = None
    for name, token in tokens.items():
        # Compare against every token so timing does not tell which one nearly matched.
        if hmac.compare_digest(offered, token.get_secret_value().encode()):
            found = name
    return found


def auth_middleware() -> Middleware:
    """Refuse protected paths without valid credentials (401) or over the rate (429)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        caller = await _authenticate(request)
        wait = request.app[LIMITER].retry_after(caller)
        if wait is not None:
            request.app[METRICS].alerts_rejected.labels("rate_limited").inc()
            message = f"caller {caller!r} is over its rate limit; retry in {wait} s"
            raise ApiError(429, "rate_limited", message, headers={"Retry-After": str(wait)})
        request[CALLER] = caller
        return await handler(request)

    return middleware


async def _authenticate(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    secrets = settings.hmac_secrets()
    if not settings.inbound_tokens and not secrets:
        raise _unauthorized(request, "no credentials are configured: set ROUTER_INBOUND_TOKENS")
    name = caller_name(settings.inbound_tokens, request.headers.get("Authorization"))
    if name is not None:
        return name
    signature = request.headers.get(SIGNATURE_HEADER)
    grafana = next(
        (request.headers[h] for h in GRAFANA_SIGNATURE_HEADERS if h in request.headers), None
    )
    if (signature is None and grafana is None) or not secrets:
        raise _unauthorized(request, "missing or invalid bearer token")
    body = await request.read()  # cached: the handler reads the same bytes
    now = request.app[CLOCK]().timestamp()
    if signature is not None:
        problem = verify(signature, body, secrets, now)
    else:
        stamp = request.headers.get(GRAFANA_TIMESTAMP_HEADER)
        problem = verify_grafana(grafana or "", stamp, body, secrets, now=now)
    if problem is not None:
        raise _unauthorized(request, problem)
    return HMAC_CALLER


def _unauthorized(request: web.Request, message: str) -> ApiError:
    request.app[METRICS].alerts_rejected.labels("unauthorized").inc()
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
