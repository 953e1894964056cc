"""Versioned schema migrations, shared by every engine (plain SQL both SQLite and PostgreSQL
accept). Append a new version; never edit one that has shipped.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            dedup_key TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
            pipeline TEXT,
            name TEXT NOT NULL,
            summary TEXT NOT NULL,
            severity TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 1,
            opened_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            escalation TEXT NOT NULL,
            source TEXT NOT NULL,
            flags TEXT NOT NULL DEFAULT '[]',
            acknowledged_at TEXT,
            acknowledged_by TEXT,
            resolved_at TEXT,
            resolved_by TEXT
        );
        -- At most one unresolved incident per dedup key: the database, not memory, dedups.
        CREATE UNIQUE INDEX incidents_one_unresolved_per_key
            ON incidents (dedup_key) WHERE status <> 'resolved';
        CREATE INDEX incidents_by_status ON incidents (status, id);
        CREATE INDEX incidents_by_pipeline ON incidents (pipeline, id);

        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER REFERENCES incidents (id),
            received_at TEXT NOT NULL,
            source TEXT NOT NULL,
            caller TEXT,
            action TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            pipeline TEXT,
            name TEXT NOT NULL,
            summary TEXT NOT NULL,
            severity TEXT NOT NULL,
            labels TEXT NOT NULL,
            details TEXT NOT NULL,
            links TEXT NOT NULL,
            starts_at TEXT
        );
        CREATE INDEX alerts_by_incident ON alerts (incident_id, id);

        CREATE TABLE timeline (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX timeline_by_incident ON timeline (incident_id, id);

        CREATE TABLE runtime_entries (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('leave', 'override')),
            entry TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            deleted_by TEXT,
            deleted_at TEXT
        );
        """,
    ),
    (
        2,
        """
        -- The outbox: one row per page, written in the transaction that decided it.
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            event TEXT NOT NULL,
            step INTEGER NOT NULL,
            round INTEGER NOT NULL DEFAULT 1,
            recipient TEXT NOT NULL,
            recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('member', 'channel')),
            channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
            reasons TEXT NOT NULL DEFAULT '[]',
            idempotency_key TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            lease_until TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
        CREATE INDEX notifications_by_incident ON notifications (incident_id, id);

        -- Install-wide values such as the key that signs one-click ack links.
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    (
        3,
        """
        -- Escalation timers are data: the next step's due time lives with the incident.
        ALTER TABLE incidents ADD COLUMN esc_round INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE incidents ADD COLUMN esc_step INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE incidents ADD COLUMN esc_round_start TEXT;
        ALTER TABLE incidents ADD COLUMN esc_due_at TEXT;
        CREATE INDEX incidents_escalation_due ON incidents (status, esc_due_at);

        CREATE TABLE silences (
            id INTEGER PRIMARY KEY,
            silence TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            deleted_by TEXT,
            deleted_at TEXT
        );
        """,
    ),
)
