"""Tasks under real concurrent requests: one ticket, or one reference, sent twice at once.

The existence check cannot see a task another transaction has written but not committed; for a
hotline ticket the unique index `(source, external_id)` catches the second insert once the
first commits. A third connection writes the ticket's task and holds it uncommitted until the
request waits. Another source's reference, unique within its community only, is serialised by
an advisory lock instead.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from api.clock import now as clock_now
from api.models import Task
from tests import races
from tests.factories import bearer, box, build_app, make_grid, make_user

COMMUNITY = "110109009002"
TICKET = "12345-RACE-1"


def _poster(app, body: dict, headers: dict):
    """A request opening the task `body` says, as `headers`' caller, to race another."""

    def post():
        with app.test_client() as client:
            return client.post("/api/v1/tasks", json=body, headers=headers)

    return post


def _one_made_one_repeat(answers) -> tuple:
    """Of two racing creates' answers, the one that made the task (201) and the repeat (409)."""
    created = [a for a in answers if a.status_code == 201]
    repeated = [a for a in answers if a.status_code == 409]
    assert (len(created), len(repeated)) == (1, 1), [a.json for a in answers]
    return created, repeated


def test_a_ticket_received_while_its_twin_commits_is_a_conflict_naming_the_twin(
    own_database_url,
):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, COMMUNITY + "001", box(116.40, 39.72, 116.41, 39.73))
        admin = make_user(
            session, f"tk_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, grid_id = bearer(admin), grid.id
    body = {
        "source": "hotline", "type": "complaint", "external_id": TICKET, "title": "噪音扰民",
        "location": {"lon": 116.405, "lat": 39.725},
    }  # fmt: skip
    post = _poster(app, body, headers)
    twin = (
        "INSERT INTO tasks (source, type, title, external_id, grid_id, status, due_at)"
        " VALUES ('hotline', 'complaint', 'x', :ticket, :grid, 'new', now())"
    )
    try:
        with app.app_context():
            [answer] = races.race(db.engine, twin, {"ticket": TICKET, "grid": grid_id}, post)
            with db.new_session() as session:
                twin_id = session.scalar(
                    text("SELECT id FROM tasks WHERE external_id = :t"), {"t": TICKET}
                )
                count = session.query(Task).filter_by(external_id=TICKET).count()
    finally:
        with app.app_context():
            db.engine.dispose()
    assert (answer.status_code, count) == (409, 1)
    assert answer.json["task_id"] == twin_id


OTHER = "110109009003"
REDISPATCHED = "12345-RACE-2"


def test_a_redispatch_sent_twice_at_once_makes_one_task_and_a_conflict_naming_it(
    own_database_url,
):
    """Both requests find the first community's task open; the second waits for the first to
    transfer it (the row lock), then finds the ticket held by its own community: a repeat."""
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "002", box(116.42, 39.72, 116.43, 39.73))
        make_grid(session, OTHER + "001", box(116.43, 39.72, 116.44, 39.73))
        first = make_user(
            session, f"tk_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        second = make_user(
            session, f"tk_{uuid.uuid4().hex[:8]}", "community_admin", community=OTHER
        )
        first_headers, second_headers = bearer(first), bearer(second)

    def body(lon):
        return {
            "source": "hotline", "type": "complaint", "external_id": REDISPATCHED,
            "title": "噪音扰民", "location": {"lon": lon, "lat": 39.725},
        }  # fmt: skip

    def redispatch():
        with app.test_client() as client:
            said = {**body(116.435), "redispatch": True}
            return client.post("/api/v1/tasks", json=said, headers=second_headers)

    hold = "SELECT id FROM tasks WHERE external_id = :ticket FOR UPDATE"
    try:
        with app.app_context(), app.test_client() as client:
            opened = client.post("/api/v1/tasks", json=body(116.425), headers=first_headers)
            assert opened.status_code == 201, opened.json
            answers = races.race(db.engine, hold, {"ticket": REDISPATCHED}, redispatch, redispatch)
            with db.new_session() as session:
                rows = session.execute(
                    text(
                        "SELECT id, status, transferred_from_id FROM tasks"
                        " WHERE external_id = :t ORDER BY id"
                    ),
                    {"t": REDISPATCHED},
                ).all()
    finally:
        with app.app_context():
            db.engine.dispose()
    created, repeated = _one_made_one_repeat(answers)
    assert repeated[0].json["task_id"] == created[0].json["id"]
    assert [(status, source) for _, status, source in rows] == [
        ("transferred", None),
        ("new", opened.json["id"]),
    ]


WINDOW_REFERENCE = "W-RACE-1"


