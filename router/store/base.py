"""The `Store` protocol: what the router needs from a database, and nothing more.

Every write that answers a client (an alert's 202, an ack) returns only after its
transaction commits. Implementations: `router.store.sqlite` (embedded default).
"""

from __future__ import annotations

__all__ = [
    "Delivery",
    "DeliveryOutcome",
    "IncidentPage",
    "IngestOutcome",
    "OutboxStats",
    "RuntimeEntry",
    "RuntimeSilence",
    "Store",
    "StoreUnavailableError",
]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from router.errors import RouterError
from router.incidents import Change
from router.model import Incident, IncidentStatus, Link, Notification, TimelineEvent
from router.routing import Routed
from router.teammodel import LeaveEntry, Override, Silence, TeamModel


class StoreUnavailableError(RouterError):
    """The database cannot be used right now; callers answer 503 so senders retry."""


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What one alert did: its incident (None for an orphan ack/resolve) and the change."""

    incident: Incident | None
    change: Change


@dataclass(frozen=True, slots=True)
class IncidentPage:
    """A page of incidents, newest first, and the cursor for the next page (or None)."""

    incidents: list[Incident]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class RuntimeEntry:
    """A leave entry or override added through the API, with who added it and when."""

    id: int
    entry: LeaveEntry | Override
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RuntimeSilence:
    """A silence added through the API, with who added it and when."""

    id: int
    silence: Silence
    created_by: str
    created_at: datetime


RuntimeKind = Literal["leave", "override"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed notification with what rendering needs: the incident and its latest alert."""

    notification: Notification
    incident: Incident
    lease_until: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one delivery attempt came to. `counted=False`: deferred, not an attempt."""

    notification: Notification
    result: Literal["sent", "retry", "dead", "cancelled"]
    at: datetime
    error: str | None = None
    next_attempt_at: datetime | None = None
    counted: bool = True
    # The lease the recording worker holds: the outcome is stored only while the row is
    # still under that lease. An attempt that outlived it was claimed again by another
    # worker, whose outcome is the one that counts.
    lease_until: datetime | None = None

    def describe(self) -> str:
        """The timeline's sentence."""
        n = self.notification
        what = f"{n.channel} to {n.recipient} ({n.event}, attempt {n.attempts})"
        if self.result == "sent":
            return f"{what}: delivered"
        if self.result == "cancelled":
            return f"{what}: not sent: {self.error}"
        when = f", next attempt {self.next_attempt_at.isoformat()}" if self.next_attempt_at else ""
        verdict = "dead-lettered" if self.result == "dead" else "failed"
        return f"{what}: {verdict}: {self.error}{when}"

    def data(self) -> dict[str, object]:
        """The timeline event's fields."""
        n = self.notification
        return {
            "notification": n.id,
            "channel": n.channel,
            "recipient": n.recipient,
            "attempt": n.attempts,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Notifications not yet delivered, the oldest one's age, and dead letters."""

    depth: int
    oldest_age_seconds: float | None
    dead: int


class Store(Protocol):
    """Durable storage of incidents, their alerts and timeline, and runtime changes."""

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None:
        """Finish pending writes and disconnect."""

    async def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""

    async def ingest(
        self,
        routed: Sequence[Routed],
        now: datetime,
        caller: str | None = None,
        model: TeamModel | None = None,
    ) -> list[IngestOutcome]:
        """Fold alerts into incidents and record them (with the caller's token name). With
        `model`, a new incident starts its escalation (step 1's notifications) and a resolved
        one tells everyone paged, in the same transaction. Returns once committed."""

    async def incidents(
        self,
        *,
        status: IncidentStatus | None = None,
        pipeline: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> IncidentPage:
        """Incidents newest first, filtered, at most `limit`, with ids below `before`."""

    async def incident(self, incident_id: int) -> Incident | None:
        """One incident, or None."""

    async def alerts_of(self, incident_id: int) -> list[dict[str, object]]:
        """The alerts folded into an incident, oldest first, as JSON objects."""

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """Everything that happened to an incident, oldest first."""

    async def set_status(
        self, incident_id: int, status: IncidentStatus, by: str, now: datetime
    ) -> Incident | None:
        """Acknowledge or resolve (idempotent); None when there is no such incident."""

    async def open_incident_count(self) -> int:
        """How many incidents are not resolved."""

    async def exhausted_incident_count(self) -> int:
        """How many open incidents have run through their whole escalation."""

    async def add_runtime(self, entry: LeaveEntry | Override, by: str, now: datetime) -> int:
        """Persist a leave entry or override; returns its id."""

    async def delete_runtime(
        self, kind: RuntimeKind, entry_id: int, by: str, now: datetime
    ) -> bool:
        """Withdraw a runtime entry (kept for the audit trail); False if there is none."""

    async def runtime_entries(self, kind: RuntimeKind) -> list[RuntimeEntry]:
        """The runtime entries of a kind that are in force (not withdrawn)."""

    async def fire_due_escalations(self, model: TeamModel, now: datetime, limit: int) -> int:
        """Fire every due escalation step (at most `limit` incidents); returns how many."""

    async def claim_deliveries(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        """Lease due notifications, and those whose lease expired, for delivery."""

    async def renew_lease(self, notification_id: int, held: datetime, until: datetime) -> bool:
        """Extend a claim that is still ours (its lease is still `held`); False if another
        worker has taken the notification since."""

    async def record_delivery(self, outcome: DeliveryOutcome) -> bool:
        """Store an attempt's outcome and its timeline event; False (nothing stored) if
        `outcome.lease_until` is set and no longer the notification's lease."""

    async def notifications_of(self, incident_id: int) -> list[Notification]:
        """An incident's notifications, oldest first."""

    async def outbox_stats(self, now: datetime) -> OutboxStats:
        """Depth, oldest undelivered age, dead letters."""

    async def dead_letters(self, limit: int) -> list[Notification]:
        """The most recent dead-lettered notifications."""

    async def meta_secret(self, key: str) -> str:
        """An install-wide random secret (created on first use)."""

    async def add_silence(self, silence: Silence, by: str, now: datetime) -> int:
        """Persist a silence; returns its id."""

    async def delete_silence(self, silence_id: int, by: str, now: datetime, tz: ZoneInfo) -> bool:
        """End a silence early (kept for the audit trail); False if there is none. `tz`, the
        team's, says when the silence would have ended: what it held is due now."""

    async def runtime_silences(self) -> list[RuntimeSilence]:
        """Runtime silences not withdrawn."""
