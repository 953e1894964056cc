"""The one place that retries: claim due notifications, deliver, record, schedule the next try.

Channels only send and classify failures. Here a transient failure is retried with
exponential backoff and jitter (tenacity's wait strategy) inside a per-notification budget
of attempts and age; the next attempt's time is stored, not slept on, so it survives a
restart. A destination that keeps failing is slowed: a circuit breaker defers its work and
a per-destination limit caps concurrent sends, so one dead webhook cannot starve the rest.
"""

from __future__ import annotations

__all__ = ["CircuitBreaker", "DeliveryReport", "Outbox", "RetryPolicy", "Senders"]

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
import tenacity

from router.delivery import Destination, LinkMaker, build, context, destination
from router.errors import PermanentDeliveryError, TransientDeliveryError
from router.metrics import Metrics
from router.notify.message import ASKS_FOR_ACTION, EmailMessage, WebhookMessage
from router.store.base import Delivery, DeliveryOutcome, Store, StoreUnavailableError
from router.teammodel import TeamModel

log = structlog.get_logger(__name__)
CLAIM_INTERVAL = 0.005  # seconds between the delivery loop's claims, at most 200 a second


class EmailSender(Protocol):
    """Sends one email or raises a Transient/PermanentDeliveryError."""

    async def send(self, message: EmailMessage) -> None: ...


