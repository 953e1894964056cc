"""The outbox and its senders as the settings describe them, for whichever process delivers:
the serving process, or a delivery worker process (router.delivery_worker)."""

from __future__ import annotations

__all__ = ["make_outbox", "smtp_sender", "webhook_sender"]

from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp

from router.acklinks import AckSigner
from router.delivery import LinkMaker
from router.metrics import Metrics
from router.notify.email import SmtpSender
from router.notify.webhook import WebhookSender
from router.outbox import DeliveryReport, Outbox, RetryPolicy, Senders
from router.settings import Settings
from router.store import Store
from router.teammodel import TeamModel


def webhook_sender(settings: Settings) -> WebhookSender:
    """Timeouts in seconds, not aiohttp's default five minutes: a hung receiver must not hold
    a page."""
    total = settings.webhook_timeout_seconds
    return WebhookSender(
        aiohttp.ClientTimeout(total=total, connect=min(3.0, total), sock_read=total)
    )


def smtp_sender(settings: Settings) -> SmtpSender:
    """The SMTP relay of the `ROUTER_SMTP_*` settings (its sessions are reused: close it)."""
    return SmtpSender.from_settings(settings, timeout=settings.smtp_timeout_seconds)


def make_outbox(
    settings: Settings,
    store: Store,
    webhooks: WebhookSender,
    email: SmtpSender,
    *,
    model: Callable[[], TeamModel],
    signer: AckSigner,
    clock: Callable[[], datetime],
    metrics: Metrics,
    report: Callable[[DeliveryReport], None] | None = None,
    hold: Callable[[], bool] | None = None,
) -> Outbox:
    """An outbox delivering through `email` and `webhooks` under the settings' retry budget."""
    secrets = settings.hmac_secrets()
    return Outbox(
        store,
        Senders(email, webhooks),
        model=model,
        links=LinkMaker(settings.public_url, signer),
        hmac_secret=secrets[0] if secrets else None,
        clock=clock,
        metrics=metrics,
        policy=RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            max_age=timedelta(seconds=settings.delivery_max_age_seconds),
            lease=timedelta(seconds=settings.delivery_lease_seconds),
        ),
        per_destination=settings.delivery_per_destination,
        report=report,
        hold=hold,
    )
