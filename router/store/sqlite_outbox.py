"""The outbox's SQL on SQLite: notifications created with their decision, claimed with a
lease, and their outcome recorded with a timeline event."""

from __future__ import annotations

__all__ = [
    "claim",
    "dead_letters",
    "insert_notice",
    "insert_plan",
    "meta_secret",
    "notifications_of",
    "outbox_stats",
    "record",
    "renew_lease",
]

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from router.model import Incident, Link, Notification, NotificationStatus
from router.notify.message import ASKS_FOR_ACTION, Event
from router.paging import Planned, StepPlan
from router.store.base import Delivery, DeliveryOutcome, OutboxStats
from router.store.dbapi import Connection, dialect
from router.store.rows import dumps, from_text, incident_from_row, maybe_from_text, to_text


def note(
    conn: Connection,
    incident_id: int,
    now: datetime,
    *,
    kind: str,
    message: str,
    data: Mapping[str, object],
) -> None:
    """Append an event to an incident's timeline."""
    conn.execute(
        "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)",
        (incident_id, to_text(now), kind, message, dumps(data)),
    )


def insert_plan(
    conn: Connection, incident: Incident, plan: StepPlan, now: datetime, round_: int = 1
) -> int:
    """Create a step's notifications (a key already present is not created twice)."""
    created = 0
    for planned in plan.notifications:
        created += _insert(conn, incident, planned, now, round_)
    for text in plan.notes:
        note(conn, incident.id, now, kind="escalation.note", message=text, data={})
    if plan.notifications:
        step = plan.notifications[0].step
        whom = ", ".join(f"{p.recipient} ({p.channel})" for p in plan.notifications)
        message = f"round {round_}, step {step}: paging {whom}"
        data = {"step": step, "round": round_, "event": plan.notifications[0].event}
        note(conn, incident.id, now, kind="escalation.step", message=message, data=data)
    return created


def _insert(
    conn: Connection, incident: Incident, planned: Planned, now: datetime, round_: int
) -> int:
    incident_id = incident.id
    cursor = conn.execute(
        """INSERT INTO notifications (incident_id, event, step, round, recipient, recipient_kind,
               channel, reasons, idempotency_key, status, next_attempt_at, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
           ON CONFLICT (idempotency_key) DO NOTHING""",
        (
            incident_id,
            planned.event,
            planned.step,
            round_,
            planned.recipient,
            planned.recipient_kind,
            planned.channel,
            dumps(list(planned.reasons)),
            planned.idempotency_key(incident, round_),
            to_text(now),
            to_text(now),
        ),
    )
    return cursor.rowcount


def insert_notice(conn: Connection, incident: Incident, event: Event, now: datetime) -> int:
    """Tell everyone who was paged for the incident that it was acknowledged or resolved
    (not the person who acknowledged it: they know)."""
    rows = conn.execute(
        """SELECT DISTINCT recipient, recipient_kind, channel FROM notifications
           WHERE incident_id = ? AND event IN ('incident.triggered', 'incident.escalated')
           ORDER BY recipient, channel""",
        (incident.id,),
    ).fetchall()
    acked = event == "incident.acknowledged"
    by = (incident.acknowledged_by if acked else incident.resolved_by) or "the sender"
    verb = "acknowledged" if acked else "resolved"
    planned = [
        Planned(
            event,
            0,
            row["recipient"],
            row["recipient_kind"],
            row["channel"],
            (f"you were paged for this incident; {by} {verb} it",),
        )
        for row in rows
        if not (acked and row["recipient"] == by)
    ]
    return sum(_insert(conn, incident, p, now, 1) for p in planned)


