"""The escalation scheduler: one loop that fires whatever escalation steps are due.

Timers are data (each open incident's next due time is in the store), so this loop holds
no state: after a restart it fires what fell due while the router was down, once.
"""

from __future__ import annotations

__all__ = ["Escalator"]

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog

from router.store.base import Store, StoreUnavailableError
from router.teammodel import TeamModel

log = structlog.get_logger(__name__)


class Escalator:
    """Fires due escalation steps (`fire_due`) and wakes the outbox to deliver them."""

    def __init__(
        self,
        store: Store,
        *,
        model: Callable[[], TeamModel],
        clock: Callable[[], datetime],
        on_fired: Callable[[], None],
        batch: int = 100,
    ) -> None:
        self.store = store
        self.model = model
        self.clock = clock
        self.on_fired = on_fired
        self.batch = batch

    async def fire_due(self) -> int:
        """One pass: fire every due step; returns how many incidents escalated."""
        fired = await self.store.fire_due_escalations(self.model(), self.clock(), self.batch)
        if fired:
            log.info("escalation.fired", incidents=fired)
            self.on_fired()
        return fired

    async def run(self, stop: asyncio.Event, poll: float = 1.0) -> None:
        """Fire due steps until `stop` is set."""
        while not stop.is_set():
            try:
                fired = await self.fire_due()
            except StoreUnavailableError as err:
                log.error("escalation.store_unavailable", error=str(err))
                fired = 0
            except Exception:
                log.exception("escalation.pass_failed")  # the loop outlives any one bug
                fired = 0
            if fired >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)
