"""Rendering a page (`router.notify.render`): what the person paged reads, in every format.

Contexts are built from the shipped `config/` and a hand-made incident, so the runbook items
checked here are the team document's own words.
"""

from __future__ import annotations

import email
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from html import escape
from pathlib import Path
from typing import Any

import pytest

from router.config import load_team_model
from router.model import Incident, Link
from router.notify.message import EmailMessage, Event, PageContext
from router.notify.render import (
    SLACK_BLOCKS_MAX,
    SLACK_FIELD_MAX,
    SLACK_HEADER_MAX,
    SLACK_TEXT_MAX,
    SUBJECT_MAX,
    render_email,
    render_generic,
    render_slack,
    subject,
)
from router.teammodel import TeamModel

CONFIG = Path(__file__).resolve().parents[1] / "config"
OPENED = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
ACK_URL = "https://router.example/ack/t0k3n?sig=ab&exp=1"
INCIDENT_URL = "https://router.example/api/v1/incidents/42"
REASONS = ("week 5 (cycle week 1): Alice primary, Bob backup", "primary Alice, backup Bob")

# The aggregate-profit runbook, verbatim from the team document (shared/seed/).
DEPENDENCIES = ["Orders database", "Product pricing feed", "Cost of Goods Sold (COGS) table"]
FAILURE_MODES = [
    "Upstream pricing table delays or errors",
    "COGS feed incomplete or contains nulls",
    "Incorrect currency conversion rates",
    "Aggregation job runs with outdated dimensions",
    "Metric drift due to schema changes",
]
# Every character that must never reach a subject: C0, DEL, C1, U+2028, U+2029.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture(scope="module")
def model() -> TeamModel:
    """The shipped team model."""
    return load_team_model(CONFIG)


def make_incident(**changes: Any) -> Incident:
    """An open incident on aggregate-profit; `changes` replace any field."""
    incident = Incident(
        id=42,
        status="open",
        pipeline="aggregate-profit",
        dedup_key="fp:cogs",
        name="CogsFeedNulls",
        summary="COGS feed has nulls",
        severity="critical",
        count=3,
        opened_at=OPENED,
        updated_at=OPENED,
        escalation="investor",
        source="alertmanager",
    )
    return replace(incident, **changes)


def make_context(
    model: TeamModel,
    event: Event = "incident.triggered",
    incident: Incident | None = None,
    **changes: Any,
) -> PageContext:
    """A page to Alice at step 1 for `incident`, with its pipeline and runbook from `model`."""
    incident = incident or make_incident()
    pipeline = model.pipeline(incident.pipeline) if incident.pipeline else None
    runbook = model.runbooks.get(pipeline.runbook) if pipeline and pipeline.runbook else None
    context = PageContext(
        event=event,
        incident=incident,
        pipeline=pipeline,
        runbook=runbook,
        recipient="Alice",
        step=1,
        reasons=REASONS,
        ack_url=ACK_URL,
        incident_url=INCIDENT_URL,
        labels={"pipeline": "aggregate-profit", "alertname": "CogsFeedNulls"},
        links=(Link("https://grafana.example/d/profit", "Dashboard"),),
    )
    return replace(context, **changes)


def email_for(context: PageContext) -> EmailMessage:
    return render_email(context, "alice@example.com", "incident-42/step-1/alice/email")


def parts(message: EmailMessage) -> dict[str, str]:
    return {"text": message.text, "html": message.html}


def escaped(part: str, text: str) -> str:
    """`text` as it appears in the part: HTML-escaped in the HTML part."""
    return escape(text) if part == "html" else text


def blocks_of(body: dict[str, object]) -> list[dict[str, Any]]:
    blocks = body["blocks"]
    assert isinstance(blocks, list)
    return blocks


