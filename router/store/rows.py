"""Converting between domain values and database rows (text timestamps, JSON columns)."""

from __future__ import annotations

__all__ = ["alert_json", "dumps", "from_text", "incident_from_row", "maybe_from_text", "to_text"]

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from router.model import Incident, IncidentStatus, Severity

_last_text: tuple[datetime | None, str] = (None, "")


def to_text(instant: datetime) -> str:
    """UTC, fixed width, so text order is time order."""
    global _last_text  # noqa: PLW0603 - a one-entry memo, swapped whole
    last, text = _last_text
    if instant is not last:
        # One job writes the same instant into half a dozen columns: format it once.
        in_utc = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
        text = in_utc.isoformat(timespec="microseconds")
        _last_text = (instant, text)
    return text


def from_text(text: str) -> datetime:
    """The instant `to_text` wrote."""
    return datetime.fromisoformat(text)


def maybe_from_text(text: str | None) -> datetime | None:
    """The instant `to_text` wrote, or None for a NULL column."""
    return None if text is None else datetime.fromisoformat(text)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dumps(value: object) -> str:
    """Compact JSON for a JSON column (one encoder: this runs several times per alert)."""
    # Most labels, details, links and flags columns are empty: 12 % of the ingest job was
    # spent encoding, most of it on these.
    if not value:
        if isinstance(value, dict):
            return "{}"
        if isinstance(value, list | tuple):
            return "[]"
    return _ENCODER.encode(value)


def incident_from_row(row: Mapping[str, Any]) -> Incident:
    """An `Incident` from a row of the incidents table."""
    return Incident(
        id=int(row["id"]),
        status=cast(IncidentStatus, row["status"]),
        pipeline=row["pipeline"],
        dedup_key=row["dedup_key"],
        name=row["name"],
        summary=row["summary"],
        severity=cast(Severity, row["severity"]),
        count=int(row["count"]),
        opened_at=from_text(row["opened_at"]),
        updated_at=from_text(row["updated_at"]),
        escalation=row["escalation"],
        source=row["source"],
        flags=tuple(json.loads(row["flags"])),
        acknowledged_at=maybe_from_text(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        resolved_at=maybe_from_text(row["resolved_at"]),
        resolved_by=row["resolved_by"],
    )


def alert_json(row: Mapping[str, Any]) -> dict[str, object]:
    """A stored alert as the API shows it."""
    return {
        "id": row["id"],
        "received_at": row["received_at"],
        "source": row["source"],
        "caller": row["caller"],
        "action": row["action"],
        "dedup_key": row["dedup_key"],
        "pipeline": row["pipeline"],
        "name": row["name"],
        "summary": row["summary"],
        "severity": row["severity"],
        "labels": json.loads(row["labels"]),
        "details": json.loads(row["details"]),
        "links": json.loads(row["links"]),
        "starts_at": row["starts_at"],
    }
