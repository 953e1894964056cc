"""Properties of on-call resolution over years of instants and random leave and overrides.

Instants are whole minutes from about three years before to four years after the shipped
rotation start. Half of the days drawn are US public holidays or DST-change days, and many
minutes are midnight or the 09:00 handoff, and leave and override edges are often exactly
the instant, so the rules' edge cases are hit on purpose rather than by luck.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from router.oncall import resolve
from router.rotation import shift_at, shift_number
from router.teammodel import LeaveEntry, Override, TeamModel

NY = ZoneInfo("America/New_York")
NAMES = ("Alice", "Bob", "Charlie", "Dana")
START = datetime(2026, 10, 26, 9, 0, tzinfo=NY)
FIRST_DAY = START.date() - timedelta(days=3 * 366)
LAST_DAY = START.date() + timedelta(days=4 * 366)
US_HOLIDAYS = holidays.country_holidays("US", years=range(FIRST_DAY.year, LAST_DAY.year + 1))
FAST = settings(max_examples=200, deadline=None)


def _dst_change_days() -> list[date]:
    """Days whose New York midnight offset differs from the next day's."""
    days = [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days)]
    return [
        day
        for day in days
        if datetime.combine(day, time(), tzinfo=NY).utcoffset()
        != datetime.combine(day + timedelta(days=1), time(), tzinfo=NY).utcoffset()
    ]


SPECIAL_DAYS = sorted({*US_HOLIDAYS.keys(), *_dst_change_days()})
SPECIAL_MINUTES = [0, 1, 90, 150, 539, 540, 541, 1439]  # midnight, DST hours, 09:00 handoff

