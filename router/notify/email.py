"""The email channel: one SMTP transaction per page, its failures classified, not retried.

The outbox owns retries (STYLE.md, convention 4). This module only sends, over a small pool of
open sessions (SmtpSender, which also has the one exception: a kept session found dead before
the email was offered on it), and says whether a failure is worth retrying:
`TransientDeliveryError` (SMTP 4xx, refused or reset connections, timeouts, a dropped session)
or `PermanentDeliveryError` (SMTP 5xx, failed authentication, a server that lacks STARTTLS or
AUTH when they are configured, an address that cannot be sent). Messages name the server and
the recipient, never the password.

An email is written straight to the bytes aiosmtplib would have made of `build_email`'s MIME
message (`wire_email`, with router.notify.mime): building and serialising that tree was most
of the CPU an email cost. The stdlib still writes the emails the direct path does not cover.
"""

from __future__ import annotations

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_IDLE_SESSIONS",
    "RESET_CHECK_AFTER",
    "SmtpSender",
    "build_email",
    "message_id",
    "wire_email",
]

import asyncio
import contextlib
import email.message
import email.policy
import email.utils
import functools
import re
import secrets
import time
import types
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import AddressHeader, BaseHeader, HeaderRegistry
from email.policy import Policy
from typing import Any, Self, cast

import aiosmtplib
from aiosmtplib.email import flatten_message

from router.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from router.notify import mime
from router.notify.message import EmailMessage
from router.settings import Settings

