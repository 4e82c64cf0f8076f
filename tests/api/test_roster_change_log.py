"""A published roster's change log as the office reads it: names beside the ids, and the leave
a shift was handed on for."""

from __future__ import annotations

import pytest

from api.models import Leave
from tests.api.test_rosters import (
    BEFORE_THE_WEEK,
    WED,
    all_shifts,
    by_id,
    decide_leave,
    published_week,
    request_leave,
    same_day_pair,
)
from tests.factories import make_roster_community, make_user


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


def spare(session, c):
    """A worker of the community's first grid taken on after the week was published: free."""
    return make_user(
        session, "changelog_spare", "worker", display_name="Spare", grids=[c.grids[0].code]
    )


def changes(client, c, roster_id, who=None):
    answer = client.get(f"/api/v1/rosters/{roster_id}/changes", headers=c.auth(who or c.leader))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_the_change_log_names_who_changed_it_and_the_workers_before_and_after(client, session, app):
    """A grid leader reads the admin's change: the ids alone named people the leader may not
    look up (GET /users shows a leader their grids' workers, not the admin), so the log could
    not say who changed what."""
    c = make_roster_community(session, app, 8, 6)
    view = published_week(client, c)
    new = spare(session, c)
    shift = next(s for s in all_shifts(view) if s["date"] == str(WED))
    handed = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"worker_id": new.id}, headers=c.auth(c.admin)
    )
    assert handed.status_code == 200, handed.get_json()
    (change,) = changes(client, c, view["id"])
    assert change["changed_by_id"] == c.admin.id
    assert change["changed_by_name"] == c.admin.display_name
    assert change["before"]["worker_name"] == by_id(c, shift["worker_id"]).display_name
    assert change["after"]["worker_name"] == "Spare"
    assert change["for_leave_id"] is None  # an ordinary hand-over


def test_a_shift_handed_on_from_a_worker_on_leave_names_the_leave(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    view = published_week(client, c)
    shift = next(
        s for s in all_shifts(view) if s["date"] == str(WED) and s["worker_id"] != c.leader.id
    )
    worker = by_id(c, shift["worker_id"])
    leave = request_leave(client, c, worker, WED, WED).get_json()
    assert decide_leave(client, c, leave, "approve")["status"] == "approved"
    new = spare(session, c)
    handed = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"worker_id": new.id}, headers=c.auth(c.leader)
    )
    assert handed.status_code == 200, handed.get_json()
    (change,) = changes(client, c, view["id"])
    assert change["for_leave_id"] == leave["id"]
    # Cancelled afterwards, the leave is still what the shift was handed on for.
    session.get(Leave, leave["id"]).status = "cancelled"
    session.flush()
    assert changes(client, c, view["id"])[0]["for_leave_id"] == leave["id"]


def test_a_swap_is_logged_once_per_shift_with_both_names(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    view = published_week(client, c)
    a, b = same_day_pair(view)
    asked = client.post(
        f"/api/v1/shifts/{a['id']}/swap",
        json={"with_shift_id": b["id"]},
        headers=c.auth(by_id(c, a["worker_id"])),
    ).get_json()
    accepted = client.post(
        f"/api/v1/swaps/{asked['id']}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert accepted.status_code == 200, accepted.get_json()
    logged = changes(client, c, view["id"], who=c.viewer)
    assert {x["action"] for x in logged} == {"swap"}
    names = {(x["before"]["worker_name"], x["after"]["worker_name"]) for x in logged}
    first, second = by_id(c, a["worker_id"]).display_name, by_id(c, b["worker_id"]).display_name
    assert names == {(first, second), (second, first)}
    assert {x["changed_by_name"] for x in logged} == {second}


def test_the_log_finds_the_leave_of_every_change_in_one_statement(client, session, app, connection):
    """Three hand-overs: the leave each was handed on for is read in one statement, not one a
    change (a week handed on shift by shift made the log one round trip a change)."""
    from sqlalchemy import event

    c = make_roster_community(session, app, 8, 6)
    view = published_week(client, c)
    new = spare(session, c)
    one_a_day = {s["date"]: s for s in all_shifts(view)}  # the spare holds one post a day
    mine = [one_a_day[day] for day in sorted(one_a_day)]
    for shift in mine[:3]:
        handed = client.patch(
            f"/api/v1/shifts/{shift['id']}", json={"worker_id": new.id}, headers=c.auth(c.admin)
        )
        assert handed.status_code == 200, handed.get_json()
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        logged = changes(client, c, view["id"])
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(logged) == 3 and {x["for_leave_id"] for x in logged} == {None}
    assert len([s for s in sent if "FROM leaves" in s]) == 1
