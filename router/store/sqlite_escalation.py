"""Escalation on SQLite: start an incident's chain, fire the steps that are due.

Runs inside a write transaction, so firing a step, creating its notifications (each with
a unique idempotency key) and moving the timer on happen together or not at all: a restart
never sends a step twice and never skips one.
"""

from __future__ import annotations

__all__ = ["fire_due", "start"]

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from router.escalation import EscalationState, after_fired, fit, initial_state
from router.model import Incident
from router.moments import MomentCache
from router.notify.message import Event
from router.paging import Moment, Planned, StepPlan, plan_step
from router.store.dbapi import Connection, dialect
from router.store.rows import dumps, from_text, incident_from_row, to_text
from router.store.sqlite_outbox import insert_plan, note
from router.store.sqlite_runtime import runtime_entries, runtime_generation, runtime_silences
from router.teammodel import EscalationPolicy, LeaveEntry, Override, Silence, TeamModel
from router.timeutil import span_end


def start(
    conn: Connection, model: TeamModel, incident: Incident, now: datetime, moments: MomentCache
) -> None:
    """Begin a new incident's escalation; step 1 fires at once when its `after` is 0."""
    state = initial_state(
        model.escalation_policies[_policy_name(model, incident)], incident.opened_at
    )
    if state.due_at is not None and state.due_at <= now:
        _fire(conn, model, incident, state, _moment(conn, model, now, moments))  # saves state
    else:
        _save(conn, incident.id, state)


def fire_due(
    conn: Connection, model: TeamModel, now: datetime, limit: int, moments: MomentCache
) -> int:
    """Fire every open incident's due step (oldest first); returns how many incidents."""
    rows = conn.execute(
        f"""SELECT * FROM incidents WHERE status = 'open' AND esc_due_at IS NOT NULL
           AND esc_due_at <= ? ORDER BY esc_due_at, id LIMIT ?{dialect(conn).skip_locked}""",  # noqa: S608 - a fixed dialect fragment
        (to_text(now), limit),
    ).fetchall()
    if not rows:
        return 0
    moment = _moment(conn, model, now, moments)
    for row in rows:
        _fire(conn, model, incident_from_row(row), _state(row), moment)
    return len(rows)


def _fire(
    conn: Connection,
    model: TeamModel,
    incident: Incident,
    state: EscalationState,
    moment: Moment,
) -> None:
    """Fire the due step; a step with nobody to page is skipped at once, not waited out."""
    if _held_by_silence(conn, model, incident, state, moment.now):
        return
    policy_name = _policy_name(model, incident)
    policy = model.escalation_policies[policy_name]
    pipeline = model.pipeline(incident.pipeline) if incident.pipeline else None
    state = fit(policy, state)
    for _ in range(len(policy.steps) * (policy.repeat + 1)):
        if state.exhausted(policy):
            break
        first = (state.round, state.step) == (1, 0)
        event: Event = "incident.triggered" if first else "incident.escalated"
        plan = plan_step(model, pipeline, policy_name, state.step, moment, event=event)
        insert_plan(conn, incident, plan, moment.now, state.round)
        if plan.notifications:
            state = after_fired(policy, state, moment.now)
            break
        message = f"round {state.round}, step {state.step + 1} had nobody to page: moving on"
        data = {"round": state.round, "step": state.step + 1}
        note(conn, incident.id, moment.now, kind="escalation.skipped", message=message, data=data)
        state = replace(after_fired(policy, state, moment.now), due_at=moment.now)
    if state.exhausted(policy) and state.due_at is not None and state.due_at <= moment.now:
        _exhausted(conn, model, incident, moment.now, policy)
        state = replace(state, due_at=None)
    _save(conn, incident.id, state)


def _exhausted(
    conn: Connection,
    model: TeamModel,
    incident: Incident,
    now: datetime,
    policy: EscalationPolicy,
) -> None:
    rounds = policy.repeat + 1
    message = f"escalation exhausted: nobody acknowledged after {rounds} round(s)"
    note(conn, incident.id, now, kind="escalation.exhausted", message=message, data={})
    channel_name = model.routing.fallback_channel
    channel = model.channels.get(channel_name) if channel_name else None
    if channel_name is None or channel is None:
        return
    final = Planned(
        "incident.escalated",
        len(policy.steps) + 1,
        channel_name,
        "channel",
        channel.type,
        (message, "the fallback channel is told when nobody acknowledges"),
    )
    insert_plan(conn, incident, StepPlan([final]), now, rounds)


def _policy_name(model: TeamModel, incident: Incident) -> str:
    """The incident's policy, or the fallback one if a reload removed it."""
    if incident.escalation in model.escalation_policies:
        return incident.escalation
    return model.routing.fallback_escalation


def _moment(conn: Connection, model: TeamModel, now: datetime, moments: MomentCache) -> Moment:
    def load() -> tuple[list[LeaveEntry], list[Override]]:
        leave = [e.entry for e in runtime_entries(conn, "leave")]
        overrides = [e.entry for e in runtime_entries(conn, "override")]
        return (
            [e for e in leave if isinstance(e, LeaveEntry)],
            [e for e in overrides if isinstance(e, Override)],
        )

    return moments.at(model, now, runtime_generation(conn), load)


def _state(row: Mapping[str, Any]) -> EscalationState:
    due = row["esc_due_at"]
    return EscalationState(
        int(row["esc_round"]),
        int(row["esc_step"]),
        from_text(row["esc_round_start"] or row["opened_at"]),
        None if due is None else from_text(due),
    )


def _save(conn: Connection, incident_id: int, state: EscalationState) -> None:
    conn.execute(
        "UPDATE incidents SET esc_round = ?, esc_step = ?, esc_round_start = ?, esc_due_at = ? "
        "WHERE id = ?",
        (
            state.round,
            state.step,
            to_text(state.round_start),
            None if state.due_at is None else to_text(state.due_at),
            incident_id,
        ),
    )


def _held_by_silence(
    conn: Connection,
    model: TeamModel,
    incident: Incident,
    state: EscalationState,
    now: datetime,
) -> bool:
    """While a silence matches, the step waits for the silence's end (and pages nobody)."""
    candidates = [*model.silences, *(s.silence for s in runtime_silences(conn))]
    if not candidates:
        return False  # the common case: no alert's labels need reading
    row = conn.execute(
        "SELECT labels FROM alerts WHERE incident_id = ? ORDER BY id DESC LIMIT 1",
        (incident.id,),
    ).fetchone()
    labels = json.loads(row["labels"]) if row else {}
    silence = _matching_silence(candidates, model, incident.pipeline, labels, now)
    if silence is None:
        return False
    tz = model.team.tz
    until = span_end(silence.ends, tz)
    if "silenced" not in incident.flags:
        flags = dumps([*incident.flags, "silenced"])
        conn.execute("UPDATE incidents SET flags = ? WHERE id = ?", (flags, incident.id))
    why = f" ({silence.comment})" if silence.comment else ""
    message = f"silenced by {silence.author} until {until.isoformat()}{why}: paging nobody"
    note(conn, incident.id, now, kind="incident.silenced", message=message, data={})
    _save(conn, incident.id, replace(state, due_at=until))
    return True


def _matching_silence(
    candidates: list[Silence],
    model: TeamModel,
    pipeline: str | None,
    labels: Mapping[str, str],
    now: datetime,
) -> Silence | None:
    """The active silence that matches and ends last, if any."""
    tz = model.team.tz
    active = [s for s in candidates if s.active(now, tz) and s.matches(pipeline, labels)]
    return max(active, key=lambda s: span_end(s.ends, tz), default=None)
