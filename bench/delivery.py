"""Delivery benchmark: alert in → webhook out, the router side by side with Prometheus Alertmanager.

    .venv/bin/python bench/delivery.py [--rates 100,1000,4000] [--duration 5] [--json out.json]

Both servers do the same job in the same run, one at a time, each phase on a freshly started
server and a fresh `bench/webhook_sink.py`:

- `router` — the real `router serve` on a copy of `config/` in which every member has only
  `webhook: http://127.0.0.1:<sink>/router` (`email: null`), so every new incident's step-1
  page is one generic webhook to the sink; a fresh SQLite file, rate limit off,
  `ROUTER_LOG_LEVEL=warning`, one bearer token. Alerts go to `POST /api/v1/alerts` (202 once
  stored); the sink reads the alert back from `body["incident"]["dedup_key"]`.
- `alertmanager` — `/usr/bin/prometheus-alertmanager` (Debian, 0.25) with the route
  `group_by: ['...']` (every alert its own group), `group_wait: 0s`, `group_interval: 1s`,
  `repeat_interval: 1h` and one webhook receiver (`send_resolved: false`) to
  `http://127.0.0.1:<sink>/am`; clustering off. Alerts go to `POST /api/v2/alerts`, one per
  request, labelled `id=<n>`; the sink reads every alert of a webhook body.

Each phase (open loop at each of `--rates` for `--duration` s, then a closed loop of
`--concurrency` workers, "as fast as possible") runs `bench/delivery_loadgen.py` in its own
process, waits until the sink has been quiet for `--quiet` s (at most `--drain` s after the
last send), then reads the server's peak RSS (`VmHWM`) and stops it. Latency is from the
alert's send time in the load generator to its first arrival at the sink, both on Linux's
`CLOCK_MONOTONIC` (`time.monotonic()`), shared by every process of the machine.

It prints one table (per target and phase: sent, acked, delivered, delivered/s, ingest →
delivery p50/p99/max, lost, duplicated, peak RSS, server CPU per alert) and the issue's
targets as router/Alertmanager ratios. The exit status is 0 whatever the figures (a benchmark,
not a test), 1 if a server does not start or the router lost a stored alert.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from procstat import cpu_seconds, memory_kib  # bench/procstat.py, beside this script
from routerenv import router_setting  # bench/routerenv.py

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOKEN = secrets.token_urlsafe(16)
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
START_TIMEOUT_S = 30.0
WARMUP_BASE = 1_000_000_000  # warm-up alerts are numbered from here and left out of the figures
WARMUP_RATE = 200.0
TARGET_P99_RATE = 1000.0
TARGET_RSS_FRACTION = 1 / 3
NOISY_PCT = 10.0  # other processes' CPU during a phase, % of one core, worth a warning

Result = dict[str, Any]
LEGEND = """\
rate: offered alerts/s (max = closed loop); deliv/s: delivered / (last delivery - first send)
p50/p99/max: ms from send to first arrival at the sink; lost: acked but never delivered (for
the router: nor still queued in its outbox); queued: router pages still in its outbox at the
drain bound (late, not lost); dup: extra copies; RSS: peak (VmHWM); µs/alert: server CPU (all
threads, load + drain) per delivered alert; in p99: ingest (send → 202/200) p99 ms"""


class BenchError(Exception):
    """The benchmark could not run (a server did not start, a load generator failed)."""


@dataclass(frozen=True)
class Phase:
    """One measured load: an open loop at `rate`, or the closed loop when `rate` is None."""

    rate: float | None

    @property
    def label(self) -> str:
        """`1000` or `max`."""
        return "max" if self.rate is None else f"{self.rate:g}"


@dataclass
class Running:
    """A started server: its process, base URL and working folder."""

    name: str
    process: subprocess.Popen[bytes]
    base: str
    workdir: Path
    database: Path | None = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid


@dataclass
class Sink:
    """A started `bench/webhook_sink.py`."""

    process: subprocess.Popen[bytes]
    port: int
    out: Path
    summary: Result = field(default_factory=dict)

    def url(self, path: str) -> str:
        """`http://127.0.0.1:<port><path>`."""
        return f"http://127.0.0.1:{self.port}{path}"

    def stats(self) -> Result:
        """The sink's `/_stats`: requests so far and the last arrival (monotonic seconds)."""
        with urllib.request.urlopen(self.url("/_stats"), timeout=5) as response:  # noqa: S310 - our own http URL
            stats: Result = json.loads(response.read())
            return stats


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(probe: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    """Poll `probe` until it is true; BenchError if `process` exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode}")
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{what} did not start within {START_TIMEOUT_S} s")


def http_ok(url: str) -> bool:
    """Whether GET `url` answers 200."""
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http URL
        return bool(response.status == 200)


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def terminate(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """Send `sig` and wait for the process to end (SIGKILL after 15 s). A process that leads
    its own group (the router: `start_new_session`) takes SIGKILL with its whole group, its
    delivery workers, and leaves no member of it behind."""
    own_group = os.getpgid(process.pid) == process.pid if process.poll() is None else False
    if process.poll() is None:
        if sig == signal.SIGKILL and own_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if own_group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def children_cpu_seconds() -> float:
    """CPU time of this process's waited-for children (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy (all cores, every process), and stolen by
    the hypervisor, since boot (Linux /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / ticks, steal / ticks


class CpuMeter:
    """CPU used from creation to `read()`: by the server, the sink, the load generator (a
    waited-for child), and by everything else on the machine (`others`: noise)."""

    def __init__(self, server: int, sink: int) -> None:
        self.pids = {"server": server, "sink": sink}
        self.before = self._snapshot()

    def _snapshot(self) -> dict[str, float]:
        found = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        own = resource.getrusage(resource.RUSAGE_SELF)
        found["loadgen"] = children_cpu_seconds()
        found["driver"] = own.ru_utime + own.ru_stime
        found["machine"], found["steal"] = machine_busy_seconds()
        found["wall"] = time.monotonic()
        return found

    def read(self) -> dict[str, float]:
        """`<name>_cpu_s` for server, sink, loadgen and others, `steal_s` and `wall_s`."""
        now = self._snapshot()
        used = {name: now[name] - self.before[name] for name in now}
        mine = sum(used[name] for name in ("server", "sink", "loadgen", "driver"))
        return {
            "server_cpu_s": used["server"],
            "sink_cpu_s": used["sink"],
            "loadgen_cpu_s": used["loadgen"],
            "others_cpu_s": max(0.0, used["machine"] - mine),
            "steal_s": used["steal"],
            "wall_s": used["wall"],
        }


@contextmanager
def webhook_sink(workdir: Path) -> Iterator[Sink]:
    """Run `bench/webhook_sink.py`; on exit stop it and load its summary into `Sink.summary`."""
    port = free_port()
    out = workdir / "sink.json"
    command = [sys.executable, str(BENCH / "webhook_sink.py"), f"--port={port}", f"--out={out}"]
    with (workdir / "sink.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own script
    sink = Sink(process, port, out)
    try:
        wait_for(lambda: listening(port), process, "the webhook sink")
        yield sink
    finally:
        terminate(process)
        if out.exists():
            sink.summary = json.loads(out.read_text())


ROUTER_ENV_OVERRIDES: dict[str, str] = {}  # --router-env KEY=VALUE, for every router started


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any `ROUTER_*`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env.update(extra)
    return env


def router_config(workdir: Path, webhook_url: str) -> Path:
    """A copy of `config/` where every member is paged only by webhook, at `webhook_url`."""
    config = workdir / "config"
    shutil.copytree(ROOT / "config", config)
    team_file = config / "team.yaml"
    document = yaml.safe_load(team_file.read_text())
    for member in document["team"]["members"]:
        member["email"] = None
        member["webhook"] = webhook_url
    team_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def start_router(workdir: Path, sink: Sink) -> Running:
    """`router serve` on a fresh SQLite file, paging every member through the sink."""
    port = free_port()
    database = workdir / "router.db"
    env = clean_env(
        ROUTER_HOST="127.0.0.1",
        ROUTER_PORT=str(port),
        ROUTER_CONFIG=str(router_config(workdir, sink.url("/router"))),
        ROUTER_DATABASE_URL=f"sqlite:///{database}",
        ROUTER_INBOUND_TOKENS=json.dumps({"bench": TOKEN}),
        ROUTER_RATE_LIMIT_PER_SECOND="0",
        ROUTER_LOG_LEVEL="warning",
        ROUTER_LOG_FORMAT="json",
        ROUTER_PUBLIC_URL=f"http://127.0.0.1:{port}",
        ROUTER_SMTP_PORT=str(free_port()),  # nobody is paged by email; a closed port if so
        **ROUTER_ENV_OVERRIDES,
    )
    with (workdir / "router.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "router", "serve"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: the router and its delivery workers
        )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(f"{base}/healthz"), process, "router serve")
    return Running("router", process, base, workdir, database)


def alertmanager_config(webhook_url: str) -> str:
    """alertmanager.yml (0.25): every alert its own group, flushed at once, never repeated
    within a run, to one webhook receiver."""
    return f"""\
route:
  receiver: sink
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: {webhook_url}
        send_resolved: false
"""


def start_alertmanager(workdir: Path, sink: Sink, binary: str) -> Running:
    """Alertmanager on a free port with `alertmanager_config`, clustering off."""
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(alertmanager_config(sink.url("/am")))
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # empty: no gossip, no waiting to settle
        "--log.level=warn",
    ]
    with (workdir / "alertmanager.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - the system's Alertmanager
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(f"{base}/-/ready"), process, "alertmanager")
    return Running("alertmanager", process, base, workdir)


# -- one phase -------------------------------------------------------------------------------


def loadgen(
    server: Running,
    *,
    rate: float | None,
    duration: float,
    first_key: int,
    concurrency: int,
    out: Path,
) -> Result:
    """Run `bench/delivery_loadgen.py` against `server`; its summary (records stay in `out`)."""
    command = [
        sys.executable,
        str(BENCH / "delivery_loadgen.py"),
        f"--kind={'router' if server.name == 'router' else 'am'}",
        f"--url={server.base}",
        f"--token={TOKEN}",
        f"--mode={'closed' if rate is None else 'open'}",
        f"--duration={duration}",
        f"--concurrency={concurrency}",
        f"--first-key={first_key}",
        f"--out={out}",
    ]
    if rate is not None:
        command.append(f"--rate={rate}")
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, capture_output=True, text=True, check=False, timeout=duration + 120
    )
    if done.returncode != 0:
        raise BenchError(f"the load generator against {server.name} failed:\n{done.stderr}")
    summary: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def warm_up(server: Running, sink: Sink, seconds: float, concurrency: int) -> None:
    """A short open loop (numbered from WARMUP_BASE), then wait for its deliveries."""
    if seconds <= 0:
        return
    summary = loadgen(
        server,
        rate=WARMUP_RATE,
        duration=seconds,
        first_key=WARMUP_BASE,
        concurrency=concurrency,
        out=server.workdir / "warmup.json",
    )
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and sink.stats()["requests"] < summary["acked"]:
        time.sleep(0.05)
    time.sleep(0.3)


