"""A 12345 ticket re-dispatched (改派) to another community: a new task there, the old one
transferred, a true repeat still a 409, and no 409 naming a task its caller cannot see."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import Notification, Task
from tests.factories import A1, A2, B1, A, B, centre

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
TICKET = "12345-RD-0001"


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def ticket(grid: str, **fields) -> dict:
    lon, lat = centre(grid)
    return {
        "source": "hotline",
        "type": "complaint",
        "external_id": TICKET,
        "title": "楼下烧烤油烟扰民",
        "urgency": "general",
        "complainant": {"name": "王女士", "phone": "13800000000"},
        "location": {"lon": lon, "lat": lat},
        **fields,
    }


def open_ticket(client, world, user: str, grid: str, **fields):
    return client.post("/api/v1/tasks", json=ticket(grid, **fields), headers=world.auth(user))


def get(client, world, user: str, task_id: int):
    return client.get(f"/api/v1/tasks/{task_id}", headers=world.auth(user))


def kinds(session, world, name: str) -> list[str]:
    user = world.users[name]
    rows = session.scalars(
        select(Notification.kind).where(Notification.user_id == user.id).order_by(Notification.id)
    )
    return list(rows)


def tasks_of_ticket(session) -> list[Task]:
    session.expire_all()
    return list(session.scalars(select(Task).where(Task.external_id == TICKET).order_by(Task.id)))


# --- the re-dispatch -----------------------------------------------------------------------------
def test_a_ticket_redispatched_to_another_community_opens_a_task_there(client, world, session):
    first = open_ticket(client, world, "admin_a", A1).json
    r = open_ticket(client, world, "admin_b", B1, redispatch=True)
    assert r.status_code == 201, r.json
    body = r.json
    assert (body["grid_code"], body["status"]) == (B1, "dispatched")
    assert body["assignee_id"] == world.users["worker_b1"].id
    assert body["id"] != first["id"]
    old, new = tasks_of_ticket(session)
    assert (old.transferred_to_id, new.transferred_from_id) == (new.id, old.id)


def test_a_ticket_another_community_holds_is_a_409_until_it_is_said_to_be_redispatched(
    client, world, session
):
    """A number typed twice or mistyped never ends another community's task: the re-dispatch
    is said (`redispatch: true`), and until then the answer says how and names no task."""
    first = open_ticket(client, world, "admin_a", A1).json
    r = open_ticket(client, world, "admin_b", B1)
    assert r.status_code == 409
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "redispatch" in r.json["detail"] and "task_id" not in r.json
    assert f"task {first['id']}" not in r.json["detail"]
    assert r.json["held_elsewhere"] is True
    assert [(t.status, t.transferred_at) for t in tasks_of_ticket(session)] == [
        ("dispatched", None)
    ]
    assert open_ticket(client, world, "admin_b", B1, redispatch=True).status_code == 201


def test_only_the_community_admin_says_a_ticket_was_redispatched(client, world, session):
    """Saying the hotline re-dispatched a ticket ends another community's task: the office's
    word (it receives the tickets), not any field worker's who can open a task in a grid."""
    open_ticket(client, world, "admin_a", A1)
    r = open_ticket(client, world, "worker_b1", B1, redispatch=True)
    assert r.status_code == 403, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert [(t.status, t.transferred_at) for t in tasks_of_ticket(session)] == [
        ("dispatched", None)
    ]


def test_the_new_task_records_its_arrival_by_redispatch_naming_nobody_of_the_first(client, world):
    open_ticket(client, world, "admin_a", A1)
    second = open_ticket(client, world, "admin_b", B1, redispatch=True).json
    steps = [
        (e["action"], e["from_status"], e["to_status"], e["actor_id"], e["note"])
        for e in get(client, world, "admin_b", second["id"]).json["events"]
    ]
    assert ("transfer", None, "new", None, "12345 改派自其他社区") in steps
    assert steps[0][:4] == ("create", None, "new", world.users["admin_b"].id)


