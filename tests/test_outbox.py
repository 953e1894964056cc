"""Delivery end to end (SPEC section 4 "Delivery", section 3 shapes): an alert posted to the
router's HTTP API opens an incident, and the outbox delivers its pages to REAL servers on
loopback: an aiosmtpd SMTP server and scripted `aiohttp_server` webhook receivers.

The test drives the outbox pass by pass (`app[OUTBOX].deliver_due()`) and moves the app's
FakeClock to the `next_attempt_at` the router stored, so retries and backoff are tested
without sleeping. The only real waiting is a webhook timeout, shortened to a fraction of a
second on the app's one `WebhookSender`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as MimeMessage
from html import escape
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from router.acklinks import DEFAULT_TTL
from router.outbox import RetryPolicy
from router.signing import verify
from router.store.base import DeliveryOutcome
from router.teammodel import TeamModel
from router.web.keys import OUTBOX, STORE, WEBHOOKS

from apphelpers import AUTH, NOW, Client, FakeClock, MakeClient, build_app, json_of
from pages import poll
from services import free_port

MakeModel = Callable[..., TeamModel]
MakeServer = Callable[[web.Application], Awaitable[TestServer]]

PUBLIC_URL = "https://router.example.test"
SECRET = "outbound-hmac-secret-5c1d9e"
CHANNEL_SECRET = "data-team-own-secret-77ab30"
SMTP_FROM = "alerts@router.example.test"
SUMMARY = "COGS feed has nulls"
PIPELINE_NAME = "Aggregate profit (investors)"
WEBHOOK_TIMEOUT = 0.5  # seconds: the one real wait, for receivers that never answer
NAMES = ("Alice", "Bob", "Charlie", "Dana")


# ---------------------------------------------------------------------------------------------
# Webhook receivers: each POST gets the next scripted reply; the last one repeats


HANG = None  # a reply that never comes (until the test ends)
# A status, a status with headers, a coroutine that decides the status, or HANG.
Reply = int | tuple[int, Mapping[str, str]] | Callable[[], Awaitable[int]] | None


@dataclass(frozen=True)
class Received:
    """One request a receiver got."""

    body: bytes
    headers: CIMultiDict[str]

    def json(self) -> dict[str, Any]:
        """The body, parsed."""
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers as scripted and keeps every request."""

    replies: Sequence[Reply]
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), CIMultiDict(request.headers)))
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply is None:
            await self.release.wait()
            return web.Response(status=200)
        if callable(reply):
            reply = await reply()
        status, headers = (reply, {}) if isinstance(reply, int) else reply
        return web.Response(status=status, headers=dict(headers), text=f"answer {status}")

    @property
    def keys(self) -> list[str]:
        """The Idempotency-Key of every request, in order."""
        return [r.headers["Idempotency-Key"] for r in self.requests]


StartReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver(aiohttp_server: MakeServer) -> AsyncIterator[StartReceiver]:
    """`await receiver(500, 500, 200)`: a receiver at `.url` answering 500, 500, then 200."""
    started: list[Receiver] = []

    async def start(*replies: Reply) -> Receiver:
        hook = Receiver(replies or (200,))
        app = web.Application()
        app.router.add_post("/hook", hook.handle)
        server = await aiohttp_server(app)
        hook.url = str(server.make_url("/hook"))
        started.append(hook)
        return hook

    yield start
    for hook in started:  # let hanging handlers finish before the servers close
        hook.release.set()


# ---------------------------------------------------------------------------------------------
# SMTP: an aiosmtpd server in its own thread


class Mailbox:
    """An SMTP handler that keeps every message, or refuses every recipient with `refuse`."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[MimeMessage]:
        """Every message received, parsed."""
        parsed = []
        for envelope in self.envelopes:
            assert envelope.original_content is not None
            mail = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            assert isinstance(mail, MimeMessage)
            parsed.append(mail)
        return parsed


StartSmtp = Callable[..., Controller]


@pytest.fixture
def smtp() -> Iterator[StartSmtp]:
    """`smtp(mailbox, port=None)`: an SMTP server on 127.0.0.1; stopped after the test."""
    started: list[Controller] = []

    def start(handler: Mailbox, port: int | None = None) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def parts(mail: MimeMessage) -> tuple[str, str]:
    """The text and the HTML part of a page."""
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def ack_link(text: str) -> str:
    """The one ack link in a page's text."""
    links = re.findall(r"https?://\S+/ack/\S+", text)
    assert len(links) == 1, text
    link: str = links[0]
    return link


# ---------------------------------------------------------------------------------------------
# The router under test


