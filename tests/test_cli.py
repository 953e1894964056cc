"""The `router` command line (SPEC section 3): oncall, schedule, fairness and check-config,
their JSON and iCalendar output, and exit code 2 for anything a user typed wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from router.cli import main

from configs import REPO_ROOT, SHIPPED_CONFIG, copy_shipped, edit

NEW_YORK = ZoneInfo("America/New_York")
CONFIG = ["--config", str(SHIPPED_CONFIG)]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`router ARGV` in-process: exit code, stdout, stderr."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    """`router ARGV --json` output, after checking it succeeded quietly."""
    code, out, err = run([*argv, "--json", *CONFIG], capsys)
    assert (code, err) == (0, "")
    return json.loads(out)


def assert_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str], command: str, *words: str
) -> None:
    """Exit 2, a one-line message naming the command and the bad value, no traceback."""
    code, out, err = run([*argv, *CONFIG], capsys)
    assert "Traceback" not in out + err
    assert code == 2, f"exit {code}, stdout {out!r}, stderr {err!r}"
    assert out == ""
    assert err.startswith(f"router {command}: ")
    assert len(err.splitlines()) == 1
    for word in words:
        assert word in err


def subprocess_env() -> dict[str, str]:
    """This environment without ROUTER_* settings, so the default `config/` is the one read."""
    return {key: value for key, value in os.environ.items() if not key.startswith("ROUTER_")}


# --- router oncall -----------------------------------------------------------------------


def test_oncall_json_on_thanksgiving_hands_primary_to_the_backup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer = run_json(["oncall", "--at", "2026-11-26T12:00"], capsys)
    assert answer["at"] == "2026-11-26T12:00:00-05:00"
    assert answer["week"] == 5
    assert (answer["nominal_primary"], answer["nominal_backup"]) == ("Alice", "Bob")
    assert (answer["primary"], answer["backup"]) == ("Bob", "Charlie")
    assert answer["reasons"] == [
        "week 5 (cycle week 1): Alice primary, Bob backup",
        "2026-11-26 is Thanksgiving Day (US): Alice hands primary to Bob",
        "primary Bob, backup Charlie",
    ]


def test_oncall_json_on_christmas_gives_the_reasons_spec_quotes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer = run_json(["oncall", "--at", "2026-12-25T10:00"], capsys)
    assert answer["reasons"] == [
        "week 9 (cycle week 1): Alice primary, Bob backup",
        "2026-12-25 is Christmas Day (US): Alice hands primary to Bob",
        "primary Bob, backup Charlie",
    ]


@pytest.mark.parametrize(
    ("at", "week", "nominal", "effective"),
    [
        ("2026-11-24T12:00", 5, ("Alice", "Bob"), ("Alice", "Bob")),
        ("2026-11-26T12:00", 5, ("Alice", "Bob"), ("Bob", "Charlie")),
        ("2026-11-30T08:59", 5, ("Alice", "Bob"), ("Alice", "Bob")),
        ("2026-11-30T09:00", 6, ("Bob", "Charlie"), ("Bob", "Charlie")),
        ("2026-12-25T10:00", 9, ("Alice", "Bob"), ("Bob", "Charlie")),
    ],
)
def test_oncall_json_matches_the_worked_examples(
    capsys: pytest.CaptureFixture[str],
    at: str,
    week: int,
    nominal: tuple[str, str],
    effective: tuple[str, str],
) -> None:
    answer = run_json(["oncall", "--at", at], capsys)
    assert answer["week"] == week
    assert (answer["nominal_primary"], answer["nominal_backup"]) == nominal
    assert (answer["primary"], answer["backup"]) == effective
    assert all(isinstance(reason, str) for reason in answer["reasons"])


def test_oncall_json_reads_an_explicit_offset_as_that_instant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """14:00 UTC is 09:00 in New York on 2026-11-30: the handoff to week 6."""
    answer = run_json(["oncall", "--at", "2026-11-30T14:00+00:00"], capsys)
    assert answer["at"] == "2026-11-30T09:00:00-05:00"
    assert answer["week"] == 6


def test_oncall_text_shows_aligned_labels_then_reasons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["oncall", "--at", "2026-11-26T12:00", *CONFIG], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "At       2026-11-26 12:00 EST (America/New_York)",
        "Week     5 (cycle week 1)",
        "Shift    2026-11-23 09:00 EST to 2026-11-30 09:00 EST",
        "Nominal  Alice primary, Bob backup",
        "Primary  Bob",
        "Backup   Charlie",
        "Why:",
        "  - week 5 (cycle week 1): Alice primary, Bob backup",
        "  - 2026-11-26 is Thanksgiving Day (US): Alice hands primary to Bob",
        "  - primary Bob, backup Charlie",
    ]


@pytest.mark.parametrize("at", ["tomorrow", "2026-13-01T00:00", "2026-11-26 noon"])
def test_oncall_rejects_a_malformed_at_with_exit_2(
    capsys: pytest.CaptureFixture[str], at: str
) -> None:
    assert_usage_error(["oncall", "--at", at], capsys, "oncall", repr(at))


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        pytest.param(["oncall", "--at", "9999-12-31T23:59"], "oncall", id="oncall"),
        pytest.param(["schedule", "--from", "9999-12-01"], "schedule", id="schedule"),
        pytest.param(
            ["fairness", "--from", "9999-12-01", "--to", "9999-12-31"], "fairness", id="fairness"
        ),
    ],
)
def test_date_beyond_the_calendar_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str
) -> None:
    """A valid ISO date whose shift or window runs past year 9999 cannot be answered."""
    assert_usage_error(argv, capsys, command)


def test_oncall_with_a_broken_config_prints_its_problems_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_shipped(tmp_path)
    pipelines = folder / "pipelines.yaml"
    edit(pipelines, "{primary: Dana, secondary: Alice}", "{primary: Eve, secondary: Alice}")
    code, out, err = run(["oncall", "--at", "2026-11-26T12:00", "--config", str(folder)], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{pipelines}: pipelines[2].owners.primary: 'Eve' is not a team member"
    ]


# --- router schedule ---------------------------------------------------------------------


def schedule_spans(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The spans of `router schedule --from 2026-11-24 --weeks 2 --json`."""
    document = run_json(["schedule", "--from", "2026-11-24", "--weeks", "2"], capsys)
    assert document["timezone"] == "America/New_York"
    spans: list[dict[str, Any]] = document["spans"]
    return spans


