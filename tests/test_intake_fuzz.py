"""SPEC sections 3 and 4 under fuzzing: whatever a sender with a valid token posts to a receiver
(any JSON value, a real body with any of its values swapped, removed or added to, any bytes),
the router answers in the shape the README documents and never with a 5xx; an accepted alert
can be read back, cleaned of NUL and lone surrogates, on the pipeline it named; and `/healthz`
still answers 200 after every example.

Each test builds one app (one SQLite file) and Hypothesis runs all its examples against it, so an
example also meets whatever the earlier ones stored. Examples are derandomized and few, so every
CI run sends the same bodies and the file takes seconds. `--hypothesis-show-statistics` shows
how often each receiver answered which status.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

from router.incidents import Change
from router.timeutil import FIRST_YEAR, LAST_YEAR

from apphelpers import AUTH_JSON, Client, MakeClient, fixture, incident_detail, json_of
from test_intake_http import (
    AM,
    GENERIC,
    GRAFANA,
    INTEGRATION_KEY,
    PAGERDUTY,
    Row,
    am_alert,
    am_body,
    assert_error,
    assert_pagerduty_answer,
    generic_body,
    grafana_body,
    pd_event,
    strict_json,
    table_app,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RECEIVERS = (AM, GRAFANA, GENERIC, PAGERDUTY)
PIPELINES = (
    "unit-profit-experiments",
    "aggregate-profit",
    "aggregate-growth",
    "daily-growth-experiments",
    "aggregate-engagement",
)
MAX_DEPTH = 64  # README: bodies "may nest at most 64 levels (400 otherwise)"
CHANGES = {change.value for change in Change}


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path) -> Client:
    """One app for all of a test's examples: a bearer token, aggregate-profit's integration
    key, and no rate limit (Hypothesis sends faster than any sender may)."""
    return await aiohttp_client(table_app(tmp_path, rate_limit_per_second=0))


# -- what senders send ------------------------------------------------------------------------

# Any code point, lone surrogates included, and often the ones that break storage or encoders
# (as the alphabet of `st.text` they would be drawn as rarely as any other code point).
CHARACTERS = st.characters(exclude_categories=()) | st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\ud83d", "🔥", "\u2028", "\ufeff", "\\", '"']
)


def texts(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Text of `CHARACTERS`."""
    return st.lists(CHARACTERS, min_size=min_size, max_size=max_size).map("".join)


TEXT = texts()
NUMBERS = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
EDGE_NUMBERS = st.sampled_from(
    [0, -1, 2**63, -(2**63) - 1, 2**64, -(10**4299), 1.7976931348623157e308, 5e-324, -0.0]
)
SCALARS = st.none() | st.booleans() | NUMBERS | EDGE_NUMBERS | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# One value of every JSON type, for "every field with a value of every wrong type".
WRONG_TYPES: tuple[object, ...] = (None, True, -(2**64), 1.5, "", "🔥\x00\ud800", [], {"x": 1})
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# What senders put in a time field: any date-time with any offset (or none), the ones at the
# ends of what datetime and the router can hold, and anything else.
TIMES = (
    st.datetimes(timezones=st.none() | OFFSETS).map(datetime.isoformat)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.999999-23:59",
            "1899-12-31T23:00:00-02:00",
            "1900-01-01T00:30:00+01:00",
            "2999-12-31T23:59:59-00:01",
            "2026-02-30T00:00:00Z",
            "2026-11-24",
            "1700000000",
            "",
        ]
    )
    | SCALARS
)


@dataclass(frozen=True)
class Wire:
    """A body as bytes, and whether they are UTF-8 (a lone surrogate written raw is not)."""

    raw: bytes
    utf8: bool


def wire(document: object, ascii_only: bool = True) -> Wire:
    """`document` as JSON bytes: escaped to ASCII, or written raw, where a lone surrogate
    becomes bytes that are not UTF-8 (as a sender's broken encoder writes them)."""
    text = json.dumps(document, ensure_ascii=ascii_only)
    try:
        return Wire(text.encode(), utf8=True)
    except UnicodeEncodeError:
        return Wire(text.encode("utf-8", "surrogatepass"), utf8=False)


