"""Devices (register, refresh, remove, logout), the deliveries outbox, and the in-app inbox."""

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.models import AuditEntry, Delivery, Device
from api.services import sessions
from api.services.devices import register_device
from api.services.notifications import notify
from tests.factories import A1, PASSWORD, make_device, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)
SUBSCRIPTION = {
    "endpoint": "https://push.example/sub/1",
    "keys": {"p256dh": "BNc-key", "auth": "auth-secret"},
}


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def register(client, world, user="worker_a1", **body):
    return client.post("/api/v1/devices", json=body, headers=world.auth(user))


def test_a_phone_registers_its_fcm_token(client, world):
    r = register(client, world, platform="android", token="fcm-1")
    assert r.status_code == 201, r.json
    assert (r.json["platform"], r.json["active"]) == ("android", True)


def test_registering_the_same_token_again_refreshes_the_device(client, world, session):
    first = register(client, world, platform="android", token="fcm-1").json
    again = register(client, world, platform="android", token="fcm-1").json
    assert again["id"] == first["id"]
    assert session.scalar(select(func.count(Device.id))) == 1


def test_a_device_registers_with_a_label_its_owner_recognises(client, world):
    """ "华为 Mate 40", "Chrome · 安卓": the list and the notice of a retired device name it."""
    r = register(client, world, platform="android", token="fcm-1", label="  华为 Mate 40 ")
    assert r.status_code == 201, r.json
    assert r.json["label"] == "华为 Mate 40"
    [listed] = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert listed["label"] == "华为 Mate 40"


def test_registering_again_without_a_label_keeps_the_label(client, world):
    register(client, world, platform="android", token="fcm-1", label="华为 Mate 40")
    again = register(client, world, platform="android", token="fcm-1").json
    assert again["label"] == "华为 Mate 40"


def test_a_phone_passing_to_another_user_does_not_keep_its_last_owners_label(client, world):
    register(client, world, platform="android", token="fcm-1", label="张三的手机")
    theirs = register(client, world, "worker_a2", platform="android", token="fcm-1").json
    assert theirs["label"] is None


@pytest.mark.parametrize("label", ["x" * 61, "a\nb", "\x00", "   "])
def test_a_label_too_long_blank_or_with_control_characters_is_refused(
    client, world, session, label
):
    r = register(client, world, platform="android", token="fcm-1", label=label)
    assert r.status_code == 422, r.json
    assert "label" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Device.id))) == 0


def test_a_device_is_listed_without_retirement_while_pushes_go_to_it(client, world):
    register(client, world, platform="android", token="fcm-1")
    [listed] = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert (listed["retired"], listed["retired_at"], listed["retired_reason"]) == (
        False,
        None,
        None,
    )


def test_a_user_may_have_many_devices(client, world):
    register(client, world, platform="android", token="fcm-1")
    register(client, world, platform="web", subscription=SUBSCRIPTION)
    r = client.get("/api/v1/devices", headers=world.auth("worker_a1"))
    assert [d["platform"] for d in r.json] == ["android", "web"]


def test_a_web_device_needs_a_subscription(client, world, session):
    r = register(client, world, platform="web", token="fcm-1")
    assert r.status_code == 422
    assert session.scalar(select(func.count(Device.id))) == 0


