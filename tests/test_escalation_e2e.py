"""Escalation end to end with real parts on loopback: timers that page, stop and survive a crash.

A real `router serve` (and, in the first test, a real Prometheus Alertmanager in front of it)
pages through an aiosmtpd SMTP server and an aiohttp webhook receiver run by the test. The
team model is the shipped one with second-scale escalation delays, so a whole chain runs in
seconds: the backup is paged when nobody acknowledges, the emailed ack link stops the chain,
a resolve tells everyone who was paged, and a `kill -9` between two steps neither doubles nor
skips a step after the restart (SPEC section 4, "Escalation": "Timers are persisted: a restart
resumes them at the right time, and does not page twice").

The router's clock is the real one here, so who is on call depends on today's date: each test
asks `GET /api/v1/oncall` first. Waits poll another process (the router, Alertmanager, the
mail and webhook sinks) or the wall clock, and are bounded; they never stand in for a check.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any, Self

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from router.signing import verify

from configs import copy_shipped, edit
from services import (
    AlertmanagerProcess,
    RouterProcess,
    free_port,
    http_request,
    require_binary,
    wait_until,
)

MEMBERS = ("Alice", "Bob", "Charlie", "Dana")
OWNERS = ("Bob", "Dana")  # aggregate-profit's owner:primary and owner:secondary
PIPELINE = "aggregate-profit"
PIPELINE_NAME = "Aggregate profit (investors)"
AM_TOKEN = "alertmanager-escalation-token-0123456789"
HMAC_SECRET = "escalation-e2e-webhook-secret"
# How long after its due time a step may take to reach a sink: the escalator polls every
# second, then the outbox is woken and delivers over loopback.
FIRE_SLACK = 1.0 + 1.5
# Bounds for waiting on another process (start-up, Alertmanager's flushes, a delivery).
WAIT = 20.0
KEY_PATTERN = re.compile(
    r"/(?P<event>incident\.[a-z]+)/round-(?P<round>\d+)/step-(?P<step>\d+)/"
    r"member:(?P<who>[^/]+)/(?P<channel>email|webhook)$"
)
ACK_LINK = re.compile(r"https?://\S+/ack/\S+")
PAGING_TAGS = ("[FIRING]", "[ESCALATED]")  # subjects that ask someone to act


def email_of(name: str) -> str:
    """The shipped config's address for a member (the test's SMTP server takes them all)."""
    return f"{name.lower()}@example.com"


def subject(tag: str, summary: str) -> str:
    """An email's subject as SPEC section 3 spells it."""
    return f"[{tag}] {PIPELINE_NAME}: {summary}"


# ---------------------------------------------------------------------------------------------
# Sinks: what the router sends, recorded with when it arrived


