"""The delivery channels against real servers on loopback: an aiosmtpd SMTP server for email,
`aiohttp_server` receivers for webhooks. Each test pins how one outcome is classified:
delivered, TransientDeliveryError (the outbox retries) or PermanentDeliveryError (it does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import email.utils
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage as MimeMessage
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from aiosmtplib.email import flatten_message
from hypothesis import example, given, settings
from hypothesis import strategies as st

from router import __version__
from router.errors import PermanentDeliveryError, TransientDeliveryError
from router.notify.email import RESET_CHECK_AFTER, SmtpSender, build_email, message_id
from router.notify.message import EmailMessage, WebhookMessage
from router.notify.webhook import WebhookSender
from router.settings import Settings
from router.signing import verify

from services import free_port

NOW = 1_790_000_000.0  # a fixed instant (2026-09-21), unix seconds
KEY = "incident-7/incident.triggered/round-1/step-1/member:Alice/email"
SENDER = "Pipeline Alerts <alerts@router.example>"
SECRET = "webhook-secret-do-not-print"
PASSWORD = "smtp-password-do-not-print"

MakeServer = Callable[[web.Application], Awaitable[TestServer]]


# ---------------------------------------------------------------------------------------------
# Email: an aiosmtpd server in its own thread, one per test


class Collector:
    """An SMTP server's handler that accepts every message and keeps its envelope, the
    client's address and port of the connection it came over (one per connection), and the
    connections that ended with a QUIT."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.peers: list[Any] = []
        self.quits: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        self.quits.append(session.peer)
        return "221 Bye"


class RefuseRecipient(Collector):
    """Answers every RCPT TO with a fixed reply (the message never gets to DATA)."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self.reply


class RefuseData(Collector):
    """Accepts the envelope and answers the message content with a fixed reply."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        return self.reply


