"""Email build benchmark: CPU per page to build an email and to serialise it.

    .venv/bin/python bench/email_build.py [--emails 2000] [--repeat 5]

Measures whatever `router.notify.email` currently is (run it before and after a change to
compare), and in the same run the stdlib way of making the wire bytes against the direct one.
The page is a real one: the shipped `config/` rendered by `render_email` for an
aggregate-profit incident, once with an ASCII subject and once with a non-ASCII subject and
recipient name (which need RFC 2047 encoding). Every email gets its own idempotency key, as
in an alert storm; sender and recipient repeat, as they do in production (they come from the
configuration). Prints the best of `--repeat` runs in µs of process CPU time per email, for:

- `build`: `build_email(...)`;
- `+as_bytes`: `build_email(...).as_bytes()` (the message's own policy);
- `+wire`: `build_email(...)` then `aiosmtplib.email.flatten_message(...)`: the wire bytes
  the stdlib way, as `SmtpSender.send` made them before `wire_email` (and still does for a
  server without 8BITMIME, or a non-ASCII address);
- `direct`: `wire_email(...)`, the same bytes written directly (checked equal first);
- `ratio`: `+wire` / `direct`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiosmtplib.email import flatten_message

from router.config import load_team_model
from router.model import Incident, Link
from router.notify.email import build_email, wire_email
from router.notify.message import EmailMessage, PageContext
from router.notify.render import render_email

CONFIG = Path(__file__).resolve().parents[1] / "config"
SENDER = "Pipeline Alerts <alerts@router.example>"
NOW = 1_790_000_000.0


def _page() -> EmailMessage:
    """A step-1 page for a critical aggregate-profit incident, as the outbox renders it."""
    model = load_team_model(CONFIG)
    opened = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    incident = Incident(
        id=42,
        status="open",
        pipeline="aggregate-profit",
        dedup_key="fp:cogs",
        name="CogsFeedNulls",
        summary="COGS feed has nulls",
        severity="critical",
        count=3,
        opened_at=opened,
        updated_at=opened,
        escalation="investor",
        source="alertmanager",
    )
    pipeline = model.pipeline("aggregate-profit")
    runbook = model.runbooks.get(pipeline.runbook) if pipeline and pipeline.runbook else None
    context = PageContext(
        event="incident.triggered",
        incident=incident,
        pipeline=pipeline,
        runbook=runbook,
        recipient="Alice",
        step=1,
        reasons=("week 5 (cycle week 1): Alice primary, Bob backup",),
        ack_url="https://router.example/ack/t0k3n?sig=ab&exp=1",
        incident_url="https://router.example/api/v1/incidents/42",
        labels={"pipeline": "aggregate-profit", "alertname": "CogsFeedNulls"},
        links=(Link("https://grafana.example/d/profit", "Dashboard"),),
    )
    return render_email(context, "Alice <alice@example.com>", _key(42))


def _key(incident: int) -> str:
    """An idempotency key as `router.paging` makes them."""
    opened = "20261124T170000000000"
    return f"incident-{incident}-{opened}/incident.triggered/round-1/step-1/member:Alice/email"


def _cpu_us_per_email(work: Callable[[EmailMessage], object], pages: list[EmailMessage]) -> float:
    started = time.process_time()
    for page in pages:
        work(page)
    return (time.process_time() - started) / len(pages) * 1e6


def _build(page: EmailMessage) -> object:
    return build_email(page, SENDER, NOW)


def _build_and_serialise(page: EmailMessage) -> object:
    return build_email(page, SENDER, NOW).as_bytes()


def _build_and_flatten(page: EmailMessage) -> object:
    return flatten_message(build_email(page, SENDER, NOW))


def _direct(page: EmailMessage) -> object:
    return wire_email(page, SENDER, NOW)


STEPS = {
    "build": _build,
    "+as_bytes": _build_and_serialise,
    "+wire": _build_and_flatten,
    "direct": _direct,
}


def _check_same_bytes(page: EmailMessage) -> None:
    """The two ways must agree byte for byte (same boundary), or the comparison is moot."""
    boundary = "=" * 15 + "0" * 32 + "=="
    stdlib = flatten_message(build_email(page, SENDER, NOW, boundary=boundary))
    if wire_email(page, SENDER, NOW, boundary=boundary) != stdlib:
        raise SystemExit("wire_email and the stdlib path differ: not measuring")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000, help="emails per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best one is shown")
    args = parser.parse_args()

    ascii_page = _page()
    variants = {
        "ascii": ascii_page,
        "non-ascii": replace(
            ascii_page, to="Zoë Ünal <zoe@example.com>", subject=f"{ascii_page.subject} — ✓ Grüße"
        ),
    }
    print(f"µs of CPU per email, best of {args.repeat} runs of {args.emails} emails")
    print(f"{'variant':<10}" + "".join(f"{step:>12}" for step in [*STEPS, "ratio"]))
    for name, page in variants.items():
        pages = [replace(page, idempotency_key=_key(n)) for n in range(args.emails)]
        _check_same_bytes(pages[0])  # and a warm-up: imports, caches
        best = {
            step: min(_cpu_us_per_email(work, pages) for _ in range(args.repeat))
            for step, work in STEPS.items()
        }
        ratio = best["+wire"] / best["direct"]
        print(f"{name:<10}" + "".join(f"{us:>12.1f}" for us in best.values()) + f"{ratio:>11.1f}x")


if __name__ == "__main__":
    main()
