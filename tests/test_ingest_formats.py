"""SPEC section 3, the inbound formats: each sender's body becomes the router's `Alert`s.

The fixtures in `tests/fixtures/` are shaped after each sender's documentation and source:
Alertmanager's `notify/webhook` Message (version "4"), Grafana's webhook notifier body
(version "1"), PagerDuty's Events API v2 `POST /v2/enqueue`, and the router's own alert.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.ingest import alertmanager, generic, grafana, pagerduty
from router.ingest.common import InvalidAlertError, TooDeepError, clean_text
from router.ingest.pagerduty import PagerDutyEvent
from router.model import Alert, Link
from router.web.body import BadJsonError, decode_json

FIXTURES = Path(__file__).parent / "fixtures"
Parser = Callable[[object], Sequence[object]]


def load(name: str) -> Any:
    """A fixture body, parsed from its JSON file."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def parse_alertmanager(document: object) -> list[Alert]:
    return alertmanager.parse(document, pipeline_label="pipeline")


def parse_grafana(document: object) -> list[Alert]:
    return grafana.parse(document, pipeline_label="pipeline")


def parse_pagerduty(document: object) -> list[PagerDutyEvent]:
    return [pagerduty.parse_event(document)]


def at(text: str) -> datetime:
    """A UTC instant written as `2026-11-24 14:03:26.739266`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


STALE_GROUP = '{}/{severity="critical"}:{alertname="PipelineStale"}'
AM_FIRING = [
    Alert(
        source="alertmanager",
        action="trigger",
        name="PipelineStale",
        summary="aggregate-profit has not completed for 3h",
        severity="critical",
        pipeline="aggregate-profit",
        labels={
            "alertname": "PipelineStale",
            "instance": "airflow-worker-2:9102",
            "job": "airflow",
            "pipeline": "aggregate-profit",
            "severity": "critical",
        },
        details={
            "summary": "aggregate-profit has not completed for 3h",
            "description": "Last successful run of aggregate-profit finished 3h12m ago; "
            "expected hourly.",
            "runbook_url": "https://wiki.example.org/runbooks/aggregate-profit",
            "dashboard_url": "https://grafana.example.org/d/pipelines",
            "fingerprint": "1a30ba71cca2921f",
            "group_key": STALE_GROUP,
            "ends_at": None,
            "truncated_alerts": 2,
        },
        links=(
            Link(
                "http://prometheus.example.org:9090/graph?g0.expr=time%28%29+-+"
                "pipeline_last_success_timestamp+%3E+10800&g0.tab=1",
                "Source",
            ),
            Link("https://wiki.example.org/runbooks/aggregate-profit", "Runbook"),
            Link("https://grafana.example.org/d/pipelines", "Dashboard"),
        ),
        starts_at=at("2026-11-24 14:03:26.739266"),
    ),
    Alert(
        source="alertmanager",
        action="trigger",
        name="PipelineStale",
        summary="A DAG without a pipeline label has not completed for 3h.",
        severity="critical",
        pipeline=None,
        labels={
            "alertname": "PipelineStale",
            "instance": "airflow-worker-1:9102",
            "job": "airflow",
            "severity": "critical",
        },
        details={
            "description": "A DAG without a pipeline label has not completed for 3h.",
            "fingerprint": "c6eadffa33fcdf37",
            "group_key": STALE_GROUP,
            "ends_at": None,
            "truncated_alerts": 2,
        },
        links=(),
        starts_at=at("2026-11-24 14:03:26.100000"),
    ),
]
AM_RESOLVED = [
    Alert(
        source="alertmanager",
        action="resolve",
        name="RowCountDrop",
        summary="aggregate-growth wrote 40% fewer rows than last week",
        severity="warning",
        pipeline="aggregate-growth",
        labels={"alertname": "RowCountDrop", "pipeline": "aggregate-growth", "severity": "warning"},
        details={
            "summary": "aggregate-growth wrote 40% fewer rows than last week",
            "fingerprint": "bc97ff14869b13e3",
            "group_key": '{}:{alertname="RowCountDrop"}',
            "ends_at": "2026-11-24T10:15:00+00:00",
        },
        links=(
            Link(
                "http://prometheus.example.org:9090/graph?g0.expr=row_count_ratio+%3C+0.6&g0.tab=1",
                "Source",
            ),
        ),
        starts_at=at("2026-11-24 09:00:00"),
    )
]
LAG_DASHBOARD = "https://grafana.example.org/d/eng-lag?from=1795592463157&orgId=1&to=1795599663157"
LAG_GROUP = '{}/{grafana_folder="Data pipelines"}:{alertname="Engagement events lagging"}'
LAG_VALUES = (
    "[ var='B' labels={topic=engagement-events} value=61234.5 ], "
    "[ var='C' labels={topic=engagement-events} value=1 ]"
)
GRAFANA_FIRING = [
    Alert(
        source="grafana",
        action="trigger",
        name="Engagement events lagging",
        summary="Kafka consumer lag on engagement-events is above 50000 messages.",
        severity="warning",
        pipeline="aggregate-engagement",
        labels={
            "alertname": "Engagement events lagging",
            "grafana_folder": "Data pipelines",
            "pipeline": "aggregate-engagement",
            "severity": "warning",
        },
        details={
            "description": "Kafka consumer lag on engagement-events is above 50000 messages.",
            "runbook_url": "https://wiki.example.org/runbooks/aggregate-engagement",
            "fingerprint": "a2f64f1ff6c3a7b9",
            "group_key": LAG_GROUP,
            "ends_at": None,
            "values": {"B": 61234.5, "C": 1.0},
            "value_string": LAG_VALUES,
        },
        links=(
            Link(
                "https://grafana.example.org/alerting/grafana/cdk0q9mjmcsn4d/view?orgId=1",
                "Source",
            ),
            Link("https://wiki.example.org/runbooks/aggregate-engagement", "Runbook"),
            Link(LAG_DASHBOARD, "Dashboard"),
            Link(f"{LAG_DASHBOARD}&viewPanel=4", "Panel"),
            Link(
                "https://grafana.example.org/alerting/silence/new?alertmanager=grafana"
                "&matcher=pipeline%3Daggregate-engagement&orgId=1",
                "Silence",
            ),
        ),
        starts_at=at("2026-11-24 07:51:03.157076"),
    ),
    Alert(
        source="grafana",
        action="resolve",
        name="Daily growth experiments late",
        summary="daily-growth-experiments finished late",
        severity="error",
        pipeline="daily-growth-experiments",
        labels={
            "alertname": "Daily growth experiments late",
            "pipeline": "daily-growth-experiments",
        },
        details={
            "summary": "daily-growth-experiments finished late",
            "fingerprint": "0f3e9b1c2d4a5e6f",
            "group_key": LAG_GROUP,
            "ends_at": "2026-11-24T07:30:00+00:00",
        },
        links=(
            Link("https://grafana.example.org/alerting/grafana/x81mq0a9bc/view?orgId=1", "Source"),
        ),
        starts_at=at("2026-11-24 06:00:00"),
    ),
]
PD_KEY = "R0UTINGKEY0AGGREGATEPROFIT000001"
PD_TRIGGER = [
    PagerDutyEvent(
        routing_key=PD_KEY,
        alert=Alert(
            source="pagerduty",
            action="trigger",
            name="COGS table has 412 null cost rows for 2026-11-23",
            summary="COGS table has 412 null cost rows for 2026-11-23",
            severity="error",
            pipeline=None,
            labels={},
            details={
                "null rows": 412,
                "model": "fct_cogs_daily",
                "checked_by": "dbt test",
                "component": "cogs_daily",
                "group": "finance-models",
                "class": "data quality",
                "source": "dbt-prod-runner-01",
                "client": "dbt Cloud",
                "images": [
                    {
                        "src": "https://charts.example.org/cogs-nulls.png",
                        "href": "https://grafana.example.org/d/cogs",
                        "alt": "Null COGS rows",
                    }
                ],
            },
            links=(
                Link("https://dbt.example.org/runs/8841", "dbt run 8841"),
                Link(
                    "https://dbt.example.org/models/fct_cogs_daily",
                    "https://dbt.example.org/models/fct_cogs_daily",
                ),
                Link("https://dbt.example.org", "dbt Cloud"),
            ),
            dedup_key="aggregate-profit/cogs-nulls",
            starts_at=at("2026-11-24 08:42:58.315000"),
        ),
    )
]
PD_RESOLVE = [
    PagerDutyEvent(
        routing_key=PD_KEY,
        alert=Alert(
            source="pagerduty",
            action="resolve",
            name="aggregate-profit/cogs-nulls",
            summary="aggregate-profit/cogs-nulls resolved",
            dedup_key="aggregate-profit/cogs-nulls",
        ),
    )
]
GENERIC = [
    Alert(
        source="generic",
        action="trigger",
        name="EmptyExport",
        summary="Experiment assignment export is empty for 2026-11-24",
        severity="warning",
        pipeline="unit-profit-experiments",
        labels={"alertname": "EmptyExport", "env": "prod"},
        details={
            "rows": 0,
            "expected_at_least": 1000,
            "tables": ["assignments", "exposures"],
            "source": "nightly-export.sh",
        },
        links=(
            Link("https://airflow.example.org/dags/unit_profit_export", "Airflow DAG"),
            Link(
                "https://wiki.example.org/runbooks/unit-profit-experiments",
                "https://wiki.example.org/runbooks/unit-profit-experiments",
            ),
        ),
        dedup_key="unit-profit-experiments/empty-export/2026-11-24",
    )
]


@pytest.mark.parametrize(
    ("fixture", "parse", "expected"),
    [
        pytest.param("alertmanager_firing", parse_alertmanager, AM_FIRING, id="am-firing"),
        pytest.param("alertmanager_resolved", parse_alertmanager, AM_RESOLVED, id="am-resolved"),
        pytest.param("grafana_firing", parse_grafana, GRAFANA_FIRING, id="grafana-mixed"),
        pytest.param("pagerduty_trigger", parse_pagerduty, PD_TRIGGER, id="pd-trigger"),
        pytest.param("pagerduty_resolve", parse_pagerduty, PD_RESOLVE, id="pd-resolve"),
        pytest.param("generic", generic.parse, GENERIC, id="generic"),
    ],
)
def test_each_sender_fixture_parses_to_the_expected_alerts(
    fixture: str, parse: Parser, expected: list[object]
) -> None:
    assert list(parse(load(fixture))) == expected


def changed(fixture: str, path: tuple[str | int, ...], value: object) -> Any:
    """The fixture with the value at `path` replaced by `value` (or removed, for `MISSING`)."""
    document = load(fixture)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


MISSING = object()
AM, GF, PD, GEN = "alertmanager_firing", "grafana_firing", "pagerduty_trigger", "generic"
PD_ACK = {"routing_key": PD_KEY, "event_action": "acknowledge"}


@pytest.mark.parametrize(
    ("parse", "document", "paths"),
    [
        pytest.param(parse_alertmanager, changed(AM, ("version",), "3"), ["version"], id="am-v3"),
        pytest.param(parse_alertmanager, changed(AM, ("version",), 4), ["version"], id="am-v-int"),
        pytest.param(parse_alertmanager, [load(AM)], ["(body)"], id="am-list"),
        pytest.param(parse_alertmanager, "alerts", ["(body)"], id="am-string"),
        pytest.param(parse_alertmanager, None, ["(body)"], id="am-null"),
        pytest.param(
            parse_alertmanager, changed(AM, ("alerts",), MISSING), ["alerts"], id="am-no-alerts"
        ),
        pytest.param(
            parse_alertmanager,
            changed(AM, ("alerts", 0, "labels"), MISSING),
            ["alerts[0].labels"],
            id="am-no-labels",
        ),
        pytest.param(
            parse_alertmanager,
            changed(AM, ("alerts", 0, "labels"), ["alertname"]),
            ["alerts[0].labels"],
            id="am-labels-list",
        ),
        pytest.param(
            parse_alertmanager,
            changed(AM, ("alerts", 0, "labels", "job"), 7),
            ["alerts[0].labels.job"],
            id="am-label-int",
        ),
        pytest.param(
            parse_alertmanager,
            changed(AM, ("alerts", 1, "status"), "pending"),
            ["alerts[1].status"],
            id="am-bad-status",
        ),
        pytest.param(
            parse_alertmanager,
            changed(AM, ("alerts", 0, "startsAt"), "yesterday"),
            ["alerts[0].startsAt"],
            id="am-bad-time",
        ),
        pytest.param(
            parse_alertmanager,
            changed(AM, ("truncatedAlerts",), "2"),
            ["truncatedAlerts"],
            id="am-truncated-text",
        ),
        pytest.param(parse_grafana, changed(GF, ("version",), "4"), ["version"], id="gf-v4"),
        pytest.param(
            parse_grafana,
            {"ruleName": "legacy", "state": "alerting", "evalMatches": []},
            ["version", "alerts"],
            id="gf-legacy-body",
        ),
        pytest.param(
            parse_grafana,
            changed(GF, ("alerts", 0, "values", "B"), "high"),
            ["alerts[0].values.B"],
            id="gf-value-text",
        ),
        pytest.param(parse_grafana, changed(GF, ("orgId",), "1"), ["orgId"], id="gf-org-text"),
        pytest.param(parse_grafana, 42, ["(body)"], id="gf-number"),
        pytest.param(
            generic.parse, changed(GEN, ("severity",), "urgent"), ["severity"], id="gen-sev"
        ),
        pytest.param(generic.parse, changed(GEN, ("severity",), 3), ["severity"], id="gen-sev-int"),
        pytest.param(
            generic.parse, changed(GEN, ("pipeline",), MISSING), ["pipeline"], id="gen-no-pipe"
        ),
        pytest.param(
            generic.parse, changed(GEN, ("pipeline",), "  "), ["pipeline"], id="gen-blank-pipe"
        ),
        pytest.param(
            generic.parse, changed(GEN, ("summary",), "x" * 1025), ["summary"], id="gen-long"
        ),
        pytest.param(
            generic.parse, changed(GEN, ("summary",), ""), ["summary"], id="gen-empty-sum"
        ),
        pytest.param(generic.parse, changed(GEN, ("status",), "open"), ["status"], id="gen-status"),
        pytest.param(
            generic.parse, changed(GEN, ("labels", "env"), 1), ["labels.env"], id="gen-label"
        ),
        pytest.param(
            generic.parse, changed(GEN, ("dedup_key",), "k" * 256), ["dedup_key"], id="gen-key"
        ),
        pytest.param(
            generic.parse,
            changed(GEN, ("links", 0, "href"), MISSING),
            ["links[0].href"],
            id="gen-link",
        ),
        pytest.param(generic.parse, [load(GEN)], ["(body)"], id="gen-list"),
        pytest.param(
            parse_pagerduty,
            changed(PD, ("event_action",), "escalate"),
            ["event_action"],
            id="pd-action",
        ),
        pytest.param(
            parse_pagerduty,
            changed(PD, ("event_action",), MISSING),
            ["event_action"],
            id="pd-no-action",
        ),
        pytest.param(parse_pagerduty, PD_ACK, ["dedup_key"], id="pd-ack-no-key"),
        pytest.param(
            parse_pagerduty, {**PD_ACK, "dedup_key": ""}, ["dedup_key"], id="pd-ack-empty-key"
        ),
        pytest.param(
            parse_pagerduty, changed(PD, ("payload",), MISSING), ["payload"], id="pd-no-payload"
        ),
        pytest.param(
            parse_pagerduty,
            {**load(PD), "payload": {"severity": "error"}},
            ["payload.source", "payload.summary"],
            id="pd-payload-missing-fields",
        ),
        pytest.param(
            parse_pagerduty,
            changed(PD, ("payload", "severity"), "fatal"),
            ["payload.severity"],
            id="pd-severity",
        ),
        pytest.param(
            parse_pagerduty,
            changed(PD, ("payload", "summary"), "s" * 1025),
            ["payload.summary"],
            id="pd-long-summary",
        ),
        pytest.param(
            parse_pagerduty, changed(PD, ("dedup_key",), "k" * 256), ["dedup_key"], id="pd-long-key"
        ),
        pytest.param(
            parse_pagerduty, changed(PD, ("routing_key",), MISSING), ["routing_key"], id="pd-no-key"
        ),
        pytest.param(parse_pagerduty, None, ["(body)"], id="pd-null"),
    ],
)
def test_a_wrongly_shaped_body_is_refused_with_the_field_paths(
    parse: Parser, document: object, paths: list[str]
) -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse(document)
    assert sorted(detail["path"] for detail in caught.value.details) == sorted(paths)
    assert all(detail["message"] for detail in caught.value.details)


@pytest.mark.parametrize(
    ("parse", "fixture"), [(parse_alertmanager, AM), (parse_grafana, GF)], ids=["am", "grafana"]
)
def test_a_group_with_no_alerts_is_valid_and_yields_none(parse: Parser, fixture: str) -> None:
    assert list(parse(changed(fixture, ("alerts",), []))) == []


@pytest.mark.parametrize(
    ("parse", "fixture"), [(parse_alertmanager, AM), (parse_grafana, GF)], ids=["am", "grafana"]
)
def test_ten_thousand_labels_on_one_alert_all_arrive(parse: Parser, fixture: str) -> None:
    labels = {f"label_{n:05}": f"value {n}" for n in range(10_000)}
    alert = parse(changed(fixture, ("alerts", 0, "labels"), {**labels, "alertname": "Wide"}))[0]
    assert isinstance(alert, Alert)
    assert len(alert.labels) == 10_001
    assert alert.labels["label_09999"] == "value 9999"


def test_ten_thousand_wrong_labels_report_at_most_twenty_problems() -> None:
    labels = {f"label_{n:05}": n for n in range(10_000)}
    with pytest.raises(InvalidAlertError) as caught:
        parse_alertmanager(changed(AM, ("alerts", 0, "labels"), labels))
    assert len(caught.value.details) == 20
    assert caught.value.details[0]["path"] == "alerts[0].labels.label_00000"


def received(document: object) -> object:
    """`document` as the router receives it: sent as JSON, read through `decode_json`, the
    one door that cleans NUL and lone surrogates for every format."""
    return decode_json(json.dumps(document).encode())


NUL_LABELS = {"alertname": "Nul\x00Name", "team": "data\x00eng 🚀", "🔥\x00": "yes"}
CLEAN_LABELS = {"alertname": "Nul\ufffdName", "team": "data\ufffdeng 🚀", "🔥\ufffd": "yes"}


@pytest.mark.parametrize(
    ("parse", "fixture"), [(parse_alertmanager, AM), (parse_grafana, GF)], ids=["am", "grafana"]
)
def test_nul_in_labels_and_annotations_is_replaced_and_emoji_survive(
    parse: Parser, fixture: str
) -> None:
    document = changed(fixture, ("alerts", 0, "labels"), NUL_LABELS)
    document["alerts"][0]["annotations"] = {"summary": "rows \x00 lost 📉"}
    alert = parse(received(document))[0]
    assert isinstance(alert, Alert)
    assert dict(alert.labels) == CLEAN_LABELS
    assert (alert.name, alert.summary) == ("Nul\ufffdName", "rows \ufffd lost 📉")
    assert alert.details["summary"] == "rows \ufffd lost 📉"


def test_nul_in_generic_and_pagerduty_text_is_replaced() -> None:
    generic_alert = generic.parse(received({**load(GEN), "details": {"note\x00": ["a\x00b"]}}))[0]
    assert generic_alert.details["note\ufffd"] == ["a\ufffdb"]
    trigger = changed(PD, ("payload", "custom_details"), {"log": "x\x00y 🐛"})
    assert pagerduty.parse_event(received(trigger)).alert.details["log"] == "x\ufffdy 🐛"


@pytest.mark.parametrize(
    ("parse", "fixture"),
    [(parse_alertmanager, AM), (parse_grafana, GF), (parse_pagerduty, PD), (generic.parse, GEN)],
    ids=["am", "grafana", "pd", "generic"],
)
def test_unknown_fields_from_a_newer_sender_are_ignored(parse: Parser, fixture: str) -> None:
    document = load(fixture)
    document["someFutureField"] = {"nested": [1, 2]}
    if "alerts" in document:
        document["alerts"][0]["anotherNewField"] = True
    assert list(parse(document)) == list(parse(load(fixture)))


def test_parsing_leaves_the_callers_document_unchanged() -> None:
    document = changed(AM, ("alerts", 0, "labels", "team"), "a\x00b")
    before = copy.deepcopy(document)
    parse_alertmanager(document)
    assert document == before


def test_the_pipeline_comes_from_the_configured_label() -> None:
    document = changed(AM, ("alerts", 0, "labels", "dag"), "aggregate-growth")
    alert = alertmanager.parse(document, pipeline_label="dag")[0]
    assert alert.pipeline == "aggregate-growth"


def test_an_empty_pipeline_label_means_no_pipeline() -> None:
    document = changed(AM, ("alerts", 0, "labels", "pipeline"), "")
    assert parse_alertmanager(document)[0].pipeline is None


@pytest.mark.parametrize(
    ("labels", "annotations", "name", "summary"),
    [
        ({"alertname": "A"}, {"summary": "S", "description": "D"}, "A", "S"),
        ({"alertname": "A"}, {"summary": " ", "description": "D"}, "A", "D"),
        ({"alertname": "A"}, {}, "A", "A"),
        ({"job": "x"}, {}, "unnamed alert", "unnamed alert"),
    ],
    ids=["summary", "blank-summary-then-description", "alertname", "nothing"],
)
def test_name_and_summary_fall_back_in_order(
    labels: dict[str, str], annotations: dict[str, str], name: str, summary: str
) -> None:
    document = changed(AM, ("alerts",), [{"status": "firing", "labels": labels}])
    document["alerts"][0]["annotations"] = annotations
    alert = parse_alertmanager(document)[0]
    assert (alert.name, alert.summary) == (name, summary)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("P1", "critical"), ("warn", "warning"), (None, "error")],
)
def test_alertmanager_severity_label_is_normalized(severity: str | None, expected: str) -> None:
    labels = {"alertname": "A"} | ({"severity": severity} if severity else {})
    document = changed(AM, ("alerts",), [{"status": "firing", "labels": labels}])
    assert parse_alertmanager(document)[0].severity == expected


def test_null_maps_from_go_senders_are_read_as_empty() -> None:
    document = changed(GF, ("commonAnnotations",), None)
    document["alerts"][0]["annotations"] = None
    alert = parse_grafana(document)[0]
    assert alert.summary == "Engagement events lagging"
    assert "values" in alert.details


def test_an_unset_go_time_is_none_and_a_set_one_is_kept() -> None:
    document = changed(AM, ("alerts", 0, "startsAt"), "0001-01-01T00:00:00Z")
    document["alerts"][0]["endsAt"] = "2026-11-24T15:00:00+01:00"
    alert = parse_alertmanager(document)[0]
    assert alert.starts_at is None
    assert alert.details["ends_at"] == "2026-11-24T15:00:00+01:00"


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"name": "Given"}, "Given"),
        ({}, "EmptyExport"),
        ({"labels": {}}, "Experiment assignment export is empty for 2026-11-24"),
    ],
    ids=["given", "alertname-label", "summary"],
)
def test_generic_name_defaults_to_alertname_then_summary(
    changes: dict[str, Any], name: str
) -> None:
    assert generic.parse({**load(GEN), **changes})[0].name == name


def test_generic_resolved_status_resolves_and_source_stays_generic() -> None:
    alert = generic.parse({**load(GEN), "status": "resolved", "source": "cron@etl-1"})[0]
    assert (alert.action, alert.source, alert.details["source"]) == (
        "resolve",
        "generic",
        "cron@etl-1",
    )


def test_generic_needs_only_its_four_required_fields() -> None:
    body = {"pipeline": "p", "summary": "s", "severity": "INFO", "status": "firing"}
    assert generic.parse(body) == [
        Alert(
            source="generic", action="trigger", name="s", summary="s", severity="info", pipeline="p"
        )
    ]


def test_pagerduty_trigger_without_dedup_key_leaves_it_to_the_handler() -> None:
    for document in (changed(PD, ("dedup_key",), MISSING), changed(PD, ("dedup_key",), "")):
        assert pagerduty.parse_event(document).alert.dedup_key is None


def test_pagerduty_summary_of_exactly_1024_characters_is_accepted() -> None:
    event = pagerduty.parse_event(changed(PD, ("payload", "summary"), "s" * 1024))
    assert len(event.alert.summary) == 1024


def test_pagerduty_acknowledge_needs_no_payload_and_keeps_a_summary_if_sent() -> None:
    bare = pagerduty.parse_event({**PD_ACK, "dedup_key": "k1"}).alert
    assert (bare.action, bare.dedup_key, bare.summary) == ("acknowledge", "k1", "k1 acknowledged")
    told = {**PD_ACK, "dedup_key": "k1", "payload": {"summary": "on it"}}
    assert pagerduty.parse_event(told).alert.summary == "on it"


def test_pagerduty_severity_is_case_insensitive() -> None:
    event = pagerduty.parse_event(changed(PD, ("payload", "severity"), "Critical"))
    assert event.alert.severity == "critical"


def test_pagerduty_custom_details_that_are_not_an_object_are_kept_whole() -> None:
    event = pagerduty.parse_event(changed(PD, ("payload", "custom_details"), "disk 97% full"))
    assert event.alert.details["custom_details"] == "disk 97% full"


BODIES_FOR_THE_SHORTCUT = [
    '{"summary": "plain ASCII", "labels": {"a": "b"}}',
    '{"summary": "caf\\u00e9 \\ud83d\\ude80 ok"}',  # escapes, a valid surrogate pair
    '{"summary": "nul \\u0000 here"}',
    '{"summary": "lone \\udc00 surrogate"}',
    '{"summary": "a backslash then u0000: \\\\u0000"}',  # text, not an escape
    '{"a": ' + "[" * 40 + "1" + "]" * 40 + "}",
    "[" * 70 + "]" * 70,  # past MAX_DEPTH: refused either way
]


@pytest.mark.parametrize("text", BODIES_FOR_THE_SHORTCUT)
def test_decoding_skips_the_cleaning_walk_only_when_it_would_change_nothing(text: str) -> None:
    """decode_json walks the value only when an escape or the bracket count says it may
    have to; the answer must be the walk's own."""
    try:
        expected: object = clean_text(json.loads(text))
    except TooDeepError:
        with pytest.raises(BadJsonError, match="nested too deeply"):
            decode_json(text.encode())
        return
    assert decode_json(text.encode()) == expected
