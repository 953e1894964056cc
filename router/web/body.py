"""Reading a JSON request body: 415 if it is not JSON, 413 if too large, 400 if malformed."""

from __future__ import annotations

__all__ = ["read_json"]

import json
from typing import Any

from aiohttp import web

from router.web.errors import ApiError


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def read_json(request: web.Request) -> Any:
    """The decoded body; the size limit is the application's `client_max_size` (413)."""
    if not _is_json(request.content_type):
        message = f"expected Content-Type application/json, got {request.content_type!r}"
        raise ApiError(415, "unsupported_media_type", message)
    body = await request.read()
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "body is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {err}") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "body is nested too deeply") from None
