"""Escalation (SPEC section 1 "escalation_policies", section 4 "Escalation").

Two layers. The pure state machine (`router.escalation`) is tested with tables: when every
step of every round is due, what a late step does to the rest of the chain, when the chain
is exhausted. The engine around it is tested through the real app: alerts and acks over
HTTP, time moved by a FakeClock, due steps fired by one `app[ESCALATOR].fire_due()` pass at
a time, deliveries by `app[OUTBOX].deliver_due()`. Nothing sleeps and nothing reads the
wall clock.

Week 5 (NOW, Tuesday 2026-11-24 12:00 New York) has Alice primary and Bob backup; the
`investor` policy pages the on-call primary at 0m, the backup at 10m and both owners at 20m,
three rounds in all, 10m apart; aggregate-profit's owners are Bob and Dana.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.escalation import EscalationState, after_fired, initial_state
from router.teammodel import EscalationPolicy, TeamModel
from router.web.keys import ESCALATOR, OUTBOX

from apphelpers import AUTH, NOW, Client, FakeClock, MakeClient, build_app, json_of

MakeModel = Callable[..., TeamModel]
MakeServer = Callable[[web.Application], Awaitable[TestServer]]

NAMES = ("Alice", "Bob", "Charlie", "Dana")
FALLBACK = {
    "channels": {"data-team": {"type": "webhook", "url": "http://127.0.0.1:9/x"}},
    "routing": {"fallback_channel": "data-team"},
}
TODAY = "2026-11-24"  # NOW's local date: a date-only leave entry covers all of it


def minutes(n: float) -> timedelta:
    """`n` minutes."""
    return timedelta(minutes=n)


def policy(afters: Sequence[int], repeat: int, repeat_after: int = 10) -> EscalationPolicy:
    """A policy whose steps come `afters` minutes into a round, each paging the primary."""
    return EscalationPolicy.model_validate(
        {
            "repeat": repeat,
            "repeat_after": f"{repeat_after}m",
            "steps": [{"after": f"{a}m", "notify": ["oncall:primary"]} for a in afters],
        }
    )


def on_leave(*names: str, day: str = TODAY) -> list[dict[str, str]]:
    """Leave entries: each of `names` away all of `day` (local)."""
    return [{"who": name, "from": day, "to": day, "reason": "vacation"} for name in names]


# ---------------------------------------------------------------------------------------------
# The pure state machine: tables

Fired = tuple[int, int, int]  # (round, step from 1, minutes after the incident opened)


def run_chain(
    chosen: EscalationPolicy, late: dict[tuple[int, int], int] | None = None
) -> tuple[list[Fired], EscalationState]:
    """Fire every step of `chosen` when due (or `late[(round, step)]` minutes after), from an
    incident opened at NOW; every firing, and the final state."""
    state = initial_state(chosen, NOW)
    fired: list[Fired] = []
    while state.due_at is not None and not state.exhausted(chosen):
        assert len(fired) < 100, "the chain never ends"
        at = state.due_at + minutes((late or {}).get((state.round, state.step + 1), 0))
        fired.append((state.round, state.step + 1, int((at - NOW) / minutes(1))))
        state = after_fired(chosen, state, at)
    return fired, state


INVESTOR_ON_TIME = [
    (1, 1, 0), (1, 2, 10), (1, 3, 20),
    (2, 1, 30), (2, 2, 40), (2, 3, 50),
    (3, 1, 60), (3, 2, 70), (3, 3, 80),
]  # fmt: skip
EXPERIMENT_ON_TIME = [
    (1, 1, 0), (1, 2, 15), (1, 3, 30),
    (2, 1, 60), (2, 2, 75), (2, 3, 90),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("investor", INVESTOR_ON_TIME, id="investor"),
        pytest.param("experiment", EXPERIMENT_ON_TIME, id="experiment"),
    ],
)
def test_shipped_policy_fires_every_step_of_every_round_at_its_due_time_then_is_exhausted(
    shipped_model: TeamModel, name: str, expected: list[Fired]
) -> None:
    chosen = shipped_model.escalation_policies[name]
    fired, final = run_chain(chosen)
    assert fired == expected
    assert final.exhausted(chosen)
    # "Exhausted" is announced `repeat_after` after the last step, giving it time to be acked.
    assert final.due_at == NOW + minutes(expected[-1][2]) + chosen.repeat_after


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        pytest.param(
            {(1, 2): 35},
            [
                (1, 1, 0), (1, 2, 45), (1, 3, 55),
                (2, 1, 65), (2, 2, 75), (2, 3, 85),
                (3, 1, 95), (3, 2, 105), (3, 3, 115),
            ],
            id="step-2-35-minutes-late",
        ),
        pytest.param(
            {(1, 1): 35},
            [
                (1, 1, 35), (1, 2, 45), (1, 3, 55),
                (2, 1, 65), (2, 2, 75), (2, 3, 85),
                (3, 1, 95), (3, 2, 105), (3, 3, 115),
            ],
            id="first-step-35-minutes-late",
        ),
        pytest.param(
            {(1, 3): 35},
            [
                (1, 1, 0), (1, 2, 10), (1, 3, 55),
                (2, 1, 65), (2, 2, 75), (2, 3, 85),
                (3, 1, 95), (3, 2, 105), (3, 3, 115),
            ],
            id="last-step-of-a-round-35-minutes-late",
        ),
        pytest.param(
            {(1, 2): 35, (2, 3): 5},
            [
                (1, 1, 0), (1, 2, 45), (1, 3, 55),
                (2, 1, 65), (2, 2, 75), (2, 3, 90),
                (3, 1, 100), (3, 2, 110), (3, 3, 120),
            ],
            id="two-late-steps-add-up",
        ),
    ],
)  # fmt: skip
def test_a_late_step_shifts_the_rest_of_the_chain_by_its_lateness(
    shipped_model: TeamModel, late: dict[tuple[int, int], int], expected: list[Fired]
) -> None:
    chosen = shipped_model.escalation_policies["investor"]
    fired, final = run_chain(chosen, late)
    assert fired == expected
    assert final.exhausted(chosen)


@pytest.mark.parametrize("down_for", [1, 11, 35, 95])
def test_a_step_missed_for_several_intervals_fires_once_and_the_next_is_a_full_gap_later(
    shipped_model: TeamModel, down_for: int
) -> None:
    """The router was down across several due times: catching up fires the missed step
    once, and the step after it is due a whole gap later, not at once."""
    investor = shipped_model.escalation_policies["investor"]
    waiting_for_backup = after_fired(investor, initial_state(investor, NOW), NOW)
    assert waiting_for_backup.due_at == NOW + minutes(10)
    back = NOW + minutes(10 + down_for)
    after = after_fired(investor, waiting_for_backup, back)
    assert (after.round, after.step) == (1, 2)
    assert after.due_at == back + minutes(10)


@pytest.mark.parametrize(
    ("afters", "repeat", "repeat_after", "expected"),
    [
        pytest.param([0, 5], 0, 10, [(1, 1, 0), (1, 2, 5)], id="two-steps-no-repeat"),
        pytest.param([0], 0, 10, [(1, 1, 0)], id="one-step-no-repeat"),
        pytest.param([0], 2, 15, [(1, 1, 0), (2, 1, 15), (3, 1, 30)], id="one-step-repeat-2"),
        pytest.param([5, 10], 1, 20, [(1, 1, 5), (1, 2, 10), (2, 1, 35), (2, 2, 40)],
                     id="first-step-delayed"),
    ],
)  # fmt: skip
def test_policy_variations_fire_as_the_table_says_then_are_exhausted(
    afters: list[int], repeat: int, repeat_after: int, expected: list[Fired]
) -> None:
    chosen = policy(afters, repeat, repeat_after)
    fired, final = run_chain(chosen)
    assert fired == expected
    assert final.exhausted(chosen)


def test_initial_state_is_round_one_step_one_due_when_the_incident_opens(
    shipped_model: TeamModel,
) -> None:
    investor = shipped_model.escalation_policies["investor"]
    state = initial_state(investor, NOW)
    assert state == EscalationState(1, 0, NOW, NOW)
    assert not state.exhausted(investor)


# ---------------------------------------------------------------------------------------------
# The engine in the app: HTTP, a FakeClock, one fire_due pass at a time


@dataclass
class Router:
    """The app, a client for its HTTP API, and its clock; `opened` is when tests start."""

    app: web.Application
    client: Client
    clock: FakeClock
    opened: datetime = field(default=NOW)

    async def alert(self, pipeline: str = "aggregate-profit") -> int:
        """POST a firing alert for `pipeline`; the id of the incident it opened."""
        body = {
            "pipeline": pipeline,
            "summary": "it broke",
            "severity": "critical",
            "status": "firing",
        }
        response = await self.client.post("/api/v1/alerts", json=body, headers=AUTH)
        assert response.status == 202, await response.text()
        [incident] = (await json_of(response))["incidents"]
        assert incident["change"] == "opened"
        incident_id: int = incident["id"]
        return incident_id

    async def fire_at(self, after: float) -> int:
        """Move the clock to `after` minutes past `opened` and run one escalation pass."""
        self.clock.now = self.opened + minutes(after)
        fired: int = await self.app[ESCALATOR].fire_due()
        return fired

    async def deliver(self) -> int:
        """One outbox pass."""
        claimed: int = await self.app[OUTBOX].deliver_due()
        return claimed

    async def post(self, path: str, body: object = None) -> tuple[int, Any]:
        """POST with the test token; the status and the JSON answer."""
        response = await self.client.post(path, json=body, headers=AUTH)
        return response.status, await json_of(response)

    async def detail(self, incident_id: int) -> dict[str, Any]:
        """`GET /api/v1/incidents/{id}`."""
        response = await self.client.get(f"/api/v1/incidents/{incident_id}", headers=AUTH)
        assert response.status == 200, await response.text()
        detail: dict[str, Any] = await json_of(response)
        return detail

    async def pages(self, incident_id: int) -> list[tuple[int, int, str, float]]:
        """(round, step, recipient, minutes after `opened`) of every escalation page."""
        return [
            (n["round"], n["step"], n["recipient"], self.minutes_of(n["created_at"]))
            for n in (await self.detail(incident_id))["notifications"]
            if n["event"] in {"incident.triggered", "incident.escalated"}
        ]

    async def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        """The incident's timeline, oldest first."""
        events: list[dict[str, Any]] = (await self.detail(incident_id))["timeline"]
        return events

    def minutes_of(self, instant: str) -> float:
        """A stored instant as minutes after `opened`."""
        return (datetime.fromisoformat(instant) - self.opened) / minutes(1)


