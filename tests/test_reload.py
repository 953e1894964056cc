"""SIGHUP re-reads the team model: a valid change takes effect without a restart; a broken
file is logged and the old model keeps serving."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from services import SHIPPED_CONFIG, RouterProcess, wait_until

DANA_FIRST = "order: [Dana, Alice, Bob, Charlie]"


def _config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, folder)
    return folder


def _primary(router: RouterProcess) -> object:
    status, body = router.get("/api/v1/oncall?at=2026-11-24T12:00")
    assert status == 200
    return body["primary"]


def test_sighup_with_a_valid_change_takes_effect_without_a_restart(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with RouterProcess(tmp_path, config=config) as router:
        assert _primary(router) == "Alice"
        digest = router.get("/status")[1]["config"]["digest"]
        team = config / "team.yaml"
        team.write_text(team.read_text().replace("order: [Alice, Bob, Charlie, Dana]", DANA_FIRST))
        router.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: True if _primary(router) == "Dana" else None,
            timeout=10,
            what="the reloaded rotation",
        )
        status = router.get("/status")[1]
        assert status["config"]["digest"] != digest
        assert "config.reloaded" in router.events()
        assert router.process.poll() is None


def test_sighup_with_a_broken_file_keeps_the_old_model_and_logs_why(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with RouterProcess(tmp_path, config=config) as router:
        digest = router.get("/status")[1]["config"]["digest"]
        team = config / "team.yaml"
        team.write_text(team.read_text().replace("name: Bob", "name: Bob\n  bad: [") + "\n")
        router.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: True if "config.reload_failed" in router.events() else None,
            timeout=10,
            what="the failure log",
        )
        assert _primary(router) == "Alice"
        assert router.get("/status")[1]["config"]["digest"] == digest
        assert "team.yaml" in router.log()
        assert router.process.poll() is None
