"""What every inbound format shares: the shape error, and the severity vocabulary.

Also the boundary helpers each format module uses: `Body` (the base of every frozen body model),
`validate_body` (JSON value → model, or `InvalidAlertError` with field paths), `KV` (a label or
annotation map, where Go's `null` map means empty) and `instant` (a sender's time, Go's zero
time meaning "unset").
"""

from __future__ import annotations

__all__ = [
    "KV",
    "Body",
    "InvalidAlertError",
    "clean_text",
    "first_text",
    "instant",
    "lower_text",
    "normalize_severity",
    "shape_errors",
    "validate_body",
]

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from router.errors import RouterError
from router.model import Severity
from router.timeutil import in_supported_range

_SEVERITY_WORDS: dict[str, Severity] = {
    "critical": "critical",
    "crit": "critical",
    "page": "critical",
    "high": "critical",
    "p1": "critical",
    "error": "error",
    "err": "error",
    "major": "error",
    "p2": "error",
    "warning": "warning",
    "warn": "warning",
    "minor": "warning",
    "medium": "warning",
    "p3": "warning",
    "info": "info",
    "informational": "info",
    "low": "info",
    "none": "info",
    "p4": "info",
}


class InvalidAlertError(RouterError):
    """Valid JSON of the wrong shape: answered 422 with the field paths in `details`."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        self.details = details
        super().__init__("; ".join(f"{d['path']}: {d['message']}" for d in details))


def shape_errors(err: ValidationError, limit: int = 20) -> InvalidAlertError:
    """Pydantic's errors as `{"path": "alerts[0].labels", "message": ...}`, at most `limit`."""
    details = []
    for error in err.errors(include_url=False)[:limit]:
        details.append({"path": _path(error["loc"]) or "(body)", "message": error["msg"]})
    return InvalidAlertError(details)


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def normalize_severity(word: str | None, default: Severity = "error") -> Severity:
    """Map the many spellings senders use (`page`, `warn`, `P1`) to the router's four."""
    if word is None:
        return default
    return _SEVERITY_WORDS.get(word.strip().lower(), default)


MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class TooDeepError(ValueError):
    """A JSON value nested deeper than any sender's format needs."""


def clean_text(value: Any, depth: int = 0) -> Any:
    """Replace NUL (which PostgreSQL text cannot hold) and lone surrogates (which UTF-8
    cannot encode) with U+FFFD throughout a JSON value; refuse nesting past `MAX_DEPTH`."""
    if isinstance(value, str):
        cleaned = value.replace("\x00", "\ufffd")
        return cleaned if cleaned.isascii() else _SURROGATE.sub("\ufffd", cleaned)
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        raise TooDeepError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {clean_text(k): clean_text(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_text(v, depth + 1) for v in value]
    return value


def _null_is_empty(value: object) -> object:
    return {} if value is None else value


def lower_text(value: object) -> object:
    """Lower-case a string before validation (`"Critical"` → `"critical"`); leave others be."""
    return value.strip().lower() if isinstance(value, str) else value


KV = Annotated[dict[str, str], BeforeValidator(_null_is_empty)]
"""Labels or annotations: string to string. Go marshals an empty (nil) map as `null`."""


class Body(BaseModel):
    """Base of every inbound body model: frozen, unknown fields ignored for forward compatibility.

    Senders add fields over time (Grafana added `orgId`, Alertmanager `truncatedAlerts`); a
    field we do not know is not an error, but a known field of the wrong type is.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


BodyT = TypeVar("BodyT", bound=Body)


def validate_body(model: type[BodyT], document: object) -> BodyT:
    """`document` as `model`, or `InvalidAlertError`. The document comes through
    `router.web.body.decode_json`, which already cleaned its text (NUL, lone surrogates)
    and bounded its depth: walking it again here cost every alert a second copy.

    A body that is not a JSON object fails at path `(body)`; a wrong field at its own path.
    """
    if not isinstance(document, dict):
        kind = "null" if document is None else type(document).__name__
        raise InvalidAlertError(
            [{"path": "(body)", "message": f"expected a JSON object, got {kind}"}]
        )
    try:
        return model.model_validate(document)
    except ValidationError as err:
        raise shape_errors(err) from err


def instant(value: datetime | None) -> datetime | None:
    """A sender's time made aware (UTC when it names no offset); Go's zero time, or a time
    outside the years the router computes with (router.timeutil), → None.

    Alertmanager and Grafana send `0001-01-01T00:00:00Z`, Go's zero `time.Time`, for a time
    that is not set, such as the end of an alert that is still firing.
    """
    if value is None or value.year <= 1:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    # A time the router cannot compute with (9999-12-31T23:00-12:00 is past datetime's
    # last year in UTC) is no time at all: kept, it would fail the whole body's storage.
    try:
        in_utc = aware.astimezone(UTC)
    except OverflowError:
        return None
    return aware if in_supported_range(in_utc) else None


def first_text(*candidates: str | None) -> str | None:
    """The first candidate that has something besides whitespace, else None."""
    for candidate in candidates:
        if candidate is not None and candidate.strip():
            return candidate
    return None