class WebhookPoster(Protocol):
    """Posts one webhook or raises a Transient/PermanentDeliveryError."""

    async def send(self, message: WebhookMessage, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Senders:
    """The channels the outbox delivers through."""

    email: EmailSender
    webhook: WebhookPoster


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-notification budget, and the backoff between attempts."""

    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(seconds=60)
    initial: float = 1.0
    maximum: float = 300.0
    jitter: float = 1.0

    def next_attempt(
        self, attempts: int, created: datetime, now: datetime, retry_after: float | None
    ) -> datetime | None:
        """When to try again after `attempts` failed attempts, or None when out of budget."""
        if attempts >= self.max_attempts or now - created >= self.max_age:
            return None
        budget_left = (created + self.max_age - now).total_seconds()
        if retry_after is not None and retry_after >= budget_left:
            # The receiver asks for a wait past the budget (or an absurd one): honouring it
            # would park the page where nobody sees it; dead-lettering moves escalation on.
            return None
        wait = tenacity.wait_exponential_jitter(self.initial, self.maximum, jitter=self.jitter)
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = attempts
        delay = max(wait(state), retry_after or 0.0)
        return now + timedelta(seconds=delay)


@dataclass(slots=True)
class CircuitBreaker:
    """After `threshold` consecutive failures a destination rests for `cooldown`."""

    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, datetime] = field(default_factory=dict)

    def open_until(self, key: str, now: datetime) -> datetime | None:
        """When the destination may be tried again, if it is resting now."""
        until = self._open_until.get(key)
        return until if until is not None and until > now else None

    def succeeded(self, key: str) -> None:
        """A delivery went through: the destination is healthy."""
        self._failures.pop(key, None)
        self._open_until.pop(key, None)

    def failed(self, key: str, now: datetime) -> None:
        """A transient failure; opens the breaker at the threshold."""
        self._failures[key] = self._failures.get(key, 0) + 1
        if self._failures[key] >= self.threshold:
            self._open_until[key] = now + self.cooldown


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What `/metrics` and `/status` learn of one delivery attempt. A delivery worker
    process sends these to the serving process, which owns both endpoints."""

    channel: str
    result: str  # sent, retried, dead, cancelled
    at: str  # ISO 8601
    recipient: str
    incident: int
    error: str | None
    latency_seconds: float | None  # creation → delivery, for sent notifications

    def to_json(self) -> dict[str, object]:
        """A plain dict for the pipe between processes (flat fields: asdict's deep copy,
        9 µs a page, buys nothing)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeliveryReport:
        """The report `to_json` wrote (TypeError for a dict of another shape)."""
        return cls(**data)


class Outbox:
    """Delivers what the store has due, one pass at a time (`deliver_due`) or forever (`run`).

    Each attempt's outcome goes to `report`: by default `apply`, which counts it in the
    metrics and `last_result`; in a delivery worker process, a pipe to the serving process.
    """

    def __init__(
        self,
        store: Store,
        senders: Senders,
        *,
        model: Callable[[], TeamModel],
        links: LinkMaker,
        hmac_secret: str | None,
        clock: Callable[[], datetime],
        metrics: Metrics,
        policy: RetryPolicy | None = None,
        batch: int = 64,
        per_destination: int = 4,
        report: Callable[[DeliveryReport], None] | None = None,
        hold: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.senders = senders
        self.model = model
        self.links = links
        self.hmac_secret = hmac_secret
        self.clock = clock
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self.batch = batch
        self.per_destination = per_destination
        self.breaker = CircuitBreaker()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self.last_result: dict[str, dict[str, object]] = {}  # per channel, for /status
        self._report = report or self.apply
        # While it says so, claim nothing and start nothing claimed (a delivery worker
        # receiving a new team model).
        self._hold = hold or (lambda: False)
        self._wake = asyncio.Event()
        self._wake_listeners: list[Callable[[], None]] = []

    def wake(self) -> None:
        """New notifications were stored: look now rather than at the next poll."""
        self._wake.set()
        for listener in self._wake_listeners:
            listener()

    def add_wake_listener(self, listener: Callable[[], None]) -> None:
        """Also call `listener` on every `wake` (delivery worker processes listen)."""
        self._wake_listeners.append(listener)

    def apply(self, report: DeliveryReport) -> None:
        """Count a delivery attempt in the metrics and in `last_result`."""
        self.last_result[report.channel] = {
            "at": report.at,
            "result": report.result,
            "recipient": report.recipient,
            "incident": report.incident,
            "error": report.error,
        }
        self.metrics.notifications.labels(report.channel, report.result).inc()
        if report.latency_seconds is not None:
            self.metrics.delivery_seconds.labels(report.channel).observe(report.latency_seconds)

    async def run(self, stop: asyncio.Event, poll: float = 0.5) -> None:
        """Deliver until `stop` is set, then let the sends in flight finish.

        A continuous pipeline: whenever half of `batch` has finished, claim more, so one slow
        destination holds up only its own pages, not the batch they came in.
        """
        inflight: set[asyncio.Task[None]] = set()
        try:
            await self._pipeline(stop, poll, inflight)
            if inflight:
                await asyncio.wait(inflight)
        except asyncio.CancelledError:
            # Past the drain timeout: stop the sends too, before the senders and the store
            # close under them (a send cut short is delivered again after its lease).
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            raise

    async def _pipeline(
        self, stop: asyncio.Event, poll: float, inflight: set[asyncio.Task[None]]
    ) -> None:
        loop = asyncio.get_running_loop()
        refill = max(1, self.batch // 2)  # claim in chunks: one claim per page costs too much
        room_made = asyncio.Event()

        def finished(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            if self.batch - len(inflight) >= refill:
                room_made.set()

        last_claim = -math.inf
        while not stop.is_set():
            room = self.batch - len(inflight)
            if room < refill and inflight:
                room = 0
            if room > 0:
                # Wake-ups come in streams under load: let one claim gather what several
                # bring (each claim is a write transaction, taking turns with intake's).
                await asyncio.sleep(max(0.0, last_claim + CLAIM_INTERVAL - loop.time()))
                last_claim = loop.time()
                self._wake.clear()  # before the claim: a wake-up during it is not lost
            claimed = await self._claim_safely(room) if room > 0 else []
            if claimed:
                await self._while_held(stop)
            for delivery in claimed:
                task = asyncio.create_task(self._deliver_logged(delivery))
                inflight.add(task)
                task.add_done_callback(finished)
            if claimed and len(claimed) == room:
                continue  # there may be more due already
            # With no room, wait for room only: a wake-up stays set until the next claim,
            # and waiting on it would spin. Nor on the sends themselves, which would hook and
            # unhook every task in flight on each wake-up; `finished` says when enough of
            # them are done to be worth a claim.
            room_made.clear()
            waits = (stop, self._wake) if room > 0 else (stop, room_made)
            waiters = [asyncio.ensure_future(event.wait()) for event in waits]
            await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _while_held(self, stop: asyncio.Event) -> None:
        """Wait until `hold` lets go: what it waits for (a delivery worker reading a new
        team model) may have arrived while a claim was under way. One turn of the loop is
        usually enough; then a millisecond at a time."""
        delay = 0.0
        while self._hold() and not stop.is_set():
            await asyncio.sleep(delay)
            delay = 0.001

    async def _claim_safely(self, limit: int) -> list[Delivery]:
        """Claim up to `limit` due notifications; none while the store is failing, or
        while `hold` says to wait (a wake-up follows)."""
        if self._hold():
            return []
        try:
            return await self.store.claim_deliveries(self.clock(), limit, self.policy.lease)
        except StoreUnavailableError as err:
            log.error("outbox.store_unavailable", error=str(err))
        except Exception:
            # The loop must outlive any one bug: a dead outbox pages nobody.
            log.exception("outbox.pass_failed")
        return []

    async def _deliver_logged(self, delivery: Delivery) -> None:
        """`_deliver` as a task of its own: what it raises is logged, never lost."""
        try:
            await self._deliver(delivery)
        except StoreUnavailableError as err:
            log.error("outbox.store_unavailable", error=str(err))
        except Exception:
            log.exception("outbox.delivery_failed", notification=delivery.notification.id)

    async def deliver_due(self) -> int:
        """One pass: claim what is due now, deliver it concurrently, record every outcome."""
        claimed = await self.store.claim_deliveries(self.clock(), self.batch, self.policy.lease)
        await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
        return len(claimed)

    async def _deliver(self, delivery: Delivery) -> None:
        """One notification; an unexpected error dead-letters it, never the whole pass."""
        structlog.contextvars.bind_contextvars(incident=delivery.notification.incident_id)
        # The delivery under the lease held now: a renewal appends it, and an outcome is
        # recorded only under the row's current lease.
        held = [delivery]
        try:
            await self._deliver_checked(delivery, held)
        except StoreUnavailableError:
            raise  # the lease expires and the notification is retried: nothing is lost
        except Exception as err:
            log.exception("notification.unexpected_error", notification=delivery.notification.id)
            await self._record(held[-1], "dead", f"unexpected error: {type(err).__name__}: {err}")

    async def _deliver_checked(self, delivery: Delivery, held: list[Delivery]) -> None:
        if _moot(delivery):
            status = delivery.incident.status
            await self._record(delivery, "cancelled", f"the incident is {status}")
            return
        model = self.model()
        try:
            target = destination(model, delivery, self.hmac_secret)
        except PermanentDeliveryError as err:
            await self._record(delivery, "dead", str(err))
            return
        async with self._limit(target.key):
            # Checked once this page has its turn: the breaker may have opened while it
            # waited behind other pages to the same destination.
            resting = self.breaker.open_until(target.key, self.clock())
            if resting is not None:
                outcome = DeliveryOutcome(
                    delivery.notification,
                    "retry",
                    self.clock(),
                    "destination is resting after repeated failures",
                    resting,
                    counted=False,
                    lease_until=delivery.lease_until,
                )
                await self.store.record_delivery(outcome)
                return
            renewed = await self._lease_is_ours(delivery)
            if renewed is None:
                log.warning("notification.lease_lost", notification=delivery.notification.id)
                return
            held.append(renewed)
            await self._attempt(model, renewed, target)

    async def _lease_is_ours(self, delivery: Delivery) -> Delivery | None:
        """The delivery under a lease that covers an attempt, or None if another worker has
        it now. The claim was made for the whole batch, and waiting for this destination's
        turn may have eaten into it: with less than half the lease left, renew it. A fresh
        claim, the usual case, costs no write."""
        now = self.clock()
        if delivery.lease_until - now >= self.policy.lease / 2:
            return delivery
        until = now + self.policy.lease
        if await self.store.renew_lease(delivery.notification.id, delivery.lease_until, until):
            return replace(delivery, lease_until=until)
        return None

    async def _attempt(self, model: TeamModel, delivery: Delivery, target: Destination) -> None:
        now = self.clock()
        n = delivery.notification
        message = build(context(model, delivery, self.links, now), target, n.idempotency_key)
        # An attempt may not outlive its lease (a slow server, redirects, a long configured
        # timeout): past it, another worker may claim the page and send it in parallel. A
        # tenth of the lease is kept for recording the outcome.
        left = delivery.lease_until - now - self.policy.lease / 10
        bound = asyncio.timeout(max(0.0, left.total_seconds()))
        try:
            async with bound:
                await self._send(message, now)
        except TimeoutError as err:
            what = f"the attempt outlasted its lease ({left.total_seconds():.0f} s)"
            if not bound.expired():  # a sender's own, unclassified: still worth a retry
                what = f"timed out: {err or type(err).__name__}"
            await self._failed(delivery, target, TransientDeliveryError(what))
        except TransientDeliveryError as err:
            await self._failed(delivery, target, err)
        except PermanentDeliveryError as err:
            await self._record(delivery, "dead", str(err))
        else:
            self.breaker.succeeded(target.key)
            await self._record(delivery, "sent")

    async def _send(self, message: EmailMessage | WebhookMessage, now: datetime) -> None:
        if isinstance(message, EmailMessage):
            await self.senders.email.send(message)
        else:
            await self.senders.webhook.send(message, now.timestamp())

    async def _failed(
        self, delivery: Delivery, target: Destination, err: TransientDeliveryError
    ) -> None:
        """A failure worth retrying: retry within the budget, else dead-letter."""
        self.breaker.failed(target.key, self.clock())
        n = delivery.notification
        later = self.policy.next_attempt(n.attempts, n.created_at, self.clock(), err.retry_after)
        await self._record(delivery, "dead" if later is None else "retry", str(err), later)

    async def _record(
        self,
        delivery: Delivery,
        result: str,
        error: str | None = None,
        later: datetime | None = None,
    ) -> None:
        n = delivery.notification
        now = self.clock()
        lease = delivery.lease_until
        outcome = DeliveryOutcome(n, result, now, error, later, lease_until=lease)  # type: ignore[arg-type]
        if not await self.store.record_delivery(outcome):
            # Another worker claimed the page after this lease ran out: its attempt counts.
            log.warning("notification.lease_lost", notification=n.id, result=result)
            return
        label = {"sent": "sent", "retry": "retried", "dead": "dead", "cancelled": "cancelled"}[
            result
        ]
        latency = (now - n.created_at).total_seconds() if result == "sent" else None
        self._report(
            DeliveryReport(
                n.channel, label, now.isoformat(), n.recipient, n.incident_id, error, latency
            )
        )
        log_event = {
            "sent": log.info,
            "retry": log.warning,
            "dead": log.error,
            "cancelled": log.info,
        }[result]
        log_event(
            f"notification.{label}",
            incident=n.incident_id,
            notification=n.id,
            channel=n.channel,
            recipient=n.recipient,
            attempt=n.attempts,
            error=error,
        )

    def _limit(self, key: str) -> asyncio.Semaphore:
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(self.per_destination)
        return self._limits[key]


def _moot(delivery: Delivery) -> bool:
    """A page asking for action is not sent once the incident is acknowledged or resolved
    (resolve ends it; a late FIRING could reopen it in a downstream pager)."""
    asks_action = delivery.notification.event in ASKS_FOR_ACTION
    return asks_action and delivery.incident.status != "open"
