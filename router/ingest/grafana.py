"""Grafana alerting's webhook contact point body (payload version "1") → `Alert`s.

Grafana's notifier is built on Alertmanager's, so the body is Alertmanager's grouped
notification plus `orgId`, `title`, `state` and `message`, and per alert `silenceURL`,
`dashboardURL`, `panelURL`, `imageURL`, `values` and `valueString`. A contact point with a
custom payload template sends whatever its template says; that is refused here, by shape.
"""

from __future__ import annotations

__all__ = ["GrafanaAlert", "GrafanaBody", "parse"]

from typing import Any, Literal

from pydantic import Field, StrictInt

from router.ingest.common import validate_body
from router.ingest.grouped import GroupedAlert, GroupedBody, to_alert
from router.model import Alert, Link


class GrafanaAlert(GroupedAlert):
    """One alert as Grafana sends it: Alertmanager's fields plus Grafana's links and values."""

    silence_url: str = Field(default="", alias="silenceURL")
    dashboard_url: str = Field(default="", alias="dashboardURL")
    panel_url: str = Field(default="", alias="panelURL")
    image_url: str = Field(default="", alias="imageURL")
    # Go marshals the nil map of a rule without values as `null`.
    values: dict[str, float] | None = None
    value_string: str = Field(default="", alias="valueString")


class GrafanaBody(GroupedBody):
    """The webhook body: `version` "1", the only one Grafana's webhook notifier has sent."""

    version: Literal["1"]
    alerts: list[GrafanaAlert]
    org_id: StrictInt | None = Field(default=None, alias="orgId")
    title: str = ""
    state: str = ""
    message: str = ""


def parse(document: object, *, pipeline_label: str) -> list[Alert]:
    """The alerts of one Grafana notification; `[]` for an empty group.

    Raises `InvalidAlertError` with field paths (`version`, `alerts[0].values.B`) for a wrong
    shape.
    """
    body = validate_body(GrafanaBody, document)
    return [
        to_alert(
            alert,
            body,
            source="grafana",
            pipeline_label=pipeline_label,
            details=_details(alert),
            links=_links(alert),
        )
        for alert in body.alerts
    ]


def _details(alert: GrafanaAlert) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if alert.values:
        details["values"] = dict(alert.values)
    if alert.value_string:
        details["value_string"] = alert.value_string
    return details


def _links(alert: GrafanaAlert) -> list[Link]:
    candidates = [
        (alert.dashboard_url, "Dashboard"),
        (alert.panel_url, "Panel"),
        (alert.silence_url, "Silence"),
        (alert.image_url, "Image"),
    ]
    return [Link(href=href, text=text) for href, text in candidates if href.strip()]
