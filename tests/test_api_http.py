"""SPEC sections 3 and 4 through HTTP: an incident's life from the senders' real bodies to
ack and resolve, the incident list and its paging, runtime leave and overrides changing who
is on call, and what operators read: `/status`, `/metrics`, `/readyz`.

Every app runs on its own SQLite file with an injected clock that tests move by hand.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from router import __version__
from router.config import config_digest
from router.teammodel import TeamModel
from router.web.keys import ESCALATOR, STORE

from apphelpers import (
    AUTH,
    AUTH_JSON,
    CONFIG,
    NOW,
    TOKEN,
    TOKEN_NAME,
    AnswerLog,
    Client,
    FakeClock,
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
INTEGRATION_KEY = fixture("pagerduty_trigger")["routing_key"]
PD_KEY = "aggregate-profit/cogs-nulls"
MINUTE = timedelta(minutes=1)
# NOW is 2026-11-24 12:00 in New York: week 5, Alice primary and Bob backup.
TODAY_NOON = "2026-11-24T12:00"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


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


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock, at NOW until a test moves it."""
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> web.Application:
    """The router with the shipped config and aggregate-profit's PagerDuty integration key."""
    model = model_with_integration_key("aggregate-profit", INTEGRATION_KEY)
    return build_app(tmp_path, model=model, clock=clock)


@pytest.fixture
async def client(make_client: MakeApp, app: web.Application) -> Client:
    """A client of `app` on a real loopback server."""
    return await make_client(app)


# -- helpers ----------------------------------------------------------------------------------


async def post(
    client: Client, path: str, body: str | dict[str, Any], status: int = 202
) -> dict[str, Any]:
    """POST a body (fixture text or a document) with the token; the answer must be `status`."""
    if isinstance(body, str):
        response = await client.post(path, data=body, headers=AUTH_JSON)
    else:
        response = await client.post(path, json=body, headers=AUTH)
    assert response.status == status, await response.text()
    answer: dict[str, Any] = await json_of(response)
    return answer


def generic(pipeline: str, dedup_key: str, status: str = "firing") -> dict[str, Any]:
    """A generic alert for `pipeline` with its own dedup key."""
    return {
        "pipeline": pipeline,
        "summary": f"{pipeline} is late",
        "severity": "error",
        "status": status,
        "dedup_key": dedup_key,
    }


async def open_incident(client: Client, pipeline: str, dedup_key: str) -> int:
    """Open an incident with a generic alert; its id."""
    answer = await post(client, GENERIC, generic(pipeline, dedup_key))
    [incident] = answer["incidents"]
    assert incident["change"] == "opened"
    incident_id: int = incident["id"]
    return incident_id


