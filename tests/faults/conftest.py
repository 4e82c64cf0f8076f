"""Fault harness: a committed database of its own, real API and worker processes to kill -9.

The suite's usual database wraps each test in a rolled-back transaction, which a separate
process cannot see. Fault tests need what a crash really leaves behind, so each run creates a
dedicated database (migrated to head), seeds it with committed data, and drops it at the end.
Processes are started in their own session so a SIGKILL reaches the gunicorn master and its
workers together, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tests.databases import create_database, drop_database, sibling_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "fault-test-secret-key-with-enough-length-for-hs256"
DATA_KEY = "dGVzdC1kYXRhLWtleS1mb3ItZ3JpZHdvcmstdGVzdHM"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ephemeral_ports() -> range:
    """The ports the kernel hands out for bind(0) and outgoing connections."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def lasting_port() -> int:
    """A free loopback port below the kernel's ephemeral range, for a server the test stops and
    starts again on the same port (a database restart): while it is down no other process can
    be given the port by bind(0) (another worker's `free_port`) or by an outgoing connection,
    as one from `free_port` could."""
    top = ephemeral_ports().start
    for _ in range(100):
        port = random.randrange(max(1024, top - 20_000), top)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {top} after 100 tries")


def process_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDWORK_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=database_url,
        GRIDWORK_SECRET_KEY=SECRET,
        GRIDWORK_DATA_KEY=DATA_KEY,
        GRIDWORK_LOG_LEVEL="WARNING",
        GRIDWORK_PUSH_BACKEND="off",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@dataclass
class Process:
    """A child process in its own session: `kill()` is a SIGKILL to that whole group."""

    argv: list[str]
    env: Mapping[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        out = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=dict(self.env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """kill -9 the process and every process it started (gunicorn workers)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self.kill()
        elif self.popen is not None:
            # The leader is gone; its workers must not outlive the test.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


class PortTaken(Exception):
    """gunicorn could not bind its port: another process took it after `free_port` chose it."""


@dataclass
class ApiServer:
    """The API under gunicorn on a free loopback port."""

    database_url: str
    log: Path
    workers: int = 2
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60, attempts: int = 3) -> ApiServer:
        """Start gunicorn and wait for it to answer. The port was free when chosen, but another
        process (another xdist worker's) may bind it before gunicorn does: then another port."""
        for _ in range(attempts - 1):
            try:
                return self._start(timeout)
            except PortTaken:
                self.port = free_port()
        return self._start(timeout)

    def _start(self, timeout: float) -> ApiServer:
        logged = self.log.stat().st_size if self.log.exists() else 0
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--timeout",
            "60",
            "api:create_app()",
        ]
        self.process = Process(argv, process_env(self.database_url), self.log).start()
        deadline = time.monotonic() + timeout
        listening = f"Listening at: {self.url}"
        while time.monotonic() < deadline:
            if not self.process.alive():
                if "Connection in use" in self._logged_since(logged):
                    raise PortTaken(self.port)
                raise RuntimeError(f"gunicorn exited; see {self.log}:\n{self.log.read_text()}")
            # Only our gunicorn's answer: another process may hold the port meanwhile.
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=2) as response,
            ):
                if response.status == 200 and listening in self._logged_since(logged):
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout}s; see {self.log}")

    def _logged_since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def call(
    url: str,
    method: str = "GET",
    body: object = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], object]:
    """One HTTP request: (status, headers, parsed JSON body or raw text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, head, raw = exc.code, dict(exc.headers), exc.read()
    try:
        parsed: object = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, head, parsed


@dataclass
class Seeded:
    """What the committed world holds, as plain values other processes can use."""

    url: str
    engine: Engine
    tokens: dict[str, str]
    user_ids: dict[str, int]
    households: dict[str, list[int]]

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def fault_app(database_url: str):
    from api import create_app

    return create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "DATA_KEY": DATA_KEY,
            "LOG_LEVEL": "WARNING",
            "PASSWORD_HASHING": "fast",
        }
    )


def seed_world(database_url: str) -> Seeded:
    """The factories' small world, committed, with access tokens good for any process."""
    from api.extensions import db
    from tests.factories import bearer, build_world

    app = fault_app(database_url)
    with app.app_context():
        with db.begin() as session:
            world = build_world(session, app)
            tokens = {n: bearer(u)["Authorization"].split()[1] for n, u in world.users.items()}
            user_ids = {n: u.id for n, u in world.users.items()}
            households = {c: [h.id for h in hs] for c, hs in world.households.items()}
        db.engine.dispose()
    return Seeded(database_url, create_engine(database_url), tokens, user_ids, households)


@pytest.fixture(scope="session")
def fault_database_url(database_url) -> Iterator[str]:
    """A committed database of its own for this run, next to the suite's test database."""
    url = sibling_url(database_url, "_faults")
    create_database(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def seeded(fault_database_url) -> Iterator[Seeded]:
    world = seed_world(fault_database_url)
    yield world
    world.engine.dispose()


@pytest.fixture
def api_server(seeded, tmp_path) -> Iterator[ApiServer]:
    server = ApiServer(seeded.url, tmp_path / "gunicorn.log").start()
    yield server
    server.stop()


def wait_until(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