def slack_texts(body: dict[str, object]) -> list[str]:
    """Every text string in a Slack body, wherever Block Kit puts it."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            text = node.get("text")
            if isinstance(text, str):
                found.append(text)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return found


# --- Subject ----------------------------------------------------------------------------------

SUBJECTS = [
    ("incident.triggered", "[FIRING] Aggregate profit (investors): COGS feed has nulls"),
    ("incident.escalated", "[ESCALATED] Aggregate profit (investors): COGS feed has nulls"),
    ("incident.acknowledged", "[ACKNOWLEDGED] Aggregate profit (investors): COGS feed has nulls"),
    ("incident.resolved", "[RESOLVED] Aggregate profit (investors): COGS feed has nulls"),
]


@pytest.mark.parametrize(("event", "expected"), SUBJECTS)
def test_subject_names_event_pipeline_and_summary(
    model: TeamModel, event: Event, expected: str
) -> None:
    assert subject(make_context(model, event)) == expected
    assert email_for(make_context(model, event)).subject == expected


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("mystery-etl", "[FIRING] mystery-etl: COGS feed has nulls"),
        (None, "[FIRING] unknown pipeline: COGS feed has nulls"),
    ],
)
def test_subject_of_unknown_pipeline_uses_its_id_or_says_unknown(
    model: TeamModel, pipeline: str | None, expected: str
) -> None:
    context = make_context(model, incident=make_incident(pipeline=pipeline))
    assert context.pipeline is None
    assert subject(context) == expected


HOSTILE_SUMMARIES = [
    pytest.param("COGS\r\nBcc: evil@example.com", id="crlf-header-injection"),
    pytest.param("COGS\nBcc: evil@example.com", id="bare-lf"),
    pytest.param("COGS\rBcc: evil@example.com", id="bare-cr"),
    pytest.param("COGS\x00\x1b\x07\x08\t\x0b\x0cBcc: evil@example.com", id="c0"),
    pytest.param("COGS\x7f\x85\x9bBcc: evil@example.com", id="del-and-c1-nel"),
    pytest.param("COGS\u2028\u2029Bcc: evil@example.com", id="unicode-line-separators"),
]


@pytest.mark.parametrize("summary", HOSTILE_SUMMARIES)
def test_subject_stays_one_line_without_control_characters(model: TeamModel, summary: str) -> None:
    line = subject(make_context(model, incident=make_incident(summary=summary)))
    assert CONTROL.search(line) is None
    assert line.splitlines() == [line]
    assert line == "[FIRING] Aggregate profit (investors): COGS Bcc: evil@example.com"


def test_crlf_in_summary_cannot_add_a_header_to_the_sent_mail(model: TeamModel) -> None:
    """Through the standard library's own MIME writer and parser: still one Subject, no Bcc."""
    summary = "COGS feed has nulls\r\nBcc: evil@example.com\r\n\r\nbody"
    rendered = email_for(make_context(model, incident=make_incident(summary=summary)))
    mime = MimeMessage(policy=SMTP)
    mime["To"] = rendered.to
    mime["Subject"] = rendered.subject
    mime.set_content(rendered.text)
    parsed = email.message_from_bytes(mime.as_bytes(), policy=SMTP)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == rendered.subject


def test_long_subject_is_cut_with_an_ellipsis(model: TeamModel) -> None:
    context = make_context(model, incident=make_incident(summary="nulls " * 200))
    line = subject(context)
    assert len(line) == SUBJECT_MAX
    assert line.startswith("[FIRING] Aggregate profit (investors): nulls nulls")
    assert line.endswith("…")


# --- Email body -------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["text", "html"])
@pytest.mark.parametrize("item", DEPENDENCIES + FAILURE_MODES)
def test_email_carries_every_runbook_item_verbatim(model: TeamModel, part: str, item: str) -> None:
    body = parts(email_for(make_context(model)))[part]
    assert escaped(part, item) in body


def test_text_part_renders_the_runbook_as_a_checklist(model: TeamModel) -> None:
    text = email_for(make_context(model)).text
    dependencies = "\n".join(f"  [ ] {item}" for item in DEPENDENCIES)
    failure_modes = "\n".join(f"  - {item}" for item in FAILURE_MODES)
    assert f"Dependencies — check each:\n{dependencies}\n" in text
    assert f"What could go wrong:\n{failure_modes}\n" in text
    assert "Runbook: Aggregate Profit Reported to Investors" in text


WHAT_TO_ACT_ON = [
    pytest.param("Aggregate profit (investors)", id="pipeline-name"),
    pytest.param("Profit", id="business-area"),
    pytest.param("critical", id="severity"),
    pytest.param("COGS feed has nulls", id="summary"),
    pytest.param("Bob (primary)", id="primary-owner"),
    pytest.param("Dana (secondary)", id="secondary-owner"),
    pytest.param("alertname=CogsFeedNulls", id="labels"),
    pytest.param("https://grafana.example/d/profit", id="links"),
    pytest.param("Why you", id="why-you"),
    pytest.param(REASONS[0], id="oncall-reason"),
    pytest.param(REASONS[1], id="outcome-reason"),
    pytest.param("escalation step 1", id="escalation-step"),
    pytest.param(ACK_URL, id="ack-link"),
    pytest.param(INCIDENT_URL, id="incident-url"),
    pytest.param("2026-11-24 17:00", id="opened-at"),
]