async def act(client: Client, incident_id: int, verb: str, body: Any = None) -> dict[str, Any]:
    """POST `/ack` or `/resolve` on an incident, optionally with a JSON body; must be 200."""
    path = f"/api/v1/incidents/{incident_id}/{verb}"
    if body is None:
        response = await client.post(path, headers=AUTH)
    else:
        response = await client.post(path, json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    incident: dict[str, Any] = await json_of(response)
    return incident


def firing_twin(resolved: dict[str, Any]) -> dict[str, Any]:
    """The firing notification Alertmanager sent before a resolved one: same alerts, firing."""
    body = copy.deepcopy(resolved)
    body["status"] = "firing"
    for alert in body["alerts"]:
        alert["status"] = "firing"
        alert["endsAt"] = "0001-01-01T00:00:00Z"
    return body


def pd_follow_up(action: str) -> dict[str, Any]:
    """A PagerDuty acknowledge or resolve for the trigger fixture's dedup key."""
    return {"routing_key": INTEGRATION_KEY, "dedup_key": PD_KEY, "event_action": action}


async def oncall(client: Client, at: str = TODAY_NOON) -> dict[str, Any]:
    """`GET /api/v1/oncall?at=`."""
    response = await client.get("/api/v1/oncall", params={"at": at}, headers=AUTH)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await json_of(response)
    return answer


async def samples(client: Client) -> Samples:
    """Every sample of `/metrics` (fetched without credentials) by name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    found: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    """A sample's labels, as `samples` keys them."""
    return frozenset(pairs.items())


# -- the incident lifecycle -----------------------------------------------------------------


async def test_alertmanager_firing_fixture_opens_one_incident_per_alert(client: Client) -> None:
    answer = await post(client, AM, fixture_text("alertmanager_firing"))
    assert answer == {
        "status": "accepted",
        "alerts": 2,
        "incidents": [{"id": 1, "change": "opened"}, {"id": 2, "change": "opened"}],
    }
    unknown, known = await all_incidents(client)
    assert (known["id"], known["pipeline"], known["status"]) == (1, "aggregate-profit", "open")
    assert (known["summary"], known["severity"], known["count"]) == (
        "aggregate-profit has not completed for 3h",
        "critical",
        1,
    )
    assert known["flags"] == []
    assert known["opened_at"] == NOW.isoformat()
    assert (unknown["pipeline"], unknown["flags"]) == (None, ["unknown_pipeline"])


async def test_an_alertmanager_resend_is_a_repeat_not_a_new_incident(client: Client) -> None:
    """Alertmanager re-sends a firing group every `repeat_interval`."""
    first = await post(client, AM, fixture_text("alertmanager_firing"))
    again = await post(client, AM, fixture_text("alertmanager_firing"))
    assert [i["id"] for i in again["incidents"]] == [i["id"] for i in first["incidents"]]
    assert {i["change"] for i in again["incidents"]} == {"repeated"}
    incidents = await all_incidents(client)
    assert [(i["status"], i["count"]) for i in incidents] == [("open", 2), ("open", 2)]


async def test_resolved_fixture_resolves_and_a_later_firing_opens_a_new_incident(
    client: Client, clock: FakeClock
) -> None:
    resolved = fixture("alertmanager_resolved")
    [opened] = (await post(client, AM, firing_twin(resolved)))["incidents"]
    assert opened["change"] == "opened"
    clock.advance(MINUTE)
    [closed] = (await post(client, AM, fixture_text("alertmanager_resolved")))["incidents"]
    assert closed == {"id": opened["id"], "change": "resolved"}
    incident = await incident_detail(client, opened["id"])
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == (NOW + MINUTE).isoformat()
    clock.advance(MINUTE)
    [reopened] = (await post(client, AM, firing_twin(resolved)))["incidents"]
    assert reopened["change"] == "opened"
    assert reopened["id"] != opened["id"]
    statuses = [(i["id"], i["status"]) for i in await all_incidents(client)]
    assert statuses == [(reopened["id"], "open"), (opened["id"], "resolved")]


async def test_grafana_fixture_opens_an_incident_and_records_its_resolved_alert(
    client: Client,
) -> None:
    answer = await post(client, GRAFANA, fixture_text("grafana_firing"))
    assert answer["incidents"] == [
        {"id": 1, "change": "opened"},
        {"id": None, "change": "orphaned"},
    ]
    [incident] = await all_incidents(client)
    assert (incident["pipeline"], incident["severity"]) == ("aggregate-engagement", "warning")
    [alert] = (await incident_detail(client, incident["id"]))["alerts"]
    assert alert["source"] == "grafana"
    assert "Dashboard" in [link["text"] for link in alert["links"]]


async def test_a_generic_alert_keeps_its_own_dedup_key(client: Client) -> None:
    await post(client, GENERIC, fixture_text("generic"))
    [incident] = await all_incidents(client)
    assert incident["dedup_key"] == "unit-profit-experiments/empty-export/2026-11-24"
    assert (incident["pipeline"], incident["severity"]) == ("unit-profit-experiments", "warning")


async def test_pagerduty_trigger_acknowledge_resolve_by_dedup_key(
    client: Client, clock: FakeClock
) -> None:
    statuses = []
    for body in (
        fixture_text("pagerduty_trigger"),
        pd_follow_up("acknowledge"),
        fixture_text("pagerduty_resolve"),
    ):
        answer = await post(client, PAGERDUTY, body)
        assert answer == {"status": "success", "message": "Event processed", "dedup_key": PD_KEY}
        [incident] = await all_incidents(client)
        statuses.append(incident["status"])
        clock.advance(MINUTE)
    assert statuses == ["open", "acknowledged", "resolved"]
    detail = await incident_detail(client, incident["id"])
    kinds = [event["kind"] for event in detail["timeline"] if event["kind"].startswith("alert.")]
    assert kinds == ["alert.opened", "alert.acknowledged", "alert.resolved"]


# -- the incident list ------------------------------------------------------------------------


async def test_incident_list_is_newest_first_and_filters_by_status_and_pipeline(
    client: Client,
) -> None:
    profit = await open_incident(client, "aggregate-profit", "k-profit")
    growth = await open_incident(client, "aggregate-growth", "k-growth")
    engagement = await open_incident(client, "aggregate-engagement", "k-engagement")
    growth_again = await open_incident(client, "aggregate-growth", "k-growth-2")
    await act(client, growth, "ack")
    await act(client, engagement, "resolve")

    async def ids(**query: str) -> list[int]:
        return [incident["id"] for incident in await all_incidents(client, **query)]

    assert await ids() == [growth_again, engagement, growth, profit]
    assert await ids(status="open") == [growth_again, profit]
    assert await ids(status="acknowledged") == [growth]
    assert await ids(status="resolved") == [engagement]
    assert await ids(pipeline="aggregate-growth") == [growth_again, growth]
    assert await ids(pipeline="aggregate-growth", status="open") == [growth_again]
    assert await ids(pipeline="no-such-pipeline") == []


async def test_incident_list_pages_with_a_next_cursor_without_overlap(client: Client) -> None:
    opened = [await open_incident(client, "aggregate-profit", f"k{n}") for n in range(5)]
    pages: list[list[int]] = []
    query = {"limit": "2"}
    while True:
        response = await client.get("/api/v1/incidents", params=query, headers=AUTH)
        assert response.status == 200
        page = await json_of(response)
        pages.append([incident["id"] for incident in page["incidents"]])
        if page["next"] is None:
            break
        query = {"limit": "2", "cursor": page["next"]}
    assert [len(page) for page in pages] == [2, 2, 1]
    assert list(itertools.chain(*pages)) == sorted(opened, reverse=True)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("status", "closed"),
        ("status", ""),
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "ten"),
        ("limit", "-1"),
        ("limit", "\u00b2"),  # superscript two: str.isdigit() says yes, int() says no
        ("cursor", "abc"),
        ("cursor", "0"),
        ("pipeline", "\x00"),  # PostgreSQL refuses NUL in text outright
    ],
)
async def test_incident_list_refuses_a_bad_query_with_400_naming_it(
    client: Client, parameter: str, value: str
) -> None:
    response = await client.get("/api/v1/incidents", params={parameter: value}, headers=AUTH)
    assert response.status == 400, await response.text()
    error = (await json_of(response))["error"]
    assert (error["code"], error["details"]) == ("bad_query", [parameter])


