"""`router serve` as a real process: starts on the shipped config, answers, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "serve-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wait_until_serving(base: str, process: subprocess.Popen[bytes]) -> None:
    """Poll /healthz until the daemon answers (start-up time, not test logic)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"router serve exited early with {process.returncode}")
        try:
            if _get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail("router serve did not answer /healthz within 20 s")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = {
        **os.environ,
        "ROUTER_PORT": str(port),
        "ROUTER_CONFIG": str(ROOT / "config"),
        "ROUTER_INBOUND_TOKENS": json.dumps({"test": TOKEN}),
        "ROUTER_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "router", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base, process)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_serve_answers_health_and_oncall_then_exits_0_on_sigterm(
    daemon: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, process = daemon
    status, body = _get(f"{base}/api/v1/oncall?at=2026-11-30T09:00", TOKEN)
    assert status == 200
    assert (body["week"], body["primary"], body["backup"]) == (6, "Bob", "Charlie")
    assert _get(f"{base}/api/v1/oncall")[0] == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    _, stderr = process.communicate(timeout=5)
    events = [json.loads(line)["event"] for line in stderr.decode().splitlines() if line]
    assert "router.starting" in events
    # An operator reading the log at 3 a.m. sees that it stopped, and that it meant to.
    assert "router.stopping" in events
    assert events[-1] == "router.stopped", events[-5:]
    assert TOKEN not in stderr.decode()


def test_serve_on_a_busy_port_exits_1_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = {
            **os.environ,
            "ROUTER_PORT": str(busy.getsockname()[1]),
            "ROUTER_CONFIG": str(ROOT / "config"),
            "ROUTER_LOG_FORMAT": "json",
        }
        result = subprocess.run(
            [sys.executable, "-m", "router", "serve"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert b"router.cannot_listen" in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ROUTER_PORT", "eighty", "ROUTER_PORT: Input should be a valid integer"),
        ("ROUTER_INBOUND_TOKENS", "{not json", 'field "inbound_tokens"'),
        ("ROUTER_LOG_LEVEL", "loud", "ROUTER_LOG_LEVEL"),
        ("ROUTER_CONFIG", "/no/such/folder", "/no/such/folder: no such file or folder"),
    ],
)
def test_serve_with_a_bad_setting_exits_2_naming_it(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = {**os.environ, "ROUTER_CONFIG": str(ROOT / "config"), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_send_test_alert_reaches_the_running_router_and_opens_an_incident(
    daemon: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base, _ = daemon
    env = {
        **os.environ,
        "ROUTER_PORT": base.rsplit(":", 1)[1],
        "ROUTER_CONFIG": str(ROOT / "config"),
        "ROUTER_INBOUND_TOKENS": json.dumps({"test": TOKEN}),
    }
    command = [sys.executable, "-m", "router", "send-test-alert"]
    sent = subprocess.run(
        [*command, "aggregate-growth"], env=env, capture_output=True, timeout=30, check=False
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(b"HTTP 202")
    status, body = _get(f"{base}/api/v1/incidents", TOKEN)
    assert status == 200
    incidents = body["incidents"]
    assert isinstance(incidents, list)
    assert [i["pipeline"] for i in incidents] == ["aggregate-growth"]
    unknown = subprocess.run(
        [*command, "no-such-pipeline"], env=env, capture_output=True, timeout=30, check=False
    )
    assert unknown.returncode == 2
    assert b"no pipeline 'no-such-pipeline'" in unknown.stderr
