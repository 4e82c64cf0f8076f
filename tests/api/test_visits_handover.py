"""A switched-off worker's visits, left unsent on the phone they handed in, sent by their
community's admin or the leader of their grid (`POST /api/v1/visits/handover?worker=ID`).

The app keeps visits recorded offline until their worker syncs; a worker switched off (left the
job) can no longer sign in, so their last days' visits stayed on the phone for good and the
week's coverage missed them. The admin, signed in on that phone, sends them as the worker's:
each judged as the worker's own batch would be (their grids on the visit's date), and only
those made before the account was switched off.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import AuditEntry, User, Visit
from tests.factories import A1, A2, A, make_user, make_visit, visit_item

HANDOVER = "/api/v1/visits/handover"


def switch_off(client, world, username="worker_a1"):
    user = world.users[username]
    response = client.patch(
        f"/api/v1/users/{user.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert response.status_code == 200, response.json


def hand_over(client, world, items, worker="worker_a1", user="admin_a"):
    return client.post(
        HANDOVER,
        query_string={"worker": world.users[worker].id},
        json={"visits": items},
        headers=world.auth(user),
    )


def test_the_admin_sends_a_switched_off_workers_visits_as_theirs(client, world, session):
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)

    response = hand_over(client, world, [item])

    assert response.status_code == 200, response.json
    [result] = response.json["results"]
    assert result["status"] == "created", result
    visit = session.get(Visit, result["visit"]["id"])
    assert (visit.worker_id, visit.grid.code) == (world.users["worker_a1"].id, A1)


def test_sent_again_they_are_duplicates(client, world, session):
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)
    assert hand_over(client, world, [item]).json["results"][0]["status"] == "created"

    again = hand_over(client, world, [item]).json["results"][0]

    assert again["status"] == "duplicate"
    assert session.scalar(select(Visit.id).where(Visit.household_id == item["household_id"]))


def test_a_visit_dated_after_the_switch_off_is_rejected_and_the_others_stored(
    client, world, session
):
    before = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)
    after = visit_item(world.households[A1][1], at=datetime.now(UTC) + timedelta(minutes=1))

    results = hand_over(client, world, [after, before]).json["results"]

    assert [r["status"] for r in results] == ["rejected", "created"]
    assert results[0]["code"] == "after-switch-off"
    assert session.scalar(select(Visit.id).where(Visit.id == after["id"])) is None


def test_an_active_workers_visits_are_theirs_to_send(client, world, session):
    item = visit_item(world.households[A1][0])

    response = hand_over(client, world, [item])

    assert response.status_code == 409, response.json
    assert "not switched off" in response.json["detail"]
    assert session.scalar(select(Visit.id).where(Visit.id == item["id"])) is None


@pytest.mark.parametrize("user", ["worker_a2", "viewer_110101"])
def test_only_the_community_admin_or_a_grid_leader_hands_over(client, world, session, user):
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)

    response = hand_over(client, world, [item], user=user)

    assert response.status_code == 403, response.json
    assert session.scalar(select(Visit.id).where(Visit.id == item["id"])) is None


def test_the_leader_of_the_workers_grid_sends_them_as_theirs(client, world, session):
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)

    response = hand_over(client, world, [item], user="leader_a")

    assert response.status_code == 200, response.json
    [result] = response.json["results"]
    assert result["status"] == "created", result
    visit = session.get(Visit, result["visit"]["id"])
    assert visit.worker_id == world.users["worker_a1"].id
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "visit", AuditEntry.action == "create")
    ).one()
    assert entry.user_id == world.users["leader_a"].id


def test_a_leader_of_grids_the_worker_never_held_may_not(client, world, session):
    world.users["leader_a2"] = make_user(session, "leader_a2", "grid_leader", grids=[A2])
    session.flush()
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)

    response = hand_over(client, world, [item], user="leader_a2")

    assert response.status_code == 403, response.json
    assert "community admin" in response.json["detail"]
    assert session.scalar(select(Visit.id).where(Visit.id == item["id"])) is None


def test_the_grids_new_leader_sends_the_visits_of_a_leader_who_led_it_unassigned(
    client, world, session
):
    """A grid leader leads A1 by its `leader_id` only (not assigned to it), records a visit
    offline, and is replaced and switched off: leading left no holding, and A1's new leader
    was refused (403: held no grid you lead) though the visit was the old leader's to make."""
    from sqlalchemy import text

    world.users["lead_only"] = make_user(session, "lead_only", "grid_leader", community=A)
    session.flush()
    _lead(client, world, "lead_only")
    session.execute(
        text(
            "UPDATE grid_leaderships SET started_at = now() - interval '1 day' WHERE user_id = :u"
        ),
        {"u": world.users["lead_only"].id},
    )
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    _lead(client, world, "leader_a")
    switch_off(client, world, "lead_only")

    response = hand_over(client, world, [item], worker="lead_only", user="leader_a")

    assert response.status_code == 200, response.json
    [result] = response.json["results"]
    assert result["status"] == "created", result
    assert session.get(Visit, result["visit"]["id"]).worker_id == world.users["lead_only"].id


