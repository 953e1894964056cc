"""What a page says, independent of how it travels: the context a renderer needs, and the
rendered messages a channel sends."""

from __future__ import annotations

__all__ = ["ASKS_FOR_ACTION", "EmailMessage", "Event", "PageContext", "WebhookMessage"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from router.model import Incident, Link
from router.teammodel import Pipeline, Runbook

Event = Literal[
    "incident.triggered", "incident.escalated", "incident.acknowledged", "incident.resolved"
]
# The pages that ask the person paged to act (and carry an ack link); the others only tell.
ASKS_FOR_ACTION: frozenset[Event] = frozenset({"incident.triggered", "incident.escalated"})


@dataclass(frozen=True, slots=True)
class PageContext:
    """Everything the person paged needs in order to act, and why they are paged."""

    event: Event
    incident: Incident
    pipeline: Pipeline | None  # None: an alert for a pipeline the team model does not know
    runbook: Runbook | None
    recipient: str  # a member's name or a channel's name
    step: int  # escalation step, from 1
    reasons: Sequence[str]  # why this recipient: the on-call reasons and the step
    ack_url: str | None  # one-click acknowledge link (None for resolved messages)
    incident_url: str  # the incident in the router's API
    labels: Mapping[str, str] = field(default_factory=dict)  # of the latest alert
    links: Sequence[Link] = ()  # of the latest alert: generator, dashboard, runbook URL


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One email: headers as plain values (the channel builds the MIME message)."""

    to: str
    subject: str  # one line: no CR, LF or other control characters
    text: str
    html: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One webhook POST: a JSON body, signed with `secret` (the channel adds the headers)."""

    url: str
    body: bytes
    idempotency_key: str
    secret: str | None
