"""structlog set-up: JSON lines in production, console rendering on a terminal.

structlog events and the stdlib's records (aiohttp's access and server logs) go through one
pipeline, and one processor, `Redactor`, masks secrets in every line whatever wrote it: the
secret values the router knows (inbound tokens, HMAC secrets, the SMTP password, the team
model's integration keys and channel secrets), `Authorization` and `Bearer` values, the
credentials in a URL (`https://user:pass@host` → `https://***@host`) and one-click ack tokens
(`/ack/<token>` → `/ack/***`, the access log would otherwise hold working links).
"""

from __future__ import annotations

__all__ = [
    "REDACTED",
    "Redactor",
    "configure_logging",
    "known_secrets",
    "redact_secrets",
]

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import structlog
from structlog.typing import EventDict, WrappedLogger

from router.settings import Settings
from router.teammodel import TeamModel, WebhookChannel

REDACTED = "***"
# A "secret" this short would mask ordinary words and numbers all over the log; a credential
# that short is no credential (the patterns below still mask it in headers and URLs).
MIN_SECRET_LENGTH = 4
# Values under these keys (at any depth) are masked whole, whatever they look like.
_SENSITIVE_KEY = re.compile(
    r"(authorization|cookie|password|passwd|secrets?|tokens?|api[_-]?key|"
    r"integration[_-]?keys?|routing[_-]?key)$",
    re.IGNORECASE,
)
# What every line is searched for, each pattern only where its marker occurs (a substring
# test costs next to nothing; the patterns themselves would cost microseconds per line).
# Each keeps its prefix (group 1) and masks the rest.
_AUTHORIZATION = re.compile(
    r"""(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?:[a-z]+\s+)?[^\s"',;}\]]+""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"""(\bbearer\s+)[^\s"',;}\]]+""", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"""(\b[a-z][a-z0-9+.-]*://)[^\s/@"'<>]+@""", re.IGNORECASE)
_ACK_TOKEN = re.compile(r"""(/ack/)[^\s/?#"'<>]+""")
# Fields every line has and no secret can be in: not worth searching.
_PLAIN_KEYS = frozenset({"timestamp", "level", "logger"})


def _mask_patterns(text: str) -> str:
    lower = text.lower()
    if "authorization" in lower:
        text = _AUTHORIZATION.sub(rf"\g<1>{REDACTED}", text)
    if "bearer" in lower:
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}@", text)
    if "/ack/" in text:
        text = _ACK_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    return text


@lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


class Redactor:
    """A structlog processor that masks secrets in every value of an event, at any depth.

    Known secret values are added with `add` (they are never removed: a secret rotated out by
    a reload is still a secret in whatever is logged about it). Values that are neither
    strings, numbers nor containers are logged as their `str`, masked like any string.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values from now on (values shorter than MIN_SECRET_LENGTH are ignored)."""
        fresh = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH} - self._secrets
        if not fresh:
            return
        self._secrets |= fresh
        # Longest first, so a secret that contains another is masked whole.
        alternatives = sorted(self._secrets, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(s) for s in alternatives))

    def redact(self, text: str) -> str:
        """`text` with every secret in it masked."""
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        return _mask_patterns(text)

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            if key not in _PLAIN_KEYS:
                event_dict[key] = self._value(key, value)
        return event_dict

    def _value(self, key: object, value: object) -> object:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(key, str) and _sensitive(key):
            return REDACTED
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(None, item) for item in value]
        return self.redact(str(value))


_REDACTOR = Redactor()


def known_secrets(settings: Settings | None = None, model: TeamModel | None = None) -> list[str]:
    """The secret values in the process settings and the team model, to mask in logs."""
    found: list[str] = []
    if settings is not None:
        found += [token.get_secret_value() for token in settings.inbound_tokens.values()]
        found += settings.hmac_secrets()
        if settings.hmac_secret is not None:
            found.append(settings.hmac_secret.get_secret_value())  # the list, as written
        if settings.smtp_password is not None:
            found.append(settings.smtp_password.get_secret_value())
        found.append(urlsplit(settings.database_url).password or "")
    if model is not None:
        found += [key.get_secret_value() for p in model.pipelines for key in p.integration_keys]
        webhooks = [c for c in model.channels.values() if isinstance(c, WebhookChannel)]
        found += [c.secret.get_secret_value() for c in webhooks if c.secret is not None]
        # Passwords in webhook URLs (`https://user:pass@host/…`), as written and as sent.
        urls = [c.url for c in webhooks] + [m.webhook for m in model.team.members if m.webhook]
        passwords = [url.password for url in urls if url.password]
        found += passwords + [unquote(password) for password in passwords]
    return [secret for secret in found if secret]


def redact_secrets(secrets: Iterable[str]) -> None:
    """Mask these values in every line logged from now on (e.g. a reloaded model's keys)."""
    _REDACTOR.add(secrets)


def configure_logging(level: str, fmt: str | None, *, secrets: Iterable[str] = ()) -> None:
    """Route structlog and the stdlib (aiohttp's loggers) through one renderer, with
    `secrets` (see `known_secrets`) and the patterns in this module masked in every line."""
    _REDACTOR.add(secrets)
    as_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Events below the level are dropped before any processor runs: cheap on hot paths.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Redaction runs here, the one stage every line passes (structlog's own events
            # and foreign stdlib records alike), after tracebacks became text.
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _REDACTOR,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
