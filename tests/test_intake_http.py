"""SPEC section 3, the receivers' error contract: every bad input gets its status and a JSON
error body, every good credential gets in, and nothing a sender does makes the router answer
500, fall over, or echo a secret.

The table below is the contract, one row per input. Each row runs against a fresh app (so a
failure names its row), then all rows run against one app that must still answer `/healthz`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from pydantic import SecretStr

from router.signing import sign
from router.web.keys import LIMITER
from router.web.ratelimit import RateLimiter

from apphelpers import (
    AUTH,
    AUTH_JSON,
    JSON,
    NOW,
    TOKEN,
    AnswerLog,
    Client,
    MakeApp,
    MakeClient,
    all_incidents,
    build_app,
    fixture,
    fixture_text,
    incident_detail,
    json_of,
    model_with_integration_key,
)

AM = "/api/v1/alerts/alertmanager"
GRAFANA = "/api/v1/alerts/grafana"
GENERIC = "/api/v1/alerts"
PAGERDUTY = "/v2/enqueue"

# Long, distinctive secrets so a leak is found by searching for them.
SECRET_1, SECRET_2 = "hmac-secret-one-3f9a0c", "hmac-secret-two-c71e5b"
INTEGRATION_KEY = fixture("pagerduty_trigger")["routing_key"]
STAMP = int(NOW.timestamp())
MIB = 1024 * 1024
SECRETS = (TOKEN, SECRET_1, SECRET_2, INTEGRATION_KEY)


@pytest.fixture
async def make_client(
    aiohttp_client: MakeClient, request: pytest.FixtureRequest
) -> AsyncIterator[MakeApp]:
    """`await make_client(app)`; at the end, no answer any of its clients got was a 500."""
    log = AnswerLog()
    failed_before = request.session.testsfailed

    async def make(app: web.Application) -> Client:
        return await aiohttp_client(app, trace_configs=[log.trace_config()])

    yield make
    # A test that failed has said why already; this catches a 500 the test did not look at.
    if request.session.testsfailed == failed_before:
        assert log.server_errors() == []


def table_app(tmp_path: Path, **changes: Any) -> web.Application:
    """Bearer token, two HMAC secrets (rotation), an integration key on aggregate-profit."""
    return build_app(
        tmp_path,
        model=model_with_integration_key("aggregate-profit", INTEGRATION_KEY),
        hmac_secret=SecretStr(f"{SECRET_1},{SECRET_2}"),
        **changes,
    )


# -- bodies ---------------------------------------------------------------------------------


def encode(document: object) -> bytes:
    """JSON as UTF-8 bytes; non-ASCII characters raw, control characters escaped."""
    return json.dumps(document, ensure_ascii=False).encode()


def am_alert(labels: Mapping[str, str] | None = None, **changes: Any) -> dict[str, Any]:
    """One firing Alertmanager alert for aggregate-profit, with `changes`."""
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {
            "alertname": "PipelineStale",
            "pipeline": "aggregate-profit",
            "severity": "critical",
            **(labels or {}),
        },
        "annotations": {"summary": "aggregate-profit has not completed for 3h"},
        "startsAt": "2026-11-24T14:03:26Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph",
        "fingerprint": "1a30ba71cca2921f",
    }
    return alert | changes


def am_body(*alerts: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An Alertmanager webhook body (version "4") with `alerts` (default: one alert)."""
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="PipelineStale"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "pipeline-router",
        "groupLabels": {"alertname": "PipelineStale"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "alerts": list(alerts) if alerts else [am_alert()],
    }
    return body | changes


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    """`document` without `key`."""
    return {k: v for k, v in document.items() if k != key}


def generic_body(**changes: Any) -> dict[str, Any]:
    """The router's own alert, with `changes`."""
    body: dict[str, Any] = {
        "pipeline": "aggregate-profit",
        "summary": "COGS table has null cost rows",
        "severity": "critical",
        "status": "firing",
    }
    return body | changes


def grafana_body(**changes: Any) -> dict[str, Any]:
    """The Grafana fixture, with `changes`."""
    return fixture("grafana_firing") | changes


def pd_event(**changes: Any) -> dict[str, Any]:
    """The PagerDuty trigger fixture (routing key: aggregate-profit's integration key)."""
    return fixture("pagerduty_trigger") | changes


def padded(size: int) -> bytes:
    """A valid Alertmanager body of about `size` bytes."""
    return encode(am_body(padding="x" * size))


