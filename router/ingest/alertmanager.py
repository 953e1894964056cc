"""Prometheus Alertmanager's webhook body (`<webhook_config>`, payload version "4") → `Alert`s.

Alertmanager posts one body per alert group and re-posts firing groups every
`repeat_interval`; each alert in `alerts[]` becomes one `Alert`, firing → `trigger`,
resolved → `resolve`. Folding repeats into one incident is the incident layer's job.
"""

from __future__ import annotations

__all__ = ["AlertmanagerBody", "parse"]

from typing import Literal

from router.ingest.common import validate_body
from router.ingest.grouped import GroupedAlert, GroupedBody, to_alert
from router.model import Alert


class AlertmanagerBody(GroupedBody):
    """The webhook body: `version` must be "4", the only version Alertmanager has sent since 0.x."""

    version: Literal["4"]
    alerts: list[GroupedAlert]


def parse(document: object, *, pipeline_label: str) -> list[Alert]:
    """The alerts of one Alertmanager notification; `[]` for an empty group.

    `pipeline_label` is `routing.pipeline_label`: the label that names the pipeline.
    Raises `InvalidAlertError` with field paths (`version`, `alerts[0].labels`) for a wrong shape.
    """
    body = validate_body(AlertmanagerBody, document)
    return [
        to_alert(alert, body, source="alertmanager", pipeline_label=pipeline_label)
        for alert in body.alerts
    ]
