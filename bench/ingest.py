"""Durable-ingest benchmark: the router's POST → 202 against a bare-aiohttp ceiling.

    .venv/bin/python bench/ingest.py [--duration S] [--rates 250,1000,2000] [--json out.json]

Measures, one at a time and each in its own process:

1. `ceiling` — `bench/ceiling_server.py`, a trivial aiohttp handler (read, decode, 202);
2. `router` — the real `router serve` (SQLite in WAL mode, `synchronous=FULL`, group
   commit), `ROUTER_LOG_LEVEL=warning`, rate limit off, one bearer token, its SMTP relay
   `bench/smtp_sink.py` (every new incident pages by email; `--no-smtp-sink` points SMTP at
   a closed port instead);
3. `router-info` (unless `--no-info-variant`) — the same at the default `info` log level,
   logging JSON lines to a file, to show what per-alert logging costs.

Each phase (a closed loop at `--concurrency` workers, then an open loop at each of
`--rates`) starts a fresh server, and for a router an empty database, warms it up for a
second in the phase's own mode and rate and runs `bench/loadgen.py` against it in a
separate process. Every
request is a generic alert with a distinct dedup key, so every 202 is a new incident.

After each router phase it kills the router with SIGKILL (no graceful shutdown), opens the
SQLite file read-only and checks that every alert that got a 202 is an incident there.

It prints one table and the figures the issue sets targets for, as ratios against the ceiling
measured in the same run: closed-loop router/ceiling throughput ≥ 40 %, and p99 ≤ 20 ms at
1,000 alerts/s open loop. The exit status is 0 whatever the figures (a benchmark, not a
test), 1 if the durability check fails or a server does not start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procstat import cpu_seconds, own_cpu_seconds  # bench/procstat.py, beside this script
from routerenv import router_setting  # bench/routerenv.py

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOKEN = secrets.token_urlsafe(16)  # a fresh bearer token per run
TARGET_RATIO = 0.40
TARGET_P99_MS = 20.0
TARGET_P99_RATE = 1000.0
START_TIMEOUT_S = 30.0

Result = dict[str, Any]


@dataclass
class Target:
    """One server under test and how to start it."""

    name: str
    command: list[str]
    env: dict[str, str]
    workdir: Path
    router: bool = False
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    acked_files: list[Path] = field(default_factory=list)
    sink_pid: int | None = None

    def fresh(self, label: str) -> Target:
        """A copy for one phase: its own folder (and so, for a router, an empty database)."""
        workdir = self.workdir / label
        workdir.mkdir(parents=True)
        env = dict(self.env)
        if self.router:
            env["ROUTER_DATABASE_URL"] = f"sqlite:///{workdir / 'router.db'}"
        return Target(self.name, list(self.command), env, workdir, router=self.router)

    @property
    def db_path(self) -> Path:
        """The router's SQLite file."""
        return self.workdir / "router.db"

    @property
    def base(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        """The running server's process id."""
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid


class BenchError(Exception):
    """The benchmark could not run (a server did not start, a load generator failed)."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children_cpu_seconds() -> float:
    """CPU time of this process's waited-for children (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any `ROUTER_*`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env.update(extra)
    return env


@contextmanager
def smtp_sink(workdir: Path, enabled: bool) -> Iterator[tuple[int, int | None, Result]]:
    """Run `bench/smtp_sink.py`: yields (port, pid, counts); counts are filled in on exit.

    Disabled, the port is one nobody listens on (every email fails and is retried).
    """
    counts: Result = {}
    if not enabled:
        yield free_port(), None, counts
        return
    port = free_port()
    out = workdir / "smtp-sink.json"
    command = [sys.executable, str(BENCH / "smtp_sink.py"), f"--port={port}"]
    with out.open("wb") as stdout:
        sink = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT)  # noqa: S603 - our own script
    try:
        _wait_for_port(port, sink)
        yield port, sink.pid, counts
    finally:
        sink.send_signal(signal.SIGTERM)
        try:
            sink.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait(timeout=5)
        with suppress(ValueError, IndexError):
            counts.update(json.loads(out.read_text().splitlines()[-1]))


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the SMTP sink exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"the SMTP sink did not listen on {port} within {START_TIMEOUT_S} s")