@dataclass(frozen=True)
class Mail:
    """One email the SMTP server accepted, for one recipient."""

    to: str
    subject: str
    text: str
    key: str  # X-Router-Idempotency-Key
    received: float  # time.time()

    @property
    def page(self) -> tuple[int, int, str]:
        """(round, step, member) of the page, read from its idempotency key."""
        found = KEY_PATTERN.search(self.key)
        assert found is not None, self.key
        return int(found["round"]), int(found["step"]), found["who"]


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 (in its own thread) that keeps every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        assert envelope.original_content is not None
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, MimeMessage)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        received = time.time()
        with self._lock:
            self._mails.extend(
                Mail(
                    str(rcpt),
                    # A long subject is folded right after "Subject:"; Python's parser then
                    # keeps the fold's space, which mail clients drop as they unfold.
                    str(message["Subject"]).strip(),
                    str(text),
                    str(message["X-Router-Idempotency-Key"]),
                    received,
                )
                for rcpt in envelope.rcpt_tos
            )
        return "250 Message accepted for delivery"

    def mails(self) -> list[Mail]:
        """Every message so far, in order of arrival."""
        with self._lock:
            return list(self._mails)

    def find(self, to: str, tag: str) -> list[Mail]:
        """Messages to `to` whose subject starts with `[tag]`."""
        return [m for m in self.mails() if m.to == to and m.subject.startswith(f"[{tag}] ")]

    def wait_for(self, to: str, tag: str, *, timeout: float = WAIT, count: int = 1) -> Mail:
        """The `count`-th `[tag]` email to `to`, once it has arrived."""

        def arrived() -> Mail | None:
            found = self.find(to, tag)
            return found[count - 1] if len(found) >= count else None

        if (mail := arrived()) is not None:
            return mail
        try:
            return wait_until(arrived, timeout=timeout, what=f"[{tag}] email #{count} to {to}")
        except pytest.fail.Exception as err:
            raise AssertionError(f"{err}; received: {self.summary()}") from None

    def summary(self) -> list[tuple[str, str]]:
        """(recipient, subject) of every message, for failure messages."""
        return [(m.to, m.subject) for m in self.mails()]

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class Hook:
    """One webhook request the receiver got."""

    member: str  # from the URL path: whose webhook the router called
    body: dict[str, Any]
    key: str  # Idempotency-Key
    signature_error: str | None  # None: signed with HMAC_SECRET


class WebhookSink:
    """An aiohttp server on 127.0.0.1, on its own event loop in its own thread (so the test
    can block on processes), answering 200 to `POST /hook/{member}` and keeping every body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Hook] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.base = ""

    def url(self, member: str) -> str:
        """The webhook URL of one member."""
        return f"{self.base}/hook/{member}"

    async def _serve(self) -> str:
        app = web.Application()
        app.router.add_post("/hook/{member}", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        header = request.headers.get("X-Router-Signature", "")
        hook = Hook(
            request.match_info["member"],
            json.loads(raw),
            request.headers.get("Idempotency-Key", ""),
            verify(header, raw, [HMAC_SECRET], time.time()),
        )
        with self._lock:
            self._hooks.append(hook)
        return web.Response(status=200)

    def hooks(self) -> list[Hook]:
        """Every request so far, in order of arrival."""
        with self._lock:
            return list(self._hooks)

    def find(self, member: str, event: str) -> list[Hook]:
        """Requests to `member`'s webhook carrying `event`."""
        return [h for h in self.hooks() if h.member == member and h.body["event"] == event]

    def __enter__(self) -> Self:
        self._thread.start()
        self.base = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# ---------------------------------------------------------------------------------------------
# The router: a config with second-scale delays, and what its API says


Steps = list[tuple[str, list[str]]]  # (after, targets) of each escalation step


def escalation_config(
    tmp_path: Path,
    steps: Steps,
    *,
    repeat: int = 0,
    repeat_after: str = "2s",
    webhooks: WebhookSink | None = None,
) -> Path:
    """The shipped config with the investor policy (aggregate-profit's) replaced by `steps`,
    and, with `webhooks`, every member's webhook at the receiver as well as their email."""
    folder = copy_shipped(tmp_path)
    lines = "\n".join(
        f"      - {{after: {after}, notify: {json.dumps(targets)}}}" for after, targets in steps
    )
    (folder / "escalation.yaml").write_text(
        f"""\
escalation_policies:
  investor:
    repeat: {repeat}
    repeat_after: {repeat_after}
    steps:
{lines}
  experiment:
    repeat: 0
    repeat_after: 2s
    steps:
      - {{after: 0s, notify: ["owner:primary"]}}
channels: {{}}
"""
    )
    if webhooks is not None:
        for name in MEMBERS:
            edit(
                folder / "team.yaml",
                f"{{name: {name}, email: {email_of(name)}}}",
                f'{{name: {name}, email: {email_of(name)}, webhook: "{webhooks.url(name)}"}}',
            )
    return folder


