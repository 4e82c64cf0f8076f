"""kill -9 of the API in a visit batch: the client retries the same UUIDs; none lost, none twice.

Two crash points cover what a client can observe:
- the API dies before its transaction commits (held mid-insert by a table lock the test owns),
  so nothing may be stored and the retry must store everything once;
- the API dies after the commit, before its answer reaches the client (killed on the first
  byte of the response), so the client believes it failed and the retry must store nothing new.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.faults.conftest import ApiServer, call, wait_until

BATCH = 500  # the largest batch the API takes: the longest window for the kill to land in


def batch(seeded, worker: str = "worker_a1", grid: str = "110101001001001") -> list[dict]:
    """A phone's backlog: BATCH visits to the worker's households, each with its own UUID."""
    import uuid

    start = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
    households = seeded.households[grid]
    items = []
    for i in range(BATCH):
        household_id = households[i % len(households)]
        items.append(
            {
                "id": str(uuid.uuid4()),
                "household_id": household_id,
                "visited_at": (start + timedelta(minutes=i)).isoformat(),
                "location": {"lon": 0.0, "lat": 0.0, "accuracy_m": 10.0, "datum": "wgs84"},
                "outcome": "met",
                "notes": f"fault test {i}",
            }
        )
    with seeded.engine.connect() as conn:
        located = {
            hid: (lon, lat)
            for hid, lon, lat in conn.execute(
                text(
                    "SELECT id, ST_X(location), ST_Y(location) FROM households WHERE id = ANY(:h)"
                ),
                {"h": households},
            )
        }
    for item in items:
        lon, lat = located[item["household_id"]]
        item["location"].update(lon=lon, lat=lat)
    return items


def stored(seeded, ids: list[str]) -> int:
    with seeded.engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM visits WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
        ).scalar_one()


def api_backends(seeded) -> list[tuple[int, str | None, str]]:
    """The API's connections to the fault database: (pid, wait_event_type, state)."""
    with seeded.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT pid, wait_event_type, state FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = 'gridwork'"
            )
        ).all()


def raw_post(server: ApiServer, path: str, body: object, headers: dict[str, str]) -> socket.socket:
    """Send a request and leave the answer unread: the client's side of a request in flight."""
    payload = json.dumps(body).encode()
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:  # reset by the dying server
        pass
    return b"".join(chunks)


def sync(server: ApiServer, seeded, items: list[dict]) -> list[str]:
    status, _, body = call(
        server.url + "/api/v1/visits/batch", "POST", {"visits": items}, seeded.auth("worker_a1")
    )
    assert status == 200, body
    return [r["status"] for r in body["results"]]


@pytest.fixture
def lock_engine(seeded):
    engine = create_engine(seeded.url)
    yield engine
    engine.dispose()


def test_a_batch_killed_before_its_commit_is_stored_once_when_retried(
    seeded, api_server, lock_engine, tmp_path
):
    items = batch(seeded)
    ids = [item["id"] for item in items]
    # Hold the visits table: the API gets as far as its INSERT and waits there, mid-request.
    with lock_engine.connect() as holder:
        holder.execute(text("LOCK TABLE visits IN SHARE MODE"))
        auth = seeded.auth("worker_a1")
        sock = raw_post(api_server, "/api/v1/visits/batch", {"visits": items}, auth)
        wait_until(
            lambda: any(wait == "Lock" for _, wait, _ in api_backends(seeded)),
            what="the API to block inside its transaction",
        )
        api_server.kill()  # kill -9 gunicorn, master and workers, mid-transaction
        answer = read_all(sock)
        sock.close()
        holder.rollback()  # let the orphaned backend run on: it must not commit
    assert b"HTTP/1.1 200" not in answer  # the client saw the request fail
    wait_until(lambda: not api_backends(seeded), what="the dead API's connections to end")
    assert stored(seeded, ids) == 0

    restarted = ApiServer(seeded.url, tmp_path / "gunicorn-2.log").start()
    try:
        assert sync(restarted, seeded, items) == ["created"] * BATCH
        assert stored(seeded, ids) == BATCH
        # The phone never learnt the retry succeeded either: a third send changes nothing.
        assert sync(restarted, seeded, items) == ["duplicate"] * BATCH
        assert stored(seeded, ids) == BATCH
    finally:
        restarted.stop()


def test_a_batch_whose_answer_is_lost_to_a_kill_is_not_stored_twice(seeded, api_server, tmp_path):
    items = batch(seeded)
    ids = [item["id"] for item in items]
    sock = raw_post(api_server, "/api/v1/visits/batch", {"visits": items}, seeded.auth("worker_a1"))
    # The first byte of the answer means the view has committed; kill before the rest is read.
    first = sock.recv(1)
    api_server.kill()
    sock.close()
    assert first == b"H"
    assert stored(seeded, ids) == BATCH  # committed, though the client never learnt it

    restarted = ApiServer(seeded.url, tmp_path / "gunicorn-2.log").start()
    try:
        assert sync(restarted, seeded, items) == ["duplicate"] * BATCH
        assert stored(seeded, ids) == BATCH
    finally:
        restarted.stop()


def test_a_retry_racing_the_dying_request_still_stores_each_visit_once(
    seeded, api_server, lock_engine, tmp_path
):
    """The retry arrives while the killed request's backend is still alive and blocked."""
    items = batch(seeded)
    ids = [item["id"] for item in items]
    restarted = ApiServer(seeded.url, tmp_path / "gunicorn-2.log").start()
    try:
        with lock_engine.connect() as holder:
            holder.execute(text("LOCK TABLE visits IN SHARE MODE"))
            sock = raw_post(
                api_server, "/api/v1/visits/batch", {"visits": items}, seeded.auth("worker_a1")
            )
            wait_until(
                lambda: any(wait == "Lock" for _, wait, _ in api_backends(seeded)),
                what="the first API to block inside its transaction",
            )
            api_server.kill()
            read_all(sock)
            sock.close()
            results: list[list[str]] = []
            retry = threading.Thread(target=lambda: results.append(sync(restarted, seeded, items)))
            retry.start()
            wait_until(
                lambda: sum(wait == "Lock" for _, wait, _ in api_backends(seeded)) >= 2,
                what="the retry to block behind the same lock",
            )
            holder.rollback()
        retry.join(timeout=60)
        assert results == [["created"] * BATCH]
        assert stored(seeded, ids) == BATCH
    finally:
        restarted.stop()
