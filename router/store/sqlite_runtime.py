"""Runtime leave and overrides on SQLite: added, withdrawn (kept for the audit), listed."""

from __future__ import annotations

__all__ = [
    "add_runtime",
    "add_silence",
    "delete_runtime",
    "delete_silence",
    "runtime_entries",
    "runtime_generation",
    "runtime_silences",
]

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from router.store.base import RuntimeEntry, RuntimeKind, RuntimeSilence
from router.store.dbapi import Connection
from router.store.rows import dumps, from_text, to_text
from router.teammodel import LeaveEntry, Override, Silence
from router.timeutil import span_end


def add_runtime(conn: Connection, entry: LeaveEntry | Override, by: str, now: datetime) -> int:
    """Persist a runtime leave entry or override."""
    kind = "override" if isinstance(entry, Override) else "leave"
    row = conn.execute(
        "INSERT INTO runtime_entries (kind, entry, created_by, created_at) "
        "VALUES (?, ?, ?, ?) RETURNING id",
        (kind, dumps(entry.model_dump(mode="json", by_alias=True)), by, to_text(now)),
    ).fetchone()
    return int(row[0])


def delete_runtime(
    conn: Connection, kind: RuntimeKind, entry_id: int, by: str, now: datetime
) -> bool:
    """Mark a runtime entry withdrawn; the row stays for the audit trail."""
    cursor = conn.execute(
        "UPDATE runtime_entries SET deleted_by = ?, deleted_at = ? "
        "WHERE id = ? AND kind = ? AND deleted_at IS NULL",
        (by, to_text(now), entry_id, kind),
    )
    return cursor.rowcount == 1


def runtime_generation(conn: Connection) -> tuple[int, int]:
    """A value that changes whenever runtime leave or overrides do: rows are only ever added
    (their count grows) or marked withdrawn (the count of withdrawn rows grows). Counts, not
    the largest id: on PostgreSQL, replicas' ids can become visible out of order."""
    row = conn.execute("SELECT count(*), count(deleted_at) FROM runtime_entries").fetchone()
    return int(row[0]), int(row[1])


def runtime_entries(conn: Connection, kind: RuntimeKind) -> list[RuntimeEntry]:
    """Runtime entries in force, oldest first (so later ones win where order matters)."""
    rows = conn.execute(
        "SELECT * FROM runtime_entries WHERE kind = ? AND deleted_at IS NULL ORDER BY id",
        (kind,),
    ).fetchall()
    model = Override if kind == "override" else LeaveEntry
    return [
        RuntimeEntry(
            int(row["id"]),
            model.model_validate(json.loads(row["entry"])),
            row["created_by"],
            from_text(row["created_at"]),
        )
        for row in rows
    ]


def add_silence(conn: Connection, silence: Silence, by: str, now: datetime) -> int:
    """Persist a runtime silence."""
    row = conn.execute(
        "INSERT INTO silences (silence, created_by, created_at) VALUES (?, ?, ?) RETURNING id",
        (dumps(silence.model_dump(mode="json")), by, to_text(now)),
    ).fetchone()
    return int(row[0])


def delete_silence(conn: Connection, silence_id: int, by: str, now: datetime, tz: ZoneInfo) -> bool:
    """End a runtime silence early; incidents it held back become due now (and are held
    again at once if another silence still matches). Held back means waiting for exactly
    this silence's end: an incident merely flagged `silenced` once, now waiting for its
    next step, keeps its time."""
    row = conn.execute(
        "UPDATE silences SET deleted_by = ?, deleted_at = ? WHERE id = ? AND deleted_at IS NULL "
        "RETURNING silence",
        (by, to_text(now), silence_id),
    ).fetchone()
    if row is None:
        return False
    held_until = span_end(Silence.model_validate(json.loads(row["silence"])).ends, tz)
    conn.execute(
        "UPDATE incidents SET esc_due_at = ? WHERE status = 'open' AND esc_due_at = ? "
        "AND flags LIKE '%\"silenced\"%'",
        (to_text(now), to_text(held_until)),
    )
    return True


def runtime_silences(conn: Connection) -> list[RuntimeSilence]:
    """Runtime silences not withdrawn (the caller checks whether each is active)."""
    rows = conn.execute("SELECT * FROM silences WHERE deleted_at IS NULL ORDER BY id").fetchall()
    return [
        RuntimeSilence(
            int(row["id"]),
            Silence.model_validate(json.loads(row["silence"])),
            row["created_by"],
            from_text(row["created_at"]),
        )
        for row in rows
    ]