def router_env(smtp: SmtpSink) -> dict[str, str]:
    """Settings that point the router's email at the test's SMTP server."""
    return {
        "ROUTER_SMTP_HOST": "127.0.0.1",
        "ROUTER_SMTP_PORT": str(smtp.port),
        "ROUTER_HMAC_SECRET": HMAC_SECRET,
        "ROUTER_RATE_LIMIT_PER_SECOND": "0",
    }


def api(router: RouterProcess, path: str) -> Any:
    """GET an API path with the router's token; asserts 200."""
    status, body = router.get(path)
    assert status == 200, (path, body)
    return body


def oncall_now(router: RouterProcess) -> tuple[str, str]:
    """Effective (primary, backup) right now, as the router sees it."""
    answer = api(router, "/api/v1/oncall")
    primary, backup = answer["primary"], answer["backup"]
    assert isinstance(primary, str), answer
    assert isinstance(backup, str), answer
    return primary, backup


def incident(router: RouterProcess, incident_id: int) -> dict[str, Any]:
    """One incident with its alerts, notifications and timeline."""
    found: dict[str, Any] = api(router, f"/api/v1/incidents/{incident_id}")
    return found


def pages(found: dict[str, Any]) -> Counter[tuple[int, int, str, str]]:
    """An incident's escalation notifications per (round, step, recipient, channel)."""
    return Counter(
        (n["round"], n["step"], n["recipient"], n["channel"])
        for n in found["notifications"]
        if n["event"] in {"incident.triggered", "incident.escalated"}
    )


def created(found: dict[str, Any], round_: int, step: int) -> datetime:
    """When a step's notifications were created: when the step fired."""
    times = {
        datetime.fromisoformat(n["created_at"])
        for n in found["notifications"]
        if (n["round"], n["step"]) == (round_, step) and n["event"] != "incident.resolved"
    }
    assert len(times) == 1, (round_, step, found["notifications"])
    return times.pop()


def with_status(router: RouterProcess, incident_id: int, status: str) -> dict[str, Any] | None:
    """The incident once it has `status`, else None (for `wait_until`)."""
    found = incident(router, incident_id)
    return found if found["status"] == status else None


def all_sent(router: RouterProcess, incident_id: int) -> dict[str, Any] | None:
    """The incident once every notification is `sent`, else None (for `wait_until`)."""
    found = incident(router, incident_id)
    done = found["notifications"] and all(n["status"] == "sent" for n in found["notifications"])
    return found if done else None


def exhausted(router: RouterProcess, incident_id: int) -> dict[str, Any] | None:
    """The incident once its escalation is exhausted and every page is sent, else None."""
    found = all_sent(router, incident_id)
    if found is None or not any(e["kind"] == "escalation.exhausted" for e in found["timeline"]):
        return None
    return found


def post_alert(router: RouterProcess, key: str, summary: str) -> tuple[int, datetime]:
    """POST one generic firing alert for aggregate-profit; (incident id, opened_at)."""
    alert = {
        "pipeline": PIPELINE,
        "summary": summary,
        "severity": "critical",
        "status": "firing",
        "dedup_key": key,
        "source": "test_escalation_e2e",
    }
    status, raw = http_request("POST", f"{router.base_url}/api/v1/alerts", alert, router.token)
    body = json.loads(raw)
    assert status == 202, body
    [opened] = body["incidents"]
    assert opened["change"] == "opened", body
    found = incident(router, int(opened["id"]))
    return int(found["id"]), datetime.fromisoformat(found["opened_at"])


def sleep_until(instant: datetime) -> None:
    """Wait on the wall clock (not on any process) until `instant` has passed."""
    remaining = (instant - datetime.now(UTC)).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def stays_quiet(check: Callable[[], str | None], until: float) -> None:
    """Fail as soon as `check()` reports something, or return at `until` (time.time())."""
    while True:
        problem = check()
        assert problem is None, problem
        if time.time() >= until:
            return
        time.sleep(0.05)


