"""Typed keys for what the application holds; one place so handlers and the app agree."""

from __future__ import annotations

__all__ = ["CLOCK", "MODEL", "SETTINGS", "STARTED", "Clock"]

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from router.settings import Settings
from router.teammodel import TeamModel

Clock = Callable[[], datetime]

SETTINGS = web.AppKey("settings", Settings)
MODEL = web.AppKey("model", TeamModel)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STARTED = web.AppKey("started", datetime)
