"""Real processes for end-to-end tests: system binaries, free ports, a `router serve` daemon.

A test that needs a system service (Alertmanager, PostgreSQL, …) asks `require_binary` for
it. On a laptop without it the test is skipped with the reason; in CI, where `.ci/run` sets
`ROUTER_REQUIRE_SERVICES=1` and installs every service, a missing binary fails the test
instead, so a broken install step cannot turn into a green run that tested nothing.
"""

from __future__ import annotations

__all__ = [
    "REQUIRE_SERVICES",
    "SHIPPED_CONFIG",
    "TOKEN",
    "AlertmanagerProcess",
    "RouterProcess",
    "free_port",
    "http_json",
    "http_request",
    "require_binary",
    "wait_until",
]

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import pytest

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO_ROOT / "config"
REQUIRE_SERVICES = "ROUTER_REQUIRE_SERVICES"
TOKEN = "e2e-test-token-0123456789"
_SYSTEM_DIRS = ("/usr/bin", "/usr/sbin")
_POLL_INTERVAL = 0.05


def require_binary(name: str, why: str, *, aliases: Sequence[str] = ()) -> str:
    """The path of `name` (or of one of its `aliases`, as distributions rename binaries).

    Looks on PATH, then in /usr/bin and /usr/sbin (often missing from a non-root PATH). When
    none is found the calling test is skipped, or failed under `ROUTER_REQUIRE_SERVICES=1`.
    """
    system_path = os.pathsep.join(_SYSTEM_DIRS)
    for candidate in (name, *aliases):
        found = shutil.which(candidate) or shutil.which(candidate, path=system_path)
        if found is not None:
            return found
    names = " or ".join(repr(n) for n in (name, *aliases))
    reason = f"{names} is not installed (looked on PATH, /usr/bin, /usr/sbin): {why}"
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason}; {REQUIRE_SERVICES}=1 says this machine must have it (.ci/run)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Call `probe` until it returns something other than None; fail after `timeout` s.

    For waiting on another process (start-up, a webhook Alertmanager sends on its own
    schedule): the test's logic never depends on how long the wait took.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(_POLL_INTERVAL)


