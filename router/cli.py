"""The `router` command: thin entry points over the team model, the resolver and the app.

Exit codes: 0 success, 2 a problem the user can fix (bad config, bad arguments), 1 the
daemon failed at run time. Never a traceback for anything a user can type or write.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from router.config import load_team_model
from router.errors import ConfigError
from router.fairness import fairness
from router.ics import schedule_to_ics
from router.oncall import resolve
from router.schedule import schedule, shifts_window
from router.settings import load_settings
from router.tables import fairness_table, oncall_text, schedule_table
from router.teammodel import TeamModel
from router.timeutil import OUT_OF_RANGE, in_supported_range, parse_instant, to_instant

EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line value that cannot be used; the message says which and why."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `router` command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except ConfigError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        return EXIT_USAGE
    except UsageError as err:
        print(f"router {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Pipeline alert router.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--config", type=Path, help="team model file or folder")
        sub.set_defaults(handler=handler)
        return sub

    command("serve", _serve, "run the daemon")
    test = command("send-test-alert", _send_test_alert, "send a test alert to the running router")
    test.add_argument("pipeline", help="pipeline id (see config/pipelines.yaml)")
    check = command("check-config", _check_config, "validate the team model")
    check.add_argument("path", nargs="?", type=Path, help="file or folder (default: --config)")
    oncall = command("oncall", _oncall, "who is on call, and why")
    oncall.add_argument("--at", help="ISO instant (default: now; no offset = team timezone)")
    oncall.add_argument("--json", action="store_true", help="print JSON")
    sched = command("schedule", _schedule, "the effective schedule, shift by shift")
    sched.add_argument("--from", dest="start", help="date (default: today)")
    sched.add_argument("--weeks", type=int, default=4, help="how many shifts (default 4)")
    form = sched.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON")
    form.add_argument("--ics", action="store_true", help="print iCalendar")
    fair = command("fairness", _fairness, "on-call hours per member, holidays and leave")
    fair.add_argument("--from", dest="start", help="first date (default: rotation start)")
    fair.add_argument("--to", dest="end", help="last date, inclusive (default: today)")
    fair.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _model(args: argparse.Namespace) -> TeamModel:
    path = args.config if args.config is not None else load_settings().config
    return load_team_model(path)


def _check_config(args: argparse.Namespace) -> int:
    path = args.path or args.config or load_settings().config
    model = load_team_model(path)
    rotation = model.rotation
    print(
        f"{path}: OK: {len(model.team.members)} members, {len(model.pipelines)} pipelines, "
        f"{len(model.runbooks)} runbooks, {len(model.escalation_policies)} escalation policies, "
        f"{len(model.channels)} channels; rotation of {len(rotation.order)} from "
        f"{rotation.start.isoformat(sep=' ', timespec='minutes')} {model.team.timezone}"
    )
    return 0


def _oncall(args: argparse.Namespace) -> int:
    model = _model(args)
    at = datetime.now(UTC) if args.at is None else _instant(args.at, model)
    answer = resolve(model, at)
    if args.json:
        print(json.dumps(answer.to_json(model), indent=2))
    else:
        print(oncall_text(answer, model.team.tz))
    return 0


def _schedule(args: argparse.Namespace) -> int:
    model = _model(args)
    if not 1 <= args.weeks <= 520:
        raise UsageError(f"--weeks must be between 1 and 520, not {args.weeks}")
    first = datetime.now(UTC) if args.start is None else _instant(args.start, model)
    spans = schedule(model, *shifts_window(model, first, args.weeks))
    if args.ics:
        sys.stdout.write(schedule_to_ics(spans, datetime.now(UTC)).decode())
    elif args.json:
        rows = [
            {"from": _iso(s.starts, model), "to": _iso(s.ends, model), **s.oncall.to_json(model)}
            for s in spans
        ]
        print(json.dumps({"timezone": model.team.timezone, "spans": rows}, indent=2))
    else:
        print(schedule_table(spans, model.team.tz))
    return 0


def _fairness(args: argparse.Namespace) -> int:
    model = _model(args)
    tz = model.team.tz
    first = model.rotation.start.date() if args.start is None else _day(args.start)
    last = datetime.now(tz).date() if args.end is None else _day(args.end)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    starts = to_instant(datetime.combine(first, time()), tz)
    ends = to_instant(datetime.combine(last + timedelta(days=1), time()), tz)
    loads = fairness(model, starts, ends)
    if args.json:
        members = [load.to_json() for load in loads]
        window = {"from": _iso(starts, model), "to": _iso(ends, model)}
        print(json.dumps({**window, "members": members}, indent=2))
    else:
        print(f"From {first} through {last} ({model.team.timezone})")
        print(fairness_table(loads))
    return 0


def _send_test_alert(args: argparse.Namespace) -> int:
    from router.testalert import send_test_alert  # noqa: PLC0415 - aiohttp only when needed

    settings = load_settings(**({"config": args.config} if args.config else {}))
    model = load_team_model(settings.config)
    if model.pipeline(args.pipeline) is None:
        known = ", ".join(p.id for p in model.pipelines)
        raise UsageError(f"no pipeline {args.pipeline!r}; known: {known}")
    try:
        status, text = send_test_alert(settings, args.pipeline)
    except ValueError as err:
        raise UsageError(str(err)) from None
    except (OSError, aiohttp.ClientError, TimeoutError) as err:
        where = f"{settings.host}:{settings.port}"
        print(f"router send-test-alert: cannot reach the router at {where}: {err}", file=sys.stderr)
        return 1
    print(f"HTTP {status}\n{text}")
    return 0 if status == 202 else 1


def _serve(args: argparse.Namespace) -> int:
    from router.app import run  # noqa: PLC0415 - aiohttp loads only for the daemon

    settings = load_settings(**({"config": args.config} if args.config else {}))
    load_team_model(settings.config)  # fail fast, before binding the port
    return run(settings)


def _instant(text: str, model: TeamModel) -> datetime:
    """An ISO date or date-time; without an offset it is local to the team's timezone."""
    try:
        return parse_instant(text, model.team.tz)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not an ISO date (2026-11-26)") from None
    if not in_supported_range(day):
        raise UsageError(f"{text!r} {OUT_OF_RANGE}")
    return day


def _iso(instant: datetime, model: TeamModel) -> str:
    return instant.astimezone(model.team.tz).isoformat()
