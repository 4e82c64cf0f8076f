"""`Idempotency-Key`: a retried create gets the first answer and makes no second record."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from api.models import Household, IdempotencyKey, Task
from tests.api.test_households import csv_file
from tests.factories import A1, A2, bearer, centre, restart_with_rotated_key

KEY = {"Idempotency-Key": "phone-7c0e-0001"}


def household(client, world, key=KEY, user="admin_a", **fields):
    lon, lat = centre(A1)
    body = {"building": "9", "room": "101", "lon": lon, "lat": lat, **fields}
    return client.post("/api/v1/households", json=body, headers={**world.auth(user), **key})


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_retried_create_gets_the_first_answer_and_no_second_record(client, world, session):
    before = count(session, Household)
    first = household(client, world)
    again = household(client, world)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(session, Household) == before + 1


def test_without_a_key_each_create_is_a_new_record(client, world, session):
    before = count(session, Household)
    household(client, world, key={})
    household(client, world, key={}, room="102")
    assert count(session, Household) == before + 2


def test_without_a_key_a_resent_create_is_409_naming_the_first_record(client, world, session):
    """Nothing tells a resend from a second form then, but the address at the point does."""
    first = household(client, world, key={})
    before = count(session, Household)
    again = household(client, world, key={})
    assert again.status_code == 409
    assert again.json["household_id"] == first.json["id"]
    assert count(session, Household) == before


def test_a_key_reused_for_another_request_is_422_and_makes_nothing(client, world, session):
    household(client, world)
    before = count(session, Household)
    other = household(client, world, room="102")
    assert other.status_code == 422
    assert "another request" in other.json["detail"]
    assert count(session, Household) == before


def test_keys_are_each_users_own(client, world, session):
    before = count(session, Household)
    household(client, world, user="admin_a")
    household(client, world, user="leader_a", room="102")
    assert count(session, Household) == before + 2


def test_a_refused_create_keeps_no_key_and_may_be_sent_again(client, world, session):
    refused = household(client, world, lon=100.0, lat=30.0)  # outside every grid
    assert refused.status_code == 422
    assert count(session, IdempotencyKey) == 0
    assert household(client, world).status_code == 201


def test_the_kept_answer_is_sealed(client, world, session):
    household(client, world, phone="13812345678")
    from sqlalchemy import text

    stored = session.execute(text("SELECT body FROM idempotency_keys")).scalar_one()
    assert "13812345678" not in stored and stored.startswith("v1:")


@pytest.mark.parametrize("key", ["", "x" * 201, "two words"])
def test_a_malformed_key_is_400(client, world, key):
    assert household(client, world, key={"Idempotency-Key": key}).status_code == 400


def test_a_retried_register_import_imports_once(client, world, session):
    lon, lat = centre(A1)
    rows = [["2", "1", "1", "101", lon, lat, "", "", 2, "", ""]]
    data = csv_file(rows)

    def upload():
        return client.post(
            "/api/v1/households/import",
            data={"file": (io.BytesIO(data), "register.csv")},
            headers={**world.auth("admin_a"), **KEY},
            content_type="multipart/form-data",
        )

    before = count(session, Household)
    first, again = upload(), upload()
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert count(session, Household) == before + 1


def test_a_retried_task_without_a_ticket_number_opens_one_task(client, world, session):
    lon, lat = centre(A1)
    body = {"source": "window", "title": "办理证明", "location": {"lon": lon, "lat": lat}}
    headers = {**world.auth("admin_a"), **KEY}
    before = count(session, Task)
    first = client.post("/api/v1/tasks", json=body, headers=headers)
    again = client.post("/api/v1/tasks", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"]
    assert count(session, Task) == before + 1


def test_a_worker_s_report_from_the_rounds_sent_again_with_its_key_opens_one_task(
    client, world, session
):
    """The app keeps a report made offline (or whose answer was lost) with its key and body,
    and sends it again as it was: the second send gets the first task, not a second."""
    lon, lat = centre(A1)
    body = {
        "source": "proactive",
        "title": "雨水井堵塞",
        "description": "",
        "urgency": "utility",
        "location": {"lon": lon, "lat": lat},
    }
    headers = {**world.auth("worker_a1"), "Idempotency-Key": "web-0123456789abcdef"}
    before = count(session, Task)
    first = client.post("/api/v1/tasks", json=body, headers=headers)
    again = client.post("/api/v1/tasks", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(session, Task) == before + 1


def test_a_create_committed_but_never_answered_is_409_not_a_second_record(client, world, session):
    """A crash between the commit and the answer leaves the key without its answer."""
    from sqlalchemy import update

    household(client, world)
    session.execute(update(IdempotencyKey).values(status=None, body=None))
    before = count(session, Household)
    again = household(client, world)
    assert again.status_code == 409
    assert count(session, Household) == before
    # Said so a client can read it: what it sent was carried out (a phone's kept report is
    # done, not to be sent again until the key is forgotten and a second one opened).
    assert again.json["idempotency_key"] == "carried_out"


def test_a_replayed_answer_is_audited_as_a_read_of_the_record(client, world, session):
    from api.models import AuditEntry

    first = household(client, world, phone="13812345678")
    household(client, world, phone="13812345678")  # the stored answer, phone and all
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.resource_ids.contains([first.json["id"]]))
    ).all()
    assert sorted(e.action for e in entries) == ["create", "read"]
    read = next(e for e in entries if e.action == "read")
    assert (read.user_id, read.resource) == (world.users["admin_a"].id, "household")
    assert "phone" in read.fields


def test_a_replay_to_a_worker_moved_off_the_grid_is_409_without_the_answer(client, world, session):
    """The kept answer was given again to whoever held the key: a worker moved off the grid
    within the 24 hours got the household's phone and care tags back by sending the same
    request again, though they could no longer read it."""
    from api.models import AuditEntry

    worker = world.users["worker_a1"]
    first = household(client, world, user="worker_a1", phone="13812345678", tags=["disability"])
    assert first.status_code == 201, first.json
    moved = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert moved.status_code == 200, moved.json
    before = count(session, Household)

    again = household(client, world, user="worker_a1", phone="13812345678", tags=["disability"])

    assert again.status_code == 409, again.json
    assert again.json["idempotency_key"] == "carried_out"
    assert "13812345678" not in again.get_data(as_text=True)
    assert "Idempotent-Replayed" not in again.headers
    reads = select(AuditEntry).where(
        AuditEntry.action == "read", AuditEntry.resource_ids.contains([first.json["id"]])
    )
    assert session.scalars(reads).all() == []
    assert count(session, Household) == before


def test_a_retried_transition_gets_the_first_answer_and_takes_one_step(client, world, session):
    """A phone resolving a task at the door loses the answer and sends it again: with the same
    key it gets the first answer, not a 409 "cannot resolve a task that is resolved"."""
    from tests.factories import make_task

    task = make_task(session, now=datetime(2026, 11, 17, 2, 0, tzinfo=UTC))
    worker = world.auth("worker_a1")
    for action in ("accept", "start"):
        client.post(f"/api/v1/tasks/{task.id}/transitions", json={"action": action}, headers=worker)
    body = {"action": "resolve", "note": "已修好"}
    url = f"/api/v1/tasks/{task.id}/transitions"
    first = client.post(url, json=body, headers={**worker, **KEY})
    again = client.post(url, json=body, headers={**worker, **KEY})
    assert (first.status_code, again.status_code) == (200, 200), again.json
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    resolved = [e for e in again.json["events"] if e["action"] == "resolve"]
    assert len(resolved) == 1
    other = client.post(url, json={"action": "resolve", "note": "x"}, headers={**worker, **KEY})
    assert other.status_code == 422  # the key was used for another request


def test_a_retried_reassign_notifies_the_new_assignee_once(client, world, session):
    from api.models import Notification
    from tests.factories import make_task

    task = make_task(session, now=datetime(2026, 11, 17, 2, 0, tzinfo=UTC))
    a2 = world.users["worker_a2"]
    body = {"assignee_id": a2.id, "note": "A2 熟悉情况"}
    headers = {**world.auth("leader_a"), **KEY}
    for _ in range(2):
        r = client.post(f"/api/v1/tasks/{task.id}/assign", json=body, headers=headers)
        assert r.status_code == 200
    told = session.scalars(select(Notification.kind).where(Notification.user_id == a2.id)).all()
    assert told == ["task_reassigned"]


def test_the_push_workers_tick_deletes_keys_past_their_24_hours(
    client, app, session, world, monkeypatch
):
    """A kept answer holds a household's phone or a complainant (sealed): it goes once its
    24 hours have passed, whether or not its user ever sends another key."""
    import logging
    from datetime import timedelta

    from api import cli, idempotency

    household(client, world, phone="13812345678")
    household(client, world, key={"Idempotency-Key": "phone-7c0e-0002"}, user="worker_a1", room="2")
    session.commit()
    created = session.scalar(select(func.max(IdempotencyKey.created_at)))
    later = created + idempotency.KEEP + timedelta(seconds=1)
    monkeypatch.setattr(cli, "database_now", lambda session: created + timedelta(hours=23))
    with app.app_context():
        cli._worker_tick(logging.getLogger("test"))
    session.expire_all()
    assert count(session, IdempotencyKey) == 2
    monkeypatch.setattr(cli, "database_now", lambda session: later)
    with app.app_context():
        cli._worker_tick(logging.getLogger("test"))
    session.expire_all()
    assert count(session, IdempotencyKey) == 0


def test_the_kept_request_hash_cannot_be_recomputed_from_the_request_alone(client, world, session):
    """A stolen dump holds the household's address and point in clear: with an unkeyed hash
    of the request, trying the ~10^9 phones of a prefix gave its sealed phone back."""
    import hashlib
    import json

    lon, lat = centre(A1)
    body = {"building": "9", "room": "101", "lon": lon, "lat": lat, "phone": "13812345678"}
    raw = json.dumps(body).encode()
    headers = {**world.auth("admin_a"), **KEY}
    first = client.post(
        "/api/v1/households", data=raw, headers=headers, content_type="application/json"
    )
    assert first.status_code == 201
    stored = session.scalar(select(IdempotencyKey.request_hash))
    assert stored != hashlib.sha256(b"POST /api/v1/households?\n" + raw).hexdigest()
    again = client.post(
        "/api/v1/households", data=raw, headers=headers, content_type="application/json"
    )
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json


def test_a_key_kept_before_the_hash_was_keyed_still_replays(client, world, session):
    """Keys written by the release before (an unkeyed SHA-256 in hex) live out their 24
    hours: a retry across the upgrade gets its first answer, not a 422."""
    import hashlib
    import json

    from sqlalchemy import update

    lon, lat = centre(A1)
    raw = json.dumps({"building": "9", "room": "101", "lon": lon, "lat": lat}).encode()
    headers = {**world.auth("admin_a"), **KEY}
    first = client.post(
        "/api/v1/households", data=raw, headers=headers, content_type="application/json"
    )
    legacy = hashlib.sha256(b"POST /api/v1/households?\n" + raw).hexdigest()
    session.execute(update(IdempotencyKey).values(request_hash=legacy))
    again = client.post(
        "/api/v1/households", data=raw, headers=headers, content_type="application/json"
    )
    assert again.status_code == 201 and again.json == first.json


# --- a rotated GRIDWORK_SECRET_KEY ------------------------------------------------------------
def household_after_restart(app, world, user="admin_a"):
    """The same create sent to a restarted app, signed in there (a phone's outbox retrying)."""
    with app.app_context():
        headers = bearer(world.users[user])
    lon, lat = centre(A1)
    body = {"building": "9", "room": "101", "lon": lon, "lat": lat}
    return app.test_client().post("/api/v1/households", json=body, headers={**headers, **KEY})


def test_a_retry_after_a_key_rotation_gets_the_first_answer_while_the_old_key_is_a_fallback(
    client, world, session, database_url, connection
):
    """The kept request hash is keyed with GRIDWORK_SECRET_KEY: after a rotation the retry's
    hash differs, and the phone's outbox took the 422 as a permanent failure."""
    first = household(client, world)
    before = count(session, Household)
    app = restart_with_rotated_key(database_url, connection, keep_old=True)
    again = household_after_restart(app, world)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert count(session, Household) == before


def test_a_retry_after_a_key_rotation_without_the_old_key_is_422(
    client, world, session, database_url, connection
):
    household(client, world)
    before = count(session, Household)
    app = restart_with_rotated_key(database_url, connection, keep_old=False)
    again = household_after_restart(app, world)
    assert again.status_code == 422
    assert "another request" in again.json["detail"]
    assert count(session, Household) == before


def test_a_key_kept_after_a_rotation_is_hashed_with_the_new_key(
    world, session, database_url, connection
):
    """Only the check falls back: once the old key is dropped, what was kept since replays."""
    rotated = restart_with_rotated_key(database_url, connection, keep_old=True)
    first = household_after_restart(rotated, world)
    assert first.status_code == 201
    app = restart_with_rotated_key(database_url, connection, keep_old=False)
    again = household_after_restart(app, world)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json


def test_a_replay_to_an_account_whose_role_changed_is_409_without_the_answer(
    client, world, session
):
    """The kept answer was made for the caller's role then: an admin made a worker since got
    an account change's answer (the account's phone in full) back by sending it again, where
    the same request now is refused (the account is not theirs to look up: 404)."""
    from api.services import accounts

    worker, admin = world.users["worker_a1"], world.users["admin_a"]
    change = {"phone": "13900001111"}
    key = {"Idempotency-Key": "office-pc-0042", **world.auth("admin_a")}
    first = client.patch(f"/api/v1/users/{worker.id}", json=change, headers=key)
    assert first.status_code == 200, first.json
    accounts.change_account(  # the district's operator: `gridwork user set-role`
        session, accounts.Actor(None), admin.id, {"role": "worker"}, datetime.now(UTC)
    )
    session.flush()
    as_a_worker = world.auth("admin_a")  # signed in again: the token carries the new role
    assert (
        client.patch(f"/api/v1/users/{worker.id}", json=change, headers=as_a_worker).status_code
        == 404
    )

    again = client.patch(
        f"/api/v1/users/{worker.id}",
        json=change,
        headers={**as_a_worker, "Idempotency-Key": "office-pc-0042"},
    )

    assert again.status_code == 409, again.json
    assert again.json["idempotency_key"] == "carried_out"
    assert "13900001111" not in again.get_data(as_text=True)
    assert "Idempotent-Replayed" not in again.headers


def test_a_replay_after_a_change_of_grids_alone_still_gets_its_answer(client, world, session):
    """What changes the answer's reach is the role or the community: a worker given one more
    grid sends the same create again and gets its first answer, as before."""
    worker = world.users["worker_a1"]
    first = household(client, world, user="worker_a1")
    assert first.status_code == 201, first.json
    widened = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A1, A2]}, headers=world.auth("admin_a")
    )
    assert widened.status_code == 200, widened.json
    again = household(client, world, user="worker_a1")
    assert (again.status_code, again.json) == (201, first.json)