MakeRouter = Callable[..., Awaitable[Router]]


@pytest.fixture
def make_router(tmp_path: Path, aiohttp_client: MakeClient) -> MakeRouter:
    """`await make_router(model, now=…)`: the router on a SQLite file under `tmp_path` (the
    same file for every router of the test), its clock at `now`, delivery driven by hand."""

    async def make(
        model: TeamModel | None = None, *, now: datetime = NOW, **settings: Any
    ) -> Router:
        clock = FakeClock(now)
        app = build_app(tmp_path, model=model, clock=clock, **settings)
        return Router(app, await aiohttp_client(app), clock, now)

    return make


def webhook_team(make_model: MakeModel, webhooks: dict[str, str], **sections: Any) -> TeamModel:
    """The shipped model whose members are paged only by these personal webhooks (no email,
    so no SMTP server is involved)."""
    members = [{"name": name, "email": None, "webhook": webhooks[name]} for name in NAMES]
    return make_model(team={"members": members}, **sections)


@dataclass
class Hook:
    """A webhook receiver on loopback that answers every POST with `status`."""

    status: int
    url: str = ""
    received: int = 0

    async def handle(self, _request: web.Request) -> web.Response:
        self.received += 1
        return web.Response(status=self.status, text=f"answer {self.status}")


