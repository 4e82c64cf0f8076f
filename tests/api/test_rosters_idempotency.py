"""`Idempotency-Key` on the roster's writes: a retry after a lost answer gets the first answer.

A phone asking for leave or a swap, an admin generating or publishing a week or deciding leave:
the answer lost, the same request sent again made a second leave or swap, or was refused (409:
already published, decided, cancelled) as if it had failed. With the same key it gets the
first answer (`Idempotent-Replayed: true`) and nothing is done twice; the same key with another
request is a 422 that does nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.models import Leave, Notification, Roster, Shift, ShiftChange, ShiftSwap
from tests.api.test_rosters import (
    BEFORE_THE_WEEK,
    FRI,
    MON,
    NEXT_WEEK,
    THU,
    TUE,
    WED,
    WEEK,
    by_id,
    decide,
    generate,
    published_week,
    request_leave,
    request_swap,
    same_day_pair,
    set_today,
)
from tests.factories import make_roster_community

KEY = {"Idempotency-Key": "phone-roster-0001"}


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


@pytest.fixture()
def community(session, app):
    return make_roster_community(session, app, 8, 6)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def told(session, kind: str) -> int:
    return count(session, Notification, Notification.kind == kind)


def sent_twice(client, c, who, path, body=None):
    """The same request with the same key, twice (the first answer lost): both answers."""
    headers = {**c.auth(who), **KEY}
    first = client.post(path, json=body, headers=headers)
    again = client.post(path, json=body, headers=headers)
    assert first.status_code in (200, 201), first.get_json()
    assert again.status_code == first.status_code, again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    return first, again


def reused(client, c, who, path, body=None):
    """The key sent again with another request: 422, carried out no more."""
    response = client.post(path, json=body, headers={**c.auth(who), **KEY})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["idempotency_key"] == "reused"
    return response


# --- a worker's requests ---------------------------------------------------------------------


def test_a_retried_leave_request_makes_one_leave_and_asks_the_deciders_once(
    client, session, community
):
    c = community
    worker = c.workers[3]
    body = {"start_date": str(WED), "end_date": str(THU), "reason": "家事"}
    sent_twice(client, c, worker, "/api/v1/leaves", body)
    assert count(session, Leave) == 1
    asked = session.scalars(
        select(Notification.user_id).where(Notification.kind == "leave_requested")
    ).all()
    assert asked and len(asked) == len(set(asked))  # each decider asked once
    reused(client, c, worker, "/api/v1/leaves", {**body, "end_date": str(FRI)})
    assert count(session, Leave) == 1


def test_a_retried_swap_request_opens_one_swap_and_asks_the_other_worker_once(
    client, session, community
):
    c = community
    a, b = same_day_pair(published_week(client, c))
    c_ = same_day_pair(published_week(client, c, NEXT_WEEK), day=MON + timedelta(days=7))[1]
    worker = by_id(c, a["worker_id"])
    path = f"/api/v1/shifts/{a['id']}/swap"
    first, _ = sent_twice(client, c, worker, path, {"with_shift_id": b["id"]})
    assert first.get_json()["status"] == "requested"
    assert count(session, ShiftSwap) == 1
    assert told(session, "shift_swap_requested") == 1
    reused(client, c, worker, path, {"with_shift_id": c_["id"]})
    assert count(session, ShiftSwap) == 1


def open_swap(client, c) -> dict:
    a, b = same_day_pair(published_week(client, c))
    response = request_swap(client, c, a, b)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_retried_swap_acceptance_gets_the_first_answer_not_a_409(client, session, community):
    c = community
    swap = open_swap(client, c)
    other = by_id(c, swap["other_worker_id"])
    changes = count(session, ShiftChange)
    first, _ = sent_twice(client, c, other, f"/api/v1/swaps/{swap['id']}/accept")
    assert first.get_json()["status"] == "accepted"
    assert count(session, ShiftChange) == changes + 2  # the two shifts changed hands once
    reused(client, c, other, f"/api/v1/swaps/{swap['id']}/reject")


def test_a_retried_swap_rejection_gets_the_first_answer_not_a_409(client, session, community):
    c = community
    swap = open_swap(client, c)
    other = by_id(c, swap["other_worker_id"])
    first, _ = sent_twice(client, c, other, f"/api/v1/swaps/{swap['id']}/reject")
    assert first.get_json()["status"] == "rejected"
    assert told(session, "shift_swap_rejected") == 1
    reused(client, c, other, f"/api/v1/swaps/{swap['id']}/accept")


# --- leave decided, cancelled, ended -----------------------------------------------------------


def test_a_retried_leave_decision_gets_the_first_answer_and_tells_the_worker_once(
    client, session, community
):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    path = f"/api/v1/leaves/{leave['id']}/decision"
    first, _ = sent_twice(client, c, c.leader, path, {"decision": "approve"})
    assert first.get_json()["status"] == "approved"
    assert told(session, "leave_decided") == 1
    reused(client, c, c.leader, path, {"decision": "reject"})
    assert session.get(Leave, leave["id"]).status == "approved"


def test_a_retried_leave_cancellation_gets_the_first_answer_not_a_409(client, session, community):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    first, _ = sent_twice(client, c, worker, f"/api/v1/leaves/{leave['id']}/cancel")
    assert first.get_json()["status"] == "cancelled"
    other = request_leave(client, c, worker, FRI, FRI).get_json()
    reused(client, c, worker, f"/api/v1/leaves/{other['id']}/cancel")
    assert session.get(Leave, other["id"]).status == "requested"


def test_a_retried_early_end_of_leave_gets_the_first_answer_not_a_422(
    client, app, session, community
):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, TUE, FRI).get_json()
    assert decide(client, c, leave).status_code == 200
    set_today(app, THU)
    path = f"/api/v1/leaves/{leave['id']}/end"
    first, _ = sent_twice(client, c, worker, path, {"last_day": str(THU)})
    assert first.get_json()["end_date"] == str(THU)
    reused(client, c, worker, path, {"last_day": str(WED)})
    assert session.get(Leave, leave["id"]).end_date == THU


# --- an admin's week ---------------------------------------------------------------------------


def test_a_retried_generation_keeps_the_draft_it_answered(client, session, community):
    """Sent again, the week was solved anew: another draft than the one the admin was shown
    (its shifts made again), and those told of a short week told twice."""
    c = community
    path = f"/api/v1/communities/{c.code}/rosters"
    first, _ = sent_twice(client, c, c.leader, path, {"week": WEEK})
    shown = {s["id"] for day in first.get_json()["days"] for p in ("A", "B") for s in day[p]}
    assert set(session.scalars(select(Shift.id))) == shown
    reused(client, c, c.leader, path, {"week": NEXT_WEEK})
    assert count(session, Roster, Roster.week == NEXT_WEEK) == 0


def test_a_retried_publication_gets_the_first_answer_and_tells_the_workers_once(
    client, session, community
):
    c = community
    view = generate(client, c).get_json()
    path = f"/api/v1/rosters/{view['id']}/publish"
    first, _ = sent_twice(client, c, c.leader, path, {})
    assert first.get_json()["status"] == "published"
    on_roster = len({s.worker_id for s in session.scalars(select(Shift))})
    assert told(session, "roster_published") == on_roster
    reused(client, c, c.leader, path, {"accept_shortfalls": True})


def test_without_a_key_a_resent_publication_is_still_409(client, community):
    c = community
    view = generate(client, c).get_json()
    path = f"/api/v1/rosters/{view['id']}/publish"
    assert client.post(path, headers=c.auth(c.leader)).status_code == 200
    assert client.post(path, headers=c.auth(c.leader)).status_code == 409


WRAPPED = [
    ("/api/v1/communities/{code}/rosters", "post"),
    ("/api/v1/rosters/{roster_id}/publish", "post"),
    ("/api/v1/shifts/{shift_id}/swap", "post"),
    ("/api/v1/swaps/{swap_id}/accept", "post"),
    ("/api/v1/swaps/{swap_id}/reject", "post"),
    ("/api/v1/leaves", "post"),
    ("/api/v1/leaves/{leave_id}/decision", "post"),
    ("/api/v1/leaves/{leave_id}/cancel", "post"),
    ("/api/v1/leaves/{leave_id}/end", "post"),
]


@pytest.mark.parametrize(("path", "method"), WRAPPED)
def test_the_openapi_document_offers_the_header_on_each_roster_write_that_takes_it(
    client, path, method
):
    operation = client.get("/api/v1/openapi.json").json["paths"][path][method]
    headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    assert "Idempotency-Key" in operation["description"]
