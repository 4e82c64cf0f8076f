"""The database restarting under a running API: clean 503 problems, then recovery, no restart.

The machine's shared PostgreSQL is never touched: each run starts a throwaway cluster of its own
(initdb + pg_ctl as the `postgres` user, PostGIS from the same installation) on a free port
that stays free while it is stopped (`lasting_port`), stops and starts it under a gunicorn API,
and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.test_tiles import tile_of
from tests.databases import create_database
from tests.factories import A1, centre
from tests.faults.conftest import (
    ApiServer,
    Seeded,
    call,
    ephemeral_ports,
    lasting_port,
    seed_world,
    wait_until,
)

PG_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path | None:
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: float(p.parent.name) if p.parent.name.replace(".", "").isdigit() else 0,
    )
    return versions[-1] if versions else None


def _postgis_available(bin_dir: Path) -> bool:
    share = (
        subprocess.run(
            [str(bin_dir.parent / "bin" / "pg_config"), "--sharedir"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or f"/usr/share/postgresql/{bin_dir.parent.name}"
    )
    return (Path(share) / "extension" / "postgis.control").exists()


@dataclass
class Cluster:
    """A PostgreSQL cluster of this test alone."""

    bin: Path
    data: Path
    run: Path
    port: int

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def pg_ctl(self, *args: str) -> None:
        command = self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args)
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.run} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=40"
        )
        self.pg_ctl("-l", str(self.data.parent / "postgres.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip(f"no initdb/pg_ctl under {PG_ROOT}: cannot start a throwaway cluster")
    if not _postgis_available(bin_dir):
        pytest.skip("PostGIS is not installed for the local PostgreSQL binaries")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot run pg_ctl as postgres")
    root = Path(tempfile.mkdtemp(prefix="gridwork-faults-pg-"))
    data, run = root / "data", root / "run"
    data.mkdir(mode=0o700)
    run.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        for path in (data, run):
            shutil.chown(path, "postgres", "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E"]
    command = ["runuser", "-u", "postgres", "--", *initdb] if os.geteuid() == 0 else initdb
    subprocess.run([*command, "UTF8"], check=True, capture_output=True, timeout=120)
    cluster = Cluster(bin_dir, data, run, lasting_port())
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def local_world(cluster) -> Iterator[Seeded]:
    url = cluster.url("gridwork_faults")
    create_database(url)
    seeded = seed_world(url)
    yield seeded
    seeded.engine.dispose()


@pytest.fixture
def server(local_world, tmp_path) -> Iterator[ApiServer]:
    api = ApiServer(local_world.url, tmp_path / "gunicorn.log").start()
    yield api
    api.stop()


def test_the_cluster_port_is_never_one_the_kernel_hands_out_while_it_is_down():
    """Stopped, the cluster's port is free: were it an ephemeral one (bind(0), as `free_port`
    chose it), another xdist worker's server or any outgoing connection could take it and the
    restart would fail."""
    ports = {lasting_port() for _ in range(20)}
    assert not ports & set(ephemeral_ports())
    assert all(1024 <= port < 65536 for port in ports)


def timed(server: ApiServer, path: str, local_world: Seeded, method: str = "GET", body=None):
    started = time.monotonic()
    status, headers, payload = call(
        server.url + path, method, body, local_world.auth("worker_a1"), timeout=20
    )
    return status, headers, payload, time.monotonic() - started


# A tile is served from a pool of its own (autocommit, no ping: api.db.closed_by_server).
TILE = "/api/v1/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*centre(A1), 14))
PATHS = [
    "/healthz",
    TILE,
    "/api/v1/grids",
    "/api/v1/tasks",
    "/api/v1/notifications/unread-count",
    "/api/v1/visits?week=2026-W47",
]


def test_requests_fail_with_503_problems_while_the_database_is_down_and_then_recover(
    cluster, local_world, server
):
    for path in PATHS:
        assert timed(server, path, local_world)[0] == 200, path
    gunicorn_pid = server.process.pid

    local_world.engine.dispose()
    cluster.stop("fast")
    try:
        for path in PATHS:
            status, headers, body, seconds = timed(server, path, local_world)
            assert status == 503, (path, body)
            assert headers["Content-Type"].startswith("application/problem+json")
            assert int(headers["Retry-After"]) > 0
            assert body["status"] == 503 and body["type"].endswith("/service-unavailable")
            assert seconds < 10, f"{path} took {seconds:.1f}s: a hang, not a clean failure"
        status, _, _, _ = timed(
            server, "/api/v1/visits/batch", local_world, "POST", {"visits": [{}]}
        )
        assert status == 503
    finally:
        cluster.start()

    # The same gunicorn, never restarted, serves again once the database is back.
    wait_until(
        lambda: timed(server, "/healthz", local_world)[0] == 200, what="recovery", timeout=30
    )
    for path in PATHS:
        assert timed(server, path, local_world)[0] == 200, path
    assert server.process.alive() and server.process.pid == gunicorn_pid


def test_the_first_request_after_a_quick_restart_succeeds(cluster, local_world, server):
    """Pooled connections died with the old server; pre-ping replaces them before use (the
    tile pool's checkout sees the server's farewell on the socket instead)."""
    for _ in range(4):  # warm both workers' pools
        assert timed(server, "/api/v1/grids", local_world)[0] == 200
        assert timed(server, TILE, local_world)[0] == 200
    local_world.engine.dispose()
    cluster.stop("fast")
    cluster.start()
    statuses = [
        timed(server, path, local_world)[0] for _ in range(6) for path in (TILE, "/api/v1/grids")
    ]
    assert statuses == [200] * 12


@pytest.mark.parametrize("kind", ["OperationalError", "InterfaceError"])
def test_a_lost_database_connection_is_a_503_problem_not_a_500(kind):
    """The driver's two ways of saying the database went away, raised inside a request."""
    import sqlalchemy.exc

    from api import create_app

    app = create_app(
        {
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
            "LOG_LEVEL": "CRITICAL",
            "GRIDWORK_ENV": "development",
        }
    )
    error = getattr(sqlalchemy.exc, kind)("SELECT 1", {}, Exception("connection is closed"))

    @app.get("/boom")
    def boom():
        raise error

    response = app.test_client().get("/boom")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
