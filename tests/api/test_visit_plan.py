"""The week's plan (walking order, must-visits first, overdue flags), cadence and the ledger."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from api.models import Community
from api.services.ledger import household_ledger
from api.services.weeks import LOCAL, week_bounds, week_of
from geo.routing import route_length_m
from tests.factories import A1, A, make_household, visit_item

PLAN = "/api/v1/visits/plan"
CADENCE = f"/api/v1/communities/{A}/visit-cadence"


def sync(client, world, items, user="worker_a1"):
    response = client.post("/api/v1/visits/batch", json={"visits": items}, headers=world.auth(user))
    assert {r["status"] for r in response.json["results"]} == {"created"}, response.json


def plan(client, world, user="worker_a1", **params):
    params.setdefault("week", week_of(datetime.now(UTC)))
    response = client.get(PLAN, query_string=params, headers=world.auth(user))
    assert response.status_code == 200, response.json
    return response.json


@pytest.mark.parametrize("week", ["9999-W52", "0001-W01"])
def test_a_plan_for_a_week_beyond_the_calendar_is_422(client, world, week):
    response = client.get(PLAN, query_string={"week": week}, headers=world.auth("worker_a1"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == "week" and week in response.json["detail"]


def test_plan_puts_must_visits_first_then_a_short_walk(client, world, session):
    h = world.households[A1]  # h[0] is elderly_80 at the centre; h[1], h[2] east of it
    west = make_household(session, 116.4010, 39.9225)
    east = make_household(session, 116.4045, 39.9225)
    body = plan(client, world)
    ids = [s["household_id"] for s in body["households"]]
    # The must-visit h[0] first; then a walk east along the row and back west (5.5 steps of
    # 0.0005°), where registration order would zigzag for 7.
    assert ids == [h[0].id, h[1].id, h[2].id, east.id, west.id]
    points = [(s["household_id"], s["lon"], s["lat"]) for s in body["households"]]
    registered = [h[0].id, h[1].id, h[2].id, west.id, east.id]
    assert route_length_m(None, points, ids) < route_length_m(None, points, registered)
    assert body["households"][0]["must_visit"] is True
    assert [s["order"] for s in body["households"]] == [1, 2, 3, 4, 5]
    assert body["total"] == 5


def test_plan_leaves_out_households_visited_this_week(client, world):
    h = world.households[A1]
    sync(client, world, [visit_item(h[1])])
    ids = [s["household_id"] for s in plan(client, world)["households"]]
    assert h[1].id not in ids
    assert h[0].id in ids


def test_nobody_home_does_not_count_as_a_visit(client, world):
    h = world.households[A1]
    sync(client, world, [visit_item(h[1], outcome="nobody_home")])
    stop = next(s for s in plan(client, world)["households"] if s["household_id"] == h[1].id)
    assert stop["visits_this_week"] == 0


def test_overdue_households_are_flagged_and_come_first_in_their_class(client, world):
    h = world.households[A1]
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    sync(client, world, [visit_item(h[2], at=ten_days_ago)])
    stops = plan(client, world)["households"]
    assert [s["household_id"] for s in stops] == [h[0].id, h[2].id, h[1].id]
    assert [s["overdue"] for s in stops] == [False, True, False]
    assert stops[1]["last_visited_at"] is not None


def test_a_leader_reads_a_workers_plan_but_another_worker_cannot(client, world):
    worker = world.users["worker_a1"].id
    assert plan(client, world, user="leader_a", worker=worker)["worker_id"] == worker
    response = client.get(PLAN, query_string={"worker": worker}, headers=world.auth("worker_a2"))
    assert response.status_code == 404


@pytest.mark.parametrize("user", ["worker_a1", "leader_a"])
def test_worker_me_is_the_callers_own_plan_as_on_the_other_lists(client, world, user):
    """`GET /shifts`, `/leaves` and `/swaps` take `worker=me` and `/tasks` `assignee=me`; the
    plan answered 422 "Not a valid integer" to it (found playing the demo)."""
    own, me = plan(client, world, user=user), plan(client, world, user=user, worker="me")
    assert (me["worker_id"], me["households"]) == (world.users[user].id, own["households"])
    response = client.get(PLAN, query_string={"worker": "you"}, headers=world.auth(user))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "worker" in response.json["errors"]["query"]


def test_a_leader_reads_only_their_own_grids_of_a_workers_plan(client, world, session):
    """The worker also walks A2, which this leader does not lead: its households stay out of
    the leader's copy of the plan (they would be a 404 to the leader one by one)."""
    from tests.factories import A2, make_user

    worker = make_user(session, "worker_a1a2", "worker", grids=[A1, A2])
    leader = make_user(session, "leader_a1", "grid_leader", grids=[A1])
    world.users.update(worker_a1a2=worker, leader_a1=leader)
    own = plan(client, world, user="worker_a1a2", worker=worker.id)
    assert {s["grid_code"] for s in own["households"]} == {A1, A2}
    led = plan(client, world, user="leader_a1", worker=worker.id)
    assert {s["grid_code"] for s in led["households"]} == {A1}


