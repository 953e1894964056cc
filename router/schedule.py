"""The effective on-call schedule over a window: spans that tile time with no gap or overlap.

A shift is split wherever the effective primary or backup changes inside it: at local
midnight around a public holiday, where leave starts or ends, where an override starts or
ends. Each span carries the on-call answer at its start.
"""

from __future__ import annotations

__all__ = ["Span", "elementary_spans", "schedule", "shifts_window"]

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

from router.oncall import OnCall, resolve
from router.rotation import shift_at, shift_number
from router.teammodel import LeaveEntry, Override, TeamModel


@dataclass(frozen=True, slots=True)
class Span:
    """[starts, ends) in UTC, during which `oncall` (resolved at `starts`) holds."""

    starts: datetime
    ends: datetime
    oncall: OnCall

    @property
    def hours(self) -> float:
        """The span's length in hours."""
        return (self.ends - self.starts).total_seconds() / 3600


def schedule(
    model: TeamModel,
    starts: datetime,
    ends: datetime,
    leave: Sequence[LeaveEntry] | None = None,
    overrides: Sequence[Override] | None = None,
) -> list[Span]:
    """Spans of [starts, ends), merged while the week and the effective pair stay the same."""
    merged: list[Span] = []
    for span in elementary_spans(model, starts, ends, leave, overrides):
        if merged and _same_people(merged[-1].oncall, span.oncall):
            merged[-1] = Span(merged[-1].starts, span.ends, merged[-1].oncall)
        else:
            merged.append(span)
    return merged


def elementary_spans(
    model: TeamModel,
    starts: datetime,
    ends: datetime,
    leave: Sequence[LeaveEntry] | None = None,
    overrides: Sequence[Override] | None = None,
) -> Iterator[Span]:
    """Unmerged spans between every point where the answer could change (at least daily)."""
    leave = model.leave if leave is None else leave
    overrides = model.overrides if overrides is None else overrides
    cuts = sorted(_change_points(model, starts, ends, [*leave, *overrides]))
    for first, last in pairwise(cuts):
        yield Span(first, last, resolve(model, first, leave, overrides))


def shifts_window(model: TeamModel, first_day: datetime, weeks: int) -> tuple[datetime, datetime]:
    """From the start of the shift in force at `first_day`, `weeks` shifts long."""
    shift = shift_at(model, first_day)
    return shift.starts, shift_number(model, shift.week + weeks).starts


def _same_people(a: OnCall, b: OnCall) -> bool:
    return (a.shift.week, a.primary, a.backup) == (b.shift.week, b.primary, b.backup)


def _change_points(
    model: TeamModel,
    starts: datetime,
    ends: datetime,
    spans: Sequence[LeaveEntry | Override],
) -> set[datetime]:
    """Handoffs, local midnights (holidays are whole local days), span edges; in UTC."""
    starts, ends = starts.astimezone(UTC), ends.astimezone(UTC)
    tz = model.team.tz
    points = {starts, ends}
    week = shift_at(model, starts).week + 1
    while (handoff := shift_number(model, week).starts) < ends:
        points.add(handoff)
        week += 1
    day = starts.astimezone(tz).date() + timedelta(days=1)
    while (midnight := datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)) < ends:
        points.add(midnight)
        day += timedelta(days=1)
    for entry in spans:
        points.update(t for t in (entry.starts(tz), entry.ends(tz)) if starts < t < ends)
    return points