@contextmanager
def kept_log(*processes: RouterProcess) -> Iterator[None]:
    """On a failure, print the routers' logs (pytest shows them with the failure)."""
    try:
        yield
    except BaseException:
        for process in processes:
            print(f"--- router {process.base_url} ---\n{process.log()}")
        raise


# ---------------------------------------------------------------------------------------------
# 1. Alertmanager → router → email and webhook: escalate, ack by link, resolve

# Primary at once, the backup after 2 s, both owners 3 s after that (ack in between).
STEP_2_AFTER = 2
STEP_3_AFTER = 5
ALERTNAME = "ProfitTableStale"
LABELS = {"alertname": ALERTNAME, "pipeline": PIPELINE, "severity": "critical"}
SUMMARY = "aggregate_profit table not refreshed for 3 hours"


@pytest.mark.timeout(120)
def test_no_ack_pages_the_backup_the_emailed_link_stops_the_chain_resolve_tells_everyone(
    tmp_path: Path,
) -> None:
    binary = require_binary(
        "alertmanager",
        "the escalation end-to-end test runs the real Alertmanager (Debian: "
        "prometheus-alertmanager)",
        aliases=("prometheus-alertmanager",),
    )
    steps: Steps = [
        ("0s", ["oncall:primary"]),
        (f"{STEP_2_AFTER}s", ["oncall:backup"]),
        (f"{STEP_3_AFTER}s", ["owner:primary", "owner:secondary"]),
    ]
    with SmtpSink() as smtp, WebhookSink() as hooks:
        config = escalation_config(tmp_path, steps, webhooks=hooks)
        router = RouterProcess(
            tmp_path / "router",
            config=config,
            tokens={"alertmanager": AM_TOKEN},
            env=router_env(smtp),
        )
        with router, kept_log(router):
            am_url = f"{router.base_url}/api/v1/alerts/alertmanager"
            with AlertmanagerProcess(
                binary, tmp_path / "alertmanager", webhook_url=am_url, token=AM_TOKEN
            ) as alertmanager:
                run_escalation_story(router, alertmanager, smtp, hooks)


