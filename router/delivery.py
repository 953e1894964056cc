"""From a claimed notification to the message a channel sends: find the destination in the
current team model (never in an alert), build the page context, render.
"""

from __future__ import annotations

__all__ = ["Destination", "LinkMaker", "build", "context", "destination"]

import json
from dataclasses import dataclass
from datetime import datetime

from router.acklinks import AckSigner
from router.errors import PermanentDeliveryError
from router.notify.message import ASKS_FOR_ACTION, EmailMessage, Event, PageContext, WebhookMessage
from router.notify.render import render_email, render_generic, render_slack
from router.store.base import Delivery
from router.teammodel import TeamModel, WebhookChannel


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a notification goes: an email address or a webhook URL, and its format."""

    address: str
    format: str  # "email", "generic" or "slack"
    secret: str | None = None

    @property
    def key(self) -> str:
        """What the circuit breaker and the concurrency limit count by."""
        return f"{self.format}:{self.address}"


@dataclass(frozen=True, slots=True)
class LinkMaker:
    """Absolute links in a page: the ack link and the incident in the API."""

    public_url: str
    signer: AckSigner

    def ack(self, incident_id: int, who: str, now: datetime) -> str:
        """A one-click ack link for `who`."""
        return f"{self.public_url.rstrip('/')}/ack/{self.signer.token(incident_id, who, now)}"

    def incident(self, incident_id: int) -> str:
        """The incident in the API."""
        return f"{self.public_url.rstrip('/')}/api/v1/incidents/{incident_id}"


def destination(model: TeamModel, delivery: Delivery, hmac_secret: str | None) -> Destination:
    """The notification's destination in the current model, or PermanentDeliveryError."""
    n = delivery.notification
    if n.recipient_kind == "member":
        member = model.team.member(n.recipient)
        address = (
            None if member is None else (member.email if n.channel == "email" else member.webhook)
        )
        if address is None:
            raise PermanentDeliveryError(f"{n.recipient} has no {n.channel} in the team model")
        fmt = "email" if n.channel == "email" else "generic"
        return Destination(str(address), fmt, hmac_secret)
    channel = model.channels.get(n.recipient)
    if channel is None:
        raise PermanentDeliveryError(f"channel {n.recipient!r} is not in the team model")
    if isinstance(channel, WebhookChannel):
        secret = channel.secret.get_secret_value() if channel.secret else hmac_secret
        return Destination(str(channel.url), channel.format, secret)
    return Destination(channel.address, "email")


def context(model: TeamModel, delivery: Delivery, links: LinkMaker, now: datetime) -> PageContext:
    """What the page says, from the incident as it is now."""
    n, incident = delivery.notification, delivery.incident
    pipeline = model.pipeline(incident.pipeline) if incident.pipeline else None
    runbook = model.runbooks.get(pipeline.runbook) if pipeline and pipeline.runbook else None
    event: Event = n.event  # type: ignore[assignment]  # written by the planner from Event
    asks_ack = event in ASKS_FOR_ACTION
    return PageContext(
        event=event,
        incident=incident,
        pipeline=pipeline,
        runbook=runbook,
        recipient=n.recipient,
        step=n.step,
        reasons=n.reasons,
        ack_url=links.ack(incident.id, n.recipient, now) if asks_ack else None,
        incident_url=links.incident(incident.id),
        labels=delivery.labels,
        links=delivery.links,
    )


def build(
    ctx: PageContext, target: Destination, idempotency_key: str
) -> EmailMessage | WebhookMessage:
    """The rendered message for the destination's format."""
    if target.format == "email":
        return render_email(ctx, target.address, idempotency_key)
    body = render_slack(ctx) if target.format == "slack" else render_generic(ctx)
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return WebhookMessage(target.address, payload, idempotency_key, target.secret)