def registered(session, households, at: datetime) -> None:
    """The households registered at `at`, and the world's workers holding their grids since."""
    for household in households:
        household.created_at = at
    holding_since(session, at)
    session.flush()


def holding_since(session, at: datetime) -> None:
    from sqlalchemy import text

    session.execute(text("UPDATE grid_holdings SET started_at = least(started_at, :t)"), {"t": at})


def test_a_past_week_is_planned_as_it_stood_at_its_end(client, world, session):
    h = world.households[A1]
    last_week = week_of(datetime.now(UTC) - timedelta(days=7))
    start, _ = week_bounds(last_week)
    registered(session, h, start - timedelta(days=30))
    sync(client, world, [visit_item(h[1], at=start + timedelta(hours=10))])
    ids = [s["household_id"] for s in plan(client, world, week=last_week)["households"]]
    assert set(ids) == {h[0].id, h[2].id}


def test_a_past_weeks_plan_leaves_out_households_registered_after_it(client, world, session):
    """A past week is planned as it stood at its end: a household registered since was not
    there to visit (nor, in the ledger, overdue since its registration)."""
    h = world.households[A1]
    weeks_ago = week_of(datetime.now(UTC) - timedelta(days=21))
    start, end = week_bounds(weeks_ago)
    registered(session, h[:2], start - timedelta(days=1))
    registered(session, h[2:], end + timedelta(days=1))  # the newcomer
    ids = [s["household_id"] for s in plan(client, world, week=weeks_ago)["households"]]
    assert set(ids) == {h[0].id, h[1].id}
    rows = household_ledger(session, grid_ids=[world.grids[A1].id], as_of=end)
    assert {r.household_id for r in rows} == {h[0].id, h[1].id}
    current = {s["household_id"] for s in plan(client, world)["households"]}
    assert h[2].id in current


# --- cadence ---------------------------------------------------------------------------------


def test_default_cadence_is_weekly_and_twice_for_people_living_alone(client, world):
    body = client.get(CADENCE, headers=world.auth("worker_a1")).json
    assert body == {"community_code": A, "default": 1, "tags": {"living_alone": 2}}


def test_admin_sets_the_cadence_and_the_plan_follows_it(client, world, session):
    h = world.households[A1]
    new = {"default": 1, "tags": {"elderly_80": 3}}
    response = client.put(CADENCE, json=new, headers=world.auth("admin_a"))
    assert response.status_code == 200
    assert response.json == {"community_code": A, **new}
    assert session.get(Community, A).settings["visit_cadence"] == new
    sync(client, world, [visit_item(h[0])])
    stop = next(s for s in plan(client, world)["households"] if s["household_id"] == h[0].id)
    assert (stop["visits_this_week"], stop["visits_per_week"]) == (1, 3)


def test_only_the_communitys_admin_sets_its_cadence(client, world):
    body = {"default": 2, "tags": {}}
    assert client.put(CADENCE, json=body, headers=world.auth("worker_a1")).status_code == 403
    assert client.put(CADENCE, json=body, headers=world.auth("admin_b")).status_code == 404


def test_a_cadence_with_an_unknown_tag_or_zero_visits_is_422(client, world):
    for body in ({"default": 1, "tags": {"cat_owner": 2}}, {"default": 0}):
        response = client.put(CADENCE, json=body, headers=world.auth("admin_a"))
        assert response.status_code == 422


# --- ledger ----------------------------------------------------------------------------------