def http_request(
    method: str, url: str, body: object = None, token: str | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    """One request with an optional JSON body and bearer token → (status, raw body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def http_json(
    method: str, url: str, body: object = None, token: str | None = None, timeout: float = 5
) -> tuple[int, Any]:
    """`http_request` with the answer parsed as JSON (None for an empty body)."""
    status, raw = http_request(method, url, body, token, timeout)
    return status, json.loads(raw) if raw.strip() else None


class RouterProcess:
    """`python -m router serve` as a real process on a free loopback port.

    Use as a context manager: entering starts it and waits for `/healthz`, leaving kills it
    if it still runs. Its stdout and stderr go to a file in `workdir` (a pipe nobody reads
    would fill up and stall the daemon), readable with `log()`. The SQLite file defaults to
    `workdir/router.db`, so two processes on one `workdir` share the database.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        config: Path = SHIPPED_CONFIG,
        database: Path | None = None,
        tokens: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 20,
    ) -> None:
        self.workdir = workdir
        self.database = database if database is not None else workdir / "router.db"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"router-{self.port}.log"
        self.startup_timeout = startup_timeout
        tokens = tokens or {"test": TOKEN}
        self.token = next(iter(tokens.values()))
        self._env = self._environment(config, tokens, env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _environment(
        self, config: Path, tokens: Mapping[str, str], extra: Mapping[str, str]
    ) -> dict[str, str]:
        # Settings of the developer's shell (ROUTER_*) must not leak into the daemon under test.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        return {
            **inherited,
            "ROUTER_HOST": "127.0.0.1",
            "ROUTER_PORT": str(self.port),
            "ROUTER_CONFIG": str(config),
            "ROUTER_DATABASE_URL": f"sqlite:///{self.database.resolve()}",
            "ROUTER_INBOUND_TOKENS": json.dumps(dict(tokens)),
            "ROUTER_PUBLIC_URL": self.base_url,
            "ROUTER_LOG_FORMAT": "json",
            **extra,
        }

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running (or exited) process; only after `start()`."""
        if self._process is None:
            raise RuntimeError("RouterProcess.start() has not been called")
        return self._process

    def start(self) -> Self:
        """Start the daemon and return once `/healthz` answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "router", "serve"],
            cwd=self.workdir,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # its own process group: the daemon and its workers
        )
        try:
            wait_until(self._healthy, timeout=self.startup_timeout, what=f"router {self.base_url}")
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool | None:
        if self.process.poll() is not None:
            self.stop()
            pytest.fail(f"router serve exited with {self.process.returncode}:\n{self.log()}")
        try:
            status, _ = http_request("GET", f"{self.base_url}/healthz", timeout=1)
        except OSError:
            return None
        return True if status == 200 else None

    def get(self, path: str) -> tuple[int, Any]:
        """GET `path` with the (first) bearer token."""
        return http_json("GET", f"{self.base_url}{path}", token=self.token)

    def kill9(self) -> None:
        """SIGKILL to the daemon and its delivery workers at once, as a crash of the machine
        or the container would: no shutdown hook runs, nothing is flushed. Waits for the
        daemon to end."""
        self._kill_group()
        self.process.wait(timeout=10)

    def kill9_server_only(self) -> None:
        """SIGKILL to the serving process alone; its delivery workers live on."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """The delivery worker processes (the daemon's children) alive now."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # everyone in it is gone already
            os.killpg(self.process.pid, signal.SIGKILL)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, the orderly stop; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill the daemon and its workers if they still run, and close the log; safe to call
        twice."""
        if self._process is not None:
            self._kill_group()
            self._process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        """Everything the daemon wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[str]:
        """The `event` of each JSON log line, in order."""
        found = []
        for line in self.log().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("event"), str):
                found.append(record["event"])
        return found

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class AlertmanagerProcess:
    """A real Prometheus Alertmanager (0.25 flags) on a free loopback port whose one receiver
    posts to `webhook_url` with a bearer `token`, `send_resolved: true`.

    `binary` comes from `require_binary("alertmanager", …, aliases=("prometheus-alertmanager",))`.
    Groups flush at once (`group_wait: 0s`, `group_interval: 1s`); `repeat_interval` sets how
    often a firing group is sent again. Use as a context manager: entering starts it and waits
    for `/-/ready`, leaving stops it (SIGTERM, then SIGKILL). Its log is `workdir/alertmanager.log`.
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        webhook_url: str,
        token: str,
        repeat_interval: str = "1h",
        startup_timeout: float = 20,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "alertmanager.log"
        self.config_path = workdir / "alertmanager.yml"
        self.startup_timeout = startup_timeout
        self._config = f"""\
route:
  receiver: router
  group_by: [alertname, pipeline]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: {repeat_interval}
receivers:
  - name: router
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start Alertmanager and return once `/-/ready` answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config)
        with self.log_path.open("wb") as sink:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.path={self.workdir / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    # Empty disables clustering: no gossip port, no waiting to settle.
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        try:
            wait_until(self._ready, timeout=self.startup_timeout, what=f"alertmanager {self.url}")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool | None:
        assert self._process is not None
        if self._process.poll() is not None:
            pytest.fail(f"alertmanager exited with {self._process.returncode}:\n{self.log()}")
        try:
            status, _ = http_request("GET", f"{self.url}/-/ready", timeout=1)
        except OSError:
            return None
        return True if status == 200 else None

    def push(self, labels: Mapping[str, str], summary: str, *, resolved: bool = False) -> None:
        """POST one alert to Alertmanager's API v2; `resolved` gives it an `endsAt` in the past."""
        now = datetime.now(UTC)
        alert: dict[str, Any] = {
            "labels": dict(labels),
            "annotations": {"summary": summary},
            "startsAt": (now - timedelta(minutes=5)).isoformat(),
            "generatorURL": "http://prometheus.invalid/graph",
        }
        if resolved:
            alert["endsAt"] = (now - timedelta(seconds=1)).isoformat()
        status, body = http_json("POST", f"{self.url}/api/v2/alerts", [alert])
        assert status == 200, body

    def stop(self) -> None:
        """SIGTERM (SIGKILL if it lingers); safe to call twice."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self) -> str:
        """Everything Alertmanager logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
