"""SPEC section 2, "Who is on call: the rules", as tables of `router.oncall.resolve`.

Instants are New York wall-clock times (`2026-11-30 08:59`) unless a row says otherwise.
The shipped rotation: week 1 starts Monday 2026-10-26 09:00, order Alice, Bob, Charlie, Dana.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.oncall import HolidayHandover, OnCall, resolve
from router.teammodel import LeaveEntry, Override, TeamModel

NY = ZoneInfo("America/New_York")
MakeModel = Callable[..., TeamModel]
Pair = tuple[str | None, str | None]


def ny(text: str) -> datetime:
    """A New York wall-clock time such as `2026-11-30 08:59`, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=NY)


def leave(who: str, start: str, end: str, reason: str | None = None) -> LeaveEntry:
    """A leave entry written as in the YAML: `from`/`to` are dates or date-times."""
    return LeaveEntry.model_validate({"who": who, "from": start, "to": end, "reason": reason})


def override(slot: str, who: str, start: str, end: str) -> Override:
    """An override entry written as in the YAML."""
    return Override.model_validate({"slot": slot, "who": who, "from": start, "to": end})


def effective(result: OnCall) -> Pair:
    return (result.primary, result.backup)


def nominal(result: OnCall) -> Pair:
    return (result.shift.primary, result.shift.backup)


def test_factory_without_changes_reproduces_the_shipped_model(
    shipped_model: TeamModel, make_model: MakeModel
) -> None:
    """The test models below differ from the shipped config only by what each test changes."""
    assert make_model() == shipped_model


# --- The SPEC's worked examples -------------------------------------------------------------

SPEC_EXAMPLES = [
    pytest.param("2026-11-24 12:00", 5, ("Alice", "Bob"), ("Alice", "Bob"), id="ordinary-day"),
    pytest.param("2026-11-26 12:00", 5, ("Alice", "Bob"), ("Bob", "Charlie"), id="thanksgiving"),
    pytest.param(
        "2026-11-30 08:59", 5, ("Alice", "Bob"), ("Alice", "Bob"), id="minute-before-handoff"
    ),
    pytest.param("2026-11-30 09:00", 6, ("Bob", "Charlie"), ("Bob", "Charlie"), id="handoff"),
    pytest.param("2026-12-25 10:00", 9, ("Alice", "Bob"), ("Bob", "Charlie"), id="christmas"),
]


@pytest.mark.parametrize(("instant", "week", "expected_nominal", "expected"), SPEC_EXAMPLES)
def test_spec_worked_examples(
    shipped_model: TeamModel, instant: str, week: int, expected_nominal: Pair, expected: Pair
) -> None:
    """Every row of the SPEC's worked-examples table, against the shipped config."""
    result = resolve(shipped_model, ny(instant))
    assert result.shift.week == week
    assert nominal(result) == expected_nominal
    assert effective(result) == expected


def test_spec_christmas_reasons_in_plain_words(shipped_model: TeamModel) -> None:
    """The SPEC's reasons for 2026-12-25 10:00 New York, word for word."""
    result = resolve(shipped_model, ny("2026-12-25 10:00"))
    assert list(result.reasons) == [
        "week 9 (cycle week 1): Alice primary, Bob backup",
        "2026-12-25 is Christmas Day (US): Alice hands primary to Bob",
        "primary Bob, backup Charlie",
    ]
    assert result.holiday == HolidayHandover(date(2026, 12, 25), "Christmas Day", "US", "Alice")


# --- Week arithmetic and the 4-week reset ---------------------------------------------------

ROTATION_WEEKS = [
    pytest.param("2026-10-27 12:00", 1, 1, ("Alice", "Bob"), id="week-1"),
    pytest.param("2026-11-03 12:00", 2, 2, ("Bob", "Charlie"), id="week-2"),
    pytest.param("2026-11-10 12:00", 3, 3, ("Charlie", "Dana"), id="week-3"),
    pytest.param("2026-11-17 12:00", 4, 4, ("Dana", "Alice"), id="week-4"),
    pytest.param("2026-11-24 12:00", 5, 1, ("Alice", "Bob"), id="week-5"),
    pytest.param("2026-12-01 12:00", 6, 2, ("Bob", "Charlie"), id="week-6"),
    pytest.param("2026-12-08 12:00", 7, 3, ("Charlie", "Dana"), id="week-7"),
    pytest.param("2026-12-15 12:00", 8, 4, ("Dana", "Alice"), id="week-8"),
]


