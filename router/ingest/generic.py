"""The router's own alert (`POST /api/v1/alerts`) → one `Alert`.

For scripts and pipelines that have no monitoring system in front of them: the sender names
the pipeline directly. Its limits follow PagerDuty's (summary ≤ 1024, dedup key ≤ 255
characters) so an alert can be forwarded either way without being cut.
"""

from __future__ import annotations

__all__ = ["GenericAlert", "GenericLink", "parse"]

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from router.ingest.common import Body, lower_text, validate_body
from router.model import Alert, Link, Severity

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class GenericLink(Body):
    """A link to show with the alert; `text` defaults to the address itself."""

    href: NonEmpty
    text: str = ""


class GenericAlert(Body):
    """The body: `pipeline`, `summary`, `severity` and `status` are required."""

    pipeline: NonEmpty
    summary: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    severity: Annotated[Severity, BeforeValidator(lower_text)]
    status: Literal["firing", "resolved"]
    dedup_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    links: list[GenericLink] = Field(default_factory=list)
    name: NonEmpty | None = None


def parse(document: object) -> list[Alert]:
    """The one alert of a generic body, as a list like the other formats' parsers return.

    The alert's `source` stays "generic"; a `source` the sender gives is kept in
    `details["source"]`. The name defaults to the `alertname` label, else the summary.
    """
    body = validate_body(GenericAlert, document)
    details = dict(body.details)
    if body.source is not None:
        details["source"] = body.source
    alert = Alert(
        source="generic",
        action="trigger" if body.status == "firing" else "resolve",
        name=body.name or body.labels.get("alertname") or body.summary,
        summary=body.summary,
        severity=body.severity,
        pipeline=body.pipeline,
        labels=dict(body.labels),
        details=details,
        links=tuple(Link(href=link.href, text=link.text or link.href) for link in body.links),
        dedup_key=body.dedup_key,
    )
    return [alert]
