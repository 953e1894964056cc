"""The composition root: `create_app(settings)` builds the aiohttp application."""

from __future__ import annotations

__all__ = ["create_app", "run"]

import asyncio
import gc
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import structlog
from aiohttp import web

from router import __version__
from router.acklinks import AckSigner
from router.delivery import LinkMaker
from router.logs import configure_logging, known_secrets
from router.metrics import Metrics
from router.notify.email import SmtpSender
from router.notify.webhook import WebhookSender
from router.outbox import Outbox, RetryPolicy, Senders
from router.reload import LoadedConfig
from router.scheduler import Escalator
from router.settings import Settings
from router.store import Store, StoreUnavailableError, open_store
from router.teammodel import TeamModel
from router.web import ack, health, incidents, intake, oncall, pagerduty, runtime, silences
from router.web.auth import auth_middleware
from router.web.errors import Handler, error_middleware
from router.web.keys import (
    ACK_SIGNER,
    CLOCK,
    CONFIG,
    ESCALATOR,
    LIMITER,
    METRICS,
    OUTBOX,
    SETTINGS,
    STARTED,
    STORE,
    WEBHOOKS,
    Clock,
)
from router.web.ratelimit import RateLimiter
from router.web.requestid import request_id_middleware

log = structlog.get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    model: TeamModel | None = None,
    clock: Clock = _utc_now,
    store: Store | None = None,
    *,
    deliver_in_background: bool = True,
) -> web.Application:
    """The router's application. `model` defaults to the team model at `settings.config`,
    `store` to the one `ROUTER_DATABASE_URL` names; the app opens and closes it. Tests that
    drive delivery themselves (`app[OUTBOX].deliver_due()`) turn the background loop off."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            _timing_middleware,
            error_middleware,
            auth_middleware(),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CONFIG] = LoadedConfig.load(settings.config, clock(), model)
    app[CLOCK] = clock
    app[STARTED] = clock()
    app[STORE] = store if store is not None else open_store(settings.database_url)
    app[METRICS] = Metrics()
    app[LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app[ACK_SIGNER] = AckSigner()
    app[WEBHOOKS] = WebhookSender(_webhook_timeout(settings.webhook_timeout_seconds))
    app[OUTBOX] = _outbox(app)
    app[ESCALATOR] = Escalator(
        app[STORE], model=lambda: app[CONFIG].model, clock=clock, on_fired=app[OUTBOX].wake
    )
    app.cleanup_ctx.append(_store_lifecycle)
    app.cleanup_ctx.append(_webhook_lifecycle)
    if deliver_in_background:
        app.cleanup_ctx.append(_outbox_lifecycle)
    for module in (health, oncall, intake, pagerduty, incidents, runtime, silences, ack):
        app.add_routes(module.routes)
    return app


def _webhook_timeout(total: float) -> aiohttp.ClientTimeout:
    """Seconds, not aiohttp's default five minutes: a hung receiver must not hold a page."""
    return aiohttp.ClientTimeout(total=total, connect=min(3.0, total), sock_read=total)


def _outbox(app: web.Application) -> Outbox:
    settings = app[SETTINGS]
    secrets = settings.hmac_secrets()
    return Outbox(
        app[STORE],
        Senders(
            SmtpSender.from_settings(settings, timeout=settings.smtp_timeout_seconds),
            app[WEBHOOKS],
        ),
        model=lambda: app[CONFIG].model,
        links=LinkMaker(settings.public_url, app[ACK_SIGNER]),
        hmac_secret=secrets[0] if secrets else None,
        clock=app[CLOCK],
        metrics=app[METRICS],
        policy=RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            max_age=timedelta(seconds=settings.delivery_max_age_seconds),
            lease=timedelta(seconds=settings.delivery_lease_seconds),
        ),
        per_destination=settings.delivery_per_destination,
    )


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[STORE].open()
    app[ACK_SIGNER].set_key(await app[STORE].meta_secret("ack_link_key"))
    yield
    await app[STORE].close()


async def _webhook_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[WEBHOOKS].start()
    yield
    await app[WEBHOOKS].close()


async def _outbox_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Escalate and deliver in the background; on shutdown the passes in flight finish (or
    a lease expires and the next start delivers again with the same idempotency key)."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(app[OUTBOX].run(stop), name="outbox"),
        asyncio.create_task(app[ESCALATOR].run(stop), name="escalator"),
    ]
    yield
    stop.set()
    app[OUTBOX].wake()
    drain = app[SETTINGS].drain_timeout_seconds
    _done, pending = await asyncio.wait(tasks, timeout=drain)
    for task in pending:
        log.warning("shutdown.drain_timeout", task=task.get_name(), seconds=drain)
        task.cancel()


@web.middleware
async def _timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request latency by route pattern (bounded), method and status."""
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].request_duration.labels(route, request.method, response.status).observe(
        time.perf_counter() - started
    )
    return response


async def _reload_on_sighup(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP re-reads the team model; an invalid file is logged and the old one kept."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: app[CONFIG].reload(app[CLOCK]()))
    yield
    loop.remove_signal_handler(signal.SIGHUP)


def run(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    app = create_app(settings)
    secrets = known_secrets(settings, app[CONFIG].model)
    configure_logging(settings.log_level, settings.log_format, secrets=secrets)
    app.cleanup_ctx.append(_reload_on_sighup)
    if not settings.inbound_tokens and not settings.hmac_secrets():
        log.warning(
            "auth.unconfigured",
            hint="set ROUTER_INBOUND_TOKENS; until then every /api request is refused with 401",
        )
    log.info("router.starting", version=__version__, host=settings.host, port=settings.port)
    # What start-up allocated lives as long as the process: keep the collector off it, so
    # full collections under load pause for ~1 ms rather than tens (measured in bench/).
    gc.collect()
    gc.freeze()
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None)
    except StoreUnavailableError as err:
        log.error("router.cannot_open_store", error=str(err))
        return 1
    except OSError as err:
        log.error("router.cannot_listen", host=settings.host, port=settings.port, error=str(err))
        return 1
    return 0