@pytest.mark.parametrize(("instant", "week", "cycle_week", "expected"), ROTATION_WEEKS)
def test_weeks_one_to_eight_follow_the_rotation_order(
    shipped_model: TeamModel, instant: str, week: int, cycle_week: int, expected: Pair
) -> None:
    """Week k: primary order[k-1 mod 4], backup order[k mod 4]; ordinary Tuesdays, no leave."""
    result = resolve(shipped_model, ny(instant))
    assert (result.shift.week, result.shift.cycle_week) == (week, cycle_week)
    assert nominal(result) == expected
    assert effective(result) == expected


@pytest.mark.parametrize("week", [1, 2, 3, 4])
def test_schedule_resets_every_four_weeks(shipped_model: TeamModel, week: int) -> None:
    """Week k and week k+4 have the same primary and backup (the seed: resets every 4 weeks)."""
    tuesday_noon = ny("2026-10-27 12:00") + timedelta(weeks=week - 1)
    first = resolve(shipped_model, tuesday_noon)
    again = resolve(shipped_model, tuesday_noon + timedelta(weeks=4))
    assert again.shift.week == first.shift.week + 4
    assert again.shift.cycle_week == first.shift.cycle_week
    assert nominal(again) == nominal(first)
    assert effective(again) == effective(first)


BEFORE_START = [
    pytest.param("2026-10-26 08:59", 0, 4, ("Dana", "Alice"), id="minute-before-start"),
    pytest.param("2026-10-26 09:00", 1, 1, ("Alice", "Bob"), id="at-start"),
    pytest.param("2026-10-19 09:00", 0, 4, ("Dana", "Alice"), id="week-0-handoff"),
    pytest.param("2026-10-19 08:59", -1, 3, ("Charlie", "Dana"), id="week-minus-1"),
    pytest.param("2026-10-05 09:00", -2, 2, ("Bob", "Charlie"), id="week-minus-2"),
    pytest.param("2026-09-28 12:00", -3, 1, ("Alice", "Bob"), id="week-minus-3-cycle-restarts"),
    pytest.param("2026-03-09 08:59", -33, 3, ("Charlie", "Dana"), id="before-past-dst-handoff"),
    pytest.param("2026-03-09 09:00", -32, 4, ("Dana", "Alice"), id="past-dst-handoff-at-0900"),
]


@pytest.mark.parametrize(("instant", "week", "cycle_week", "expected"), BEFORE_START)
def test_before_start_the_formula_runs_backwards(
    shipped_model: TeamModel, instant: str, week: int, cycle_week: int, expected: Pair
) -> None:
    """Before the rotation start, week 0 and negative weeks use the same formula and handoff."""
    result = resolve(shipped_model, ny(instant))
    assert (result.shift.week, result.shift.cycle_week) == (week, cycle_week)
    assert nominal(result) == expected
    assert effective(result) == expected
    assert result.shift.starts <= result.at < result.shift.ends


def test_holiday_rule_applies_before_start_too(shipped_model: TeamModel) -> None:
    """Christmas 2025 (week -43, Alice primary) hands primary to Bob like any other Christmas."""
    result = resolve(shipped_model, ny("2025-12-25 12:00"))
    assert (result.shift.week, nominal(result)) == (-43, ("Alice", "Bob"))
    assert effective(result) == ("Bob", "Charlie")


# --- Daylight saving time: the handoff stays at 09:00 local --------------------------------