NOT_HTTPS = "Not a valid https URL."
NOT_A_NAME = "Must name a push service's host, not an IP address or localhost."


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://push.example/sub/1", NOT_HTTPS),
        ("https://127.0.0.1/sub/1", NOT_A_NAME),
        ("https://10.0.0.5/sub/1", NOT_A_NAME),
        ("https://169.254.169.254/latest/meta-data/", NOT_A_NAME),
        ("https://[::1]/sub/1", NOT_A_NAME),
        ("https://localhost/sub/1", NOT_A_NAME),
        ("https://push.localhost./sub/1", NOT_A_NAME),
        ("https://0x7f.0x1/sub/1", NOT_A_NAME),
        ("https://push.example@127.0.0.1:5432/", NOT_A_NAME),
    ],
    ids=[
        "http",
        "loopback",
        "private",
        "link-local",
        "ipv6-loopback",
        "localhost",
        "under-localhost",
        "hex-ipv4",
        "address-behind-userinfo",
    ],
)
def test_a_subscription_endpoint_that_is_not_an_https_push_service_name_is_refused(
    client, world, session, endpoint, message
):
    r = register(client, world, platform="web", subscription={**SUBSCRIPTION, "endpoint": endpoint})
    assert r.status_code == 422, r.json
    assert r.json["errors"]["json"]["subscription"]["endpoint"] == [message]
    assert session.scalar(select(func.count(Device.id))) == 0


def test_a_token_longer_than_any_fcm_token_is_refused(client, world, session):
    # Random, as a real token is: the index holds a repetitive text compressed.
    r = register(client, world, platform="android", token=secrets.token_urlsafe(3072))
    assert r.status_code == 422, r.json
    assert "token" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Device.id))) == 0


def test_a_subscription_endpoint_longer_than_any_push_services_is_refused(client, world, session):
    endpoint = "https://push.example/sub/" + secrets.token_urlsafe(4500)
    subscription = {**SUBSCRIPTION, "endpoint": endpoint}
    r = register(client, world, platform="web", subscription=subscription)
    assert r.status_code == 422, r.json
    assert "endpoint" in r.json["errors"]["json"]["subscription"]
    assert session.scalar(select(func.count(Device.id))) == 0


def test_removing_a_device_stops_deliveries_to_it(client, world, session):
    device = register(client, world, platform="android", token="fcm-1").json
    r = client.delete(f"/api/v1/devices/{device['id']}", headers=world.auth("worker_a1"))
    assert r.status_code == 204
    notify(session, [world.users["worker_a1"].id], "task_updated", "t")
    assert session.scalar(select(func.count(Delivery.id))) == 0


def test_another_users_device_cannot_be_removed(client, world):
    device = register(client, world, platform="android", token="fcm-1").json
    r = client.delete(f"/api/v1/devices/{device['id']}", headers=world.auth("worker_a2"))
    assert r.status_code == 404


def test_logout_revokes_the_token_and_removes_the_device_only(client, world, session):
    phone = world.auth("worker_a1")
    tablet = world.auth("worker_a1")
    device = register(client, world, platform="android", token="fcm-1").json
    other = register(client, world, platform="ios", token="fcm-2").json
    r = client.post("/api/v1/auth/logout", json={"device_id": device["id"]}, headers=phone)
    assert r.status_code == 204
    assert client.get("/api/v1/auth/me", headers=phone).status_code == 401
    assert client.get("/api/v1/auth/me", headers=tablet).status_code == 200
    active = session.scalars(select(Device.id).where(Device.active)).all()
    assert active == [other["id"]]


@pytest.mark.parametrize(
    "body", [{"device_id": 2**31}, {"device_id": 2**40}, {"token": "fcm\x00-1"}]
)
def test_a_sign_out_naming_no_possible_device_still_signs_out(client, world, session, body):
    """The id (past the database's integers) or token (a NUL) went to the database, which
    refused it: a 422 naming nothing, and the sign-in stayed live (the phone, told nothing it
    understood, dropped its token and kept getting pushes). It names no device of the caller's,
    as an id of another's does: the sign-out is made, no device touched."""
    phone = world.auth("worker_a1")
    device = register(client, world, platform="android", token="fcm-1").json
    r = client.post("/api/v1/auth/logout", json=body, headers=phone)
    assert r.status_code == 204, r.json
    assert client.get("/api/v1/auth/me", headers=phone).status_code == 401
    assert session.get(Device, device["id"]).active is True


