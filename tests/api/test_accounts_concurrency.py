"""Accounts under real concurrency: a reset or a switch-off racing what its account does.

A reset or a switch-off ends the account's tokens, devices and calendar link. A request its
token made before, still in flight, must not leave behind what the change just ended; and two
admins changing each other's accounts at once must both be answered, not deadlock.

The requests commit, so this module works in a database of its own (migrated to head, dropped
at the end), each test in a community of its own.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import Device, User
from api.services import accounts
from tests import races
from tests.factories import build_app, make_roster_community, make_user

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
NEW_PASSWORD = "a-new-password-1"
_codes = itertools.count(1)


@pytest.fixture()
def live(own_database_url):
    """A committed community of three workers (the first a leader) over two grids."""
    from api.extensions import db

    app = build_app(own_database_url, FIXED_NOW=NOW)
    with app.app_context(), db.begin() as session:
        c = make_roster_community(session, app, 3, 2, code=f"110109008{next(_codes):03d}")
        session.expunge_all()
    yield app, c
    with app.app_context():
        db.engine.dispose()


def _while_held(app, change, request):
    """Run `change` (a service call) in a transaction of its own, start `request` while it
    holds its locks, let the change commit once the request waits, and return its answer."""
    from api.extensions import db

    with app.app_context(), Session(db.engine) as session:
        change(session)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(request)
            races.wait_for_lock_waits(db.engine, 1)
            session.commit()
            return answer.result(timeout=60)


def _active_devices(app, user_id: int) -> int:
    from api.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return conn.scalar(
            select(func.count()).where(Device.user_id == user_id, Device.active.is_(True))
        )


@pytest.mark.parametrize("change", ["reset", "switch-off"])
def test_a_device_registered_by_a_token_the_change_ends_is_not_left_active(live, change):
    app, c = live
    worker = c.workers[1]
    lost_phone = c.auth(worker)  # signed in before the change: the phone lost

    def ending(session):
        actor = accounts.Actor(None)
        if change == "reset":
            accounts.reset_password(session, actor, worker.id, NEW_PASSWORD, NOW)
        else:
            accounts.change_account(session, actor, worker.id, {"active": False}, NOW)

    def register():
        with app.test_client() as client:
            return client.post(
                "/api/v1/devices",
                json={"platform": "android", "token": f"lost-phone-{change}"},
                headers=lost_phone,
            )

    answer = _while_held(app, ending, register)
    assert answer.status_code == 401, answer.get_json()
    assert _active_devices(app, worker.id) == 0


@pytest.mark.parametrize("method", ["get", "delete"])
def test_a_calendar_link_asked_for_by_a_token_a_reset_ends_is_not_handed_out(live, method):
    app, c = live
    worker = c.workers[2]
    lost_phone = c.auth(worker)
    with app.test_client() as client:  # its calendar subscribed to before
        assert client.get("/api/v1/me/calendar-url", headers=lost_phone).status_code == 200

    def reset(session):
        accounts.reset_password(session, accounts.Actor(None), worker.id, NEW_PASSWORD, NOW)

    def ask():
        with app.test_client() as client:
            return client.open("/api/v1/me/calendar-url", method=method, headers=lost_phone)

    answer = _while_held(app, reset, ask)
    assert answer.status_code == 401, answer.get_json()
    assert "url" not in answer.get_json()


def test_an_account_opened_by_an_admin_switched_off_meanwhile_is_not_opened(live):
    """Another admin (or the district) switches an admin off while their `POST /users` is on
    its way: checked only as the request began, it went through, opening an account (an
    admin's one too) whose password the departing admin chose. It waits for the switch-off
    and is refused (401), as a change of an account is."""
    from api.extensions import db

    app, c = live

    def switch_off(session):
        accounts.change_account(session, accounts.Actor(None), c.admin.id, {"active": False}, NOW)

    def open_one():
        body = {"username": f"late_{c.code}", "password": NEW_PASSWORD, "role": "community_admin"}
        with app.test_client() as client:
            return client.post("/api/v1/users", json=body, headers=c.auth(c.admin))

    answer = _while_held(app, switch_off, open_one)
    assert answer.status_code == 401, answer.get_json()
    with app.app_context(), db.engine.connect() as conn:
        opened = conn.scalar(select(func.count()).where(User.username == f"late_{c.code}"))
    assert opened == 0


@pytest.mark.parametrize("change", ["switch-off"])
def test_two_admins_changing_each_others_accounts_at_once_the_second_is_refused(live, change):
    """As one after the other: the first ends the second admin's tokens, whose request is
    then refused (401), not carried out by an admin switched off or reset meanwhile.

    Each change locked the other admin's row, then wrote its audit entry naming its own
    admin: a foreign key check (KEY SHARE) on the row the other held FOR UPDATE. The two
    waited on each other: a deadlock, one of them answered 503. With the lock FOR NO KEY
    UPDATE both went through: each admin switched the other off. (A reset raced likewise;
    an admin no longer resets a fellow admin's password.)"""
    from api.extensions import db

    app, c = live
    with app.app_context(), db.begin() as session:
        second = make_user(session, f"admin2_{c.code}", "community_admin", community=c.code)
        session.expunge_all()

    def request(actor, target):
        def send():
            with app.test_client() as client:
                if change == "reset":
                    body = {"new_password": NEW_PASSWORD}
                    path = f"/api/v1/users/{target.id}/password"
                    return client.post(path, json=body, headers=c.auth(actor))
                return client.patch(
                    f"/api/v1/users/{target.id}", json={"active": False}, headers=c.auth(actor)
                )

        return send

    with app.app_context():
        answers = races.race(
            db.engine,
            "LOCK TABLE audit_log IN SHARE MODE",  # both wait here, each other's row locked
            {},
            request(c.admin, second),
            request(second, c.admin),
        )
    answered = 200 if change == "switch-off" else 204
    assert sorted(r.status_code for r in answers) == [answered, 401]
    with app.app_context(), db.engine.connect() as conn:
        changed = conn.scalar(
            select(func.count()).where(
                User.id.in_([c.admin.id, second.id]),
                User.active.is_(False) if change == "switch-off" else User.must_change_password,
            )
        )
    assert changed == 1


def test_a_password_change_by_a_token_a_reset_ends_does_not_undo_the_reset(live):
    """The phone lost, and its password seen: the admin resets it. The finder, signed in,
    changing the password while the reset runs, must not end up with the account."""
    from tests.factories import PASSWORD

    app, c = live
    worker = c.workers[1]
    finder = c.auth(worker)

    def reset(session):
        accounts.reset_password(session, accounts.Actor(None), worker.id, NEW_PASSWORD, NOW)

    def change():
        with app.test_client() as client:
            return client.post(
                "/api/v1/auth/password",
                json={"current_password": PASSWORD, "new_password": "the-finders-own-1"},
                headers=finder,
            )

    answer = _while_held(app, reset, change)
    assert answer.status_code == 401, answer.get_json()
    with app.test_client() as client:
        finders = {"username": worker.username, "password": "the-finders-own-1"}
        assert client.post("/api/v1/auth/token", json=finders).status_code == 401
        owners = {"username": worker.username, "password": NEW_PASSWORD}
        signed_in = client.post("/api/v1/auth/token", json=owners)
        assert signed_in.status_code == 200
        assert signed_in.get_json()["password_change_required"] is True


def test_an_admin_switched_off_while_changing_their_own_account_is_refused(live):
    app, c = live

    def switch_off(session):
        accounts.change_account(session, accounts.Actor(None), c.admin.id, {"active": False}, NOW)

    def rename():
        with app.test_client() as client:
            return client.patch(
                f"/api/v1/users/{c.admin.id}",
                json={"phone": "13700002222"},
                headers=c.auth(c.admin),
            )

    answer = _while_held(app, switch_off, rename)
    assert answer.status_code == 401, answer.get_json()


def test_an_admins_change_of_their_own_account_answers_it_as_stored_after_a_change_waited_for(
    live,
):
    """Another admin's change of the account (a phone) commits while this one waits on the
    row: the answer shows the account as stored, not as read before the wait."""
    app, c = live

    def new_phone(session):
        accounts.change_account(
            session, accounts.Actor(None), c.admin.id, {"phone": "13700002222"}, NOW
        )

    def rename():
        with app.test_client() as client:
            return client.patch(
                f"/api/v1/users/{c.admin.id}",
                json={"display_name": "主任"},
                headers=c.auth(c.admin),
            )

    answer = _while_held(app, new_phone, rename)
    assert answer.status_code == 200, answer.get_json()
    assert (answer.get_json()["display_name"], answer.get_json()["phone"]) == (
        "主任",
        "13700002222",
    )


@pytest.mark.parametrize("change", [{"role": "community_admin"}, {"active": False}])
def test_a_grid_leader_named_while_the_account_is_changed_waits_and_is_refused(live, change):
    """The grid's form read the account as an active leader while the office made it an admin
    (or switched it off): the grid was led by an account that could not lead it. Naming a
    leader now waits for the account's change and reads it as it then is."""
    from api.extensions import db

    app, c = live
    with app.app_context(), db.begin() as session:  # a leader of no grid yet
        leader = make_user(session, f"leader2_{c.code}", "grid_leader", community=c.code)
        session.expunge_all()
    grid = c.grids[1]

    def changing(session):
        accounts.change_account(session, accounts.Actor(None), leader.id, change, NOW)

    def name_leader():
        with app.test_client() as client:
            return client.patch(
                f"/api/v1/grids/{grid.id}", json={"leader_id": leader.id}, headers=c.auth(c.admin)
            )

    answer = _while_held(app, changing, name_leader)
    assert answer.status_code == 422 and "leader_id" in str(answer.get_json()["errors"])