@pytest.mark.parametrize("part", ["text", "html"])
@pytest.mark.parametrize("expected", WHAT_TO_ACT_ON)
def test_email_says_what_the_person_paged_needs_to_act(
    model: TeamModel, part: str, expected: str
) -> None:
    body = parts(email_for(make_context(model)))[part]
    assert escaped(part, expected) in body


def test_escalation_step_is_not_repeated_when_a_reason_already_names_it(
    model: TeamModel,
) -> None:
    context = make_context(model, step=2, reasons=(*REASONS, "escalation step 2"))
    assert email_for(context).text.count("escalation step 2") == 1


def test_email_passes_recipient_and_idempotency_key_through(model: TeamModel) -> None:
    message = render_email(make_context(model), "bob@example.com", "key-1")
    assert (message.to, message.idempotency_key) == ("bob@example.com", "key-1")


def test_html_part_escapes_the_summary(model: TeamModel) -> None:
    summary = "<script>alert(1)</script>"
    html = email_for(make_context(model, incident=make_incident(summary=summary))).html
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_part_escapes_labels_and_links_and_never_links_javascript(
    model: TeamModel,
) -> None:
    context = make_context(
        model,
        labels={"team": '"><img src=x onerror=alert(1)>'},
        links=(Link("javascript:alert(1)", "<b>dashboard</b>"),),
    )
    html = email_for(context).html
    assert "<img" not in html
    assert "<b>" not in html
    assert 'href="javascript:' not in html
    assert "&lt;b&gt;dashboard&lt;/b&gt;" in html


def test_html_part_needs_no_external_assets(model: TeamModel) -> None:
    html = email_for(make_context(model)).html
    assert re.search(r"<(img|link|script)\b", html) is None
    assert "src=" not in html


@pytest.mark.parametrize("part", ["text", "html"])
def test_resolved_email_says_resolved_and_offers_no_ack_link(model: TeamModel, part: str) -> None:
    incident = make_incident(status="resolved", resolved_at=OPENED, resolved_by="Bob")
    body = parts(email_for(make_context(model, "incident.resolved", incident)))[part]
    assert "/ack/" not in body
    assert "Acknowledge" not in body
    assert "is resolved by Bob" in body
    assert "No action is needed." in body


def test_acknowledged_email_says_who_acknowledged_and_offers_no_ack_link(
    model: TeamModel,
) -> None:
    incident = make_incident(status="acknowledged", acknowledged_at=OPENED, acknowledged_by="Dana")
    text = email_for(make_context(model, "incident.acknowledged", incident)).text
    assert "/ack/" not in text
    assert "acknowledged by Dana" in text
    assert "escalation has stopped" in text


@pytest.mark.parametrize("part", ["text", "html"])
def test_unknown_pipeline_email_says_so_and_that_the_fallback_paged(
    model: TeamModel, part: str
) -> None:
    incident = make_incident(pipeline="mystery-etl", flags=("unknown_pipeline",))
    body = parts(email_for(make_context(model, incident=incident)))[part]
    assert escaped(part, "'mystery-etl', which is not in the team model") in body
    assert "unknown_pipeline" in body
    assert "fallback escalation (investor) paged you" in body
    assert "Dependencies" not in body
    assert escaped(part, ACK_URL) in body


# --- Generic webhook --------------------------------------------------------------------------

GENERIC_KEYS = {
    "event",
    "incident",
    "pipeline",
    "runbook",
    "recipient",
    "step",
    "reasons",
    "ack_url",
    "labels",
    "links",
    "incident_url",
}


