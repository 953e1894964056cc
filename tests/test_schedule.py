"""The effective schedule and the fairness report over a window of shifts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.config import load_team_model
from router.fairness import fairness
from router.oncall import resolve
from router.schedule import elementary_spans, schedule, shifts_window
from router.teammodel import LeaveEntry, Override, TeamModel

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
MODEL = load_team_model(ROOT / "config")


def _ny(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NY)


def _leave(who: str, start: str, end: str) -> LeaveEntry:
    return LeaveEntry.model_validate({"who": who, "from": start, "to": end, "reason": "test"})


def _override(slot: str, who: str, start: str, end: str) -> Override:
    return Override.model_validate({"slot": slot, "who": who, "from": start, "to": end})


def _people(
    model: TeamModel, start: str, weeks: int
) -> list[tuple[str, str, str | None, str | None]]:
    spans = schedule(model, *shifts_window(model, _ny(start), weeks))
    return [
        (
            s.starts.astimezone(NY).strftime("%m-%d %H:%M"),
            s.ends.astimezone(NY).strftime("%m-%d %H:%M"),
            s.oncall.primary,
            s.oncall.backup,
        )
        for s in spans
    ]


def test_window_starts_at_the_shift_containing_from_and_spans_whole_shifts() -> None:
    starts, ends = shifts_window(MODEL, _ny("2026-12-01T12:00"), 3)
    assert starts == _ny("2026-11-30T09:00").astimezone(UTC)
    assert ends == _ny("2026-12-21T09:00").astimezone(UTC)


def test_a_shift_without_events_is_one_span() -> None:
    assert _people(MODEL, "2026-12-08T00:00", 1) == [
        ("12-07 09:00", "12-14 09:00", "Charlie", "Dana")
    ]


def test_leave_splits_the_shift_where_it_starts_and_ends() -> None:
    model = MODEL.model_copy(
        update={"leave": [_leave("Charlie", "2026-12-09T13:00", "2026-12-09T18:00")]}
    )
    assert _people(model, "2026-12-08T00:00", 1) == [
        ("12-07 09:00", "12-09 13:00", "Charlie", "Dana"),
        ("12-09 13:00", "12-09 18:00", "Dana", "Alice"),
        ("12-09 18:00", "12-14 09:00", "Charlie", "Dana"),
    ]


def test_date_only_leave_covers_whole_local_days() -> None:
    model = MODEL.model_copy(update={"leave": [_leave("Dana", "2026-12-08", "2026-12-09")]})
    assert _people(model, "2026-12-08T00:00", 1) == [
        ("12-07 09:00", "12-08 00:00", "Charlie", "Dana"),
        ("12-08 00:00", "12-10 00:00", "Charlie", "Alice"),
        ("12-10 00:00", "12-14 09:00", "Charlie", "Dana"),
    ]


def test_override_splits_the_shift_for_its_span() -> None:
    model = MODEL.model_copy(
        update={"overrides": [_override("primary", "Bob", "2026-12-10T09:00", "2026-12-11T09:00")]}
    )
    assert _people(model, "2026-12-08T00:00", 1) == [
        ("12-07 09:00", "12-10 09:00", "Charlie", "Dana"),
        ("12-10 09:00", "12-11 09:00", "Bob", "Dana"),
        ("12-11 09:00", "12-14 09:00", "Charlie", "Dana"),
    ]


def test_every_span_carries_the_answer_at_its_start() -> None:
    for span in schedule(MODEL, *shifts_window(MODEL, _ny("2026-11-24T00:00"), 6)):
        assert span.oncall == resolve(MODEL, span.starts)


LEAVE_BASE = datetime.fromisoformat("2026-10-01T00:00")  # naive: local to the team


def _local_leave(who: str, day: int, hour: int, length: int) -> LeaveEntry:
    first = LEAVE_BASE + timedelta(days=day, hours=hour)
    last = first + timedelta(hours=length)
    return _leave(who, first.isoformat(timespec="minutes"), last.isoformat(timespec="minutes"))


leave_entries = st.builds(
    _local_leave,
    st.sampled_from(["Alice", "Bob", "Charlie", "Dana"]),
    st.integers(0, 120),
    st.integers(0, 23),
    st.integers(1, 200),
)


@settings(max_examples=60, deadline=None)
@given(leave=st.lists(leave_entries, max_size=4), day=st.integers(0, 100), weeks=st.integers(1, 3))
def test_spans_tile_time_with_no_gap_or_overlap(
    leave: list[LeaveEntry], day: int, weeks: int
) -> None:
    model = MODEL.model_copy(update={"leave": leave})
    starts, ends = shifts_window(model, _ny("2026-10-01T00:00") + timedelta(days=day), weeks)
    spans = schedule(model, starts, ends)
    assert spans[0].starts == starts
    assert spans[-1].ends == ends
    assert all(a.ends == b.starts for a, b in pairwise(spans))
    assert all(span.starts < span.ends for span in spans)
    # Merging never hides a change: every elementary span agrees with the span containing it.
    for piece in elementary_spans(model, starts, ends):
        holder = next(s for s in spans if s.starts <= piece.starts < s.ends)
        assert (piece.oncall.primary, piece.oncall.backup) == (
            holder.oncall.primary,
            holder.oncall.backup,
        )


def test_fairness_hours_add_up_to_the_window_for_primary_and_backup() -> None:
    starts, ends = _ny("2026-10-26T00:00"), _ny("2027-01-01T00:00")
    loads = {load.name: load for load in fairness(MODEL, starts, ends)}
    # In UTC: Python subtracts two datetimes of one zone by wall clock, hiding the DST hour.
    window_hours = (ends.astimezone(UTC) - starts.astimezone(UTC)).total_seconds() / 3600
    assert window_hours == 67 * 24 + 1
    assert sum(load.primary_hours for load in loads.values()) == pytest.approx(window_hours)
    assert sum(load.backup_hours for load in loads.values()) == pytest.approx(window_hours)
    # Thanksgiving (week 5) and Christmas (week 9) fall on Alice's weeks; Veterans Day on Charlie's.
    assert loads["Alice"].holiday_hours_handed_over == pytest.approx(48)
    assert loads["Bob"].holiday_hours_covered == pytest.approx(48)
    assert loads["Charlie"].holiday_hours_handed_over == pytest.approx(24)
    assert loads["Dana"].holiday_hours_covered == pytest.approx(24)


def test_fairness_counts_overlapping_leave_once_and_clips_it_to_the_window() -> None:
    leave = [
        _leave("Bob", "2026-12-01", "2026-12-03"),
        _leave("Bob", "2026-12-02T12:00", "2026-12-05T12:00"),
        _leave("Dana", "2026-11-20", "2026-12-01"),
    ]
    starts, ends = _ny("2026-11-30T00:00"), _ny("2026-12-07T00:00")
    loads = {load.name: load for load in fairness(MODEL, starts, ends, leave=leave)}
    assert loads["Bob"].leave_hours == pytest.approx(3 * 24 + 36)
    assert loads["Dana"].leave_hours == pytest.approx(48)
    assert loads["Alice"].leave_hours == 0


def test_fairness_moves_hours_to_whoever_covers_leave() -> None:
    starts, ends = _ny("2026-12-07T09:00"), _ny("2026-12-14T09:00")
    leave = [_leave("Charlie", "2026-12-07T09:00", "2026-12-08T09:00")]
    loads = {load.name: load for load in fairness(MODEL, starts, ends, leave=leave)}
    assert loads["Charlie"].primary_hours == pytest.approx(6 * 24)
    assert loads["Dana"].primary_hours == pytest.approx(24)
    assert loads["Alice"].backup_hours == pytest.approx(24)
