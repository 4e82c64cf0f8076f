"""The need list and the problem list (需求清单 / 问题清单) that visits produce.

A visit's follow-up says which list it goes on (`follow_up_kind`: `need`, a resident's wish;
`problem`, something broken or wrong to fix); its task carries the list (`list`), which
`GET /tasks?list=` filters on, and the office reads each list per grid (`GET /tasks/lists`).
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.models import Task, Visit
from tests.factories import A1, A2, A, B, make_task, visit_item

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing, 2026-W47
BATCH = "/api/v1/visits/batch"
LISTS = "/api/v1/tasks/lists"
# A visit as a migration test writes it beside the grid of `tests.factories.migration_grid`
# (the ORM's model is the head's: a downgraded table lacks its newer columns).
RAW_VISIT = (
    "INSERT INTO visits (id, worker_id, grid_id, visited_at, utc_offset_minutes, week,"
    " location, datum, raw_lon, raw_lat, outcome, follow_up, grade)"
    " VALUES (:id, :w, :g, :t, 480, '2026-W47', ST_SetSRID(ST_MakePoint(116.505, 39.705),"
    " 4326), 'wgs84', 116.505, 39.705, 'met', :f, 'ok')"
)


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def record(client, world, *items, user="worker_a1"):
    r = client.post(BATCH, json={"visits": list(items)}, headers=world.auth(user))
    assert r.status_code == 200, r.json
    return r.json["results"]


def follow_up(world, grid=A1, at=None, **fields):
    return visit_item(
        world.households[grid][0],
        at=at or T0 - timedelta(hours=1),
        follow_up=True,
        follow_up_note="楼道灯不亮，老人夜里看不见",
        **fields,
    )


def visit_task(client, world, visit_id):
    tasks = client.get("/api/v1/tasks?source=visit", headers=world.auth("leader_a")).json
    return next(t for t in tasks if t["visit_id"] == visit_id)


# --- a visit's follow-up says which list ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["need", "problem"])
def test_a_follow_up_says_which_list_it_goes_on_and_its_task_carries_it(client, world, kind):
    [result] = record(client, world, follow_up(world, follow_up_kind=kind))
    assert result["status"] == "created"
    assert result["visit"]["follow_up_kind"] == kind
    read = client.get(f"/api/v1/visits/{result['id']}", headers=world.auth("leader_a")).json
    assert read["follow_up_kind"] == kind
    task = visit_task(client, world, result["id"])
    assert (task["source"], task["list"]) == ("visit", kind)
    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=world.auth("leader_a")).json
    assert detail["list"] == kind


@pytest.mark.parametrize("sent", [{}, {"follow_up_kind": None}])
def test_a_follow_up_sent_with_no_kind_is_a_need(client, world, sent):
    """A client from before the lists sends no kind: its follow-up goes on the need list."""
    [result] = record(client, world, follow_up(world, **sent))
    assert result["visit"]["follow_up_kind"] == "need"
    assert visit_task(client, world, result["id"])["list"] == "need"


def test_a_kind_without_a_follow_up_is_kept_nowhere(client, world, session):
    """A form may keep the choice of a follow-up the worker then unticked: no follow-up, no
    list, and no task."""
    item = visit_item(world.households[A1][0], at=T0 - timedelta(hours=1), follow_up_kind="problem")
    [result] = record(client, world, item)
    assert result["status"] == "created"
    assert result["visit"]["follow_up_kind"] is None
    stored = session.scalar(select(Visit.follow_up_kind).where(Visit.id == result["id"]))
    assert stored is None
    assert session.scalar(select(Task.id).where(Task.visit_id == result["id"])) is None


@pytest.mark.parametrize("kind", ["wish", "NEED", "", 1, ["need"]])
def test_a_kind_of_no_list_rejects_its_visit_alone(client, world, session, kind):
    bad, good = follow_up(world, follow_up_kind=kind), follow_up(world, follow_up_kind="problem")
    results = record(client, world, bad, good)
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert "follow_up_kind" in results[0]["errors"]
    assert session.scalar(select(Visit.id).where(Visit.id == bad["id"])) is None


# --- the lists in GET /tasks ------------------------------------------------------------------
def test_tasks_are_listed_by_list(client, world, session):
    need, problem = (
        follow_up(world, follow_up_kind="need"),
        follow_up(world, follow_up_kind="problem"),
    )
    record(client, world, need, problem)
    other = make_task(session, now=T0)  # taken at the window: on no list
    leader = world.auth("leader_a")

    def listed(query):
        r = client.get(f"/api/v1/tasks{query}", headers=leader)
        assert r.status_code == 200, r.json
        return {(t["visit_id"], t["list"]) for t in r.json}

    assert listed("?list=need") == {(need["id"], "need")}
    assert listed("?list=problem") == {(problem["id"], "problem")}
    assert (None, None) in listed("")
    window = client.get(f"/api/v1/tasks/{other.id}", headers=leader).json
    assert window["list"] is None


def test_a_list_that_is_none_of_the_two_is_a_422(client, world):
    r = client.get("/api/v1/tasks?list=wish", headers=world.auth("leader_a"))
    assert (r.status_code, list(r.json["errors"]["query"])) == (422, ["list"])


# --- a task opened on a list ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "body", "kind"),
    [  # a resident's wish told at the window; a problem a worker found on rounds
        ("worker_a1", {"source": "window", "title": "楼门口加装扶手"}, "need"),
        ("worker_a1", {"source": "proactive", "type": "report", "title": "井盖松动"}, "problem"),
        ("leader_a", {"source": "leader", "title": "自行车棚漏雨"}, "problem"),
    ],
)
def test_a_task_opened_on_a_list_is_counted_there(app, client, world, user, body, kind):
    """Not only a visit's follow-up: a need told at the window and a problem found on rounds
    go on the lists the office keeps, counted as a follow-up is."""
    body = {**body, "list": kind, "household_id": world.households[A1][0].id}
    r = client.post("/api/v1/tasks", json=body, headers=world.auth(user))
    assert r.status_code == 201, r.json
    assert r.json["list"] == kind
    listed = client.get(f"/api/v1/tasks?list={kind}", headers=world.auth("leader_a")).json
    assert r.json["id"] in [t["id"] for t in listed]
    app.config["FIXED_NOW"] = T0 + timedelta(minutes=5)  # read a little later
    counted = lists(client, world, grid=A1, week="2026-W47")
    assert counted[kind]["raised"] == 1 and counted[kind]["open"] == 1


def test_a_task_opened_on_no_list_or_a_list_of_no_kind(client, world, session):
    base = {"source": "window", "title": "开证明", "household_id": world.households[A1][0].id}
    r = client.post("/api/v1/tasks", json=base, headers=world.auth("worker_a1"))
    assert (r.status_code, r.json["list"]) == (201, None)
    before = session.scalar(select(func.count(Task.id)))
    r = client.post("/api/v1/tasks", json={**base, "list": "wish"}, headers=world.auth("worker_a1"))
    assert (r.status_code, list(r.json["errors"]["json"])) == (422, ["list"])
    assert session.scalar(select(func.count(Task.id))) == before


# --- GET /tasks/lists: each list per grid ------------------------------------------------------
def on_list(session, world, kind, *, created, grid=A1, status=None, resolved=None):
    """A visit's follow-up task on `kind`'s list, opened at `created`, and done at `resolved`."""
    task = make_task(session, grid, now=created, source="visit")
    values = {"list_kind": kind}
    if status is not None:
        values.update(status=status, resolved_at=resolved)
    session.execute(Task.__table__.update().where(Task.id == task.id).values(**values))
    return task


def lists(client, world, user="admin_a", **query):
    r = client.get(LISTS, query_string=query, headers=world.auth(user))
    assert r.status_code == 200, r.json
    return r.json


NONE = {"raised": 0, "done": 0, "open": 0}


def test_each_list_counts_raised_done_and_open_per_grid(client, world, session):
    """The week's ledger of each list: raised in it, done in it, and open (not done) as it
    stands, whenever raised; the grids with nothing on their lists answer zeros."""
    week_before = T0 - timedelta(days=7)
    on_list(session, world, "need", created=T0 - timedelta(hours=3), status="resolved",
            resolved=T0 - timedelta(hours=1))  # fmt: skip
    on_list(session, world, "need", created=T0 - timedelta(hours=2))
    on_list(session, world, "problem", created=week_before)  # raised last week, still open
    on_list(session, world, "problem", created=week_before, status="closed",
            resolved=T0 - timedelta(days=1))  # raised last week, done this one  # fmt: skip
    on_list(session, world, "problem", created=week_before - timedelta(days=7), status="closed",
            resolved=week_before)  # done last week: no longer on this week's list  # fmt: skip
    make_task(session, A1, now=T0 - timedelta(hours=2))  # on no list
    body = lists(client, world, community=A, week="2026-W47")
    assert [g["code"] for g in body["grids"]] == [A1, A2]
    a1 = body["grids"][0]
    assert a1["need"] == {"raised": 2, "done": 1, "open": 1}
    assert a1["problem"] == {"raised": 0, "done": 1, "open": 1}
    assert (body["grids"][1]["need"], body["grids"][1]["problem"]) == (NONE, NONE)
    assert (body["need"], body["problem"]) == (a1["need"], a1["problem"])
    one = lists(client, world, grid=A1, week="2026-W47")
    assert [g["code"] for g in one["grids"]] == [A1]
    assert (one["grid"], one["need"]) == (A1, a1["need"])


def test_a_past_week_counts_open_what_was_done_after_it(client, world, session):
    """Read later, a week reads as it closed: a need done the week after was open then."""
    on_list(session, world, "need", created=T0 - timedelta(days=7), status="resolved",
            resolved=T0 - timedelta(hours=1))  # fmt: skip
    assert lists(client, world, community=A, week="2026-W46")["need"] == {
        "raised": 1,
        "done": 0,
        "open": 1,
    }
    assert lists(client, world, community=A, week="2026-W47")["need"] == {
        "raised": 0,
        "done": 1,
        "open": 0,
    }


def test_a_reopened_task_is_back_on_its_list(client, world, session):
    on_list(session, world, "problem", created=T0 - timedelta(hours=5), status="reopened",
            resolved=T0 - timedelta(hours=4))  # fmt: skip
    assert lists(client, world, community=A, week="2026-W47")["problem"] == {
        "raised": 1,
        "done": 0,
        "open": 1,
    }


def test_lists_for_a_period_given_in_beijing_time(client, world, session):
    on_list(session, world, "need", created=T0)
    body = lists(client, world, community=A, start="2026-11-17T00:00:00", end="2026-11-18T00:00:00")
    assert body["need"]["raised"] == 1
    assert body["start"] == "2026-11-17T00:00:00+08:00"


def test_a_worker_reads_the_lists_of_their_own_grids(client, world, session):
    on_list(session, world, "need", created=T0, grid=A2)
    body = lists(client, world, user="worker_a1", community=A, week="2026-W47")
    assert [g["code"] for g in body["grids"]] == [A1]
    assert body["need"] == NONE


def test_the_lists_of_a_community_you_cannot_see_are_not_found(client, world):
    r = client.get(LISTS, query_string={"community": B, "week": "2026-W47"},
                   headers=world.auth("admin_a"))  # fmt: skip
    assert r.status_code == 404


@pytest.mark.parametrize(
    "query, field",
    [
        ({"community": A}, "start"),
        ({"week": "2026-W47"}, "grid"),
        ({"community": A, "grid": A1, "week": "2026-W47"}, "grid"),
        ({"community": A, "week": "2026-W47", "start": "2026-11-17T00:00:00"}, "week"),
        ({"community": A, "start": "2026-11-18T00:00:00", "end": "2026-11-17T00:00:00"}, "end"),
        ({"community": A, "week": "2026-47"}, "week"),
    ],
)
def test_lists_without_one_place_and_one_period_are_a_422(client, world, query, field):
    r = client.get(LISTS, query_string=query, headers=world.auth("admin_a"))
    assert (r.status_code, list(r.json["errors"]["query"])) == (422, [field])


def test_lists_for_a_week_beyond_the_calendar_are_a_422(client, world):
    r = client.get(
        LISTS, query_string={"grid": A1, "week": "9999-W52"}, headers=world.auth("admin_a")
    )
    assert (r.status_code, r.json["field"]) == (422, "week")


def test_migration_0059_puts_the_follow_ups_recorded_before_on_the_need_list(own_database_url):
    """Backfill: a follow-up recorded before the lists, and its task, are on the need list (what
    a client sending no kind gets); a visit without a follow-up and a hotline task on none."""
    import uuid

    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, worker_id = migration_grid(own_database_url, worker="mig_0059")
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    visit = text(RAW_VISIT)
    task = text(
        "INSERT INTO tasks (source, type, title, grid_id, visit_id, external_id, status,"
        " created_at, due_at) VALUES (:s, 'help', 'x', :g, :v, :e, 'dispatched', :t, :t)"
        " RETURNING id"
    )
    followed, plain = uuid.uuid4(), uuid.uuid4()
    try:
        command.downgrade(config, "0058")
        with engine.begin() as conn:
            for vid, flagged in ((followed, True), (plain, False)):
                conn.execute(
                    visit, {"id": vid, "w": worker_id, "g": grid_id, "t": T0, "f": flagged}
                )
            made = [
                conn.scalar(task, {"s": s, "g": grid_id, "v": v, "e": e, "t": T0})
                for s, v, e in (("visit", followed, None), ("hotline", None, "12345-0059"))
            ]
        command.upgrade(config, "head")
        with engine.begin() as conn:
            kinds = dict(conn.execute(text("SELECT id, follow_up_kind FROM visits")).all())
            lists = (
                conn.execute(
                    text("SELECT list_kind FROM tasks WHERE id = ANY(:ids) ORDER BY id"),
                    {"ids": made},
                )
                .scalars()
                .all()
            )
            conn.execute(text("DELETE FROM tasks"))
            conn.execute(text("DELETE FROM visits"))
        assert kinds == {followed: "need", plain: None}
        assert lists == ["need", None]
    finally:
        engine.dispose()