@contextmanager
def cpu_affinity(cpus: set[int] | None) -> Iterator[None]:
    """Run the body (and whatever it spawns) on `cpus`; no-op for None."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def wait_until_healthy(target: Target) -> None:
    """Poll `/healthz` until it answers 200; BenchError if the server exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    assert target.process is not None
    while time.monotonic() < deadline:
        if target.process.poll() is not None:
            raise BenchError(f"{target.name} exited with {target.process.returncode}")
        try:
            with urllib.request.urlopen(f"{target.base}/healthz", timeout=2) as response:  # noqa: S310 - our own http URL
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{target.name} did not answer /healthz within {START_TIMEOUT_S} s")


def start(target: Target, cpus: set[int] | None) -> None:
    """Start the target server and wait until it serves."""
    target.port = free_port()
    env = dict(target.env)
    if "ROUTER_PORT" in env:
        env["ROUTER_PORT"] = str(target.port)
    command = [part.replace("{port}", str(target.port)) for part in target.command]
    with target.log_path.open("ab") as log, cpu_affinity(cpus):
        target.process = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
            command,
            cwd=target.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: the router and its delivery workers
        )
    wait_until_healthy(target)


def stop(target: Target, sig: signal.Signals = signal.SIGTERM) -> None:
    """Send `sig` and wait for the server to exit (SIGKILL goes to its whole process group:
    a router's delivery workers die with it); then kill whatever of the group is left."""
    if target.process is None:
        return
    if target.process.poll() is None:
        if sig == signal.SIGKILL:
            kill_group(target.process)
        else:
            target.process.send_signal(sig)
        try:
            target.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            target.process.kill()
            target.process.wait(timeout=5)
    kill_group(target.process)
    target.process = None


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group `process` leads (started with `start_new_session`)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_phase(
    target: Target,
    mode: str,
    *,
    duration: float,
    first_key: int,
    concurrency: int,
    rate: float | None = None,
    cpus: set[int] | None = None,
) -> Result:
    """One load-generator run against `target`; its report plus CPU figures."""
    acked = target.workdir / f"{target.name}-acked-{first_key}.txt"
    command = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        f"--url={target.base}/api/v1/alerts",
        f"--token={TOKEN}",
        f"--mode={mode}",
        f"--duration={duration}",
        f"--concurrency={concurrency}",
        f"--first-key={first_key}",
        f"--acked-file={acked}",
    ]
    if rate is not None:
        command.append(f"--rate={rate}")
    server_before, loadgen_before = cpu_seconds(target.pid), children_cpu_seconds()
    serving_before = own_cpu_seconds(target.pid)
    sink_before = cpu_seconds(target.sink_pid) if target.sink_pid else 0.0
    with cpu_affinity(cpus):
        done = subprocess.run(  # noqa: S603 - our own interpreter and script
            command, capture_output=True, text=True, check=False, timeout=duration + 120
        )
    if done.returncode != 0:
        raise BenchError(f"loadgen against {target.name} failed:\n{done.stderr}")
    target.acked_files.append(acked)
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    server_cpu = cpu_seconds(target.pid) - server_before
    serving_cpu = own_cpu_seconds(target.pid) - serving_before  # without delivery workers
    sink_cpu = cpu_seconds(target.sink_pid) - sink_before if target.sink_pid else 0.0
    loadgen_cpu = children_cpu_seconds() - loadgen_before
    wall = float(result["duration_s"])
    result.update(
        target=target.name,
        first_key=first_key,
        server_cpu_pct=round(100 * server_cpu / wall, 1),
        serving_process_cpu_pct=round(100 * serving_cpu / wall, 1),
        smtp_sink_cpu_pct=round(100 * sink_cpu / wall, 1),
        loadgen_cpu_pct=round(100 * loadgen_cpu / wall, 1),
        server_cpu_us_per_ok=round(1e6 * server_cpu / result["ok"], 1) if result["ok"] else None,
    )
    return result


Phase = tuple[str, float | None]  # mode ("closed" or "open"), offered rate


