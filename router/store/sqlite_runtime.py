"""Runtime leave and overrides on SQLite: added, withdrawn (kept for the audit), listed."""

from __future__ import annotations

__all__ = ["add_runtime", "delete_runtime", "runtime_entries"]

import json
import sqlite3
from datetime import datetime

from router.store.base import RuntimeEntry, RuntimeKind
from router.store.rows import dumps, from_text, to_text
from router.teammodel import LeaveEntry, Override


def add_runtime(
    conn: sqlite3.Connection, entry: LeaveEntry | Override, by: str, now: datetime
) -> int:
    """Persist a runtime leave entry or override."""
    kind = "override" if isinstance(entry, Override) else "leave"
    row = conn.execute(
        "INSERT INTO runtime_entries (kind, entry, created_by, created_at) "
        "VALUES (?, ?, ?, ?) RETURNING id",
        (kind, dumps(entry.model_dump(mode="json", by_alias=True)), by, to_text(now)),
    ).fetchone()
    return int(row[0])


def delete_runtime(
    conn: sqlite3.Connection, kind: RuntimeKind, entry_id: int, by: str, now: datetime
) -> bool:
    """Mark a runtime entry withdrawn; the row stays for the audit trail."""
    cursor = conn.execute(
        "UPDATE runtime_entries SET deleted_by = ?, deleted_at = ? "
        "WHERE id = ? AND kind = ? AND deleted_at IS NULL",
        (by, to_text(now), entry_id, kind),
    )
    return cursor.rowcount == 1


def runtime_entries(conn: sqlite3.Connection, kind: RuntimeKind) -> list[RuntimeEntry]:
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
