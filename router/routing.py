"""Which pipeline an alert is about, and which escalation policy pages for it.

An alert naming a pipeline the team model does not know is routed by
`routing.fallback_escalation` and flagged `unknown_pipeline`: never dropped.
"""

from __future__ import annotations

__all__ = ["UNKNOWN_PIPELINE", "Routed", "fingerprint", "route"]

import hashlib
import json
from dataclasses import dataclass

from router.model import Alert
from router.teammodel import Pipeline, TeamModel

UNKNOWN_PIPELINE = "unknown_pipeline"


@dataclass(frozen=True, slots=True)
class Routed:
    """An alert with its pipeline (None when unknown), policy, dedup key and flags."""

    alert: Alert
    pipeline: Pipeline | None
    escalation: str
    dedup_key: str
    flags: tuple[str, ...]


def route(model: TeamModel, alert: Alert) -> Routed:
    """Attach the pipeline, its escalation policy and the dedup key to `alert`."""
    pipeline = model.pipeline(alert.pipeline) if alert.pipeline else None
    flags: tuple[str, ...]
    if pipeline is None:
        escalation, flags = model.routing.fallback_escalation, (UNKNOWN_PIPELINE,)
    else:
        escalation, flags = pipeline.escalation, ()
    dedup_key = alert.dedup_key or fingerprint(alert)
    return Routed(alert, pipeline, escalation, dedup_key, flags)


def fingerprint(alert: Alert) -> str:
    """A stable key for alerts that give none: pipeline + alert name + labels, in any order."""
    identity = [alert.pipeline, alert.name, sorted(alert.labels.items())]
    digest = hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()
    return f"fp:{digest[:32]}"
