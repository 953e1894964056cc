"""HMAC-SHA256 signatures, `X-Router-Signature: t=<unix>,v1=<hex>` over `"{t}.{body}"`.

The same scheme signs what the router sends and verifies what it receives. Several secrets
may be valid at once so a secret can be rotated without downtime.
"""

from __future__ import annotations

__all__ = [
    "GRAFANA_SIGNATURE_HEADERS",
    "GRAFANA_TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    "WINDOW_SECONDS",
    "sign",
    "verify",
    "verify_grafana",
]

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Router-Signature"
WINDOW_SECONDS = 300
# Grafana's docs and its code disagree on the default header name; accept both.
GRAFANA_SIGNATURE_HEADERS = ("X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature")
GRAFANA_TIMESTAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"


def _unix_seconds(text: str) -> bool:
    """ASCII digits of a plausible length (`str.isdigit` alone accepts `²`)."""
    return text.isascii() and text.isdigit() and len(text) <= 12


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    header: str, body: bytes, secrets: Sequence[str], now: float, window: int = WINDOW_SECONDS
) -> str | None:
    """None when `header` signs `body` with one of `secrets` within `window` seconds of `now`;
    otherwise why not, in words fit for a 401 (never a secret or a digest)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, offered = fields.get("t", ""), fields.get("v1", "")
    # compare_digest refuses non-ASCII text outright: such a value is malformed, not a 500.
    if not _unix_seconds(stamp) or not offered or not offered.isascii():
        return "malformed signature: expected t=<unix seconds>,v1=<hex>"
    timestamp = int(stamp)
    if abs(now - timestamp) > window:
        return f"signature timestamp is more than {window} s from the router's clock"
    matched = False
    for secret in secrets:
        # Check every secret so the time taken does not reveal which one nearly matched.
        matched |= hmac.compare_digest(_digest(secret, timestamp, body), offered.lower())
    return None if matched else "signature does not match"


def verify_grafana(
    signature: str,
    timestamp: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    window: int = WINDOW_SECONDS,
) -> str | None:
    """Grafana's webhook HMAC: lowercase hex HMAC-SHA256 of the body, or of
    `"{timestamp}:{body}"` when Grafana sends a timestamp header. None when valid."""
    if not signature.isascii():
        return "malformed Grafana signature: expected hex"
    message = body
    if timestamp is not None:
        if not _unix_seconds(timestamp):
            return "malformed Grafana signature timestamp"
        if abs(now - int(timestamp)) > window:
            return f"signature timestamp is more than {window} s from the router's clock"
        message = timestamp.encode() + b":" + body
    matched = False
    for secret in secrets:
        digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(digest, signature.strip().lower())
    return None if matched else "signature does not match"