async def test_incident_list_finds_a_pipeline_named_with_unprintable_characters(
    client: Client,
) -> None:
    """A tab or a no-break space inside a pipeline id is stored as sent: the filter finds it."""
    for pipeline in ("nightly\tload", "data\u00a0lake"):
        incident_id = await open_incident(client, pipeline, f"key-{pipeline}")
        response = await client.get(
            "/api/v1/incidents", params={"pipeline": pipeline}, headers=AUTH
        )
        assert response.status == 200, await response.text()
        assert [i["id"] for i in (await json_of(response))["incidents"]] == [incident_id]


# -- one incident -----------------------------------------------------------------------------


async def test_incident_detail_has_alerts_notifications_and_an_oldest_first_timeline(
    client: Client, clock: FakeClock
) -> None:
    incident_id = await open_incident(client, "aggregate-profit", "k1")
    clock.advance(MINUTE)
    await post(client, GENERIC, generic("aggregate-profit", "k1"))
    clock.advance(MINUTE)
    await act(client, incident_id, "ack", {"by": "Bob"})
    clock.advance(MINUTE)
    await act(client, incident_id, "resolve")
    detail = await incident_detail(client, incident_id)
    assert detail["id"] == incident_id
    assert {"status", "pipeline", "dedup_key", "summary", "severity", "count"} <= detail.keys()
    assert [alert["action"] for alert in detail["alerts"]] == ["trigger", "trigger"]
    # Tuesday of week 5: step 1 pages Alice (on-call primary) by email; Bob's ack and the
    # resolve are both told to her.
    notifications = detail["notifications"]
    assert [(n["event"], n["recipient"], n["channel"]) for n in notifications] == [
        ("incident.triggered", "Alice", "email"),
        ("incident.acknowledged", "Alice", "email"),
        ("incident.resolved", "Alice", "email"),
    ]
    timeline = detail["timeline"]
    assert [(event["kind"], event["at"]) for event in timeline] == [
        ("alert.opened", NOW.isoformat()),
        ("escalation.step", NOW.isoformat()),
        ("alert.repeated", (NOW + MINUTE).isoformat()),
        ("incident.acknowledged", (NOW + 2 * MINUTE).isoformat()),
        ("incident.resolved", (NOW + 3 * MINUTE).isoformat()),
    ]
    assert all(event["message"] for event in timeline)
    assert "Bob" in timeline[3]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/incidents/999"),
        ("GET", "/api/v1/incidents/0"),
        ("GET", "/api/v1/incidents/abc"),
        ("GET", "/api/v1/incidents/99999999999999999999999"),
        ("GET", "/api/v1/incidents/\u00b2"),
        ("POST", "/api/v1/incidents/999/ack"),
        ("POST", "/api/v1/incidents/999/resolve"),
        ("POST", "/api/v1/incidents/\u00b2/ack"),
    ],
)
async def test_an_unknown_incident_is_a_json_404(client: Client, method: str, path: str) -> None:
    await open_incident(client, "aggregate-profit", "k1")
    response = await client.request(method, path, headers=AUTH)
    assert response.status == 404, await response.text()
    assert (await json_of(response))["error"]["code"] == "not_found"


