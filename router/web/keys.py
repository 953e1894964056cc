"""Typed keys for what the application holds; one place so handlers and the app agree."""

from __future__ import annotations

__all__ = [
    "ACK_SIGNER",
    "CLOCK",
    "CONFIG",
    "ESCALATOR",
    "LIMITER",
    "METRICS",
    "OUTBOX",
    "SETTINGS",
    "SMTP",
    "STARTED",
    "STORE",
    "WEBHOOKS",
    "WORKERS",
    "Clock",
]

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from router.acklinks import AckSigner
from router.metrics import Metrics
from router.notify.email import SmtpSender
from router.notify.webhook import WebhookSender
from router.outbox import Outbox
from router.reload import LoadedConfig
from router.scheduler import Escalator
from router.settings import Settings
from router.store.base import Store
from router.web.ratelimit import RateLimiter
from router.workers import DeliveryWorkers

Clock = Callable[[], datetime]

SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", LoadedConfig)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STARTED = web.AppKey("started", datetime)
STORE: web.AppKey[Store] = web.AppKey("store")
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", RateLimiter)
ACK_SIGNER = web.AppKey("ack_signer", AckSigner)
OUTBOX = web.AppKey("outbox", Outbox)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)
SMTP = web.AppKey("smtp", SmtpSender)
ESCALATOR = web.AppKey("escalator", Escalator)
# Only when delivery runs in worker processes (`ROUTER_DELIVERY_WORKERS` > 0 under serve).
WORKERS = web.AppKey("workers", DeliveryWorkers)
