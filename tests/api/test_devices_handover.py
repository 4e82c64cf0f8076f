"""A phone (an FCM token, a Web Push endpoint) registered by another account passes to it, and
the account it left is told in its inbox: by mistake or by a leaked token, it would otherwise
miss its task notices unawares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import Delivery, Device, Notification
from api.services import sessions
from api.services.devices import register_device

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
LATER = T0 + timedelta(days=2, hours=6, minutes=5)  # Thursday 16:05 in Beijing
SUBSCRIPTION = {
    "endpoint": "https://push.example/sub/1",
    "keys": {"p256dh": "BNc-key", "auth": "auth-secret"},
}


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = LATER


def register(client, world, user, **body):
    r = client.post("/api/v1/devices", json=body, headers=world.auth(user))
    assert r.status_code == 201, r.json
    return r.json


def notices(session, world, user="worker_a1") -> list[Notification]:
    session.expire_all()
    return list(
        session.scalars(
            select(Notification)
            .where(
                Notification.user_id == world.users[user].id,
                Notification.kind == "device_moved",
            )
            .order_by(Notification.id)
        )
    )


def phone_of_a1(session, world, token="fcm-1", label="华为 Mate 40", **kw) -> Device:
    user = world.users["worker_a1"]
    return register_device(session, user.id, "android", token=token, label=label, now=T0, **kw)


def test_a_phone_registered_by_another_account_tells_its_last_owner_which_and_when(
    client, session, world
):
    phone_of_a1(session, world)
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    [notice] = notices(session, world)
    assert notice.title == "有一台设备不再接收您的推送"
    assert "安卓手机「华为 Mate 40」" in notice.body
    assert "11月19日 16:05" in notice.body
    assert "另一个账号" in notice.body
    assert notice.read_at is None and not notice.urgent


def test_the_notice_does_not_name_the_account_the_phone_passed_to(client, session, world):
    """Whose phone it is now is not the last owner's to read (the device list never showed
    another account's devices): neither the name, the username nor the device's new id."""
    phone = phone_of_a1(session, world)
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    [notice] = notices(session, world)
    new_owner = world.users["worker_a2"]
    said = f"{notice.title} {notice.body} {notice.data}"
    assert new_owner.username not in said
    assert new_owner.display_name not in said
    assert notice.data == {}
    assert str(phone.id) not in said


def test_a_web_subscription_registered_by_another_account_tells_its_last_owner(
    client, session, world
):
    user = world.users["worker_a1"]
    register_device(
        session, user.id, "web", subscription=SUBSCRIPTION, label="Chrome · 安卓", now=T0
    )
    register(client, world, "worker_a2", platform="web", subscription=SUBSCRIPTION)
    [notice] = notices(session, world)
    assert "浏览器「Chrome · 安卓」" in notice.body


def test_the_notice_goes_to_the_last_owners_other_devices_not_to_the_phone_that_left(
    client, session, world
):
    phone_of_a1(session, world)
    phone_of_a1(session, world, token="fcm-ipad", label="iPad")
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    [notice] = notices(session, world)
    told = session.scalars(
        select(Device.token)
        .join(Delivery, Delivery.device_id == Device.id)
        .where(Delivery.notification_id == notice.id)
    ).all()
    assert told == ["fcm-ipad"]


def test_the_phone_goes_to_the_account_that_registered_it_last(client, session, world):
    """By design: a phone that changed hands belongs to whoever signed in on it last."""
    phone = phone_of_a1(session, world)
    theirs = register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert theirs["id"] == phone.id and theirs["active"] is True
    session.expire_all()
    assert session.get(Device, phone.id).user_id == world.users["worker_a2"].id


def test_the_same_account_registering_its_phone_again_is_told_nothing(client, session, world):
    phone_of_a1(session, world)
    register(client, world, "worker_a1", platform="android", token="fcm-1")
    assert notices(session, world) == []


def test_a_phone_its_owner_signed_out_of_passes_on_unannounced(client, session, world):
    """Signing out, its owner let it go: the next worker signing in on it is the usual case."""
    phone = phone_of_a1(session, world)
    r = client.post(
        "/api/v1/auth/logout",
        json={"device_id": phone.id},
        headers=world.auth("worker_a1"),
    )
    assert r.status_code == 204, r.json
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert notices(session, world) == []


def test_a_phone_its_owner_removed_passes_on_unannounced(client, session, world):
    phone = phone_of_a1(session, world)
    r = client.delete(f"/api/v1/devices/{phone.id}", headers=world.auth("worker_a1"))
    assert r.status_code == 204
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert notices(session, world) == []


def test_a_phone_whose_owners_sign_in_had_ended_passes_on_unannounced(client, session, world):
    """Its owner's sign-in on it had run out: nothing was pushed to it for them any more (their
    list said so), and someone signing in on it since is the phone's next holder."""
    user = world.users["worker_a1"]
    sign_in = sessions.open_session(
        session, user.id, refresh_jti="r1", expires_at=T0 + timedelta(hours=1), ip=None, now=T0
    )
    phone_of_a1(session, world, session_id=sign_in.id)
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert notices(session, world) == []


def test_a_phone_passing_on_while_its_owners_sign_in_is_live_is_announced(client, session, world):
    user = world.users["worker_a1"]
    sign_in = sessions.open_session(
        session, user.id, refresh_jti="r1", expires_at=T0 + timedelta(days=30), ip=None, now=T0
    )
    phone_of_a1(session, world, session_id=sign_in.id)
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert len(notices(session, world)) == 1


def test_a_phone_already_retired_passes_on_unannounced(client, session, world):
    """Retired as unreachable, it got nothing already, and its owner was told then."""
    phone = phone_of_a1(session, world)
    phone.active = False
    phone.deactivated_at = T0 + timedelta(days=1)
    phone.deactivation_reason = "unreachable: no push went since ..."
    session.flush()
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert notices(session, world) == []


def test_the_owner_of_a_switched_off_account_is_not_told(client, session, world):
    phone_of_a1(session, world)
    world.users["worker_a1"].active = False
    session.flush()
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    assert notices(session, world) == []


def test_a_phone_passing_back_and_forth_tells_each_account_it_leaves(client, session, world):
    phone_of_a1(session, world)
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    register(client, world, "worker_a1", platform="android", token="fcm-1")
    assert len(notices(session, world, "worker_a1")) == 1
    [theirs] = notices(session, world, "worker_a2")
    assert "安卓手机" in theirs.body


def test_the_inbox_lists_the_notice_to_its_owner(client, session, world):
    phone_of_a1(session, world)
    register(client, world, "worker_a2", platform="android", token="fcm-1")
    r = client.get("/api/v1/notifications", headers=world.auth("worker_a1"))
    assert r.status_code == 200
    kinds = [n["kind"] for n in r.json]
    assert kinds == ["device_moved"]