AM_OK = encode(am_body())
GRAFANA_OK = encode(grafana_body())
GENERIC_OK = encode(generic_body())
TEN_THOUSAND_LABELS = {f"label_{i:05d}": f"value {i}" for i in range(10_000)}
NUL_AND_EMOJI = {"note": "before\x00after", "nul\x00name": "x", "mood": "🔥 on fire 🚒"}


# -- credentials ----------------------------------------------------------------------------


def router_signed(
    body: bytes, secret: str = SECRET_1, at: int = STAMP, header: str | None = None
) -> dict[str, str]:
    """Headers with `X-Router-Signature` over `body` at `at` (or the given header value)."""
    return {**JSON, "X-Router-Signature": header or sign(secret, at, body)}


def grafana_signed(
    body: bytes,
    secret: str = SECRET_1,
    stamp: str | None = None,
    header: str = "X-Grafana-Alerting-Signature",
) -> dict[str, str]:
    """Grafana's HMAC: hex HMAC-SHA256 of the body, or of `"{stamp}:{body}"` with a stamp."""
    message = body if stamp is None else stamp.encode() + b":" + body
    headers = {**JSON, header: hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}
    if stamp is not None:
        headers["X-Grafana-Alerting-Signature-Timestamp"] = stamp
    return headers


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One input and the answer it must get.

    `code` is the error code of a `{"error": …}` answer; `paths` the field paths its details
    must name, in order; `mention` a word PagerDuty's `errors` must contain. Status 0 leaves
    the status to the router (see UNREADABLE).
    """

    id: str
    path: str
    body: bytes = field(repr=False)
    status: int
    code: str | None = None
    paths: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: AUTH_JSON, repr=False)
    chunked: bool = False
    mention: str = ""


def invalid(id_: str, path: str, document: object, *paths: str) -> Row:
    """Valid JSON of the wrong shape: 422 naming `paths`."""
    return Row(id_, path, encode(document), 422, "invalid_alert", paths)


def malformed(id_: str, path: str, body: bytes) -> Row:
    """Not JSON (or not UTF-8 JSON): 400."""
    return Row(id_, path, body, 400, "malformed_json")


def unauthorized(id_: str, headers: Mapping[str, str], body: bytes = AM_OK) -> Row:
    """Missing or bad credentials: 401."""
    return Row(id_, AM, body, 401, "unauthorized", headers=headers)


def accepted(id_: str, path: str, body: bytes, headers: Mapping[str, str] = AUTH_JSON) -> Row:
    """Stored: 202."""
    return Row(id_, path, body, 202, headers=headers)


def pd_invalid(id_: str, body: bytes, mention: str, headers: Mapping[str, str] = JSON) -> Row:
    """PagerDuty's 400 `invalid event`, its `errors` mentioning `mention`."""
    return Row(id_, PAGERDUTY, body, 400, headers=headers, mention=mention)


MALFORMED = [
    malformed("am-truncated-json", AM, b'{"version": "4", "alerts": ['),
    malformed("grafana-empty-body", GRAFANA, b""),
    malformed("generic-single-quotes", GENERIC, b"{'pipeline': 'aggregate-profit'}"),
    malformed("generic-two-documents", GENERIC, GENERIC_OK + b" {}"),
    malformed("am-non-utf8-bytes", AM, AM_OK.replace(b"pipeline-router", b"pipeline-\xff\xfe")),
    malformed("generic-latin1-text", GENERIC, GENERIC_OK.replace(b"COGS", b"caf\xe9")),
    malformed("am-utf16-json", AM, json.dumps(am_body()).encode("utf-16")),
    malformed("generic-nan-is-not-json", GENERIC, GENERIC_OK[:-1] + b', "details": {"x": NaN}}'),
    malformed(
        "generic-1e400-is-infinity", GENERIC, GENERIC_OK[:-1] + b', "details": {"x": 1e400}}'
    ),
    malformed(
        "am-integer-of-5000-digits",
        AM,
        AM_OK.replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": ' + b"9" * 5000),
    ),
]

