"""A real Prometheus Alertmanager sends its real webhooks to a real `router serve`.

Alerts go into Alertmanager's own API; Alertmanager groups them, posts them to the router's
`/api/v1/alerts/alertmanager` with a bearer token, re-posts firing groups every
`repeat_interval` and posts the resolution. What the router makes of that is read back from
its `/api/v1/incidents`. Skipped where Alertmanager is not installed, failed in CI.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services import (
    RouterProcess,
    free_port,
    http_json,
    http_request,
    require_binary,
    wait_until,
)

AM_TOKEN = "alertmanager-e2e-token-0123456789"
REPEAT_INTERVAL = "2s"
# Alertmanager flushes its groups on its own timers; this bounds each wait for one webhook.
WEBHOOK_WAIT = 20.0


def alertmanager_config(router_url: str) -> str:
    """alertmanager.yml (0.25 syntax): one webhook receiver, fast timers for a test."""
    return f"""\
route:
  receiver: router
  group_by: [alertname, pipeline]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: {REPEAT_INTERVAL}
receivers:
  - name: router
    webhook_configs:
      - url: {router_url}/api/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {AM_TOKEN}
"""


@dataclass
class Stack:
    """A router and the Alertmanager that sends to it."""

    router: RouterProcess
    alertmanager_url: str

    def push(self, labels: dict[str, str], summary: str, *, resolved: bool = False) -> None:
        """POST one alert to Alertmanager's API v2; `resolved` gives it an `endsAt` in the past."""
        now = datetime.now(UTC)
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": (now - timedelta(minutes=5)).isoformat(),
            "generatorURL": "http://prometheus.invalid/graph",
        }
        if resolved:
            alert["endsAt"] = (now - timedelta(seconds=1)).isoformat()
        status, body = http_json("POST", f"{self.alertmanager_url}/api/v2/alerts", [alert])
        assert status == 200, body

    def incidents_named(self, alertname: str) -> list[dict[str, Any]]:
        """The router's incidents (all statuses) for one alert name."""
        status, body = self.router.get("/api/v1/incidents?limit=1000")
        assert status == 200, body
        return [i for i in body["incidents"] if i["name"] == alertname]

    def incident(self, incident_id: int) -> dict[str, Any]:
        status, body = self.router.get(f"/api/v1/incidents/{incident_id}")
        assert status == 200, body
        result: dict[str, Any] = body
        return result


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> bool | None:
    if process.poll() is not None:
        pytest.fail(f"alertmanager exited with {process.returncode}:\n{log.read_text()}")
    try:
        status, _ = http_request("GET", f"{url}/-/ready", timeout=1)
    except OSError:
        return None
    return True if status == 200 else None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    binary = require_binary(
        "alertmanager",
        "the end-to-end test runs the real Alertmanager (Debian: prometheus-alertmanager)",
        aliases=("prometheus-alertmanager",),
    )
    tokens = {"alertmanager": AM_TOKEN}
    with RouterProcess(tmp_path / "router", tokens=tokens) as router:
        config = tmp_path / "alertmanager.yml"
        config.write_text(alertmanager_config(router.base_url))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "alertmanager.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={tmp_path / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    # Empty disables clustering: no gossip port, no waiting to settle.
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        try:
            wait_until(
                lambda: _wait_ready(url, process, log), timeout=20, what="alertmanager /-/ready"
            )
            yield Stack(router, url)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _report(stack: Stack, tmp_path: Path) -> str:
    """Both logs, for an assertion message when the chain breaks somewhere."""
    am_log = (tmp_path / "alertmanager.log").read_text(errors="replace")
    return f"--- router ---\n{stack.router.log()}\n--- alertmanager ---\n{am_log}"


def test_alertmanager_firing_repeats_and_resolution_make_one_incident_that_resolves(
    stack: Stack, tmp_path: Path
) -> None:
    labels = {
        "alertname": "ProfitTableStale",
        "pipeline": "aggregate-profit",
        "severity": "critical",
    }
    summary = "aggregate_profit table not refreshed for 3 hours"
    stack.push(labels, summary)

    first = wait_until(
        lambda: next(iter(stack.incidents_named("ProfitTableStale")), None),
        timeout=WEBHOOK_WAIT,
        what="the router's incident for Alertmanager's first webhook",
    )
    assert first["pipeline"] == "aggregate-profit"
    assert first["summary"] == summary
    assert first["severity"] == "critical"
    assert first["status"] == "open"
    assert "unknown_pipeline" not in first["flags"]
    alert = stack.incident(first["id"])["alerts"][0]
    assert (alert["source"], alert["caller"]) == ("alertmanager", "alertmanager")
    assert alert["labels"] == labels

    # Alertmanager re-sends the still-firing group every repeat_interval: a repeat.
    repeated = wait_until(
        lambda: next(
            (i for i in stack.incidents_named("ProfitTableStale") if i["count"] > 1), None
        ),
        timeout=WEBHOOK_WAIT,
        what=f"Alertmanager's re-send after repeat_interval {REPEAT_INTERVAL}",
    )
    assert [i["id"] for i in stack.incidents_named("ProfitTableStale")] == [first["id"]], _report(
        stack, tmp_path
    )
    assert repeated["status"] == "open"
    assert len(stack.incident(first["id"])["alerts"]) >= 2

    stack.push(labels, summary, resolved=True)
    resolved = wait_until(
        lambda: next(
            (i for i in stack.incidents_named("ProfitTableStale") if i["status"] == "resolved"),
            None,
        ),
        timeout=WEBHOOK_WAIT,
        what="the router to resolve the incident from Alertmanager's resolved webhook",
    )
    assert resolved["id"] == first["id"]
    assert resolved["resolved_by"] == "alertmanager"
    assert len(stack.incidents_named("ProfitTableStale")) == 1, _report(stack, tmp_path)
    actions = [a["action"] for a in stack.incident(first["id"])["alerts"]]
    assert actions[0] == "trigger"
    assert actions[-1] == "resolve"


def test_alertmanager_alert_for_an_unknown_pipeline_opens_a_flagged_incident(
    stack: Stack,
) -> None:
    labels = {
        "alertname": "MysteryJobFailed",
        "pipeline": "no-such-pipeline",
        "severity": "warning",
    }
    stack.push(labels, "a job nobody registered failed")

    incident = wait_until(
        lambda: next(iter(stack.incidents_named("MysteryJobFailed")), None),
        timeout=WEBHOOK_WAIT,
        what="the router's incident for the unknown pipeline",
    )
    assert incident["pipeline"] == "no-such-pipeline"
    assert "unknown_pipeline" in incident["flags"]
    assert incident["status"] == "open"
    assert incident["escalation"] == "investor"  # routing.fallback_escalation of config/
