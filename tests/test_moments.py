"""The per-minute on-call cache gives the resolver's answer, and only saves work when it may.

The shipped rotation hands over on Mondays at 09:00 New York time (week 1: 2026-10-26).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from router.moments import MomentCache, RuntimeLoader
from router.oncall import resolve
from router.teammodel import LeaveEntry, Override, TeamModel

NY = ZoneInfo("America/New_York")
MakeModel = Callable[..., TeamModel]
HANDOFF = datetime(2026, 11, 2, 9, 0, tzinfo=NY).astimezone(UTC)  # week 2 begins


def loader(leave: Sequence[LeaveEntry] = (), overrides: Sequence[Override] = ()) -> RuntimeLoader:
    return lambda: (list(leave), list(overrides))


def override(who: str, start: datetime, end: datetime) -> Override:
    return Override.model_validate({"who": who, "slot": "primary", "from": start, "to": end})


def test_answers_like_the_resolver_on_both_sides_of_a_handoff(shipped_model: TeamModel) -> None:
    cache = MomentCache()
    for offset in (-61, -1, -0.000001, 0, 0.5, 59.999999, 60):
        now = HANDOFF + timedelta(seconds=offset)
        got = cache.at(shipped_model, now, 0, loader()).oncall
        want = resolve(shipped_model, now, shipped_model.leave, shipped_model.overrides)
        assert (got.primary, got.backup, got.reasons) == (want.primary, want.backup, want.reasons)


def test_resolves_once_per_minute_when_every_boundary_is_on_a_minute(
    shipped_model: TeamModel,
) -> None:
    cache = MomentCache()
    start = HANDOFF + timedelta(minutes=5)
    for second in range(60):
        moment = cache.at(shipped_model, start + timedelta(seconds=second), 0, loader())
        assert moment.now == start + timedelta(seconds=second)  # the moment keeps its instant
    assert cache.resolved == 1
    cache.at(shipped_model, start + timedelta(minutes=1), 0, loader())
    assert cache.resolved == 2


def test_a_span_ending_mid_minute_turns_the_shortcut_off(shipped_model: TeamModel) -> None:
    cache = MomentCache()
    minute = HANDOFF + timedelta(hours=1)
    odd = override("Dana", minute - timedelta(hours=1), minute + timedelta(seconds=30))
    load = loader(overrides=[odd])
    before = cache.at(shipped_model, minute + timedelta(seconds=29), 0, load).oncall
    after = cache.at(shipped_model, minute + timedelta(seconds=30), 0, load).oncall
    assert before.primary == "Dana"
    assert after.primary != "Dana"
    assert cache.resolved == 2


def test_a_new_generation_reloads_runtime_entries(shipped_model: TeamModel) -> None:
    cache = MomentCache()
    now = HANDOFF + timedelta(hours=2)
    loads: list[int] = []

    def counting(entries: Sequence[Override]) -> RuntimeLoader:
        def load() -> tuple[list[LeaveEntry], list[Override]]:
            loads.append(1)
            return [], list(entries)

        return load

    first = cache.at(shipped_model, now, (0, 0), counting([])).oncall
    same = cache.at(shipped_model, now, (0, 0), counting([])).oncall
    cover = override("Dana", now - timedelta(hours=1), now + timedelta(hours=1))
    changed = cache.at(shipped_model, now, (1, 0), counting([cover])).oncall
    assert len(loads) == 2  # the unchanged generation did not load again
    assert first.primary == same.primary != "Dana"
    assert changed.primary == "Dana"


def test_a_reloaded_model_is_not_served_from_the_old_ones_answer(
    shipped_model: TeamModel, make_model: MakeModel
) -> None:
    cache = MomentCache()
    now = HANDOFF + timedelta(hours=3)
    old = cache.at(shipped_model, now, 0, loader()).oncall
    reordered = make_model(rotation={"order": ["Dana", "Charlie", "Bob", "Alice"]})
    new = cache.at(reordered, now, 0, loader()).oncall
    want = resolve(reordered, now, reordered.leave, reordered.overrides)
    assert (new.primary, new.backup) == (want.primary, want.backup)
    assert (new.primary, new.backup) != (old.primary, old.backup)