def _lead(client, world, username):
    response = client.patch(
        f"/api/v1/grids/{world.grids[A1].id}",
        json={"leader_id": world.users[username].id},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 200, response.json


def _worker_of_a1_and_a2_led_by_another(client, world, session):
    """worker_a1 holding A1 and A2, A2 led by leader_a2 (leader_a keeps A1 only)."""
    worker = world.users["worker_a1"]
    world.users["leader_a2"] = make_user(session, "leader_a2", "grid_leader", grids=[A2])
    session.flush()
    answer = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A1, A2]}, headers=world.auth("admin_a")
    )
    assert answer.status_code == 200, answer.json
    return worker


def test_a_leader_sends_only_the_visits_of_the_grids_they_lead(client, world, session):
    """The worker also held A2, led by another: its visit is the admin's (or its leader's) to
    send; refused, it stays parked on the phone (the app keeps refused visits)."""
    _worker_of_a1_and_a2_led_by_another(client, world, session)
    at = datetime.now(UTC) - timedelta(hours=2)
    own = visit_item(world.households[A1][0], at=at)
    other = visit_item(world.households[A2][0], at=at + timedelta(minutes=10))
    switch_off(client, world)

    results = hand_over(client, world, [own, other], user="leader_a").json["results"]

    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["code"] == "not-your-grid"
    assert "community admin" in results[1]["reason"]
    assert session.scalar(select(Visit.id).where(Visit.id == other["id"])) is None
    assert hand_over(client, world, [other], user="leader_a2").json["results"][0]["status"] == (
        "created"
    )


def test_another_communitys_worker_is_not_found(client, world, session):
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)

    response = hand_over(client, world, [item], user="admin_b")

    assert response.status_code == 404, response.json


def test_the_hand_over_is_in_the_audit_log_under_the_admin(client, world, session):
    item = visit_item(world.households[A1][0], at=datetime.now(UTC) - timedelta(hours=2))
    switch_off(client, world)

    hand_over(client, world, [item])

    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "visit", AuditEntry.action == "create")
    ).one()
    assert entry.user_id == world.users["admin_a"].id
    assert [str(u) for u in entry.resource_uuids] == [item["id"]]
    assert entry.fields == ["worker"]


def test_a_visit_already_stored_answered_as_a_duplicate_is_audited_as_read(client, world, session):
    """A visit stored before (synced once, still on the phone) came back as `duplicate` with
    its notes, observations and position to the sender, and no audit entry said so: only the
    created ones were in the log."""
    at = datetime.now(UTC) - timedelta(hours=3)
    stored = make_visit(
        session,
        world.users["worker_a1"],
        world.households[A1][0],
        at,
        notes="腿脚不便，需要轮椅",
        observations={"disability": "wheelchair"},
    )
    switch_off(client, world)
    item = {**visit_item(world.households[A1][0], at=at), "id": str(stored.id)}

    [result] = hand_over(client, world, [item]).json["results"]

    assert result["status"] == "duplicate"
    assert result["visit"]["notes"] == "腿脚不便，需要轮椅"
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "visit", AuditEntry.action == "read")
    ).one()
    assert entry.user_id == world.users["admin_a"].id
    assert entry.resource_uuids == [stored.id]
    assert {"notes", "observations", "raw_location"} <= set(entry.fields)


def test_a_visit_of_a_grid_the_leader_does_not_lead_stays_refused_when_already_stored(
    client, world, session
):
    """A leader sends the visits of the grids they lead: one of another grid is `not-your-grid`.
    One of another grid already stored came back as `duplicate` instead, with its notes."""
    worker = _worker_of_a1_and_a2_led_by_another(client, world, session)
    at = datetime.now(UTC) - timedelta(hours=3)
    stored = make_visit(session, worker, world.households[A2][0], at, notes="独居，常忘关煤气")
    switch_off(client, world)
    item = {**visit_item(world.households[A2][0], at=at), "id": str(stored.id)}

    [result] = hand_over(client, world, [item], user="leader_a").json["results"]

    assert (result["status"], result["code"]) == ("rejected", "not-your-grid")
    assert "visit" not in result


def test_a_switch_off_stamps_when_and_switching_on_clears_it(client, world, session):
    worker = world.users["worker_a1"]
    switch_off(client, world)
    session.expire_all()
    stamped = session.get(User, worker.id).switched_off_at
    assert stamped is not None and abs(stamped - datetime.now(UTC)) < timedelta(minutes=5)
    back_on = {"active": True, "new_password": "back-on-password-1"}
    r = client.patch(f"/api/v1/users/{worker.id}", json=back_on, headers=world.auth("admin_a"))
    assert r.status_code == 200, r.json
    session.expire_all()
    assert session.get(User, worker.id).switched_off_at is None