WRONG_SHAPE = [
    invalid("am-array", AM, [am_body()], "(body)"),
    invalid("generic-string", GENERIC, "firing", "(body)"),
    invalid("grafana-null", GRAFANA, None, "(body)"),
    invalid("generic-number", GENERIC, 42, "(body)"),
    invalid("am-version-3", AM, am_body(version="3"), "version"),
    invalid("am-version-as-number", AM, am_body(version=4), "version"),
    invalid("am-version-missing", AM, without(am_body(), "version"), "version"),
    invalid("grafana-alertmanager-version", GRAFANA, grafana_body(version="4"), "version"),
    invalid("am-alerts-missing", AM, without(am_body(), "alerts"), "alerts"),
    invalid("am-alert-empty", AM, am_body({}), "alerts[0].status", "alerts[0].labels"),
    invalid("generic-empty", GENERIC, {}, "pipeline", "summary", "severity", "status"),
    invalid("generic-blank-pipeline", GENERIC, generic_body(pipeline="  "), "pipeline"),
    invalid("am-alerts-object", AM, am_body(alerts={}), "alerts"),
    invalid(
        "am-label-number",
        AM,
        am_body(am_alert(labels={"pipeline": 7})),  # type: ignore[dict-item]
        "alerts[0].labels.pipeline",
    ),
    invalid("am-status-pending", AM, am_body(am_alert(status="pending")), "alerts[0].status"),
    invalid("am-starts-at-text", AM, am_body(am_alert(startsAt="today")), "alerts[0].startsAt"),
    invalid("am-truncated-as-text", AM, am_body(truncatedAlerts="2"), "truncatedAlerts"),
    invalid(
        "grafana-value-text",
        GRAFANA,
        grafana_body(alerts=[{**grafana_body()["alerts"][0], "values": {"B": "high"}}]),
        "alerts[0].values.B",
    ),
    invalid("grafana-org-id-text", GRAFANA, grafana_body(orgId="1"), "orgId"),
    invalid("generic-severity-unknown", GENERIC, generic_body(severity="purple"), "severity"),
    invalid("generic-status-pending", GENERIC, generic_body(status="pending"), "status"),
    invalid("generic-labels-list", GENERIC, generic_body(labels=["a", "b"]), "labels"),
    invalid("generic-summary-1025", GENERIC, generic_body(summary="s" * 1025), "summary"),
]

TOO_LARGE = [
    Row("am-2mib-content-length", AM, padded(2 * MIB), 413, "body_too_large"),
    Row("am-2mib-chunked", AM, padded(2 * MIB), 413, "body_too_large", chunked=True),
    Row("generic-2mib-chunked", GENERIC, padded(2 * MIB), 413, "body_too_large", chunked=True),
    Row(
        "signed-2mib-chunked",
        AM,
        padded(2 * MIB),
        413,
        "body_too_large",
        headers=router_signed(padded(2 * MIB)),
        chunked=True,
    ),
    Row("pd-2mib", PAGERDUTY, padded(2 * MIB), 413, "body_too_large", headers=JSON),
]

NOT_JSON = [
    Row(
        "am-text-plain",
        AM,
        AM_OK,
        415,
        "unsupported_media_type",
        headers={**AUTH, "Content-Type": "text/plain"},
    ),
    Row(
        "generic-form",
        GENERIC,
        b"pipeline=x",
        415,
        "unsupported_media_type",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    ),
    Row("am-no-content-type", AM, AM_OK, 415, "unsupported_media_type", headers=AUTH),
    accepted(
        "am-json-with-charset",
        AM,
        AM_OK,
        {**AUTH, "Content-Type": "application/json; charset=utf-8"},
    ),
]

