"""Accounts: the community office opens, changes, switches off and resets its workers' accounts.

Before `/api/v1/users`, accounts were opened only by `gridwork user create`: an office could not
give a new worker a grid, move one to another grid, or stop one who had left (their tokens,
push devices and calendar link kept working, their tasks stayed with them).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from api.clock import now as clock_now
from api.models import AuditEntry, Device, Notification, Task, User
from tests.factories import A1, A2, B1, PASSWORD, A, centre, make_device, make_task, make_user

NEW_PASSWORD = "a-new-password-1"


def sign_in(client, username, password=PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def usernames(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [u["username"] for u in response.json]


def task_held_by(session, user: User) -> Task:
    task = make_task(session, A1, now=clock_now())
    task.assignee_id, task.status = user.id, "dispatched"
    session.flush()
    return task


# --- looking accounts up ------------------------------------------------------------------------
def test_an_admin_lists_the_accounts_of_their_community_only(client, world):
    listed = usernames(client.get("/api/v1/users", headers=world.auth("admin_a")))
    assert listed == ["admin_a", "leader_a", "worker_a1", "worker_a2"]


def test_a_worker_finds_only_their_own_account(client, world):
    assert usernames(client.get("/api/v1/users", headers=world.auth("worker_a1"))) == ["worker_a1"]
    other = world.users["worker_a2"].id
    assert client.get(f"/api/v1/users/{other}", headers=world.auth("worker_a1")).status_code == 404


def test_a_grid_leader_finds_the_workers_of_their_grids(client, world):
    listed = usernames(client.get("/api/v1/users", headers=world.auth("leader_a")))
    assert listed == ["leader_a", "worker_a1", "worker_a2"]


def test_a_district_viewer_reads_the_district_with_phones_masked(client, session, world):
    world.users["worker_a1"].phone = "13812345678"
    session.flush()
    r = client.get("/api/v1/users?role=worker", headers=world.auth("viewer_110101"))
    assert usernames(r) == ["worker_a1", "worker_a2", "worker_b1"]
    phone = next(u["phone"] for u in r.json if u["username"] == "worker_a1")
    assert phone != "13812345678" and phone.startswith("138") and phone.endswith("5678")
    admin = client.get(
        f"/api/v1/users/{world.users['worker_a1'].id}", headers=world.auth("admin_a")
    )
    assert admin.json["phone"] == "13812345678"


def test_the_list_filters_by_role_grid_and_state(client, session, world):
    world.users["worker_a2"].active = False
    session.flush()
    headers = world.auth("admin_a")
    assert usernames(client.get(f"/api/v1/users?grid={A2}", headers=headers)) == [
        "leader_a",
        "worker_a2",
    ]
    assert usernames(client.get("/api/v1/users?role=worker&active=true", headers=headers)) == [
        "worker_a1"
    ]
    assert usernames(client.get("/api/v1/users?active=false", headers=headers)) == ["worker_a2"]


def test_an_account_shows_the_grids_it_holds_and_leads(client, world):
    r = client.get(f"/api/v1/users/{world.users['leader_a'].id}", headers=world.auth("admin_a"))
    assert r.status_code == 200
    assert (r.json["grid_codes"], r.json["led_grid_codes"]) == ([A1, A2], [A1, A2])
    assert r.json["active"] is True and "password_hash" not in r.json


# --- opening an account -------------------------------------------------------------------------
def test_an_admin_opens_a_workers_account_who_then_signs_in_to_their_grid(client, world):
    r = client.post(
        "/api/v1/users",
        json={
            "username": "worker_a3",
            "password": PASSWORD,
            "role": "worker",
            "display_name": "王芳",
            "phone": "13900001111",
            "grid_codes": [A2],
        },
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 201, r.json
    assert (r.json["community_code"], r.json["grid_codes"], r.json["display_name"]) == (
        world.grids[A2].community_code,
        [A2],
        "王芳",
    )
    token = sign_in(client, "worker_a3").json["access_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["grid_codes"] == [A2]


def test_an_account_opened_with_a_grid_named_twice_holds_it_once(client, world):
    """The grid's code sent twice was the unique key's IntegrityError, answered as a race
    (409 "retry"), which every retry met again: nothing was ever opened."""
    body = {"username": "worker_a3", "password": PASSWORD, "role": "worker"}
    r = client.post(
        "/api/v1/users", json={**body, "grid_codes": [A2, A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 201, r.json
    assert r.json["grid_codes"] == [A2]


def test_an_account_opened_again_with_its_key_is_opened_once(client, world, session):
    """The answer lost, the office's page sends the account again with its Idempotency-Key:
    the first account's answer, not a 409 "username taken" read as a failure (the admin then
    opened the worker a second time under another name)."""
    from sqlalchemy import func, select

    from api.models import User

    body = {"username": "worker_a3", "password": PASSWORD, "role": "worker", "grid_codes": [A2]}
    headers = {**world.auth("admin_a"), "Idempotency-Key": "web-accounts-0001"}
    first = client.post("/api/v1/users", json=body, headers=headers)
    again = client.post("/api/v1/users", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(select(func.count()).where(User.username == "worker_a3")) == 1


def test_a_grid_leader_opened_with_grids_leads_them(client, world):
    r = client.post(
        "/api/v1/users",
        json={"username": "leader_new", "password": PASSWORD, "role": "grid_leader"}
        | {"grid_codes": [A2]},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 201, r.json
    assert r.json["led_grid_codes"] == [A2]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "worker_a1"}, 409, None),  # taken
        ({"grid_codes": [B1]}, 422, "grid_codes"),  # another community's grid
        ({"grid_codes": ["110101001001999"]}, 422, "grid_codes"),  # no such grid
        ({"role": "district_viewer"}, 422, "role"),  # the district's, not the office's
        ({"role": "community_admin", "grid_codes": [A1]}, 422, "grid_codes"),
        ({"password": "short"}, 422, "password"),
        ({"username": "a\nb"}, 422, "username"),
        ({"phone": ""}, 422, "phone"),
        ({"is_admin": True}, 422, "is_admin"),
    ],
)
def test_a_bad_account_form_is_refused_naming_the_field_and_opens_nothing(
    client, session, world, body, status, field
):
    form = {"username": "worker_new", "password": PASSWORD, "role": "worker"} | body
    before = session.scalar(select(User.id).order_by(User.id.desc()).limit(1))
    r = client.post("/api/v1/users", json=form, headers=world.auth("admin_a"))
    assert r.status_code == status, r.json
    assert r.mimetype == "application/problem+json"
    if field is not None:
        assert field in str(r.json.get("errors")), r.json
    assert session.scalar(select(User.id).order_by(User.id.desc()).limit(1)) == before


@pytest.mark.parametrize(
    "username",
    [
        "worker_a1 ",  # reads as worker_a1 in every list, and in the audit log
        " worker_a1",
        "worker_a1\u00a0",  # a no-break space pasted from a web page
        "worker_a1\u3000",  # the ideographic space of a Chinese input method
        "worker\u200c_a1",  # a zero-width non-joiner: nothing shows
        "worker\u200d_a1",
        "worker a1",
    ],
)
def test_a_username_with_a_space_or_an_invisible_character_is_refused(
    client, session, world, username
):
    before = session.scalar(select(User.id).order_by(User.id.desc()).limit(1))
    r = client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": "worker"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 422, r.json
    assert "username" in str(r.json.get("errors")), r.json
    assert session.scalar(select(User.id).order_by(User.id.desc()).limit(1)) == before


@pytest.mark.parametrize(
    "username",
    [
        "Worker_A1",  # another account that reads as worker_a1 in a list and in the audit log
        "WORKER_A1",
        "\uff57orker_a1",  # a full-width w, what a Chinese input method in full-width mode types
        "worker\uff3fa1",  # a full-width low line
    ],
)
def test_a_username_that_reads_as_one_taken_is_refused_as_taken(client, session, world, username):
    """A second account spelt as another but for case or full-width letters was opened: two
    people's accounts, shifts and audit entries then read as one, and a phone that capitalises
    the first letter types the other account's name."""
    before = session.scalar(select(User.id).order_by(User.id.desc()).limit(1))
    r = client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": "worker"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 409, r.json
    assert "worker_a1" in r.json["detail"]
    assert session.scalar(select(User.id).order_by(User.id.desc()).limit(1)) == before