def templates() -> dict[str, dict[str, Any]]:
    """A fresh valid body for each receiver (PagerDuty's routed by aggregate-profit's key)."""
    return {
        AM: am_body(),
        GRAFANA: grafana_body(),
        GENERIC: fixture("generic"),
        PAGERDUTY: pd_event(),
    }


FieldPath = tuple[str | int, ...]
DELETE = object()


def paths(document: object, prefix: FieldPath = ()) -> Iterator[FieldPath]:
    """The path of every value inside `document`, outermost first."""
    items: list[tuple[str | int, object]] = []
    if isinstance(document, dict):
        items = list(document.items())
    elif isinstance(document, list):
        items = list(enumerate(document))
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def at(document: Any, path: FieldPath) -> Any:
    """The value at `path` inside `document`."""
    for key in path:
        document = document[key]
    return document


def replaced(document: object, path: FieldPath, value: object) -> Any:
    """`document` with `value` at `path` (appended, for one past a list's end), or the value
    there removed for `DELETE`; `document` itself is left alone."""
    changed = copy.deepcopy(document)
    parent = at(changed, path[:-1])
    if value is DELETE:
        del parent[path[-1]]
    elif isinstance(parent, list) and path[-1] == len(parent):
        parent.append(value)
    else:
        parent[path[-1]] = value
    return changed


def dotted(path: FieldPath) -> str:
    """A field path the way the router's 422 details write it: `alerts[0].startsAt`."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


@st.composite
def mutated_bodies(draw: st.DrawFn, receiver: str) -> object:
    """The receiver's valid body with one to three of its values swapped for any JSON value,
    removed, or given a sibling (a key of any text, or one more list item)."""
    document: object = templates()[receiver]
    for _ in range(draw(st.integers(1, 3))):
        where = list(paths(document))
        if not where:
            break
        path = draw(st.sampled_from(where))
        how = draw(st.sampled_from(["swap", "remove", "add"]))
        if how == "add":
            parent = at(document, path[:-1])
            path = (*path[:-1], draw(TEXT) if isinstance(parent, dict) else len(parent))
        document = replaced(document, path, DELETE if how == "remove" else draw(JSON_VALUES))
    return document


# -- what the router must answer --------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: its status and JSON body."""

    status: int
    body: Any


async def post(client: Client, receiver: str, raw: bytes) -> Answer:
    """POST `raw` with the token, and check what every answer must be: JSON (strict, no NaN),
    no 5xx, no trace of the inside; then that `/healthz` still answers."""
    response = await client.post(receiver, data=raw, headers=AUTH_JSON)
    text = await response.text()
    assert response.status < 500, f"{response.status} {text[:500]}"
    assert response.content_type == "application/json", text[:500]
    assert "Traceback" not in text
    answer = Answer(response.status, strict_json(text))
    if currently_in_test_context():
        event(f"{receiver} answered {response.status}")
    health = await client.get("/healthz")
    assert health.status == 200
    assert await json_of(health) == {"status": "ok"}
    return answer


def assert_refused(answer: Answer, receiver: str, code: str, mention: str = "") -> None:
    """The documented refusal: PagerDuty's `invalid event` (its `errors` mentioning `mention`),
    or `{"error": {"code", "message", "details"}}`: 400 with no details for malformed JSON,
    422 with `{"path", "message"}` details (the first path starting with `mention`) for a
    wrong shape."""
    if receiver == PAGERDUTY:
        assert answer.status == 400, answer
        # It reads only the row's status and the word PagerDuty's `errors` must mention.
        assert_pagerduty_answer(Row("fuzz", PAGERDUTY, b"", 400, mention=mention), answer.body)
        return
    assert answer.status == {"malformed_json": 400, "invalid_alert": 422}[code], answer
    assert_error(answer.body, code)
    details = answer.body["error"]["details"]
    if code == "malformed_json":
        assert details == []
        assert mention in answer.body["error"]["message"]
        return
    assert 1 <= len(details) <= 20
    for detail in details:
        assert detail.keys() == {"path", "message"}
        assert isinstance(detail["path"], str)
        assert detail["path"]
        assert isinstance(detail["message"], str)
        assert detail["message"]
    assert details[0]["path"].startswith(mention)


