"""How the on-call load fell on each member: the seed asks for "a fair on-call rotation
that accounts for holidays", so the router reports it.

Per member over a window: hours as effective primary and as effective backup, holiday hours
covered for someone else, holiday hours handed over, and hours on leave.
"""

from __future__ import annotations

__all__ = ["MemberLoad", "fairness"]

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from router.schedule import Span, elementary_spans
from router.teammodel import LeaveEntry, Override, TeamModel


@dataclass(slots=True)
class MemberLoad:
    """One member's on-call hours over the window."""

    name: str
    primary_hours: float = 0.0
    backup_hours: float = 0.0
    holiday_hours_covered: float = 0.0
    holiday_hours_handed_over: float = 0.0
    leave_hours: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Hours rounded to minutes' precision, for humans and scripts alike."""
        data = asdict(self)
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in data.items()}


def fairness(
    model: TeamModel,
    starts: datetime,
    ends: datetime,
    leave: Sequence[LeaveEntry] | None = None,
    overrides: Sequence[Override] | None = None,
) -> list[MemberLoad]:
    """Each member's load over [starts, ends), in the team's member order."""
    leave = model.leave if leave is None else leave
    loads = {m.name: MemberLoad(m.name) for m in model.team.members}
    for span in elementary_spans(model, starts, ends, leave, overrides):
        _count(loads, span)
    for name, hours in _leave_hours(model, leave, starts, ends).items():
        loads[name].leave_hours = hours
    return list(loads.values())


def _count(loads: dict[str, MemberLoad], span: Span) -> None:
    oncall = span.oncall
    if oncall.primary is not None:
        loads[oncall.primary].primary_hours += span.hours
    if oncall.backup is not None:
        loads[oncall.backup].backup_hours += span.hours
    holiday = oncall.holiday
    if holiday is not None and oncall.primary != holiday.who:
        loads[holiday.who].holiday_hours_handed_over += span.hours
        if oncall.primary is not None:
            loads[oncall.primary].holiday_hours_covered += span.hours


def _leave_hours(
    model: TeamModel, leave: Sequence[LeaveEntry], starts: datetime, ends: datetime
) -> dict[str, float]:
    """Hours on leave inside the window, overlapping entries counted once."""
    tz = model.team.tz
    by_person: dict[str, list[tuple[datetime, datetime]]] = {}
    for entry in leave:
        first, last = max(entry.starts(tz), starts), min(entry.ends(tz), ends)
        if first < last:
            by_person.setdefault(entry.who, []).append((first, last))
    return {name: _union_hours(spans) for name, spans in by_person.items()}


def _union_hours(spans: list[tuple[datetime, datetime]]) -> float:
    total = 0.0
    reach = min(first for first, _ in spans)
    for first, last in sorted(spans):
        start = max(first, reach)
        if start < last:
            total += (last - start).total_seconds() / 3600
            reach = last
    return total