def run_escalation_story(
    router: RouterProcess, alertmanager: AlertmanagerProcess, smtp: SmtpSink, hooks: WebhookSink
) -> None:
    primary, backup = oncall_now(router)
    alertmanager.push(LABELS, SUMMARY)

    def opened() -> dict[str, Any] | None:
        listed = api(router, "/api/v1/incidents?limit=1000")["incidents"]
        return next((i for i in listed if i["name"] == ALERTNAME), None)

    first = wait_until(opened, timeout=WAIT, what="the incident from Alertmanager's webhook")
    incident_id = int(first["id"])
    opened_at = datetime.fromisoformat(first["opened_at"]).timestamp()

    # Step 1 at once: the on-call primary, by email and by webhook.
    fired = smtp.wait_for(email_of(primary), "FIRING")
    assert fired.subject == subject("FIRING", SUMMARY)
    assert fired.page == (1, 1, primary)
    assert ACK_LINK.search(fired.text), fired.text

    # Nobody acknowledges: the backup is paged after the step's delay, not before.
    escalated = smtp.wait_for(email_of(backup), "ESCALATED", timeout=STEP_2_AFTER + WAIT)
    assert escalated.subject == subject("ESCALATED", SUMMARY)
    assert escalated.page == (1, 2, backup)
    assert escalated.received >= opened_at + STEP_2_AFTER, (opened_at, escalated.received)

    # The emailed link: GET shows a confirm form and acknowledges nothing; POST acknowledges.
    [link] = ACK_LINK.findall(escalated.text)
    assert link.startswith(f"{router.base_url}/ack/"), link
    status, page = http_request("GET", link)
    assert status == 200, page
    assert b"<form method='post'>" in page, page
    assert f"Acknowledge as {backup}".encode() in page, page
    assert incident(router, incident_id)["status"] == "open"
    status, page = http_request("POST", link)
    assert status == 200, page
    assert b"acknowledged" in page, page
    acked = incident(router, incident_id)
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == backup
    # Step 3 is due its delay after step 2 really fired; the ack must have come first.
    step_3_due = created(acked, 1, 2).timestamp() + (STEP_3_AFTER - STEP_2_AFTER)
    acked_at = datetime.fromisoformat(acked["acknowledged_at"]).timestamp()
    assert acked_at < step_3_due, "the ack came after step 3 was due: the machine is too slow"

    # Past step 3's due time (and the escalator's poll): nobody else is paged.
    def nothing_new() -> str | None:
        paging = [m for m in smtp.mails() if m.subject.split(" ", 1)[0] in PAGING_TAGS]
        if len(paging) > 2:
            return f"a page after the ack: {smtp.summary()}"
        return None

    stays_quiet(nothing_new, until=step_3_due + FIRE_SLACK)
    expected = {
        (1, 1, primary, "email"): 1,
        (1, 1, primary, "webhook"): 1,
        (1, 2, backup, "email"): 1,
        (1, 2, backup, "webhook"): 1,
    }
    assert pages(incident(router, incident_id)) == expected
    steps = [e for e in incident(router, incident_id)["timeline"] if e["kind"] == "escalation.step"]
    assert [(e["round"], e["step"]) for e in steps] == [(1, 1), (1, 2)], steps

    # Resolved in Alertmanager: the router resolves the incident and tells everyone paged.
    alertmanager.push(LABELS, SUMMARY, resolved=True)
    resolved = wait_until(
        lambda: with_status(router, incident_id, "resolved"),
        timeout=WAIT,
        what="the incident resolved by Alertmanager's resolved webhook",
    )
    assert resolved["resolved_by"] == "alertmanager"
    for name in (primary, backup):
        smtp.wait_for(email_of(name), "RESOLVED")
        wait_until(
            lambda: hooks.find(name, "incident.resolved") or None,  # noqa: B023 - used at once
            timeout=WAIT,
            what=f"the incident.resolved webhook to {name}",
        )
    final = wait_until(lambda: all_sent(router, incident_id), timeout=WAIT, what="all sent")

    # Everyone paged heard each thing exactly once, by email and by webhook; nobody else did.
    # (Whether an ack is announced too is not this test's business: those are left out.)
    mails = Counter((m.to, m.subject) for m in smtp.mails() if "[ACKNOWLEDGED]" not in m.subject)
    assert mails == {
        (email_of(primary), subject("FIRING", SUMMARY)): 1,
        (email_of(backup), subject("ESCALATED", SUMMARY)): 1,
        (email_of(primary), subject("RESOLVED", SUMMARY)): 1,
        (email_of(backup), subject("RESOLVED", SUMMARY)): 1,
    }, smtp.summary()
    received = Counter(
        (h.member, h.body["event"], h.body["step"])
        for h in hooks.hooks()
        if h.body["event"] != "incident.acknowledged"
    )
    assert received == {
        (primary, "incident.triggered", 1): 1,
        (backup, "incident.escalated", 2): 1,
        (primary, "incident.resolved", 0): 1,
        (backup, "incident.resolved", 0): 1,
    }, hooks.hooks()
    for hook in hooks.hooks():
        assert hook.signature_error is None, hook
        assert hook.body["recipient"] == hook.member, hook
        assert hook.body["incident"]["id"] == incident_id, hook
        if hook.body["event"] in {"incident.triggered", "incident.escalated"}:
            assert str(hook.body["ack_url"]).startswith(f"{router.base_url}/ack/"), hook
    assert {h.key for h in hooks.hooks()} == {
        n["idempotency_key"] for n in final["notifications"] if n["channel"] == "webhook"
    }


# ---------------------------------------------------------------------------------------------
# 2. kill -9 between step 1 and step 2: the restarted router fires step 2 once, then step 3