SmtpServer = Callable[..., Controller]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Start `Controller(handler, **options)` on a free 127.0.0.1 port; stopped after the test."""
    started: list[Controller] = []

    def start(handler: Collector, **options: Any) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


# Every SmtpSender a test makes, to be closed before the test's event loop ends: a sender
# keeps its sessions open after a send.
_SENDERS: list[SmtpSender] = []


@pytest.fixture(autouse=True)
async def _close_smtp_senders() -> AsyncIterator[None]:
    yield
    while _SENDERS:
        await _SENDERS.pop().close()


def _sender(controller: Controller, **changes: Any) -> SmtpSender:
    options: dict[str, Any] = {
        "username": None,
        "password": None,
        "starttls": False,
        "sender": SENDER,
        "timeout": 5.0,
    }
    options.update(changes)
    sender = SmtpSender(controller.hostname, controller.port, **options)
    _SENDERS.append(sender)
    return sender


def _email(**changes: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "to": "alice@example.com",
        "subject": "[FIRING] Aggregate profit (investors): COGS feed is late",
        "text": "Aggregate profit is failing.\nRunbook: check the COGS table.\n",
        "html": "<p>Aggregate profit is <b>failing</b>.</p>",
        "idempotency_key": KEY,
    }
    fields.update(changes)
    return EmailMessage(**fields)


def _parsed(envelope: Envelope) -> MimeMessage:
    assert envelope.original_content is not None
    parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert isinstance(parsed, MimeMessage)
    return parsed


def _received(collector: Collector) -> MimeMessage:
    assert len(collector.envelopes) == 1
    return _parsed(collector.envelopes[0])


async def test_email_arrives_with_headers_both_parts_and_a_message_id_from_the_key(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    await _sender(smtp_server(collector)).send(_email())

    envelope = collector.envelopes[0]
    assert envelope.mail_from == "alerts@router.example"
    assert envelope.rcpt_tos == ["alice@example.com"]
    mail = _received(collector)
    assert mail["Subject"] == "[FIRING] Aggregate profit (investors): COGS feed is late"
    assert mail["From"] == "Pipeline Alerts <alerts@router.example>"
    assert mail["To"] == "alice@example.com"
    assert mail["Date"] is not None
    assert mail["Message-ID"] == message_id(KEY, "router.example")
    # A long header is folded at 78 columns; a key without spaces moves whole to the
    # continuation line, which Python's parser reports with the leading fold whitespace.
    assert mail["X-Router-Idempotency-Key"].strip() == KEY
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert (
        text.get_content() == "Aggregate profit is failing.\r\nRunbook: check the COGS table.\r\n"
    )
    assert html.get_content().strip() == "<p>Aggregate profit is <b>failing</b>.</p>"


async def test_a_redelivery_has_the_same_message_id_and_another_page_a_different_one(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    sender = _sender(smtp_server(collector))
    await sender.send(_email())
    await sender.send(_email())
    await sender.send(_email(idempotency_key=KEY.replace("step-1", "step-2")))

    ids = [_parsed(envelope)["Message-ID"] for envelope in collector.envelopes]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]
    assert ids[0].startswith("<incident-7/incident=2Etriggered/")


async def test_a_line_break_in_the_subject_cannot_add_a_header_or_a_recipient(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    subject = "[FIRING] Orders: disk full\r\nBcc: x@y\nX-Injected: 1\x00\u2028end"
    await _sender(smtp_server(collector)).send(_email(subject=subject))

    assert collector.envelopes[0].rcpt_tos == ["alice@example.com"]
    mail = _received(collector)
    assert "Bcc" not in mail
    assert "X-Injected" not in mail
    assert mail["Subject"] == "[FIRING] Orders: disk full Bcc: x@y X-Injected: 1 end"


async def test_a_non_ascii_subject_and_body_arrive_intact(smtp_server: SmtpServer) -> None:
    collector = Collector()
    await _sender(smtp_server(collector)).send(
        _email(subject="[FIRING] Zoë's pipeline — ✓ late", text="Grüße\n", html="<p>Grüße</p>")
    )
    mail = _received(collector)
    assert mail["Subject"] == "[FIRING] Zoë's pipeline — ✓ late"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content() == "Grüße\r\n"  # SMTP line endings


BOUNDARY = "=" * 15 + "0123456789abcdef" * 2 + "=="


@pytest.mark.parametrize(
    ("server_options", "cte_type"),
    [
        ({}, "8bit"),  # 8BITMIME: the bytes router.notify.email writes itself
        ({"decode_data": True}, "7bit"),  # no 8BITMIME: aiosmtplib re-encodes the stdlib's
    ],
)
async def test_the_server_receives_the_bytes_the_stdlib_would_have_written(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    server_options: dict[str, Any],
    cte_type: str,
) -> None:
    monkeypatch.setattr("router.notify.email._boundary", lambda: BOUNDARY)
    built: list[MimeMessage] = []

    def spy(*args: Any, **kwargs: Any) -> MimeMessage:
        built.append(build_email(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr("router.notify.email.build_email", spy)
    collector = Collector()
    page = _email(
        subject="[FIRING] Zoë's pipeline — ✓ late",
        text="Grüße\n.\n..hidden?\nFrom here\n",
        html="<p>" + "é" * 600 + "</p>",
    )
    await _sender(smtp_server(collector, **server_options)).send(page)

    envelope = collector.envelopes[0]
    sent_at = email.utils.parsedate_to_datetime(_parsed(envelope)["Date"]).timestamp()
    mail = build_email(page, SENDER, sent_at, boundary=BOUNDARY)
    assert envelope.original_content == flatten_message(mail, cte_type=cte_type)
    assert ("BODY=8BITMIME" in envelope.mail_options) == (cte_type == "8bit")
    assert bool(built) == (cte_type == "7bit")  # no MIME tree where the bytes are written directly


async def test_a_non_ascii_address_goes_with_smtputf8(smtp_server: SmtpServer) -> None:
    collector = Collector()
    controller = smtp_server(collector, enable_SMTPUTF8=True)
    await _sender(controller).send(_email(to="Zoë <zoë@example.com>"))

    envelope = collector.envelopes[0]
    assert envelope.rcpt_tos == ["zoë@example.com"]
    assert "SMTPUTF8" in envelope.mail_options
    assert _received(collector)["To"] == "Zoë <zoë@example.com>"


async def test_smtp_login_is_used_when_a_username_is_given(smtp_server: SmtpServer) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == PASSWORD.encode(), handled=False)

    collector = Collector()
    controller = smtp_server(collector, authenticator=authenticator, auth_require_tls=False)
    await _sender(controller, username="router", password=PASSWORD).send(_email())

    assert logins == [(b"router", PASSWORD.encode())]
    assert len(collector.envelopes) == 1


async def test_smtp_authentication_failure_is_permanent_and_does_not_show_the_password(
    smtp_server: SmtpServer,
) -> None:
    def authenticator(*args: Any) -> Any:
        return AuthResult(success=False, handled=False)  # handled=False: server says 535

    controller = smtp_server(Collector(), authenticator=authenticator, auth_require_tls=False)
    sender = _sender(controller, username="router", password=PASSWORD)
    with pytest.raises(PermanentDeliveryError, match="authentication failed") as caught:
        await sender.send(_email())
    assert "535" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(sender)


async def test_smtp_550_on_rcpt_is_permanent_and_names_server_and_recipient(
    smtp_server: SmtpServer,
) -> None:
    controller = smtp_server(RefuseRecipient("550 No such user"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await _sender(controller).send(_email())
    message = str(caught.value)
    assert "550 No such user" in message
    assert "alice@example.com" in message
    assert f"127.0.0.1:{controller.port}" in message


async def test_smtp_451_on_rcpt_is_transient(smtp_server: SmtpServer) -> None:
    controller = smtp_server(RefuseRecipient("451 try later"))
    with pytest.raises(TransientDeliveryError, match="451 try later"):
        await _sender(controller).send(_email())


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("452 Insufficient system storage", TransientDeliveryError),
        ("554 Message rejected as spam", PermanentDeliveryError),
    ],
)
async def test_smtp_reply_to_the_message_content_is_classified_by_its_code(
    smtp_server: SmtpServer, reply: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=reply):
        await _sender(smtp_server(RefuseData(reply))).send(_email())


async def test_smtp_starttls_configured_but_not_offered_is_permanent_never_plain_text(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    controller = smtp_server(collector)
    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        await _sender(controller, starttls=True).send(_email())
    assert collector.envelopes == []


async def test_smtp_connection_refused_is_transient() -> None:
    with pytest.raises(TransientDeliveryError, match="connection failed"):
        await _plain_sender(free_port()).send(_email())


StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawServer = Callable[[StreamHandler], Awaitable[int]]


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    """Start a bare TCP server on 127.0.0.1 running `handler` per connection; returns its
    port. At teardown unfinished handlers are cancelled and every connection is closed, so no
    socket outlives the test."""
    handlers: list[asyncio.Task[None]] = []
    servers: list[asyncio.Server] = []

    async def start(handler: StreamHandler) -> int:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.ensure_future(run(reader, writer)))

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


def _plain_sender(port: int, timeout: float = 5.0) -> SmtpSender:
    sender = SmtpSender(
        "127.0.0.1",
        port,
        username=None,
        password=None,
        starttls=False,
        sender="a@b.c",
        timeout=timeout,
    )
    _SENDERS.append(sender)
    return sender


async def test_smtp_server_that_never_greets_times_out_as_transient(
    raw_server: RawServer,
) -> None:
    never = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await never.wait()

    port = await raw_server(silent)
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError, match="timed out"):
        await _plain_sender(port, timeout=0.5).send(_email())
    assert time.monotonic() - started < 5


async def test_smtp_server_that_hangs_up_after_the_greeting_is_transient(
    raw_server: RawServer,
) -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 ready\r\n")
        await reader.readline()  # the EHLO, then hang up without answering

    port = await raw_server(rude)
    with pytest.raises(TransientDeliveryError, match="connection failed"):
        await _plain_sender(port).send(_email())


@pytest.mark.parametrize(
    "to",
    [
        "not an address",
        "alice@example.com\r\nRCPT TO:<x@y>",
        "",
        "(c).@x-ya",  # the stdlib's parser raises TypeError on this one
    ],
)
async def test_an_unusable_recipient_address_is_permanent(smtp_server: SmtpServer, to: str) -> None:
    collector = Collector()
    with pytest.raises(PermanentDeliveryError):
        await _sender(smtp_server(collector)).send(_email(to=to))
    assert collector.envelopes == []


# The sessions a sender keeps (SmtpSender's pool)


class HangUpAfterEachMessage(Collector):
    """Accepts a message, then closes the connection: a relay whose idle timeout is zero."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        # After the reply below is written: the server's loop runs this callback next.
        asyncio.get_running_loop().call_soon(server.transport.close)
        return await super().handle_DATA(server, session, envelope)


