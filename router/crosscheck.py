"""Rules that need the whole team model: names, references, spans. Run once, at load.

Each check returns problems rather than raising, so a user sees every mistake at once,
each with the key path where it is (`pipelines[2].owners.primary: 'Eve' is not a team member`).
"""

from __future__ import annotations

__all__ = ["check_silence", "check_span", "cross_check"]

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from router.errors import ConfigProblem
from router.teammodel import EscalationPolicy, LeaveEntry, Override, Silence, TeamModel
from router.timeutil import OUT_OF_RANGE, in_supported_range, span_end, span_start


def cross_check(model: TeamModel) -> list[ConfigProblem]:
    """Every problem that only shows when the parts of the model are put together."""
    checks: Iterable[Iterator[ConfigProblem]] = (
        _members(model),
        _rotation(model),
        _spans(model, "leave", model.leave),
        _spans(model, "overrides", model.overrides),
        _silences(model),
        _pipelines(model),
        _policies(model),
        _routing(model),
    )
    return [problem for check in checks for problem in check]


def check_span(model: TeamModel, path: str, entry: LeaveEntry | Override) -> list[ConfigProblem]:
    """A leave entry or override against the model: known person, end after start."""
    problems = []
    if model.team.member(entry.who) is None:
        problems.append(_not_member(f"{path}.who", entry.who))
    tz = model.team.tz
    for key, value in (("from", entry.from_), ("to", entry.to)):
        if not in_supported_range(value):
            problems.append(ConfigProblem(f"{path}.{key}", OUT_OF_RANGE))
    if not problems and entry.ends(tz) <= entry.starts(tz):
        problems.append(ConfigProblem(f"{path}.to", "must be after `from`"))
    return problems


def _not_member(path: str, name: str) -> ConfigProblem:
    return ConfigProblem(path, f"{name!r} is not a team member")


def _members(model: TeamModel) -> Iterator[ConfigProblem]:
    counts = Counter(m.name for m in model.team.members)
    for i, member in enumerate(model.team.members):
        path = f"team.members[{i}]"
        if counts[member.name] > 1:
            yield ConfigProblem(f"{path}.name", f"{member.name!r} is listed more than once")
        if member.email is None and member.webhook is None:
            yield ConfigProblem(path, f"{member.name!r} has neither email nor webhook to be paged")


def _rotation(model: TeamModel) -> Iterator[ConfigProblem]:
    order = model.rotation.order
    seen: set[str] = set()
    for i, name in enumerate(order):
        if model.team.member(name) is None:
            yield _not_member(f"rotation.order[{i}]", name)
        if name in seen:
            yield ConfigProblem(f"rotation.order[{i}]", f"{name!r} appears more than once")
        seen.add(name)


def _spans(
    model: TeamModel, key: str, entries: Sequence[LeaveEntry | Override]
) -> Iterator[ConfigProblem]:
    for i, entry in enumerate(entries):
        yield from check_span(model, f"{key}[{i}]", entry)


def _pipelines(model: TeamModel) -> Iterator[ConfigProblem]:
    ids = Counter(p.id for p in model.pipelines)
    keys = Counter(k.get_secret_value() for p in model.pipelines for k in p.integration_keys)
    for i, pipeline in enumerate(model.pipelines):
        path = f"pipelines[{i}]"
        if ids[pipeline.id] > 1:
            yield ConfigProblem(f"{path}.id", f"duplicate pipeline id {pipeline.id!r}")
        for slot in ("primary", "secondary"):
            name = getattr(pipeline.owners, slot)
            if model.team.member(name) is None:
                yield _not_member(f"{path}.owners.{slot}", name)
        if pipeline.owners.primary == pipeline.owners.secondary:
            yield ConfigProblem(f"{path}.owners", "primary and secondary must be two people")
        if pipeline.runbook is not None and pipeline.runbook not in model.runbooks:
            yield ConfigProblem(f"{path}.runbook", f"no runbook named {pipeline.runbook!r}")
        if pipeline.escalation not in model.escalation_policies:
            yield ConfigProblem(
                f"{path}.escalation", f"no escalation policy named {pipeline.escalation!r}"
            )
        for j, key in enumerate(pipeline.integration_keys):
            if keys[key.get_secret_value()] > 1:
                # The key itself is a secret: say where it is, never what it is.
                yield ConfigProblem(f"{path}.integration_keys[{j}]", "used more than once")


def _policies(model: TeamModel) -> Iterator[ConfigProblem]:
    for name, policy in model.escalation_policies.items():
        yield from _policy_targets(model, f"escalation_policies.{name}", policy)


def _policy_targets(
    model: TeamModel, path: str, policy: EscalationPolicy
) -> Iterator[ConfigProblem]:
    for i, step in enumerate(policy.steps):
        for j, target in enumerate(step.notify):
            kind, _, name = target.partition(":")
            where = f"{path}.steps[{i}].notify[{j}]"
            if kind == "person" and model.team.member(name) is None:
                yield _not_member(where, name)
            if kind == "channel" and name not in model.channels:
                yield ConfigProblem(where, f"no channel named {name!r}")


def _routing(model: TeamModel) -> Iterator[ConfigProblem]:
    fallback = model.routing.fallback_escalation
    if fallback not in model.escalation_policies:
        yield ConfigProblem(
            "routing.fallback_escalation", f"no escalation policy named {fallback!r}"
        )
    channel = model.routing.fallback_channel
    if channel is not None and channel not in model.channels:
        yield ConfigProblem("routing.fallback_channel", f"no channel named {channel!r}")


def check_silence(model: TeamModel, path: str, silence: Silence) -> list[ConfigProblem]:
    """A silence against the model: a known pipeline, an end after its start."""
    problems = []
    if silence.pipeline is not None and model.pipeline(silence.pipeline) is None:
        problems.append(ConfigProblem(f"{path}.pipeline", f"no pipeline {silence.pipeline!r}"))
    for key, value in (("starts", silence.starts), ("ends", silence.ends)):
        if not in_supported_range(value):
            problems.append(ConfigProblem(f"{path}.{key}", OUT_OF_RANGE))
    tz = model.team.tz
    if not problems and span_end(silence.ends, tz) <= span_start(silence.starts, tz):
        problems.append(ConfigProblem(f"{path}.ends", "must be after `starts`"))
    return problems


def _silences(model: TeamModel) -> Iterator[ConfigProblem]:
    for i, silence in enumerate(model.silences):
        yield from check_silence(model, f"silences[{i}]", silence)