RESTART_STEPS: Steps = [
    ("0s", ["oncall:primary"]),
    ("3s", ["oncall:backup"]),
    ("6s", ["owner:primary", "owner:secondary"]),  # one step, two targets: both owners
]


@pytest.mark.timeout(120)
def test_a_step_that_fell_due_while_the_router_was_down_fires_once_after_the_restart(
    tmp_path: Path,
) -> None:
    summary = "restart between escalation steps"
    with SmtpSink() as smtp:
        config = escalation_config(tmp_path, RESTART_STEPS, repeat=0)
        workdir = tmp_path / "router"
        first = RouterProcess(workdir, config=config, env=router_env(smtp))
        with first, kept_log(first):
            primary, backup = oncall_now(first)
            incident_id, opened_at = post_alert(first, "restart-probe", summary)
            smtp.wait_for(email_of(primary), "FIRING")
            # Right after step 1 is delivered and recorded, well before step 2 is due.
            wait_until(
                lambda: all_sent(first, incident_id), timeout=WAIT, what="step 1 recorded sent"
            )
            before = pages(incident(first, incident_id))
            first.kill9()
            killed_at = datetime.now(UTC)
        assert before == {(1, 1, primary, "email"): 1}, before
        assert killed_at < opened_at + timedelta(seconds=3), "killed after step 2 was due"

        # Step 2 falls due while no router runs.
        sleep_until(opened_at + timedelta(seconds=3.5))
        restarted_at = datetime.now(UTC)
        second = RouterProcess(workdir, config=config, env=router_env(smtp))
        with second, kept_log(first, second):
            up_at = datetime.now(UTC)  # started and answering its health check
            escalated = smtp.wait_for(email_of(backup), "ESCALATED")
            assert escalated.page == (1, 2, backup)
            for owner in OWNERS:
                count = 2 if owner == backup else 1  # the backup may also be an owner
                mail = smtp.wait_for(email_of(owner), "ESCALATED", count=count, timeout=WAIT)
                assert mail.page == (1, 3, owner)
            # Once exhausted nothing more is due (the config has no fallback channel).
            final = wait_until(
                lambda: exhausted(second, incident_id), timeout=WAIT, what="the chain's end"
            )

    expected = Counter(
        {
            (1, 1, primary, "email"): 1,
            (1, 2, backup, "email"): 1,
            **{(1, 3, owner, "email"): 1 for owner in OWNERS},
        }
    )
    assert pages(final) == expected, final["notifications"]
    assert Counter(m.key for m in smtp.mails()).most_common(1)[0][1] == 1, smtp.summary()
    assert Counter((*m.page, "email") for m in smtp.mails()) == expected
    mails = Counter((m.to, m.subject) for m in smtp.mails())
    assert mails == Counter(
        [
            (email_of(primary), subject("FIRING", summary)),
            (email_of(backup), subject("ESCALATED", summary)),
            *((email_of(owner), subject("ESCALATED", summary)) for owner in OWNERS),
        ]
    ), smtp.summary()
    # Step 2 was fired by the restarted router, once; step 3 kept its 3 s after step 2.
    step_2 = created(final, 1, 2)
    assert step_2 >= restarted_at, (step_2, restarted_at)
    # ...and at once, not a period later: within a tick of the escalator once it is up,
    # with room for a loaded CI machine.
    assert step_2 - up_at < timedelta(seconds=FIRE_SLACK + 2), (step_2, up_at)
    assert timedelta(seconds=3) <= created(final, 1, 3) - step_2 < timedelta(seconds=8)
    timeline = [(e["kind"], e.get("round"), e.get("step")) for e in final["timeline"]]
    fired_steps = [(r, s) for kind, r, s in timeline if kind == "escalation.step"]
    assert fired_steps == [(1, 1), (1, 2), (1, 3)], timeline
    assert [k for k, _, _ in timeline].count("escalation.exhausted") == 1, timeline