class RefuseFirstRecipient(Collector):
    """Answers the first RCPT TO with 451 and accepts every later one; notes each RCPT's
    connection."""

    def __init__(self) -> None:
        super().__init__()
        self.rcpt_peers: list[Any] = []

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.rcpt_peers.append(session.peer)
        if len(self.rcpt_peers) == 1:
            return "451 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class RefuseReset(Collector):
    """Answers every RSET with 502: a session that fails the check before it is reused."""

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0

    async def handle_RSET(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        self.resets += 1
        return "502 not today"


class FailSecondTransaction(Collector):
    """Accepts one message per connection; in the next transaction on it, answers the
    command `at` ("MAIL" or "DATA") with `reply`, or with none at all (None: the connection
    is dropped when the command arrives), as a server that gave up on the session while it
    was parked. Notes the connection of every MAIL."""

    def __init__(self, at: str, reply: str | None) -> None:
        super().__init__()
        self.at = at
        self.reply = reply
        self.mail_peers: list[Any] = []

    def _fail(self, server: Any, session: Any, command: str) -> str | None:
        if command != self.at or session.peer not in self.peers:
            return None
        if self.reply is None:
            server.transport.close()
        return self.reply or "250 unheard"

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.mail_peers.append(session.peer)
        envelope.mail_from = address
        return self._fail(server, session, "MAIL") or "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        return self._fail(server, session, "DATA") or await super().handle_DATA(
            server, session, envelope
        )


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_two_emails_go_over_one_smtp_session(smtp_server: SmtpServer) -> None:
    collector = Collector()
    sender = _sender(smtp_server(collector))
    await sender.send(_email())
    await sender.send(_email(idempotency_key=KEY.replace("step-1", "step-2")))

    assert len(collector.envelopes) == 2
    assert len(set(collector.peers)) == 1
    await sender.close()
    assert collector.quits == collector.peers[:1]  # close() ends the session with a QUIT


