"""The composition root: `create_app(settings)` builds the aiohttp application."""

from __future__ import annotations

__all__ = ["create_app", "run"]

import asyncio
import gc
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from aiohttp import web

from router import __version__
from router.acklinks import AckSigner
from router.logs import configure_logging, known_secrets
from router.metrics import Metrics
from router.outbox import Outbox
from router.outbox_setup import make_outbox, smtp_sender, webhook_sender
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
    SMTP,
    STARTED,
    STORE,
    WEBHOOKS,
    WORKERS,
    Clock,
)
from router.web.ratelimit import RateLimiter
from router.web.requestid import request_id_middleware
from router.workers import DeliveryWorkers

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
    app[WEBHOOKS] = webhook_sender(settings)
    app[SMTP] = smtp_sender(settings)
    app[OUTBOX] = _outbox(app)
    app[ESCALATOR] = Escalator(
        app[STORE], model=lambda: app[CONFIG].model, clock=clock, on_fired=app[OUTBOX].wake
    )
    if deliver_in_background and store is None and settings.delivery_workers > 0:
        # Only for a store the settings name: a worker opens the database by its URL.
        app[WORKERS] = DeliveryWorkers(
            settings,
            settings.delivery_workers,
            on_report=app[OUTBOX].apply,
            model=lambda: app[CONFIG].model,
        )
    app.cleanup_ctx.append(_store_lifecycle)
    app.cleanup_ctx.append(_senders_lifecycle)
    if deliver_in_background:
        app.cleanup_ctx.append(_outbox_lifecycle)
    for module in (health, oncall, intake, pagerduty, incidents, runtime, silences, ack):
        app.add_routes(module.routes)
    return app


def _outbox(app: web.Application) -> Outbox:
    return make_outbox(
        app[SETTINGS],
        app[STORE],
        app[WEBHOOKS],
        app[SMTP],
        model=lambda: app[CONFIG].model,
        signer=app[ACK_SIGNER],
        clock=app[CLOCK],
        metrics=app[METRICS],
    )


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[STORE].open()
    app[ACK_SIGNER].set_key(await app[STORE].meta_secret("ack_link_key"))
    yield
    await app[STORE].close()


async def _senders_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The webhook client session and the SMTP sessions; closed after the outbox drained
    (aiohttp runs cleanups in reverse order)."""
    await app[WEBHOOKS].start()
    yield
    await app[WEBHOOKS].close()
    await app[SMTP].close()


async def _outbox_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Escalate and deliver in the background (delivery in worker processes when there are
    any); on shutdown the sends in flight finish (or a lease expires and the next start
    delivers again with the same idempotency key)."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(app[ESCALATOR].run(stop), name="escalator")]
    workers = app.get(WORKERS)
    if workers is None:
        tasks.append(asyncio.create_task(app[OUTBOX].run(stop), name="outbox"))
    else:
        app[OUTBOX].add_wake_listener(workers.wake)
        await workers.start()
    yield
    stop.set()
    app[OUTBOX].wake()
    if workers is not None:
        await workers.stop()
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


def _reload(app: web.Application) -> None:
    swapped = app[CONFIG].reload(app[CLOCK]())
    workers = app.get(WORKERS)
    if swapped and workers is not None:
        workers.model_changed()  # the same model, handed over: workers never read the file


async def _signal_handlers(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP re-reads the team model; an invalid file is logged and the old one kept.

    SIGTERM and SIGINT start the drain once. aiohttp's own handlers would stop it halfway
    at a second signal (`timeout`, and a terminal's Ctrl-C, signal the whole process
    group, which then signals this process twice), and undelivered pages would wait for
    their leases to run out.
    """
    loop = asyncio.get_running_loop()
    draining = False

    def stop() -> None:
        nonlocal draining
        if draining:
            log.info("shutdown.already_draining")
            return
        draining = True
        log.info("router.stopping", drain_timeout_seconds=app[SETTINGS].drain_timeout_seconds)
        raise web.GracefulExit

    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(app))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    yield
    # Not removed: SIGHUP's default action would end the process in the middle of the
    # drain that follows (a `systemctl reload` at the wrong moment).
    loop.add_signal_handler(signal.SIGHUP, lambda: log.info("shutdown.reload_ignored"))


def run(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    app = create_app(settings)
    secrets = known_secrets(settings, app[CONFIG].model)
    configure_logging(settings.log_level, settings.log_format, secrets=secrets)
    app.cleanup_ctx.append(_signal_handlers)
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
    finally:
        # Closing the loop put SIGHUP's default action back: a reload now would end the
        # process by a signal rather than with its exit code. (Between that and this line
        # there is still an instant in which it would.)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("router.stopped")
    return 0