DST_HANDOFFS = [
    pytest.param(ny("2026-11-02 08:59"), 1, ("Alice", "Bob"), id="fall-back-minute-before-handoff"),
    pytest.param(ny("2026-11-02 09:00"), 2, ("Bob", "Charlie"), id="fall-back-handoff"),
    # 168 real hours after the start is 08:00 EST: still week 1, the shift is 169 hours long.
    pytest.param(
        datetime(2026, 11, 2, 13, 0, tzinfo=UTC), 1, ("Alice", "Bob"), id="fall-back-168h-later"
    ),
    pytest.param(
        datetime(2026, 11, 2, 14, 0, tzinfo=UTC), 2, ("Bob", "Charlie"), id="fall-back-utc-handoff"
    ),
    pytest.param(
        ny("2027-03-15 08:59"), 20, ("Dana", "Alice"), id="spring-forward-minute-before-handoff"
    ),
    pytest.param(ny("2027-03-15 09:00"), 21, ("Alice", "Bob"), id="spring-forward-handoff"),
    # 168 real hours after 2027-03-08 09:00 EST is 10:00 EDT: week 21 began an hour earlier.
    pytest.param(
        datetime(2027, 3, 15, 12, 59, tzinfo=UTC),
        20,
        ("Dana", "Alice"),
        id="spring-forward-utc-minute-before",
    ),
    pytest.param(
        datetime(2027, 3, 15, 13, 0, tzinfo=UTC), 21, ("Alice", "Bob"), id="spring-forward-167h"
    ),
]


@pytest.mark.parametrize(("instant", "week", "expected"), DST_HANDOFFS)
def test_handoff_stays_at_0900_local_across_dst(
    shipped_model: TeamModel, instant: datetime, week: int, expected: Pair
) -> None:
    """Across a DST change the handoff is at 09:00 New York time, not 168 real hours later."""
    result = resolve(shipped_model, instant)
    assert result.shift.week == week
    assert nominal(result) == expected
    assert effective(result) == expected


SHIFT_LENGTHS = [
    pytest.param("2026-10-28 12:00", 1, ("2026-10-26 09:00", "2026-11-02 09:00"), 169, id="fall"),
    pytest.param(
        "2027-03-10 12:00", 20, ("2027-03-08 09:00", "2027-03-15 09:00"), 167, id="spring"
    ),
    pytest.param("2026-11-04 12:00", 2, ("2026-11-02 09:00", "2026-11-09 09:00"), 168, id="plain"),
]


@pytest.mark.parametrize(("instant", "week", "handoffs", "hours"), SHIFT_LENGTHS)
def test_shift_spanning_dst_lasts_169_or_167_hours(
    shipped_model: TeamModel, instant: str, week: int, handoffs: tuple[str, str], hours: int
) -> None:
    """The shift over the November change lasts 169 h, over the March change 167 h."""
    shift = resolve(shipped_model, ny(instant)).shift
    assert shift.week == week
    assert (shift.starts, shift.ends) == (ny(handoffs[0]), ny(handoffs[1]))
    assert shift.ends - shift.starts == timedelta(hours=hours)


def test_the_instant_not_its_timezone_decides(shipped_model: TeamModel) -> None:
    """The same instant written in New York, UTC or Tokyo time gets the same answer."""
    instant = ny("2026-11-26 12:00")
    in_ny = resolve(shipped_model, instant)
    assert resolve(shipped_model, instant.astimezone(UTC)) == in_ny
    assert resolve(shipped_model, instant.astimezone(ZoneInfo("Asia/Tokyo"))) == in_ny
    assert in_ny.at.utcoffset() == timedelta(0)


def test_naive_instant_is_refused(shipped_model: TeamModel) -> None:
    """A naive datetime is ambiguous (whose wall clock?), so resolve() raises ValueError."""
    naive = ny("2026-11-24 12:00").replace(tzinfo=None)
    with pytest.raises(ValueError, match="aware"):
        resolve(shipped_model, naive)


# --- Public holidays ------------------------------------------------------------------------

HOLIDAYS = [
    pytest.param("2026-11-25 23:59", ("Alice", "Bob"), ("Alice", "Bob"), id="eve-of-thanksgiving"),
    pytest.param(
        "2026-11-26 00:00", ("Alice", "Bob"), ("Bob", "Charlie"), id="thanksgiving-first-minute"
    ),
    pytest.param(
        "2026-11-26 23:59", ("Alice", "Bob"), ("Bob", "Charlie"), id="thanksgiving-last-minute"
    ),
    pytest.param("2026-11-27 00:00", ("Alice", "Bob"), ("Alice", "Bob"), id="day-after"),
    pytest.param("2026-11-11 12:00", ("Charlie", "Dana"), ("Dana", "Alice"), id="veterans-day"),
    pytest.param(
        "2027-12-24 12:00", ("Alice", "Bob"), ("Bob", "Charlie"), id="christmas-observed-friday"
    ),
    # MLK Day 2027 is the Monday of a handoff: both that day's primaries hand over.
    pytest.param("2027-01-18 08:59", ("Dana", "Alice"), ("Alice", "Bob"), id="mlk-before-handoff"),
    pytest.param("2027-01-18 09:00", ("Alice", "Bob"), ("Bob", "Charlie"), id="mlk-after-handoff"),
    pytest.param(
        "2026-10-12 08:59", ("Bob", "Charlie"), ("Charlie", "Dana"), id="columbus-before-start"
    ),
]


