"""A real PostgreSQL for the tests: the machine's `initdb`/`pg_ctl`, in a temporary folder.

One server per test session (`PostgresServer.start`), one fresh database per test
(`new_database`). Without PostgreSQL installed the tests that need it are skipped with the
reason, or failed under `ROUTER_REQUIRE_SERVICES=1` (.ci/run installs it), like every other
system service (tests/services.py). `initdb` refuses to run as root: as root the server runs
as the `postgres` user, in a folder handed to it.
"""

from __future__ import annotations

__all__ = ["PostgresServer"]

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from services import REQUIRE_SERVICES, free_port, require_binary

_VERSIONS = ("17", "16", "15", "14", "13")


def _binary(name: str) -> str:
    """`name` from PATH, or from Debian's /usr/lib/postgresql/<version>/bin (not on PATH)."""
    for version in _VERSIONS:
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if shutil.which(name) is None and candidate.exists():
            return str(candidate)
    return require_binary(name, "the PostgreSQL store tests start a real server")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason}; {REQUIRE_SERVICES}=1 says this machine must have it (.ci/run)")
    pytest.skip(reason)


class PostgresServer:
    """A throwaway PostgreSQL cluster listening on 127.0.0.1."""

    def __init__(self, folder: Path, port: int, user: str | None) -> None:
        self.folder = folder
        self.port = port
        self.user = user  # run the server binaries as this OS user (None: as ourselves)
        self.pg_ctl = _binary("pg_ctl")
        self._names = itertools.count(1)

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb and start a server, or skip/fail the calling test when that is impossible."""
        initdb = _binary("initdb")
        user = None
        folder = Path(tempfile.mkdtemp(prefix="router-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(folder)
                _unavailable("running as root and there is no 'postgres' user to run initdb as")
            user = "postgres"
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        server = cls(folder, free_port(), user)
        try:
            server._run(
                [initdb, "-D", str(server.data), "-U", "router", "-A", "trust", "--no-sync"]
            )
            server.start_server()
        except subprocess.CalledProcessError as err:
            log = folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            _unavailable(f"could not start PostgreSQL: {err}: {err.stderr}{tail}")
        return server

    @property
    def options(self) -> str:
        """Server settings: TCP on 127.0.0.1 only, the socket in our folder, no fsync."""
        return (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
            "-c max_connections=200"
        )

    @property
    def data(self) -> Path:
        """The cluster's data folder."""
        return self.folder / "data"

    def _run(self, argv: Sequence[str]) -> None:
        command = list(argv)
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for one of the server's databases."""
        return f"postgresql://router@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop_server(self) -> None:
        """Stop the server (fast: open connections are cut), keeping its data."""
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def start_server(self) -> None:
        """Start it again after `stop_server`."""
        log = str(self.folder / "server.log")
        self._run([self.pg_ctl, "-D", str(self.data), "-l", log, "-w", "-o", self.options, "start"])

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop_server()
        shutil.rmtree(self.folder, ignore_errors=True)
