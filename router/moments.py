"""Who is on call, worked out once per minute instead of once per alert.

Every new incident asks who is on call right now. In an alert storm that is thousands of
identical questions a second: the rotation, the holiday calendars, leave and overrides
give the same answer until the next boundary. When every boundary in force falls on a
whole minute (handoffs, span starts and ends, local midnight), the answer cannot change
inside a minute, so it is resolved once per minute and per set of runtime entries. If any
boundary does not (an override ending at 12:00:30), every call resolves afresh.

Runtime leave and overrides live in the database, where another replica may change them;
the caller reads their `generation` (a value that changes whenever they do) in its own
transaction, and the entries are loaded again only when it changed.
"""

from __future__ import annotations

__all__ = ["MomentCache", "RuntimeLoader"]

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.oncall import OnCall, resolve
from router.paging import Moment
from router.teammodel import LeaveEntry, Override, TeamModel

RuntimeLoader = Callable[[], tuple[Sequence[LeaveEntry], Sequence[Override]]]
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _Entries:
    """Leave and overrides in force (config's, then runtime's), and whether every one of
    their boundaries, and the rotation's, falls on a whole minute."""

    leave: tuple[LeaveEntry, ...]
    overrides: tuple[Override, ...]
    minute_aligned: bool


class MomentCache:
    """`Moment`s for one store thread: not shared between threads."""

    def __init__(self) -> None:
        self._entries_key: tuple[TeamModel, Hashable] | None = None
        self._entries: _Entries | None = None
        self._oncall_key: tuple[_Entries, datetime] | None = None
        self._oncall: OnCall | None = None
        self.resolved = 0  # how many times the on-call resolver really ran (for tests)

    def forget(self) -> None:
        """Drop what was read: the transaction it was read in did not commit (a runtime
        entry it saw may not exist, and its generation may be counted again by another)."""
        self._entries_key = None

    def at(
        self, model: TeamModel, now: datetime, generation: Hashable, load: RuntimeLoader
    ) -> Moment:
        """The moment `now`, with runtime entries from `load` when `generation` is new."""
        entries = self._entries_for(model, generation, load)
        return Moment(now, entries.leave, entries.overrides, self._oncall_at(model, now, entries))

    def _entries_for(self, model: TeamModel, generation: Hashable, load: RuntimeLoader) -> _Entries:
        key = self._entries_key
        if key is None or key[0] is not model or key[1] != generation or self._entries is None:
            leave, overrides = load()
            all_leave = (*model.leave, *leave)
            all_overrides = (*model.overrides, *overrides)
            aligned = _rotation_aligned(model) and _spans_aligned(model, all_leave, all_overrides)
            self._entries = _Entries(all_leave, all_overrides, aligned)
            self._entries_key = (model, generation)
        return self._entries

    def _oncall_at(self, model: TeamModel, now: datetime, entries: _Entries) -> OnCall:
        if not (entries.minute_aligned and _whole_minute_offset(model, now)):
            self.resolved += 1
            return resolve(model, now, entries.leave, entries.overrides)
        minute = now.replace(second=0, microsecond=0)
        key = self._oncall_key
        if self._oncall is None or key is None or key[0] is not entries or key[1] != minute:
            self.resolved += 1
            self._oncall = resolve(model, now, entries.leave, entries.overrides)
            self._oncall_key = (entries, minute)
        return self._oncall


def _on_minute(instant: datetime) -> bool:
    return instant.second == 0 and instant.microsecond == 0


def _rotation_aligned(model: TeamModel) -> bool:
    rotation = model.rotation
    return _on_minute(rotation.start) and rotation.length % _MINUTE == timedelta(0)


def _spans_aligned(
    model: TeamModel, leave: Iterable[LeaveEntry], overrides: Iterable[Override]
) -> bool:
    tz = model.team.tz
    return all(
        _on_minute(span.starts(tz)) and _on_minute(span.ends(tz)) for span in (*leave, *overrides)
    )


def _whole_minute_offset(model: TeamModel, now: datetime) -> bool:
    """Local midnights and handoffs fall on whole UTC minutes (true of every modern zone)."""
    offset = now.astimezone(model.team.tz).utcoffset()
    return offset is not None and offset % _MINUTE == timedelta(0)