def drain(sink: Sink, sent_until: float, quiet: float, bound: float) -> float:
    """Wait until no delivery arrived for `quiet` s (from the last send on), at most `bound` s
    after the last send; returns how long it waited."""
    began = time.monotonic()
    while True:
        stats = sink.stats()
        now = stats["now"]
        last = max(stats["last_arrival"] or 0.0, sent_until)
        if now - last >= quiet or now - sent_until >= bound:
            return time.monotonic() - began
        time.sleep(0.05)


def py_spy() -> str | None:
    """py-spy on PATH or next to this interpreter (the venv), if installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return spy if Path(spy).exists() else None


@contextmanager
def profiled(server: Running, output: Path | None, seconds: float) -> Iterator[None]:
    """Sample the server with `py-spy record` (raw collapsed stacks) while the body runs."""
    if output is None:
        yield
        return
    spy = py_spy()
    if spy is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    command = [
        spy,
        "record",
        f"--pid={server.pid}",
        f"--duration={math.ceil(seconds)}",
        "--format=raw",
        "--threads",
        "--subprocesses",  # the delivery worker processes too
        "--rate=200",
        f"--output={output}",
    ]
    with (server.workdir / "py-spy.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - py-spy
    try:
        yield
    finally:
        try:
            process.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def router_database(database: Path, acked: set[int]) -> Result:
    """After SIGKILL: acknowledged alerts missing from the incidents, the outbox by status,
    and the alerts whose page is still queued (not yet sent: late, not lost)."""
    uri = f"file:{database}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        stored = {row[0] for row in conn.execute("SELECT dedup_key FROM incidents")}
        outbox = dict(
            conn.execute("SELECT status, count(*) FROM notifications GROUP BY status").fetchall()
        )
        queued = [
            row[0]
            for row in conn.execute(
                """SELECT DISTINCT i.dedup_key FROM notifications n
                   JOIN incidents i ON i.id = n.incident_id
                   WHERE n.status IN ('pending', 'sending')"""
            )
        ]
    finally:
        conn.close()
    missing = sum(1 for n in acked if f"bench-{n}" not in stored)
    return {
        "acked_not_stored": missing,
        "incidents": len(stored),
        "outbox": outbox,
        "queued": [int(key.removeprefix("bench-")) for key in queued],
    }


def run_phase(name: str, phase: Phase, args: argparse.Namespace, workdir: Path) -> Result:
    """Fresh sink and server, warm-up, measured load, drain, peak RSS, stop; the figures."""
    workdir.mkdir(parents=True)
    with webhook_sink(workdir) as sink:
        if name == "router":
            server = start_router(workdir, sink)
        else:
            server = start_alertmanager(workdir, sink, args.alertmanager)
        extra: Result = {}
        try:
            warm_up(server, sink, args.warmup, args.concurrency)
            meter = CpuMeter(server.pid, sink.process.pid)
            profile = args.profile if name == "router" and phase.rate == args.profile_rate else None
            with profiled(server, profile, args.duration):
                sent = loadgen(
                    server,
                    rate=phase.rate,
                    duration=args.duration,
                    first_key=0,
                    concurrency=args.concurrency,
                    out=workdir / "sent.json",
                )
            waited = drain(sink, sent["last_sent"], args.quiet, args.drain)
            extra.update(meter.read())
            extra["memory_kib"] = memory_kib(server.pid)
            extra["drain_s"] = round(waited, 2)
        finally:
            terminate(server.process, signal.SIGKILL if name == "router" else signal.SIGTERM)
    records = json.loads((workdir / "sent.json").read_text())["records"]
    if server.database is not None:
        acked = {int(n) for n, _, ok in records if ok}
        extra["router_db"] = router_database(server.database, acked)
    return analyse(name, phase, sent=sent, records=records, sink=sink.summary, extra=extra)


# -- figures ---------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN when empty)."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def analyse(
    name: str,
    phase: Phase,
    *,
    sent: Result,
    records: Sequence[Sequence[Any]],
    sink: Result,
    extra: Result,
) -> Result:
    """Join what was sent with what arrived: delivered, lost, duplicated, latency, rate.

    An acknowledged alert that never arrived is `queued` if the router still had its page
    in the outbox when it was stopped (late: the drain bound ran out), else `lost`.
    """
    first = {int(n): float(t) for n, t in sink.get("first", []) if int(n) < WARMUP_BASE}
    sent_at = {int(n): float(t) for n, t, _ in records}
    acked = {int(n) for n, _, ok in records if ok}
    delivered = [n for n in sent_at if n in first]
    latencies = sorted(first[n] - sent_at[n] for n in delivered)
    copies = {int(n): int(k) for n, k in sink.get("copies", []) if int(n) < WARMUP_BASE}
    window = max(first.values(), default=sent["first_sent"]) - sent["first_sent"]
    cpu = extra.get("server_cpu_s", float("nan"))
    database = extra.get("router_db")
    undelivered = acked - first.keys()
    queued = undelivered & set(database.pop("queued")) if database else set()
    return {
        "target": name,
        "phase": phase.label,
        "offered_rate": phase.rate,
        "sent": sent["sent"],
        "acked": sent["acked"],
        "ingest_errors": sent["error_kinds"],
        "ingest_p99_ms": sent["ingest_p99_ms"],
        "max_send_lag_ms": sent["max_send_lag_ms"],
        "delivered": len(delivered),
        "delivered_per_s": round(len(delivered) / window, 1) if window > 0 else 0.0,
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * latencies[-1], 2) if latencies else float("nan"),
        "lost": len(undelivered - queued),
        "queued": len(queued) if database else None,
        "delivered_not_acked": len(first.keys() - acked),
        "unknown_delivered": len(first.keys() - sent_at.keys()),
        "duplicates": sum(k - 1 for k in copies.values()),
        "webhook_requests": sink.get("requests"),
        "unparsed_requests": sink.get("unparsed"),
        "peak_rss_mib": round(extra.get("memory_kib", {}).get("VmHWM", 0) / 1024, 1),
        "server_cpu_s": round(cpu, 2),
        "sink_cpu_s": round(extra.get("sink_cpu_s", float("nan")), 2),
        "loadgen_cpu_s": round(extra.get("loadgen_cpu_s", float("nan")), 2),
        "others_cpu_pct": round(100 * extra["others_cpu_s"] / extra["wall_s"], 1)
        if extra.get("wall_s")
        else None,
        "server_us_per_alert": round(1e6 * cpu / len(delivered), 1) if delivered else None,
        "drain_s": extra.get("drain_s"),
        "router_db": database,
    }


def find(results: Sequence[Result], target: str, label: str) -> Result | None:
    """The result of one target and phase, if measured."""
    return next((r for r in results if r["target"] == target and r["phase"] == label), None)


def verdicts(results: Sequence[Result], phases: Sequence[Phase]) -> list[Result]:
    """The issue's targets, each as a router/Alertmanager ratio and PASS/FAIL."""
    out: list[Result] = []

    def pair(label: str) -> tuple[Result, Result] | None:
        router, am = find(results, "router", label), find(results, "alertmanager", label)
        return None if router is None or am is None else (router, am)

    if (both := pair("max")) is not None:
        router, am = both
        ratio = router["delivered_per_s"] / am["delivered_per_s"] if am["delivered_per_s"] else 0
        out.append(
            {
                "target": "delivered alerts/s, max: router ≥ Alertmanager, all delivered",
                "router": router["delivered_per_s"],
                "alertmanager": am["delivered_per_s"],
                "ratio": round(ratio, 3),
                "ok": ratio >= 1.0 and not (router["lost"] or router["queued"]),
            }
        )
    if (both := pair(f"{TARGET_P99_RATE:g}")) is not None:
        router, am = both
        ratio = router["p99_ms"] / am["p99_ms"] if am["p99_ms"] else math.inf
        out.append(
            {
                "target": f"p99 at {TARGET_P99_RATE:g}/s: router ≤ Alertmanager, all delivered",
                "router": router["p99_ms"],
                "alertmanager": am["p99_ms"],
                "ratio": round(ratio, 3),
                "ok": ratio <= 1.0 and not (router["lost"] or router["queued"]),
            }
        )
    open_rates = [p for p in phases if p.rate is not None]
    if open_rates and (both := pair(max(open_rates, key=lambda p: p.rate or 0).label)):
        router, am = both
        ratio = router["peak_rss_mib"] / am["peak_rss_mib"] if am["peak_rss_mib"] else math.inf
        out.append(
            {
                "target": f"peak RSS at {router['phase']}/s (same alerts offered to both): "
                "router < Alertmanager / 3",
                "router": router["peak_rss_mib"],
                "alertmanager": am["peak_rss_mib"],
                "ratio": round(ratio, 3),
                "ok": ratio < TARGET_RSS_FRACTION,
            }
        )
    return out