def run_target(
    template: Target, args: argparse.Namespace, rates: Sequence[float]
) -> tuple[list[Result], list[Result]]:
    """The closed loop, then the open loop at each rate, each on a freshly started server
    (for a router: an empty database and an empty outbox, so that one phase's paging backlog
    does not spill into the next); the results (warm-ups flagged) and durability checks."""
    results: list[Result] = []
    durability: list[Result] = []
    phases: list[Phase] = [("closed", None), *(("open", rate) for rate in rates)]
    next_key = args.key_base
    for mode, rate in phases:
        label = mode if rate is None else f"{mode}-{rate:g}"
        target = template.fresh(label)
        measured, checked = one_phase(target, (mode, rate), args, next_key)
        results.extend(measured)
        next_key += sum(int(r["sent"]) + 1 for r in measured)
        if checked is not None:
            durability.append({"phase": label, **checked})
        time.sleep(args.pause)
    return results, durability


def one_phase(
    target: Target, phase: Phase, args: argparse.Namespace, first_key: int
) -> tuple[list[Result], Result | None]:
    """Start the server (and, for a router, its SMTP sink), warm up, measure, check
    durability, stop."""
    with smtp_sink(target.workdir, args.smtp_sink and target.router) as (port, sink_pid, mail):
        target.sink_pid = sink_pid
        if target.router:
            target.env.update(ROUTER_SMTP_HOST="127.0.0.1", ROUTER_SMTP_PORT=str(port))
        try:
            results = load(target, phase, args, first_key)
            checked = check_durability(target) if target.router else None
        finally:
            stop(target)
    if checked is not None:
        checked["emails_accepted"] = mail.get("messages")
    return results, checked


def load(target: Target, phase: Phase, args: argparse.Namespace, first_key: int) -> list[Result]:
    """Warm-up (if any) and the measured run against a started server."""
    server_cpus, loadgen_cpus = ({0}, {1}) if args.pin else (None, None)
    start(target, server_cpus)
    mode, rate = phase
    runs: list[tuple[str, float | None, float]] = []
    if args.warmup > 0:
        # The warm-up runs as the phase does: a closed-loop burst before an open loop would
        # leave the router's outbox a backlog of pages (~2,000) to deliver during the
        # measured seconds, on the same two cores.
        runs.append((mode, rate, args.warmup))
    runs.append((mode, rate, args.duration))
    results: list[Result] = []
    for number, (run_mode, run_rate, duration) in enumerate(runs):
        result = run_phase(
            target,
            run_mode,
            duration=duration,
            first_key=first_key,
            concurrency=args.concurrency,
            rate=run_rate,
            cpus=loadgen_cpus,
        )
        result["warmup"] = number < len(runs) - 1
        first_key += int(result["sent"]) + 1
        results.append(result)
        if not result["warmup"]:
            print(f"[{target.name}] {describe(result)}", flush=True)
    return results


def describe(result: Result) -> str:
    """One progress line."""
    what = "warm-up" if result.get("warmup") else result["mode"]
    if result["offered_rate"]:
        what += f" @ {result['offered_rate']:g}/s"
    line = (
        f"{what}: {result['achieved_per_s']:.0f}/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, errors {result['errors']}"
    )
    if result["errors"]:
        line += f" {result['error_kinds']}"
    return line


def check_durability(target: Target) -> Result:
    """Kill the router with SIGKILL, then check every 202'd key is an incident in its file."""
    stop(target, signal.SIGKILL)
    acked: set[str] = set()
    for path in target.acked_files:
        acked.update(f"bench-{line}" for line in path.read_text().split())
    uri = f"file:{target.db_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        stored = {row[0] for row in conn.execute("SELECT dedup_key FROM incidents")}
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    conn.close()
    missing = len(acked - stored)
    return {
        "target": target.name,
        "acknowledged": len(acked),
        "incidents": incidents,
        "alerts": alerts,
        "missing": missing,
        "stored_not_acknowledged": len(stored - acked),
        "ok": missing == 0 and incidents == len(stored),
    }


ROUTER_ENV_OVERRIDES: dict[str, str] = {}  # --router-env KEY=VALUE, for every router


def router_target(name: str, workdir: Path, log_level: str) -> Target:
    """`router serve`; each phase gets a fresh SQLite file (see `Target.fresh`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = clean_env(
        ROUTER_PORT="0",
        ROUTER_CONFIG=str(ROOT / "config"),
        ROUTER_INBOUND_TOKENS=json.dumps({"bench": TOKEN}),
        ROUTER_RATE_LIMIT_PER_SECOND="0",
        ROUTER_LOG_LEVEL=log_level,
        ROUTER_LOG_FORMAT="json",
        **ROUTER_ENV_OVERRIDES,
    )
    command = [sys.executable, "-m", "router", "serve"]
    return Target(name, command, env, workdir, router=True)


def ceiling_target(workdir: Path) -> Target:
    """The bare aiohttp server."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(BENCH / "ceiling_server.py"), "--port={port}"]
    return Target("ceiling", command, clean_env(), workdir)