# --- a device ends with the sign-in that registered it ----------------------------------------
def signed_in_phone(client, token: str) -> tuple[dict, dict]:
    """Sign worker_a1 in on a phone of its own (a session) and register its FCM `token`."""
    tokens = client.post(
        "/api/v1/auth/token", json={"username": "worker_a1", "password": PASSWORD}
    ).json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = client.post(
        "/api/v1/devices", json={"platform": "android", "token": token}, headers=headers
    )
    assert r.status_code == 201, r.json
    return tokens, headers


def active_tokens(session) -> list[str]:
    return session.scalars(select(Device.token).where(Device.active).order_by(Device.token)).all()


def test_a_password_changed_stops_pushes_to_the_phones_it_signed_out(client, session, world):
    """A phone lost: its owner changes the password on another; the lost phone was signed out
    but went on receiving every task's notice (Web Push carries the title)."""
    signed_in_phone(client, "fcm-lost")
    _, headers = signed_in_phone(client, "fcm-in-hand")
    r = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another-password-9"},
        headers=headers,
    )
    assert r.status_code == 200, r.json
    assert active_tokens(session) == ["fcm-in-hand"]
    # The phone in hand goes on with its new session, its device with it: signing that out
    # ends the device too.
    fresh = {"Authorization": f"Bearer {r.json['access_token']}"}
    assert client.post("/api/v1/auth/logout", json={}, headers=fresh).status_code == 204
    assert active_tokens(session) == []


def test_signing_out_stops_pushes_to_the_device_that_session_registered(client, session, world):
    """The app signs out without naming its device (it lost the id): the device goes anyway;
    the same user's other phone keeps its pushes."""
    _, headers = signed_in_phone(client, "fcm-1")
    signed_in_phone(client, "fcm-2")
    assert client.post("/api/v1/auth/logout", json={}, headers=headers).status_code == 204
    assert active_tokens(session) == ["fcm-2"]


def test_signing_out_everywhere_stops_pushes_to_every_device_of_the_caller(client, session, world):
    """Phones of every sign-in go, and a phone registered with a token of no session; another
    user's phone keeps its pushes."""
    _, headers = signed_in_phone(client, "fcm-1")
    signed_in_phone(client, "fcm-2")
    register(client, world, platform="android", token="fcm-no-session")
    register(client, world, user="worker_a2", platform="android", token="fcm-theirs")
    r = client.post("/api/v1/auth/logout-all", headers=headers)
    assert r.status_code == 200, r.json
    assert r.json == {"sessions_revoked": 2, "devices_signed_out": 3}
    assert active_tokens(session) == ["fcm-theirs"]
    reasons = session.scalars(select(Device.deactivation_reason).where(~Device.active)).all()
    assert set(reasons) == {"signed out everywhere"}


def test_a_replayed_refresh_token_stops_pushes_to_its_sessions_device(client, session, world):
    tokens, _ = signed_in_phone(client, "fcm-1")
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert client.post("/api/v1/auth/refresh", headers=refresh).status_code == 200
    assert client.post("/api/v1/auth/refresh", headers=refresh).status_code == 401  # a copy
    assert active_tokens(session) == []


def test_a_phone_whose_sign_in_expired_gets_no_more_pushes(client, session, world):
    """A phone left in a drawer (or lost, its owner never told us): its sign-in ran out after
    the refresh token's days, whoever holds it must sign in to read anything, yet every
    task's notice went on showing on its lock screen. A phone signed in since keeps its."""
    signed_in_phone(client, "fcm-expired")
    user_id = world.users["worker_a1"].id
    later = sessions.open_session(
        session, user_id, refresh_jti="r", expires_at=T0 + timedelta(days=50), ip=None, now=T0
    )
    register_device(session, user_id, "android", token="fcm-live", now=T0, session_id=later.id)
    [note] = notify(session, [user_id], "task_dispatched", "新任务", now=T0 + timedelta(days=31))
    rows = session.scalars(select(Delivery).where(Delivery.notification_id == note.id)).all()
    assert [d.device.token for d in rows] == ["fcm-live"]


