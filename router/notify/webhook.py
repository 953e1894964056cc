"""The webhook channel: one signed JSON POST per page, its failures classified, never retried.

The outbox owns retries (STYLE.md, convention 4). This module only sends and says whether a
failure is worth retrying: `TransientDeliveryError` for 408, 425, 429, 5xx, timeouts and
connection failures (with the receiver's `Retry-After` when it gave one), and
`PermanentDeliveryError` for every other 4xx, a redirect that would turn the POST into a GET or
leave the receiver's host, and a URL that cannot be used.

Error messages show a URL as its origin only: chat webhooks (Slack, Teams, Discord) carry their
token in the path, others in the query or the userinfo, and these messages end up in logs, the
incident timeline and `/status`. For the same reason the aiohttp exception is not chained:
several of them print the full URL.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT", "MAX_REDIRECTS", "WebhookSender", "retry_after_seconds"]

import email.utils
import types
from typing import Self

import aiohttp
from yarl import URL

from router import __version__
from router.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from router.notify.message import WebhookMessage
from router.signing import SIGNATURE_HEADER, sign

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3, sock_read=10)
MAX_REDIRECTS = 3
USER_AGENT = f"pipeline-alert-router/{__version__}"
ERROR_BODY_LIMIT = 64 * 1024  # read at most this much of an error response
_ERROR_TEXT_LIMIT = 300  # and quote at most this much of it in the message
_RETRYABLE_4XX = frozenset({408, 425, 429})  # timeout, too early, too many requests
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_FOLLOWED_REDIRECTS = frozenset({307, 308})  # keep method and body
_METHOD_CHANGING_REDIRECTS = frozenset({301, 302, 303})  # clients turn the POST into a GET


def _shown(url: URL) -> str:
    """The URL as an error message may show it: scheme, host and port, no path or query."""
    try:
        origin = str(url.origin())
    except ValueError:
        return "<invalid URL>"
    return origin + ("/…" if url.path not in {"", "/"} or url.query_string else "")


def _parse_url(raw: str) -> URL:
    try:
        url = URL(raw)
    except (ValueError, TypeError):
        raise PermanentDeliveryError("webhook URL is not a valid URL") from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise PermanentDeliveryError(f"webhook URL {_shown(url)} is not an absolute http(s) URL")
    return url


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP-date (RFC 9110 10.2.3).
    None when absent or unreadable; a date in the past means "now" (0)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": a date without a zone; HTTP dates are GMT
        return None
    return max(0.0, when.timestamp() - now)


async def _error_text(response: aiohttp.ClientResponse) -> str:
    """The start of the response body on one line, for a person reading the error. Reads at
    most ERROR_BODY_LIMIT bytes; a body that fails to arrive is not worth another error."""
    chunks: list[bytes] = []
    remaining = ERROR_BODY_LIMIT
    try:
        while remaining > 0:
            chunk = await response.content.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except (aiohttp.ClientError, TimeoutError):
        pass
    text = " ".join(b"".join(chunks).decode("utf-8", errors="replace").split())
    if len(text) > _ERROR_TEXT_LIMIT:
        text = text[:_ERROR_TEXT_LIMIT] + "…"
    return f": {text}" if text else ""


def _status_error(status: int, where: str, detail: str, retry_after: float | None) -> DeliveryError:
    what = f"{where} answered {status}{detail}"
    if status in _RETRYABLE_4XX or status >= 500:
        return TransientDeliveryError(what, retry_after=retry_after)
    return PermanentDeliveryError(what)


def _connection_error(err: Exception, where: str) -> DeliveryError:
    """Classify an exception raised while talking to the receiver (no status to go by)."""
    if isinstance(err, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return PermanentDeliveryError(f"{where}: the URL cannot be requested")
    if isinstance(err, TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return TransientDeliveryError(f"{where}: timed out ({type(err).__name__})")
    if isinstance(err, aiohttp.ClientConnectorError):
        # Refused, unreachable, DNS, TLS handshake. str() names host:port only, never the path.
        return TransientDeliveryError(f"{where}: {err}")
    # ServerDisconnectedError, ClientOSError (reset), ClientPayloadError, a malformed response.
    return TransientDeliveryError(f"{where}: connection failed ({type(err).__name__})")


class WebhookSender:
    """Posts webhooks through one shared `aiohttp.ClientSession` (connection pooling, one DNS
    cache), created by `start()` or on the first send, closed by `close()`. TLS certificates
    are verified; redirects are followed by hand, see `send`."""

    def __init__(
        self,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Create the shared session (inside the running event loop). Idempotent."""
        self._ensure_session()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def close(self) -> None:
        """Close the session and its pooled connections. Idempotent."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()

    def _headers(self, message: WebhookMessage, now: float) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": message.idempotency_key,
        }
        if message.secret:
            headers[SIGNATURE_HEADER] = sign(message.secret, int(now), message.body)
        return headers

    async def send(self, message: WebhookMessage, now: float) -> None:
        """POST `message` once; return on 2xx, else raise Transient/PermanentDeliveryError.

        `now` (unix seconds) stamps the signature and turns an HTTP-date `Retry-After` into
        seconds. A 307/308 to the same scheme, host and port is followed (at most
        `max_redirects` times) with the same body and headers; a redirect elsewhere would hand
        a signed page to a third party, and a 301/302/303 would become a GET, so both are
        permanent failures.
        """
        url = _parse_url(message.url)
        session = self._ensure_session()
        headers = self._headers(message, now)
        for _ in range(self.max_redirects + 1):
            where = f"webhook {_shown(url)}"
            try:
                location = await self._post_once(session, url, message.body, headers, now)
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                raise _connection_error(err, where) from None
            if location is None:
                return
            url = self._redirect_target(url, location, where)
        raise PermanentDeliveryError(
            f"webhook {_shown(url)}: more than {self.max_redirects} redirects"
        )

    async def _post_once(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        body: bytes,
        headers: dict[str, str],
        now: float,
    ) -> str | None:
        """One POST: None when delivered, the Location of a followable redirect, or raise."""
        where = f"webhook {_shown(url)}"
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
            status = resp.status
            if 200 <= status <= 299:
                return None
            if status in _FOLLOWED_REDIRECTS:
                location = resp.headers.get("Location")
                if not location:
                    raise PermanentDeliveryError(f"{where} answered {status} without Location")
                return location
            if status in _METHOD_CHANGING_REDIRECTS:
                raise PermanentDeliveryError(
                    f"{where} answered {status}: a redirect that would turn the POST into a GET"
                )
            if 300 <= status <= 399:
                raise PermanentDeliveryError(f"{where} answered {status}: unexpected redirect")
            retry_after = None
            if status in _RETRY_AFTER_STATUSES:
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"), now)
            raise _status_error(status, where, await _error_text(resp), retry_after)

    @staticmethod
    def _redirect_target(url: URL, location: str, where: str) -> URL:
        try:
            target = url.join(URL(location))
            same_origin = target.origin() == url.origin()
        except ValueError:
            raise PermanentDeliveryError(f"{where}: redirect to an invalid URL refused") from None
        if not same_origin:
            raise PermanentDeliveryError(
                f"{where}: redirect to another host refused ({_shown(target)})"
            )
        return target