days = st.one_of(
    st.integers(0, (LAST_DAY - FIRST_DAY).days).map(lambda n: FIRST_DAY + timedelta(days=n)),
    st.sampled_from(SPECIAL_DAYS),
)
minutes_of_day = st.one_of(st.sampled_from(SPECIAL_MINUTES), st.integers(0, 24 * 60 - 1))


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """A whole-minute instant, drawn as a New York wall time (either reading if repeated)."""
    minute = draw(minutes_of_day)
    wall = datetime.combine(draw(days), time(minute // 60, minute % 60), tzinfo=NY)
    return wall.replace(fold=draw(st.integers(0, 1))).astimezone(UTC)


@dataclass(frozen=True)
class Scenario:
    """An instant, leave and overrides, and who the leave entries say is away at the instant."""

    at: datetime
    leave: list[LeaveEntry]
    overrides: list[Override]
    away: frozenset[str]


def _instant_of(text: str) -> datetime:
    """How the SPEC reads a written date-time: naive is New York wall time (first reading)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=NY)


def _written(instant: datetime, local: bool) -> str:
    """The instant as a person would write it: New York wall time, or with a UTC offset."""
    if local:
        return instant.astimezone(NY).replace(tzinfo=None).isoformat(timespec="minutes")
    return instant.astimezone(UTC).isoformat(timespec="minutes")


@st.composite
def spans(draw: st.DrawFn, at: datetime) -> tuple[str, str, bool]:
    """A `from`/`to` pair near `at` and whether it covers `at` (dates inclusive, to exclusive)."""
    if draw(st.booleans()):
        today = at.astimezone(NY).date()
        first = today + timedelta(days=draw(st.integers(-4, 2)))
        last = first + timedelta(days=draw(st.integers(0, 4)))
        return first.isoformat(), last.isoformat(), first <= today <= last
    begins = draw(st.one_of(st.sampled_from([-1, 0, 1]), st.integers(-4 * 1440, 1440)))
    ends = draw(st.one_of(st.sampled_from([0, 1]), st.integers(begins + 1, begins + 4 * 1440)))
    ends = max(ends, begins + 1)
    start_text = _written(at + timedelta(minutes=begins), local=draw(st.booleans()))
    end_text = _written(at + timedelta(minutes=ends), local=draw(st.booleans()))
    covers = _instant_of(start_text) <= at < _instant_of(end_text)
    return start_text, end_text, covers


@st.composite
def scenarios(draw: st.DrawFn, with_overrides: bool = True) -> Scenario:
    """An instant with 0-6 leave entries and (optionally) 0-3 overrides around it."""
    at = draw(instants())
    leave: list[LeaveEntry] = []
    away: set[str] = set()
    for _ in range(draw(st.integers(0, 6))):
        who = draw(st.sampled_from(NAMES))
        start, end, covers = draw(spans(at))
        leave.append(LeaveEntry.model_validate({"who": who, "from": start, "to": end}))
        if covers:
            away.add(who)
    overrides: list[Override] = []
    for _ in range(draw(st.integers(0, 3)) if with_overrides else 0):
        start, end, _covers = draw(spans(at))
        entry = {
            "slot": draw(st.sampled_from(["primary", "backup"])),
            "who": draw(st.sampled_from(NAMES)),
        }
        overrides.append(Override.model_validate({**entry, "from": start, "to": end}))
    return Scenario(at, leave, overrides, frozenset(away))


@FAST
@given(scenario=scenarios())
def test_effective_primary_and_backup_are_two_different_people(
    shipped_model: TeamModel, scenario: Scenario
) -> None:
    """Whatever the leave and overrides, nobody is both primary and backup."""
    result = resolve(shipped_model, scenario.at, scenario.leave, scenario.overrides)
    if result.primary is not None and result.backup is not None:
        assert result.primary != result.backup
    assert result.primary is not None or result.backup is None


@FAST
@given(scenario=scenarios())
def test_nobody_on_leave_is_on_call(shipped_model: TeamModel, scenario: Scenario) -> None:
    """Neither the effective primary nor the backup is on leave at the instant, overrides or not."""
    result = resolve(shipped_model, scenario.at, scenario.leave, scenario.overrides)
    assert result.primary not in scenario.away
    assert result.backup not in scenario.away
    assert set(result.on_leave) == scenario.away


@FAST
@given(scenario=scenarios(with_overrides=False))
def test_first_two_available_candidates_are_on_call(
    shipped_model: TeamModel, scenario: Scenario
) -> None:
    """Rules 2-4 and 6: rotation from the nominal primary, who goes last on a US holiday,
    minus everyone on leave; the first two left are primary and backup."""
    result = resolve(shipped_model, scenario.at, scenario.leave, [])
    order = list(NAMES)
    first = order.index(result.shift.primary)
    candidates = order[first:] + order[:first]
    if scenario.at.astimezone(NY).date() in US_HOLIDAYS:
        candidates = [*candidates[1:], candidates[0]]
    available = [name for name in candidates if name not in scenario.away]
    expected = (*available, None, None)[:2]
    assert (result.primary, result.backup) == expected
    if not available:
        assert result.reasons[-1].startswith("nobody available")


@FAST
@given(
    scenario=scenarios(with_overrides=False),
    slot=st.sampled_from(["primary", "backup"]),
    who=st.sampled_from(NAMES),
    begins=st.integers(-4 * 1440, 0),
    ends=st.integers(1, 4 * 1440),
)
def test_active_override_fills_its_slot_and_relieves_the_displaced(
    *, shipped_model: TeamModel, scenario: Scenario, slot: str, who: str, begins: int, ends: int
) -> None:
    """One active override: its person holds the slot and whoever held it is off call; by
    someone on leave, it changes nothing. (Needs three people free, so that the slot the
    override's person leaves can be refilled.)"""
    entry = Override.model_validate(
        {
            "slot": slot,
            "who": who,
            "from": _written(scenario.at + timedelta(minutes=begins), local=False),
            "to": _written(scenario.at + timedelta(minutes=ends), local=False),
        }
    )
    free = [name for name in NAMES if name not in scenario.away]
    assume(len(free) >= 3 or who in scenario.away)
    without = resolve(shipped_model, scenario.at, scenario.leave, [])
    result = resolve(shipped_model, scenario.at, scenario.leave, [entry])
    if who in scenario.away:
        assert (result.primary, result.backup) == (without.primary, without.backup)
        assert result.overrides == ()
        return
    held = {"primary": result.primary, "backup": result.backup}
    before = {"primary": without.primary, "backup": without.backup}
    assert held[slot] == who
    assert result.overrides == (entry,)
    if before[slot] != who:
        assert before[slot] not in (result.primary, result.backup)


def _local(day: date, minute: int) -> datetime | None:
    """`day` at `minute` past midnight in New York, or None if that wall time is skipped or
    happens twice (a DST change)."""
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=NY)
    exists = wall.astimezone(UTC).astimezone(NY).replace(tzinfo=None) == wall.replace(tzinfo=None)
    unique = wall.replace(fold=1).utcoffset() == wall.utcoffset()
    return wall if exists and unique else None


@FAST
@given(day=days, minute=minutes_of_day, cycles=st.integers(-40, 40))
def test_schedule_repeats_every_n_weeks_at_the_same_local_time(
    shipped_model: TeamModel, day: date, minute: int, cycles: int
) -> None:
    """The same New York wall time n weeks later (n = people in the rotation) has the same
    nominal pair, and the same effective pair when neither day is a holiday (no leave)."""
    n = len(shipped_model.rotation.order)
    one = _local(day, minute)
    other = _local(day + timedelta(weeks=n * cycles), minute)
    assume(one is not None and other is not None)
    assert one is not None  # for mypy: assume() does not narrow
    assert other is not None
    first = resolve(shipped_model, one, [], [])
    again = resolve(shipped_model, other, [], [])
    assert again.shift.week == first.shift.week + n * cycles
    assert again.shift.cycle_week == first.shift.cycle_week
    assert (again.shift.primary, again.shift.backup) == (first.shift.primary, first.shift.backup)
    if one.date() not in US_HOLIDAYS and other.date() not in US_HOLIDAYS:
        assert (again.primary, again.backup) == (first.primary, first.backup)
        assert (first.primary, first.backup) == (first.shift.primary, first.shift.backup)


@FAST
@given(at=instants())
def test_shift_contains_the_instant_and_starts_at_0900_new_york(
    shipped_model: TeamModel, at: datetime
) -> None:
    """The shift in force at t has starts <= t < ends, both handoffs Monday 09:00 New York."""
    shift = resolve(shipped_model, at, [], []).shift
    assert shift.starts <= at < shift.ends
    for handoff in (shift.starts.astimezone(NY), shift.ends.astimezone(NY)):
        assert (handoff.weekday(), handoff.time()) == (0, time(9, 0))
    assert shift.ends - shift.starts in {timedelta(hours=h) for h in (167, 168, 169)}
    assert shift == shift_number(shipped_model, shift.week)


@FAST
@given(week=st.integers(-200, 250))
def test_consecutive_shifts_tile_without_gap_or_overlap(
    shipped_model: TeamModel, week: int
) -> None:
    """Shift k ends exactly where shift k+1 starts, and each handoff instant belongs to the
    new shift while the microsecond before it belongs to the old one."""
    this, following = shift_number(shipped_model, week), shift_number(shipped_model, week + 1)
    assert this.ends == following.starts
    assert following.primary == this.backup
    assert following.cycle_week == this.cycle_week % 4 + 1
    assert shift_at(shipped_model, this.starts).week == week
    assert shift_at(shipped_model, this.ends - timedelta(microseconds=1)).week == week
    assert shift_at(shipped_model, this.ends).week == week + 1


@FAST
@given(
    at=instants(),
    zone=st.sampled_from(["UTC", "Asia/Tokyo", "Pacific/Kiritimati", "America/Los_Angeles"]),
)
def test_answer_depends_on_the_instant_not_its_timezone(
    shipped_model: TeamModel, at: datetime, zone: str
) -> None:
    """Writing the same instant in another timezone changes nothing in the answer."""
    assert resolve(shipped_model, at.astimezone(ZoneInfo(zone)), [], []) == resolve(
        shipped_model, at, [], []
    )