def test_a_phone_whose_sign_in_expired_is_listed_as_getting_no_pushes(client, session, world):
    """GET /devices listed a phone whose sign-in had run out as active, though nothing was
    pushed to it any more: its owner saw no reason to sign in on it again. It is listed
    neither active nor signed in (still listed: it can be removed); a phone whose sign-in is
    live is both."""
    user_id = world.users["worker_a1"].id
    for token, expires_at in (("fcm-expired", T0), ("fcm-live", T0 + timedelta(days=20))):
        sign_in = sessions.open_session(
            session,
            user_id,
            refresh_jti=token,
            expires_at=expires_at,
            ip=None,
            now=T0 - timedelta(days=10),
        )
        register_device(
            session, user_id, "android", token=token, now=sign_in.created_at, session_id=sign_in.id
        )
    listed = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert [(d["active"], d["signed_in"]) for d in listed] == [(False, False), (True, True)]


def test_purging_an_expired_sign_in_does_not_bring_its_phone_back(client, session, world):
    """Ended sessions are deleted a month on, and a device's link to its session is then set
    null, as for a device registered before sessions were recorded (which gets pushes)."""
    signed_in_phone(client, "fcm-expired")
    later = T0 + timedelta(days=61)
    sessions.purge_ended(session, later)
    [note] = notify(session, [world.users["worker_a1"].id], "task_dispatched", "新任务", now=later)
    assert session.scalars(select(Delivery).where(Delivery.notification_id == note.id)).all() == []
    assert active_tokens(session) == []