CREDENTIALS = [
    unauthorized("no-credentials", JSON),
    unauthorized("wrong-token", {**JSON, "Authorization": "Bearer not-the-token"}),
    unauthorized("basic-auth", {**JSON, "Authorization": "Basic b3BzOnRlc3QtdG9rZW4="}),
    unauthorized("token-without-scheme", {**JSON, "Authorization": TOKEN}),
    unauthorized("signature-301s-old", router_signed(AM_OK, at=STAMP - 301)),
    unauthorized("signature-301s-ahead", router_signed(AM_OK, at=STAMP + 301)),
    unauthorized("signature-wrong-secret", router_signed(AM_OK, secret="not-the-secret")),
    unauthorized("signature-of-another-body", router_signed(GENERIC_OK)),
    unauthorized("signature-malformed", router_signed(AM_OK, header="sha256=abc")),
    unauthorized("signature-unicode-digit-stamp", router_signed(AM_OK, header="t=\u00b2,v1=00")),
    unauthorized("signature-5000-digit-stamp", router_signed(AM_OK, header=f"t={'9' * 5000},v1=0")),
    unauthorized("signature-non-ascii-digest", router_signed(AM_OK, header=f"t={STAMP},v1=\u00e9")),
    unauthorized("grafana-non-ascii-signature", {**JSON, "X-Grafana-Alerting-Signature": "\u00e9"}),
    unauthorized("grafana-wrong-secret", grafana_signed(AM_OK, secret="not-the-secret")),
    unauthorized("grafana-stale-stamp", grafana_signed(AM_OK, stamp=str(STAMP - 301))),
    unauthorized(
        "grafana-stamp-not-signed",
        {**grafana_signed(AM_OK), "X-Grafana-Alerting-Signature-Timestamp": str(STAMP)},
    ),
    unauthorized(
        "grafana-unicode-digit-stamp",
        {**grafana_signed(AM_OK), "X-Grafana-Alerting-Signature-Timestamp": "\u00b2"},
    ),
    accepted("signature-first-secret", AM, AM_OK, router_signed(AM_OK, SECRET_1)),
    accepted("signature-second-secret", AM, AM_OK, router_signed(AM_OK, SECRET_2)),
    accepted("signature-300s-old", AM, AM_OK, router_signed(AM_OK, at=STAMP - 300)),
    accepted("signature-300s-ahead", AM, AM_OK, router_signed(AM_OK, at=STAMP + 300)),
    accepted("signature-generic", GENERIC, GENERIC_OK, router_signed(GENERIC_OK, SECRET_2)),
    accepted("grafana-hmac-of-body", GRAFANA, GRAFANA_OK, grafana_signed(GRAFANA_OK)),
    accepted(
        "grafana-hmac-with-stamp",
        GRAFANA,
        GRAFANA_OK,
        grafana_signed(GRAFANA_OK, SECRET_2, stamp=str(STAMP)),
    ),
    accepted(
        "grafana-legacy-header-name",
        GRAFANA,
        GRAFANA_OK,
        grafana_signed(GRAFANA_OK, header="X-Grafana-Alert-Signature"),
    ),
]

CONTENT = [
    accepted("am-unknown-pipeline", AM, encode(am_body(am_alert({"pipeline": "no-such"})))),
    accepted("am-10000-labels", AM, encode(am_body(am_alert(TEN_THOUSAND_LABELS)))),
    accepted("am-nul-and-emoji", AM, encode(am_body(am_alert(NUL_AND_EMOJI)))),
    accepted("am-empty-group", AM, encode(am_body(alerts=[]))),
    accepted("grafana-fixture", GRAFANA, fixture_text("grafana_firing").encode()),
    accepted("generic-fixture", GENERIC, fixture_text("generic").encode()),
    # Past datetime's last year once in UTC: the time is dropped, the alert is not.
    accepted(
        "am-starts-at-after-year-9999-in-utc",
        AM,
        encode(am_body(am_alert(startsAt="9999-12-31T23:00:00-12:00"))),
    ),
]

PAGERDUTY_ROWS = [
    pd_invalid("pd-truncated-json", b'{"routing_key": ', "JSON"),
    pd_invalid("pd-non-utf8", encode(pd_event()).replace(b"dbt Cloud", b"dbt \xff"), "UTF-8"),
    pd_invalid("pd-array", encode([pd_event()]), "(body)"),
    pd_invalid("pd-unknown-action", encode(pd_event(event_action="explode")), "event_action"),
    pd_invalid("pd-trigger-without-payload", encode(without(pd_event(), "payload")), "payload"),
    pd_invalid(
        "pd-acknowledge-without-dedup-key",
        encode({"routing_key": INTEGRATION_KEY, "event_action": "acknowledge"}),
        "dedup_key",
    ),
    pd_invalid("pd-routing-key-missing", encode(without(pd_event(), "routing_key")), "routing_key"),
    pd_invalid(
        "pd-summary-1025",
        encode(pd_event(payload={**pd_event()["payload"], "summary": "s" * 1025})),
        "payload.summary",
    ),
    Row(
        "pd-lone-surrogate-in-details-is-replaced",
        PAGERDUTY,
        encode(pd_event()).replace(b'"dbt test"', b'"\\ud800"'),
        202,
        headers=JSON,
    ),
    pd_invalid(
        "pd-unknown-routing-key", encode(pd_event(routing_key="R0UTINGKEY0NOPE")), "routing key"
    ),
    pd_invalid(
        "pd-pipeline-id-without-bearer",
        encode(pd_event(routing_key="aggregate-profit")),
        "routing key",
    ),
    pd_invalid(
        "pd-pipeline-id-with-wrong-bearer",
        encode(pd_event(routing_key="aggregate-profit")),
        "routing key",
        {**JSON, "Authorization": "Bearer not-the-token"},
    ),
    pd_invalid(
        "pd-unknown-pipeline-id-with-bearer",
        encode(pd_event(routing_key="no-such-pipeline")),
        "routing key",
        AUTH_JSON,
    ),
    accepted("pd-integration-key", PAGERDUTY, encode(pd_event()), JSON),
    accepted(
        "pd-pipeline-id-with-bearer",
        PAGERDUTY,
        encode(pd_event(routing_key="aggregate-profit")),
        AUTH_JSON,
    ),
]

