"""Local wall-clock time in the team's timezone, turned into real instants.

The team model lets people write `2026-12-01` or `2026-12-02T13:00` (local to the team's
timezone) or `2026-12-02T13:00-05:00` (with an offset). Every rule then works on aware
instants in UTC (Python compares two datetimes that share a tzinfo by wall clock, which is wrong
in the repeated hour of a DST change); this module is the one place that converts.
"""

from __future__ import annotations

__all__ = [
    "OUT_OF_RANGE",
    "LocalTime",
    "in_supported_range",
    "local_date",
    "parse_instant",
    "parse_local_time",
    "span_end",
    "span_start",
    "to_instant",
    "utc",
]

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, PlainSerializer


def parse_local_time(value: object) -> date | datetime:
    """A date (`2026-12-01`) or a date-time, naive (local) or with an offset."""
    if isinstance(value, date):  # datetime is a date too
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date (2026-12-01) or a date-time (2026-12-02T13:00)")
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date (2026-12-01) or a date-time (2026-12-02T13:00)"
        ) from None


# Far enough either way for any rotation, near enough that a day's arithmetic never overflows.
FIRST_YEAR, LAST_YEAR = 1900, 2999
OUT_OF_RANGE = f"must be between the years {FIRST_YEAR} and {LAST_YEAR}"


def in_supported_range(value: date) -> bool:
    """Whether a date or date-time is inside the years the router computes with."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


def parse_instant(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date or date-time typed by a person (no offset: local to `tz`), as UTC.

    Raises ValueError with a message fit to show that person.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or date-time (2026-11-26T12:00)"
        ) from None
    if not in_supported_range(value):
        raise ValueError(f"{text!r} {OUT_OF_RANGE}")
    return to_instant(value, tz)


def _format_local_time(value: date | datetime) -> str:
    return value.isoformat(timespec="minutes") if isinstance(value, datetime) else value.isoformat()


LocalTime = Annotated[
    date | datetime, BeforeValidator(parse_local_time), PlainSerializer(_format_local_time)
]


def to_instant(value: datetime, tz: ZoneInfo) -> datetime:
    """An instant in UTC: naive values are wall-clock time in `tz` (first reading if ambiguous)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=tz)
    return aware.astimezone(UTC)


def span_start(value: date | datetime, tz: ZoneInfo) -> datetime:
    """Where a span written as `from: value` starts: a date starts at local midnight."""
    if isinstance(value, datetime):
        return to_instant(value, tz)
    return datetime.combine(value, time(), tzinfo=tz).astimezone(UTC)


def span_end(value: date | datetime, tz: ZoneInfo) -> datetime:
    """Where a span written as `to: value` ends: a date includes that whole local day."""
    if isinstance(value, datetime):
        return to_instant(value, tz)
    return datetime.combine(value + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date at `instant` on a wall clock in `tz`."""
    return instant.astimezone(tz).date()


def utc(instant: datetime) -> datetime:
    """The same instant in UTC, for comparison and storage."""
    return instant.astimezone(UTC)
