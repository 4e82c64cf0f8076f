"""Relief visits are judged by the roster and leave as they stood when the visit was made.

Whether a worker may record a visit in a grid they relieve (a B-post of a published roster
outside their own grids) was checked against the roster and leave as they stood when the phone
synced. A worker who visited doors offline on a relief shift in the morning, whose leave was
approved at noon (they fell ill) or whose shift was handed on to someone else for the rest of
the day, had the morning's visits refused when the phone synced: as of a household not theirs.
The app keeps a refused visit and sends it again, refused for ever once the day was over (a
past shift is not edited back, begun leave is not cancelled): the visits were lost. A visit
made while a published shift named its worker, before the leave was approved or the shift
handed on, is now stored, marked relief as it would have been then; one made after is still
refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from api.models import Leave, Visit
from api.services.weeks import LOCAL, week_dates
from tests.factories import A1, A2, make_relief_shift, visit_item

BATCH = "/api/v1/visits/batch"
MON, TUE, WED, *_ = week_dates("2026-W48")


def sync(client, world, items, user="worker_a1") -> list[dict]:
    response = client.post(BATCH, json={"visits": items}, headers=world.auth(user))
    assert response.status_code == 200, response.json
    return response.json["results"]


def home(world, code=A2, i=0):
    return world.households[code][i]


def this_morning() -> tuple[datetime, datetime]:
    """Now, and a moment earlier today (Asia/Shanghai): a visit made offline before now."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(LOCAL).date(), time(), LOCAL)
    return now, now - (now - midnight) / 2


def relieve_a2_today(session, world):
    now = datetime.now(UTC)
    return make_relief_shift(
        session,
        world.users["worker_a1"],
        world.grids[A2],
        now.astimezone(LOCAL).date(),
        relief_for=world.users["worker_a2"],
    )


def plan_grids(client, world) -> set[str]:
    plan = client.get("/api/v1/visits/plan", headers=world.auth("worker_a1")).json
    return {h["grid_code"] for h in plan["households"]}


def kept_before_refused_after(client, world, before: dict, after: dict) -> None:
    """Synced together: the relief visit made while the shift was theirs is stored, in A2 and
    marked relief; the one made after is refused as any household outside their grids is."""
    kept, refused = sync(client, world, [before, after])
    assert kept["status"] == "created", kept
    assert kept["visit"]["relief"] is True
    assert kept["visit"]["grid_code"] == A2
    assert (refused["status"], refused["code"]) == ("rejected", "household-not-found")


def approve_leave(client, world, first, last=None) -> dict:
    asked = client.post(
        "/api/v1/leaves",
        json={"start_date": str(first), "end_date": str(last or first)},
        headers=world.auth("worker_a1"),
    )
    assert asked.status_code == 201, asked.json
    decided = client.post(
        f"/api/v1/leaves/{asked.json['id']}/decision",
        json={"decision": "approve"},
        headers=world.auth("leader_a"),
    )
    assert decided.status_code == 200, decided.json
    return decided.json


def test_a_relief_visit_made_before_the_days_leave_was_approved_is_stored(client, world, session):
    """Relief in A2 in the morning, leave for the day approved at noon, then the sync: the
    morning's visit is stored as a relief visit; one made after the approval is refused, and
    the plan no longer sends the worker to A2."""
    relieve_a2_today(session, world)
    now, morning = this_morning()
    before = visit_item(home(world), at=morning)
    approve_leave(client, world, now.astimezone(LOCAL).date())
    after = visit_item(home(world, i=1), at=datetime.now(UTC))
    kept_before_refused_after(client, world, before, after)
    assert plan_grids(client, world) == {A1}


def test_a_relief_visit_made_before_the_shift_was_handed_on_is_stored(client, world, session):
    """The leader hands the rest of the day's relief shift to another worker at noon: the
    morning's visit is stored as a relief visit, one made after the hand-on is refused."""
    shift = relieve_a2_today(session, world)
    _, morning = this_morning()
    before = visit_item(home(world), at=morning)
    handed = client.patch(
        f"/api/v1/shifts/{shift.id}",
        json={"worker_id": world.users["leader_a"].id},
        headers=world.auth("leader_a"),
    )
    assert handed.status_code == 200, handed.json
    after = visit_item(home(world, i=1), at=datetime.now(UTC))
    kept_before_refused_after(client, world, before, after)
    assert plan_grids(client, world) == {A1}


