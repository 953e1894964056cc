"""The SQL of the SQLite store: plain functions of a connection, run in its one thread."""

from __future__ import annotations

__all__ = [
    "alerts_of",
    "exhausted_count",
    "incident",
    "incidents",
    "ingest",
    "open_count",
    "set_status",
    "timeline",
]

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from router.incidents import Change, decide, describe
from router.model import Incident, IncidentStatus, TimelineEvent
from router.moments import MomentCache
from router.routing import Routed
from router.store.base import IncidentPage, IngestOutcome
from router.store.dbapi import Connection
from router.store.rows import alert_json, dumps, from_text, incident_from_row, to_text
from router.store.sqlite_escalation import start as start_escalation
from router.store.sqlite_outbox import insert_notice, note
from router.teammodel import TeamModel

_UNRESOLVED = "SELECT * FROM incidents WHERE dedup_key = ? AND status <> 'resolved'"


def ingest(
    conn: Connection,
    routed: Sequence[Routed],
    now: datetime,
    *,
    caller: str | None,
    model: TeamModel | None,
    moments: MomentCache,
) -> list[IngestOutcome]:
    """Fold each alert into its incident, in order, inside the caller's transaction. With a
    team model, a new incident starts its escalation (step 1 at once) in the same one."""
    return [
        _ingest_one(conn, item, now, caller=caller, model=model, moments=moments) for item in routed
    ]


def _ingest_one(
    conn: Connection,
    routed: Routed,
    now: datetime,
    *,
    caller: str | None,
    model: TeamModel | None,
    moments: MomentCache,
) -> IngestOutcome:
    row = conn.execute(_UNRESOLVED, (routed.dedup_key,)).fetchone()
    existing = incident_from_row(row) if row else None
    change = decide(existing, routed)
    incident = _apply(conn, change, existing, routed, now)
    if incident is None and change is Change.OPEN:
        # Another replica opened it between our read and our insert: fold into theirs (or,
        # if it was resolved in the meantime, open anew).
        row = conn.execute(_UNRESOLVED, (routed.dedup_key,)).fetchone()
        existing = incident_from_row(row) if row else None
        change = decide(existing, routed)
        incident = _apply(conn, change, existing, routed, now)
    incident_id = incident.id if incident else None
    _insert_alert(conn, incident_id, routed, now, caller)
    if incident_id is not None:
        data = {"source": routed.alert.source, "caller": caller}
        kind, message = f"alert.{change.value}", describe(change, routed)
        note(conn, incident_id, now, kind=kind, message=message, data=data)
    if incident is not None and change is Change.OPEN and model is not None:
        start_escalation(conn, model, incident, now, moments)
    if incident is not None and change is Change.RESOLVE:
        insert_notice(conn, incident, "incident.resolved", now)
    if incident is not None and change is Change.ACKNOWLEDGE:
        insert_notice(conn, incident, "incident.acknowledged", now)
    return IngestOutcome(incident, change)


def _apply(
    conn: Connection,
    change: Change,
    existing: Incident | None,
    routed: Routed,
    now: datetime,
) -> Incident | None:
    at, by = to_text(now), routed.alert.source
    if change is Change.OPEN:
        return _open(conn, routed, at)
    if existing is None or change is Change.ORPHAN:
        return None
    sets = {
        Change.REPEAT: "",
        Change.ACKNOWLEDGE: ", status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?",
        Change.RESOLVE: ", status = 'resolved', resolved_at = ?, resolved_by = ?",
    }[change]
    params = () if change is Change.REPEAT else (at, by)
    row = conn.execute(
        f"UPDATE incidents SET count = count + 1, updated_at = ?{sets} WHERE id = ? RETURNING *",  # noqa: S608 - fixed fragments
        (at, *params, existing.id),
    ).fetchone()
    return incident_from_row(row)


def _open(conn: Connection, routed: Routed, at: str) -> Incident | None:
    """The new incident, or None when an unresolved one with its key exists (only another
    replica can have inserted it since this job read: the unique index is the referee)."""
    alert = routed.alert
    row = conn.execute(
        """INSERT INTO incidents (dedup_key, status, pipeline, name, summary, severity, count,
               opened_at, updated_at, escalation, source, flags)
           VALUES (?, 'open', ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
           ON CONFLICT (dedup_key) WHERE status <> 'resolved' DO NOTHING RETURNING id""",
        (
            routed.dedup_key,
            alert.pipeline,
            alert.name,
            alert.summary,
            alert.severity,
            at,
            at,
            routed.escalation,
            alert.source,
            dumps(list(routed.flags)),
        ),
    ).fetchone()
    if row is None:
        return None
    # What RETURNING * would read back, without reading it back (the incident is new).
    opened = from_text(at)
    return Incident(
        id=int(row["id"]),
        status="open",
        pipeline=alert.pipeline,
        dedup_key=routed.dedup_key,
        name=alert.name,
        summary=alert.summary,
        severity=alert.severity,
        count=1,
        opened_at=opened,
        updated_at=opened,
        escalation=routed.escalation,
        source=alert.source,
        flags=tuple(routed.flags),
    )


