"""Who a policy step pages, and over which channels: a pure plan, stored with its decision.

Targets resolve when the step fires: `oncall:primary`/`oncall:backup` through the on-call
resolver, `owner:primary`/`owner:secondary` (an owner on leave is replaced by the other
owner, then by the on-call primary), `person:NAME`, `channel:NAME`. If the on-call targets
resolve to nobody at all, the pipeline's owners and the fallback channel are paged instead.
"""

from __future__ import annotations

__all__ = ["Moment", "Planned", "StepPlan", "plan_step"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from router.model import Incident
from router.notify.message import Event
from router.oncall import NOBODY, OnCall, resolve
from router.teammodel import LeaveEntry, Override, Pipeline, TeamModel

RecipientKind = Literal["member", "channel"]
ChannelType = Literal["email", "webhook"]


@dataclass(frozen=True, slots=True)
class Planned:
    """One notification to create: to whom, over what, and why."""

    event: Event
    step: int
    recipient: str
    recipient_kind: RecipientKind
    channel: ChannelType
    reasons: tuple[str, ...]

    def idempotency_key(self, incident: Incident, round_: int = 1) -> str:
        """The same page always has the same key: receivers drop a redelivery, and the
        database refuses to create it twice. The opening time keeps keys unique even if a
        new database numbers its incidents from 1 again."""
        opened = incident.opened_at.strftime("%Y%m%dT%H%M%S%f")
        who = f"{self.recipient_kind}:{self.recipient}"
        where = f"round-{round_}/step-{self.step}/{who}/{self.channel}"
        return f"incident-{incident.id}-{opened}/{self.event}/{where}"


@dataclass(frozen=True, slots=True)
class StepPlan:
    """The notifications of one step, and notes for the timeline (skipped targets, gaps)."""

    notifications: list[Planned] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Moment:
    """The world when a step fires: the instant, leave and overrides in force, who is on call."""

    now: datetime
    leave: Sequence[LeaveEntry]
    overrides: Sequence[Override]
    oncall: OnCall

    @classmethod
    def at(
        cls,
        model: TeamModel,
        now: datetime,
        leave: Sequence[LeaveEntry],
        overrides: Sequence[Override],
    ) -> Moment:
        """Resolve who is on call at `now` once, for every target of the step."""
        return cls(now, leave, overrides, resolve(model, now, leave, overrides))

    def away(self, model: TeamModel) -> set[str]:
        """Members on leave at this moment."""
        return {entry.who for entry in self.leave if entry.covers(self.now, model.team.tz)}


@dataclass(slots=True)
class _Builder:
    model: TeamModel
    event: Event
    step: int
    plan: StepPlan = field(default_factory=StepPlan)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def member(self, name: str, reasons: Sequence[str]) -> None:
        member = self.model.team.member(name)
        if member is None or ("member", name) in self.seen:
            return
        self.seen.add(("member", name))
        why = (*reasons, f"escalation step {self.step}")
        for channel, address in (("email", member.email), ("webhook", member.webhook)):
            if address is not None:
                kind: ChannelType = "email" if channel == "email" else "webhook"
                self.plan.notifications.append(
                    Planned(self.event, self.step, name, "member", kind, why)
                )

    def channel(self, name: str, reasons: Sequence[str]) -> None:
        config = self.model.channels.get(name)
        if config is None or ("channel", name) in self.seen:
            return
        self.seen.add(("channel", name))
        why = (*reasons, f"escalation step {self.step}")
        self.plan.notifications.append(
            Planned(self.event, self.step, name, "channel", config.type, why)
        )


def plan_step(
    model: TeamModel,
    pipeline: Pipeline | None,
    policy_name: str,
    step_index: int,
    moment: Moment,
    *,
    event: Event = "incident.triggered",
) -> StepPlan:
    """The notifications of step `step_index` (0-based) of the policy, at `moment`."""
    step = model.escalation_policies[policy_name].steps[step_index]
    builder = _Builder(model, event, step_index + 1)
    for target in step.notify:
        _add_target(builder, target, pipeline, moment)
    if any(t.startswith("oncall:") for t in step.notify) and moment.oncall.primary is None:
        builder.plan.notes.append(NOBODY)
        _add_gap_fallback(builder, pipeline, moment.oncall)
    return builder.plan


def _add_target(builder: _Builder, target: str, pipeline: Pipeline | None, moment: Moment) -> None:
    kind, _, name = target.partition(":")
    oncall = moment.oncall
    if kind == "oncall":
        who = oncall.primary if name == "primary" else oncall.backup
        if who is None:
            builder.plan.notes.append(f"{target}: nobody available")
            return
        builder.member(who, [*oncall.reasons, f"paged as on-call {name}"])
    elif kind == "owner":
        _add_owner(builder, name, pipeline, moment)
    elif kind == "person":
        builder.member(name, [f"named in the escalation policy ({target})"])
    else:
        builder.channel(name, [f"named in the escalation policy ({target})"])


def _add_owner(builder: _Builder, slot: str, pipeline: Pipeline | None, moment: Moment) -> None:
    if pipeline is None:
        builder.plan.notes.append(f"owner:{slot}: the pipeline is not in the team model")
        return
    owners = pipeline.owners
    first, other = (
        (owners.primary, owners.secondary)
        if slot == "primary"
        else (owners.secondary, owners.primary)
    )
    away = moment.away(builder.model)
    for who, why in (
        (first, f"{slot} owner of {pipeline.name}"),
        (other, f"covers for {first}, who is on leave ({slot} owner of {pipeline.name})"),
        (moment.oncall.primary, f"on-call primary, covering for both owners of {pipeline.name}"),
    ):
        if who is not None and who not in away:
            builder.member(who, [why])
            return
    builder.plan.notes.append(f"owner:{slot}: both owners and the on-call primary are away")


def _add_gap_fallback(builder: _Builder, pipeline: Pipeline | None, oncall: OnCall) -> None:
    """Nobody on call: page the owners (even on leave: better than nobody) and the channel."""
    if pipeline is not None:
        for owner in (pipeline.owners.primary, pipeline.owners.secondary):
            builder.member(owner, [*oncall.reasons, f"owner of {pipeline.name}"])
    fallback = builder.model.routing.fallback_channel
    if fallback is not None:
        builder.channel(fallback, [*oncall.reasons, "the fallback channel"])