@pytest.mark.parametrize(("instant", "expected_nominal", "expected"), HOLIDAYS)
def test_public_holiday_hands_primary_to_backup(
    shipped_model: TeamModel, instant: str, expected_nominal: Pair, expected: Pair
) -> None:
    """On a public holiday (whole local day) the nominal primary hands primary to the backup."""
    result = resolve(shipped_model, ny(instant))
    assert nominal(result) == expected_nominal
    assert effective(result) == expected
    if expected != expected_nominal:
        assert result.holiday is not None
        assert result.holiday.who == expected_nominal[0]
        assert any("hands primary to" in reason for reason in result.reasons)
    else:
        assert result.holiday is None


HOLIDAY_AND_LEAVE = [
    pytest.param(["Bob"], ("Charlie", "Dana"), id="backup-on-leave"),
    pytest.param(["Alice"], ("Bob", "Charlie"), id="primary-on-leave"),
    pytest.param(["Charlie"], ("Bob", "Dana"), id="third-on-leave"),
    pytest.param(["Bob", "Charlie"], ("Dana", "Alice"), id="primary-is-last-resort-backup"),
    pytest.param(["Bob", "Charlie", "Dana"], ("Alice", None), id="primary-is-last-resort"),
    pytest.param(["Alice", "Bob", "Charlie", "Dana"], (None, None), id="everyone-away"),
]


@pytest.mark.parametrize(("away", "expected"), HOLIDAY_AND_LEAVE)
def test_holiday_and_leave_combine(
    shipped_model: TeamModel, away: list[str], expected: Pair
) -> None:
    """Thanksgiving (Alice's week): Alice moves to the end, then whoever is on leave drops out."""
    entries = [leave(name, "2026-11-26", "2026-11-26") for name in away]
    result = resolve(shipped_model, ny("2026-11-26 12:00"), leave=entries)
    assert effective(result) == expected
    assert set(result.on_leave) == set(away)


# --- A member on another country's calendar -------------------------------------------------


def members_with_calendars(
    document: dict[str, Any], calendars: dict[str, str]
) -> list[dict[str, Any]]:
    """The shipped members, with `holidays: {country: ...}` set for the named ones."""
    members: list[dict[str, Any]] = document["team"]["members"]
    return [
        {**m, "holidays": {"country": calendars[m["name"]]}} if m["name"] in calendars else m
        for m in members
    ]


