"""Every error answer has one shape: `{"error": {"code", "message", "details"}}`.

The middleware turns aiohttp's HTTP exceptions into that shape and any unexpected exception
into a 500 that says nothing about the inside (the log has the details).
"""

from __future__ import annotations

__all__ = ["ApiError", "error_middleware", "error_response"]

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from router.store.base import StoreUnavailableError
from router.web.keys import SETTINGS

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A request the router refuses, with the status and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The JSON error body every endpoint uses."""
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as JSON; never a stack trace in a response."""
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.code, err.message, err.details, err.headers)
    except StoreUnavailableError as err:
        log.error("store.unavailable", path=request.path, error=str(err))
        message = "the database is unavailable; nothing was stored, retry later"
        return error_response(503, "store_unavailable", message, headers={"Retry-After": "5"})
    except web.HTTPRequestEntityTooLarge as err:
        message = f"body is larger than the limit of {request.app[SETTINGS].max_body_bytes} bytes"
        return error_response(err.status, "body_too_large", message)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = err.reason.lower().replace(" ", "_")
        return error_response(err.status, code, err.reason, headers=_allow(err))
    except Exception:
        log.exception("request.failed", method=request.method, path=request.path)
        return error_response(500, "internal_error", "internal error; see the router's log")


def _allow(err: web.HTTPException) -> dict[str, str] | None:
    allow = err.headers.get("Allow")
    return {"Allow": allow} if allow else None
