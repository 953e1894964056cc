"""How an alert changes its incident: open, repeat, acknowledge, resolve; a pure decision.

The store looks up the open incident for the alert's dedup key and applies the decision in
the same transaction, so two replicas cannot both open an incident for one key.
"""

from __future__ import annotations

__all__ = ["Change", "decide", "describe"]

from enum import Enum

from router.model import Incident
from router.routing import Routed


class Change(Enum):
    """What an alert does to the incident for its dedup key."""

    OPEN = "opened"  # no open incident: open one (and page, once paging exists)
    REPEAT = "repeated"  # a repeat or a re-send: count it, page nobody
    ACKNOWLEDGE = "acknowledged"  # the sender acknowledged it
    RESOLVE = "resolved"  # the sender resolved it
    ORPHAN = "orphaned"  # an ack or resolve for no open incident: recorded, nothing to change


def decide(existing: Incident | None, routed: Routed) -> Change:
    """The change `routed` makes, given the unresolved incident for its key (or None)."""
    action = routed.alert.action
    if existing is None:
        return Change.OPEN if action == "trigger" else Change.ORPHAN
    if action == "resolve":
        return Change.RESOLVE
    if action == "acknowledge" and existing.status == "open":
        return Change.ACKNOWLEDGE
    return Change.REPEAT


def describe(change: Change, routed: Routed) -> str:
    """The timeline's sentence for an alert's change."""
    alert = routed.alert
    source = (
        alert.details.get("source", alert.source) if alert.source == "generic" else alert.source
    )
    return {
        Change.OPEN: f"opened by {source}: {alert.summary}",
        Change.REPEAT: f"repeated by {source}: {alert.summary}",
        Change.ACKNOWLEDGE: f"acknowledged by {source}",
        Change.RESOLVE: f"resolved by {source}",
        Change.ORPHAN: f"{alert.action} from {source} for no open incident",
    }[change]
