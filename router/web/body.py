"""Reading a JSON request body: 415 if it is not JSON, 413 if too large, 400 if malformed.

`decode_json` is the one door every inbound body goes through: strict UTF-8 (RFC 8259),
no NaN or Infinity (strict JSON clients could not read them back), bounded nesting, and
text cleaned of NUL and lone surrogates so the database can store it.
"""

from __future__ import annotations

__all__ = ["BadJsonError", "decode_json", "read_json"]

import json
import math
import re
from typing import Any

from aiohttp import web

from router.ingest.common import MAX_DEPTH, TooDeepError, clean_text
from router.web.errors import ApiError


class BadJsonError(ValueError):
    """The body is not JSON the router accepts; the message says why."""


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _no_constants(name: str) -> Any:
    raise BadJsonError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """`1e400` is no NaN or Infinity in the text, but becomes one: refused the same way."""
    value = float(text)
    if not math.isfinite(value):
        raise BadJsonError(f"{text} is not a finite JSON number")
    return value


# In decoded JSON, NUL and lone surrogates can only come from these escapes: strict JSON has
# no raw control characters in strings, and strict UTF-8 no surrogates.
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _may_need_cleaning(text: str) -> bool:
    """Whether walking the decoded value (`clean_text`) could change or refuse anything:
    most bodies have none of the escapes above and too few brackets to nest too deeply."""
    return _RISKY_ESCAPE.search(text) is not None or text.count("{") + text.count("[") > MAX_DEPTH


def decode_json(raw: bytes) -> Any:
    """The cleaned JSON value of `raw`, or BadJsonError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJsonError("body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite)
        return clean_text(value) if _may_need_cleaning(text) else value
    except BadJsonError:
        raise
    except json.JSONDecodeError as err:
        raise BadJsonError(f"body is not valid JSON: {err}") from None
    except (TooDeepError, RecursionError):
        raise BadJsonError("body is nested too deeply") from None
    except ValueError as err:  # e.g. an integer longer than Python's 4300-digit limit
        raise BadJsonError(f"body is not valid JSON: {err}") from None


async def read_json(request: web.Request) -> Any:
    """The decoded body; the size limit is the application's `client_max_size` (413)."""
    if not _is_json(request.content_type):
        message = f"expected Content-Type application/json, got {request.content_type!r}"
        raise ApiError(415, "unsupported_media_type", message)
    try:
        return decode_json(await request.read())
    except BadJsonError as err:
        raise ApiError(400, "malformed_json", str(err)) from None