def test_ledger_gives_last_visit_next_due_and_overdue(client, world, session):
    h = world.households[A1]
    now = datetime.now(UTC)
    visited = now - timedelta(days=8)
    sync(client, world, [visit_item(h[1], at=visited)])
    session.get(Community, A).settings = {"visit_cadence": {"default": 1, "tags": {}}}
    rows = {
        r.household_id: r
        for r in household_ledger(session, grid_ids=[world.grids[A1].id], as_of=now)
    }
    assert set(rows) == {x.id for x in h}
    row = rows[h[1].id]
    assert row.last_visited_at == visited
    assert row.next_due_at == visited + timedelta(days=7)
    assert (row.overdue, row.due, row.visits_this_week) == (True, True, 0)
    assert rows[h[0].id].must_visit and not rows[h[1].id].must_visit
    assert rows[h[2].id].last_visited_at is None and not rows[h[2].id].overdue


def test_the_plan_reads_grids_and_communities_in_two_statements(client, world, connection):
    """The cadences and the ledger. The grid codes came from a query of their own after the
    ledger (whose statement joins the grids already), and the cadences from a query for the
    grids' communities, then one for those communities' cadences: one join each does."""
    from sqlalchemy import event

    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.strip())

    event.listen(connection, "before_cursor_execute", record)
    try:
        body = plan(client, world)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert {s["grid_code"] for s in body["households"]} == {world.grids[A1].code}
    reads = re.compile(r"\b(FROM|JOIN) (grids|communities)\b")
    # Not the token check's (it reads the worker's grids too, api/services/sessions.py), nor
    # the relief shifts' (one statement: the change log names a grid handed on by its code).
    plan_reads = [s for s in statements if s.startswith("SELECT") and "revoked_tokens" not in s]
    relief = [s for s in plan_reads if "shift_changes" in s]
    assert len(relief) == 1
    assert len([s for s in plan_reads if reads.search(s) and s not in relief]) == 2


# --- relief days -----------------------------------------------------------------------------


def relieving_a2_on(session, world, app, relief_day: int, now_local: timedelta) -> str:
    """worker_a1 relieves worker_a2 in A2 on day `relief_day` (0 = Monday) of last week; the
    clock reads `now_local` after that week's Monday 00:00 Asia/Shanghai. The week.

    Last week's, not this week's: the clock set ahead of the real time (this week's Thursday,
    read on a Monday) outlived the test's tokens, issued now: a 401 every Monday to Wednesday."""
    from sqlalchemy import text

    from tests.factories import A2, make_relief_shift

    week = week_of(datetime.now(UTC) - timedelta(days=7))
    start, _ = week_bounds(week)
    session.execute(
        text("UPDATE households SET created_at = :t"), {"t": start - timedelta(days=30)}
    )
    monday = start.astimezone(LOCAL).date()
    make_relief_shift(
        session,
        world.users["worker_a1"],
        world.grids[A2],
        monday + timedelta(days=relief_day),
        world.users["worker_a2"],
    )
    app.config["FIXED_NOW"] = start + now_local
    return week


def test_a_relief_day_gone_by_leaves_its_grid_out_of_the_plan(client, world, session, app):
    """Relieved on Wednesday, read just after midnight on Thursday (Wednesday 16:30 UTC): the
    grid's households are its holder's again, and the reliever could record no visit there."""
    week = relieving_a2_on(session, world, app, 2, timedelta(days=3, minutes=30))
    body = plan(client, world, week=week)
    assert {s["grid_code"] for s in body["households"]} == {A1}


def test_a_relief_day_still_to_come_puts_its_grid_in_the_plan(client, world, session, app):
    from tests.factories import A2

    week = relieving_a2_on(session, world, app, 3, timedelta(days=3, minutes=30))
    body = plan(client, world, week=week)
    assert {s["grid_code"] for s in body["households"]} == {A1, A2}


# --- a past week's households as they were then ----------------------------------------------


def a_month_old(session, grid_code=A1, **fields):
    """A household in the grid, registered a month ago (its grids drawn before)."""
    from sqlalchemy import text

    from tests.factories import centre

    created = datetime.now(UTC) - timedelta(days=30)
    session.execute(text("UPDATE grid_versions SET valid_from = :t"), {"t": created})
    holding_since(session, created)
    household = make_household(session, *centre(grid_code, dy=0.001), created_at=created, **fields)
    session.flush()
    return household