def print_table(results: Sequence[Result]) -> None:
    """One row per target and phase."""
    header = (
        f"{'target':<12} {'rate':>5} {'sent':>6} {'acked':>6} {'deliv':>6} {'deliv/s':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>5} {'queued':>6} {'dup':>4} "
        f"{'RSS MiB':>7} "
        f"{'µs/alert':>8} {'in p99':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        per_alert = r["server_us_per_alert"]
        print(
            f"{r['target']:<12} {r['phase']:>5} {r['sent']:>6} {r['acked']:>6} "
            f"{r['delivered']:>6} {r['delivered_per_s']:>7.0f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['max_ms']:>8.1f} {r['lost']:>5} "
            f"{'-' if r['queued'] is None else r['queued']:>6} {r['duplicates']:>4} "
            f"{r['peak_rss_mib']:>7.1f} {per_alert if per_alert is not None else '-':>8} "
            f"{r['ingest_p99_ms']:>7.1f}"
        )
    print(LEGEND)


def print_notes(results: Sequence[Result]) -> None:
    """What the table does not show: ingest errors, router outbox left-overs, odd arrivals."""
    for r in results:
        notes = []
        if r["ingest_errors"]:
            notes.append(f"ingest errors {r['ingest_errors']}")
        if r["delivered_not_acked"] or r["unknown_delivered"] or r["unparsed_requests"]:
            notes.append(
                f"delivered but not acked {r['delivered_not_acked']}, unknown "
                f"{r['unknown_delivered']}, unparsed requests {r['unparsed_requests']}"
            )
        if (others := r["others_cpu_pct"]) is not None and others > NOISY_PCT:
            notes.append(f"other processes used {others:.0f} % of a core: noisy")
        if (lag := r["max_send_lag_ms"]) is not None and lag > 10:
            notes.append(f"the load generator fell {lag:.0f} ms behind its schedule")
        db = r.get("router_db")
        if db is not None:
            left = {k: v for k, v in db["outbox"].items() if k != "sent"}
            if db["acked_not_stored"] or left:
                notes.append(
                    f"router database after SIGKILL: {db['acked_not_stored']} acked alerts not "
                    f"stored, notifications not sent {left}"
                )
        if notes:
            print(f"  {r['target']} {r['phase']}: " + "; ".join(notes))


def print_verdicts(found: Sequence[Result]) -> None:
    """PASS/FAIL per target, with both figures and the ratio."""
    print()
    for v in found:
        mark = "PASS" if v["ok"] else "FAIL"
        print(
            f"{mark}  {v['target']}: router {v['router']:g}, alertmanager {v['alertmanager']:g}"
            f" → router/AM = {v['ratio']:.2f}"
        )


def _frame(text: str) -> str:
    """`name (file.py:123)` → `name (file.py)`: samples of one function add up."""
    head, _, line = text.rpartition(":")
    return f"{head})" if head and line.rstrip(")").isdigit() else text


def summarise_profile(path: Path, top: int = 14) -> None:
    """Where the router's CPU went, from a `py-spy record --format raw --threads` file.

    Per thread, the share of all (non-idle) samples; then, per router function, the samples
    in it or in the library code it called but not in another router function ("own"), and
    the samples in it or below ("inclusive", leaving out frames present in nearly every
    sample of their thread: entry points).
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    stacks: list[tuple[str, list[str], int]] = []
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        thread, *frames = stack.split(";")
        thread = thread.split(":", 1)[-1].strip()
        stacks.append((thread, [_frame(f) for f in frames], int(count_text)))
        threads[thread] += int(count_text)
    total = sum(threads.values())
    if not total:
        return
    for thread, frames, count in stacks:
        mine = [f for f in frames if "(router/" in f]
        own[f"{thread}: {mine[-1] if mine else frames[-1]}"] += count
        for frame in set(mine):
            inclusive[f"{thread}: {frame}"] += count
    print(f"\npy-spy: {total} non-idle samples in {path}")
    for thread, count in threads.most_common():
        print(f"  {count / total:6.1%}  thread {thread}")
    print("  own (router function plus the library code it calls):")
    for frame, count in own.most_common(top):
        print(f"  {count / total:6.1%}  {frame}")
    print("  inclusive:")
    entry = {f for f, c in inclusive.items() if c >= 0.9 * threads[f.split(":", 1)[0]]}
    ranked = [(f, c) for f, c in inclusive.most_common() if f not in entry]
    for frame, count in ranked[:top]:
        print(f"  {count / total:6.1%}  {frame}")


# -- the run ---------------------------------------------------------------------------------


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


def parse_rates(text: str) -> list[float]:
    """`100,1000,4000` → [100.0, 1000.0, 4000.0]."""
    rates = [float(part) for part in text.split(",") if part.strip()]
    if any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        type=parse_rates,
        default=[100.0, 1000.0, 4000.0],
        help="open-loop rates, alerts/s, comma-separated (default 100,1000,4000)",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per phase")
    parser.add_argument(
        "--max",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the closed loop, as fast as possible (default)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop workers")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds at 200/s")
    parser.add_argument("--quiet", type=float, default=2.0, help="quiet seconds that end a phase")
    parser.add_argument("--drain", type=float, default=30.0, help="at most this long after sends")
    parser.add_argument(
        "--targets",
        default="alertmanager,router",
        help="comma-separated, in the order each phase runs them (default alertmanager,router)",
    )
    parser.add_argument("--alertmanager", default=ALERTMANAGER, help="the Alertmanager binary")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy record the router during its --profile-rate phase into this raw file",
    )
    parser.add_argument("--profile-rate", type=float, default=TARGET_P99_RATE)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, records)")
    parser.add_argument(
        "--router-env",
        action="append",
        type=router_setting,
        default=[],
        metavar="KEY=VALUE",
        help="a ROUTER_* setting for the router (repeatable), e.g. ROUTER_DELIVERY_WORKERS=0",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Every phase for every target, then the table, the notes and the verdicts."""
    args = parse_args(argv)
    ROUTER_ENV_OVERRIDES.update(args.router_env)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if "alertmanager" in targets and not Path(args.alertmanager).exists():
        print(f"{args.alertmanager} not found (Debian: prometheus-alertmanager)", file=sys.stderr)
        return 1
    if args.profile is not None and py_spy() is None:
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    phases = [Phase(rate) for rate in args.rates] + ([Phase(None)] if args.max else [])
    workdir = Path(tempfile.mkdtemp(prefix="router-delivery-"))
    under_test = revision()
    print(f"router revision {under_test}", flush=True)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: 1-minute load average is {load:.2f}; figures will be noisy")
    began = time.monotonic()
    results: list[Result] = []
    try:
        for phase in phases:
            for name in targets:
                result = run_phase(name, phase, args, workdir / f"{name}-{phase.label}")
                results.append(result)
                print(
                    f"[{name} {phase.label}] sent {result['sent']}, delivered "
                    f"{result['delivered']} ({result['delivered_per_s']:.0f}/s), p99 "
                    f"{result['p99_ms']:.2f} ms, lost {result['lost']}, dup "
                    f"{result['duplicates']}, peak RSS {result['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
    except BenchError as err:
        print(f"benchmark failed: {err} (kept {workdir})", file=sys.stderr)
        return 1
    found = verdicts(results, phases)
    print_table(results)
    print_notes(results)
    print_verdicts(found)
    if args.profile is not None and args.profile.exists():
        summarise_profile(args.profile)
    print(f"\ntotal wall time {time.monotonic() - began:.0f} s; cpus: {os.cpu_count()}")
    if args.json is not None:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        document = {
            "settings": settings,
            "revision": under_test,
            "cpus": os.cpu_count(),
            "results": results,
            "verdicts": found,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    unstored = sum((r["router_db"] or {}).get("acked_not_stored", 0) for r in results)
    if args.keep or unstored:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir)
    return 1 if unstored else 0


if __name__ == "__main__":
    sys.exit(main())
