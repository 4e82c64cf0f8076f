"""What the everyday requests send to the database: each statement is a round trip, and under
load a round trip costs milliseconds (docs/performance.md).

A worker's phone polls its tasks and lists households all day; each answer discloses records,
so it writes an audit entry. Such a request sends its token check (which also reads the
worker's grids), its count, its page and its audit entry: four statements, no more.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, select, text

from api import clock
from api.models import AuditEntry
from api.services import audit
from tests.factories import A1, make_task, make_visit


def statements(connection, call) -> tuple[object, list[str]]:
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        # Not the test's savepoints, nor the clock's reading of the database's time (once a
        # minute per process, api.clock).
        skip = ("SAVEPOINT", "RELEASE", "ROLLBACK TO", "SELECT clock_timestamp()")
        if not statement.startswith(skip):
            sent.append(" ".join(statement.split()))

    event.listen(connection, "before_cursor_execute", record)
    try:
        return call(), sent
    finally:
        event.remove(connection, "before_cursor_execute", record)


@pytest.mark.parametrize("path", ["/api/v1/tasks?page_size=20", "/api/v1/households?page_size=20"])
@pytest.mark.parametrize("username", ["worker_a1", "leader_a"])
def test_an_audited_list_is_its_token_check_count_page_and_entry(
    client, session, world, connection, path, username
):
    make_task(session, now=clock.now())
    response, sent = statements(connection, lambda: client.get(path, headers=world.auth(username)))
    assert response.status_code == 200 and response.json
    assert [s.split()[0] for s in sent] == ["SELECT", "SELECT", "SELECT", "INSERT"]
    assert "revoked_tokens" in sent[0] and "user_grids" in sent[0]
    assert "INSERT INTO audit_log" in sent[3] and "synchronous_commit" in sent[3]
    # The grid codes in the answer came with the page, the polygons not at all.
    assert all(r["grid_code"] for r in response.json)
    assert not any("ST_AsEWKB(grids.boundary)" in s for s in sent)


def test_a_reads_entry_makes_its_transactions_commit_asynchronous(session, world):
    key = uuid.uuid4()
    assert session.scalar(text("SHOW synchronous_commit")) == "on"
    reader = audit.Reader(world.users["worker_a1"].id, "10.0.0.1", "/api/v1/visits?x=" + "y" * 400)
    audit.record_read(session, reader, "read", "visit", [key, 7], ["notes"])
    assert session.scalar(text("SHOW synchronous_commit")) == "off"
    entry = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert (entry.resource_ids, entry.resource_uuids, entry.fields) == ([7], [key], ["notes"])
    assert (str(entry.ip), len(entry.path)) == ("10.0.0.1", 300)


def test_a_read_that_disclosed_nothing_writes_no_entry(session):
    before = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()))
    audit.record_read(session, audit.Reader(None), "read", "task", [], [])
    assert session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc())) == before
    assert session.scalar(text("SHOW synchronous_commit")) == "on"


def test_reads_of_one_task_or_visit_join_their_grids_code(client, session, world, connection):
    task = make_task(session, now=clock.now())
    home = world.households[A1][0]
    visit = make_visit(session, world.users["worker_a1"], home, clock.now())
    for path in (f"/api/v1/tasks/{task.id}", f"/api/v1/visits/{visit.id}", "/api/v1/visits"):
        response, sent = statements(
            connection, lambda p=path: client.get(p, headers=world.auth("worker_a1"))
        )
        assert response.status_code == 200, path
        assert not any("ST_AsEWKB(grids.boundary)" in s for s in sent), path
        assert sent[-1].startswith("INSERT INTO audit_log"), path  # nothing read after it


def test_ones_own_plan_does_not_read_ones_grids_again(client, world, connection):
    response, sent = statements(
        connection, lambda: client.get("/api/v1/visits/plan", headers=world.auth("worker_a1"))
    )
    assert response.status_code == 200
    assert [s for s in sent if "FROM user_grids" in s] == sent[:1]  # the token check's


def test_an_inbox_poll_is_its_token_check_count_with_the_cursor_and_page(client, world, connection):
    response, sent = statements(
        connection,
        lambda: client.get("/api/v1/notifications", headers=world.auth("worker_a1")),
    )
    assert response.status_code == 200 and int(response.headers["X-Inbox-Cursor"]) > 0
    assert len(sent) == 3
    assert "count(*)" in sent[1] and "pg_snapshot_xmin" in sent[1]  # before the page
