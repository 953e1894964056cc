"""The email channel: one SMTP transaction per page, its failures classified, never retried.

The outbox owns retries (STYLE.md, convention 4). This module only sends and says whether a
failure is worth retrying: `TransientDeliveryError` (SMTP 4xx, refused or reset connections,
timeouts, a dropped session) or `PermanentDeliveryError` (SMTP 5xx, failed authentication, a
server that lacks STARTTLS or AUTH when they are configured, an address that cannot be sent).
Messages name the server and the recipient, never the password.
"""

from __future__ import annotations

__all__ = ["SmtpSender", "build_email", "message_id"]

import email.message
import email.policy
import email.utils
import re
import time
import unicodedata
from email.headerregistry import Address

import aiosmtplib

from router.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from router.notify.message import EmailMessage
from router.settings import Settings

DEFAULT_TIMEOUT = 10.0
_FALLBACK_DOMAIN = "pipeline-alert-router"
# Characters of RFC 5322 `atext` kept as they are in a Message-ID; every other character
# (including "." and the escape "=" itself) becomes "=XX" per UTF-8 byte, so the mapping from
# key to id is one-to-one and the id is always a valid `dot-atom-text`.
_ATEXT_KEPT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/?^_`{|}~]")
_SERVER_TEXT_LIMIT = 200


_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})  # controls, format, line breaks


# Long headers stay on one line (RFC 5322 allows 998 characters): a folded subject reads back
# with a leading space in some parsers.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in _CONTROL_CATEGORIES for char in text)


def _one_line(text: str) -> str:
    """`text` with every control or line-separator character replaced by a space, and runs of
    whitespace collapsed: a header value that cannot start a second header."""
    cleaned = "".join(
        " " if unicodedata.category(char) in _CONTROL_CATEGORIES else char for char in text
    )
    return " ".join(cleaned.split())


def message_id(idempotency_key: str, domain: str = _FALLBACK_DOMAIN) -> str:
    """The Message-ID for a page: the same key always gives the same id, so a redelivery after
    a crash is recognisably the same message (and mail clients that dedupe by id drop it)."""
    local = "".join(
        char if _ATEXT_KEPT.fullmatch(char) else "".join(f"={b:02X}" for b in char.encode())
        for char in idempotency_key
    )
    return f"<{local}@{domain}>"


def _address(value: str, role: str) -> Address:
    """One mailbox parsed from a header value, or PermanentDeliveryError: an address that
    contains a line break or does not parse will not parse on the next attempt either."""
    if _has_control(value):
        raise PermanentDeliveryError(f"email {role} address contains control characters")
    header = email.message.EmailMessage(policy=email.policy.default)
    try:
        header["To"] = value
        addresses: tuple[Address, ...] = header["To"].addresses
    except (ValueError, IndexError) as err:
        raise PermanentDeliveryError(f"email {role} address {value!r} is not valid") from err
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise PermanentDeliveryError(f"email {role} address {value!r} is not one mailbox")
    return addresses[0]


def build_email(message: EmailMessage, sender: str, now: float) -> email.message.EmailMessage:
    """The MIME message for `message` from `sender`, dated `now` (unix seconds): text and HTML
    alternatives, a Message-ID derived from the idempotency key, and headers that keep
    auto-responders quiet. The subject is forced onto one line whatever it contains."""
    from_address = _address(sender, "sender")
    to_address = _address(message.to, "recipient")
    mail = email.message.EmailMessage(policy=_POLICY)
    mail["From"] = from_address
    mail["To"] = to_address
    mail["Subject"] = _one_line(message.subject)
    mail["Date"] = email.utils.formatdate(now, usegmt=True)
    mail["Message-ID"] = message_id(message.idempotency_key, from_address.domain)
    mail["X-Router-Idempotency-Key"] = _one_line(message.idempotency_key)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a page
    mail["X-Auto-Response-Suppress"] = "All"  # the same for Exchange/Outlook
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


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


class SmtpSender:
    """Sends one email per call over a fresh SMTP session (pages are rare; a pooled session
    would only add a stale-connection failure mode)."""

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
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.sender = sender
        self.timeout = timeout

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

    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` once, or raise TransientDeliveryError / PermanentDeliveryError.

        With `starttls` the session must upgrade to TLS (a server without STARTTLS is a
        permanent failure, never a silent fall back to plain text); without it no upgrade is
        attempted. `timeout` bounds each step: connect, every command, the TLS handshake.
        """
        where = f"email to {message.to} via {self.host}:{self.port}"
        mail = build_email(message, self.sender, time.time())
        recipient = mail["To"].addresses[0].addr_spec
        try:
            await aiosmtplib.send(
                mail,
                sender=mail["From"].addresses[0].addr_spec,
                recipients=[recipient],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password if self.username else None,
                start_tls=self.starttls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as err:
            raise _classify(err, where) from err