def claim(conn: Connection, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
    """Lease due notifications (and ones whose lease expired: a crashed worker's)."""
    at = to_text(now)
    rows = conn.execute(
        f"""UPDATE notifications SET status = 'sending', lease_until = ?, attempts = attempts + 1
           WHERE id IN (
               SELECT id FROM notifications
               WHERE (status = 'pending' AND next_attempt_at <= ?)
                  OR (status = 'sending' AND lease_until <= ?)
               ORDER BY next_attempt_at, id LIMIT ?{dialect(conn).skip_locked})
           RETURNING *""",  # noqa: S608 - a fixed dialect fragment
        (to_text(now + lease), at, at, limit),
    ).fetchall()
    return [_delivery(conn, _notification(row), from_text(row["lease_until"])) for row in rows]


def renew_lease(conn: Connection, notification_id: int, held: datetime, until: datetime) -> bool:
    """Move the lease on, only if it is still the one this worker holds."""
    cursor = conn.execute(
        "UPDATE notifications SET lease_until = ? "
        "WHERE id = ? AND status = 'sending' AND lease_until = ?",
        (to_text(until), notification_id, to_text(held)),
    )
    return cursor.rowcount == 1


def _delivery(conn: Connection, notification: Notification, lease_until: datetime) -> Delivery:
    incident = incident_from_row(
        conn.execute("SELECT * FROM incidents WHERE id = ?", (notification.incident_id,)).fetchone()
    )
    alert = conn.execute(
        "SELECT labels, links FROM alerts WHERE incident_id = ? ORDER BY id DESC LIMIT 1",
        (notification.incident_id,),
    ).fetchone()
    labels: dict[str, str] = json.loads(alert["labels"]) if alert else {}
    links = tuple(Link(**link) for link in json.loads(alert["links"])) if alert else ()
    return Delivery(notification, incident, lease_until, labels, links)


def _notification(row: Mapping[str, Any]) -> Notification:
    return Notification(
        id=int(row["id"]),
        incident_id=int(row["incident_id"]),
        event=row["event"],
        step=int(row["step"]),
        round=int(row["round"]),
        recipient=row["recipient"],
        recipient_kind=row["recipient_kind"],
        channel=row["channel"],
        reasons=tuple(json.loads(row["reasons"])),
        idempotency_key=row["idempotency_key"],
        status=cast(NotificationStatus, row["status"]),
        attempts=int(row["attempts"]),
        next_attempt_at=from_text(row["next_attempt_at"]),
        created_at=from_text(row["created_at"]),
        sent_at=maybe_from_text(row["sent_at"]),
        last_error=row["last_error"],
    )


def record(conn: Connection, outcome: DeliveryOutcome) -> bool:
    """Store a delivery attempt's outcome and put it on the incident's timeline; False, and
    nothing stored, when the attempt's lease (`outcome.lease_until`) is no longer the row's."""
    n = outcome.notification
    at = to_text(outcome.at)
    if outcome.result == "sent":
        sets = "status = 'sent', sent_at = ?, lease_until = NULL, last_error = NULL"
        params: tuple[object, ...] = (at,)
    elif outcome.result in {"dead", "cancelled"}:
        sets = "status = ?, lease_until = NULL, last_error = ?"
        params = (outcome.result, outcome.error)
    else:
        assert outcome.next_attempt_at is not None  # a retry always has a time
        sets = "status = 'pending', lease_until = NULL, last_error = ?, next_attempt_at = ?, "
        sets += "attempts = attempts - ?"
        params = (outcome.error, to_text(outcome.next_attempt_at), int(not outcome.counted))
    where, held = "id = ?", list[object]([n.id])
    if outcome.lease_until is not None:
        where += " AND status = 'sending' AND lease_until = ?"
        held.append(to_text(outcome.lease_until))
    cursor = conn.execute(f"UPDATE notifications SET {sets} WHERE {where}", (*params, *held))  # noqa: S608 - fixed fragments
    if cursor.rowcount != 1:
        return False
    if outcome.result == "dead" and _is_latest_step(conn, n):
        _escalate_now(conn, n.incident_id, outcome.at)
    if outcome.counted:
        note(
            conn,
            n.incident_id,
            outcome.at,
            kind=f"notification.{outcome.result}",
            message=outcome.describe(),
            data=outcome.data(),
        )
    return True


def notifications_of(conn: Connection, incident_id: int) -> list[Notification]:
    """An incident's notifications, oldest first."""
    rows = conn.execute(
        "SELECT * FROM notifications WHERE incident_id = ? ORDER BY id", (incident_id,)
    ).fetchall()
    return [_notification(row) for row in rows]


def outbox_stats(conn: Connection, now: datetime) -> OutboxStats:
    """Undelivered count and age of the oldest, dead letters."""
    row = conn.execute(
        """SELECT count(*) AS depth, min(created_at) AS oldest FROM notifications
           WHERE status IN ('pending', 'sending')"""
    ).fetchone()
    dead = conn.execute("SELECT count(*) FROM notifications WHERE status = 'dead'").fetchone()
    oldest = maybe_from_text(row["oldest"])
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return OutboxStats(int(row["depth"]), age, int(dead[0]))


def dead_letters(conn: Connection, limit: int) -> list[Notification]:
    """The most recent dead-lettered notifications."""
    rows = conn.execute(
        "SELECT * FROM notifications WHERE status = 'dead' ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_notification(row) for row in rows]


def meta_secret(conn: Connection, key: str) -> str:
    """An install-wide random secret, created on first use and shared by every replica."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (key, secrets.token_hex(32)),
    )
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row[0])


def _is_latest_step(conn: Connection, n: Notification) -> bool:
    """Whether `n` pages for the step fired last: a dead page of an earlier step must not
    cut the current step's wait short."""
    if n.event not in ASKS_FOR_ACTION:
        return False
    latest = conn.execute(
        """SELECT round, step FROM notifications WHERE incident_id = ?
           AND event IN ('incident.triggered', 'incident.escalated')
           ORDER BY round DESC, step DESC LIMIT 1""",
        (n.incident_id,),
    ).fetchone()
    return latest is not None and (latest["round"], latest["step"]) == (n.round, n.step)


def _escalate_now(conn: Connection, incident_id: int, now: datetime) -> None:
    """A page that cannot be delivered must not hold the chain: the next step is due now."""
    moved = conn.execute(
        "UPDATE incidents SET esc_due_at = ? WHERE id = ? AND status = 'open' "
        "AND esc_due_at IS NOT NULL AND esc_due_at > ?",
        (to_text(now), incident_id, to_text(now)),
    ).rowcount
    if moved:
        message = "a page was dead-lettered: the next escalation step is due now"
        note(conn, incident_id, now, kind="escalation.hastened", message=message, data={})
