"""The effective schedule as an iCalendar feed, for people's calendars."""

from __future__ import annotations

__all__ = ["schedule_to_ics"]

import hashlib
from collections.abc import Sequence
from datetime import datetime

import icalendar

from router import __version__
from router.schedule import Span


def schedule_to_ics(spans: Sequence[Span], generated_at: datetime) -> bytes:
    """One VEVENT per span: who is primary and backup, and why, with a stable UID."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", f"-//pipeline-alert-router//{__version__}//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "On-call schedule")
    for span in spans:
        calendar.add_component(_event(span, generated_at))
    return bytes(calendar.to_ical())


def _event(span: Span, generated_at: datetime) -> icalendar.Event:
    oncall = span.oncall
    primary = oncall.primary or "nobody"
    backup = oncall.backup or "nobody"
    event = icalendar.Event()
    # A stable UID lets calendar clients update a span in place when the feed is re-read.
    key = f"{span.starts.isoformat()}|{span.ends.isoformat()}|{primary}|{backup}"
    event.add("uid", hashlib.sha256(key.encode()).hexdigest()[:32] + "@pipeline-alert-router")
    event.add("dtstamp", generated_at)
    event.add("dtstart", span.starts)
    event.add("dtend", span.ends)
    event.add("summary", f"On call: {primary} (backup {backup})")
    event.add("description", "\n".join(oncall.reasons))
    event.add("categories", [f"week {oncall.shift.week}"])
    return event