@pytest.mark.parametrize("caller", ["worker_a1", "leader_a", "viewer_110101"])
def test_only_a_community_admin_opens_accounts(client, world, caller):
    r = client.post(
        "/api/v1/users",
        json={"username": "worker_new", "password": PASSWORD, "role": "worker"},
        headers=world.auth(caller),
    )
    assert r.status_code == 403, r.json


# --- changing an account ------------------------------------------------------------------------
def test_moving_a_worker_to_another_grid_changes_what_they_see_at_once(client, world):
    worker = world.users["worker_a1"]
    headers = world.auth("worker_a1")
    home = world.households[A1][0].id
    assert client.get(f"/api/v1/households/{home}", headers=headers).status_code == 200
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    assert r.json["grid_codes"] == [A2]
    # The token signed before the move: its scope is read with it, not stored in it.
    assert client.get(f"/api/v1/households/{home}", headers=headers).status_code == 404
    there = world.households[A2][0].id
    assert client.get(f"/api/v1/households/{there}", headers=headers).status_code == 200


def test_a_name_and_phone_are_changed_and_the_change_is_in_the_audit_log(client, session, world):
    worker = world.users["worker_a1"]
    r = client.patch(
        f"/api/v1/users/{worker.id}",
        json={"display_name": "李强", "phone": "13700002222"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200, r.json
    assert (r.json["display_name"], r.json["phone"]) == ("李强", "13700002222")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.resource == "user"))
    assert (entry.user_id, entry.action, entry.resource_ids, sorted(entry.fields)) == (
        world.users["admin_a"].id,
        "update",
        [worker.id],
        ["display_name", "phone"],
    )


@pytest.mark.parametrize(
    ("caller", "status"),
    [("worker_a1", 403), ("leader_a", 403), ("viewer_110101", 403), ("admin_b", 404)],
)
def test_only_the_communitys_admin_changes_an_account(client, world, caller, status):
    worker = world.users["worker_a1"]
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"display_name": "x"}, headers=world.auth(caller)
    )
    assert r.status_code == status, r.json