StartHook = Callable[[int], Awaitable[Hook]]


@pytest.fixture
def hook(aiohttp_server: MakeServer) -> StartHook:
    """`await hook(400)`: a receiver at `.url` answering 400."""

    async def start(status: int) -> Hook:
        receiver = Hook(status)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app)
        receiver.url = str(server.make_url("/hook"))
        return receiver

    return start


INVESTOR_PAGES = [
    (1, 1, "Alice", 0.0), (1, 2, "Bob", 10.0), (1, 3, "Bob", 20.0), (1, 3, "Dana", 20.0),
    (2, 1, "Alice", 30.0), (2, 2, "Bob", 40.0), (2, 3, "Bob", 50.0), (2, 3, "Dana", 50.0),
    (3, 1, "Alice", 60.0), (3, 2, "Bob", 70.0), (3, 3, "Bob", 80.0), (3, 3, "Dana", 80.0),
]  # fmt: skip


async def test_investor_chain_pages_primary_backup_owners_three_rounds_and_nothing_early(
    make_router: MakeRouter,
) -> None:
    """Step 1 pages Alice at once; each pass fires only what is due (a minute early fires
    nothing); step 3 pages both owners, Bob again too (dedup is within one step only)."""
    router = await make_router()
    incident = await router.alert()
    assert await router.pages(incident) == [(1, 1, "Alice", 0.0)]
    assert await router.fire_at(9) == 0
    assert await router.pages(incident) == [(1, 1, "Alice", 0.0)]

    fired_at = [minute for minute in range(1, 101) if await router.fire_at(minute)]

    assert fired_at == [10, 20, 30, 40, 50, 60, 70, 80, 90]  # 90: "exhausted" is noted
    assert await router.pages(incident) == INVESTOR_PAGES
    events = [
        (n["step"], n["event"])
        for n in (await router.detail(incident))["notifications"]
        if n["round"] == 1
    ]
    assert events == [
        (1, "incident.triggered"),
        (2, "incident.escalated"),
        (3, "incident.escalated"),
        (3, "incident.escalated"),
    ]