def test_every_notification_queues_one_delivery_per_active_device(session, world):
    worker = world.users["worker_a1"]
    make_device(session, worker, "fcm-1", now=T0)
    make_device(session, worker, "fcm-2", "ios", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-3", now=T0)
    [note] = notify(session, [worker.id], "task_dispatched", "新任务")
    rows = session.scalars(select(Delivery).where(Delivery.notification_id == note.id)).all()
    assert sorted(d.device.token for d in rows) == ["fcm-1", "fcm-2"]
    assert {d.state for d in rows} == {"pending"}


def test_a_rolled_back_change_leaves_no_notification_or_delivery(session, world):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    savepoint = session.begin_nested()
    notify(session, [world.users["worker_a1"].id], "task_dispatched", "新任务")
    savepoint.rollback()
    assert session.scalar(select(func.count(Delivery.id))) == 0


def test_the_inbox_lists_your_notifications_newest_first_and_since(client, world, session):
    me = world.users["worker_a1"].id
    notify(session, [me], "task_dispatched", "一")
    notify(session, [world.users["worker_a2"].id], "task_dispatched", "别人的")
    session.execute(
        Delivery.__table__.update().values(created_at=T0)
    )  # no effect on the inbox; keeps the outbox honest
    r = client.get("/api/v1/notifications", headers=world.auth("worker_a1"))
    assert [n["title"] for n in r.json] == ["一"]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    r = client.get(f"/api/v1/notifications?since={later}", headers=world.auth("worker_a1"))
    assert r.json == []


def test_acknowledging_records_the_read_time_and_the_unread_count(client, world, session):
    me = world.users["worker_a1"].id
    first, second = (notify(session, [me], "task_updated", t)[0] for t in ("一", "二"))
    headers = world.auth("worker_a1")
    assert client.get("/api/v1/notifications/unread-count", headers=headers).json == {"unread": 2}
    r = client.post(f"/api/v1/notifications/{first.id}/ack", headers=headers)
    assert (r.status_code, r.json["read_at"]) == (200, T0.isoformat())
    assert client.get("/api/v1/notifications/unread-count", headers=headers).json == {"unread": 1}
    assert client.post("/api/v1/notifications/ack-all", headers=headers).json == {"acknowledged": 1}
    assert client.get("/api/v1/notifications/unread-count", headers=headers).json == {"unread": 0}


def test_another_users_notification_cannot_be_acknowledged(client, world, session):
    [note] = notify(session, [world.users["worker_a2"].id], "task_updated", "x")
    r = client.post(f"/api/v1/notifications/{note.id}/ack", headers=world.auth("worker_a1"))
    assert r.status_code == 404


def _reads(session, resource):
    return session.scalars(
        select(AuditEntry).where(AuditEntry.action == "read", AuditEntry.resource == resource)
    ).all()


def test_the_inbox_audits_a_read_of_the_tasks_its_notices_name(client, world, session):
    """A task's notice carries its title (a resident's name and plight, from a 12345 call): the
    inbox showed it with no audit entry, though reading the task writes one."""
    me = world.users["worker_a1"]
    task = make_task(session, A1, now=T0, title="3号楼502独居老人王秀英摔倒求助")
    notify(session, [me.id], "task_updated", "任务已更新", task.title, data={"task_id": task.id})

    r = client.get("/api/v1/notifications", headers=world.auth("worker_a1"))

    assert any("王秀英" in n["body"] for n in r.json)
    [entry] = _reads(session, "task")
    assert (entry.user_id, entry.resource_ids, entry.fields) == (me.id, [task.id], ["title"])


def test_the_inbox_audits_a_read_of_the_household_a_moved_out_notice_names(client, world, session):
    """A household_moved_out notice gives the household's address: shown with no entry."""
    household = world.households[A1][0]
    notify(
        session,
        [world.users["leader_a"].id],
        "household_moved_out",
        "住户可能已搬离",
        "9号楼 101：走访记录为“已搬离”。",
        data={"household_id": household.id},
    )

    client.get("/api/v1/notifications", headers=world.auth("leader_a"))

    [entry] = _reads(session, "household")
    assert (entry.resource_ids, entry.fields) == ([household.id], ["address"])


def test_acknowledging_a_tasks_notice_audits_a_read_of_the_task(client, world, session):
    """The acknowledgement answers the notice, body and all."""
    task = make_task(session, A1, now=T0, title="王秀英摔倒求助")
    [note] = notify(
        session,
        [world.users["worker_a1"].id],
        "task_updated",
        "任务已更新",
        task.title,
        data={"task_id": task.id},
    )

    client.post(f"/api/v1/notifications/{note.id}/ack", headers=world.auth("worker_a1"))

    [entry] = _reads(session, "task")
    assert entry.resource_ids == [task.id]


def test_the_inbox_of_notices_naming_no_resident_writes_no_audit_entry(client, world, session):
    notify(
        session,
        [world.users["worker_a1"].id],
        "roster_published",
        "排班已发布",
        data={"roster_id": 3},
    )

    client.get("/api/v1/notifications", headers=world.auth("worker_a1"))

    assert session.scalar(select(func.count(AuditEntry.id))) == 0


def test_quiet_hours_are_set_and_read(client, world):
    headers = world.auth("worker_a1")
    body = {"quiet_start": "22:00:00", "quiet_end": "07:00:00", "timezone": "Asia/Shanghai"}
    assert client.put("/api/v1/devices/quiet-hours", json=body, headers=headers).status_code == 200
    assert client.get("/api/v1/devices/quiet-hours", headers=headers).json == body


@pytest.mark.parametrize(
    "times", [("22:00-05:00", "07:00"), ("22:00", "07:00+08:00"), ("22:00Z", "07:00")]
)
def test_quiet_hours_with_a_utc_offset_are_refused(client, world, times):
    """They are local times, stored without a zone: `22:00-05:00` was echoed back as sent,
    then stored, and read back, as 22:00."""
    headers = world.auth("worker_a1")
    body = {"quiet_start": times[0], "quiet_end": times[1]}
    r = client.put("/api/v1/devices/quiet-hours", json=body, headers=headers)
    assert r.status_code == 422, r.json
    (field,) = r.json["errors"]["json"]
    assert field == ("quiet_start" if times[0] != "22:00" else "quiet_end")
    assert "Asia/Shanghai" in r.json["errors"]["json"][field][0]
    assert client.get("/api/v1/devices/quiet-hours", headers=headers).json["quiet_start"] is None


@pytest.mark.parametrize("times", [("22:00", "22:00"), ("22:00:00", "22:00")])
def test_quiet_hours_that_start_as_they_end_are_refused(client, world, times):
    """Found playing the demo: 22:00 to 22:00 was stored and answered 200, and meant no quiet
    hours at all (the window is empty; someone who asked for a silent day got every push)."""
    headers = world.auth("worker_a1")
    body = {"quiet_start": "23:00", "quiet_end": "06:30"}
    assert client.put("/api/v1/devices/quiet-hours", json=body, headers=headers).status_code == 200
    body = {"quiet_start": times[0], "quiet_end": times[1]}
    r = client.put("/api/v1/devices/quiet-hours", json=body, headers=headers)
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json"
    assert list(r.json["errors"]["json"]) == ["quiet_end"]
    kept = client.get("/api/v1/devices/quiet-hours", headers=headers).json
    assert (kept["quiet_start"], kept["quiet_end"]) == ("23:00:00", "06:30:00")


@pytest.mark.parametrize(
    "zone",
    ["America", "Etc", "a" * 300, "../../etc/passwd", "zone.tab"],
    ids=["a-directory", "another-directory", "too-long", "a-path", "a-tzdata-file"],
)
def test_quiet_hours_in_a_time_zone_that_is_not_one_are_refused(client, world, zone):
    headers = world.auth("worker_a1")
    body = {"quiet_start": "22:00", "quiet_end": "07:00", "timezone": zone}
    r = client.put("/api/v1/devices/quiet-hours", json=body, headers=headers)
    assert r.status_code == 422, r.json
    assert r.json["errors"]["json"]["timezone"] == ["Unknown time zone."]
    assert client.get("/api/v1/devices/quiet-hours", headers=headers).json["quiet_start"] is None


def test_a_user_keeps_ten_active_devices_the_longest_unseen_giving_way(client, world, session):
    """Devices were unbounded: one account could register 100,000 tokens or Web Push
    subscriptions, and every notification to it became 100,000 deliveries, sent (Web Push one
    after another) ahead of everybody else's."""
    ids = [
        register(client, world, platform="android", token=f"fcm-{i}").json["id"] for i in range(12)
    ]
    listed = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert [d["id"] for d in listed] == ids[2:]
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    assert session.scalar(select(func.count(Delivery.id))) == 10
    # An old phone coming back (the same token) is a device again; the longest unseen gives way.
    assert register(client, world, platform="android", token="fcm-0").json["active"] is True
    listed = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert sorted(d["id"] for d in listed) == sorted([ids[0], *ids[3:]])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "android", "token": "fcm\x00-1"}, "token"),
        ({"platform": "ios", "token": "fcm-1\n"}, "token"),
        (
            {
                "platform": "web",
                "subscription": {**SUBSCRIPTION, "keys": {"p256dh": "BNc\x00", "auth": "a"}},
            },
            "subscription",
        ),
        (
            {
                "platform": "web",
                "subscription": {**SUBSCRIPTION, "keys": {"p256dh": "BNc", "auth": "a\x00"}},
            },
            "subscription",
        ),
    ],
)
def test_a_device_key_with_a_control_character_is_a_422_naming_it(
    client, world, session, body, field
):
    """A NUL went to the database, which refused it: a 422 "A value is out of range or
    malformed." naming nothing; a newline was stored as part of a token no push service
    issues."""
    r = register(client, world, **body)
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json"
    assert list(r.json["errors"]["json"]) == [field]
    assert session.scalar(select(func.count()).select_from(Device)) == 0
