"""Human output of the CLI: aligned plain-text tables (`--json` is the stable contract)."""

from __future__ import annotations

__all__ = ["fairness_table", "oncall_text", "schedule_table", "table"]

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from router.fairness import MemberLoad
from router.oncall import OnCall
from router.schedule import Span


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def local(instant: datetime, tz: ZoneInfo) -> str:
    """`2026-11-30 09:00 EST`: minutes precision, with the zone's abbreviation."""
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def oncall_text(oncall: OnCall, tz: ZoneInfo) -> str:
    """The answer of `router oncall`: who, then why."""
    shift = oncall.shift
    rows = [
        ("At", f"{local(oncall.at, tz)} ({tz.key})"),
        ("Week", f"{shift.week} (cycle week {shift.cycle_week})"),
        ("Shift", f"{local(shift.starts, tz)} to {local(shift.ends, tz)}"),
        ("Nominal", f"{shift.primary} primary, {shift.backup} backup"),
        ("Primary", oncall.primary or "nobody available"),
        ("Backup", oncall.backup or "nobody available"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
    lines.append("Why:")
    lines.extend(f"  - {reason}" for reason in oncall.reasons)
    return "\n".join(lines)


def schedule_table(spans: Sequence[Span], tz: ZoneInfo) -> str:
    """One row per span; `Note` is the reason that split the shift, if any."""
    rows = [
        (
            local(span.starts, tz),
            local(span.ends, tz),
            str(span.oncall.shift.week),
            span.oncall.primary or "nobody",
            span.oncall.backup or "nobody",
            "; ".join(span.oncall.reasons[1:-1]),
        )
        for span in spans
    ]
    return table(("From", "To", "Week", "Primary", "Backup", "Note"), rows)


def fairness_table(loads: Sequence[MemberLoad]) -> str:
    """Hours per member; holiday columns show who covered and who handed over."""
    headers = (
        "Member",
        "Primary h",
        "Backup h",
        "Holiday covered h",
        "Holiday handed h",
        "Leave h",
    )
    rows = [
        (
            load.name,
            f"{load.primary_hours:.1f}",
            f"{load.backup_hours:.1f}",
            f"{load.holiday_hours_covered:.1f}",
            f"{load.holiday_hours_handed_over:.1f}",
            f"{load.leave_hours:.1f}",
        )
        for load in loads
    ]
    return table(headers, rows)