async def test_ack_records_who_then_resolve_and_a_late_ack_leaves_it_resolved(
    client: Client, clock: FakeClock
) -> None:
    incident_id = await open_incident(client, "aggregate-profit", "k1")
    clock.advance(MINUTE)
    acked = await act(client, incident_id, "ack", {"by": "Bob"})
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "Bob")
    assert acked["acknowledged_at"] == (NOW + MINUTE).isoformat()
    clock.advance(MINUTE)
    resolved = await act(client, incident_id, "resolve")
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", TOKEN_NAME)
    late = await act(client, incident_id, "ack", {"by": "Charlie"})
    assert (late["status"], late["acknowledged_by"]) == ("resolved", "Bob")
    assert (await incident_detail(client, incident_id))["status"] == "resolved"


async def test_ack_without_a_body_is_by_the_tokens_name(client: Client) -> None:
    incident_id = await open_incident(client, "aggregate-profit", "k1")
    acked = await act(client, incident_id, "ack")
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", TOKEN_NAME)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"by": ""}', "application/json", 422),
        (b'{"by": 5}', "application/json", 422),
        (b'["Bob"]', "application/json", 422),
        (b'{"by": "Bob"', "application/json", 400),
        (b"Bob", "text/plain", 415),
    ],
)
async def test_ack_with_a_bad_body_is_refused_and_changes_nothing(
    client: Client, body: bytes, content_type: str, status: int
) -> None:
    incident_id = await open_incident(client, "aggregate-profit", "k1")
    headers = {**AUTH, "Content-Type": content_type}
    response = await client.post(f"/api/v1/incidents/{incident_id}/ack", data=body, headers=headers)
    assert response.status == status, await response.text()
    assert set((await json_of(response))["error"]) == {"code", "message", "details"}
    assert (await incident_detail(client, incident_id))["status"] == "open"


