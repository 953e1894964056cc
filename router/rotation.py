"""Which shift an instant falls in: week numbers and handoffs at local wall-clock time.

Week k starts at `start + (k-1) * length` on the team's wall clock, so a 7-day shift that
spans a DST change lasts 167 or 169 hours and the handoff stays at, say, 09:00 local.
"""

from __future__ import annotations

__all__ = ["Shift", "shift_at", "shift_number"]

from dataclasses import dataclass
from datetime import datetime

from router.teammodel import TeamModel
from router.timeutil import to_instant, utc


@dataclass(frozen=True, slots=True)
class Shift:
    """One rotation shift: [starts, ends) in UTC and its nominal primary and backup."""

    week: int
    cycle_week: int
    starts: datetime
    ends: datetime
    primary: str
    backup: str


def shift_number(model: TeamModel, week: int) -> Shift:
    """Shift `week` (1 is the first; 0 and below run the same formula backwards)."""
    order = model.rotation.order
    n = len(order)
    return Shift(
        week=week,
        cycle_week=(week - 1) % n + 1,
        starts=_handoff(model, week),
        ends=_handoff(model, week + 1),
        primary=order[(week - 1) % n],
        backup=order[week % n],
    )


def shift_at(model: TeamModel, at: datetime) -> Shift:
    """The shift in force at the instant `at` (aware)."""
    instant = utc(at)
    length = model.rotation.length
    # Elapsed real time is within an hour or two of elapsed wall-clock time, so the
    # estimate is off by at most one week; step until the shift contains the instant.
    week = (instant - model.rotation_start) // length + 1
    while _handoff(model, week) > instant:
        week -= 1
    while _handoff(model, week + 1) <= instant:
        week += 1
    return shift_number(model, week)


def _handoff(model: TeamModel, week: int) -> datetime:
    """The instant shift `week` starts, in UTC."""
    tz = model.team.tz
    start = model.rotation.start
    if start.tzinfo is not None:
        start = start.astimezone(tz).replace(tzinfo=None)
    return to_instant(start + (week - 1) * model.rotation.length, tz)