def team(
    make_model: MakeModel,
    *,
    webhooks: Mapping[str, str] | None = None,
    step_one: Sequence[str] | None = None,
    **sections: Any,
) -> TeamModel:
    """The shipped model with members' personal webhooks, and optionally another step 1 for
    the `investor` policy (aggregate-profit's)."""
    members = [
        {
            "name": name,
            "email": f"{name.lower()}@example.com",
            "webhook": (webhooks or {}).get(name),
        }
        for name in NAMES
    ]
    if step_one is not None:
        investor = {
            "repeat": 2,
            "repeat_after": "10m",
            "steps": [
                {"after": "0m", "notify": list(step_one)},
                {"after": "10m", "notify": ["oncall:backup"]},
                {"after": "20m", "notify": ["owner:primary", "owner:secondary"]},
            ],
        }
        sections["escalation_policies"] = {"investor": investor}
    return make_model(team={"members": members}, **sections)


@dataclass
class Router:
    """The app, a client for its HTTP API, its clock and the SMTP mailbox it sends to."""

    app: web.Application
    client: Client
    clock: FakeClock
    mailbox: Mailbox | None

    async def alert(self, summary: str = SUMMARY, dedup_key: str | None = None) -> int:
        """POST a firing aggregate-profit alert; the id of the incident it opened."""
        body: dict[str, Any] = {
            "pipeline": "aggregate-profit",
            "summary": summary,
            "severity": "critical",
            "status": "firing",
        }
        if dedup_key is not None:
            body["dedup_key"] = dedup_key
        response = await self.client.post("/api/v1/alerts", json=body, headers=AUTH)
        assert response.status == 202, await response.text()
        [incident] = (await json_of(response))["incidents"]
        assert incident["change"] == "opened"
        incident_id: int = incident["id"]
        return incident_id

    async def deliver(self) -> int:
        """One outbox pass; how many notifications it claimed."""
        return await self.app[OUTBOX].deliver_due()

    async def detail(self, incident_id: int) -> dict[str, Any]:
        """`GET /api/v1/incidents/{id}`."""
        response = await self.client.get(f"/api/v1/incidents/{incident_id}", headers=AUTH)
        assert response.status == 200, await response.text()
        detail: dict[str, Any] = await json_of(response)
        return detail

    async def notifications(
        self, incident_id: int, channel: str, recipient: str = "Alice"
    ) -> list[dict[str, Any]]:
        """The incident's notifications over `channel` to `recipient`, oldest first."""
        return [
            n
            for n in (await self.detail(incident_id))["notifications"]
            if n["channel"] == channel and n["recipient"] == recipient
        ]

    async def notification(
        self, incident_id: int, channel: str, recipient: str = "Alice"
    ) -> dict[str, Any]:
        """The one notification of the incident over `channel` to `recipient`."""
        found = await self.notifications(incident_id, channel, recipient)
        assert len(found) == 1, found
        return found[0]

    async def timeline_kinds(self, incident_id: int, notification_id: int) -> list[str]:
        """The timeline events about one notification, oldest first."""
        timeline = (await self.detail(incident_id))["timeline"]
        return [e["kind"] for e in timeline if e.get("notification") == notification_id]

    def move_to(self, instant: str) -> None:
        """Set the clock to a stored time (never backwards)."""
        self.clock.now = max(self.clock.now, datetime.fromisoformat(instant))

    def sent_mail(self) -> list[MimeMessage]:
        """Every email the SMTP server received."""
        assert self.mailbox is not None
        return self.mailbox.messages()


MakeRouter = Callable[..., Awaitable[Router]]


@pytest.fixture
def make_router(tmp_path: Path, aiohttp_client: MakeClient, smtp: StartSmtp) -> MakeRouter:
    """`await make_router(model, mailbox=…, smtp_port=…, **settings)`: the router on a fresh
    database, sending mail to a real SMTP server (a new Mailbox unless `smtp_port` names a
    port the test manages), webhooks with a short timeout, its clock at NOW."""

    async def make(
        model: TeamModel,
        *,
        mailbox: Mailbox | None = None,
        smtp_port: int | None = None,
        **changes: Any,
    ) -> Router:
        if smtp_port is None:
            mailbox = mailbox or Mailbox()
            smtp_port = smtp(mailbox).port
        clock = FakeClock(NOW)
        settings: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_from": SMTP_FROM,
            "hmac_secret": SecretStr(SECRET),
            "public_url": PUBLIC_URL,
            **changes,
        }
        app = build_app(tmp_path, model=model, clock=clock, **settings)
        # The sender's session is made at start-up, with the timeout it has then.
        app[WEBHOOKS].timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)
        client = await aiohttp_client(app)
        return Router(app, client, clock, mailbox)

    return make