async def test_a_session_the_server_dropped_while_idle_is_replaced_by_one_fresh_session(
    smtp_server: SmtpServer,
) -> None:
    collector = HangUpAfterEachMessage()
    sender = _sender(smtp_server(collector))
    for step in range(1, 4):
        await sender.send(_email(idempotency_key=KEY.replace("step-1", f"step-{step}")))

    assert len(collector.envelopes) == 3
    assert len(set(collector.peers)) == 3  # each email after the first: one reconnection


async def test_a_relay_that_is_gone_fails_the_send_after_one_fresh_attempt() -> None:
    controller = Controller(Collector(), hostname="127.0.0.1", port=free_port())
    controller.start()  # not the fixture's: this test stops it
    try:
        sender = _sender(controller)
        await sender.send(_email())
    finally:
        controller.stop()

    with pytest.raises(TransientDeliveryError, match="connection failed"):
        await sender.send(_email())


async def test_a_session_that_fails_the_reset_check_is_replaced(smtp_server: SmtpServer) -> None:
    collector = RefuseReset()
    clock = FakeClock()
    sender = _sender(smtp_server(collector), clock=clock)
    await sender.send(_email())
    clock.now += RESET_CHECK_AFTER  # idle long enough to be checked before reuse
    await sender.send(_email())

    assert collector.resets == 1
    assert len(collector.envelopes) == 2
    assert len(set(collector.peers)) == 2


async def test_a_session_parked_moments_ago_is_reused_without_a_reset_check(
    smtp_server: SmtpServer,
) -> None:
    collector = RefuseReset()
    clock = FakeClock()
    sender = _sender(smtp_server(collector), clock=clock)
    await sender.send(_email())
    clock.now += RESET_CHECK_AFTER * 0.9
    await sender.send(_email())

    assert collector.resets == 0
    assert len(collector.envelopes) == 2
    assert len(set(collector.peers)) == 1


