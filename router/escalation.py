"""Where an incident's escalation stands, and where it goes after a step fires: pure.

A round runs the policy's steps; a step's `after` counts from the round's start. After
the last step and `repeat_after`, the next round starts at step 1, `repeat` more times.
A step that fires late (the router was down) moves the rest of the chain by the same
delay: a missed step fires once, not once per missed interval. After the last round's last
step, `repeat_after` later, the chain is exhausted and the fallback channel is told.
"""

from __future__ import annotations

__all__ = ["EscalationState", "after_fired", "fit", "initial_state"]

from dataclasses import dataclass
from datetime import datetime

from router.teammodel import EscalationPolicy


@dataclass(frozen=True, slots=True)
class EscalationState:
    """The next step to fire (0-based) in `round` (from 1), and when. `step` past the last
    step means every step has fired: `due_at` is then when to say so, None once said."""

    round: int
    step: int
    round_start: datetime
    due_at: datetime | None

    def exhausted(self, policy: EscalationPolicy) -> bool:
        """Every step of every round has fired."""
        return self.step >= len(policy.steps)


def initial_state(policy: EscalationPolicy, opened_at: datetime) -> EscalationState:
    """Round 1 starts when the incident opens; step 1 is due `after` it (usually at once)."""
    return EscalationState(1, 0, opened_at, opened_at + policy.steps[0].after)


def after_fired(
    policy: EscalationPolicy, state: EscalationState, fired_at: datetime
) -> EscalationState:
    """The state once `state.step` has fired at `fired_at`."""
    steps = policy.steps
    # Anchor the round on when this step really fired: lateness shifts what follows.
    round_start = fired_at - steps[state.step].after
    following = state.step + 1
    if following < len(steps):
        return EscalationState(
            state.round, following, round_start, round_start + steps[following].after
        )
    round_end = round_start + steps[-1].after + policy.repeat_after
    if state.round <= policy.repeat:
        return EscalationState(state.round + 1, 0, round_end, round_end + steps[0].after)
    return EscalationState(state.round, following, round_start, round_end)


def fit(policy: EscalationPolicy, state: EscalationState) -> EscalationState:
    """A stored state made to fit the policy as it is now: a reload may have removed steps
    or rounds, and an incident must neither wedge nor lose its escalation over it."""
    if state.step < len(policy.steps) or state.round > policy.repeat:
        return state
    return EscalationState(state.round + 1, 0, state.round_start, state.due_at)
