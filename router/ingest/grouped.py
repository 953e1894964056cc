"""The grouped notification that Alertmanager sends and Grafana extends.

Both send one body per alert group: group-wide fields (`groupKey`, `truncatedAlerts`,
`commonLabels`, …) and `alerts[]`, each with `status`, `labels`, `annotations`, `startsAt`,
`endsAt`, `generatorURL` and `fingerprint` (Alertmanager's `notify/webhook` Message; Grafana's
`ExtendedData` adds per-alert URLs and values). This module holds the shared part of the body
and turns one of its alerts into an `Alert`; `alertmanager.py` and `grafana.py` add the rest.
"""

from __future__ import annotations

__all__ = ["GroupedAlert", "GroupedBody", "to_alert"]

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt

from router.ingest.common import KV, Body, first_text, instant, normalize_severity
from router.model import Alert, Link

UNNAMED = "unnamed alert"


class GroupedAlert(Body):
    """One alert of a group, as Alertmanager sends it (Grafana sends these fields too)."""

    status: Literal["firing", "resolved"]
    labels: KV
    annotations: KV = Field(default_factory=dict)
    starts_at: datetime | None = Field(default=None, alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""


class GroupedBody(Body):
    """The group-wide fields both senders put beside `alerts`; subclasses add `alerts`."""

    status: Literal["firing", "resolved"] | None = None
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: Annotated[StrictInt, Field(ge=0)] = Field(default=0, alias="truncatedAlerts")
    group_labels: KV = Field(default_factory=dict, alias="groupLabels")
    common_labels: KV = Field(default_factory=dict, alias="commonLabels")
    common_annotations: KV = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")


def to_alert(
    alert: GroupedAlert,
    group: GroupedBody,
    *,
    source: str,
    pipeline_label: str,
    details: Mapping[str, Any] | None = None,
    links: Iterable[Link] = (),
) -> Alert:
    """One alert of a group as the router's `Alert`; `details` and `links` add sender extras.

    The name is the `alertname` label; the summary the `summary` annotation, else
    `description`, else the name; the pipeline the `pipeline_label` label (empty means absent,
    as in Prometheus).
    """
    labels = dict(alert.labels)
    annotations = alert.annotations
    name = first_text(labels.get("alertname")) or UNNAMED
    return Alert(
        source=source,
        action="trigger" if alert.status == "firing" else "resolve",
        name=name,
        summary=first_text(annotations.get("summary"), annotations.get("description")) or name,
        severity=normalize_severity(labels.get("severity")),
        pipeline=first_text(labels.get(pipeline_label)),
        labels=labels,
        details={**annotations, **_group_details(alert, group), **(details or {})},
        links=_unique([*_alert_links(alert), *links]),
        dedup_key=None,
        starts_at=instant(alert.starts_at),
    )


def _group_details(alert: GroupedAlert, group: GroupedBody) -> dict[str, Any]:
    ends_at = instant(alert.ends_at)
    details: dict[str, Any] = {
        "fingerprint": alert.fingerprint or None,
        "group_key": group.group_key or None,
        "ends_at": ends_at.isoformat() if ends_at else None,
    }
    if group.truncated_alerts > 0:
        details["truncated_alerts"] = group.truncated_alerts
    return details


def _alert_links(alert: GroupedAlert) -> list[Link]:
    candidates = [
        (alert.generator_url, "Source"),
        (alert.annotations.get("runbook_url", ""), "Runbook"),
        (alert.annotations.get("dashboard_url", ""), "Dashboard"),
    ]
    return [Link(href=href, text=text) for href, text in candidates if href.strip()]


def _unique(links: Iterable[Link]) -> tuple[Link, ...]:
    seen: set[str] = set()
    kept = []
    for link in links:
        if link.href not in seen:
            seen.add(link.href)
            kept.append(link)
    return tuple(kept)