def test_the_first_task_still_open_is_closed_as_transferred(client, world, session):
    first = open_ticket(client, world, "admin_a", A1).json
    open_ticket(client, world, "admin_b", B1, redispatch=True)
    r = get(client, world, "admin_a", first["id"])
    assert r.status_code == 200
    body = r.json
    assert body["status"] == "transferred"
    assert body["transferred_at"] == T0.isoformat()
    assert (body["overdue"], body["allowed_actions"]) == (False, [])
    step = body["events"][-1]
    # The hotline re-dispatched it: a system step, naming nobody of the other community.
    assert (step["action"], step["from_status"], step["to_status"], step["actor_id"]) == (
        "transfer",
        "dispatched",
        "transferred",
        None,
    )


def test_a_transferred_task_takes_no_further_step(client, world, session):
    first = open_ticket(client, world, "admin_a", A1).json
    open_ticket(client, world, "admin_b", B1, redispatch=True)
    for user, action in (("worker_a1", "accept"), ("worker_a1", "escalate"), ("admin_a", "reopen")):
        r = client.post(
            f"/api/v1/tasks/{first['id']}/transitions",
            json={"action": action},
            headers=world.auth(user),
        )
        assert (r.status_code, r.json["state"]) == (409, "transferred"), action
    r = client.post(
        f"/api/v1/tasks/{first['id']}/assign",
        json={"assignee_id": world.users["worker_a2"].id},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 409


def test_each_community_sees_the_link_only_to_the_task_it_can_see(client, world, session):
    first = open_ticket(client, world, "admin_a", A1).json
    second = open_ticket(client, world, "admin_b", B1, redispatch=True).json
    assert second["transferred_from_id"] is None  # community B cannot see A's task
    assert get(client, world, "admin_a", first["id"]).json["transferred_to_id"] is None
    # The district viewer over both communities sees both tasks, and both links.
    viewer = "viewer_110101"
    assert get(client, world, viewer, first["id"]).json["transferred_to_id"] == second["id"]
    assert get(client, world, viewer, second["id"]).json["transferred_from_id"] == first["id"]


def test_each_community_finds_by_the_ticket_number_only_its_own_task_of_it(client, world):
    """The bridge of each community asks for the ticket's task by its number: community A finds
    the task it passed on (`transferred`), B the one it holds; the viewer over both, both."""
    first = open_ticket(client, world, "admin_a", A1).json
    second = open_ticket(client, world, "admin_b", B1, redispatch=True).json

    def found(user: str) -> list[tuple[int, str]]:
        r = client.get(
            "/api/v1/tasks", query_string={"external_id": TICKET}, headers=world.auth(user)
        )
        assert r.status_code == 200, r.json
        return [(t["id"], t["status"]) for t in r.json]

    assert found("admin_a") == [(first["id"], "transferred")]
    assert found("admin_b") == [(second["id"], "dispatched")]
    assert sorted(found("viewer_110101")) == [
        (first["id"], "transferred"),
        (second["id"], "dispatched"),
    ]


def listed(client, world, user: str) -> dict[int, dict]:
    r = client.get("/api/v1/tasks?source=hotline&page_size=100", headers=world.auth(user))
    assert r.status_code == 200, r.json
    return {t["id"]: t for t in r.json}


def redispatched(client, world, number: int, to: str = B1, by: str = "admin_b") -> tuple[int, int]:
    """Ticket `number` opened in A1, then re-dispatched to `to`: the two tasks' ids."""
    external_id = f"{TICKET}-{number}"
    first = open_ticket(client, world, "admin_a", A1, external_id=external_id).json
    r = open_ticket(client, world, by, to, external_id=external_id, redispatch=True)
    assert r.status_code == 201, r.json
    return first["id"], r.json["id"]


def test_a_list_shows_each_link_only_to_a_caller_who_can_see_the_linked_task(
    client, world, session
):
    from tests.factories import C1, C, make_user

    world.users["admin_c"] = make_user(session, "admin_c", "community_admin", community=C)
    to_b = redispatched(client, world, 1)
    to_c = redispatched(client, world, 2, to=C1, by="admin_c")
    # The district viewer of 110101 sees A's and B's tasks, not C's (district 110102).
    tasks = listed(client, world, "viewer_110101")
    assert set(tasks) == {*to_b, to_c[0]}
    assert tasks[to_b[0]]["transferred_to_id"] == to_b[1]
    assert tasks[to_b[1]]["transferred_from_id"] == to_b[0]
    assert tasks[to_c[0]]["transferred_to_id"] is None
    # Each community sees its own task of a ticket, never the link to the other's.
    assert [t["transferred_to_id"] for t in listed(client, world, "admin_a").values()] == [
        None,
        None,
    ]
    assert [t["transferred_from_id"] for t in listed(client, world, "admin_b").values()] == [None]
    assert [t["transferred_from_id"] for t in listed(client, world, "admin_c").values()] == [None]


def statements_of(engine, request) -> tuple[int, object]:
    """The number of statements `request()` runs, and its answer."""
    from sqlalchemy import event

    statements = []

    def record(conn, cursor, statement, *args):
        # Not the test's savepoints: where a transaction begins is not the question.
        if not statement.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(statements), answer


def test_the_links_of_a_page_are_decided_in_as_many_statements_for_many_as_for_one(
    client, world, engine
):
    """Not one scope query per link: the list's statements do not grow with its links."""
    redispatched(client, world, 1)
    one, tasks = statements_of(engine, lambda: listed(client, world, "viewer_110101"))
    assert sum(t["transferred_to_id"] is not None for t in tasks.values()) == 1
    for number in range(2, 6):
        redispatched(client, world, number)
    many, tasks = statements_of(engine, lambda: listed(client, world, "viewer_110101"))
    linked = [t for t in tasks.values() if t["transferred_from_id"] or t["transferred_to_id"]]
    assert len(linked) == 10  # five tickets, each a task in A and one in B, linked both ways
    assert many == one


def test_both_links_of_one_task_are_decided_in_one_statement(client, world, engine):
    """A ticket sent A -> B -> A: B's task links both ways; the viewer sees both."""
    first, second = redispatched(client, world, 1)
    third = open_ticket(client, world, "admin_a", A1, external_id=f"{TICKET}-1", redispatch=True)
    plain = open_ticket(client, world, "admin_a", A1, external_id=f"{TICKET}-2").json

    def read(task_id: int) -> dict:
        return get(client, world, "viewer_110101", task_id).json

    unlinked, _ = statements_of(engine, lambda: read(plain["id"]))
    linked, body = statements_of(engine, lambda: read(second))
    assert (body["transferred_from_id"], body["transferred_to_id"]) == (first, third.json["id"])
    assert linked == unlinked + 1


def test_the_assignee_and_overseers_of_the_first_task_are_told_it_went_elsewhere(
    client, world, session
):
    first = open_ticket(client, world, "admin_a", A1).json
    open_ticket(client, world, "admin_b", B1, redispatch=True)
    assert kinds(session, world, "worker_a1") == ["task_dispatched", "task_transferred"]
    assert kinds(session, world, "leader_a") == ["task_transferred"]
    assert kinds(session, world, "worker_b1") == ["task_dispatched"]  # as any new task
    note = session.scalar(select(Notification).where(Notification.kind == "task_transferred"))
    assert note.data["task_id"] == str(first["id"])
    assert note.data["status"] == "transferred"
    assert "transferred_to_id" not in note.data  # nothing of the other community's task


def test_a_ticket_passed_on_where_its_community_has_nobody_at_work_is_not_told_to_the_district(
    client, world, session
):
    """The notice tells those who were working the ticket to stop: its assignee, and the leader
    away (admin A switched off). The district's viewers were working nothing, and the hotline's
    re-dispatch waits on nobody: they see both tasks, and are not told."""
    from api.models import Leave

    open_ticket(client, world, "admin_a", A1)
    world.users["admin_a"].active = False
    session.add(Leave(worker_id=world.users["leader_a"].id, start_date=T0.date(),
                      end_date=T0.date(), status="approved"))  # fmt: skip
    session.flush()
    r = open_ticket(client, world, "admin_b", B1, redispatch=True)
    assert r.status_code == 201, r.json
    assert kinds(session, world, "worker_a1") == ["task_dispatched", "task_transferred"]
    assert kinds(session, world, "leader_a") == ["task_transferred"]
    assert kinds(session, world, "viewer_110101") == []


def test_a_ticket_passed_on_while_it_waited_unassigned_leaves_the_tasks_waiting_to_be_assigned(
    client, world, session
):
    """Nobody in A1 to take the ticket: it waited unassigned, then the hotline re-dispatched it
    to community B. `assignee=none` (the office's queue of tasks to assign) still listed it,
    for good: a transferred task is another community's and cannot be assigned (409)."""
    world.users["worker_a1"].active = False
    world.users["leader_a"].active = False
    session.flush()
    first = open_ticket(client, world, "admin_a", A1).json
    assert (first["status"], first["assignee_id"]) == ("new", None)
    assert open_ticket(client, world, "admin_b", B1, redispatch=True).status_code == 201
    r = client.get("/api/v1/tasks?assignee=none", headers=world.auth("admin_a"))
    assert r.status_code == 200, r.json
    assert r.json == []
    r = client.get("/api/v1/tasks?status=transferred", headers=world.auth("admin_a"))
    assert [(t["id"], t["assignee_id"]) for t in r.json] == [(first["id"], None)]


def test_a_task_already_resolved_keeps_its_status_and_records_the_link(client, world, session):
    first = open_ticket(client, world, "admin_a", A1).json
    for action in ("accept", "resolve"):
        client.post(
            f"/api/v1/tasks/{first['id']}/transitions",
            json={"action": action},
            headers=world.auth("worker_a1"),
        )
    r = open_ticket(client, world, "admin_b", B1, redispatch=True)
    assert r.status_code == 201
    old, new = tasks_of_ticket(session)
    assert (old.status, old.transferred_to_id, old.transferred_at) == ("resolved", new.id, T0)
    assert "task_transferred" not in kinds(session, world, "worker_a1")
    # The ticket is another community's now: the first may not reopen it.
    r = client.post(
        f"/api/v1/tasks/{first['id']}/transitions",
        json={"action": "reopen"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 409
    assert get(client, world, "admin_a", first["id"]).json["allowed_actions"] == [
        "callback",
        "close",
    ]


# --- a true repeat, and the hidden 409 -----------------------------------------------------------
def test_the_same_ticket_in_another_grid_of_the_same_community_is_a_repeat(client, world):
    first = open_ticket(client, world, "admin_a", A1).json
    r = open_ticket(client, world, "leader_a", A2)
    assert (r.status_code, r.json["task_id"]) == (409, first["id"])


def test_a_repeat_never_names_a_task_the_caller_cannot_see(client, world, session):
    open_ticket(client, world, "admin_a", A1)
    r = open_ticket(client, world, "worker_a2", A2)  # A2's worker does not see A1's tasks
    assert r.status_code == 409, r.json
    assert "task_id" not in r.json
    assert len(tasks_of_ticket(session)) == 1


def test_the_same_redispatch_sent_twice_makes_one_task(client, world, session):
    open_ticket(client, world, "admin_a", A1)
    second = open_ticket(client, world, "admin_b", B1, redispatch=True).json
    r = open_ticket(client, world, "admin_b", B1, redispatch=True)
    assert (r.status_code, r.json["task_id"]) == (409, second["id"])
    assert len(tasks_of_ticket(session)) == 2
    assert kinds(session, world, "worker_a1").count("task_transferred") == 1


def test_a_redispatch_back_to_the_first_community_opens_a_new_task_there(client, world, session):
    first = open_ticket(client, world, "admin_a", A1).json
    second = open_ticket(client, world, "admin_b", B1, redispatch=True).json
    r = open_ticket(client, world, "admin_a", A1, redispatch=True)
    assert r.status_code == 201, r.json
    third = r.json
    assert third["id"] not in (first["id"], second["id"])
    one, two, three = tasks_of_ticket(session)
    assert [t.status for t in (one, two, three)] == ["transferred", "transferred", "dispatched"]
    assert (one.transferred_to_id, two.transferred_from_id) == (two.id, one.id)
    assert (two.transferred_to_id, three.transferred_from_id) == (three.id, two.id)
    assert kinds(session, world, "worker_b1") == ["task_dispatched", "task_transferred"]
    # And the first community repeating it now is a repeat of its new task.
    r = open_ticket(client, world, "leader_a", A2)
    assert (r.status_code, r.json["task_id"]) == (409, third["id"])


def test_a_number_of_another_source_held_elsewhere_is_that_communitys_own(client, world, session):
    """Only the hotline's tickets are one across communities (and re-dispatched); another
    source's reference is each community's own: a new task in B, A's left as it was (until
    migration 0067 a 409 for good, telling B that A held the number)."""
    open_ticket(client, world, "admin_a", A1, source="window")
    r = open_ticket(client, world, "admin_b", B1, source="window")
    assert r.status_code == 201, r.json
    assert r.json.get("transferred_from_id") is None
    assert [t.status for t in tasks_of_ticket(session)] == ["dispatched", "dispatched"]


def test_a_caller_who_may_not_open_a_task_there_learns_nothing(client, world, session):
    open_ticket(client, world, "admin_a", A1)
    for user in ("viewer_110101", "worker_b1"):
        r = open_ticket(client, world, user, A1)
        assert r.status_code == 403, user
        assert "task_id" not in r.json
    assert len(tasks_of_ticket(session)) == 1


# --- the rates -----------------------------------------------------------------------------------
def rates(client, world, user: str, community: str) -> dict:
    r = client.get(
        f"/api/v1/tasks/rates?community={community}&week=2026-W47", headers=world.auth(user)
    )
    assert r.status_code == 200, r.json
    return r.json


def test_a_transferred_ticket_is_not_counted_in_the_first_communitys_rates(client, world):
    open_ticket(client, world, "admin_a", A1)
    open_ticket(client, world, "admin_b", B1, redispatch=True)
    a, b = rates(client, world, "admin_a", A), rates(client, world, "admin_b", B)
    assert (a["opened"], a["overdue"], a["resolution_rate"]) == (0, 0, None)
    assert (b["opened"], b["resolved"]) == (1, 0)


def test_a_transferred_ticket_past_its_deadline_is_not_overdue_for_the_first(app, client, world):
    open_ticket(client, world, "admin_a", A1, urgency="danger")
    app.config["FIXED_NOW"] = T0 + timedelta(hours=1)
    open_ticket(client, world, "admin_b", B1, urgency="danger", redispatch=True)
    app.config["FIXED_NOW"] = T0 + timedelta(days=1)
    r = client.get("/api/v1/tasks?overdue=true", headers=world.auth("admin_a"))
    assert (r.status_code, r.json) == (200, [])


def test_the_deadline_tick_leaves_a_transferred_task_alone(client, world, session):
    from api.services.tasks import tick

    first = open_ticket(client, world, "admin_a", A1, urgency="danger").json
    open_ticket(client, world, "admin_b", B1, urgency="danger", redispatch=True)
    tick(session, T0 + timedelta(hours=1, minutes=45))
    tick(session, T0 + timedelta(hours=3))
    session.expire_all()
    task = session.get(Task, first["id"])
    assert (task.status, task.escalated_at, task.warned_at) == ("transferred", None, None)


# --- migration 0029 ------------------------------------------------------------------------------
def test_migration_0029_downgrades_a_chain_to_one_task_per_ticket_and_upgrades_again(
    own_database_url,
):
    """Down: the transferred task is closed and the later one keeps its ticket as
    `<ticket>#<id>`, so the old unique (source, external_id) holds; up again: the columns
    and the chain's constraints are back."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, _ = migration_grid(own_database_url)
    engine = create_engine(own_database_url)
    insert = text(
        "INSERT INTO tasks (source, type, title, external_id, grid_id, status, due_at,"
        " transferred_from_id) VALUES ('hotline', 'complaint', 'x', :t, :g, :s, now(), :f)"
        " RETURNING id"
    )
    config = alembic_config(own_database_url)
    try:
        with engine.begin() as conn:
            one = conn.scalar(insert, {"t": TICKET, "g": grid_id, "s": "dispatched", "f": None})
            conn.execute(
                text(
                    "UPDATE tasks SET status = 'transferred', transferred_at = now() WHERE id = :i"
                ),
                {"i": one},
            )
            two = conn.scalar(insert, {"t": TICKET, "g": grid_id, "s": "dispatched", "f": one})
            conn.execute(
                text("UPDATE tasks SET transferred_to_id = :two WHERE id = :one"),
                {"one": one, "two": two},
            )
        command.downgrade(config, "0028")
        try:
            with engine.begin() as conn:
                rows = conn.execute(
                    text("SELECT status, external_id, closed_at IS NOT NULL FROM tasks ORDER BY id")
                ).all()
            assert [tuple(r) for r in rows] == [
                ("closed", TICKET, True),
                ("dispatched", f"{TICKET}#{two}", False),
            ]
        finally:
            command.upgrade(config, "head")
        with engine.begin() as conn:
            columns = conn.scalars(
                text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'tasks' AND column_name LIKE 'transferred%'"
                    " ORDER BY column_name"
                )
            ).all()
            conn.execute(text("DELETE FROM tasks"))
        assert columns == ["transferred_at", "transferred_from_id", "transferred_to_id"]
    finally:
        engine.dispose()


# --- migration 0067 ------------------------------------------------------------------------------
def test_migration_0067_holds_only_hotline_tickets_unique_and_downgrades_shared_references(
    own_database_url,
):
    """At 0067 the index holds a hotline ticket to one task, another source's reference not
    (its community's own, checked by the service); down, a reference held twice is kept by its
    first task and the later one keeps it as `<reference>#<id>`, so the old index holds."""
    from alembic import command
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    from api.cli import alembic_config
    from api.extensions import db
    from tests.factories import box, build_app, make_grid

    app = build_app(own_database_url)  # a grid of its own: the 0029 test makes migration_grid's
    with app.app_context(), db.begin() as session:
        grid_id = make_grid(session, "110109009008001", box(116.5, 39.71, 116.51, 39.72)).id
    with app.app_context():
        db.engine.dispose()
    engine = create_engine(own_database_url)
    insert = text(
        "INSERT INTO tasks (source, type, title, external_id, grid_id, status, due_at)"
        " VALUES (:s, 'help', 'x', :r, :g, 'dispatched', now()) RETURNING id"
    )
    config = alembic_config(own_database_url)
    try:
        with engine.begin() as conn:
            one = conn.scalar(insert, {"s": "window", "r": "W-0001", "g": grid_id})
            two = conn.scalar(insert, {"s": "window", "r": "W-0001", "g": grid_id})
            conn.scalar(insert, {"s": "hotline", "r": TICKET, "g": grid_id})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.scalar(insert, {"s": "hotline", "r": TICKET, "g": grid_id})
        command.downgrade(config, "0066")
        try:
            with engine.begin() as conn:
                rows = conn.execute(
                    text("SELECT id, external_id FROM tasks WHERE source = 'window' ORDER BY id")
                ).all()
            assert [tuple(r) for r in rows] == [(one, "W-0001"), (two, f"W-0001#{two}")]
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.scalar(insert, {"s": "window", "r": "W-0001", "g": grid_id})
        finally:
            command.upgrade(config, "head")
        with engine.begin() as conn:
            conn.scalar(insert, {"s": "window", "r": "W-0001", "g": grid_id})
            conn.execute(text("DELETE FROM tasks"))
    finally:
        engine.dispose()