async def test_exhausted_chain_is_noted_once_after_the_last_step_and_fires_nothing_more(
    make_router: MakeRouter,
) -> None:
    router = await make_router()
    incident = await router.alert()
    for minute in range(10, 80, 10):
        assert await router.fire_at(minute) == 1
    assert "escalation.exhausted" not in [e["kind"] for e in await router.timeline(incident)]

    assert await router.fire_at(80) == 1
    assert await router.fire_at(89) == 0  # owners get repeat_after (10m) to acknowledge
    assert "escalation.exhausted" not in [e["kind"] for e in await router.timeline(incident)]
    assert await router.fire_at(90) == 1
    for later in (90, 120, 24 * 60):
        assert await router.fire_at(later) == 0

    timeline = await router.timeline(incident)
    kinds = [e["kind"] for e in timeline]
    assert kinds.count("escalation.exhausted") == 1
    last_step = max(i for i, e in enumerate(timeline) if e["kind"] == "escalation.step")
    assert (timeline[last_step]["round"], timeline[last_step]["step"]) == (3, 3)
    assert kinds.index("escalation.exhausted") > last_step
    assert "3 round(s)" in timeline[kinds.index("escalation.exhausted")]["message"]
    assert len(await router.pages(incident)) == len(INVESTOR_PAGES)  # no channel: no notice


