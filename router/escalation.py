"""Where an incident's escalation stands, and where it goes after a step fires: pure.

A round runs the policy's steps; a step's `after` counts from the round's start. After
the last step and `repeat_after`, the next round starts at step 1, `repeat` more times.
A step that fires late (the router was down) moves the rest of the chain by the same
delay: a missed step fires once, not once per missed interval.
"""

from __future__ import annotations

__all__ = ["EscalationState", "after_fired", "initial_state"]

from dataclasses import dataclass
from datetime import datetime

from router.teammodel import EscalationPolicy


@dataclass(frozen=True, slots=True)
class EscalationState:
    """The next step to fire (0-based) in `round` (from 1), and when; `due_at` None: done."""

    round: int
    step: int
    round_start: datetime
    due_at: datetime | None

    @property
    def exhausted(self) -> bool:
        """Every round has run: nothing more will fire."""
        return self.due_at is None


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
    if state.round <= policy.repeat:
        next_start = round_start + steps[-1].after + policy.repeat_after
        return EscalationState(state.round + 1, 0, next_start, next_start + steps[0].after)
    return EscalationState(state.round, following, round_start, None)