def test_last_weeks_plan_reads_the_tags_a_household_had_then(client, world, session):
    """Living alone last week (twice a week), visited once; the tag removed this week. Last
    week's plan still lists it, a must-visit 1 of 2, as the week's report counts it due."""
    from tests.factories import make_visit

    household = a_month_old(session, tags=["living_alone"])
    last = week_of(datetime.now(UTC) - timedelta(days=7))
    make_visit(
        session, world.users["worker_a1"], household, week_bounds(last)[0] + timedelta(hours=10)
    )
    household.tags = []
    session.flush()
    stops = plan(client, world, week=last)["households"]
    stop = next(s for s in stops if s["household_id"] == household.id)
    assert (stop["tags"], stop["must_visit"]) == (["living_alone"], True)
    assert (stop["visits_this_week"], stop["visits_per_week"]) == (1, 2)


def test_last_weeks_plan_reads_the_grid_a_household_was_in_then(client, world, session):
    """In A2 last week, moved to A1 this week: last week it was worker_a2's to visit."""
    from tests.factories import A2

    household = a_month_old(session, A2)
    household.grid_id = world.grids[A1].id  # now, after last week ended
    session.flush()
    last = week_of(datetime.now(UTC) - timedelta(days=7))
    a1 = plan(client, world, week=last)["households"]
    a2 = plan(client, world, user="worker_a2", week=last)["households"]
    assert household.id not in {s["household_id"] for s in a1}
    assert next(s for s in a2 if s["household_id"] == household.id)["grid_code"] == A2
    assert household.id in {s["household_id"] for s in plan(client, world)["households"]}


# --- a past week's grids as the worker held them then ----------------------------------------


def held_for_a_month(session) -> None:
    """The world's workers have held their grids, and its households been registered, for a
    month (the world was made a moment ago)."""
    from sqlalchemy import text

    month_ago = datetime.now(UTC) - timedelta(days=30)
    holding_since(session, month_ago)
    session.execute(text("UPDATE grid_versions SET valid_from = :t"), {"t": month_ago})
    session.execute(text("UPDATE household_history SET valid_from = :t"), {"t": month_ago})
    session.execute(text("UPDATE households SET created_at = :t"), {"t": month_ago})


def give_grids(client, world, username, codes) -> None:
    user = world.users[username]
    response = client.patch(
        f"/api/v1/users/{user.id}", json={"grid_codes": codes}, headers=world.auth("admin_a")
    )
    assert response.status_code == 200, response.json


def test_last_weeks_plan_is_of_the_grids_the_worker_held_as_it_ended(client, world, session):
    """worker_a1 held A1 last week and was given A2 instead this week. Last week's plan was
    today's grids': A2's households, which were never theirs to visit that week, as left
    undone. Their leader reads what A1 had left; the worker, who may no longer read A1's
    households, reads none; this week's plan is A2's."""
    from tests.factories import A2

    held_for_a_month(session)
    give_grids(client, world, "worker_a1", [A2])
    last = week_of(datetime.now(UTC) - timedelta(days=7))

    led = plan(client, world, user="leader_a", week=last, worker=world.users["worker_a1"].id)
    own = plan(client, world, week=last)
    current = plan(client, world)

    assert {s["grid_code"] for s in led["households"]} == {A1}
    assert led["total"] == len(world.households[A1])
    assert own["households"] == []
    assert {s["grid_code"] for s in current["households"]} == {A2}


def test_the_plans_audit_entry_names_what_the_plan_shows(client, world, session):
    """A plan shows each household's address, place, care tags and when it was last found at
    home (`last_visited_at`, `next_due_at`); its audit entry named the register's fields
    instead: members and the phone, which it does not show, and not the last visit, which it
    does (the households layer's entry names it)."""
    from sqlalchemy import select

    from api.models import AuditEntry

    body = plan(client, world)
    assert body["households"]
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "household").order_by(AuditEntry.id.desc())
    ).first()
    assert sorted(entry.fields) == ["address", "last_visited", "location", "tags"]
    assert sorted(entry.resource_ids) == sorted(s["household_id"] for s in body["households"])