async def assert_stored(client: Client, receiver: str, answer: Answer, raw: bytes) -> list[Any]:
    """A 202 in the receiver's documented shape, and what it says is stored: every incident
    it names readable by `GET /api/v1/incidents/{id}` (returned, with its alerts), or for
    PagerDuty the incident of the `dedup_key` it answers triggered, acknowledged or resolved
    as the event (`raw`) said."""
    assert answer.status == 202, answer
    if receiver == PAGERDUTY:
        return await assert_pagerduty_stored(client, answer, json.loads(raw)["event_action"])
    assert answer.body.keys() == {"status", "alerts", "incidents"}
    assert answer.body["status"] == "accepted"
    incidents = answer.body["incidents"]
    assert answer.body["alerts"] == len(incidents)
    details = []
    for incident in incidents:
        assert incident.keys() == {"id", "change"}
        assert incident["change"] in CHANGES
        if incident["id"] is None:  # a resolve for no open incident
            assert incident["change"] == Change.ORPHAN.value
            continue
        detail = await incident_detail(client, incident["id"])
        assert detail["id"] == incident["id"]
        resolved = incident["change"] == Change.RESOLVE.value
        assert (detail["status"] == "resolved") == resolved
        details.append(detail)
    return details


async def unresolved(client: Client, dedup_key: str) -> list[dict[str, Any]]:
    """The incidents not resolved whose dedup key is `dedup_key` (at most one)."""
    response = await client.get("/api/v1/incidents", params={"limit": "1000"}, headers=AUTH_JSON)
    listed = (await json_of(response))["incidents"]
    return [i for i in listed if i["dedup_key"] == dedup_key and i["status"] != "resolved"]


async def assert_pagerduty_stored(client: Client, answer: Answer, action: str) -> list[Any]:
    """PagerDuty's 202, and its `dedup_key`'s incident: open (returned, with its alerts) after
    a trigger, acknowledged if any after an acknowledge, none unresolved after a resolve."""
    assert answer.body.keys() == {"status", "message", "dedup_key"}
    assert (answer.body["status"], answer.body["message"]) == ("success", "Event processed")
    dedup_key = answer.body["dedup_key"]
    assert isinstance(dedup_key, str)
    assert dedup_key
    incidents = await unresolved(client, dedup_key)
    if action == "resolve":
        assert incidents == []
        return []
    if action == "acknowledge":
        assert [i["status"] for i in incidents] in ([], ["acknowledged"])
        return []
    [incident] = incidents
    return [await incident_detail(client, incident["id"])]


# -- any JSON value, any value of a real body swapped -----------------------------------------


@FUZZ
@given(receiver=st.sampled_from(RECEIVERS), value=JSON_VALUES, ascii_only=st.booleans())
async def test_any_json_value_is_refused_in_the_documented_shape_or_stored(
    client: Client, receiver: str, value: object, ascii_only: bool
) -> None:
    sent = wire(value, ascii_only)
    answer = await post(client, receiver, sent.raw)
    if not sent.utf8:
        assert_refused(answer, receiver, "malformed_json", "UTF-8")
    elif not isinstance(value, dict):
        assert_refused(answer, receiver, "invalid_alert", "(body)")
    elif answer.status == 202:
        await assert_stored(client, receiver, answer, sent.raw)
    else:
        assert_refused(answer, receiver, "invalid_alert")


