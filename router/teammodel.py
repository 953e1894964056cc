"""The team model: who, what and when, as frozen pydantic models.

Field-level rules (types, formats, a timezone that exists, a holiday calendar the `holidays`
package knows) live on the models. Rules that need the whole model (every name is a member,
every reference exists) live in `router.crosscheck`, which runs once at load so the rest of
the router can trust what it is given.
"""

from __future__ import annotations

__all__ = [
    "Channel",
    "Duration",
    "EmailChannel",
    "EscalationPolicy",
    "EscalationStep",
    "HolidayCalendar",
    "LeaveEntry",
    "Member",
    "Override",
    "Owners",
    "Pipeline",
    "Rotation",
    "Routing",
    "Runbook",
    "Silence",
    "Team",
    "TeamModel",
    "WebhookChannel",
]

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

from router.durations import format_duration, parse_duration
from router.timeutil import (
    OUT_OF_RANGE,
    LocalTime,
    in_supported_range,
    span_end,
    span_start,
    to_instant,
)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 30s, 10m, 1h or 7d")
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration)]
# Names end up in headers and subjects: no control characters, no surrounding space.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ChannelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TARGET = re.compile(r"(oncall:(primary|backup)|owner:(primary|secondary)|(person|channel):.+)")


class _Frozen(BaseModel):
    """Immutable, and unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


@lru_cache(maxsize=64)
def holiday_calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """The `holidays` calendar for a country and optional subdivision, built once."""
    return holidays.country_holidays(country, subdiv=subdivision)


class HolidayCalendar(_Frozen):
    """A public-holiday calendar of the `holidays` package: `{country: US, subdivision: NY}`."""

    country: Name
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known_to_holidays(self) -> HolidayCalendar:
        try:
            holiday_calendar(self.country, self.subdivision)
        except NotImplementedError:
            where = f"{self.country}/{self.subdivision}" if self.subdivision else self.country
            message = f"{where!r} is not a country/subdivision the holidays package knows"
            raise ValueError(message) from None
        return self

    @property
    def label(self) -> str:
        """`US`, or `US-NY` with a subdivision: how reasons name the calendar."""
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name on `day`, or None on an ordinary day."""
        name = holiday_calendar(self.country, self.subdivision).get(day)
        return str(name) if name else None