async def test_fifty_identical_alerts_at_once_fold_into_one_incident(client: Client) -> None:
    body = generic("aggregate-profit", "flood")
    responses = await asyncio.gather(
        *(client.post(GENERIC, json=body, headers=AUTH) for _ in range(50))
    )
    assert [r.status for r in responses] == [202] * 50
    changes = [(await json_of(r))["incidents"][0]["change"] for r in responses]
    assert changes.count("opened") == 1
    assert changes.count("repeated") == 49
    [incident] = await all_incidents(client)
    assert incident["count"] == 50
    assert len((await incident_detail(client, incident["id"]))["alerts"]) == 50


# -- runtime leave and overrides --------------------------------------------------------------


async def test_runtime_leave_takes_alice_off_call_until_it_is_withdrawn(client: Client) -> None:
    before = await oncall(client)
    assert (before["primary"], before["backup"]) == ("Alice", "Bob")
    leave = {"who": "Alice", "from": "2026-11-24", "to": "2026-11-24", "reason": "flu"}
    response = await client.post("/api/v1/leave", json=leave, headers=AUTH)
    assert response.status == 201, await response.text()
    entry = await json_of(response)
    assert isinstance(entry["id"], int)
    assert {k: entry[k] for k in leave} == leave
    assert (entry["created_by"], entry["created_at"]) == (TOKEN_NAME, NOW.isoformat())

    during = await oncall(client)
    assert (during["primary"], during["backup"], during["on_leave"]) == (
        "Bob",
        "Charlie",
        ["Alice"],
    )
    assert "Alice is on leave (flu) through 2026-11-24" in during["reasons"]
    after = await oncall(client, "2026-11-25T00:00")
    assert (after["primary"], after["backup"]) == ("Alice", "Bob")

    deleted = await client.delete(f"/api/v1/leave/{entry['id']}", headers=AUTH)
    assert deleted.status == 204
    assert await oncall(client) == before
    again = await client.delete(f"/api/v1/leave/{entry['id']}", headers=AUTH)
    assert again.status == 404
    assert (await json_of(again))["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("entry", "paths"),
    [
        ({"who": "Eve", "from": "2026-11-24", "to": "2026-11-25"}, ["who"]),
        ({"who": "Alice", "from": "2026-11-25T09:00", "to": "2026-11-24T09:00"}, ["to"]),
        ({"who": "Alice", "from": "2026-11-24T18:00", "to": "2026-11-24T18:00"}, ["to"]),
        ({"from": "2026-11-24", "to": "2026-11-25"}, ["who"]),
        ({"who": "Alice", "from": "soon", "to": "2026-11-25"}, ["from"]),
        ({"who": "Alice", "from": "2026-11-24", "to": "0001-01-01"}, ["to"]),
    ],
)
async def test_runtime_leave_is_validated_like_the_config_file(
    client: Client, entry: dict[str, str], paths: list[str]
) -> None:
    response = await client.post("/api/v1/leave", json=entry, headers=AUTH)
    assert response.status == 422, await response.text()
    error = (await json_of(response))["error"]
    assert error["code"] == "invalid_body"
    assert [detail["path"] for detail in error["details"]] == paths
    listed = await client.get("/api/v1/leave", headers=AUTH)
    assert (await json_of(listed))["runtime"] == []