def print_table(results: Sequence[Result]) -> None:
    """The figures, one row per measured phase (warm-ups left out)."""
    header = (
        f"{'target':<12} {'mode':<6} {'rate':>6} {'achieved/s':>10} {'p50 ms':>8} "
        f"{'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} "
        f"{'srv CPU%':>8} {'worker%':>7} {'gen CPU%':>8} {'srv µs/ok':>9}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        if r.get("warmup"):
            continue
        rate = f"{r['offered_rate']:g}" if r["offered_rate"] else f"c={r['concurrency']}"
        per_ok = r["server_cpu_us_per_ok"]
        workers = r["server_cpu_pct"] - r["serving_process_cpu_pct"]  # delivery workers
        print(
            f"{r['target']:<12} {r['mode']:<6} {rate:>6} {r['achieved_per_s']:>10.0f} "
            f"{r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} "
            f"{r['errors']:>6} {r['server_cpu_pct']:>8.0f} {workers:>7.0f} "
            f"{r['loadgen_cpu_pct']:>8.0f} "
            f"{per_ok if per_ok is not None else '-':>9}"
        )


def find(results: Sequence[Result], target: str, mode: str, rate: float | None = None) -> Result:
    """The measured (non-warm-up) result for target/mode/rate; KeyError if absent."""
    for r in results:
        if (
            r["target"] == target
            and r["mode"] == mode
            and not r.get("warmup")
            and (rate is None or r["offered_rate"] == rate)
        ):
            return r
    raise KeyError((target, mode, rate))


def verdicts(results: Sequence[Result], routers: Sequence[str]) -> list[Result]:
    """Router/ceiling ratios and the issue's targets, per router variant."""
    ceiling = find(results, "ceiling", "closed")
    out: list[Result] = []
    for name in routers:
        closed = find(results, name, "closed")
        ratio = closed["achieved_per_s"] / ceiling["achieved_per_s"]
        per_ok = ceiling["server_cpu_us_per_ok"], closed["server_cpu_us_per_ok"]
        verdict: Result = {
            "target": name,
            "throughput_ratio": round(ratio, 3),
            "throughput_ok": ratio >= TARGET_RATIO and closed["errors"] == 0,
            "cpu_per_alert_ratio": round(per_ok[0] / per_ok[1], 3) if all(per_ok) else None,
        }
        try:
            at_rate = find(results, name, "open", TARGET_P99_RATE)
        except KeyError:
            pass
        else:
            verdict["p99_at_1000_ms"] = at_rate["p99_ms"]
            verdict["p99_ok"] = at_rate["p99_ms"] <= TARGET_P99_MS and at_rate["errors"] == 0
        out.append(verdict)
    return out


def print_verdicts(results: Sequence[Result], found: Sequence[Result]) -> None:
    """The ratios against the ceiling and pass/fail against the issue's targets."""
    ceiling = find(results, "ceiling", "closed")
    print(f"\nceiling closed loop: {ceiling['achieved_per_s']:.0f}/s")
    for v in found:
        mark = "PASS" if v["throughput_ok"] else "FAIL"
        print(
            f"{v['target']}: throughput {v['throughput_ratio']:.1%} of ceiling "
            f"(target ≥ {TARGET_RATIO:.0%}, no errors) {mark}; server CPU per alert: "
            f"ceiling/router = {_percent(v['cpu_per_alert_ratio'])}"
        )
        if "p99_at_1000_ms" in v:
            mark = "PASS" if v["p99_ok"] else "FAIL"
            print(
                f"{v['target']}: p99 at {TARGET_P99_RATE:g}/s = {v['p99_at_1000_ms']:.2f} ms "
                f"(target ≤ {TARGET_P99_MS:g} ms, no errors) {mark}"
            )


def revision() -> str:
    """The commit under test, `+dirty` if router/ has uncommitted changes ("unknown" sans git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "router"],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def parse_rates(text: str) -> list[float]:
    """`250,1000,2000` → [250.0, 1000.0, 2000.0]."""
    rates = [float(part) for part in text.split(",") if part.strip()]
    if any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument(
        "--rates",
        type=parse_rates,
        default=[250.0, 1000.0, 2000.0],
        help="open-loop rates, alerts/s, comma-separated (default 250,1000,2000)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop workers")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up before each phase, in its mode, s"
    )
    parser.add_argument("--pause", type=float, default=0.5, help="idle seconds between phases")
    parser.add_argument(
        "--info-variant",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the router at ROUTER_LOG_LEVEL=info (closed loop and --info-rates)",
    )
    parser.add_argument(
        "--info-rates",
        type=parse_rates,
        default=[TARGET_P99_RATE],
        help="open-loop rates for router-info (default 1000)",
    )
    parser.add_argument(
        "--smtp-sink",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give the router a local SMTP sink to page into (default); without it every "
        "page fails against a closed port and is retried",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin servers to CPU 0 and the load generator to CPU 1 (default: let them share)",
    )
    parser.add_argument("--key-base", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, logs)")
    parser.add_argument(
        "--router-env",
        action="append",
        type=router_setting,
        default=[],
        metavar="KEY=VALUE",
        help="a ROUTER_* setting for the router (repeatable), e.g. ROUTER_DELIVERY_WORKERS=0",
    )
    return parser.parse_args(argv)


def print_durability(durability: Sequence[Result]) -> None:
    """One line per router (its phases summed): acknowledged alerts against the databases."""
    for name in dict.fromkeys(d["target"] for d in durability):
        mine = [d for d in durability if d["target"] == name]
        total = {k: sum(d[k] for d in mine) for k in ("acknowledged", "incidents", "missing")}
        emails = sum(d.get("emails_accepted") or 0 for d in mine)
        mark = "OK" if all(d["ok"] for d in mine) else "FAILED"
        print(
            f"durability {name} ({len(mine)} databases, each checked after SIGKILL): "
            f"{total['acknowledged']} alerts got 202, {total['incidents']} incidents stored, "
            f"{total['missing']} acknowledged but missing: {mark}; "
            f"emails accepted by the SMTP sink: {emails}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run every target, print the table, ratios and durability check."""
    args = parse_args(argv)
    ROUTER_ENV_OVERRIDES.update(args.router_env)
    workdir = Path(tempfile.mkdtemp(prefix="router-bench-"))
    targets = [
        (ceiling_target(workdir / "ceiling"), args.rates),
        (router_target("router", workdir / "router", "warning"), args.rates),
    ]
    if args.info_variant:
        targets.append(
            (router_target("router-info", workdir / "router-info", "info"), args.info_rates)
        )
    results: list[Result] = []
    durability: list[Result] = []
    under_test = revision()
    print(f"router revision {under_test}", flush=True)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: 1-minute load average is {load_before:.2f}; figures will be noisy")
    began = time.monotonic()
    try:
        for target, rates in targets:
            print(f"[{target.name}] {len(rates) + 1} phases of {args.duration:g} s", flush=True)
            measured, checked = run_target(target, args, rates)
            results.extend(measured)
            durability.extend(checked)
    except BenchError as err:
        print(f"benchmark failed: {err} (logs kept in {workdir})", file=sys.stderr)
        return 1
    routers = [t.name for t, _ in targets if t.router]
    found = verdicts(results, routers)
    print_table(results)
    print_verdicts(results, found)
    print_durability(durability)
    info_logs = list((workdir / "router-info").glob("*/router-info.log"))
    if info_logs:
        size = sum(log.stat().st_size for log in info_logs) / 1e6
        print(f"router-info wrote {size:.1f} MB of log lines")
    print(f"total wall time {time.monotonic() - began:.0f} s; cpus: {os.cpu_count()}")
    if args.json is not None:
        document = {
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "revision": under_test,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "python": sys.version.split()[0],
            "results": results,
            "verdicts": found,
            "durability": durability,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    durable = all(d["ok"] for d in durability)
    if args.keep or not durable or any(r["errors"] for r in results):
        print(f"kept {workdir} (databases, server logs, acknowledged keys)")
    else:
        _remove_tree(workdir)
    return 0 if durable else 1


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()


if __name__ == "__main__":
    sys.exit(main())