async def test_exhausted_chain_notifies_the_fallback_channel(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    router = await make_router(make_model(**FALLBACK))
    incident = await router.alert()
    for minute in range(10, 80, 10):
        await router.fire_at(minute)
    channel_pages = [
        n
        for n in (await router.detail(incident))["notifications"]
        if n["recipient_kind"] == "channel"
    ]
    assert channel_pages == []

    await router.fire_at(80)
    await router.fire_at(90)

    notifications = (await router.detail(incident))["notifications"]
    [notice] = [n for n in notifications if n["recipient_kind"] == "channel"]
    assert (notice["recipient"], notice["channel"]) == ("data-team", "webhook")
    assert notice["event"] == "incident.escalated"
    assert notice["status"] == "pending"
    assert (notice["round"], notice["step"]) == (3, 4)  # after the last step of the last round
    assert any("exhausted" in reason for reason in notice["reasons"])


async def test_a_person_named_twice_in_one_step_is_paged_once_in_it(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    """Step 2 names the backup and aggregate-profit's primary owner: both are Bob."""
    investor = {
        "repeat": 0,
        "steps": [
            {"after": "0m", "notify": ["oncall:primary"]},
            {"after": "10m", "notify": ["oncall:backup", "owner:primary", "person:Bob"]},
        ],
    }
    router = await make_router(make_model(escalation_policies={"investor": investor}))
    incident = await router.alert()
    await router.fire_at(10)
    assert await router.pages(incident) == [(1, 1, "Alice", 0.0), (1, 2, "Bob", 10.0)]


# ---------------------------------------------------------------------------------------------
# Ack stops it; resolve ends it


async def test_ack_after_step_one_stops_the_chain_and_cancels_the_undelivered_first_page(
    make_router: MakeRouter,
) -> None:
    router = await make_router()
    incident = await router.alert()
    await router.fire_at(2)
    status, body = await router.post(f"/api/v1/incidents/{incident}/ack", {"by": "Alice"})
    assert (status, body["status"]) == (200, "acknowledged")

    for later in (10, 20, 30, 60, 80, 24 * 60):
        assert await router.fire_at(later) == 0
    assert await router.deliver() == 1

    [page] = (await router.detail(incident))["notifications"]
    assert (page["recipient"], page["event"], page["status"]) == (
        "Alice",
        "incident.triggered",
        "cancelled",
    )
    kinds = [e["kind"] for e in await router.timeline(incident)]
    assert "notification.sent" not in kinds
    assert kinds.count("escalation.step") == 1


async def test_resolve_ends_the_chain_and_tells_everyone_paged_once_each(
    make_router: MakeRouter,
) -> None:
    router = await make_router()
    incident = await router.alert()
    await router.fire_at(10)
    await router.fire_at(20)
    router.clock.now = NOW + minutes(25)
    status, body = await router.post(f"/api/v1/incidents/{incident}/resolve", {"by": "Dana"})
    assert (status, body["status"]) == (200, "resolved")

    for later in (30, 40, 80, 24 * 60):
        assert await router.fire_at(later) == 0

    notifications = (await router.detail(incident))["notifications"]
    paged = [n for n in notifications if n["event"] != "incident.resolved"]
    resolved = [n for n in notifications if n["event"] == "incident.resolved"]
    assert len(paged) == 4  # Alice, Bob, then Bob and Dana
    assert sorted(n["recipient"] for n in resolved) == ["Alice", "Bob", "Dana"]
    assert {n["channel"] for n in resolved} == {"email"}
    assert all(n["status"] == "pending" for n in resolved)


# ---------------------------------------------------------------------------------------------
# Targets resolve when the step fires


async def test_backup_on_runtime_leave_when_step_two_fires_is_replaced_by_the_effective_backup(
    make_router: MakeRouter,
) -> None:
    """Bob goes to the dentist after the incident opened: step 2 pages Charlie instead."""
    router = await make_router()
    incident = await router.alert()
    leave = {"who": "Bob", "from": "2026-11-24T12:05", "to": "2026-11-24T13:00"}
    status, _ = await router.post("/api/v1/leave", leave)
    assert status == 201

    await router.fire_at(10)

    assert await router.pages(incident) == [(1, 1, "Alice", 0.0), (1, 2, "Charlie", 10.0)]
    [page] = [n for n in (await router.detail(incident))["notifications"] if n["step"] == 2]
    assert "paged as on-call backup" in page["reasons"]


async def test_step_after_the_weekly_handoff_pages_the_new_weeks_backup(
    make_router: MakeRouter,
) -> None:
    """Opened Monday 2026-11-30 08:55 New York (week 5: Alice, Bob); step 2 fires at 09:05,
    after the handoff to week 6 (Bob primary, Charlie backup)."""
    router = await make_router(now=datetime(2026, 11, 30, 13, 55, tzinfo=UTC))
    incident = await router.alert()
    await router.fire_at(10)
    await router.fire_at(20)
    assert await router.pages(incident) == [
        (1, 1, "Alice", 0.0),
        (1, 2, "Charlie", 10.0),
        (1, 3, "Bob", 20.0),
        (1, 3, "Dana", 20.0),
    ]


@pytest.mark.parametrize(
    ("away", "step_one", "step_two"),
    [
        pytest.param((), "Alice", "Charlie", id="both-owners-in"),
        pytest.param(("Alice",), "Charlie", "Charlie", id="primary-owner-away"),
        pytest.param(("Charlie",), "Alice", "Alice", id="secondary-owner-away"),
        # Alice, the nominal on-call primary, is away too: Bob is the effective primary.
        pytest.param(("Alice", "Charlie"), "Bob", "Bob", id="both-owners-away"),
    ],
)
async def test_owner_on_leave_is_covered_by_the_other_owner_then_the_on_call_primary(
    make_router: MakeRouter,
    make_model: MakeModel,
    away: tuple[str, ...],
    step_one: str,
    step_two: str,
) -> None:
    """The experiment policy (unit-profit-experiments, owners Alice and Charlie): step 1 pages
    owner:primary, step 2 (15m) owner:secondary."""
    router = await make_router(make_model(leave=on_leave(*away)))
    incident = await router.alert("unit-profit-experiments")
    await router.fire_at(15)
    assert await router.pages(incident) == [(1, 1, step_one, 0.0), (1, 2, step_two, 15.0)]


async def test_a_step_with_nobody_available_is_skipped_and_the_next_fires_at_once(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    """Only Alice is in: step 2 (oncall:backup) has nobody; step 3's owners are away, so
    both owner slots fall to the on-call primary, Alice, paged once at step 2's time."""
    router = await make_router(make_model(leave=on_leave("Bob", "Charlie", "Dana")))
    incident = await router.alert()
    assert await router.fire_at(9) == 0

    assert await router.fire_at(10) == 1
    assert await router.fire_at(10) == 0

    assert await router.pages(incident) == [(1, 1, "Alice", 0.0), (1, 3, "Alice", 10.0)]
    at_ten = [
        (e["kind"], e["message"])
        for e in await router.timeline(incident)
        if router.minutes_of(e["at"]) == 10
    ]
    kinds = [kind for kind, _ in at_ten]
    assert kinds == ["escalation.note", "escalation.skipped", "escalation.step"]
    assert at_ten[0][1] == "oncall:backup: nobody available"


async def test_nobody_available_pages_the_owners_and_fallback_channel_and_status_shows_the_gap(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    router = await make_router(make_model(leave=on_leave(*NAMES), **FALLBACK))
    incident = await router.alert()

    notifications = (await router.detail(incident))["notifications"]
    assert sorted((n["recipient"], n["channel"]) for n in notifications) == [
        ("Bob", "email"),
        ("Dana", "email"),
        ("data-team", "webhook"),
    ]
    assert {n["event"] for n in notifications} == {"incident.triggered"}
    notes = [
        e["message"] for e in await router.timeline(incident) if e["kind"] == "escalation.note"
    ]
    assert any(note.startswith("nobody available") for note in notes), notes
    response = await router.client.get("/status", headers=AUTH)
    assert response.status == 200
    status = await json_of(response)
    assert status["oncall_gap"] is True


# ---------------------------------------------------------------------------------------------
# Dead letters hasten; restarts resume


async def test_dead_lettered_page_makes_the_next_step_due_at_once(
    make_router: MakeRouter, make_model: MakeModel, hook: StartHook
) -> None:
    refusing, fine = await hook(400), await hook(200)
    webhooks = dict.fromkeys(NAMES, fine.url) | {"Alice": refusing.url}
    router = await make_router(webhook_team(make_model, webhooks))
    incident = await router.alert()

    assert await router.deliver() == 1

    [page] = (await router.detail(incident))["notifications"]
    assert (page["recipient"], page["status"]) == ("Alice", "dead")
    assert refusing.received == 1
    assert "escalation.hastened" in [e["kind"] for e in await router.timeline(incident)]
    assert await router.fire_at(0) == 1
    assert await router.pages(incident) == [(1, 1, "Alice", 0.0), (1, 2, "Bob", 0.0)]


async def test_a_stale_dead_letter_from_an_earlier_step_does_not_cut_the_current_wait_short(
    make_router: MakeRouter, make_model: MakeModel, hook: StartHook
) -> None:
    """Alice's step-1 page keeps failing and dies only at 10m, once the chain has moved on to
    Bob: Bob still gets his 10 minutes before the owners are paged."""
    failing, fine = await hook(500), await hook(200)
    webhooks = dict.fromkeys(NAMES, fine.url) | {"Alice": failing.url}
    router = await make_router(webhook_team(make_model, webhooks), delivery_max_attempts=2)
    incident = await router.alert()
    assert await router.deliver() == 1  # attempt 1 of 2 fails: retried in a few seconds

    assert await router.fire_at(10) == 1  # step 2: Bob
    assert await router.deliver() == 2  # Bob's page is sent; Alice's dies

    statuses = {
        n["recipient"]: n["status"] for n in (await router.detail(incident))["notifications"]
    }
    assert statuses == {"Alice": "dead", "Bob": "sent"}
    assert await router.fire_at(10) == 0
    assert await router.fire_at(19) == 0
    assert await router.fire_at(20) == 1
    assert "escalation.hastened" not in [e["kind"] for e in await router.timeline(incident)]


async def test_restart_fires_the_step_missed_while_down_once_and_resumes_the_chain(
    make_router: MakeRouter,
) -> None:
    """Down from just after step 1 until 25m: step 2 (due at 10m) fires once at 25m, and the
    rest of the chain moves by the 15 minutes it was late."""
    first = await make_router()
    incident = await first.alert()
    await first.client.close()

    second = await make_router()  # the same database file, a new app, store and scheduler
    assert await second.fire_at(25) == 1
    assert await second.fire_at(25) == 0
    assert await second.fire_at(34) == 0
    assert await second.fire_at(35) == 1

    pages = await second.pages(incident)
    assert pages == [(1, 1, "Alice", 0.0), (1, 2, "Bob", 25.0), (1, 3, "Bob", 35.0),
                     (1, 3, "Dana", 35.0)]  # fmt: skip
    assert Counter((r, s, who) for r, s, who, _ in pages).most_common(1)[0][1] == 1
    steps = [(e["round"], e["step"]) for e in await second.timeline(incident)
             if e["kind"] == "escalation.step"]  # fmt: skip
    assert steps == [(1, 1), (1, 2), (1, 3)]


async def test_a_policy_shortened_across_a_restart_does_not_wedge_escalation(
    make_router: MakeRouter, make_model: MakeModel
) -> None:
    """Before the restart, incident A waits for step 3 of `investor`; the new config has only
    two steps. Firing must not fail: incident B, on the same policy, still escalates."""
    first = await make_router()
    waiting_for_step_three = await first.alert()
    await first.fire_at(10)
    first.clock.now = NOW + minutes(15)
    waiting_for_step_two = await first.alert("aggregate-growth")
    await first.client.close()
    two_steps = {
        "repeat": 2,
        "steps": [
            {"after": "0m", "notify": ["oncall:primary"]},
            {"after": "10m", "notify": ["oncall:backup"]},
        ],
    }
    second = await make_router(make_model(escalation_policies={"investor": two_steps}))

    await second.fire_at(25)  # must not raise

    assert (2, "Bob") in [(s, who) for _, s, who, _ in await second.pages(waiting_for_step_two)]
    # A's step 3 no longer exists: when it falls due (25 min) the chain goes on with the
    # next round's step 1 instead of wedging.
    assert await second.pages(waiting_for_step_three) == [
        (1, 1, "Alice", 0.0),
        (1, 2, "Bob", 10.0),
        (2, 1, "Alice", 25.0),
    ]


# ---------------------------------------------------------------------------------------------
# Concurrency


async def test_twenty_concurrent_acks_record_one_acknowledgement_and_all_answer_acknowledged(
    make_router: MakeRouter,
) -> None:
    router = await make_router()
    incident = await router.alert()

    answers = await asyncio.gather(
        *(router.post(f"/api/v1/incidents/{incident}/ack", {"by": f"p{i}"}) for i in range(20))
    )

    assert [status for status, _ in answers] == [200] * 20
    assert {body["status"] for _, body in answers} == {"acknowledged"}
    assert len({body["acknowledged_by"] for _, body in answers}) == 1
    kinds = [e["kind"] for e in await router.timeline(incident)]
    assert kinds.count("incident.acknowledged") == 1
    assert await router.fire_at(10) == 0
