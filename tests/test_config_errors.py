"""`router check-config` on broken team models: one line per problem, with its file and key
path, exit code 2, nothing on stdout and never a traceback (SPEC section 1)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from router.cli import main
from router.config import load_team_model
from router.errors import ConfigError, ConfigProblem

from configs import SHIPPED_CONFIG, copy_shipped, cut_from, edit, merge_shipped

SECRET = "pd-routing-key-5f0c2a9e7d41"  # an integration key: must never be printed


class Change(NamedTuple):
    """Replace `old` by `new` in one file of the copied config folder."""

    file: str
    old: str
    new: str

    def apply(self, folder: Path) -> Path:
        """Make the change; returns the file changed."""
        edit(folder / self.file, self.old, self.new)
        return folder / self.file


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A fresh copy of the shipped `config/` folder, for one test to break."""
    return copy_shipped(tmp_path)


def problems(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The problem lines `router check-config PATH` prints, after checking how it failed."""
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 2, f"exit {code}, stdout {out!r}, stderr {err!r}"
    assert out == ""
    lines = err.splitlines()
    assert lines, "no problem was reported"
    return lines


# --- the config that works ---------------------------------------------------------------


def test_shipped_config_passes_with_a_one_line_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check-config", str(SHIPPED_CONFIG)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{SHIPPED_CONFIG}: OK")
    assert "4 members" in lines[0]
    assert "5 pipelines" in lines[0]


def test_shipped_config_as_a_single_file_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = merge_shipped(tmp_path)
    assert main(["check-config", str(file)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "4 members, 5 pipelines" in out


def test_country_no_is_norway_not_false(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """YAML 1.1 would read `NO` as false; the loader keeps it the string `NO` (Norway)."""
    file = merge_shipped(tmp_path)
    edit(file, "holidays: {country: US}", "holidays: {country: NO}")
    assert main(["check-config", str(file)]) == 0
    assert capsys.readouterr().err == ""
    assert load_team_model(file).team.holidays.country == "NO"


def test_dates_and_times_stay_as_written(tmp_path: Path) -> None:
    """`from: 2026-12-01` is a date (a whole local day), a date-time stays naive local time."""
    file = merge_shipped(tmp_path)
    edit(
        file,
        "leave: []",
        "leave:\n"
        "  - {who: Alice, from: 2026-12-01, to: 2026-12-05, reason: vacation}\n"
        "  - {who: Bob, from: 2026-12-02T13:00, to: 2026-12-02T18:00, reason: dentist}",
    )
    model = load_team_model(file)
    vacation, dentist = model.leave
    assert type(vacation.from_) is date
    assert (vacation.from_, vacation.to) == (date(2026, 12, 1), date(2026, 12, 5))
    assert isinstance(dentist.from_, datetime)
    # No offset in the ISO form: naive, so local to team.timezone.
    assert (dentist.from_.isoformat(), dentist.to.isoformat()) == (
        "2026-12-02T13:00:00",
        "2026-12-02T18:00:00",
    )
    assert model.rotation.start.isoformat() == "2026-10-26T09:00:00"


# --- reading files -----------------------------------------------------------------------


def test_yaml_syntax_error_names_file_line_and_column(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team = folder / "team.yaml"
    edit(team, "  order: [Alice, Bob, Charlie, Dana]", "  order: [Alice, Bob, Charlie, Dana")
    assert problems(folder, capsys) == [
        f"{team}: line 16, column 8: expected ',' or ']', but got ':'"
    ]


def test_key_repeated_inside_one_mapping_is_reported(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML keeps the last of two equal keys silently; the loader refuses both."""
    team = folder / "team.yaml"
    edit(
        team,
        "{name: Bob, email: bob@example.com}",
        "{name: Bob, email: bob@example.com, name: Eve}",
    )
    assert problems(folder, capsys) == [f"{team}: line 8, column 43: duplicate key 'name'"]


def test_top_level_key_defined_in_two_files_is_reported(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = folder / "extra.yaml"
    extra.write_text("channels:\n  ops: {type: email, address: ops@example.com}\n")
    assert problems(folder, capsys) == [
        f"{extra}: channels: defined in both escalation.yaml and extra.yaml"
    ]


def test_unhashable_mapping_key_is_a_problem_not_a_traceback(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sequence used as a key (`? [a, b]`) is invalid YAML for us, reported like any other."""
    extra = folder / "extra.yaml"
    extra.write_text("? [a, b]\n: 1\n")
    lines = problems(folder, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"{extra}: line 1, ")


def test_empty_folder_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert problems(tmp_path, capsys) == [f"{tmp_path}: no *.yaml files in this folder"]


def test_missing_path_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert problems(missing, capsys) == [f"{missing}: no such file or folder"]


def test_file_whose_top_level_is_a_list_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "team.yaml"
    file.write_text("- team\n- rotation\n")
    assert problems(file, capsys) == [f"{file}: must be a mapping of top-level keys"]


def test_non_utf8_file_is_reported(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runbooks = folder / "runbooks.yaml"
    runbooks.write_bytes(b"# caf\xe9 runbooks\n" + runbooks.read_bytes())
    assert problems(folder, capsys) == [
        f"{runbooks}: cannot be read: 'utf-8' codec can't decode byte 0xe9 in position 5: "
        "invalid continuation byte"
    ]


# --- names that are not team members -----------------------------------------------------


def test_unknown_pipeline_owner_is_reported_at_its_key_path(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = folder / "pipelines.yaml"
    edit(pipelines, "{primary: Dana, secondary: Alice}", "{primary: Eve, secondary: Alice}")
    assert problems(folder, capsys) == [
        f"{pipelines}: pipelines[2].owners.primary: 'Eve' is not a team member"
    ]


def test_load_team_model_lists_the_problem_with_path_message_and_file(folder: Path) -> None:
    pipelines = folder / "pipelines.yaml"
    edit(pipelines, "{primary: Dana, secondary: Alice}", "{primary: Eve, secondary: Alice}")
    with pytest.raises(ConfigError) as caught:
        load_team_model(folder)
    assert caught.value.problems == [
        ConfigProblem("pipelines[2].owners.primary", "'Eve' is not a team member", str(pipelines))
    ]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param(
            Change(
                "team.yaml",
                "order: [Alice, Bob, Charlie, Dana]",
                "order: [Alice, Bob, Mallory, Dana]",
            ),
            "rotation.order[2]",
            id="rotation-order",
        ),
        pytest.param(
            Change(
                "team.yaml",
                "leave: []",
                "leave: [{who: Mallory, from: 2026-12-01, to: 2026-12-05, reason: vacation}]",
            ),
            "leave[0].who",
            id="leave",
        ),
        pytest.param(
            Change(
                "team.yaml",
                "overrides: []",
                "overrides: [{slot: primary, who: Mallory, from: 2026-12-10T09:00,"
                " to: 2026-12-11T09:00}]",
            ),
            "overrides[0].who",
            id="override",
        ),
        pytest.param(
            Change(
                "escalation.yaml",
                'notify: ["owner:primary", "owner:secondary"]',
                'notify: ["owner:primary", "person:Mallory"]',
            ),
            "escalation_policies.investor.steps[2].notify[1]",
            id="person-target",
        ),
    ],
)
def test_unknown_member_is_reported_where_it_is_named(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    where: str,
) -> None:
    changed = change.apply(folder)
    assert problems(folder, capsys) == [f"{changed}: {where}: 'Mallory' is not a team member"]


# --- field values ------------------------------------------------------------------------


def test_bad_timezone_is_reported(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    team = folder / "team.yaml"
    edit(team, "timezone: America/New_York", "timezone: Mars/Olympus")
    assert problems(folder, capsys) == [
        f"{team}: team.timezone: 'Mars/Olympus' is not an IANA timezone (e.g. America/New_York)"
    ]


def test_timezone_naming_a_zone_folder_is_a_problem_not_a_traceback(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`America` is a folder in the tz database, not a zone: ZoneInfo raises an OSError."""
    team = folder / "team.yaml"
    edit(team, "timezone: America/New_York", "timezone: America")
    lines = problems(folder, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"{team}: team.timezone: 'America' is not an IANA timezone")


@pytest.mark.parametrize(
    ("calendar", "named"),
    [
        pytest.param("{country: XX}", "'XX'", id="country"),
        pytest.param("{country: US, subdivision: XX}", "'US/XX'", id="subdivision"),
    ],
)
def test_unknown_holiday_calendar_is_reported(
    folder: Path, capsys: pytest.CaptureFixture[str], calendar: str, named: str
) -> None:
    team = folder / "team.yaml"
    edit(team, "holidays: {country: US}", f"holidays: {calendar}")
    assert problems(folder, capsys) == [
        f"{team}: team.holidays: {named} is not a country/subdivision the holidays package knows"
    ]


def test_duplicate_pipeline_id_is_reported_for_each_copy(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = folder / "pipelines.yaml"
    edit(pipelines, "id: daily-growth-experiments", "id: aggregate-profit")
    assert problems(folder, capsys) == [
        f"{pipelines}: pipelines[1].id: duplicate pipeline id 'aggregate-profit'",
        f"{pipelines}: pipelines[3].id: duplicate pipeline id 'aggregate-profit'",
    ]


def test_missing_top_level_section_is_reported(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing section has no file to name, so the line names the folder."""
    cut_from(folder / "pipelines.yaml", "routing:")
    assert problems(folder, capsys) == [f"{folder}: routing: Field required"]


def test_missing_pipeline_name_is_reported(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = folder / "pipelines.yaml"
    edit(pipelines, "    name: Unit-level profit for experiments\n", "")
    assert problems(folder, capsys) == [f"{pipelines}: pipelines[0].name: Field required"]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        pytest.param(
            Change(
                "team.yaml",
                "order: [Alice, Bob, Charlie, Dana]",
                "order: Alice, Bob, Charlie, Dana",
            ),
            "rotation.order: Input should be a valid list (got 'Alice, Bob, Charlie, Dana')",
            id="order-is-a-string",
        ),
        pytest.param(
            Change("escalation.yaml", "repeat: 2", 'repeat: "two"'),
            "escalation_policies.investor.repeat: Input should be a valid integer, "
            "unable to parse string as an integer (got 'two')",
            id="repeat-is-a-word",
        ),
        pytest.param(
            Change(
                "escalation.yaml",
                '{after: 10m, notify: ["oncall:backup"]}',
                '{after: 10x, notify: ["oncall:backup"]}',
            ),
            "escalation_policies.investor.steps[1].after: '10x' is not a duration: "
            "use a number and a unit s, m, h, d or w (e.g. 10m, 7d)",
            id="bad-duration",
        ),
        pytest.param(
            Change("pipelines.yaml", "pipeline_label: pipeline", "pipline_label: pipeline"),
            "routing.pipline_label: Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            Change(
                "team.yaml", "leave: []", "leave: [{who: Alice, from: 2026-12-05, to: 2026-12-01}]"
            ),
            "leave[0].to: must be after `from`",
            id="leave-ends-before-it-starts",
        ),
    ],
)
def test_bad_value_is_reported_at_its_key_path(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    line: str,
) -> None:
    changed = change.apply(folder)
    assert problems(folder, capsys) == [f"{changed}: {line}"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param(
            Change("team.yaml", "length: 7d", "length: 9999999999d"),
            "rotation.length",
            id="duration",
        ),
        pytest.param(
            Change(
                "team.yaml", "leave: []", "leave: [{who: Alice, from: 2026-12-31, to: 9999-12-31}]"
            ),
            "leave[0].to: must be between the years 1900 and 2999",
            id="leave-on-the-last-representable-day",
        ),
    ],
)
def test_out_of_range_value_is_a_problem_not_a_traceback(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    where: str,
) -> None:
    changed = change.apply(folder)
    lines = problems(folder, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"{changed}: {where}")


# --- references between sections --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "line"),
    [
        pytest.param(
            Change("pipelines.yaml", "runbook: aggregate-growth", "runbook: aggregate-growht"),
            "pipelines[2].runbook: no runbook named 'aggregate-growht'",
            id="runbook",
        ),
        pytest.param(
            Change(
                "pipelines.yaml",
                "runbook: aggregate-growth\n    escalation: investor",
                "runbook: aggregate-growth\n    escalation: investors",
            ),
            "pipelines[2].escalation: no escalation policy named 'investors'",
            id="escalation-policy",
        ),
        pytest.param(
            Change(
                "pipelines.yaml", "fallback_escalation: investor", "fallback_escalation: critical"
            ),
            "routing.fallback_escalation: no escalation policy named 'critical'",
            id="fallback-escalation",
        ),
        pytest.param(
            Change(
                "escalation.yaml",
                'notify: ["oncall:primary"]}\n\n# Shared',
                'notify: ["oncall:primary", "channel:ops-room"]}\n\n# Shared',
            ),
            "escalation_policies.experiment.steps[2].notify[1]: no channel named 'ops-room'",
            id="channel",
        ),
    ],
)
def test_reference_to_a_missing_name_is_reported(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    line: str,
) -> None:
    changed = change.apply(folder)
    assert problems(folder, capsys) == [f"{changed}: {line}"]


# --- many problems, and secrets ----------------------------------------------------------


def test_several_reference_problems_give_one_line_each(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team, pipelines = folder / "team.yaml", folder / "pipelines.yaml"
    edit(pipelines, "{primary: Dana, secondary: Alice}", "{primary: Eve, secondary: Alice}")
    edit(pipelines, "runbook: aggregate-profit", "runbook: aggregate-profits")
    edit(team, "order: [Alice, Bob, Charlie, Dana]", "order: [Alice, Bob, Mallory, Dana]")
    assert sorted(problems(folder, capsys)) == sorted(
        [
            f"{pipelines}: pipelines[2].owners.primary: 'Eve' is not a team member",
            f"{pipelines}: pipelines[1].runbook: no runbook named 'aggregate-profits'",
            f"{team}: rotation.order[2]: 'Mallory' is not a team member",
        ]
    )


def test_several_value_problems_give_one_line_each(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team, pipelines = folder / "team.yaml", folder / "pipelines.yaml"
    escalation = folder / "escalation.yaml"
    edit(team, "timezone: America/New_York", "timezone: Mars/Olympus")
    edit(escalation, "repeat_after: 10m", "repeat_after: 10x")
    edit(pipelines, "pipeline_label: pipeline", "pipline_label: pipeline")
    assert sorted(problems(folder, capsys)) == sorted(
        [
            f"{team}: team.timezone: 'Mars/Olympus' is not an IANA timezone "
            "(e.g. America/New_York)",
            f"{escalation}: escalation_policies.investor.repeat_after: '10x' is not a duration: "
            "use a number and a unit s, m, h, d or w (e.g. 10m, 7d)",
            f"{pipelines}: routing.pipline_label: Extra inputs are not permitted",
        ]
    )


def test_problems_in_several_files_are_all_reported(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that does not parse does not hide a key defined twice in two other files."""
    runbooks, extra = folder / "runbooks.yaml", folder / "extra.yaml"
    runbooks.write_text("runbooks: [unclosed\n")
    extra.write_text("channels: {}\n")
    lines = problems(folder, capsys)
    assert len(lines) == 2
    assert f"{extra}: channels: defined in both escalation.yaml and extra.yaml" in lines
    assert any(line.startswith(f"{runbooks}: line 2, column 1: ") for line in lines)


def test_integration_key_used_by_two_pipelines_is_reported_without_its_value(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = folder / "pipelines.yaml"
    keys = f"\n    integration_keys: [{SECRET}]"
    for policy, next_id in (
        ("investor", "aggregate-growth"),
        ("experiment", "aggregate-engagement"),
    ):
        end_of_entry = f"escalation: {policy}\n\n  - id: {next_id}"
        edit(pipelines, end_of_entry, end_of_entry.replace(policy, f"{policy}{keys}", 1))
    lines = problems(folder, capsys)
    assert lines == [
        f"{pipelines}: pipelines[1].integration_keys[0]: used more than once",
        f"{pipelines}: pipelines[3].integration_keys[0]: used more than once",
    ]
    assert not any(SECRET in text for text in lines)


@pytest.mark.parametrize(
    ("change", "line"),
    [
        pytest.param(
            Change(
                "pipelines.yaml",
                "runbook: aggregate-profit\n",
                f"runbook: aggregate-profit\n    integration_keys: {SECRET}\n",
            ),
            "pipelines[1].integration_keys: Input should be a valid list",
            id="integration-keys-not-a-list",
        ),
        pytest.param(
            Change(
                "escalation.yaml",
                "channels: {}",
                "channels: {ops: {type: webhook, url: 'https://chat.example/hooks/T000',"
                f" secret: [{SECRET}]}}}}",
            ),
            "channels.ops.secret: Input should be a valid string",
            id="channel-secret-not-a-string",
        ),
    ],
)
def test_mistyped_secret_is_reported_without_its_value(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    line: str,
) -> None:
    changed = change.apply(folder)
    lines = problems(folder, capsys)
    assert lines == [f"{changed}: {line}"]
    assert not any(SECRET in text for text in lines)
