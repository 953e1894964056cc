"""The composition root: `create_app(settings)` builds the aiohttp application."""

from __future__ import annotations

__all__ = ["create_app", "run"]

from datetime import UTC, datetime

import structlog
from aiohttp import web

from router import __version__
from router.config import load_team_model
from router.logs import configure_logging
from router.settings import Settings
from router.teammodel import TeamModel
from router.web import health, oncall
from router.web.auth import auth_middleware
from router.web.errors import error_middleware
from router.web.keys import CLOCK, MODEL, SETTINGS, STARTED, Clock

log = structlog.get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings, model: TeamModel | None = None, clock: Clock = _utc_now
) -> web.Application:
    """The router's application; `model` defaults to the team model at `settings.config`."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware(settings.inbound_tokens)],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[MODEL] = model if model is not None else load_team_model(settings.config)
    app[CLOCK] = clock
    app[STARTED] = clock()
    app.add_routes(health.routes)
    app.add_routes(oncall.routes)
    return app


def run(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    if not settings.inbound_tokens:
        log.warning(
            "auth.unconfigured",
            hint="set ROUTER_INBOUND_TOKENS; until then every /api request is refused with 401",
        )
    log.info("router.starting", version=__version__, host=settings.host, port=settings.port)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None)
    except OSError as err:
        log.error("router.cannot_listen", host=settings.host, port=settings.port, error=str(err))
        return 1
    return 0
