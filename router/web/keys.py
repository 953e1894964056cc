"""Typed keys for what the application holds; one place so handlers and the app agree."""

from __future__ import annotations

__all__ = [
    "CLOCK",
    "CONFIG_DIGEST",
    "LIMITER",
    "METRICS",
    "MODEL",
    "SETTINGS",
    "STARTED",
    "STORE",
    "Clock",
]

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from router.metrics import Metrics
from router.settings import Settings
from router.store.base import Store
from router.teammodel import TeamModel
from router.web.ratelimit import RateLimiter

Clock = Callable[[], datetime]

SETTINGS = web.AppKey("settings", Settings)
MODEL = web.AppKey("model", TeamModel)
CONFIG_DIGEST = web.AppKey("config_digest", str)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STARTED = web.AppKey("started", datetime)
STORE: web.AppKey[Store] = web.AppKey("store")
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", RateLimiter)