def seconds_between(earlier: datetime | str, later: str) -> float:
    """Seconds from `earlier` to the stored instant `later`."""
    start = datetime.fromisoformat(earlier) if isinstance(earlier, str) else earlier
    return (datetime.fromisoformat(later) - start).total_seconds()


# ---------------------------------------------------------------------------------------------
# Email and the one-click ack link


async def test_new_incident_emails_the_on_call_primary_with_subject_parts_runbook_and_ack_link(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    model = team(make_model)
    router = await make_router(model)
    incident = await router.alert()
    assert await router.deliver() == 1

    assert router.mailbox is not None
    [envelope] = router.mailbox.envelopes
    assert envelope.mail_from == SMTP_FROM
    assert envelope.rcpt_tos == ["alice@example.com"]  # week 5: Alice is primary
    [mail] = router.sent_mail()
    assert mail["Subject"] == f"[FIRING] {PIPELINE_NAME}: {SUMMARY}"
    assert mail["To"] == "alice@example.com"
    assert mail["From"] == SMTP_FROM
    notification = await router.notification(incident, "email")
    assert (notification["status"], notification["attempts"]) == ("sent", 1)
    assert mail["X-Router-Idempotency-Key"].strip() == notification["idempotency_key"]

    text, html = parts(mail)
    runbook = model.runbooks["aggregate-profit"]
    assert f"Runbook: {runbook.title}" in text
    for item in [*runbook.dependencies, *runbook.failure_modes]:
        assert item in text
        assert escape(item) in html
    for dependency in runbook.dependencies:
        assert f"[ ] {dependency}" in text  # a checklist
    link = ack_link(text)
    assert link.startswith(f"{PUBLIC_URL}/ack/")
    assert escape(link) in html


async def deliver_first_page(router: Router) -> tuple[int, str]:
    """Open an incident, deliver its first email; the incident and the ack link's path."""
    incident = await router.alert()
    await router.deliver()
    [mail] = router.sent_mail()
    return incident, urlsplit(ack_link(parts(mail)[0])).path


async def test_ack_link_get_only_confirms_and_post_acknowledges_as_the_person_paged(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    router = await make_router(team(make_model))
    incident, path = await deliver_first_page(router)

    page = await router.client.get(path)  # what a mail scanner's prefetch does
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert "Acknowledge as Alice" in html
    assert "<form method='post'>" in html
    assert (await router.detail(incident))["status"] == "open"

    done = await router.client.post(path)
    assert done.status == 200, await done.text()
    detail = await router.detail(incident)
    assert (detail["status"], detail["acknowledged_by"]) == ("acknowledged", "Alice")
    assert "incident.acknowledged" in [event["kind"] for event in detail["timeline"]]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), id="signature"),
        pytest.param(lambda t: "9" + t, id="incident"),
        pytest.param(lambda t: t.replace(".QWxpY2U.", ".Qm9i."), id="person"),
        pytest.param(lambda t: t + ".extra", id="malformed"),
        pytest.param(lambda t: t[:-1] + "%C3%A9", id="non-ascii-signature"),
    ],
)
async def test_tampered_ack_link_answers_410_and_acknowledges_nothing(
    make_router: MakeRouter, make_model: MakeModel, tamper: Callable[[str], str]
) -> None:
    router = await make_router(team(make_model))
    incident, path = await deliver_first_page(router)
    token = path.removeprefix("/ack/")
    forged = tamper(token)
    assert forged != token

    for method in ("GET", "POST"):
        response = await router.client.request(method, f"/ack/{forged}")
        assert response.status == 410, (method, await response.text())
        assert response.content_type == "text/html"
    assert (await router.detail(incident))["status"] == "open"