@FUZZ
@given(data=st.data(), receiver=st.sampled_from(RECEIVERS), ascii_only=st.booleans())
async def test_a_real_body_with_any_values_swapped_removed_or_added_is_refused_or_stored(
    client: Client, data: st.DataObject, receiver: str, ascii_only: bool
) -> None:
    sent = wire(data.draw(mutated_bodies(receiver)), ascii_only)
    answer = await post(client, receiver, sent.raw)
    if not sent.utf8:
        assert_refused(answer, receiver, "malformed_json", "UTF-8")
    elif answer.status == 202:
        await assert_stored(client, receiver, answer, sent.raw)
    else:
        assert_refused(answer, receiver, "invalid_alert")


async def test_every_value_of_every_real_body_as_every_json_type_is_refused_or_stored(
    client: Client,
) -> None:
    """Not a sample: each value of each receiver's real body, in turn, as null, a boolean, a
    huge negative integer, a fraction, text (empty, and with NUL and a lone surrogate), an
    array and an object; and removed."""
    for receiver, template in templates().items():
        for path in paths(template):
            for value in (*WRONG_TYPES, DELETE):
                raw = wire(replaced(template, path, value)).raw
                answer = await post(client, receiver, raw)
                if answer.status == 202:
                    await assert_stored(client, receiver, answer, raw)
                else:
                    assert_refused(answer, receiver, "invalid_alert")


TIME_FIELDS: dict[str, list[FieldPath]] = {
    AM: [("alerts", 0, "startsAt"), ("alerts", 0, "endsAt")],
    GRAFANA: [("alerts", 0, "startsAt"), ("alerts", 1, "endsAt")],
    PAGERDUTY: [("payload", "timestamp")],
}


def in_supported_years(text: object) -> bool:
    """Whether a stored time is an ISO date-time in the years the router computes with."""
    assert isinstance(text, str)
    return FIRST_YEAR <= datetime.fromisoformat(text).astimezone(UTC).year <= LAST_YEAR


@FUZZ
@given(
    field=st.sampled_from(
        [(receiver, path) for receiver, fields in TIME_FIELDS.items() for path in fields]
    ),
    value=TIMES,
)
async def test_any_time_a_sender_gives_is_refused_at_its_path_or_stored_within_the_years(
    client: Client, field: tuple[str, FieldPath], value: object
) -> None:
    """A time the router cannot compute with (before 1900 or after 2999 in UTC, Go's zero
    time) is dropped, the alert kept; one that is no time is a 422 naming that field."""
    receiver, path = field
    raw = wire(replaced(templates()[receiver], path, value)).raw
    answer = await post(client, receiver, raw)
    if answer.status != 202:
        assert_refused(answer, receiver, "invalid_alert", dotted(path))
        if receiver != PAGERDUTY:
            assert [d["path"] for d in answer.body["error"]["details"]] == [dotted(path)]
        return
    for incident in await assert_stored(client, receiver, answer, raw):
        latest = incident["alerts"][-1]
        assert latest["starts_at"] is None or in_supported_years(latest["starts_at"])
        ends_at = latest["details"].get("ends_at")
        assert ends_at is None or in_supported_years(ends_at)