def test_generic_body_has_exactly_the_spec_shape(model: TeamModel) -> None:
    context = make_context(model)
    body = render_generic(context)
    assert set(body) == GENERIC_KEYS
    assert body["event"] == "incident.triggered"
    assert body["incident"] == context.incident.to_json()
    assert body["pipeline"] == {
        "id": "aggregate-profit",
        "name": "Aggregate profit (investors)",
        "area": "Profit",
        "owners": {"primary": "Bob", "secondary": "Dana"},
    }
    assert body["runbook"] == {
        "title": "Aggregate Profit Reported to Investors",
        "dependencies": DEPENDENCIES,
        "failure_modes": FAILURE_MODES,
        "url": None,
    }
    assert (body["recipient"], body["step"], body["reasons"]) == ("Alice", 1, list(REASONS))
    assert (body["ack_url"], body["incident_url"]) == (ACK_URL, INCIDENT_URL)
    assert body["links"] == [{"href": "https://grafana.example/d/profit", "text": "Dashboard"}]
    assert body["labels"] == {"pipeline": "aggregate-profit", "alertname": "CogsFeedNulls"}


@pytest.mark.parametrize("event", [event for event, _ in SUBJECTS])
def test_generic_body_is_json_for_every_event(model: TeamModel, event: Event) -> None:
    body = render_generic(make_context(model, event))
    assert json.loads(json.dumps(body))["event"] == event


def test_generic_body_of_unknown_pipeline_has_null_pipeline_and_runbook(model: TeamModel) -> None:
    body = render_generic(make_context(model, incident=make_incident(pipeline="mystery-etl")))
    assert set(body) == GENERIC_KEYS
    assert (body["pipeline"], body["runbook"]) == (None, None)
    assert body["ack_url"] == ACK_URL


@pytest.mark.parametrize("event", ["incident.acknowledged", "incident.resolved"])
def test_generic_body_has_no_ack_url_once_acking_means_nothing(
    model: TeamModel, event: Event
) -> None:
    assert render_generic(make_context(model, event))["ack_url"] is None


# --- Slack ------------------------------------------------------------------------------------


def test_slack_body_has_subject_as_fallback_text_and_the_runbook_checklist(
    model: TeamModel,
) -> None:
    body = render_slack(make_context(model))
    assert body["text"] == "[FIRING] Aggregate profit (investors): COGS feed has nulls"
    texts = "\n".join(slack_texts(body))
    for item in DEPENDENCIES:
        assert f"☐ {item}" in texts
    for item in FAILURE_MODES:
        assert f"• {item}" in texts
    assert "Bob (primary), Dana (secondary)" in texts
    assert "escalation step 1" in texts


def test_slack_ack_is_a_url_button_only_while_the_incident_is_open(model: TeamModel) -> None:
    def buttons(context: PageContext) -> list[Any]:
        actions = [b for b in blocks_of(render_slack(context)) if b["type"] == "actions"]
        return [e.get("url") for block in actions for e in block["elements"]]

    assert buttons(make_context(model)) == [ACK_URL]
    assert buttons(make_context(model, "incident.resolved")) == []


def test_slack_escapes_user_text(model: TeamModel) -> None:
    summary = "<!channel> nulls & <https://evil.example|click>"
    context = make_context(
        model, incident=make_incident(summary=summary), labels={"x": "<@U123> & co"}
    )
    texts = slack_texts(render_slack(context))
    assert not any("<!channel>" in text or "<@U123>" in text for text in texts)
    assert not any("<https://evil" in text for text in texts)
    joined = "\n".join(texts)
    assert "&lt;!channel&gt; nulls &amp; &lt;https://evil.example|click&gt;" in joined
    assert "&lt;@U123&gt; &amp; co" in joined


def test_slack_body_stays_within_slack_limits_whatever_the_alert_says(model: TeamModel) -> None:
    huge = "&<>" * 5000
    context = make_context(
        model,
        incident=make_incident(summary=huge),
        labels={f"label{i}": huge for i in range(200)},
        links=tuple(Link(f"https://example.com/{i}", huge) for i in range(200)),
        reasons=tuple(huge for _ in range(50)),
    )
    body = render_slack(context)
    blocks = blocks_of(body)
    assert len(blocks) <= SLACK_BLOCKS_MAX
    assert blocks[0]["type"] == "header"
    assert len(blocks[0]["text"]["text"]) <= SLACK_HEADER_MAX
    for block in blocks:
        if "text" in block:
            assert len(block["text"]["text"]) <= SLACK_TEXT_MAX
        for field in block.get("fields", []):
            assert len(field["text"]) <= SLACK_FIELD_MAX
        for element in block.get("elements", []):
            assert len(element.get("text", "")) <= SLACK_TEXT_MAX
    assert isinstance(body["text"], str)
    assert len(body["text"]) <= SLACK_TEXT_MAX
    assert not any(re.search(r"&[a-z]*…", text) for text in slack_texts(body))