async def test_a_runtime_override_puts_dana_on_primary(client: Client) -> None:
    override = {
        "slot": "primary",
        "who": "Dana",
        "from": "2026-11-24T09:00",
        "to": "2026-11-25T09:00",
    }
    response = await client.post("/api/v1/overrides", json=override, headers=AUTH)
    assert response.status == 201, await response.text()
    entry = await json_of(response)
    answer = await oncall(client)
    assert (answer["primary"], answer["backup"]) == ("Dana", "Bob")
    assert (
        "override: Dana covers primary until 2026-11-25 09:00, relieving Alice"
        in (answer["reasons"])
    )
    listed = await json_of(await client.get("/api/v1/overrides", headers=AUTH))
    assert [e["id"] for e in listed["runtime"]] == [entry["id"]]
    assert (await client.delete(f"/api/v1/overrides/{entry['id']}", headers=AUTH)).status == 204
    assert (await oncall(client))["primary"] == "Alice"


async def test_an_override_of_an_unknown_slot_is_422(client: Client) -> None:
    override = {"slot": "tertiary", "who": "Dana", "from": "2026-11-24", "to": "2026-11-25"}
    response = await client.post("/api/v1/overrides", json=override, headers=AUTH)
    assert response.status == 422
    assert [d["path"] for d in (await json_of(response))["error"]["details"]] == ["slot"]


async def test_leave_list_shows_config_and_runtime_entries(
    make_client: MakeApp, tmp_path: Path, make_model: Callable[..., TeamModel]
) -> None:
    configured = {"who": "Charlie", "from": "2026-12-01", "to": "2026-12-05", "reason": "vacation"}
    client = await make_client(build_app(tmp_path, model=make_model(leave=[configured])))
    runtime = {"who": "Alice", "from": "2026-11-24", "to": "2026-11-24", "reason": "flu"}
    created = await json_of(await client.post("/api/v1/leave", json=runtime, headers=AUTH))
    listed = await json_of(await client.get("/api/v1/leave", headers=AUTH))
    assert listed["config"] == [configured]
    assert listed["runtime"] == [created]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("DELETE", "/api/v1/leave/\u00b2", 404),
        ("DELETE", "/api/v1/leave/999999999999999999999999999999", 404),
        ("DELETE", "/api/v1/overrides/abc", 404),
        ("GET", "/api/v1/schedule?weeks=\u00b2", 400),
    ],
)
async def test_odd_numbers_in_paths_and_queries_are_refused_not_a_500(
    client: Client, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers=AUTH)
    assert response.status == status, await response.text()
    assert set((await json_of(response))["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/v1/leave",
            b'{"who":"Alice","from":"2026-11-24","to":"2026-11-25","reason":"\\ud800"}',
        ),
        ("/api/v1/incidents/1/ack", b'{"by":"\\ud800"}'),
    ],
)
async def test_lone_surrogates_in_operator_bodies_are_replaced_not_a_500(
    client: Client, path: str, body: bytes
) -> None:
    """A lone surrogate cannot be stored as UTF-8: like NUL, it becomes U+FFFD."""
    await open_incident(client, "aggregate-profit", "k1")
    response = await client.post(path, data=body, headers=AUTH_JSON)
    assert response.status in {200, 201}, await response.text()
    answer = await json_of(response)
    assert "\ufffd" in (answer.get("reason") or answer.get("acknowledged_by"))


# -- what operators read ----------------------------------------------------------------------


async def test_status_reports_version_uptime_config_oncall_and_open_incidents(
    client: Client, clock: FakeClock
) -> None:
    await post(client, AM, fixture_text("alertmanager_firing"))
    await act(client, 2, "resolve")
    clock.advance(timedelta(seconds=90))
    response = await client.get("/status", headers=AUTH)
    assert response.status == 200
    text = await response.text()
    assert TOKEN not in text
    status = await json_of(response)
    assert status["version"] == __version__
    assert status["uptime_seconds"] == 90
    assert status["config"]["digest"] == config_digest(CONFIG)
    assert status["config"]["digest"].startswith("sha256:")
    assert (status["oncall"]["primary"], status["oncall"]["backup"]) == ("Alice", "Bob")
    assert status["oncall"]["reasons"] == [
        "week 5 (cycle week 1): Alice primary, Bob backup",
        "primary Alice, backup Bob",
    ]
    assert status["incidents"]["open"] == 1