class Member(_Frozen):
    """An engineer who can be on call; paged by email and/or a personal webhook."""

    name: Name
    email: str | None = None
    webhook: AnyHttpUrl | None = None
    holidays: HolidayCalendar | None = None

    @field_validator("email")
    @classmethod
    def _looks_like_email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class Team(_Frozen):
    """The people, their timezone and their default holiday calendar."""

    timezone: str
    holidays: HolidayCalendar
    members: list[Member] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _iana_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: `America` is a folder
            raise ValueError(f"{value!r} is not an IANA timezone (e.g. America/New_York)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The team's timezone: handoffs, holiday dates and naive times use it."""
        return ZoneInfo(self.timezone)

    def member(self, name: str) -> Member | None:
        """The member called `name`, or None."""
        return next((m for m in self.members if m.name == name), None)

    def calendar_of(self, name: str) -> HolidayCalendar:
        """The member's own holiday calendar, else the team's."""
        member = self.member(name)
        return member.holidays if member and member.holidays else self.holidays


class Rotation(_Frozen):
    """Weekly (or `length`) shifts: week k is order[k-1] primary, order[k] backup."""

    order: list[Name] = Field(min_length=2)
    start: datetime
    length: Duration = timedelta(days=7)

    @field_validator("start")
    @classmethod
    def _supported_year(cls, value: datetime) -> datetime:
        if not in_supported_range(value):
            raise ValueError(OUT_OF_RANGE)
        return value

    @field_validator("length")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class _Span(_Frozen):
    """A span of local time: a date-only `to` includes that day, a date-time `to` is exclusive."""

    who: Name
    from_: LocalTime = Field(alias="from")
    to: LocalTime
    reason: str | None = None

    def starts(self, tz: ZoneInfo) -> datetime:
        """The first instant of the span, in UTC."""
        return span_start(self.from_, tz)

    def ends(self, tz: ZoneInfo) -> datetime:
        """The first instant after the span, in UTC."""
        return span_end(self.to, tz)

    def covers(self, instant: datetime, tz: ZoneInfo) -> bool:
        """Whether `instant` falls inside the span."""
        return self.starts(tz) <= instant < self.ends(tz)

    def describe_end(self) -> str:
        """`through 2026-12-05` or `until 2026-12-02 18:00`, as a person wrote it."""
        if isinstance(self.to, datetime):
            return f"until {self.to.isoformat(sep=' ', timespec='minutes')}"
        return f"through {self.to.isoformat()}"


class LeaveEntry(_Span):
    """Sick leave or vacation: the person cannot be on call during the span."""


class Override(_Span):
    """Someone covers the primary or backup slot for a span of time."""

    slot: Literal["primary", "backup"]


class Silence(_Frozen):
    """A maintenance window: matching alerts are recorded but page nobody until `ends`."""

    pipeline: str | None = None
    matchers: dict[str, str] = Field(default_factory=dict)
    starts: LocalTime
    ends: LocalTime
    author: Name
    comment: str | None = None

    @model_validator(mode="after")
    def _matches_something(self) -> Silence:
        if self.pipeline is None and not self.matchers:
            raise ValueError("a silence needs a pipeline, label matchers, or both")
        return self

    def active(self, instant: datetime, tz: ZoneInfo) -> bool:
        """Whether the window is open at `instant`."""
        return span_start(self.starts, tz) <= instant < span_end(self.ends, tz)

    def matches(self, pipeline: str | None, labels: Mapping[str, str]) -> bool:
        """Whether an alert for `pipeline` with `labels` falls under this silence."""
        if self.pipeline is not None and self.pipeline != pipeline:
            return False
        return all(labels.get(name) == value for name, value in self.matchers.items())


class Owners(_Frozen):
    """A pipeline's primary and secondary owner."""

    primary: Name
    secondary: Name


class Pipeline(_Frozen):
    """A data pipeline the router can be alerted about."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    name: Name
    area: Name
    owners: Owners
    investor_reported: bool = False
    runbook: str | None = None
    escalation: Name
    integration_keys: list[SecretStr] = Field(default_factory=list)


class Runbook(_Frozen):
    """What a paged engineer reads first: dependencies and what could go wrong."""

    title: Name
    dependencies: list[Name] = Field(default_factory=list)
    failure_modes: list[Name] = Field(default_factory=list)
    url: AnyHttpUrl | None = None


Target = Annotated[str, Field(pattern=_TARGET.pattern)]


class EscalationStep(_Frozen):
    """Who to notify, `after` the start of the round."""

    after: Duration
    notify: list[Target] = Field(min_length=1)


class EscalationPolicy(_Frozen):
    """Steps run in order until an ack; the whole chain runs `repeat` more times."""

    repeat: int = Field(default=0, ge=0)
    repeat_after: Duration = timedelta(minutes=10)
    steps: list[EscalationStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _steps_in_order(self) -> EscalationPolicy:
        afters = [step.after for step in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return self


class WebhookChannel(_Frozen):
    """A shared webhook destination (chat room, pager bridge)."""

    type: Literal["webhook"]
    url: AnyHttpUrl
    format: Literal["generic", "slack"] = "generic"
    secret: SecretStr | None = None


class EmailChannel(_Frozen):
    """A shared mailbox."""

    type: Literal["email"]
    address: str

    @field_validator("address")
    @classmethod
    def _looks_like_email(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


Channel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]


class Routing(_Frozen):
    """How an alert finds its pipeline, and what happens when it does not."""

    pipeline_label: Name = "pipeline"
    fallback_escalation: Name
    fallback_channel: str | None = None


class TeamModel(_Frozen):
    """The whole team model, as loaded from `config/`."""

    team: Team
    rotation: Rotation
    leave: list[LeaveEntry] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    pipelines: list[Pipeline] = Field(min_length=1)
    runbooks: dict[str, Runbook] = Field(default_factory=dict)
    escalation_policies: dict[str, EscalationPolicy] = Field(min_length=1)
    channels: dict[ChannelName, Channel] = Field(default_factory=dict)
    routing: Routing

    @property
    def rotation_start(self) -> datetime:
        """The first handoff of week 1, as an instant in UTC."""
        return to_instant(self.rotation.start, self.team.tz)

    def pipeline(self, pipeline_id: str) -> Pipeline | None:
        """The pipeline with this id, or None."""
        return self._pipelines_by_id.get(pipeline_id)

    @cached_property
    def _pipelines_by_id(self) -> dict[str, Pipeline]:
        # Looked up twice per alert: a dict, not a scan (the model is immutable).
        return {p.id: p for p in self.pipelines}