def test_a_window_reference_sent_twice_at_once_in_one_community_makes_one_task(
    own_database_url,
):
    """No unique index holds another source's reference (it is each community's own, 0067):
    the requests queue on the reference's lock. The holder keeps tasks from being written,
    so both requests are in flight, one past its check and waiting to write, before either
    commits; the second then finds the first's task: a 409 naming it."""
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "004", box(116.45, 39.72, 116.46, 39.73))
        admin = make_user(
            session, f"tk_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers = bearer(admin)
    body = {
        "source": "window", "type": "help", "external_id": WINDOW_REFERENCE, "title": "开证明",
        "location": {"lon": 116.455, "lat": 39.725},
    }  # fmt: skip
    post = _poster(app, body, headers)
    try:
        with app.app_context():
            answers = races.race(db.engine, "LOCK TABLE tasks IN EXCLUSIVE MODE", {}, post, post)
            with db.engine.connect() as conn:
                ids = conn.scalars(
                    text("SELECT id FROM tasks WHERE external_id = :t"), {"t": WINDOW_REFERENCE}
                ).all()
    finally:
        with app.app_context():
            db.engine.dispose()
    created, repeated = _one_made_one_repeat(answers)
    assert ids == [created[0].json["id"]]
    assert repeated[0].json["task_id"] == created[0].json["id"]


def _race_with_retirement(app, headers, table: str, grid_id: int, other: tuple):
    """The grid's retirement (DELETE) and `other` (method, path, body) as `headers`' caller,
    released at once by a lock on `table` and grid_versions; (their answers, how many tasks
    then stand in a retired grid)."""
    from api.extensions import db

    def send(method: str, path: str, json: dict | None):
        def request():
            with app.test_client() as client:
                return client.open(path, method=method, json=json, headers=headers)

        return request

    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                f"LOCK TABLE {table}, grid_versions IN EXCLUSIVE MODE",
                {},
                send("DELETE", f"/api/v1/grids/{grid_id}", None),
                send(*other),
            )
            with db.engine.connect() as conn:
                in_retired = conn.scalar(
                    text(
                        "SELECT count(*) FROM tasks t JOIN grids g ON g.id = t.grid_id "
                        "WHERE g.retired_at IS NOT NULL"
                    )
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    return answers, in_retired


def test_a_task_opened_while_its_grid_is_retired_is_not_left_in_the_retired_grid(
    own_database_url,
):
    """The retirement counted the grid's open tasks, the task was written after the count: an
    open task in a retired grid, off the map, dispatched there to its holders of that day."""
    from api.extensions import db

    community = "110109009004"
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, community + "001", box(116.62, 39.72, 116.63, 39.73))
        admin = make_user(
            session, f"tk_{uuid.uuid4().hex[:8]}", "community_admin", community=community
        )
        headers, grid_id = bearer(admin), grid.id
    body = {
        "source": "window", "type": "help", "title": "楼道灯不亮",
        "location": {"lon": 116.625, "lat": 39.725},
    }  # fmt: skip

    answers, in_retired = _race_with_retirement(
        app, headers, "tasks", grid_id, ("POST", "/api/v1/tasks", body)
    )
    # Either the retirement went first (the task is then refused: send it again, and it finds
    # no grid there), or the task did (the retirement then finds it open).
    assert [r.status_code for r in answers] in ([204, 409], [409, 201])
    assert in_retired == 0


def test_a_task_moved_while_its_new_grid_is_retired_is_not_left_in_the_retired_grid(
    own_database_url,
):
    """The move found the grid it goes to in service, the retirement counted that grid's open
    tasks before the move was written: the task moved into a retired grid."""
    from api.extensions import db
    from api.services import tasks as task_service

    community = "110109009005"
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, community + "001", box(116.64, 39.72, 116.65, 39.73))
        target = make_grid(session, community + "002", box(116.65, 39.72, 116.66, 39.73))
        admin = make_user(
            session, f"tk_{uuid.uuid4().hex[:8]}", "community_admin", community=community
        )
        data = {"source": "window", "type": "help", "title": "楼道灯不亮", "urgency": "general",
                "location": {"lon": 116.645, "lat": 39.725}}  # fmt: skip
        task = task_service.create_task(session, None, data, actor_id=None, now=clock_now())
        headers, target_id, task_id = bearer(admin), target.id, task.id
    move = {"grid_code": community + "002", "reason": "地址报错",
            "location": {"lon": 116.655, "lat": 39.725}}  # fmt: skip

    answers, in_retired = _race_with_retirement(
        app, headers, "task_events", target_id, ("POST", f"/api/v1/tasks/{task_id}/move", move)
    )
    # Either the retirement went first (the move is refused), or the move did (the retirement
    # then finds the task open in the grid).
    assert [r.status_code for r in answers] in ([204, 409], [409, 200])
    assert in_retired == 0


def test_the_tick_skips_a_returned_task_another_transaction_holds_and_takes_it_next_time(
    own_database_url,
):
    """The tick lets a switched-off worker go of the tasks they returned, as it hands on what
    they held: locked FOR UPDATE without SKIP LOCKED, one such row held elsewhere (a leader
    placing it) stalled the whole tick, every community's warnings and escalations with it."""
    from datetime import timedelta

    from api.extensions import db
    from api.services.tasks import tick

    app = build_app(own_database_url)
    code = "110109009006001"  # a community of its own
    with app.app_context(), db.begin() as session:
        make_grid(session, code, box(116.68, 39.72, 116.69, 39.73))
        worker = make_user(session, f"w_{uuid.uuid4().hex[:6]}", "worker", grids=[code])
        session.flush()
        task = Task(
            source="window", type="help", title="t", urgency="general", grid_id=session.scalar(
                text("SELECT id FROM grids WHERE code = :c"), {"c": code}
            ), status="returned", assignee_id=worker.id, created_at=clock_now(),
            updated_at=clock_now(), due_at=clock_now() + timedelta(days=7),
            first_contact_due_at=clock_now() + timedelta(days=1),
        )  # fmt: skip
        session.add(task)
        worker.active = False
        session.flush()
        task_id = task.id
    with app.app_context():
        with db.engine.connect() as holder:
            holder.execute(text("SELECT id FROM tasks WHERE id = :t FOR UPDATE"), {"t": task_id})
            with db.begin() as session:
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
                tick(session, clock_now())
                assert session.get(Task, task_id).assignee_id == worker.id  # left for next time
            holder.rollback()
        with db.begin() as session:
            tick(session, clock_now())
            assert session.get(Task, task_id).assignee_id is None
        db.engine.dispose()