def test_relief_visits_of_a_day_whose_leave_was_approved_days_later_are_stored(
    client, world, session, app
):
    """Leave asked for Monday, approved on Tuesday for the day gone by, the phone synced on
    Wednesday: Monday's relief visits were all made while the roster named the worker."""
    make_relief_shift(
        session, world.users["worker_a1"], world.grids[A2], MON, relief_for=world.users["worker_a2"]
    )
    app.config["FIXED_NOW"] = datetime.combine(MON, time(8), LOCAL).astimezone(UTC)
    asked = client.post(
        "/api/v1/leaves",
        json={"start_date": str(MON), "end_date": str(MON)},
        headers=world.auth("worker_a1"),
    )
    app.config["FIXED_NOW"] = datetime.combine(TUE, time(9), LOCAL).astimezone(UTC)
    assert (
        client.post(
            f"/api/v1/leaves/{asked.json['id']}/decision",
            json={"decision": "approve"},
            headers=world.auth("leader_a"),
        ).status_code
        == 200
    )
    app.config["FIXED_NOW"] = datetime.combine(WED, time(10), LOCAL).astimezone(UTC)
    items = [
        visit_item(home(world, i=i), at=datetime.combine(MON, time(9 + i), LOCAL)) for i in range(2)
    ]
    results = sync(client, world, items)
    assert [r["status"] for r in results] == ["created"] * 2, results
    assert all(r["visit"]["relief"] for r in results)


def test_a_leave_approved_before_the_day_still_closes_the_relief_grid(client, world, session, app):
    """Approved on Sunday for Monday, the shift not handed on: nothing of Monday was made
    while the worker was expected at work."""
    make_relief_shift(
        session, world.users["worker_a1"], world.grids[A2], MON, relief_for=world.users["worker_a2"]
    )
    session.add(
        Leave(
            worker_id=world.users["worker_a1"].id,
            start_date=MON,
            end_date=MON,
            status="approved",
            decided_by_id=world.users["leader_a"].id,
            decided_at=datetime.combine(MON - timedelta(days=1), time(18), LOCAL),
        )
    )
    session.flush()
    app.config["FIXED_NOW"] = datetime.combine(TUE, time(10), LOCAL).astimezone(UTC)
    item = visit_item(home(world), at=datetime.combine(MON, time(9), LOCAL))
    (result,) = sync(client, world, [item])
    assert (result["status"], result["code"]) == ("rejected", "household-not-found")
    assert session.scalar(select(func.count(Visit.id))) == 0


def test_a_visit_in_the_workers_own_grid_is_no_relief_after_the_hand_on(client, world, session):
    """Handing the relief shift on closes the relieved grid only: the worker's own grid stays
    theirs, and its visits are not marked relief."""
    shift = relieve_a2_today(session, world)
    assert (
        client.patch(
            f"/api/v1/shifts/{shift.id}",
            json={"worker_id": world.users["leader_a"].id},
            headers=world.auth("leader_a"),
        ).status_code
        == 200
    )
    (result,) = sync(client, world, [visit_item(home(world, A1))])
    assert result["status"] == "created", result
    assert result["visit"]["relief"] is False


def test_a_relief_visit_made_before_the_shift_was_swapped_away_is_stored(client, world, session):
    """A swap hands the shift on as an edit does (the change log's `action` is `swap`): the
    morning in A2 is the worker's, the afternoon at the window is not a relief of A2."""
    from api.models import Shift

    shift = relieve_a2_today(session, world)
    window = Shift(
        roster_id=shift.roster_id, date=shift.date, post="A", worker_id=world.users["leader_a"].id
    )
    session.add(window)
    session.flush()
    _, morning = this_morning()
    before = visit_item(home(world), at=morning)
    swap = client.post(
        f"/api/v1/shifts/{shift.id}/swap",
        json={"with_shift_id": window.id},
        headers=world.auth("worker_a1"),
    )
    assert swap.status_code == 201, swap.json
    accepted = client.post(
        f"/api/v1/swaps/{swap.json['id']}/accept", headers=world.auth("leader_a")
    )
    assert accepted.status_code == 200, accepted.json
    after = visit_item(home(world, i=1), at=datetime.now(UTC))
    kept_before_refused_after(client, world, before, after)
