"""Frozen domain values that flow from ingest to incident: an `Alert` and its parts.

Every inbound format (Alertmanager, Grafana, PagerDuty Events v2, the generic alert) is
turned into `Alert`s at the edge; nothing past the edge sees a request body.
"""

from __future__ import annotations

__all__ = [
    "SEVERITIES",
    "Action",
    "Alert",
    "Incident",
    "IncidentStatus",
    "Link",
    "Notification",
    "NotificationStatus",
    "Severity",
    "TimelineEvent",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Action = Literal["trigger", "acknowledge", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Link:
    """A link the sender attached: the generator, a dashboard, a runbook, a silence."""

    href: str
    text: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, as any sender's format says it, in the router's terms.

    `pipeline` is the id the alert names (a label, a field, a routing key's pipeline); whether
    the team model knows it is decided by routing. `dedup_key` is the sender's own key when it
    gives one; otherwise the incident layer computes a fingerprint.
    """

    source: str
    action: Action
    name: str
    summary: str
    severity: Severity = "error"
    pipeline: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[Link, ...] = ()
    dedup_key: str | None = None
    starts_at: datetime | None = None


IncidentStatus = Literal["open", "acknowledged", "resolved"]


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident: the alerts that share a dedup key while it is not resolved."""

    id: int
    status: IncidentStatus
    pipeline: str | None
    dedup_key: str
    name: str
    summary: str
    severity: Severity
    count: int
    opened_at: datetime
    updated_at: datetime
    escalation: str
    source: str
    flags: tuple[str, ...] = ()
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The incident object of the API (SPEC section 3)."""
        return {
            "id": self.id,
            "status": self.status,
            "pipeline": self.pipeline,
            "dedup_key": self.dedup_key,
            "name": self.name,
            "summary": self.summary,
            "severity": self.severity,
            "count": self.count,
            "opened_at": _iso(self.opened_at),
            "updated_at": _iso(self.updated_at),
            "escalation": self.escalation,
            "source": self.source,
            "flags": list(self.flags),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": _iso(self.resolved_at),
            "resolved_by": self.resolved_by,
        }


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One thing that happened to an incident, in order."""

    at: datetime
    kind: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """`{"at", "kind", "message", ...data}` as the incident's timeline shows it."""
        return {**self.data, "at": _iso(self.at), "kind": self.kind, "message": self.message}


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


NotificationStatus = Literal["pending", "sending", "sent", "dead", "cancelled"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One page to one recipient over one channel: a row of the outbox."""

    id: int
    incident_id: int
    event: str
    step: int
    round: int
    recipient: str
    recipient_kind: Literal["member", "channel"]
    channel: Literal["email", "webhook"]
    reasons: tuple[str, ...]
    idempotency_key: str
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The notification object of an incident's `notifications` list."""
        return {
            "id": self.id,
            "event": self.event,
            "step": self.step,
            "round": self.round,
            "recipient": self.recipient,
            "recipient_kind": self.recipient_kind,
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "created_at": _iso(self.created_at),
            "sent_at": _iso(self.sent_at),
            "last_error": self.last_error,
            "idempotency_key": self.idempotency_key,
            "reasons": list(self.reasons),
        }