TABLE = [*MALFORMED, *WRONG_SHAPE, *TOO_LARGE, *NOT_JSON, *CREDENTIALS, *CONTENT, *PAGERDUTY_ROWS]

# Strings that are not Unicode text (a lone surrogate escape) and JSON nested deeper than the
# router's own recursion allows: whether it refuses them (400/422) or cleans them (202) is its
# choice, but the answer must be a JSON answer, never a 500.
UNREADABLE = [
    Row("am-lone-surrogate-label-value", AM, AM_OK.replace(b'"critical"', b'"\\ud800"'), 0),
    Row("am-lone-surrogate-label-name", AM, AM_OK.replace(b'"severity"', b'"\\udfff"', 1), 0),
    Row(
        "generic-lone-surrogate-detail",
        GENERIC,
        GENERIC_OK[:-1] + b', "details": {"x": "\\ud800"}}',
        0,
    ),
    Row(
        "generic-lone-surrogate-label",
        GENERIC,
        GENERIC_OK[:-1] + b', "labels": {"x": "\\udc00"}}',
        0,
    ),
    Row(
        "generic-detail-900-deep",
        GENERIC,
        GENERIC_OK[:-1] + b', "details": {"x": ' + b"[" * 900 + b"]" * 900 + b"}}",
        0,
    ),
    Row("generic-body-100000-deep", GENERIC, b"[" * 100_000 + b"]" * 100_000, 0),
]


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def send(client: Client, row: Row) -> tuple[ClientResponse, str]:
    """POST the row's body: chunked, or with its Content-Length declared."""
    data: Any = _chunks(row.body) if row.chunked else io.BytesIO(row.body)
    response = await client.post(row.path, data=data, headers=dict(row.headers))
    return response, await response.text()


def _no_constants(name: str) -> object:
    raise AssertionError(f"{name} is not JSON")


def strict_json(text: str) -> Any:
    """Parse as RFC 8259 JSON: `NaN` and `Infinity` are refused."""
    return json.loads(text, parse_constant=_no_constants)


def assert_no_secret(text: str) -> None:
    """No bearer token, HMAC secret or integration key in what the router said."""
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], f"secret(s) in a response: {leaked}"


def assert_answer(row: Row, response: ClientResponse, text: str) -> None:
    """The row's status, and the body shape that goes with it."""
    got = response.status
    assert got == row.status, f"{row.id}: {got} {text[:500]}"
    assert response.content_type == "application/json"
    assert_no_secret(text + str(response.headers))
    body = strict_json(text)
    if row.path == PAGERDUTY and row.status in {202, 400}:
        assert_pagerduty_answer(row, body)
    elif row.status == 202:
        assert body["status"] == "accepted"
        assert body["alerts"] == len(body["incidents"])
    else:
        assert_error(body, row.code, row.paths)
    if row.status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def assert_error(body: Any, code: str | None, paths: tuple[str, ...] = ()) -> None:
    """`{"error": {"code", "message", "details"}}`, and `details` names `paths`."""
    assert body.keys() == {"error"}
    error = body["error"]
    assert error.keys() == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], list)
    if paths:
        assert [detail["path"] for detail in error["details"]] == list(paths)
        assert all(detail["message"] for detail in error["details"])