# ---------------------------------------------------------------------------------------------
# 3. kill -9 at the end of round 1: round 2 runs once after the restart, no step doubled

REPEAT_STEPS: Steps = [("0s", ["oncall:primary"]), ("1s", ["oncall:backup"])]
REPEAT_AFTER = 2  # seconds after round 1's last step


@pytest.mark.timeout(120)
def test_a_kill_between_rounds_neither_doubles_nor_skips_a_step_of_the_repeat(
    tmp_path: Path,
) -> None:
    summary = "restart between escalation rounds"
    with SmtpSink() as smtp:
        config = escalation_config(
            tmp_path, REPEAT_STEPS, repeat=1, repeat_after=f"{REPEAT_AFTER}s"
        )
        workdir = tmp_path / "router"
        first = RouterProcess(workdir, config=config, env=router_env(smtp))
        with first, kept_log(first):
            primary, backup = oncall_now(first)
            incident_id, _opened_at = post_alert(first, "repeat-probe", summary)
            last = smtp.wait_for(email_of(backup), "ESCALATED", timeout=WAIT)
            assert last.page == (1, 2, backup)
            # Right after round 1's last step is delivered and recorded.
            found = wait_until(
                lambda: all_sent(first, incident_id), timeout=WAIT, what="round 1 recorded sent"
            )
            before = pages(found)
            first.kill9()
            killed_at = datetime.now(UTC)
        assert before == {(1, 1, primary, "email"): 1, (1, 2, backup, "email"): 1}, before
        round_1_last = created(found, 1, 2)
        round_2_start = round_1_last + timedelta(seconds=REPEAT_AFTER)
        assert killed_at < round_2_start, "killed after round 2 had started"

        # Past round 2's start and past its second step's time: both are overdue at restart.
        sleep_until(round_2_start + timedelta(seconds=1.5))
        restarted_at = datetime.now(UTC)
        second = RouterProcess(workdir, config=config, env=router_env(smtp))
        with second, kept_log(first, second):
            again = smtp.wait_for(email_of(primary), "ESCALATED", timeout=WAIT)
            assert again.page == (2, 1, primary)
            count = 2  # the backup's second page
            last = smtp.wait_for(email_of(backup), "ESCALATED", count=count, timeout=WAIT)
            assert last.page == (2, 2, backup)
            # Once exhausted nothing more is due (the config has no fallback channel).
            final = wait_until(
                lambda: exhausted(second, incident_id), timeout=WAIT, what="the chain's end"
            )

    expected = Counter(
        {
            (1, 1, primary, "email"): 1,
            (1, 2, backup, "email"): 1,
            (2, 1, primary, "email"): 1,
            (2, 2, backup, "email"): 1,
        }
    )
    assert pages(final) == expected, final["notifications"]
    assert Counter((*m.page, "email") for m in smtp.mails()) == expected, smtp.summary()
    mails = Counter((m.to, m.subject) for m in smtp.mails())
    assert mails == {
        (email_of(primary), subject("FIRING", summary)): 1,
        (email_of(primary), subject("ESCALATED", summary)): 1,
        (email_of(backup), subject("ESCALATED", summary)): 2,
    }, smtp.summary()
    # Round 2 was run by the restarted router, its steps 1 s apart (late, not in a burst).
    round_2 = created(final, 2, 1)
    assert round_2 >= restarted_at, (round_2, restarted_at)
    assert created(final, 2, 2) - round_2 >= timedelta(seconds=1)
    timeline = [(e["kind"], e.get("round"), e.get("step")) for e in final["timeline"]]
    fired_steps = [(r, s) for kind, r, s in timeline if kind == "escalation.step"]
    assert fired_steps == [(1, 1), (1, 2), (2, 1), (2, 2)], timeline
    assert [k for k, _, _ in timeline].count("escalation.exhausted") == 1, timeline
