"""`gridwork serve` and its signing key: every worker signs with the same one, or none starts.

gunicorn loads the app in each worker. Without GRIDWORK_SECRET_KEY each worker made a random key
of its own, so a token signed by one worker was refused by the other (about half of a signed-in
user's requests answered 401, and the workers' app signed them out at once). In development
`serve` now makes one key for the run, shared by its workers; in production it refuses to start.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import PASSWORD
from tests.faults.conftest import ROOT, ApiServer, Process, Seeded, call, process_env

SERVE = [sys.executable, "-m", "api.cli", "serve"]


def _without_secret(url: str, **extra: str) -> dict[str, str]:
    env = process_env(url, **extra)
    del env["GRIDWORK_SECRET_KEY"]
    return env


def test_a_development_servers_workers_share_one_signing_key(seeded: Seeded, tmp_path: Path):
    """A token signed by one worker is checked by the other: each worker in turn is kept busy
    reading a request whose body is still on its way, so the next request goes to the other."""
    server = ApiServer(seeded.url, tmp_path / "serve.log", workers=2)
    argv = [*SERVE, "--port", str(server.port), "--workers", "2"]
    env = _without_secret(seeded.url, GRIDWORK_ENV="development")
    server.process = Process(argv, env, server.log).start()
    try:
        _wait_healthy(server)
        with _busy(server) as finish_b:  # one worker (B) waits for a body
            status, _, tokens = call(
                server.url + "/api/v1/auth/token",
                "POST",
                {"username": "admin_a", "password": PASSWORD},
            )
            assert status == 200, tokens  # signed by the other worker (F)
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            with _busy(server):  # now F waits; B is let go and takes the next request
                finish_b()
                answers = [call(server.url + "/api/v1/auth/me", headers=bearer)[0]]
        answers += [call(server.url + "/api/v1/auth/me", headers=bearer)[0] for _ in range(8)]
        assert answers == [200] * 9
    finally:
        server.stop()


@contextlib.contextmanager
def _busy(server: ApiServer):
    """A worker kept busy: a sign-in whose body has not all arrived. Yields the function that
    sends the rest (and reads the answer); called at the latest on leaving."""
    body = b'{"username": "nobody-at-all", "password": "wrong"}'
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    conn.sendall(
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    time.sleep(1.0)  # taken by an idle worker, which now waits for the rest
    done = []

    def finish() -> None:
        if not done:
            conn.sendall(body[10:])
            assert conn.recv(4096).startswith(b"HTTP/1.1 ")
            conn.close()
            done.append(True)

    try:
        yield finish
    finally:
        finish()


@pytest.mark.parametrize("key", [None, "x" * 31])
def test_a_production_server_without_a_strong_signing_key_does_not_start(seeded: Seeded, key):
    """Without one, or with one shorter than HS256's 32 bytes (`x` was accepted)."""
    env = _without_secret(seeded.url, GRIDWORK_ENV="production")
    if key:
        env["GRIDWORK_SECRET_KEY"] = key
    done = subprocess.run(
        [*SERVE, "--port", "1"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode != 0
    assert "GRIDWORK_SECRET_KEY" in done.stderr
    assert "Booting worker" not in done.stderr


@pytest.mark.parametrize("name", ["GRIDWORK_SECRET_KEY_FALLBACKS", "GRIDWORK_JWT_SECRET_FALLBACKS"])
def test_a_production_server_with_a_weak_old_key_does_not_start(seeded: Seeded, name):
    """A fallback verifies as the key does: a token forged with a guessable old key would be
    accepted. The message names the setting and the entry, never a key."""
    env = process_env(seeded.url, GRIDWORK_ENV="production")
    env[name] = "old-key-long-enough-" + "o" * 32 + ", old-short-key"
    if name == "GRIDWORK_JWT_SECRET_FALLBACKS":
        env["GRIDWORK_JWT_SECRET"] = "jwt-key-long-enough-" + "j" * 32
    done = subprocess.run(
        [*SERVE, "--port", "1"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode != 0
    assert f"{name}" in done.stderr and "old-short-key" not in done.stderr
    assert "Booting worker" not in done.stderr


def _wait_healthy(server: ApiServer, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None and server.process.alive(), server.log.read_text()
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not answer in {timeout}s: {server.log.read_text()}")


def test_the_access_log_keeps_no_query_string(seeded: Seeded, tmp_path: Path):
    """A calendar feed's token travels in its URL (calendar apps send no header), and a
    household search carries what was searched: gunicorn's default access log wrote the whole
    request line. It writes the method and path, not the query."""
    server = ApiServer(seeded.url, tmp_path / "serve.log", workers=1)
    argv = [*SERVE, "--port", str(server.port), "--workers", "1"]
    server.process = Process(argv, process_env(seeded.url), server.log).start()
    try:
        _wait_healthy(server)
        status, _, _ = call(server.url + "/api/v1/workers/1/shifts.ics?token=feed-secret-7f3a")
        assert status == 403
    finally:
        server.stop()
    log = server.log.read_text()
    assert '"GET /api/v1/workers/1/shifts.ics HTTP/1.1" 403' in log
    assert "feed-secret-7f3a" not in log