OWN_CALENDAR = [
    pytest.param(
        {"Bob": "GB"}, "2026-12-28 12:00", ("Bob", "Charlie"), ("Charlie", "Dana"),
        id="gb-boxing-day-observed-hands-over",
    ),
    pytest.param(
        {}, "2026-12-28 12:00", ("Bob", "Charlie"), ("Bob", "Charlie"),
        id="us-primary-works-boxing-day",
    ),
    pytest.param(
        {"Bob": "GB"}, "2026-12-28 08:00", ("Alice", "Bob"), ("Alice", "Bob"),
        id="gb-backup-holiday-does-not-matter",
    ),
    pytest.param(
        {"Alice": "GB"}, "2026-11-26 12:00", ("Alice", "Bob"), ("Alice", "Bob"),
        id="gb-primary-works-thanksgiving",
    ),
    pytest.param(
        {"Alice": "GB"}, "2026-12-25 12:00", ("Alice", "Bob"), ("Bob", "Charlie"),
        id="gb-christmas-hands-over",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("calendars", "instant", "expected_nominal", "expected"), OWN_CALENDAR)
def test_member_calendar_decides_their_holiday(
    *,
    shipped_document: dict[str, Any],
    make_model: MakeModel,
    calendars: dict[str, str],
    instant: str,
    expected_nominal: Pair,
    expected: Pair,
) -> None:
    """The nominal primary's own calendar, not the team's, decides whether they hand over."""
    model = make_model(team={"members": members_with_calendars(shipped_document, calendars)})
    result = resolve(model, ny(instant))
    assert nominal(result) == expected_nominal
    assert effective(result) == expected


def test_member_calendar_is_named_in_the_reason(
    shipped_document: dict[str, Any], make_model: MakeModel
) -> None:
    """The reason names the GB holiday and calendar, so a person can see why Bob handed over."""
    model = make_model(team={"members": members_with_calendars(shipped_document, {"Bob": "GB"})})
    result = resolve(model, ny("2026-12-28 12:00"))
    assert result.holiday == HolidayHandover(
        date(2026, 12, 28), "Boxing Day (observed)", "GB", "Bob"
    )
    assert "2026-12-28 is Boxing Day (observed) (GB): Bob hands primary to Charlie" in (
        result.reasons
    )


# --- Leave ----------------------------------------------------------------------------------

LEAVE_RULES = [
    pytest.param(["Alice"], ("Bob", "Charlie"), id="primary-away-backup-takes-over"),
    pytest.param(["Bob"], ("Alice", "Charlie"), id="backup-away-next-in-list"),
    pytest.param(["Alice", "Bob"], ("Charlie", "Dana"), id="both-away-rotate-to-next"),
    pytest.param(["Bob", "Charlie"], ("Alice", "Dana"), id="backup-and-next-away"),
    pytest.param(["Charlie"], ("Alice", "Bob"), id="third-away-no-change"),
    pytest.param(["Alice", "Bob", "Charlie"], ("Dana", None), id="one-left-no-backup"),
    pytest.param(["Alice", "Bob", "Charlie", "Dana"], (None, None), id="nobody-left"),
]


@pytest.mark.parametrize(("away", "expected"), LEAVE_RULES)
def test_people_on_leave_drop_out_of_the_candidates(
    shipped_model: TeamModel, away: list[str], expected: Pair
) -> None:
    """Week 5 (Alice/Bob, ordinary Tuesday): whoever is on leave is skipped, in rotation order."""
    entries = [leave(name, "2026-11-23", "2026-11-27", "vacation") for name in away]
    result = resolve(shipped_model, ny("2026-11-24 12:00"), leave=entries)
    assert effective(result) == expected
    assert set(result.on_leave) == set(away)


def test_leave_wraps_around_the_rotation_order(shipped_model: TeamModel) -> None:
    """Week 8 (Dana/Alice) with Dana away: Alice primary, and the list wraps to Bob as backup."""
    result = resolve(
        shipped_model, ny("2026-12-15 12:00"), leave=[leave("Dana", "2026-12-14", "2026-12-20")]
    )
    assert effective(result) == ("Alice", "Bob")


def test_leave_reason_is_given_in_words(shipped_model: TeamModel) -> None:
    """A leave entry appears in the reasons with who, why and until when."""
    result = resolve(
        shipped_model,
        ny("2026-12-02 14:00"),
        leave=[leave("Bob", "2026-12-02T13:00", "2026-12-02T18:00", "dentist")],
    )
    assert "Bob is on leave (dentist) until 2026-12-02 18:00" in result.reasons
    assert result.reasons[-1] == "primary Charlie, backup Dana"


# Week 6 is Bob/Charlie: when Bob is away at the instant, Charlie and Dana take over.
LEAVE_EDGES = [
    pytest.param("2026-12-01", "2026-12-03", "2026-11-30 23:59", False, id="date-from-eve"),
    pytest.param("2026-12-01", "2026-12-03", "2026-12-01 00:00", True, id="date-from-midnight"),
    pytest.param("2026-12-01", "2026-12-03", "2026-12-03 23:59", True, id="date-to-last-minute"),
    pytest.param("2026-12-01", "2026-12-03", "2026-12-04 00:00", False, id="date-to-next-day"),
    pytest.param("2026-12-02T13:00", "2026-12-02T18:00", "2026-12-02 12:59", False, id="dt-before"),
    pytest.param("2026-12-02T13:00", "2026-12-02T18:00", "2026-12-02 13:00", True, id="dt-from"),
    pytest.param("2026-12-02T13:00", "2026-12-02T18:00", "2026-12-02 17:59", True, id="dt-to-1m"),
    pytest.param("2026-12-02T13:00", "2026-12-02T18:00", "2026-12-02 18:00", False, id="dt-to"),
    pytest.param("2026-12-02", "2026-12-02T18:00", "2026-12-02 00:00", True, id="date-to-dt"),
    pytest.param("2026-12-02T13:00", "2026-12-02", "2026-12-02 23:59", True, id="dt-to-date"),
    # Explicit offsets: 18:00 UTC is 13:00 in New York in December.
    pytest.param(
        "2026-12-02T18:00+00:00", "2026-12-02T23:00+00:00", "2026-12-02 12:59", False,
        id="utc-offset-before",
    ),
    pytest.param(
        "2026-12-02T18:00+00:00", "2026-12-02T23:00+00:00", "2026-12-02 13:00", True,
        id="utc-offset-from",
    ),
    pytest.param(
        "2026-12-02T18:00Z", "2026-12-02T23:00Z", "2026-12-02 17:59", True, id="z-suffix-to-1m",
    ),
    pytest.param(
        "2026-12-02T19:00+01:00", "2026-12-03T00:00+01:00", "2026-12-02 18:00", False,
        id="plus-one-offset-to",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("start", "end", "instant", "away"), LEAVE_EDGES)
def test_leave_edges_to_the_minute(
    shipped_model: TeamModel, start: str, end: str, instant: str, away: bool
) -> None:
    """Date-only `from` starts at local 00:00, date-only `to` includes the whole local day,
    a date-time `to` is exclusive, and an explicit offset is honoured."""
    result = resolve(shipped_model, ny(instant), leave=[leave("Bob", start, end)])
    assert result.shift.week == 6
    assert effective(result) == (("Charlie", "Dana") if away else ("Bob", "Charlie"))
    assert result.on_leave == (("Bob",) if away else ())


# Week 1 (Alice/Bob) contains the 25-hour day 2026-11-01: a date-only `to` covers all of it.
DST_LEAVE_EDGES = [
    pytest.param("2026-11-01 01:30", True, id="ambiguous-hour"),
    pytest.param("2026-11-01 23:30", True, id="last-hour-of-25h-day"),
    pytest.param("2026-11-02 00:00", False, id="next-midnight"),
]


@pytest.mark.parametrize(("instant", "away"), DST_LEAVE_EDGES)
def test_date_only_leave_covers_a_25_hour_day(
    shipped_model: TeamModel, instant: str, away: bool
) -> None:
    """Leave `to: 2026-11-01` lasts until 00:00 on the 2nd, though that day has 25 hours."""
    result = resolve(shipped_model, ny(instant), leave=[leave("Alice", "2026-10-31", "2026-11-01")])
    assert effective(result) == (("Bob", "Charlie") if away else ("Alice", "Bob"))


def test_leave_across_a_handoff_follows_the_shift(shipped_model: TeamModel) -> None:
    """Bob away 08:00-10:00 on handoff Monday: backup in week 5, primary in week 6."""
    entries = [leave("Bob", "2026-11-30T08:00", "2026-11-30T10:00")]
    before = resolve(shipped_model, ny("2026-11-30 08:59"), leave=entries)
    after = resolve(shipped_model, ny("2026-11-30 09:00"), leave=entries)
    assert effective(before) == ("Alice", "Charlie")
    assert effective(after) == ("Charlie", "Dana")


def test_model_leave_applies_when_none_is_passed(make_model: MakeModel) -> None:
    """Leave written in the config is used when resolve() is given no leave."""
    model = make_model(
        leave=[{"who": "Alice", "from": "2026-11-23", "to": "2026-11-27", "reason": "vacation"}]
    )
    result = resolve(model, ny("2026-11-24 12:00"))
    assert effective(result) == ("Bob", "Charlie")
    assert "Alice is on leave (vacation) through 2026-11-27" in result.reasons


def test_explicit_leave_replaces_the_model_leave(make_model: MakeModel) -> None:
    """Leave passed to resolve() (the runtime API's list) replaces the config's, even if empty."""
    model = make_model(leave=[{"who": "Alice", "from": "2026-11-23", "to": "2026-11-27"}])
    assert effective(resolve(model, ny("2026-11-24 12:00"), leave=[])) == ("Alice", "Bob")
    bob_away = [leave("Bob", "2026-11-24", "2026-11-24")]
    assert effective(resolve(model, ny("2026-11-24 12:00"), leave=bob_away)) == ("Alice", "Charlie")


# --- Nobody, or only one person, available --------------------------------------------------


def test_nobody_available_says_so(shipped_model: TeamModel) -> None:
    """Everyone on leave: no primary, no backup, and the last reason says nobody is available."""
    entries = [leave(name, "2026-12-01", "2026-12-31") for name in ("Alice", "Bob", "Charlie")]
    entries.append(leave("Dana", "2026-12-02T13:00-05:00", "2026-12-02T18:00-05:00"))
    result = resolve(shipped_model, ny("2026-12-02 14:00"), leave=entries)
    assert effective(result) == (None, None)
    assert set(result.on_leave) == {"Alice", "Bob", "Charlie", "Dana"}
    assert result.reasons[-1].startswith("nobody available")


def test_only_one_person_available_has_no_backup(shipped_model: TeamModel) -> None:
    """With a single person left they are primary and the backup is None, said in words."""
    entries = [leave(name, "2026-12-01", "2026-12-31") for name in ("Alice", "Bob", "Charlie")]
    result = resolve(shipped_model, ny("2026-12-02 14:00"), leave=entries)
    assert effective(result) == ("Dana", None)
    assert result.reasons[-1] == "primary Dana, no backup available"


# --- Overrides ------------------------------------------------------------------------------

# Week 7 is Charlie/Dana; Dana covers primary from Thursday 09:00 to Friday 09:00.
OVERRIDE_EDGES = [
    pytest.param("2026-12-10 08:59", ("Charlie", "Dana"), id="minute-before-from"),
    pytest.param("2026-12-10 09:00", ("Dana", "Alice"), id="active-at-from"),
    pytest.param("2026-12-11 08:59", ("Dana", "Alice"), id="active-minute-before-to"),
    pytest.param("2026-12-11 09:00", ("Charlie", "Dana"), id="inactive-at-to"),
]


@pytest.mark.parametrize(("instant", "expected"), OVERRIDE_EDGES)
def test_override_edges_to_the_minute(
    shipped_model: TeamModel, instant: str, expected: Pair
) -> None:
    """An override is active from `from` (inclusive) until `to` (exclusive)."""
    entry = override("primary", "Dana", "2026-12-10T09:00", "2026-12-11T09:00")
    result = resolve(shipped_model, ny(instant), overrides=[entry])
    assert effective(result) == expected
    assert result.overrides == ((entry,) if expected[0] == "Dana" else ())


# Week 5 is Alice/Bob on an ordinary Tuesday.
OVERRIDE_RULES = [
    pytest.param(
        "primary", "Bob", [], ("Bob", "Charlie"), "Alice", id="backup-takes-primary-next-is-backup"
    ),
    pytest.param("primary", "Charlie", [], ("Charlie", "Bob"), "Alice", id="third-takes-primary"),
    pytest.param("backup", "Dana", [], ("Alice", "Dana"), "Bob", id="fourth-takes-backup"),
    pytest.param("backup", "Alice", [], ("Charlie", "Alice"), "Bob", id="primary-takes-backup"),
    pytest.param("primary", "Alice", [], ("Alice", "Bob"), None, id="already-primary"),
    pytest.param("backup", "Dana", ["Bob"], ("Alice", "Dana"), "Charlie", id="backup-after-leave"),
    pytest.param(
        "primary", "Dana", ["Alice"], ("Dana", "Charlie"), "Bob", id="primary-after-leave"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("slot", "who", "away", "expected", "relieved"), OVERRIDE_RULES)
def test_override_puts_its_person_in_the_slot(
    *,
    shipped_model: TeamModel,
    slot: str,
    who: str,
    away: list[str],
    expected: Pair,
    relieved: str | None,
) -> None:
    """The override's person takes the slot; whoever they displace is relieved for the span;
    if they held the other slot, the next remaining candidate fills it."""
    entries = [leave(name, "2026-11-24", "2026-11-24") for name in away]
    entry = override(slot, who, "2026-11-24T09:00", "2026-11-25T09:00")
    result = resolve(shipped_model, ny("2026-11-24 12:00"), leave=entries, overrides=[entry])
    assert effective(result) == expected
    assert result.overrides == (entry,)
    if relieved is not None:
        assert relieved not in effective(result)
        assert any(f"relieving {relieved}" in reason for reason in result.reasons)


# Week 5 is Alice/Bob; Charlie and Dana on leave leave nobody to refill a vacated slot.
OVERRIDE_WITH_NOBODY_TO_REFILL = [
    pytest.param(["Charlie", "Dana"], ("Bob", "Alice"), "so Bob stays on", id="displaced-stays"),
    pytest.param(["Bob", "Charlie", "Dana"], ("Alice", None), "covers backup", id="only-one-left"),
]  # fmt: skip


@pytest.mark.parametrize(("away", "expected", "reason"), OVERRIDE_WITH_NOBODY_TO_REFILL)
def test_override_never_leaves_fewer_people_on_call(
    shipped_model: TeamModel, away: list[str], expected: Pair, reason: str
) -> None:
    """Alice (primary) covers backup: when nobody else can take primary, the backup she
    displaces stays on rather than leaving primary empty (README: override decisions)."""
    entries = [leave(name, "2026-11-24", "2026-11-24") for name in away]
    entry = override("backup", "Alice", "2026-11-24T09:00", "2026-11-25T09:00")
    result = resolve(shipped_model, ny("2026-11-24 12:00"), leave=entries, overrides=[entry])
    assert effective(result) == expected
    assert any(reason in text for text in result.reasons)


def test_override_by_someone_on_leave_is_ignored(shipped_model: TeamModel) -> None:
    """Dana cannot cover primary while on leave: the rotation stands and the reasons warn."""
    result = resolve(
        shipped_model,
        ny("2026-11-24 12:00"),
        leave=[leave("Dana", "2026-11-24", "2026-11-24")],
        overrides=[override("primary", "Dana", "2026-11-24", "2026-11-24")],
    )
    assert effective(result) == ("Alice", "Bob")
    assert result.overrides == ()
    assert any("override ignored" in reason for reason in result.reasons)


def test_override_date_only_span_covers_the_whole_day(shipped_model: TeamModel) -> None:
    """An override `from: D` `to: D` runs from 00:00 on D to 00:00 the next local day."""
    entry = override("backup", "Charlie", "2026-11-24", "2026-11-24")
    at = {t: effective(resolve(shipped_model, ny(t), overrides=[entry])) for t in (
        "2026-11-23 23:59", "2026-11-24 00:00", "2026-11-24 23:59", "2026-11-25 00:00",
    )}  # fmt: skip
    assert at == {
        "2026-11-23 23:59": ("Alice", "Bob"),
        "2026-11-24 00:00": ("Alice", "Charlie"),
        "2026-11-24 23:59": ("Alice", "Charlie"),
        "2026-11-25 00:00": ("Alice", "Bob"),
    }


def test_override_with_explicit_offset(shipped_model: TeamModel) -> None:
    """An override written in UTC starts at that instant, whatever the team's timezone."""
    entry = override("primary", "Dana", "2026-11-24T17:00Z", "2026-11-24T19:00Z")
    assert effective(resolve(shipped_model, ny("2026-11-24 11:59"), overrides=[entry])) == (
        "Alice",
        "Bob",
    )
    assert effective(resolve(shipped_model, ny("2026-11-24 12:00"), overrides=[entry])) == (
        "Dana",
        "Bob",
    )
    assert effective(resolve(shipped_model, ny("2026-11-24 14:00"), overrides=[entry])) == (
        "Alice",
        "Bob",
    )


def test_override_on_a_holiday_applies_after_the_handover(shipped_model: TeamModel) -> None:
    """Thanksgiving: Bob took primary from Alice; Dana covering backup relieves Charlie."""
    entry = override("backup", "Dana", "2026-11-26", "2026-11-26")
    result = resolve(shipped_model, ny("2026-11-26 12:00"), overrides=[entry])
    assert effective(result) == ("Bob", "Dana")


def test_model_overrides_apply_when_none_are_passed(make_model: MakeModel) -> None:
    """Overrides written in the config are used when resolve() is given none."""
    model = make_model(
        overrides=[
            {"slot": "primary", "who": "Dana", "from": "2026-12-10T09:00", "to": "2026-12-11T09:00"}
        ]
    )
    result = resolve(model, ny("2026-12-10 12:00"))
    assert effective(result) == ("Dana", "Alice")
    assert "override: Dana covers primary until 2026-12-11 09:00, relieving Charlie" in (
        result.reasons
    )
    assert effective(resolve(model, ny("2026-12-10 12:00"), overrides=[])) == ("Charlie", "Dana")