async def test_status_needs_credentials(client: Client) -> None:
    response = await client.get("/status")
    assert response.status == 401
    assert (await json_of(response))["error"]["code"] == "unauthorized"


async def test_metrics_count_alerts_rejections_open_incidents_and_latency(client: Client) -> None:
    await post(client, AM, fixture_text("alertmanager_firing"))
    await post(client, GENERIC, fixture_text("generic"))
    refused = await client.post(GENERIC, data=fixture_text("generic"))
    assert refused.status == 401
    found = await samples(client)
    received = "router_alerts_received_total"
    assert found[received, labels(source="alertmanager", pipeline="aggregate-profit")] == 1
    assert found[received, labels(source="alertmanager", pipeline="unknown")] == 1
    assert found[received, labels(source="generic", pipeline="unit-profit-experiments")] == 1
    assert found["router_alerts_rejected_total", labels(reason="unauthorized")] == 1
    assert found["router_incidents_open", labels()] == 3
    bucket = labels(route=AM, method="POST", status="202", le="+Inf")
    assert found["router_http_request_duration_seconds_bucket", bucket] == 1


async def test_readyz_is_200_with_a_working_store(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await json_of(response))["status"] == "ready"


async def test_without_its_store_the_router_is_not_ready_and_refuses_alerts_with_503(
    client: Client, app: web.Application
) -> None:
    """An alert is only accepted once stored: with the database gone, senders must retry."""
    await app[STORE].close()
    ready = await client.get("/readyz")
    assert ready.status == 503
    body = await json_of(ready)
    assert body["status"] == "not ready"
    assert body["reason"].startswith("database")
    for path, document in (
        (AM, fixture_text("alertmanager_firing")),
        (GENERIC, fixture_text("generic")),
        (PAGERDUTY, fixture_text("pagerduty_trigger")),
    ):
        response = await client.post(path, data=document, headers=AUTH_JSON)
        assert response.status == 503, await response.text()
        assert int(response.headers["Retry-After"]) >= 1
        assert (await json_of(response))["error"]["code"] == "store_unavailable"
    assert (await client.get("/healthz")).status == 200


async def test_an_ack_is_told_to_everyone_paged_except_whoever_acknowledged(
    client: Client, clock: FakeClock
) -> None:
    """Alice (on call, paged) acks herself: nobody else was paged, so nobody is told."""
    incident_id = await open_incident(client, "aggregate-profit", "self-ack")
    clock.advance(MINUTE)
    await act(client, incident_id, "ack", {"by": "Alice"})
    events = [n["event"] for n in (await incident_detail(client, incident_id))["notifications"]]
    assert events == ["incident.triggered"]


async def test_metrics_show_an_oncall_gap_and_exhausted_escalations(
    client: Client, clock: FakeClock
) -> None:
    """Everyone on leave → router_oncall_gap 1; a chain run out → counted as exhausted."""
    body = {"who": "", "from": "2026-11-24", "to": "2026-11-24", "reason": "offsite"}
    for name in ("Alice", "Bob", "Charlie", "Dana"):
        response = await client.post("/api/v1/leave", json={**body, "who": name}, headers=AUTH)
        assert response.status == 201
    text = await (await client.get("/metrics")).text()
    assert "router_oncall_gap 1.0" in text
    assert "router_incidents_escalation_exhausted 0.0" in text
    await open_incident(client, "aggregate-profit", "runs-out")
    for _ in range(9):  # investor: 3 rounds of 3 steps, 10 minutes apart, then "exhausted"
        clock.advance(10 * MINUTE)
        await client.app[ESCALATOR].fire_due()
    text = await (await client.get("/metrics")).text()
    assert "router_incidents_escalation_exhausted 1.0" in text