DEFAULT_TIMEOUT = 10.0
_FALLBACK_DOMAIN = "pipeline-alert-router"
# Characters outside the part of RFC 5322 `atext` kept as it is in a Message-ID (every other
# character, including "." and the escape "=" itself, becomes "=XX" per UTF-8 byte), so the
# mapping from key to id is one-to-one and the id is always a valid `dot-atom-text`.
_NOT_ATEXT_KEPT = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/?^_`{|}~]+")
_SERVER_TEXT_LIMIT = 200
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})  # controls, format, line breaks
MAX_IDLE_SESSIONS = 16  # as many as ROUTER_DELIVERY_PER_DESTINATION lets run at once
IDLE_TIMEOUT = 30.0  # seconds; servers drop idle sessions too (RFC 5321 4.5.3.2.7: 5 minutes)
# Seconds a kept session may have been idle and still be reused without an RSET check: a
# server hardly drops a session within a second of a delivery, and in a storm sessions are
# reused long before that (see SmtpSender).
RESET_CHECK_AFTER = 1.0
# What a failed SMTP step raises (ValueError: an address aiosmtplib will not send).
_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, ValueError)

# The message's own policy keeps long headers on one line (RFC 5322 allows 998 characters): a
# folded subject reads back with a leading space in some parsers.
_MAX_LINE_LENGTH = 998
# aiosmtplib, though, writes the message with `email.policy.SMTP`, which folds at 78 columns. A
# header line no longer than that comes out unchanged whichever policy writes it.
_ONE_LINE = 78


class _Header(BaseHeader):
    """A header that remembers how it was folded: the emails of a storm share their
    structural headers (see _HeaderFactory), a header object is immutable, and folding is
    most of the cost of writing an email."""

    def fold(self, *, policy: Policy) -> str:
        # The settings folding depends on, not the policy object: the generator clones the
        # policy for every part it writes.
        key = (policy.max_line_length, policy.linesep, getattr(policy, "utf8", False))
        folds: dict[tuple[int | None, str, bool], str] = self.__dict__.setdefault("_folds", {})
        if key not in folds:
            folds[key] = super().fold(policy=policy)
        return folds[key]


class _HeaderFactory(HeaderRegistry):
    """The stdlib's header registry, remembering what it made. CPython builds a new class
    for every header and parses every value afresh; the emails of a storm repeat the same
    few values (Content-Type, Content-Transfer-Encoding, MIME-Version), so classes and
    parsed headers are kept (a header object is immutable)."""

    def __init__(self) -> None:
        super().__init__(base_class=_Header)
        self._classes: dict[str, type[BaseHeader]] = {}
        # Bounded: a per-message value (a multipart boundary) passes through and ages out.
        self._parsed = functools.lru_cache(maxsize=64)(super().__call__)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if key not in self._classes:
            self._classes[key] = super().__getitem__(name)
        return self._classes[key]

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if isinstance(value, str):  # Address and Group values are not hashable
            return self._parsed(name, value)
        return super().__call__(name, value)


_POLICY = email.policy.SMTP.clone(max_line_length=_MAX_LINE_LENGTH, header_factory=_HeaderFactory())
# The policy aiosmtplib's flatten_message writes with (for ASCII addresses): what a header on
# the wire looks like.
_WIRE = email.policy.SMTP
_KEY_HEADER = "X-Router-Idempotency-Key"
# The headers between the idempotency key and Content-Type, as build_email stores them
# (MIME-Version: set_content adds it before add_alternative makes the message multipart).
_CONSTANT_HEADERS = (
    b"Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\nMIME-Version: 1.0\r\n"
)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in _CONTROL_CATEGORIES for char in text)


def _one_line(text: str) -> str:
    """`text` with every control or line-separator character replaced by a space, and runs of
    whitespace collapsed: a header value that cannot start a second header."""
    if text.isascii() and text.isprintable():  # no control characters: skip the lookups
        return " ".join(text.split())
    cleaned = "".join(
        " " if unicodedata.category(char) in _CONTROL_CATEGORIES else char for char in text
    )
    return " ".join(cleaned.split())


def message_id(idempotency_key: str, domain: str = _FALLBACK_DOMAIN) -> str:
    """The Message-ID for a page: the same key always gives the same id, so a redelivery after
    a crash is recognisably the same message (and mail clients that dedupe by id drop it)."""
    local = _NOT_ATEXT_KEPT.sub(_escaped, idempotency_key)
    return f"<{local}@{domain}>"


def _escaped(match: re.Match[str]) -> str:
    return "".join(f"={byte:02X}" for byte in match[0].encode())


@functools.lru_cache(maxsize=256)
def _mailbox(value: str, role: str) -> AddressHeader:
    """The From (sender) or To (recipient) header for one mailbox parsed from `value`, or
    PermanentDeliveryError: an address that contains a line break or does not parse will not
    parse on the next attempt either. Memoised, as addresses come from the configuration;
    an error is not (lru_cache keeps results only), so it is raised again every time."""
    if _has_control(value):
        raise PermanentDeliveryError(f"email {role} address contains control characters")
    try:
        addresses = cast(AddressHeader, _POLICY.header_factory("To", value)).addresses
    except (ValueError, IndexError, TypeError, AttributeError) as err:
        # TypeError, AttributeError: the stdlib's address parser trips over some malformed
        # input itself (`(c).@x-ya`, `john@[example.com`); still a bad address.
        raise PermanentDeliveryError(f"email {role} address {value!r} is not valid") from err
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise PermanentDeliveryError(f"email {role} address {value!r} is not one mailbox")
    name = "From" if role == "sender" else "To"
    return cast(AddressHeader, _POLICY.header_factory(name, addresses[0]))


def _add_text(mail: email.message.EmailMessage, name: str, value: str) -> None:
    """Append the unstructured header `name: value`. Printable ASCII that fits on one line and
    cannot be read as an encoded word is exactly what the header registry would write, so it
    is stored as it is, unparsed; anything else goes through the registry, which encodes and
    folds it."""
    plain = value.isascii() and value.isprintable() and "=?" not in value
    if plain and value and len(name) + 2 + len(value) <= _ONE_LINE:
        mail.set_raw(name, value)
    else:
        mail[name] = value


def _boundary() -> str:
    """A multipart boundary for one email, in the stdlib's style. Set here rather than by the
    generator, which draws one and compiles a regular expression to check that no body line
    contains it every time the email is written (a third or more of the cost of writing it); 128
    random bits drawn after the bodies were written cannot occur in them."""
    return f"{'=' * 15}{secrets.token_hex(16)}=="


def build_email(
    message: EmailMessage, sender: str, now: float, *, boundary: str | None = None
) -> email.message.EmailMessage:
    """The MIME message for `message` from `sender`, dated `now` (unix seconds): text and HTML
    alternatives, a Message-ID derived from the idempotency key, and headers that keep
    auto-responders quiet. The subject is forced onto one line whatever it contains.
    `boundary` is drawn by `_boundary()` unless given (tests fix it to compare bytes)."""
    from_header = _mailbox(sender, "sender")
    to_header = _mailbox(message.to, "recipient")
    mail = email.message.EmailMessage(policy=_POLICY)
    mail["From"] = from_header  # a header object is stored as it is, not parsed again
    mail["To"] = to_header
    _add_text(mail, "Subject", _one_line(message.subject))
    # The registry would parse the date and write it back with format_datetime: the same text.
    mail.set_raw("Date", email.utils.format_datetime(datetime.fromtimestamp(now, UTC)))
    domain = from_header.addresses[0].domain
    mail["Message-ID"] = message_id(message.idempotency_key, domain)
    _add_text(mail, _KEY_HEADER, _one_line(message.idempotency_key))
    mail.set_raw("Auto-Submitted", "auto-generated")  # RFC 3834: no vacation replies to a page
    mail.set_raw("X-Auto-Response-Suppress", "All")  # the same for Exchange/Outlook
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    mail.set_boundary(_boundary() if boundary is None else boundary)
    return mail


def wire_email(
    message: EmailMessage, sender: str, now: float, *, boundary: str | None = None
) -> bytes:
    """The bytes of the email `build_email` makes, as aiosmtplib writes them for a server
    with 8BITMIME and ASCII addresses: `flatten_message(build_email(...))`, byte for byte,
    but written directly (`_fast_wire`) unless only the `email` package can write it."""
    boundary = _boundary() if boundary is None else boundary
    fast = _fast_wire(message, sender, now, boundary)
    if fast is not None:
        return fast
    return flatten_message(build_email(message, sender, now, boundary=boundary))


def _fast_wire(message: EmailMessage, sender: str, now: float, boundary: str) -> bytes | None:
    """`flatten_message(build_email(...))` without building a MIME tree: the headers in
    build_email's order, folded as `email.policy.SMTP` folds them (router.notify.mime; the
    header registry for any value it does not cover), then the two parts. None if a body
    cannot be encoded (a lone surrogate): the stdlib path raises there, as it always has."""
    from_header = _mailbox(sender, "sender")
    to_header = _mailbox(message.to, "recipient")
    addresses = _wire_header("From", from_header) + _wire_header("To", to_header)
    text = mime.text_part("plain", message.text)
    # add_alternative makes the HTML part an EmailMessage, which set_content gives its own
    # MIME-Version header.
    html = mime.text_part("html", message.html, mime_version=True)
    if text is None or html is None:
        return None
    subject = _one_line(message.subject)
    msg_id = message_id(message.idempotency_key, from_header.addresses[0].domain)
    key = _one_line(message.idempotency_key)
    date = email.utils.format_datetime(datetime.fromtimestamp(now, UTC))
    content_type = f'multipart/alternative; boundary="{boundary}"'
    headers = (
        addresses,
        _folded("Subject", subject, mime.unstructured_header("Subject", subject)),
        b"Date: %s\r\n" % date.encode(),
        _folded("Message-ID", msg_id, mime.msg_id_header("Message-ID", msg_id)),
        _folded(_KEY_HEADER, key, mime.unstructured_header(_KEY_HEADER, key)),
        _CONSTANT_HEADERS,
        _folded("Content-Type", content_type, mime.multipart_content_type("alternative", boundary)),
    )
    return mime.multipart(b"".join(headers), boundary, (text, html))


def _folded(name: str, value: str, fast: bytes | None) -> bytes:
    """`fast`, or else the header as build_email stores it (parsed by the header registry)
    and aiosmtplib writes it (`email.policy.SMTP`)."""
    if fast is not None:
        return fast
    return _wire_header(name, _POLICY.header_factory(name, value))


def _wire_header(name: str, header: object) -> bytes:
    """What BytesGenerator writes for a stored header object (which remembers its folding:
    see _Header), with the policy aiosmtplib gives it."""
    return _WIRE.fold_binary(name, cast(str, header))  # header objects are str subclasses


def _server_text(text: str) -> str:
    line = _one_line(text)
    return line if len(line) <= _SERVER_TEXT_LIMIT else line[:_SERVER_TEXT_LIMIT] + "…"


def _by_code(code: int, what: str) -> DeliveryError:
    """RFC 5321 reply classes: 4xx is a transient failure, 5xx a permanent one. Anything else
    where an error was expected is a confused server, worth another try."""
    if 500 <= code <= 599:
        return PermanentDeliveryError(what)
    return TransientDeliveryError(what)


def _recipients_refused(err: aiosmtplib.SMTPRecipientsRefused, where: str) -> DeliveryError:
    refusals = [f"{r.recipient}: {r.code} {_server_text(r.message)}" for r in err.recipients]
    what = f"{where}: recipient refused ({'; '.join(refusals)})"
    # RFC 5321 4.5.3.1.10: older servers answer RCPT with 552 for "too many recipients";
    # clients should treat it as 452. Any temporary refusal makes the whole send retryable.
    temporary = [r for r in err.recipients if r.code < 500 or r.code == 552]
    if temporary or not err.recipients:
        return TransientDeliveryError(what)
    return PermanentDeliveryError(what)


def _classify(err: Exception, where: str) -> DeliveryError:  # noqa: PLR0911 - one case a line
    """What a failed SMTP transaction means for a retry. `where` names server and recipient."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        return _recipients_refused(err, where)
    if isinstance(err, aiosmtplib.SMTPAuthenticationError):
        reply = f"{err.code} {_server_text(err.message)}"
        return _by_code(err.code, f"{where}: authentication failed ({reply})")
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return _by_code(err.code, f"{where}: {err.code} {_server_text(err.message)}")
    if isinstance(err, TimeoutError):  # includes SMTPTimeoutError and asyncio's timeouts
        return TransientDeliveryError(f"{where}: timed out ({_server_text(str(err))})")
    if isinstance(err, OSError):
        # Refused, reset, unreachable, a dropped session (SMTPServerDisconnected and
        # SMTPConnectError are ConnectionErrors), a failed TLS handshake (ssl.SSLError).
        return TransientDeliveryError(f"{where}: connection failed ({_server_text(str(err))})")
    if isinstance(err, aiosmtplib.SMTPException):
        # No reply code: the server lacks STARTTLS, AUTH or SMTPUTF8 that the configuration
        # or the address needs. That will not change between attempts.
        return PermanentDeliveryError(f"{where}: {_server_text(err.message)}")
    # ValueError: aiosmtplib refuses an address it cannot put on a command line safely.
    return PermanentDeliveryError(f"{where}: {_server_text(str(err))}")


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """End a session politely (RFC 5321 asks for a QUIT); one already gone is just closed."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await smtp.quit()
    smtp.close()


class _Session(aiosmtplib.SMTP):
    """An SMTP session that notes when the server accepts a MAIL command (`mail_accepted`,
    cleared before each transaction): until it has, nothing of the email was offered on it.
    aiosmtplib's sendmail and send_message both issue MAIL through this method."""

    mail_accepted = False

    async def mail(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        response = await super().mail(*args, **kwargs)
        self.mail_accepted = True
        return response


@dataclass(slots=True)
class _Idle:
    smtp: _Session
    since: float  # on the sender's clock


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One email ready to send: the envelope, and its bytes (`wire_email`) when they can be
    written directly; else `built` is the stdlib's message, for aiosmtplib to write."""

    message: EmailMessage
    sender: str  # the From header, as configured
    now: float
    mail_from: str
    rcpt_to: str
    wire: bytes | None
    built: email.message.EmailMessage | None

    @classmethod
    def of(cls, message: EmailMessage, sender: str, now: float) -> _Outgoing:
        """Raises PermanentDeliveryError for an unusable address, before any connection."""
        mail_from = _mailbox(sender, "sender").addresses[0].addr_spec
        rcpt_to = _mailbox(message.to, "recipient").addresses[0].addr_spec
        wire = None
        # A non-ASCII address needs SMTPUTF8, and aiosmtplib then writes the headers with
        # another policy: send_message's business.
        if (mail_from + rcpt_to).isascii():
            wire = _fast_wire(message, sender, now, _boundary())
        # Built now if needed, as an email that cannot be built fails before any connection.
        built = build_email(message, sender, now) if wire is None else None
        return cls(message, sender, now, mail_from, rcpt_to, wire, built)

    def stdlib_message(self) -> email.message.EmailMessage:
        """The stdlib's message, for a server that needs send_message to write it."""
        if self.built is not None:
            return self.built
        return build_email(self.message, self.sender, self.now)


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO (HELO for a server without ESMTP) unless done on this session, as send_message
    does first: the reply says whether the server takes 8-bit content."""
    if not smtp.is_ehlo_or_helo_needed:
        return
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()


async def _offer(smtp: aiosmtplib.SMTP, outgoing: _Outgoing) -> None:
    """One transaction for `outgoing`. Its bytes go as they are where the server takes 8-bit
    content, with the option send_message would give them (BODY=8BITMIME); else
    send_message writes the stdlib's message (and re-encodes 8-bit parts for the server)."""
    await _greet(smtp)
    if outgoing.wire is not None and smtp.supports_extension("8bitmime"):
        await smtp.sendmail(
            outgoing.mail_from, [outgoing.rcpt_to], outgoing.wire, mail_options=["BODY=8BITMIME"]
        )
    else:
        await smtp.send_message(
            outgoing.stdlib_message(), sender=outgoing.mail_from, recipients=[outgoing.rcpt_to]
        )


def _gone(err: Exception) -> bool:
    """Whether `err` says the session itself is gone (dropped, silent, or closing with 421)
    rather than that the server refused something on a live one."""
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return err.code == 421
    return isinstance(err, ConnectionError | TimeoutError)


class SmtpSender:
    """Sends one email per call, over a small pool of open SMTP sessions.

    Pages are rare, except in a storm: then hundreds of emails go to one relay within minutes,
    and a fresh session for each (connect, EHLO, STARTTLS, EHLO, AUTH, ..., QUIT) costs
    several round trips and a TLS handshake, more than the page itself, while relays limit
    connections per client. So a session is kept after a successful send: at most `max_idle`
    of them, each closed after `idle_timeout` seconds unused, all of them by `close()` at
    shutdown. After any failure a session is discarded, never reused.

    The price is a session that died while idle (the server's idle timeout, a restart, a
    firewall forgetting the connection). A reused session is reset (RSET) first; if that fails,
    nothing was offered on it and the email goes over one fresh session instead. In a storm
    that check is a round trip per email, so a session parked less than `reset_check_after`
    seconds ago is not reset: the email's own MAIL command is the check, and if the session
    turns out gone before the server accepted MAIL, again nothing was offered and the email
    goes over one fresh session. Those are the only cases in which this channel tries twice;
    every other failure on the session that carries the email is classified and raised.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None,
        password: str | None,
        starttls: bool,
        sender: str,
        timeout: float = DEFAULT_TIMEOUT,
        max_idle: int = MAX_IDLE_SESSIONS,
        idle_timeout: float = IDLE_TIMEOUT,
        reset_check_after: float = RESET_CHECK_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.sender = sender
        self.timeout = timeout
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.reset_check_after = reset_check_after
        self._clock = clock
        self._idle: list[_Idle] = []  # the most recently used last
        self._reaper: asyncio.TimerHandle | None = None
        self._quitting: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> SmtpSender:
        """The sender the `ROUTER_SMTP_*` settings describe."""
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            starttls=settings.smtp_starttls,
            sender=settings.smtp_from,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        # No password, even in a debugger or a log of the object.
        return f"SmtpSender(host={self.host!r}, port={self.port}, username={self.username!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """End every idle session (QUIT), for shutdown. Idempotent; a later send opens a new
        session, and one in use when this runs is kept when its send finishes."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        for entry in idle:
            self._retire(entry.smtp)
        await asyncio.gather(*self._quitting)

    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` once, or raise TransientDeliveryError / PermanentDeliveryError.

        With `starttls` the session must upgrade to TLS (a server without STARTTLS is a
        permanent failure, never a silent fall back to plain text); without it no upgrade is
        attempted. `timeout` bounds each step: connect, every command, the TLS handshake.
        """
        where = f"email to {message.to} via {self.host}:{self.port}"
        outgoing = _Outgoing.of(message, self.sender, time.time())
        try:
            smtp, checked = await self._session()
        except _SMTP_ERRORS as err:
            raise _classify(err, where) from err
        try:
            await self._attempt(smtp, outgoing)
            return
        except _SMTP_ERRORS as err:
            if checked or smtp.mail_accepted or not _gone(err):
                raise _classify(err, where) from err
        # An unchecked session, gone before the server accepted MAIL: nothing was offered
        # on it, so, as after a failed RSET, the email goes over one fresh session.
        try:
            await self._attempt(await self._connect(), outgoing)
        except _SMTP_ERRORS as err:
            raise _classify(err, where) from err

    async def _attempt(self, smtp: _Session, outgoing: _Outgoing) -> None:
        """Send over `smtp`, then keep it; after any failure it is discarded."""
        smtp.mail_accepted = False
        try:
            await _offer(smtp, outgoing)
        except BaseException as err:  # cancellation too: the session is mid-transaction
            self._discard(smtp, err)
            raise
        self._park(smtp)

    async def _session(self) -> tuple[_Session, bool]:
        """The most recently used idle session, else a new one; and whether it is known to
        be alive. One parked less than `reset_check_after` seconds ago is taken unchecked
        (see `send`); an older one must answer RSET, or a new one is opened instead."""
        self._expire()
        if not self._idle:
            return await self._connect(), True
        entry = self._idle.pop()
        smtp = entry.smtp
        if self._clock() - entry.since < self.reset_check_after:
            return smtp, False
        try:
            await smtp.rset()
        except Exception as err:
            # Dropped by the server (or a firewall) while idle, most likely. Nothing was
            # offered on it, so the email goes over a fresh session: the one retry here.
            self._discard(smtp, err)
            return await self._connect(), True
        except BaseException:
            smtp.close()
            raise
        return smtp, True

    async def _connect(self) -> _Session:
        smtp = _Session(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password if self.username else None,
            start_tls=self.starttls,
            timeout=self.timeout,
        )
        await smtp.connect()  # closes the connection itself if a step fails
        return smtp

    def _park(self, smtp: _Session) -> None:
        """Keep a session that has just sent an email, if the pool has room."""
        if len(self._idle) >= self.max_idle:
            self._retire(smtp)
            return
        self._idle.append(_Idle(smtp, self._clock()))
        if self._reaper is None:
            loop = asyncio.get_running_loop()
            self._reaper = loop.call_later(self.idle_timeout, self._reap)

    def _reap(self) -> None:
        """The idle timer: end what has expired, and look again when the oldest expires."""
        self._reaper = None
        self._expire()
        if self._idle:
            due = self._idle[0].since + self.idle_timeout - self._clock()
            self._reaper = asyncio.get_running_loop().call_later(max(due, 0.0), self._reap)

    def _expire(self) -> None:
        now = self._clock()
        while self._idle and now - self._idle[0].since >= self.idle_timeout:
            self._retire(self._idle.pop(0).smtp)

    def _discard(self, smtp: aiosmtplib.SMTP, err: BaseException) -> None:
        """Drop a session after a failure, as `async with aiosmtplib.SMTP()` would: QUIT it,
        unless the connection itself failed or timed out, or the send was cancelled."""
        if isinstance(err, Exception) and not isinstance(err, ConnectionError | TimeoutError):
            self._retire(smtp)
        else:
            smtp.close()

    def _retire(self, smtp: aiosmtplib.SMTP) -> None:
        """QUIT a session in the background: the page in hand need not wait for it."""
        task = asyncio.create_task(_quit(smtp))
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)