def assert_pagerduty_answer(row: Row, body: Any) -> None:
    """PagerDuty's own answers: `success` with the dedup key, or `invalid event`."""
    if row.status == 202:
        assert body.keys() == {"status", "message", "dedup_key"}
        assert (body["status"], body["message"]) == ("success", "Event processed")
        assert isinstance(body["dedup_key"], str)
        assert body["dedup_key"]
        return
    assert body.keys() == {"status", "message", "errors"}
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert body["errors"]
    assert all(isinstance(error, str) for error in body["errors"])
    assert any(row.mention in error for error in body["errors"]), body["errors"]


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
async def test_each_input_gets_its_status_and_json_body(
    make_client: MakeApp, tmp_path: Path, row: Row
) -> None:
    client = await make_client(table_app(tmp_path))
    response, text = await send(client, row)
    assert_answer(row, response, text)


@pytest.mark.parametrize("row", UNREADABLE, ids=[row.id for row in UNREADABLE])
async def test_text_that_is_not_unicode_or_too_deep_is_never_a_500(
    make_client: MakeApp, tmp_path: Path, row: Row
) -> None:
    client = await make_client(table_app(tmp_path))
    response, text = await send(client, row)
    assert response.status in {202, 400, 422}, f"{response.status} {text[:300]}"
    body = strict_json(text)
    if response.status != 202:
        assert_error(body, body["error"]["code"])
    listed = await client.get("/api/v1/incidents", headers=AUTH)
    assert listed.status == 200
    strict_json(await listed.text())


async def test_the_router_survives_the_whole_table_without_a_500_or_a_leaked_secret(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    wrong: list[str] = []
    for row in [*TABLE, *UNREADABLE]:
        response, text = await send(client, row)
        assert_no_secret(text + str(response.headers))
        if response.status == 500 or (row.status and response.status != row.status):
            wrong.append(f"{row.id}: {response.status}")
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await json_of(health))["status"] == "ok"
    assert wrong == [], "\n".join(wrong)


# -- what the accepted rows stored ----------------------------------------------------------


async def _post_one_alert(client: Client, alert: dict[str, Any]) -> int:
    response = await client.post(AM, data=encode(am_body(alert)), headers=AUTH_JSON)
    assert response.status == 202, await response.text()
    [incident] = (await json_of(response))["incidents"]
    assert incident["change"] == "opened"
    incident_id: int = incident["id"]
    return incident_id


