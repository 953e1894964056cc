"""A PagerDuty Events API v2 event (`POST /v2/enqueue`) → a `PagerDutyEvent`.

Existing PagerDuty clients (Alertmanager's and Grafana's PagerDuty notifiers, pdpyras, the
Terraform-managed integrations) point at the router unchanged. The rules are PagerDuty's:
`trigger` needs `payload.summary`, `payload.source` and `payload.severity`; `acknowledge` and
`resolve` need a `dedup_key` and nothing else. A summary over 1024 characters is refused, as
PagerDuty refuses it (400, "'summary' is too long"); it does not truncate. A trigger without a
`dedup_key` is given a fresh one by PagerDuty, so it always opens a new alert: that is for the
HTTP handler, which also maps `routing_key` to a pipeline.
"""

from __future__ import annotations

__all__ = ["PagerDutyEvent", "parse_event"]

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from router.ingest.common import Body, InvalidAlertError, instant, lower_text, validate_body
from router.model import Action, Alert, Link, Severity

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
DedupKey = Annotated[str, StringConstraints(max_length=255)]


def _empty_is_none(value: object) -> object:
    # Some clients send `"dedup_key": ""` on a trigger to mean "none"; PagerDuty then assigns one.
    return None if value == "" else value


@dataclass(frozen=True, slots=True)
class PagerDutyEvent:
    """An accepted event: the `routing_key` it came with (a secret) and the alert it carries."""

    routing_key: str
    alert: Alert


class _Link(Body):
    href: NonEmpty
    text: str = ""


class _Image(Body):
    src: NonEmpty
    href: str = ""
    alt: str = ""


class _Payload(Body):
    """PD-CEF: what a trigger must say about the problem."""

    summary: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    source: NonEmpty
    severity: Annotated[Severity, BeforeValidator(lower_text)]
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: Any = None


class _FollowUpPayload(Body):
    """On acknowledge and resolve PagerDuty needs no payload; a summary, if sent, is kept."""

    summary: Annotated[str, StringConstraints(max_length=1024)] | None = None


class _Event(Body):
    routing_key: NonEmpty
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: Annotated[DedupKey | None, BeforeValidator(_empty_is_none)] = None
    links: list[_Link] = Field(default_factory=list)
    images: list[_Image] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


class _Trigger(_Event):
    payload: _Payload


class _FollowUp(_Event):
    payload: _FollowUpPayload | None = None


_MODELS: dict[str, type[_Event]] = {
    "trigger": _Trigger,
    "acknowledge": _FollowUp,
    "resolve": _FollowUp,
}


def parse_event(document: object) -> PagerDutyEvent:
    """Validate one Events API v2 event by PagerDuty's rules for its `event_action`.

    Raises `InvalidAlertError`: path `event_action` for an unknown action, `dedup_key` for an
    acknowledge or resolve without one, `payload.summary` and the like for a bad trigger.
    """
    action = document.get("event_action") if isinstance(document, dict) else None
    # An unknown action validates as the bare envelope, which refuses it at `event_action`.
    model = _MODELS.get(action, _Event) if isinstance(action, str) else _Event
    event = validate_body(model, document)
    if isinstance(event, _Trigger):
        alert = _trigger_alert(event)
    elif isinstance(event, _FollowUp) and event.dedup_key is not None:
        alert = _follow_up_alert(event, event.dedup_key)
    else:
        message = f"Field required: {event.event_action} names the alert by its dedup_key"
        raise InvalidAlertError([{"path": "dedup_key", "message": message}])
    return PagerDutyEvent(routing_key=event.routing_key, alert=alert)


def _trigger_alert(event: _Trigger) -> Alert:
    payload = event.payload
    return Alert(
        source="pagerduty",
        action="trigger",
        name=payload.summary,
        summary=payload.summary,
        severity=payload.severity,
        pipeline=None,
        details=_details(event, payload),
        links=_links(event),
        dedup_key=event.dedup_key,
        starts_at=instant(payload.timestamp),
    )


def _follow_up_alert(event: _FollowUp, dedup_key: str) -> Alert:
    action: Action = "acknowledge" if event.event_action == "acknowledge" else "resolve"
    summary = event.payload.summary if event.payload and event.payload.summary else None
    done = "acknowledged" if action == "acknowledge" else "resolved"
    return Alert(
        source="pagerduty",
        action=action,
        name=dedup_key,
        summary=summary or f"{dedup_key} {done}",
        details=_details(event, None),
        links=_links(event),
        dedup_key=dedup_key,
    )


def _details(event: _Event, payload: _Payload | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if payload is not None:
        custom = payload.custom_details
        if isinstance(custom, dict):
            details.update(custom)
        elif custom is not None:
            # PD-CEF says an object, but PagerDuty shows a string or list as sent: keep it whole.
            details["custom_details"] = custom
        fields = {"component": payload.component, "group": payload.group}
        fields |= {"class": payload.class_, "source": payload.source}
        details.update({key: value for key, value in fields.items() if value is not None})
    if event.client:
        details["client"] = event.client
    if event.images:
        details["images"] = [image.model_dump() for image in event.images]
    return details


def _links(event: _Event) -> tuple[Link, ...]:
    links = [Link(href=link.href, text=link.text or link.href) for link in event.links]
    if event.client_url:
        links.append(Link(href=event.client_url, text=event.client or "Client"))
    return tuple(links)