async def test_ack_link_expires_seven_days_after_the_page_with_a_410(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    router = await make_router(team(make_model))
    incident, path = await deliver_first_page(router)

    router.clock.advance(DEFAULT_TTL - timedelta(seconds=1))
    assert (await router.client.get(path)).status == 200
    router.clock.advance(timedelta(seconds=2))
    for method in ("GET", "POST"):
        response = await router.client.request(method, path)
        assert response.status == 410, (method, await response.text())
        assert "expired" in await response.text()
    assert (await router.detail(incident))["status"] == "open"


# ---------------------------------------------------------------------------------------------
# Webhook formats


async def test_member_webhook_gets_the_generic_body_idempotency_key_and_a_valid_signature(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    assert await router.deliver() == 2  # Alice's email and her webhook

    notification = await router.notification(incident, "webhook")
    assert (notification["status"], notification["attempts"]) == ("sent", 1)
    [request] = hook.requests
    body = request.json()
    assert {
        "event",
        "incident",
        "pipeline",
        "runbook",
        "recipient",
        "step",
        "reasons",
        "ack_url",
    } <= body.keys()
    assert body["event"] == "incident.triggered"
    assert {
        "id",
        "status",
        "pipeline",
        "dedup_key",
        "summary",
        "severity",
        "count",
        "opened_at",
        "updated_at",
        "flags",
    } <= body["incident"].keys()
    assert body["incident"]["id"] == incident
    assert body["incident"]["status"] == "open"
    assert body["incident"]["summary"] == SUMMARY
    assert body["pipeline"] == {
        "id": "aggregate-profit",
        "name": PIPELINE_NAME,
        "area": "Profit",
        "owners": {"primary": "Bob", "secondary": "Dana"},
    }
    assert body["runbook"]["title"] == "Aggregate Profit Reported to Investors"
    assert body["recipient"] == "Alice"
    assert body["step"] == 1
    assert any("Alice primary" in reason for reason in body["reasons"]), body["reasons"]
    assert body["ack_url"].startswith(f"{PUBLIC_URL}/ack/")

    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == notification["idempotency_key"]
    signature = request.headers["X-Router-Signature"]
    now = router.clock.now.timestamp()
    assert verify(signature, request.body, [SECRET], now=now) is None
    assert verify(signature, request.body, ["another-secret"], now=now) is not None


async def test_slack_channel_gets_text_and_blocks_signed_with_the_channels_own_secret(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(200)
    channel = {"type": "webhook", "url": hook.url, "format": "slack", "secret": CHANNEL_SECRET}
    model = team(
        make_model,
        step_one=["oncall:primary", "channel:data-team"],
        channels={"data-team": channel},
    )
    router = await make_router(model)
    incident = await router.alert()
    await router.deliver()

    notification = await router.notification(incident, "webhook", recipient="data-team")
    assert notification["recipient_kind"] == "channel"
    assert notification["status"] == "sent"
    [request] = hook.requests
    body = request.json()
    assert body["text"] == f"[FIRING] {PIPELINE_NAME}: {SUMMARY}"
    assert isinstance(body["blocks"], list)
    assert body["blocks"]
    assert all(isinstance(block, dict) and "type" in block for block in body["blocks"])
    buttons = [
        element
        for block in body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert [button["url"].startswith(f"{PUBLIC_URL}/ack/") for button in buttons] == [True]
    assert request.headers["Idempotency-Key"] == notification["idempotency_key"]
    now = router.clock.now.timestamp()
    signature = request.headers["X-Router-Signature"]
    assert verify(signature, request.body, [CHANNEL_SECRET], now=now) is None
    assert verify(signature, request.body, [SECRET], now=now) is not None


# ---------------------------------------------------------------------------------------------
# Retries, backoff, dead letters


async def test_webhook_500_twice_then_200_is_delivered_on_the_third_attempt_with_one_key(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(500, 500, 200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()

    await router.deliver()
    first = await router.notification(incident, "webhook")
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert "500" in first["last_error"]
    first_wait = seconds_between(router.clock.now, first["next_attempt_at"])
    router.move_to(first["next_attempt_at"])

    await router.deliver()
    second = await router.notification(incident, "webhook")
    assert (second["status"], second["attempts"]) == ("pending", 2)
    second_wait = seconds_between(router.clock.now, second["next_attempt_at"])
    router.move_to(second["next_attempt_at"])
    assert 0 < first_wait <= second_wait  # backs off, never retries at once

    await router.deliver()
    final = await router.notification(incident, "webhook")
    assert (final["status"], final["attempts"]) == ("sent", 3)
    assert final["last_error"] is None
    assert hook.keys == [final["idempotency_key"]] * 3
    kinds = await router.timeline_kinds(incident, final["id"])
    assert kinds == ["notification.retry", "notification.retry", "notification.sent"]


async def test_webhook_429_retry_after_is_honoured_before_the_next_attempt(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver((429, {"Retry-After": "2"}), 200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    await router.deliver()
    failed_at = router.clock.now

    waiting = await router.notification(incident, "webhook")
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert seconds_between(failed_at, waiting["next_attempt_at"]) >= 2

    router.clock.advance(timedelta(seconds=1))
    assert await router.deliver() == 0
    assert len(hook.requests) == 1

    router.clock.advance(timedelta(seconds=1))
    await router.deliver()
    assert len(hook.requests) == 2
    delivered = await router.notification(incident, "webhook")
    assert (delivered["status"], delivered["attempts"]) == ("sent", 2)


def metric(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == dict(labels or {}):
                return float(sample.value)
    return 0.0


async def test_webhook_400_is_dead_lettered_at_once_and_shown_in_status_and_metrics(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(400)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    await router.deliver()

    dead = await router.notification(incident, "webhook")
    assert (dead["status"], dead["attempts"]) == ("dead", 1)
    assert "400" in dead["last_error"]
    router.clock.advance(timedelta(hours=2))
    assert await router.deliver() == 0
    assert len(hook.requests) == 1
    kinds = await router.timeline_kinds(incident, dead["id"])
    assert kinds == ["notification.dead"]

    status = await json_of(await router.client.get("/status", headers=AUTH))
    outbox = status["outbox"]
    assert outbox["dead_letters"] == 1
    assert [(n["id"], n["status"]) for n in outbox["recent_dead_letters"]] == [(dead["id"], "dead")]
    assert outbox["recent_dead_letters"][0]["incident_id"] == incident
    assert outbox["last_delivery"]["webhook"]["result"] == "dead"

    metrics = await (await router.client.get("/metrics")).text()
    dead_sample = {"channel": "webhook", "result": "dead"}
    assert metric(metrics, "router_notifications_total", dead_sample) == 1
    assert metric(metrics, "router_notifications_dead_letters") == 1


async def test_webhook_receiver_that_never_answers_times_out_and_is_retried(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(HANG)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    await router.deliver()

    waiting = await router.notification(incident, "webhook")
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert re.search(r"time(d)? ?out", waiting["last_error"], re.IGNORECASE), waiting
    assert datetime.fromisoformat(waiting["next_attempt_at"]) > router.clock.now
    assert len(hook.requests) == 1
    assert (await router.notification(incident, "email"))["status"] == "sent"


async def test_webhook_connection_refused_is_retried(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    router = await make_router(team(make_model, webhooks={"Alice": closed}))
    incident = await router.alert()
    await router.deliver()

    waiting = await router.notification(incident, "webhook")
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert waiting["last_error"]
    assert datetime.fromisoformat(waiting["next_attempt_at"]) > router.clock.now


async def test_email_is_retried_while_the_smtp_server_is_down_and_delivered_once_it_is_up(
    make_router: MakeRouter, make_model: MakeModel, smtp: StartSmtp
) -> None:
    port = free_port()
    router = await make_router(team(make_model), smtp_port=port)
    incident = await router.alert()
    await router.deliver()

    waiting = await router.notification(incident, "email")
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert f"127.0.0.1:{port}" in waiting["last_error"]

    mailbox = Mailbox()
    smtp(mailbox, port=port)
    router.move_to(waiting["next_attempt_at"])
    await router.deliver()

    delivered = await router.notification(incident, "email")
    assert (delivered["status"], delivered["attempts"]) == ("sent", 2)
    assert [envelope.rcpt_tos for envelope in mailbox.envelopes] == [["alice@example.com"]]


async def test_email_refused_with_550_is_dead_after_one_attempt(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    mailbox = Mailbox(refuse="550 No such user here")
    router = await make_router(team(make_model), mailbox=mailbox)
    incident = await router.alert()
    await router.deliver()

    dead = await router.notification(incident, "email")
    assert (dead["status"], dead["attempts"]) == ("dead", 1)
    assert "550" in dead["last_error"]
    router.clock.advance(timedelta(hours=2))
    assert await router.deliver() == 0
    assert mailbox.envelopes == []


async def test_a_receiver_that_always_fails_is_dead_lettered_after_the_attempt_budget(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(500)
    router = await make_router(
        team(make_model, webhooks={"Alice": hook.url}), delivery_max_attempts=3
    )
    incident = await router.alert()

    for attempt in (1, 2, 3):
        await router.deliver()
        notification = await router.notification(incident, "webhook")
        assert notification["attempts"] == attempt
        if attempt < 3:
            assert notification["status"] == "pending"
            router.move_to(notification["next_attempt_at"])
    assert notification["status"] == "dead"
    assert len(hook.requests) == 3
    router.clock.advance(timedelta(hours=2))
    assert await router.deliver() == 0
    assert len(hook.requests) == 3
    kinds = await router.timeline_kinds(incident, notification["id"])
    assert kinds == ["notification.retry", "notification.retry", "notification.dead"]


# ---------------------------------------------------------------------------------------------
# Resolve, isolation between destinations, crash redelivery


async def test_resolving_tells_everyone_paged_by_email_and_webhook_and_nobody_else(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    await router.deliver()
    assert len(router.sent_mail()) == 1
    assert len(hook.requests) == 1

    router.clock.advance(timedelta(minutes=3))
    response = await router.client.post(
        f"/api/v1/incidents/{incident}/resolve", json={"by": "Bob"}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    assert await router.deliver() == 2

    [_, resolved_mail] = router.sent_mail()
    assert resolved_mail["Subject"] == f"[RESOLVED] {PIPELINE_NAME}: {SUMMARY}"
    assert resolved_mail["To"] == "alice@example.com"
    assert "/ack/" not in parts(resolved_mail)[0]  # nothing left to acknowledge
    assert router.mailbox is not None
    assert [e.rcpt_tos for e in router.mailbox.envelopes] == [["alice@example.com"]] * 2
    resolved = hook.requests[1].json()
    assert resolved["event"] == "incident.resolved"
    assert resolved["incident"]["status"] == "resolved"
    assert resolved["incident"]["resolved_by"] == "Bob"
    assert resolved["ack_url"] is None
    notes = (await router.detail(incident))["notifications"]
    resolved_notes = [n for n in notes if n["event"] == "incident.resolved"]
    assert sorted((n["recipient"], n["channel"], n["status"]) for n in resolved_notes) == [
        ("Alice", "email", "sent"),
        ("Alice", "webhook", "sent"),
    ]


async def test_a_trigger_page_still_retrying_when_the_incident_resolves_is_not_sent_after_it(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    """A chat room whose webhook was down while the incident came and went must not be told
    FIRING once it is back: resolve ends the incident, so its undelivered pages are moot
    (as in PagerDuty), and a FIRING that arrives after, or racing, the RESOLVED would
    re-open it in a pager bridge."""
    hook = await receiver(500, 200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    await router.deliver()
    assert (await router.notification(incident, "webhook"))["status"] == "pending"

    response = await router.client.post(
        f"/api/v1/incidents/{incident}/resolve", json={"by": "Bob"}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    for _ in range(3):  # well past the trigger page's next attempt
        router.clock.advance(timedelta(minutes=5))
        await router.deliver()

    after_resolve = [request.json()["event"] for request in hook.requests[1:]]
    assert after_resolve == ["incident.resolved"]


async def test_a_hanging_destination_does_not_hold_up_another_in_the_same_pass(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    seen_while_alice_hangs: list[str] = []

    async def note_alices_page() -> int:
        """The healthy page arrives: is Alice's page still in flight, or already given up?"""
        alice = await router.notification(incident, "webhook", recipient="Alice")
        seen_while_alice_hangs.append(alice["status"])
        return 200

    dead_hook = await receiver(HANG)
    healthy_hook = await receiver(note_alices_page)
    model = team(
        make_model,
        webhooks={"Alice": dead_hook.url, "Bob": healthy_hook.url},
        step_one=["oncall:primary", "oncall:backup"],
    )
    router = await make_router(model)
    incident = await router.alert()
    assert await router.deliver() == 4  # Alice and Bob, each by email and webhook

    healthy = await router.notification(incident, "webhook", recipient="Bob")
    assert (healthy["status"], healthy["attempts"]) == ("sent", 1)
    assert seen_while_alice_hangs == ["sending"]  # not sent after Alice's timeout
    stuck = await router.notification(incident, "webhook", recipient="Alice")
    assert (stuck["status"], stuck["attempts"]) == ("pending", 1)
    assert len(dead_hook.requests) == 1


async def test_an_open_circuit_defers_only_its_own_destination(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    failing_hook = await receiver(500)
    healthy_hook = await receiver(200)
    model = team(
        make_model,
        webhooks={"Alice": failing_hook.url, "Bob": healthy_hook.url},
        step_one=["oncall:primary", "oncall:backup"],
    )
    router = await make_router(model)
    breaker = router.app[OUTBOX].breaker
    # Open Alice's circuit: one failed attempt per incident, up to the breaker's threshold.
    for number in range(breaker.threshold):
        await router.alert(summary=f"failure {number}", dedup_key=f"failure-{number}")
        await router.deliver()
    assert len(failing_hook.requests) == breaker.threshold

    incident = await router.alert(dedup_key="after-the-circuit-opened")
    await router.deliver()

    assert len(failing_hook.requests) == breaker.threshold  # resting: not tried
    deferred = await router.notification(incident, "webhook", recipient="Alice")
    assert (deferred["status"], deferred["attempts"]) == ("pending", 0)
    assert "resting" in deferred["last_error"]
    healthy = await router.notification(incident, "webhook", recipient="Bob")
    assert (healthy["status"], healthy["attempts"]) == ("sent", 1)
    assert len(healthy_hook.requests) == breaker.threshold + 1


async def test_a_notification_claimed_by_a_worker_that_died_is_delivered_after_its_lease(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    pending = await router.notification(incident, "webhook")
    lease = router.app[OUTBOX].policy.lease

    # A worker claims everything due, then dies before sending or recording anything.
    claimed = await router.app[STORE].claim_deliveries(router.clock.now, 10, lease)
    assert {c.notification.channel for c in claimed} == {"email", "webhook"}
    assert await router.deliver() == 0  # still leased: nobody sends it twice
    assert hook.requests == []

    router.clock.advance(lease)
    assert await router.deliver() == 2
    delivered = await router.notification(incident, "webhook")
    assert delivered["status"] == "sent"
    assert hook.keys == [pending["idempotency_key"]]
    assert delivered["idempotency_key"] == pending["idempotency_key"]
    assert (await router.notification(incident, "email"))["status"] == "sent"
    assert len(router.sent_mail()) == 1


@pytest.mark.parametrize("retry_after", [3600.0, 86400.0, 1e300, math.inf])
def test_a_retry_after_past_the_budget_dead_letters_instead_of_parking_the_page(
    retry_after: float,
) -> None:
    """Honoured, a receiver's `Retry-After: 86400` (or an absurd one) would leave the page
    pending long after its one-hour budget, and escalation waiting on it."""
    policy = RetryPolicy(max_age=timedelta(hours=1))
    created = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    now = created + timedelta(minutes=5)
    assert policy.next_attempt(1, created, now, retry_after) is None
    later = policy.next_attempt(1, created, now, 2.0)  # within the budget: honoured
    assert later is not None
    assert later >= now + timedelta(seconds=2)


async def test_cancelling_the_delivery_loop_cancels_the_sends_it_started(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    """Past the drain timeout the loop is cancelled: its sends must stop with it, not run on
    while the webhook session and the store close under them."""
    hook = await receiver(HANG)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    await router.alert()
    loop_task = asyncio.create_task(router.app[OUTBOX].run(asyncio.Event()))
    # The receiver, a real server, has the request when it is in flight.
    await poll(lambda: bool(hook.requests), within=2, what="the send in flight")
    sends = [
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__ == "Outbox._deliver_logged"  # type: ignore[union-attr]
    ]
    assert sends, "no send in flight"
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop_task
    assert all(task.done() for task in sends)


class CountingEvent(asyncio.Event):
    """An Event that counts its waiters: the delivery loop waits on `stop` once a turn."""

    waits = 0

    async def wait(self) -> Literal[True]:
        self.waits += 1
        return await super().wait()


async def test_a_full_pipeline_waits_for_room_instead_of_spinning_on_a_wake_up(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    """With every slot taken by a send that hangs, a wake-up (a new page) cannot be served
    yet: the loop must sleep until a send finishes, not turn over on the set wake-up."""
    hook = await receiver(HANG)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    outbox = router.app[OUTBOX]
    outbox.batch = 1
    await router.alert()
    stop = CountingEvent()
    loop_task = asyncio.create_task(outbox.run(stop))
    # The receiver, a real server, has the request when it is in flight.
    await poll(lambda: bool(hook.requests), within=2, what="the send in flight")
    assert hook.requests, "no send in flight"
    turns_before = stop.waits

    outbox.wake()
    for _ in range(100):
        await asyncio.sleep(0)

    assert stop.waits - turns_before <= 1
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop_task


async def test_a_held_outbox_claims_nothing_until_let_go_and_woken(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    """A delivery worker holds its claims while part of a new team model has arrived: the
    pages now due may have been planned by it. The wake-up that follows the model lets
    them go."""
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    outbox = router.app[OUTBOX]
    held = [True]
    outbox._hold = lambda: held[0]
    await router.alert()
    stop = CountingEvent()
    loop_task = asyncio.create_task(outbox.run(stop, poll=0.01))
    # Five turns of the loop, each one declining to claim.
    await poll(lambda: stop.waits >= 5, within=5, what="five turns of the loop")
    assert hook.requests == []
    held[0] = False
    outbox.wake()
    await _delivered_once(hook, stop, loop_task)


async def test_pages_claimed_while_a_hold_began_wait_for_it_to_end(
    make_router: MakeRouter,
    make_model: MakeModel,
    receiver: StartReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hold can begin while a claim is under way (a new team model reaching a worker):
    the pages that claim returns must not start before it ends."""
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    outbox = router.app[OUTBOX]
    held = [False]
    asked: list[bool] = []

    def hold() -> bool:
        asked.append(held[0])
        return held[0]

    outbox._hold = hold
    claim = outbox.store.claim_deliveries

    async def claim_then_hold(*args: Any) -> Any:
        claimed = await claim(*args)
        held[0] = True
        return claimed

    monkeypatch.setattr(outbox.store, "claim_deliveries", claim_then_hold)
    await router.alert()
    stop = asyncio.Event()
    loop_task = asyncio.create_task(outbox.run(stop, poll=0.01))
    await poll(  # the claimed page waits, asking again and again
        lambda: asked.count(True) >= 5, within=5, what="the claimed page to wait"
    )
    assert hook.requests == []
    held[0] = False
    await _delivered_once(hook, stop, loop_task)


async def _delivered_once(
    hook: Receiver, stop: asyncio.Event, loop_task: asyncio.Task[None]
) -> None:
    """The receiver gets the page (a real server: poll it); the loop stops, its sends done;
    one request came in all."""
    await poll(lambda: bool(hook.requests), within=5, what="the page")
    stop.set()
    await loop_task
    assert len(hook.requests) == 1


async def test_an_attempt_that_would_outlive_its_lease_is_cut_short_and_retried(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    """Past its lease another worker may claim the page: the attempt must end first (here
    the lease is shorter than the webhook timeout, as a long configured timeout would be)."""
    hook = await receiver(HANG)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    outbox = router.app[OUTBOX]
    outbox.policy = replace(outbox.policy, lease=timedelta(seconds=WEBHOOK_TIMEOUT / 2))
    incident = await router.alert()

    await router.deliver()

    assert len(hook.requests) == 1
    page = await router.notification(incident, "webhook")
    assert (page["status"], page["attempts"]) == ("pending", 1)
    assert "outlasted its lease" in page["last_error"]
    assert "timed out" not in page["last_error"]


async def test_an_outcome_recorded_after_another_worker_took_the_lease_is_dropped(
    make_router: MakeRouter, make_model: MakeModel, receiver: StartReceiver
) -> None:
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    store, lease = router.app[STORE], router.app[OUTBOX].policy.lease
    first = {d.notification.channel: d for d in await store.claim_deliveries(NOW, 10, lease)}
    router.clock.advance(lease)  # the first worker is presumed dead: its lease ran out
    second = {
        d.notification.channel: d for d in await store.claim_deliveries(router.clock.now, 10, lease)
    }
    assert first.keys() == second.keys() == {"email", "webhook"}

    late, current = first["webhook"], second["webhook"]
    stale = DeliveryOutcome(late.notification, "dead", router.clock.now, "too late", None)
    assert not await store.record_delivery(replace(stale, lease_until=late.lease_until))
    page = await router.notification(incident, "webhook")
    assert page["status"] == "sending"
    assert "notification.dead" not in await router.timeline_kinds(incident, page["id"])

    sent = DeliveryOutcome(current.notification, "sent", router.clock.now)
    assert await store.record_delivery(replace(sent, lease_until=current.lease_until))
    assert (await router.notification(incident, "webhook"))["status"] == "sent"


async def test_an_unexpected_error_after_the_lease_was_renewed_still_dead_letters_the_page(
    make_router: MakeRouter,
    make_model: MakeModel,
    receiver: StartReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page that waited past half its lease for its turn is sent under a renewed lease: an
    unexpected error in that attempt is recorded under the renewed lease too, not dropped as
    if another worker had taken the page (which would leave it `sending`, then claim it
    again after every lease)."""
    hook = await receiver(200)
    router = await make_router(team(make_model, webhooks={"Alice": hook.url}))
    incident = await router.alert()
    store = router.app[STORE]
    claim = store.claim_deliveries

    async def claim_then_wait(now: datetime, limit: int, lease: timedelta) -> list[Any]:
        claimed = await claim(now, limit, lease)
        router.clock.advance(lease * 0.6)  # the pages wait for their destination's turn
        return claimed

    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug in the sender")

    monkeypatch.setattr(store, "claim_deliveries", claim_then_wait)
    monkeypatch.setattr(router.app[WEBHOOKS], "send", broken)
    await router.deliver()

    page = await router.notification(incident, "webhook")
    assert page["status"] == "dead"
    assert "unexpected error: RuntimeError" in page["last_error"]
    assert (await router.notification(incident, "email"))["status"] == "sent"