def test_an_admin_cannot_give_grids_to_an_admin(client, world):
    admin = world.users["admin_a"]
    r = client.patch(
        f"/api/v1/users/{admin.id}", json={"grid_codes": [A1]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 422 and "grid_codes" in str(r.json["errors"])


def test_a_grid_of_another_community_is_refused_and_the_grids_held_stay(client, world):
    worker = world.users["worker_a1"]
    r = client.patch(
        f"/api/v1/users/{worker.id}",
        json={"grid_codes": [A2, B1]},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 422 and B1 in str(r.json["errors"])
    me = client.get("/api/v1/auth/me", headers=world.auth("worker_a1"))
    assert me.json["grid_codes"] == [A1]


def test_a_patch_that_changes_nothing_writes_no_audit_entry(client, session, world):
    worker = world.users["worker_a1"]
    same = {"display_name": worker.display_name, "grid_codes": [A1], "active": True}
    r = client.patch(f"/api/v1/users/{worker.id}", json=same, headers=world.auth("admin_a"))
    assert r.status_code == 200, r.json
    assert session.scalar(select(AuditEntry).where(AuditEntry.resource == "user")) is None
    r = client.patch(
        f"/api/v1/users/{worker.id}",
        json={**same, "grid_codes": [A1, A2]},
        headers=world.auth("admin_a"),
    )
    entry = session.scalar(select(AuditEntry).where(AuditEntry.resource == "user"))
    assert entry.fields == ["grid_codes"]


# --- changing a role ----------------------------------------------------------------------------
def test_a_worker_made_grid_leader_signs_in_again_and_leads_the_grid_named(client, world):
    worker, admin = world.users["worker_a2"], world.auth("admin_a")
    old = world.auth("worker_a2")
    r = client.patch(f"/api/v1/users/{worker.id}", json={"role": "grid_leader"}, headers=admin)
    assert r.status_code == 200, r.json
    assert (r.json["role"], r.json["grid_codes"]) == ("grid_leader", [A2])
    # The old token carried the old role: it ends, and the next sign-in carries the new one.
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    signed_in = sign_in(client, "worker_a2")
    assert signed_in.status_code == 200, signed_in.json
    headers = {"Authorization": f"Bearer {signed_in.json['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).json["role"] == "grid_leader"
    grid = world.grids[A2]
    r = client.patch(f"/api/v1/grids/{grid.id}", json={"leader_id": worker.id}, headers=admin)
    assert r.status_code == 200, r.json
    # A leader looks up the workers of the grids they lead.
    assert usernames(client.get("/api/v1/users", headers=headers)) == ["leader_a", "worker_a2"]


def test_a_leader_still_leading_grids_keeps_the_role_until_they_have_another_leader(
    client, session, world
):
    leader, admin = world.users["leader_a"], world.auth("admin_a")
    r = client.patch(f"/api/v1/users/{leader.id}", json={"role": "worker"}, headers=admin)
    assert r.status_code == 409, r.json
    assert A1 in r.json["detail"] and A2 in r.json["detail"]
    assert client.get("/api/v1/auth/me", headers=world.auth("leader_a")).json["role"] == (
        "grid_leader"
    )
    successor = make_user(session, "leader_a_2", "grid_leader", community=A)
    for code in (A1, A2):
        grid = world.grids[code]
        moved = client.patch(
            f"/api/v1/grids/{grid.id}", json={"leader_id": successor.id}, headers=admin
        )
        assert moved.status_code == 200, moved.json
    r = client.patch(f"/api/v1/users/{leader.id}", json={"role": "worker"}, headers=admin)
    assert r.status_code == 200, r.json
    assert (r.json["role"], r.json["led_grid_codes"]) == ("worker", [])
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "user").order_by(AuditEntry.id.desc())
    ).first()
    assert (entry.resource_ids, entry.fields) == ([leader.id], ["role"])


def test_moved_to_another_grid_a_worker_is_told_the_b_posts_still_in_the_old_one(
    client, session, world
):
    """A worker moved from A1 to A2 kept tomorrow's B-post in A1 in the published roster, and
    the answer said `shifts_ahead: []`: nobody learnt that the roster still sent them to a grid
    that is no longer theirs (their A-post, and a relief in A2, stay theirs)."""
    from api.models import Roster, Shift
    from api.services.weeks import LOCAL, week_of

    worker = world.users["worker_a1"]
    tomorrow = (clock_now() + timedelta(days=1)).astimezone(LOCAL).date()
    after = tomorrow + timedelta(days=1)
    roster = Roster(community_code=A, week=week_of(tomorrow), status="published")
    session.add(roster)
    session.flush()
    session.add_all(
        [
            Shift(roster_id=roster.id, date=tomorrow, post="B", worker_id=worker.id,
                  grid_id=world.grids[A1].id),
            Shift(roster_id=roster.id, date=after, post="A", worker_id=worker.id),
        ]
    )  # fmt: skip
    session.flush()
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    assert r.json["grid_codes"] == [A2]
    assert r.json["shifts_ahead"] == [tomorrow.isoformat()]


def test_moved_to_another_grid_a_worker_hands_on_the_tasks_held_in_the_old_one(
    client, session, world
):
    """A worker moved from A1 to A2 kept A1's open tasks: nobody of A1 worked them (A1's lists
    showed them taken), and the worker, no longer reading A1's households, went on holding a
    resident's request there. They go to whom dispatch picks in A1, as at a switch-off; a task
    they hold in a grid they keep stays theirs."""
    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    left = task_held_by(session, worker)
    kept = make_task(session, A2, now=clock_now())
    kept.assignee_id, kept.status = worker.id, "accepted"
    session.flush()
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    assert r.json["tasks_handed_on"] == [{"task_id": left.id, "assignee_id": leader.id}]
    session.refresh(left)
    session.refresh(kept)
    assert (left.assignee_id, left.status) == (leader.id, "dispatched")
    assert (kept.assignee_id, kept.status) == (worker.id, "accepted")
    told = session.execute(
        select(Notification.data, Notification.title).where(
            Notification.user_id == worker.id, Notification.kind == "task_updated"
        )
    ).all()
    assert [(d["task_id"], title) for d, title in told] == [
        (str(left.id), "您已调离该网格，任务已转交")
    ]


def test_moved_off_a_grid_a_worker_no_longer_reads_a_task_they_returned_there(
    client, session, world
):
    """A returned task (a wrong dispatch) waits on the grid's leader to place it, its returner
    still its assignee: moved off the grid, the worker kept reading it (an assignee's), its
    complainant in full, on their list, until the leader happened to place it. It stays
    returned for the leader, no longer the worker's."""
    worker = world.users["worker_a1"]
    task = task_held_by(session, worker)
    task.complainant = {"name": "王女士", "phone": "13800000000"}
    session.flush()
    mine = world.auth("worker_a1")
    returned = {"action": "return", "note": "不是我的"}
    r = client.post(f"/api/v1/tasks/{task.id}/transitions", json=returned, headers=mine)
    assert r.status_code == 200, r.json
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200 and r.json["tasks_handed_on"] == []
    assert client.get(f"/api/v1/tasks/{task.id}", headers=mine).status_code == 404
    session.refresh(task)
    assert (task.status, task.assignee_id) == ("returned", None)
    assert (task.events[-1].action, task.events[-1].note) == ("unassign", "原承办人已调离该网格")
    leader = world.auth("leader_a")
    assert client.get(f"/api/v1/tasks/{task.id}", headers=leader).json["status"] == "returned"


def test_moved_off_a_grid_a_worker_reads_the_tasks_they_resolved_there_without_the_complainant(
    client, session, world
):
    """Resolved, called back or closed, a task stays its resolver's (the assignee's): moved off
    the grid, the worker went on reading its complainant's name and phone in full until
    retention erased them. The task stays theirs to read, their record of the work; the
    complainant is masked as a district viewer reads it. The grid's leader reads it in full."""
    worker = world.users["worker_a1"]
    task = task_held_by(session, worker)
    task.complainant = {"name": "王女士", "phone": "13800000000"}
    session.flush()
    mine = world.auth("worker_a1")
    for action in ("accept", "resolve"):
        step = {"action": action, "note": "已处理"}
        r = client.post(f"/api/v1/tasks/{task.id}/transitions", json=step, headers=mine)
        assert r.status_code == 200, r.json
    assert client.get(f"/api/v1/tasks/{task.id}", headers=mine).json["complainant"] == {
        "name": "王女士",
        "phone": "13800000000",
    }
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json

    read = client.get(f"/api/v1/tasks/{task.id}", headers=mine)
    assert read.status_code == 200 and read.json["status"] == "resolved"
    assert "13800000000" not in read.get_data(as_text=True)
    assert "王女士" not in read.get_data(as_text=True)
    listed = client.get("/api/v1/tasks?assignee=me&status=resolved", headers=mine)
    assert [t["id"] for t in listed.json] == [task.id]
    assert "13800000000" not in listed.get_data(as_text=True)
    leader = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("leader_a")).json
    assert leader["complainant"] == {"name": "王女士", "phone": "13800000000"}


def test_moved_off_a_grid_their_shift_still_names_a_worker_is_not_given_their_tasks_back(
    client, session, world
):
    """Today's roster still gives the worker a B-post in the grid they left: dispatch, falling
    back to the grid's B-posts, picked them again, and the admin read "handed on" of tasks that
    went back to their holder as new (their work started again, a 新任务 push for it)."""
    from api.models import Roster, Shift
    from api.services.weeks import LOCAL, week_of

    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    today = clock_now().astimezone(LOCAL).date()
    roster = Roster(community_code=A, week=week_of(today), status="published")
    session.add(roster)
    session.flush()
    session.add(
        Shift(roster_id=roster.id, date=today, post="B", worker_id=worker.id,
              grid_id=world.grids[A1].id)
    )  # fmt: skip
    task = task_held_by(session, worker)
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    assert r.json["tasks_handed_on"] == [{"task_id": task.id, "assignee_id": leader.id}]


def test_a_leader_let_go_of_a_grid_they_still_lead_keeps_its_tasks(client, session, world):
    """Leading a grid is its `leader_id`, not a holding: taken out of `grid_codes`, the grid is
    still theirs to answer for, and so are the tasks they hold there."""
    leader = world.users["leader_a"]
    assert world.grids[A1].leader_id == leader.id
    task = task_held_by(session, leader)
    r = client.patch(
        f"/api/v1/users/{leader.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200 and r.json["tasks_handed_on"] == [], r.json
    session.refresh(task)
    assert task.assignee_id == leader.id


def test_a_worker_given_one_more_grid_keeps_the_tasks_held(client, session, world):
    task = task_held_by(session, world.users["worker_a1"])
    r = client.patch(
        f"/api/v1/users/{world.users['worker_a1'].id}",
        json={"grid_codes": [A1, A2]},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200 and r.json["tasks_handed_on"] == [], r.json
    session.refresh(task)
    assert task.assignee_id == world.users["worker_a1"].id


def test_a_worker_given_one_more_grid_has_no_shift_ahead_to_hand_on(client, session, world):
    r = client.patch(
        f"/api/v1/users/{world.users['worker_a1'].id}",
        json={"grid_codes": [A1, A2]},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200 and r.json["shifts_ahead"] == []


def test_made_a_community_admin_a_worker_lets_go_of_grids_tasks_and_shifts(client, session, world):
    from api.models import Roster, Shift
    from api.services.weeks import LOCAL, week_of

    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    task = task_held_by(session, worker)
    tomorrow = (clock_now() + timedelta(days=1)).astimezone(LOCAL).date()
    roster = Roster(community_code=A, week=week_of(tomorrow))
    session.add(roster)
    session.flush()
    session.add(
        Shift(
            roster_id=roster.id,
            date=tomorrow,
            post="B",
            worker_id=worker.id,
            grid_id=world.grids[A1].id,
        )
    )
    session.flush()
    r = client.patch(
        f"/api/v1/users/{worker.id}",
        json={"role": "community_admin"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200, r.json
    assert (r.json["role"], r.json["grid_codes"]) == ("community_admin", [])
    assert r.json["tasks_handed_on"] == [{"task_id": task.id, "assignee_id": leader.id}]
    assert r.json["shifts_ahead"] == [tomorrow.isoformat()]
    session.refresh(task)
    assert (task.assignee_id, task.status) == (leader.id, "dispatched")
    signed_in = sign_in(client, "worker_a1").json
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    # Now the community's admin: every account of it.
    assert "worker_a2" in usernames(client.get("/api/v1/users", headers=headers))


def test_a_role_change_ends_the_push_devices_with_the_sign_ins(client, session, world):
    """Signed out on every phone by the change, the account gets no more pushes there (the
    worker drops the pushes queued for an inactive device): they kept coming to the signed-out
    phone, the tasks the change handed on included. The next sign-in registers it again."""
    worker = world.users["worker_a1"]
    make_device(session, worker, "fcm-worker-a1", now=clock_now())
    r = client.patch(
        f"/api/v1/users/{worker.id}",
        json={"role": "community_admin"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200, r.json
    device = session.scalar(select(Device).where(Device.user_id == worker.id))
    assert (device.active, device.deactivation_reason) == (False, "role changed")


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"role": "district_viewer"}, 422, "role"),
        ({"role": "community_admin", "grid_codes": [A1]}, 422, "grid_codes"),
    ],
)
def test_a_bad_role_change_is_refused_and_changes_nothing(client, world, change, status, field):
    worker = world.users["worker_a1"]
    r = client.patch(f"/api/v1/users/{worker.id}", json=change, headers=world.auth("admin_a"))
    assert r.status_code == status and field in str(r.json["errors"]), r.json
    me = client.get("/api/v1/auth/me", headers=world.auth("worker_a1"))
    assert (me.status_code, me.json["role"], me.json["grid_codes"]) == (200, "worker", [A1])


def test_an_admin_cannot_change_their_own_role(client, world):
    admin = world.users["admin_a"]
    r = client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "worker"}, headers=world.auth("admin_a")
    )
    assert r.status_code == 409, r.json
    assert client.get("/api/v1/auth/me", headers=world.auth("admin_a")).json["role"] == (
        "community_admin"
    )


# --- switching an account off -------------------------------------------------------------------
def test_switching_off_ends_every_sign_in_push_device_and_calendar_link(client, session, world):
    worker = world.users["worker_a1"]
    signed_in = sign_in(client, "worker_a1").json
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    feed = urlsplit(client.get("/api/v1/me/calendar-url", headers=headers).json["url"])
    make_device(session, worker, "fcm-worker-a1", now=clock_now())
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    assert r.json["active"] is False
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    refresh = {"Authorization": f"Bearer {signed_in['refresh_token']}"}
    assert client.post("/api/v1/auth/refresh", headers=refresh).status_code == 401
    refused = sign_in(client, "worker_a1")  # no new sign-in: told the account is off
    assert refused.status_code == 403 and "access_token" not in refused.json
    assert client.get(f"{feed.path}?{feed.query}").status_code == 403
    assert session.scalars(select(Device.active).where(Device.user_id == worker.id)).all() == [
        False
    ]


def test_switching_off_hands_the_tasks_held_to_whom_dispatch_picks(client, session, world):
    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    task = task_held_by(session, worker)
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    # A1 has no other worker: dispatch falls back to its leader.
    assert r.json["tasks_handed_on"] == [{"task_id": task.id, "assignee_id": leader.id}]
    session.refresh(task)
    assert (task.assignee_id, task.status) == (leader.id, "dispatched")
    told = session.scalars(
        select(Notification.user_id).where(Notification.kind == "task_dispatched")
    ).all()
    assert leader.id in told


def test_switching_off_hands_on_a_task_escalated_past_its_deadline_too(client, session, world):
    """Only its holder resolves an escalated task: left with one switched off, nobody could."""
    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    task = task_held_by(session, worker)
    task.status, task.escalated_at = "escalated", clock_now()
    session.flush()
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert r.json["tasks_handed_on"] == [{"task_id": task.id, "assignee_id": leader.id}]
    session.refresh(task)
    assert (task.assignee_id, task.status) == (leader.id, "dispatched")


def test_a_switched_off_leaders_tasks_wait_unassigned_with_the_other_admins_told(
    client, session, world
):
    """The admin who switched the leader off reads it in the answer; the others are told."""
    leader = world.users["leader_a"]
    other_admin = make_user(session, "admin_a_2", "community_admin", community=A)
    world.users["worker_a1"].active = False  # A1 has nobody else to take it
    task = task_held_by(session, leader)
    r = client.patch(
        f"/api/v1/users/{leader.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert r.json["tasks_handed_on"] == [{"task_id": task.id, "assignee_id": None}]
    session.refresh(task)
    assert (task.assignee_id, task.status) == (None, "new")
    assert task.events[-1].action == "unassign" and "停用" in task.events[-1].note
    told = session.scalars(
        select(Notification.user_id).where(Notification.kind == "task_unassigned")
    ).all()
    assert told == [other_admin.id]


def test_a_task_left_with_a_switched_off_account_is_handed_on_at_the_next_tick(session, world):
    """A leader reassigning a task to a worker in the instant the office switches the worker
    off read them as active: the task stayed with nobody working it. The tick sweeps it up."""
    from api.services import tasks as task_service

    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    task = task_held_by(session, worker)
    worker.active = False  # committed after the switch-off looked at what the worker held
    session.flush()
    result = task_service.tick(session, clock_now())
    assert result.handed_on == 1
    session.refresh(task)
    assert (task.assignee_id, task.status) == (leader.id, "dispatched")
    assert task_service.tick(session, clock_now()).handed_on == 0


def test_a_task_left_with_an_account_made_an_admin_is_handed_on_at_the_next_tick(session, world):
    """A task dispatched to a worker in the instant the office made them a community admin
    (dispatch read them as a worker; the role change's hand-on looked before the task was
    there): the tick swept up only accounts switched off, and the task stayed with an admin,
    out of field work, until its deadline's warning (day 5.6 of a week's task)."""
    from api.services import tasks as task_service

    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    task = task_held_by(session, worker)
    worker.role = "community_admin"  # committed after the change looked at what they held
    session.flush()
    result = task_service.tick(session, clock_now())
    assert result.handed_on == 1
    session.refresh(task)
    assert (task.assignee_id, task.status) == (leader.id, "dispatched")
    assert task_service.tick(session, clock_now()).handed_on == 0


def test_switching_off_lists_the_shifts_a_roster_still_gives(client, session, world):
    from api.models import Roster, Shift
    from api.services.weeks import LOCAL, week_of

    worker = world.users["worker_a1"]
    tomorrow = (clock_now() + timedelta(days=1)).astimezone(LOCAL).date()
    roster = Roster(community_code=worker.community_code, week=week_of(tomorrow))
    session.add(roster)
    session.flush()
    grid_id = world.grids[A1].id
    session.add(
        Shift(roster_id=roster.id, date=tomorrow, post="B", worker_id=worker.id, grid_id=grid_id)
    )
    session.flush()
    r = client.patch(
        f"/api/v1/users/{worker.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert r.json["shifts_ahead"] == [tomorrow.isoformat()]


def test_an_admin_cannot_switch_off_their_own_account(client, world):
    admin = world.users["admin_a"]
    r = client.patch(
        f"/api/v1/users/{admin.id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert r.status_code == 409
    assert client.get("/api/v1/auth/me", headers=world.auth("admin_a")).status_code == 200


def test_switched_on_again_the_worker_signs_in_but_old_tokens_stay_dead(client, world):
    """Back in service the worker signs in, and sets a new password first: the old one may
    have been guessed while the account was off (its right password says the account is
    off, not that it is wrong)."""
    worker = world.users["worker_a1"]
    old = world.auth("worker_a1")
    admin = world.auth("admin_a")
    client.patch(f"/api/v1/users/{worker.id}", json={"active": False}, headers=admin)
    back_on = {"active": True, "new_password": NEW_PASSWORD}
    r = client.patch(f"/api/v1/users/{worker.id}", json=back_on, headers=admin)
    assert r.status_code == 200 and r.json["active"] is True
    signed_in = sign_in(client, "worker_a1", NEW_PASSWORD)
    assert signed_in.status_code == 200 and signed_in.json["password_change_required"] is True
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401


def test_a_password_guessed_while_the_account_was_off_opens_nothing_once_on(client, session, world):
    """Signing in to a switched-off account with its right password says it is off (403): a
    right guess is told. Switched on with its old password marked to be changed, whoever had
    guessed it signed in first, set a password of their own with the guess as the current
    one, and held the account, its owner locked out. Switched on, it has the new password
    the admin hands its owner; the old one is wrong."""
    worker = world.users["worker_a1"]
    admin = world.auth("admin_a")
    client.patch(f"/api/v1/users/{worker.id}", json={"active": False}, headers=admin)
    assert sign_in(client, "worker_a1").status_code == 403  # the guess, told right
    back_on = {"active": True, "new_password": NEW_PASSWORD}
    r = client.patch(f"/api/v1/users/{worker.id}", json=back_on, headers=admin)
    assert r.status_code == 200, r.json
    assert sign_in(client, "worker_a1").status_code == 401
    assert sign_in(client, "worker_a1", NEW_PASSWORD).status_code == 200
    newest = select(AuditEntry).where(AuditEntry.resource == "user").order_by(AuditEntry.id)
    assert session.scalars(newest).all()[-1].fields == ["active", "password"]


def test_switching_on_sent_again_after_a_lost_answer_gets_its_first_answer(client, world):
    """The account was on once the first answer was lost: the same change again was a 422 ("a
    new password goes with switching the account on"), read as a failure of what was done."""
    worker = world.users["worker_a1"]
    admin = world.auth("admin_a")
    client.patch(f"/api/v1/users/{worker.id}", json={"active": False}, headers=admin)
    back_on = {"active": True, "new_password": NEW_PASSWORD}
    once = {**admin, "Idempotency-Key": "web-accounts-on-0001"}
    first = client.patch(f"/api/v1/users/{worker.id}", json=back_on, headers=once)
    again = client.patch(f"/api/v1/users/{worker.id}", json=back_on, headers=once)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"active": True}, "sets a new password"),
        ({"active": True, "new_password": "short"}, "8"),
    ],
)
def test_switching_an_account_on_without_a_new_password_changes_nothing(
    client, session, world, body, says
):
    worker = world.users["worker_a1"]
    admin = world.auth("admin_a")
    client.patch(f"/api/v1/users/{worker.id}", json={"active": False}, headers=admin)
    r = client.patch(f"/api/v1/users/{worker.id}", json=body, headers=admin)
    assert r.status_code == 422 and says in str(r.json["errors"]["json"]["new_password"])
    session.refresh(worker)
    assert worker.active is False


def test_a_new_password_is_not_set_by_a_change_that_does_not_switch_the_account_on(
    client, session, world
):
    """A reset is its own request (`POST /users/{id}/password`, which ends the sign-ins)."""
    worker = world.users["worker_a1"]
    body = {"display_name": "王芳", "new_password": NEW_PASSWORD}
    r = client.patch(f"/api/v1/users/{worker.id}", json=body, headers=world.auth("admin_a"))
    assert r.status_code == 422 and "POST /api/v1/users/{id}/password" in r.json["detail"]
    session.refresh(worker)
    assert worker.display_name != "王芳"
    assert sign_in(client, "worker_a1").status_code == 200


def test_a_fellow_admins_account_is_switched_on_by_the_district(client, session, world, gridwork):
    """Whoever sets an account's password may sign in as it: switching a fellow admin's on,
    with the password it now takes, is the district's, as resetting it is."""
    second = make_user(session, "admin_a2", "community_admin", community=A)
    session.flush()
    gridwork("user", "switch-off", "--username", "admin_a2")
    back_on = {"active": True, "new_password": NEW_PASSWORD}
    r = client.patch(f"/api/v1/users/{second.id}", json=back_on, headers=world.auth("admin_a"))
    assert r.status_code == 403 and "gridwork user switch-on" in r.json["detail"]
    result = gridwork("user", "switch-on", "--username", "admin_a2", "--password", NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    signed_in = sign_in(client, "admin_a2", NEW_PASSWORD)
    assert signed_in.status_code == 200 and signed_in.json["password_change_required"] is True


def test_only_a_grid_leader_is_named_a_grids_leader(client, world):
    """A worker named leader was told of the grid's escalations and could not act on them."""
    admin = world.auth("admin_a")
    worker, grid = world.users["worker_a2"], world.grids[A2]
    r = client.patch(f"/api/v1/grids/{grid.id}", json={"leader_id": worker.id}, headers=admin)
    assert r.status_code == 422 and "grid leader" in r.json["errors"]["leader_id"][0]
    client.patch(f"/api/v1/users/{worker.id}", json={"role": "grid_leader"}, headers=admin)
    r = client.patch(f"/api/v1/grids/{grid.id}", json={"leader_id": worker.id}, headers=admin)
    assert r.status_code == 200 and r.json["properties"]["leader_id"] == worker.id


def test_a_switched_off_account_cannot_be_named_a_grids_leader(client, world):
    admin = world.auth("admin_a")
    worker = world.users["worker_a2"]
    client.patch(f"/api/v1/users/{worker.id}", json={"active": False}, headers=admin)
    grid = world.grids[A2]
    r = client.patch(f"/api/v1/grids/{grid.id}", json={"leader_id": worker.id}, headers=admin)
    assert r.status_code == 422 and "leader_id" in str(r.json["errors"])


# --- resetting a password -----------------------------------------------------------------------
def test_a_reset_password_replaces_the_old_one_and_ends_every_sign_in(client, session, world):
    worker = world.users["worker_a1"]
    old = world.auth("worker_a1")
    make_device(session, worker, "fcm-lost-phone", now=clock_now())
    r = client.post(
        f"/api/v1/users/{worker.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 204, r.json
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    assert sign_in(client, "worker_a1").status_code == 401
    assert sign_in(client, "worker_a1", NEW_PASSWORD).status_code == 200
    assert session.scalars(select(Device.active).where(Device.user_id == worker.id)).all() == [
        False
    ]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "password_reset"))
    assert (entry.user_id, entry.resource_ids, entry.fields) == (
        world.users["admin_a"].id,
        [worker.id],
        ["password"],
    )


def test_an_admin_cannot_reset_a_fellow_admins_password(client, session, world, gridwork):
    """Whoever sets a password may sign in with it: one admin would act as the other. The
    district's operator resets an admin's password."""
    other = make_user(session, "admin_a_2", "community_admin", community=A)
    r = client.post(
        f"/api/v1/users/{other.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 403 and "district" in r.json["detail"]
    assert sign_in(client, "admin_a_2").status_code == 200
    result = gridwork(
        "user", "reset-password", "--username", "admin_a_2", "--password", NEW_PASSWORD
    )
    assert result.exit_code == 0, result.output
    assert sign_in(client, "admin_a_2", NEW_PASSWORD).status_code == 200


def test_an_admin_cannot_take_a_fellow_admins_account_by_way_of_a_role_change(
    client, session, world, gridwork
):
    """Made a worker, a fellow admin's password was then the other admin's to reset, and made
    an admin again the account was theirs to sign in as: another admin's role is the
    district's to change, as their password is the district's to reset."""
    other = make_user(session, "admin_a_2", "community_admin", community=A)
    r = client.patch(
        f"/api/v1/users/{other.id}", json={"role": "worker"}, headers=world.auth("admin_a")
    )
    assert r.status_code == 403 and "district" in r.json["detail"], r.json
    token = sign_in(client, "admin_a_2").json["access_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["role"] == "community_admin"
    reset = client.post(
        f"/api/v1/users/{other.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth("admin_a"),
    )
    assert reset.status_code == 403


def test_the_districts_operator_changes_an_admins_role(client, session, world, gridwork):
    make_user(session, "admin_a_2", "community_admin", community=A)
    result = gridwork("user", "set-role", "--username", "admin_a_2", "--role", "grid_leader")
    assert result.exit_code == 0, result.output
    assert "admin_a_2 is now a grid_leader" in result.output
    token = sign_in(client, "admin_a_2").json["access_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["role"] == "grid_leader"


def test_an_admin_still_makes_a_worker_an_admin(client, world):
    worker = world.users["worker_a2"]
    r = client.patch(
        f"/api/v1/users/{worker.id}",
        json={"role": "community_admin"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200 and r.json["role"] == "community_admin", r.json


def test_the_command_line_asks_for_a_password_not_given(client, world, app):
    from click.testing import CliRunner

    from api.cli import main

    with app.app_context():
        result = CliRunner().invoke(
            main,
            ["user", "reset-password", "--username", "worker_a1"],
            input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n",
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output  # not echoed
    assert sign_in(client, "worker_a1", NEW_PASSWORD).status_code == 200


def test_ones_own_password_is_not_reset_but_changed(client, world):
    admin = world.users["admin_a"]
    r = client.post(
        f"/api/v1/users/{admin.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 409 and "/auth/password" in r.json["detail"]


@pytest.mark.parametrize(
    ("caller", "status"), [("worker_a1", 403), ("leader_a", 403), ("admin_b", 404)]
)
def test_only_the_communitys_admin_resets_a_password(client, world, caller, status):
    worker = world.users["worker_a1"]
    r = client.post(
        f"/api/v1/users/{worker.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth(caller),
    )
    assert r.status_code == status
    assert sign_in(client, "worker_a1").status_code == 200


# --- a password an admin set is changed by its owner ------------------------------------------
def bearer_of(answer) -> dict:
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


def test_after_a_reset_the_owner_sets_their_own_password_before_anything_else(client, world):
    """The admin knows the password they set: its owner's tokens open only /auth until the
    owner sets one only they know."""
    worker = world.users["worker_a1"]
    client.post(
        f"/api/v1/users/{worker.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth("admin_a"),
    )
    signed_in = sign_in(client, "worker_a1", NEW_PASSWORD)
    assert signed_in.status_code == 200 and signed_in.json["password_change_required"] is True
    headers = bearer_of(signed_in)
    refused = client.get("/api/v1/households", headers=headers)
    assert refused.status_code == 403
    assert refused.json["type"].endswith("/password-change-required")
    assert refused.mimetype == "application/problem+json"
    me = client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200 and me.json["password_change_required"] is True
    refresh = {"Authorization": f"Bearer {signed_in.json['refresh_token']}"}
    refreshed = client.post("/api/v1/auth/refresh", headers=refresh)
    assert refreshed.json["password_change_required"] is True
    assert client.get("/api/v1/households", headers=bearer_of(refreshed)).status_code == 403

    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": NEW_PASSWORD, "new_password": "only-i-know-this"},
        headers=bearer_of(refreshed),
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["password_change_required"] is False
    assert client.get("/api/v1/households", headers=bearer_of(changed)).status_code == 200
    assert (
        sign_in(client, "worker_a1", "only-i-know-this").json["password_change_required"] is False
    )


def test_a_map_tile_is_refused_too_until_the_password_is_changed(client, world):
    from tests.api.test_tiles import tile_of

    worker = world.users["worker_a1"]
    client.post(
        f"/api/v1/users/{worker.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=world.auth("admin_a"),
    )
    headers = bearer_of(sign_in(client, "worker_a1", NEW_PASSWORD))
    z, x, y = tile_of(*centre(A1), 16)
    for _ in range(2):  # the first tile of a map session, then one whose check is deferred
        r = client.get(f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", headers=headers)
        assert r.status_code == 403, r.data


def test_an_account_the_office_opened_sets_its_own_password_at_the_first_sign_in(client, world):
    r = client.post(
        "/api/v1/users",
        json={"username": "worker_new", "password": PASSWORD, "role": "worker"},
        headers=world.auth("admin_a"),
    )
    assert r.json["password_change_required"] is True
    signed_in = sign_in(client, "worker_new")
    assert signed_in.json["password_change_required"] is True
    assert client.get("/api/v1/tasks", headers=bearer_of(signed_in)).status_code == 403


# --- the command line: any account, district viewers' too ---------------------------------------
@pytest.fixture()
def gridwork(app):
    from click.testing import CliRunner

    from api.cli import main

    def run(*args: str):
        with app.app_context():
            return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def test_an_operator_switches_off_a_district_viewer_no_admin_can_reach(
    client, session, world, gridwork
):
    viewer = world.users["viewer_110101"]
    headers = world.auth("viewer_110101")
    result = gridwork("user", "switch-off", "--username", "viewer_110101")
    assert result.exit_code == 0, result.output
    session.refresh(viewer)
    assert viewer.active is False
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    entry = session.scalar(select(AuditEntry).where(AuditEntry.resource == "user"))
    assert entry.resource_ids == [viewer.id]
    assert (entry.user_id, entry.action, entry.fields) == (None, "update", ["active"])


def test_an_operator_switching_off_a_worker_is_told_where_their_tasks_went(
    session, world, gridwork
):
    task = task_held_by(session, world.users["worker_a1"])
    result = gridwork("user", "switch-off", "--username", "worker_a1")
    assert result.exit_code == 0, result.output
    assert f"task {task.id} to user {world.users['leader_a'].id}" in result.output


def test_an_operator_resets_a_password_its_owner_then_replaces(client, world, gridwork):
    result = gridwork(
        "user", "reset-password", "--username", "viewer_110101", "--password", NEW_PASSWORD
    )
    assert result.exit_code == 0, result.output
    signed_in = sign_in(client, "viewer_110101", NEW_PASSWORD)
    assert signed_in.json["password_change_required"] is True


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("switch-off", "--username", "nobody"), "No account 'nobody'"),
        (("reset-password", "--username", "worker_a1", "--password", "short"), "8 characters"),
    ],
)
def test_the_command_line_refuses_clearly(world, gridwork, args, says):
    result = gridwork("user", *args)
    assert result.exit_code != 0 and says in result.output