@pytest.mark.parametrize("reply", [None, "421 closing the session"])
async def test_a_session_parked_moments_ago_and_gone_on_mail_from_is_replaced_by_a_fresh_one(
    smtp_server: SmtpServer, reply: str | None
) -> None:
    collector = FailSecondTransaction("MAIL", reply)
    clock = FakeClock()
    sender = _sender(smtp_server(collector), clock=clock)
    await sender.send(_email())
    await sender.send(_email())  # parked 0 s ago: no RSET, its MAIL FROM finds it gone

    first, fresh = collector.peers
    assert fresh != first
    assert collector.mail_peers == [first, first, fresh]  # one fresh session, no more


async def test_a_session_parked_moments_ago_refusing_the_sender_is_not_retried(
    smtp_server: SmtpServer,
) -> None:
    collector = FailSecondTransaction("MAIL", "451 sender rate limited")
    clock = FakeClock()
    sender = _sender(smtp_server(collector), clock=clock)
    await sender.send(_email())
    with pytest.raises(TransientDeliveryError, match="451 sender rate limited"):
        await sender.send(_email())  # a live server's answer: classified, as on any session

    assert len(set(collector.mail_peers)) == 1


@pytest.mark.parametrize("reply", [None, "451 lost the spool"])
async def test_a_session_parked_moments_ago_failing_after_mail_from_is_a_transient_failure(
    smtp_server: SmtpServer, reply: str | None
) -> None:
    collector = FailSecondTransaction("DATA", reply)
    clock = FakeClock()
    sender = _sender(smtp_server(collector), clock=clock)
    await sender.send(_email())
    with pytest.raises(TransientDeliveryError):
        await sender.send(_email())  # the email may have been offered: the outbox retries it

    assert len(set(collector.mail_peers)) == 1  # no second session for it
    assert len(collector.envelopes) == 1


async def test_an_smtp_error_discards_the_session(smtp_server: SmtpServer) -> None:
    collector = RefuseFirstRecipient()
    sender = _sender(smtp_server(collector))
    with pytest.raises(TransientDeliveryError, match="451 try later"):
        await sender.send(_email())
    await sender.send(_email())

    first, second = collector.rcpt_peers
    assert first != second
    assert collector.peers == [second]
    await sender.close()
    assert first in collector.quits  # ended politely, as before pooling