# -- valid alerts with any label values -------------------------------------------------------

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def stored(value: Any) -> Any:
    """What the README says the router stores for `value`: NUL and lone surrogates as U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {stored(key): stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stored(item) for item in value]
    return value


LABELS = st.dictionaries(TEXT, TEXT, max_size=6)
SEVERITIES = st.sampled_from(["critical", "error", "warning", "info"]).flatmap(
    lambda word: st.sampled_from([word, word.upper(), f" {word.title()}\t"])
)
FINITE = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)


@st.composite
def grouped_bodies(draw: st.DrawFn, receiver: str) -> dict[str, Any]:
    """An Alertmanager or Grafana body whose one to three firing alerts name a known pipeline
    and carry any other labels and annotations."""
    alerts = []
    for _ in range(draw(st.integers(1, 3))):
        alert = am_alert(annotations=draw(LABELS), fingerprint=draw(TEXT))
        alert["labels"] = {**draw(LABELS), "pipeline": draw(st.sampled_from(PIPELINES))}
        if receiver == GRAFANA:
            alert["values"] = draw(st.none() | st.dictionaries(TEXT, FINITE, max_size=3))
            alert["valueString"] = draw(TEXT)
        alerts.append(alert)
    if receiver == GRAFANA:
        return grafana_body(alerts=alerts, title=draw(TEXT), message=draw(TEXT))
    return am_body(*alerts, receiver=draw(TEXT), groupKey=draw(TEXT))


@st.composite
def generic_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A generic alert for a known pipeline (padded with whitespace, which is stripped), with
    any summary, labels, details and dedup key."""
    body = generic_body(
        pipeline=draw(st.sampled_from(PIPELINES).map(lambda p: f" {p}\n")),
        summary=draw(texts(1, 40)),
        severity=draw(SEVERITIES),
        labels=draw(LABELS),
        details=draw(st.dictionaries(TEXT, JSON_VALUES, max_size=3)),
    )
    dedup_key = draw(st.none() | texts(1, 20))
    return body if dedup_key is None else body | {"dedup_key": dedup_key}


@FUZZ
@given(data=st.data(), receiver=st.sampled_from([AM, GRAFANA, GENERIC]))
async def test_a_valid_alert_with_any_label_values_is_stored_cleaned_on_its_pipeline(
    client: Client, data: st.DataObject, receiver: str
) -> None:
    """202, and each alert can be read back in its incident with its labels (and summary and
    details) as sent but for NUL and lone surrogates, on the pipeline it named."""
    document = data.draw(generic_bodies() if receiver == GENERIC else grouped_bodies(receiver))
    raw = wire(document).raw
    answer = await post(client, receiver, raw)
    incidents = await assert_stored(client, receiver, answer, raw)
    sent = json.loads(raw)  # as the wire has it: an escaped surrogate pair is one character
    alerts = [sent] if receiver == GENERIC else sent["alerts"]
    assert len(incidents) == len(alerts)
    for alert, incident in zip(alerts, incidents, strict=True):
        labels = stored(alert["labels"])
        matching = [a for a in incident["alerts"] if a["labels"] == labels]
        assert matching, (labels, incident["alerts"])
        latest = matching[-1]
        if receiver == GENERIC:
            assert latest["pipeline"] == alert["pipeline"].strip()
            assert latest["summary"] == stored(alert["summary"])
            assert latest["details"] == stored(alert["details"])
        else:
            assert latest["pipeline"] == labels["pipeline"]