def test_schedule_spans_tile_the_shifts_from_the_shift_in_force(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spans = schedule_spans(capsys)
    assert spans[0]["from"] == "2026-11-23T09:00:00-05:00"
    assert spans[-1]["to"] == "2026-12-07T09:00:00-05:00"
    for earlier, later in pairwise(spans):
        assert earlier["to"] == later["from"]
        assert datetime.fromisoformat(earlier["from"]) < datetime.fromisoformat(earlier["to"])
    assert {span["week"] for span in spans} == {5, 6}


def test_schedule_splits_out_thanksgiving_with_bob_and_charlie(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spans = schedule_spans(capsys)
    thanksgiving = [span for span in spans if span["from"].startswith("2026-11-26")]
    assert len(thanksgiving) == 1
    (span,) = thanksgiving
    assert (span["from"], span["to"]) == ("2026-11-26T00:00:00-05:00", "2026-11-27T00:00:00-05:00")
    assert (span["primary"], span["backup"]) == ("Bob", "Charlie")
    assert (span["nominal_primary"], span["nominal_backup"]) == ("Alice", "Bob")


def test_schedule_ics_has_one_event_per_span_with_the_same_times(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spans = schedule_spans(capsys)
    code, out, err = run(
        ["schedule", "--from", "2026-11-24", "--weeks", "2", "--ics", *CONFIG], capsys
    )
    assert (code, err) == (0, "")
    calendar = icalendar.Calendar.from_ical(out)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == len(spans)
    for event, span in zip(events, spans, strict=True):
        assert event.decoded("DTSTART") == datetime.fromisoformat(span["from"])
        assert event.decoded("DTEND") == datetime.fromisoformat(span["to"])
        assert span["primary"] in str(event.get("SUMMARY"))


@pytest.mark.parametrize("weeks", ["0", "-1", "521"])
def test_schedule_rejects_weeks_out_of_range_with_exit_2(
    capsys: pytest.CaptureFixture[str], weeks: str
) -> None:
    assert_usage_error(
        ["schedule", "--from", "2026-11-24", "--weeks", weeks], capsys, "schedule", "--weeks"
    )


def test_schedule_refuses_json_and_ics_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schedule", "--json", "--ics", *CONFIG])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --- router fairness ---------------------------------------------------------------------


def fairness_report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`router fairness --from 2026-10-26 --to 2026-12-31 --json`, members keyed by name."""
    document = run_json(["fairness", "--from", "2026-10-26", "--to", "2026-12-31"], capsys)
    assert document["from"] == "2026-10-26T00:00:00-04:00"
    assert document["to"] == "2027-01-01T00:00:00-05:00"
    return {member["name"]: member for member in document["members"]}


def test_fairness_primary_hours_add_up_to_the_window_across_dst(
    capsys: pytest.CaptureFixture[str],
) -> None:
    members = fairness_report(capsys)
    starts = datetime(2026, 10, 26, tzinfo=NEW_YORK).astimezone(UTC)
    ends = datetime(2027, 1, 1, tzinfo=NEW_YORK).astimezone(UTC)
    window_hours = (ends - starts) / timedelta(hours=1)
    assert window_hours == 67 * 24 + 1  # 2026-11-01 falls back: one 25-hour day
    assert set(members) == {"Alice", "Bob", "Charlie", "Dana"}
    assert sum(m["primary_hours"] for m in members.values()) == pytest.approx(window_hours)
    assert sum(m["backup_hours"] for m in members.values()) == pytest.approx(window_hours)


def test_fairness_counts_holidays_covered_and_handed_over(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Thanksgiving and Christmas are Alice's weeks: Bob covers both whole days."""
    members = fairness_report(capsys)
    assert members["Bob"]["holiday_hours_covered"] == pytest.approx(48)
    assert members["Alice"]["holiday_hours_handed_over"] == pytest.approx(48)
    assert members["Alice"]["holiday_hours_covered"] == pytest.approx(0)


def test_fairness_rejects_to_before_from_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(
        ["fairness", "--from", "2026-12-31", "--to", "2026-10-26"],
        capsys,
        "fairness",
        "2026-10-26",
        "2026-12-31",
    )


def test_fairness_rejects_a_malformed_date_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert_usage_error(["fairness", "--from", "26/10/2026"], capsys, "fairness", "'26/10/2026'")


# --- the installed entry points, as a user runs them -------------------------------------


def test_python_m_router_answers_from_the_default_config_folder() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router", "oncall", "--at", "2026-11-30T09:00", "--json"],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    answer = json.loads(result.stdout)
    assert answer["week"] == 6
    assert (answer["primary"], answer["backup"]) == ("Bob", "Charlie")


def test_router_check_config_on_a_broken_file_exits_2_without_traceback(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "team.yaml"
    broken.write_text("team: [unclosed\n")
    router = Path(sys.executable).with_name("router")
    result = subprocess.run(
        [str(router), "check-config", str(broken)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{broken}: line 2, column 1: ")