async def test_an_unknown_pipeline_is_accepted_and_its_incident_flagged(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    incident_id = await _post_one_alert(client, am_alert({"pipeline": "no-such-pipeline"}))
    incident = await incident_detail(client, incident_id)
    assert incident["pipeline"] == "no-such-pipeline"
    assert "unknown_pipeline" in incident["flags"]
    assert incident["status"] == "open"


async def test_an_alert_with_ten_thousand_labels_is_stored_whole(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    incident_id = await _post_one_alert(client, am_alert(TEN_THOUSAND_LABELS))
    [alert] = (await incident_detail(client, incident_id))["alerts"]
    assert len(alert["labels"]) == 10_000 + 3
    assert alert["labels"]["label_09999"] == "value 9999"


async def test_nul_is_stored_as_replacement_character_and_emoji_intact(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    incident_id = await _post_one_alert(client, am_alert(NUL_AND_EMOJI))
    labels = (await incident_detail(client, incident_id))["alerts"][0]["labels"]
    assert labels["note"] == "before\ufffdafter"
    assert labels["nul\ufffdname"] == "x"
    assert labels["mood"] == "🔥 on fire 🚒"
    assert not any("\x00" in key + value for key, value in labels.items())


# -- PagerDuty ------------------------------------------------------------------------------


def _stored_alert_rows(database: Path) -> int:
    """Alerts in the SQLite file, incident or not (an orphan is invisible to the API)."""
    with sqlite3.connect(database / "router.db") as conn:
        count: int = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    return count


async def test_pagerduty_unknown_routing_key_is_400_and_stores_nothing(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    await _post_one_alert(client, am_alert())
    before = await all_incidents(client)
    for action in ("trigger", "acknowledge", "resolve"):
        event = pd_event(routing_key="R0UTINGKEY0NOBODY0000000000001", event_action=action)
        response = await client.post(PAGERDUTY, json=event)
        assert response.status == 400
        assert (await json_of(response))["errors"] == ["Invalid routing key"]
    assert await all_incidents(client) == before
    assert _stored_alert_rows(tmp_path) == 1


async def test_pagerduty_integration_key_opens_an_incident_on_its_pipeline(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    response = await client.post(PAGERDUTY, data=fixture_text("pagerduty_trigger"), headers=JSON)
    assert response.status == 202
    assert await json_of(response) == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "aggregate-profit/cogs-nulls",
    }
    [incident] = await all_incidents(client)
    assert incident["pipeline"] == "aggregate-profit"
    assert incident["dedup_key"] == "aggregate-profit/cogs-nulls"
    assert incident["flags"] == []
    [alert] = (await incident_detail(client, incident["id"]))["alerts"]
    assert alert["caller"] == "pagerduty:aggregate-profit"


async def test_pagerduty_pipeline_id_is_a_routing_key_only_with_a_bearer_token(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(table_app(tmp_path))
    event = pd_event(routing_key="aggregate-growth", dedup_key="growth/late")
    refused = await client.post(PAGERDUTY, json=event)
    assert refused.status == 400
    assert await all_incidents(client) == []
    response = await client.post(PAGERDUTY, json=event, headers=AUTH)
    assert response.status == 202
    assert (await json_of(response))["dedup_key"] == "growth/late"
    [incident] = await all_incidents(client)
    assert incident["pipeline"] == "aggregate-growth"
    [alert] = (await incident_detail(client, incident["id"]))["alerts"]
    assert alert["caller"] == "ops"


async def test_pagerduty_triggers_without_dedup_key_each_open_a_new_incident(
    make_client: MakeApp, tmp_path: Path
) -> None:
    """PagerDuty gives a trigger without `dedup_key` a fresh key, so each opens its own alert;
    a client that relies on that (and resolves by the key it was given) must get two."""
    client = await make_client(table_app(tmp_path))
    event = without(pd_event(), "dedup_key")
    keys = []
    for _ in range(2):
        response = await client.post(PAGERDUTY, json=event)
        assert response.status == 202
        keys.append((await json_of(response))["dedup_key"])
    assert keys[0] != keys[1]
    assert len(await all_incidents(client)) == 2


# -- HMAC rotation and rate limits ----------------------------------------------------------


async def test_while_rotating_both_hmac_secrets_are_accepted(
    make_client: MakeApp, tmp_path: Path
) -> None:
    client = await make_client(build_app(tmp_path, hmac_secret=SecretStr("s1,s2")))
    for secret, status in (("s1", 202), ("s2", 202), ("s3", 401), ("s1,s2", 401)):
        response = await client.post(AM, data=AM_OK, headers=router_signed(AM_OK, secret))
        assert (secret, response.status) == (secret, status)


def _frozen_limiter(app: web.Application) -> RateLimiter:
    """The app's limiter with the same rate and burst, on a clock that stands still, so the
    bucket cannot refill between requests however slow the machine is."""
    limiter = app[LIMITER]
    return RateLimiter(limiter.rate, limiter.burst, clock=lambda: 1000.0)


async def test_a_caller_over_its_rate_gets_429_with_retry_after(
    make_client: MakeApp, tmp_path: Path
) -> None:
    tokens = {"ops": SecretStr(TOKEN), "grafana": SecretStr("grafana-token-4d2e")}
    app = table_app(tmp_path, rate_limit_per_second=1, rate_limit_burst=2, inbound_tokens=tokens)
    assert (app[LIMITER].rate, app[LIMITER].burst) == (1, 2)
    app[LIMITER] = _frozen_limiter(app)
    client = await make_client(app)
    statuses = [(await client.post(AM, data=AM_OK, headers=AUTH_JSON)).status for _ in range(2)]
    assert statuses == [202, 202]
    response = await client.post(AM, data=AM_OK, headers=AUTH_JSON)
    assert response.status == 429
    assert_error(await json_of(response), "rate_limited")
    assert response.headers["Retry-After"].isdigit()
    assert int(response.headers["Retry-After"]) >= 1
    other = {"Authorization": "Bearer grafana-token-4d2e", **JSON}
    assert (await client.post(AM, data=AM_OK, headers=other)).status == 202


async def test_a_pagerduty_integration_over_its_rate_is_throttled_like_pagerduty(
    make_client: MakeApp, tmp_path: Path
) -> None:
    app = table_app(tmp_path, rate_limit_per_second=1, rate_limit_burst=2)
    app[LIMITER] = _frozen_limiter(app)
    client = await make_client(app)
    statuses = [(await client.post(PAGERDUTY, json=pd_event())).status for _ in range(2)]
    assert statuses == [202, 202]
    response = await client.post(PAGERDUTY, json=pd_event())
    assert response.status == 429
    assert (await json_of(response))["status"] == "throttle event"
    assert int(response.headers["Retry-After"]) >= 1
