"""Who is on call at an instant, and why: SPEC section 2 as one pure function.

Candidates start as the rotation order from the nominal primary: [P, B, next…]. A public
holiday in P's calendar moves P to the end (the backup takes over, P is the last resort);
anyone on leave is removed; overrides put their person in their slot and relieve whoever
they displace. The first two candidates left are the effective primary and backup.

Leave and overrides are plain arguments, so the config's entries and the runtime API's
entries feed the same function.
"""

from __future__ import annotations

__all__ = ["HolidayHandover", "OnCall", "resolve"]

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from router.rotation import Shift, shift_at
from router.teammodel import LeaveEntry, Override, TeamModel
from router.timeutil import local_date, utc

NOBODY = "nobody available: the pipeline owners and the fallback channel are paged instead"


@dataclass(frozen=True, slots=True)
class HolidayHandover:
    """The nominal primary's public holiday, which hands the primary role on."""

    day: date
    name: str
    calendar: str
    who: str


@dataclass(frozen=True, slots=True)
class OnCall:
    """The answer for one instant: the shift, who is effective, and the reasons in words."""

    at: datetime
    shift: Shift
    primary: str | None
    backup: str | None
    reasons: tuple[str, ...]
    holiday: HolidayHandover | None
    on_leave: tuple[str, ...]
    overrides: tuple[Override, ...]

    def to_json(self, model: TeamModel) -> dict[str, Any]:
        """The stable JSON contract of `router oncall --json` and `GET /api/v1/oncall`."""
        tz = model.team.tz
        return {
            "at": self.at.astimezone(tz).isoformat(),
            "timezone": model.team.timezone,
            "week": self.shift.week,
            "cycle_week": self.shift.cycle_week,
            "shift_start": self.shift.starts.astimezone(tz).isoformat(),
            "shift_end": self.shift.ends.astimezone(tz).isoformat(),
            "nominal_primary": self.shift.primary,
            "nominal_backup": self.shift.backup,
            "primary": self.primary,
            "backup": self.backup,
            "reasons": list(self.reasons),
            "holiday": None
            if self.holiday is None
            else {
                "date": self.holiday.day.isoformat(),
                "name": self.holiday.name,
                "calendar": self.holiday.calendar,
                "who": self.holiday.who,
            },
            "on_leave": list(self.on_leave),
            "overrides": [o.model_dump(mode="json", by_alias=True) for o in self.overrides],
        }


def resolve(
    model: TeamModel,
    at: datetime,
    leave: Sequence[LeaveEntry] | None = None,
    overrides: Sequence[Override] | None = None,
) -> OnCall:
    """Who is effective primary and backup at the aware instant `at`, with reasons.

    `leave` and `overrides` default to the team model's own entries.
    """
    if at.tzinfo is None:
        raise ValueError("`at` must be an aware datetime")
    instant = utc(at)
    leave = model.leave if leave is None else leave
    overrides = model.overrides if overrides is None else overrides
    shift = shift_at(model, instant)
    reasons = [
        f"week {shift.week} (cycle week {shift.cycle_week}): "
        f"{shift.primary} primary, {shift.backup} backup"
    ]
    candidates = _rotation_from(model.rotation.order, shift.primary)
    holiday = _holiday_of(model, shift.primary, instant)
    if holiday is not None:
        candidates = [*candidates[1:], candidates[0]]
        reasons.append(
            f"{holiday.day} is {holiday.name} ({holiday.calendar}): "
            f"{holiday.who} hands primary to {candidates[0]}"
        )
    away = _away(model, leave, instant)
    removed = tuple(name for name in candidates if name in away)
    reasons.extend(away[name] for name in removed)
    candidates = [name for name in candidates if name not in away]
    applied = []
    for override in overrides:
        if not override.covers(instant, model.team.tz):
            continue
        if override.who in away:
            reasons.append(f"override ignored: {override.who} is on leave")
            continue
        candidates = _apply_override(candidates, override, reasons)
        applied.append(override)
    primary = candidates[0] if candidates else None
    backup = candidates[1] if len(candidates) > 1 else None
    reasons.append(_outcome(primary, backup))
    return OnCall(instant, shift, primary, backup, tuple(reasons), holiday, removed, tuple(applied))


def _rotation_from(order: Sequence[str], first: str) -> list[str]:
    i = order.index(first)
    return [*order[i:], *order[:i]]


def _holiday_of(model: TeamModel, who: str, instant: datetime) -> HolidayHandover | None:
    """`who`'s public holiday on the team's local date of `instant`, if it is one."""
    day = local_date(instant, model.team.tz)
    calendar = model.team.calendar_of(who)
    name = calendar.holiday_name(day)
    return None if name is None else HolidayHandover(day, name, calendar.label, who)


def _away(model: TeamModel, leave: Sequence[LeaveEntry], instant: datetime) -> dict[str, str]:
    """Everyone on leave at `instant`, with the reason in words."""
    away: dict[str, str] = {}
    for entry in leave:
        if entry.covers(instant, model.team.tz) and entry.who not in away:
            why = f" ({entry.reason})" if entry.reason else ""
            away[entry.who] = f"{entry.who} is on leave{why} {entry.describe_end()}"
    return away


def _apply_override(candidates: list[str], override: Override, reasons: list[str]) -> list[str]:
    """Put the override's person in its slot; whoever held that slot is relieved."""
    slot = 0 if override.slot == "primary" else 1
    displaced = candidates[slot] if slot < len(candidates) else None
    if displaced == override.who:
        reasons.append(f"override: {override.who} already holds {override.slot}")
        return candidates
    rest = [name for name in candidates if name not in {override.who, displaced}]
    covering = f"override: {override.who} covers {override.slot} {override.describe_end()}"
    if displaced is None:
        reasons.append(covering)
    elif len(rest) < slot:
        # Nobody else can take the primary slot the override's person left: relieving
        # the displaced backup would leave fewer people on call than no override at all.
        rest.append(displaced)
        reasons.append(f"{covering}; nobody else can take primary, so {displaced} stays on")
    else:
        reasons.append(f"{covering}, relieving {displaced}")
    return [*rest[:slot], override.who, *rest[slot:]]


def _outcome(primary: str | None, backup: str | None) -> str:
    if primary is None:
        return NOBODY
    if backup is None:
        return f"primary {primary}, no backup available"
    return f"primary {primary}, backup {backup}"