def _insert_alert(
    conn: Connection,
    incident_id: int | None,
    routed: Routed,
    now: datetime,
    caller: str | None,
) -> None:
    alert = routed.alert
    conn.execute(
        """INSERT INTO alerts (incident_id, received_at, source, caller, action, dedup_key,
               pipeline, name, summary, severity, labels, details, links, starts_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            incident_id,
            to_text(now),
            alert.source,
            caller,
            alert.action,
            routed.dedup_key,
            alert.pipeline,
            alert.name,
            alert.summary,
            alert.severity,
            dumps(dict(alert.labels)),
            dumps(dict(alert.details)),
            dumps([asdict(link) for link in alert.links]),
            to_text(alert.starts_at) if alert.starts_at else None,
        ),
    )


def incidents(
    conn: Connection,
    status: IncidentStatus | None,
    pipeline: str | None,
    limit: int,
    before: int | None,
) -> IncidentPage:
    """Newest first; one extra row tells whether there is a next page."""
    where, params = ["1 = 1"], []
    for clause, value in (("status = ?", status), ("pipeline = ?", pipeline), ("id < ?", before)):
        if value is not None:
            where.append(clause)
            params.append(value)
    rows = conn.execute(
        f"SELECT * FROM incidents WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed clauses
        (*params, limit + 1),
    ).fetchall()
    page = [incident_from_row(row) for row in rows[:limit]]
    return IncidentPage(page, page[-1].id if len(rows) > limit else None)


def incident(conn: Connection, incident_id: int) -> Incident | None:
    """One incident by id."""
    row = conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    return incident_from_row(row) if row else None


def alerts_of(conn: Connection, incident_id: int) -> list[dict[str, object]]:
    """The incident's alerts, oldest first."""
    rows = conn.execute(
        "SELECT * FROM alerts WHERE incident_id = ? ORDER BY id", (incident_id,)
    ).fetchall()
    return [alert_json(row) for row in rows]


def timeline(conn: Connection, incident_id: int) -> list[TimelineEvent]:
    """The incident's timeline, oldest first."""
    rows = conn.execute(
        "SELECT at, kind, message, data FROM timeline WHERE incident_id = ? ORDER BY id",
        (incident_id,),
    ).fetchall()
    return [
        TimelineEvent(from_text(r["at"]), r["kind"], r["message"], json.loads(r["data"]))
        for r in rows
    ]


def set_status(
    conn: Connection, incident_id: int, status: IncidentStatus, by: str, now: datetime
) -> Incident | None:
    """Acknowledge an open incident or resolve an unresolved one; otherwise leave it be."""
    current = incident(conn, incident_id)
    allowed = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}
    if current is None or current.status not in allowed.get(status, ()):
        return current
    column = "acknowledged" if status == "acknowledged" else "resolved"
    row = conn.execute(
        f"UPDATE incidents SET status = ?, updated_at = ?, {column}_at = ?, {column}_by = ? "  # noqa: S608 - fixed column
        "WHERE id = ? RETURNING *",
        (status, to_text(now), to_text(now), by, incident_id),
    ).fetchone()
    message = f"{status} by {by}"
    note(conn, incident_id, now, kind=f"incident.{status}", message=message, data={"by": by})
    changed = incident_from_row(row)
    insert_notice(conn, changed, f"incident.{status}", now)  # type: ignore[arg-type]
    return changed


def open_count(conn: Connection) -> int:
    """Incidents not resolved."""
    row = conn.execute("SELECT count(*) FROM incidents WHERE status <> 'resolved'").fetchone()
    return int(row[0])


def exhausted_count(conn: Connection) -> int:
    """Open incidents whose escalation has nothing left to fire."""
    row = conn.execute(
        "SELECT count(*) FROM incidents WHERE status = 'open' "
        "AND esc_round_start IS NOT NULL AND esc_due_at IS NULL"
    ).fetchone()
    return int(row[0])