@st.composite
def pagerduty_events(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid event routed by aggregate-profit's integration key or (with the bearer token)
    by a pipeline id, and that pipeline. Triggers have any summary, source, custom details and
    dedup key (or none); acknowledges and resolves name a key, often one used before."""
    pipeline = draw(st.sampled_from(PIPELINES))
    routing_key = INTEGRATION_KEY if pipeline == "aggregate-profit" else pipeline
    action = draw(st.sampled_from(["trigger", "trigger", "acknowledge", "resolve"]))
    dedup_key = draw(st.sampled_from(["cogs", "nul\x00", "🔥", " "]) | texts(1, 20))
    if action != "trigger":
        return {
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        }, pipeline
    payload = {
        "summary": draw(texts(1, 40)),
        "source": draw(texts(1, 12)),
        "severity": draw(SEVERITIES),
        "custom_details": draw(JSON_VALUES),
    }
    trigger = pd_event(routing_key=routing_key, payload=payload, dedup_key=dedup_key)
    if draw(st.booleans()):
        del trigger["dedup_key"]
    return trigger, pipeline


@FUZZ
@given(case=pagerduty_events())
async def test_a_valid_pagerduty_event_acts_on_the_incident_of_the_dedup_key_it_answers(
    client: Client, case: tuple[dict[str, Any], str]
) -> None:
    """A trigger leaves an unresolved incident holding the alert (on its pipeline), an
    acknowledge leaves the key's incident (if any) acknowledged, a resolve leaves none
    unresolved; the answered `dedup_key` is the one sent, cleaned."""
    document, pipeline = case
    raw = wire(document).raw
    answer = await post(client, PAGERDUTY, raw)
    incidents = await assert_stored(client, PAGERDUTY, answer, raw)
    sent = json.loads(raw)
    if "dedup_key" in sent:
        assert answer.body["dedup_key"] == stored(sent["dedup_key"])
    for incident in incidents:
        summary = stored(sent["payload"]["summary"])
        assert any(
            a["summary"] == summary and a["pipeline"] == pipeline for a in incident["alerts"]
        )


# -- nesting and bytes ------------------------------------------------------------------------


def nested(brackets: list[str]) -> object:
    """Arrays and objects inside each other, outermost first (`["[]", "{}"]` → `[{"x": null}]`)."""
    value: object = None
    for bracket in reversed(brackets):
        value = [value] if bracket == "[]" else {"x": value}
    return value


@FUZZ
@given(
    receiver=st.sampled_from(RECEIVERS),
    brackets=st.integers(1, 90).flatmap(
        lambda n: st.lists(st.sampled_from(["[]", "{}"]), min_size=n, max_size=n)
    ),
)
@example(receiver=GENERIC, brackets=["[]"] * (MAX_DEPTH - 1))
@example(receiver=GENERIC, brackets=["{}"] * MAX_DEPTH)
@example(receiver=PAGERDUTY, brackets=["{}"] * (MAX_DEPTH - 1))
@example(receiver=PAGERDUTY, brackets=["[]"] * MAX_DEPTH)
async def test_a_body_nesting_up_to_64_levels_is_accepted_and_a_deeper_one_refused(
    client: Client, receiver: str, brackets: list[str]
) -> None:
    """A valid body with an extra field nesting `brackets`: 1 + len(brackets) levels."""
    raw = wire(templates()[receiver] | {"extra": nested(brackets)}).raw
    answer = await post(client, receiver, raw)
    if 1 + len(brackets) <= MAX_DEPTH:
        await assert_stored(client, receiver, answer, raw)
    else:
        assert_refused(answer, receiver, "malformed_json", "nested too deeply")


def _refuse_constant(name: str) -> object:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def is_strict_json(raw: bytes) -> bool:
    """RFC 8259 JSON in UTF-8, as the README asks: no NaN or Infinity, nor a number that is
    one (`1e400`), nor an integer too long for Python to read."""
    try:
        json.loads(raw.decode(), parse_constant=_refuse_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


@st.composite
def damaged(draw: st.DrawFn, receiver: str) -> bytes:
    """The receiver's valid body with a few bytes inserted, overwritten or cut out."""
    raw = bytearray(wire(templates()[receiver], ascii_only=False).raw)
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(raw)))
        raw[start : start + draw(st.integers(0, 8))] = draw(st.binary(max_size=4))
    return bytes(raw)


SPECIAL_BYTES = st.sampled_from(
    [b"", b"\x00", b"\xef\xbb\xbf{}", b"NaN", b"1e400", b"-" + b"9" * 5000, b'"\\ud800"', b"\xff"]
)


@FUZZ
@given(data=st.data(), receiver=st.sampled_from(RECEIVERS))
async def test_any_bytes_are_refused_as_malformed_or_read_as_the_json_they_are(
    client: Client, data: st.DataObject, receiver: str
) -> None:
    raw = data.draw(st.binary(max_size=64) | SPECIAL_BYTES | damaged(receiver))
    answer = await post(client, receiver, raw)
    if not is_strict_json(raw):
        assert_refused(answer, receiver, "malformed_json")
    elif answer.status == 202:
        await assert_stored(client, receiver, answer, raw)
    else:
        assert_refused(answer, receiver, "invalid_alert")
