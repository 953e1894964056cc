"""One-click acknowledge links: a signed, expiring token bound to an incident and a person.

`<incident>.<who, base64url>.<expires, unix>.<HMAC-SHA256, hex>`, signed with an
install-wide key kept in the database (so every replica accepts every link).
"""

from __future__ import annotations

__all__ = ["AckClaim", "AckLinkError", "AckSigner"]

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from router.errors import RouterError

DEFAULT_TTL = timedelta(days=7)


class AckLinkError(RouterError):
    """A link that cannot acknowledge anything: tampered, malformed or expired."""


@dataclass(frozen=True, slots=True)
class AckClaim:
    """What a valid link says: acknowledge `incident_id` as `who`."""

    incident_id: int
    who: str
    expires: datetime


class AckSigner:
    """Makes and checks ack tokens."""

    def __init__(self, key: str | None = None, ttl: timedelta = DEFAULT_TTL) -> None:
        self._key = key.encode() if key else b""
        self.ttl = ttl

    def set_key(self, key: str) -> None:
        """Install the signing key (read from the database once it is open)."""
        self._key = key.encode()

    def token(self, incident_id: int, who: str, now: datetime) -> str:
        """A token valid until `now + ttl`."""
        name = base64.urlsafe_b64encode(who.encode()).decode().rstrip("=")
        payload = f"{incident_id}.{name}.{int((now + self.ttl).timestamp())}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: datetime) -> AckClaim:
        """The claim of a genuine, unexpired token, else AckLinkError saying which."""
        parts = token.split(".")
        # A genuine token is ASCII (base64url, digits, hex); compare_digest refuses to
        # compare other text at all, which must not become a 500.
        if len(parts) != 4 or not token.isascii():
            raise AckLinkError("this link is not a valid acknowledge link")
        payload, signature = ".".join(parts[:3]), parts[3]
        if not hmac.compare_digest(self._sign(payload), signature):
            raise AckLinkError("this link is not a valid acknowledge link")
        incident, name, expires = parts[:3]
        try:
            who = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            claim = AckClaim(int(incident), who, datetime.fromtimestamp(int(expires), UTC))
        except (ValueError, binascii.Error, OverflowError):
            raise AckLinkError("this link is not a valid acknowledge link") from None
        if claim.expires <= now:
            raise AckLinkError("this link has expired; acknowledge in the API or the next page")
        return claim

    def _sign(self, payload: str) -> str:
        if not self._key:
            raise AckLinkError("acknowledge links are not available until the store is open")
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:40]