async def test_a_session_idle_for_longer_than_the_idle_timeout_is_closed_not_reused(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    clock = FakeClock()
    sender = _sender(smtp_server(collector), idle_timeout=30.0, clock=clock)
    await sender.send(_email())
    clock.now += 29.0
    await sender.send(_email())
    clock.now += 30.0
    await sender.send(_email())

    first, reused, fresh = collector.peers
    assert reused == first
    assert fresh != first
    await sender.close()
    assert sorted(collector.quits) == sorted([first, fresh])


async def test_the_idle_timer_ends_expired_sessions_without_waiting_for_a_send(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    clock = FakeClock()
    sender = _sender(smtp_server(collector), idle_timeout=30.0, clock=clock)
    await sender.send(_email())
    assert sender._reaper is not None  # armed by the kept session

    sender._reap()  # what the timer runs: too early, nothing expires
    assert len(sender._idle) == 1
    clock.now += 30.0
    sender._reap()
    assert sender._idle == []
    await asyncio.gather(*sender._quitting)
    assert collector.quits == collector.peers


async def test_at_most_max_idle_sessions_are_kept(smtp_server: SmtpServer) -> None:
    collector = Collector()
    sender = _sender(smtp_server(collector), max_idle=2)
    await asyncio.gather(*(sender.send(_email()) for _ in range(5)))
    assert len(set(collector.peers)) == 5  # nothing idle to share at the start

    await asyncio.gather(*(sender.send(_email()) for _ in range(2)))
    assert len(set(collector.peers)) == 5  # the two kept sessions carried these
    await sender.close()
    assert sorted(collector.quits) == sorted(set(collector.peers))


async def test_a_closed_sender_opens_a_new_session_for_a_later_email(
    smtp_server: SmtpServer,
) -> None:
    collector = Collector()
    async with _sender(smtp_server(collector)) as sender:
        await sender.send(_email())
        await sender.close()
        await sender.send(_email())
    assert len(set(collector.peers)) == 2
    assert collector.quits == collector.peers


# ---------------------------------------------------------------------------------------------
# Building the email


PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
POLICY_998 = email.policy.SMTP.clone(max_line_length=998)


def _written_alone(name: str, value: str) -> tuple[bytes, bytes]:
    """Header `name: value` as the header registry writes it: with the email's own policy,
    and as aiosmtplib writes it on the wire."""
    reference = MimeMessage(policy=POLICY_998)
    reference[name] = value
    return reference.as_bytes()[:-2], flatten_message(reference)[:-2]  # without the blank line


@settings(max_examples=200, deadline=None)
@example(subject="=?utf-8?q?Zo=C3=AB?= is an encoded word", key="a=?b?q?c?=")
@example(subject="  leading, trailing  and  double  spaces ", key=" k ")
@example(subject="[FIRING] " + "long " * 30, key="k" * 100)
@given(
    subject=st.text(PRINTABLE_ASCII, max_size=120),
    key=st.text(PRINTABLE_ASCII, min_size=1, max_size=120),  # an empty key makes no Message-ID
)
def test_subject_and_key_are_written_exactly_as_the_header_registry_writes_them(
    subject: str, key: str
) -> None:
    mail = build_email(_email(subject=subject, idempotency_key=key), "a@b.example", NOW)
    for name, value in (("Subject", subject), ("X-Router-Idempotency-Key", key)):
        own, wire = _written_alone(name, " ".join(value.split()))
        assert own in mail.as_bytes()
        assert wire in flatten_message(mail)


def test_each_email_has_its_own_boundary_and_it_occurs_only_where_mime_puts_it() -> None:
    mails = [build_email(_email(), "a@b.example", NOW) for _ in range(3)]
    boundaries = [mail.get_boundary() for mail in mails]
    assert len(set(boundaries)) == 3
    for mail, boundary in zip(mails, boundaries, strict=True):
        assert boundary is not None
        # The Content-Type parameter, two delimiters and the closing delimiter.
        assert mail.as_bytes().count(boundary.encode()) == 4


def test_an_invalid_address_is_refused_every_time_with_the_same_message() -> None:
    for _ in range(2):
        with pytest.raises(PermanentDeliveryError, match="recipient address 'x' is not one"):
            build_email(_email(to="x"), "a@b.example", NOW)
        with pytest.raises(PermanentDeliveryError, match="sender address contains control"):
            build_email(_email(), "a@b.example\n", NOW)


def test_smtp_sender_from_settings_takes_every_smtp_setting() -> None:
    settings = Settings(
        smtp_host="mail.example",
        smtp_port=587,
        smtp_username="router",
        smtp_password=PASSWORD,
        smtp_starttls=True,
        smtp_from="alerts@example.com",
    )
    sender = SmtpSender.from_settings(settings)
    assert (sender.host, sender.port, sender.username) == ("mail.example", 587, "router")
    assert sender.starttls is True
    assert sender.sender == "alerts@example.com"
    assert sender.timeout == 10
    assert PASSWORD not in repr(sender)


# ---------------------------------------------------------------------------------------------
# Webhooks: aiohttp receivers on loopback


@pytest.fixture
async def webhooks() -> AsyncIterator[WebhookSender]:
    async with WebhookSender() as sender:
        yield sender


def _hook(url: str, secret: str | None = SECRET) -> WebhookMessage:
    body = json.dumps({"event": "incident.triggered", "incident": {"id": 7}}).encode()
    return WebhookMessage(url=url, body=body, idempotency_key=KEY, secret=secret)


CALLS = web.AppKey("calls", list[str])


def _answering(status: int, headers: dict[str, str] | None = None) -> web.Application:
    """A receiver that answers every POST /hook with `status`, counting requests."""

    async def hook(request: web.Request) -> web.Response:
        request.app[CALLS].append(request.path)
        return web.Response(status=status, text=f"answer {status}", headers=headers)

    app = web.Application()
    app[CALLS] = []
    app.router.add_post("/hook", hook)
    return app


async def test_webhook_posts_the_body_with_signature_idempotency_key_and_user_agent(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    message = _hook(str(server.make_url("/hook")))
    await webhooks.send(message, now=NOW)

    body, headers = received[0]
    assert body == message.body
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"pipeline-alert-router/{__version__}"
    assert headers["Idempotency-Key"] == KEY
    assert headers["X-Router-Signature"].startswith(f"t={int(NOW)},v1=")
    assert verify(headers["X-Router-Signature"], body, [SECRET], now=NOW) is None
    assert verify(headers["X-Router-Signature"], body, ["another"], now=NOW) is not None


async def test_webhook_without_a_secret_is_sent_unsigned(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    seen: list[str | None] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Router-Signature"))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    await webhooks.send(_hook(str(server.make_url("/hook")), secret=None), now=NOW)
    assert seen == [None]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientDeliveryError),
        (502, TransientDeliveryError),
        (503, TransientDeliveryError),
        (408, TransientDeliveryError),
        (425, TransientDeliveryError),
        (429, TransientDeliveryError),
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
        (404, PermanentDeliveryError),
        (410, PermanentDeliveryError),
        (422, PermanentDeliveryError),
    ],
)
async def test_webhook_status_is_classified(
    aiohttp_server: MakeServer, webhooks: WebhookSender, status: int, error: type[Exception]
) -> None:
    server = await aiohttp_server(_answering(status))
    with pytest.raises(error, match=f"answered {status}: answer {status}"):
        await webhooks.send(_hook(str(server.make_url("/hook"))), now=NOW)


async def test_webhook_429_retry_after_seconds_is_passed_on(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    server = await aiohttp_server(_answering(429, {"Retry-After": "2"}))
    with pytest.raises(TransientDeliveryError) as caught:
        await webhooks.send(_hook(str(server.make_url("/hook"))), now=NOW)
    assert caught.value.retry_after == 2


async def test_webhook_503_retry_after_http_date_is_seconds_from_now(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    later = email.utils.formatdate(NOW + 90, usegmt=True)
    server = await aiohttp_server(_answering(503, {"Retry-After": later}))
    with pytest.raises(TransientDeliveryError) as caught:
        await webhooks.send(_hook(str(server.make_url("/hook"))), now=NOW)
    assert caught.value.retry_after == 90


async def test_webhook_500_has_no_retry_after(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    server = await aiohttp_server(_answering(500, {"Retry-After": "30"}))
    with pytest.raises(TransientDeliveryError) as caught:
        await webhooks.send(_hook(str(server.make_url("/hook"))), now=NOW)
    assert caught.value.retry_after is None


async def test_webhook_error_quotes_at_most_a_bounded_part_of_a_huge_body(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=400, body=b"x" * (1024 * 1024))

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    with pytest.raises(PermanentDeliveryError) as caught:
        await webhooks.send(_hook(str(server.make_url("/hook"))), now=NOW)
    assert len(str(caught.value)) < 1000


async def test_webhook_receiver_that_never_answers_times_out_as_transient(
    aiohttp_server: MakeServer,
) -> None:
    never = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    started = time.monotonic()
    async with WebhookSender(timeout=aiohttp.ClientTimeout(total=0.5)) as sender:
        with pytest.raises(TransientDeliveryError, match="timed out"):
            await sender.send(_hook(str(server.make_url("/hook"))), now=NOW)
    assert time.monotonic() - started < 5


async def test_webhook_connection_refused_is_transient(webhooks: WebhookSender) -> None:
    with pytest.raises(TransientDeliveryError, match="Cannot connect"):
        await webhooks.send(_hook(f"http://127.0.0.1:{free_port()}/hook"), now=NOW)


@pytest.mark.parametrize(
    "url", ["not a url", "ftp://127.0.0.1/hook", "http:///hook", "/relative/hook", ""]
)
async def test_webhook_invalid_url_is_permanent(webhooks: WebhookSender, url: str) -> None:
    with pytest.raises(PermanentDeliveryError):
        await webhooks.send(_hook(url), now=NOW)


def _redirecting(status: int, location: Callable[[], str]) -> web.Application:
    """POST /old answers `status` with Location `location()`; POST /hook answers 200."""

    async def old(request: web.Request) -> web.Response:
        request.app[CALLS].append(request.path)
        return web.Response(status=status, headers={"Location": location()})

    async def hook(request: web.Request) -> web.Response:
        assert request.method == "POST"
        assert await request.read() == _hook("").body
        assert request.headers["Idempotency-Key"] == KEY
        request.app[CALLS].append(request.path)
        return web.Response(status=200)

    app = web.Application()
    app[CALLS] = []
    app.router.add_post("/old", old)
    app.router.add_post("/hook", hook)
    return app


@pytest.mark.parametrize("status", [307, 308])
async def test_webhook_follows_307_and_308_to_the_same_host_with_the_same_post(
    aiohttp_server: MakeServer, webhooks: WebhookSender, status: int
) -> None:
    app = _redirecting(status, lambda: "/hook")
    server = await aiohttp_server(app)
    await webhooks.send(_hook(str(server.make_url("/old"))), now=NOW)
    assert app[CALLS] == ["/old", "/hook"]


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_webhook_redirect_that_would_become_a_get_is_permanent(
    aiohttp_server: MakeServer, webhooks: WebhookSender, status: int
) -> None:
    app = _redirecting(status, lambda: "/hook")
    server = await aiohttp_server(app)
    with pytest.raises(PermanentDeliveryError, match=f"answered {status}"):
        await webhooks.send(_hook(str(server.make_url("/old"))), now=NOW)
    assert app[CALLS] == ["/old"]


async def test_webhook_307_to_another_host_is_refused_and_nothing_is_sent_there(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    elsewhere_app = _answering(200)
    elsewhere = await aiohttp_server(elsewhere_app)  # same address, another port
    app = _redirecting(307, lambda: str(elsewhere.make_url("/hook")))
    server = await aiohttp_server(app)
    with pytest.raises(PermanentDeliveryError, match="redirect to another host refused"):
        await webhooks.send(_hook(str(server.make_url("/old"))), now=NOW)
    assert app[CALLS] == ["/old"]
    assert elsewhere_app[CALLS] == []


async def test_webhook_redirect_loop_stops_after_three_follows(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    app = _redirecting(307, lambda: "/old")
    server = await aiohttp_server(app)
    with pytest.raises(PermanentDeliveryError, match="more than 3 redirects"):
        await webhooks.send(_hook(str(server.make_url("/old"))), now=NOW)
    assert app[CALLS] == ["/old"] * 4


async def test_webhook_errors_never_show_the_secret_the_userinfo_the_path_or_the_query(
    aiohttp_server: MakeServer, webhooks: WebhookSender
) -> None:
    server = await aiohttp_server(_answering(500))
    base = server.make_url("/hook")
    url = f"http://user:pa55word@{base.host}:{base.port}/hook?token=qu3ry"
    with pytest.raises(TransientDeliveryError) as caught:
        await webhooks.send(_hook(url), now=NOW)
    refused = f"http://user:pa55word@127.0.0.1:{free_port()}/T000/B000/pathsecret?token=qu3ry"
    with pytest.raises(TransientDeliveryError) as refused_caught:
        await webhooks.send(_hook(refused), now=NOW)
    for error in (caught.value, refused_caught.value):
        text = str(error)
        for secret in (SECRET, "pa55word", "user", "qu3ry", "pathsecret"):
            assert secret not in text
        assert error.__cause__ is None  # aiohttp's exceptions print the whole URL
    assert f"http://127.0.0.1:{base.port}/…" in str(caught.value)


async def test_webhook_sender_starts_lazily_and_closes_its_one_session(
    aiohttp_server: MakeServer,
) -> None:
    server = await aiohttp_server(_answering(200))
    sender = WebhookSender()
    await sender.send(_hook(str(server.make_url("/hook"))), now=NOW)
    session = sender._session
    await sender.send(_hook(str(server.make_url("/hook"))), now=NOW)
    assert sender._session is session
    await sender.close()
    assert session is not None
    assert session.closed
