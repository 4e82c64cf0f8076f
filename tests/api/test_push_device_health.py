"""A device's send history (last success, failing since, failures in a row) kept by the push
worker, and the retirement of a device that has answered nothing for days."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Device
from api.services.delivery import PushWorker
from api.services.devices import register_device
from api.services.notifications import notify
from push import Router
from tests.factories import make_device
from tests.fakes.fixtures import fcm_channels, web_push_channel
from tests.fakes.webpush import subscription

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


pytestmark = pytest.mark.usefixtures("loopback_only")


def _router(fake, tmp_path, timeout: float) -> Router:
    """The fake FCM for phones, real Web Push for browsers, on loopback."""
    channels = fcm_channels(fake, tmp_path)
    channels["web"] = web_push_channel(timeout=timeout)
    return Router(channels)


@pytest.fixture
def router(app, fake, tmp_path) -> Iterator[Router]:
    """Web Push with room to answer (a 4 s deadline) on a loaded machine: a 429 or a 503 cut
    at its deadline would be a send without an answer instead."""
    router = _router(fake, tmp_path, timeout=2.0)
    yield router
    router.close()


@pytest.fixture
def worker(router) -> PushWorker:
    return PushWorker(db.begin, router, batch_size=100, lease_seconds=60)


@pytest.fixture
def impatient_worker(app, fake, tmp_path) -> Iterator[PushWorker]:
    """Web Push with a short deadline (0.6 s): for a push service that never answers."""
    router = _router(fake, tmp_path, timeout=0.3)
    yield PushWorker(db.begin, router, batch_size=100, lease_seconds=60)
    router.close()


def _device(session, token: str) -> Device:
    session.expire_all()
    return session.scalar(select(Device).where(Device.token == token))


def _told(session, world, user="worker_a1", now=T0) -> None:
    notify(session, [world.users[user].id], "task_updated", "t", now=now)


def _web_device(session, user, endpoint) -> Device:
    return register_device(session, user.id, "web", subscription=subscription(endpoint), now=T0)


def test_a_push_delivered_records_the_devices_last_success(session, world, worker):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    _told(session, world)
    assert worker.run_once(T0).sent == 1
    device = _device(session, "fcm-1")
    assert device.last_success_at == T0
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


def test_a_new_device_has_no_send_history(session, world):
    device = make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    assert (device.last_success_at, device.failing_since, device.consecutive_failures) == (
        None,
        None,
        0,
    )


@pytest.mark.parametrize("kind", ["unavailable", "internal", "gateway_timeout"])
def test_fcm_server_errors_count_as_the_devices_failures_from_the_first(
    session, world, worker, fake, kind
):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=2, kind=kind)
    _told(session, world)
    worker.run_once(T0)
    later = T0 + timedelta(minutes=20)
    worker.run_once(later)
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (T0, 2)
    assert device.last_success_at is None and device.active


def test_a_success_after_failures_resets_the_failing_history(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=2, kind="unavailable")
    _told(session, world)
    now = T0
    for _ in range(3):
        worker.run_once(now)
        now += timedelta(minutes=20)
    device = _device(session, "fcm-1")
    assert device.last_success_at == T0 + timedelta(minutes=40)
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


@pytest.mark.parametrize("kind", ["quota", "mismatch", "third_party_auth"])
def test_our_own_quota_or_configuration_is_not_the_devices_failure(
    session, world, worker, fake, kind
):
    """A 429 (our sending rate), a service account of another project, an APNs key refused:
    every phone gets them alike, and none of them says the phone is gone."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", kind=kind)
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


def test_a_web_push_service_answering_503_counts_as_the_devices_failure(
    session, world, worker, push_service
):
    _web_device(session, world.users["worker_a1"], push_service.endpoint("down"))
    push_service.answer("down", 503)
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, push_service.endpoint("down"))
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


def test_a_web_push_service_that_never_answers_counts_as_the_devices_failure(
    session, world, impatient_worker, push_service
):
    _web_device(session, world.users["worker_a1"], push_service.endpoint("hangs"))
    push_service.hang("hangs")
    _told(session, world)
    assert impatient_worker.run_once(T0).retried == 1
    device = _device(session, push_service.endpoint("hangs"))
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


def test_a_web_push_endpoint_refusing_connections_counts_as_the_devices_failure(
    session, world, worker
):
    with socket.socket() as closed:  # a port bound and never listened on: refused
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}/push/gone"
        _web_device(session, world.users["worker_a1"], endpoint)
        _told(session, world)
        assert worker.run_once(T0).retried == 1
    device = _device(session, endpoint)
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


def test_a_web_push_429_is_not_the_devices_failure(session, world, worker, push_service):
    _web_device(session, world.users["worker_a1"], push_service.endpoint("busy"))
    push_service.answer("busy", 429, {"Retry-After": "60"})
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, push_service.endpoint("busy"))
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


def test_every_failed_send_of_a_round_counts_and_failing_since_is_kept(
    session, world, worker, fake
):
    """Three pushes to one phone in one round, all 503: three failures, one start."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=4, kind="unavailable")
    for _ in range(3):
        _told(session, world)
    worker.run_once(T0)
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (T0, 3)


# --- retirement ------------------------------------------------------------------------------
@pytest.fixture
def retiring(router) -> PushWorker:
    """Retires a device failing for 7 days with at least 3 failed sends in a row."""
    return PushWorker(
        db.begin,
        router,
        batch_size=100,
        lease_seconds=60,
        retire_failing_after=timedelta(days=7),
        retire_min_failures=3,
    )


def _days(session, world, worker, days, users=("worker_a1", "worker_a2")) -> None:
    """On each of `days` (from T0) one push to each of `users`, and one round."""
    for day in days:
        now = T0 + timedelta(days=day)
        notify(session, [world.users[u].id for u in users], "task_updated", "t", now=now)
        worker.run_once(now)


def _dead_and_live_phones(session, world) -> None:
    """worker_a1's phone whose every push gets a 503, worker_a2's that gets each."""
    make_device(session, world.users["worker_a1"], "unavailable-1", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-live", now=T0)


def test_a_phone_failing_for_the_period_and_the_attempts_is_retired(session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7])
    device = _device(session, "unavailable-1")
    assert not device.active
    assert device.deactivated_at == T0 + timedelta(days=7)
    assert device.deactivation_reason.startswith("unreachable")
    assert _device(session, "fcm-live").active


def test_a_phone_failing_for_the_period_with_too_few_attempts_is_kept(session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 8])
    device = _device(session, "unavailable-1")
    assert device.active and device.consecutive_failures == 2


def test_a_phone_failing_often_for_less_than_the_period_is_kept(session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 1, 2, 3, 4, 5, 6])
    device = _device(session, "unavailable-1")
    assert device.active and device.consecutive_failures == 7


def test_a_success_resets_the_period(session, world, retiring, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-live", now=T0)
    fake.fail_next("fcm-1", times=2, kind="unavailable")
    _days(session, world, retiring, [0, 2, 4])  # failed, failed, went
    fake.fail_next("fcm-1", times=3, kind="unavailable")
    _days(session, world, retiring, [5, 9, 11])
    device = _device(session, "fcm-1")
    assert device.active
    assert device.last_success_at == T0 + timedelta(days=4)
    assert (device.failing_since, device.consecutive_failures) == (T0 + timedelta(days=5), 3)


def test_no_device_is_retired_while_pushes_reach_no_device_of_its_platform(
    session, world, retiring
):
    """Every phone failing alike is an outage (FCM's, the network's, a relay's), not a dead
    phone: switching them all off would leave everybody without push once it ends."""
    make_device(session, world.users["worker_a1"], "unavailable-1", now=T0)
    make_device(session, world.users["worker_a2"], "unavailable-2", now=T0)
    _days(session, world, retiring, [0, 3, 7, 8])
    assert _device(session, "unavailable-1").active
    assert _device(session, "unavailable-2").active


@pytest.mark.parametrize("status", [401, 403])
def test_a_browser_whose_subscription_the_push_service_refuses_for_good_is_retired(
    session, world, retiring, push_service, status
):
    """A subscription made under another VAPID key (the key rotated since, or the app's
    server key changed) is refused every push, for good: counted as nothing, the browser was
    listed healthy, never retired, its owner never told to subscribe again."""
    _web_device(session, world.users["worker_a1"], push_service.endpoint("old-key"))
    _web_device(session, world.users["worker_a2"], push_service.endpoint("new-key"))
    push_service.answer("old-key", status)
    _days(session, world, retiring, [0, 3, 7])
    device = _device(session, push_service.endpoint("old-key"))
    assert not device.active and device.deactivation_reason.startswith("unreachable")
    assert _device(session, push_service.endpoint("new-key")).active


def test_no_browser_is_retired_while_the_push_service_refuses_every_one(
    session, world, retiring, push_service
):
    """Our own VAPID key broken (every subscription refused alike): nobody is retired."""
    for user, name in (("worker_a1", "one"), ("worker_a2", "two")):
        _web_device(session, world.users[user], push_service.endpoint(name))
        push_service.answer(name, 403)
    _days(session, world, retiring, [0, 3, 7, 8])
    assert _device(session, push_service.endpoint("one")).active
    assert _device(session, push_service.endpoint("two")).active


def test_a_retired_phone_is_listed_to_its_owner_with_its_send_history(
    client, session, world, retiring
):
    """Retired, it gets nothing: its owner must see so, or be left without push unawares."""
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7])
    [listed] = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert listed["active"] is False and listed["retired"] is True
    assert listed["failing_since"] == T0.isoformat()
    assert listed["consecutive_failures"] == 3
    assert listed["last_success_at"] is None
    assert listed["retired_at"] == (T0 + timedelta(days=7)).isoformat()
    assert listed["retired_reason"].startswith("unreachable: no push went since 2026-11-17")


def test_a_live_phone_is_listed_with_its_last_success(client, session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0])
    [listed] = client.get("/api/v1/devices", headers=world.auth("worker_a2")).json
    assert (listed["active"], listed["retired"]) == (True, False)
    assert listed["last_success_at"] == T0.isoformat()
    assert (listed["failing_since"], listed["consecutive_failures"]) == (None, 0)


def test_a_retired_phone_registered_again_gets_pushes_with_a_fresh_history(
    client, session, world, retiring
):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7])
    body = {"platform": "android", "token": "unavailable-1"}
    r = client.post("/api/v1/devices", json=body, headers=world.auth("worker_a1"))
    assert r.status_code == 201
    assert (r.json["active"], r.json["retired"]) == (True, False)
    assert (r.json["failing_since"], r.json["consecutive_failures"]) == (None, 0)


def test_a_retired_phone_can_be_removed_from_the_list(client, session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7])
    device = _device(session, "unavailable-1")
    headers = world.auth("worker_a1")
    assert client.delete(f"/api/v1/devices/{device.id}", headers=headers).status_code == 204
    assert client.get("/api/v1/devices", headers=headers).json == []


# --- whose history ---------------------------------------------------------------------------
def test_a_users_device_history_is_listed_to_no_other_user(client, session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7])
    listed = client.get("/api/v1/devices", headers=world.auth("worker_a2")).json
    assert [d["id"] for d in listed] == [_device(session, "fcm-live").id]
    retired = _device(session, "unavailable-1")
    r = client.delete(f"/api/v1/devices/{retired.id}", headers=world.auth("worker_a2"))
    assert r.status_code == 404
    assert _device(session, "unavailable-1").retired


def test_a_phone_signed_in_by_another_user_shows_them_none_of_its_last_owners_pushes(
    client, session, world, worker, fake
):
    """The same token registered by someone else (a phone that changed hands) is theirs from
    then on: when its last owner's pushes went, or failed, is not theirs to read."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    make_device(session, world.users["worker_a1"], "fcm-2", now=T0)
    fake.fail_next("fcm-2", kind="unavailable")
    _told(session, world)
    worker.run_once(T0)
    for token in ("fcm-1", "fcm-2"):
        body = {"platform": "android", "token": token}
        r = client.post("/api/v1/devices", json=body, headers=world.auth("worker_a2"))
        assert r.status_code == 201
    listed = client.get("/api/v1/devices", headers=world.auth("worker_a2")).json
    histories = [
        (d["last_success_at"], d["failing_since"], d["consecutive_failures"]) for d in listed
    ]
    assert histories == [(None, None, 0), (None, None, 0)]


def test_a_phone_refreshing_its_registration_keeps_its_failing_history(
    session, world, worker, fake
):
    """The app registers again at each sign-in: a push service that never answers must not
    have its history wiped by it, or the device is never retired."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", kind="unavailable")
    _told(session, world)
    worker.run_once(T0)
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0 + timedelta(hours=1))
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


# --- its owner told ---------------------------------------------------------------------------
def _notices(session, user) -> list:
    from api.models import Notification

    session.expire_all()
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id, Notification.kind == "device_retired")
            .order_by(Notification.id)
        )
    )


def test_a_retired_phones_owner_is_told_in_the_inbox_naming_the_phone(session, world, retiring):
    """A worker whose phone gets nothing believed tasks would reach them: the inbox (read by
    the app at every opening) says which device stopped and what to do."""
    user = world.users["worker_a1"]
    register_device(
        session, user.id, "android", token="unavailable-1", label="华为 Mate 40", now=T0
    )
    make_device(session, world.users["worker_a2"], "fcm-live", now=T0)
    _days(session, world, retiring, [0, 3, 7])
    [notice] = _notices(session, user)
    assert notice.title == "有一台设备收不到推送了"
    assert "安卓手机" in notice.body and "华为 Mate 40" in notice.body
    assert "从未收到过推送" in notice.body
    assert "在这台设备上打开网格员应用" in notice.body and "重新登录" in notice.body
    assert notice.data == {"device_id": str(_device(session, "unavailable-1").id)}
    assert notice.read_at is None


def test_the_notice_names_when_a_push_last_reached_the_retired_phone(
    session, world, retiring, fake
):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-live", now=T0)
    _days(session, world, retiring, [0])  # went: 2026-11-17 10:00 in Beijing
    fake.fail_next("fcm-1", times=3, kind="unavailable")
    _days(session, world, retiring, [1, 4, 8])
    assert not _device(session, "fcm-1").active
    [notice] = _notices(session, world.users["worker_a1"])
    assert "11月17日 10:00" in notice.body


def test_the_notice_is_pushed_to_the_owners_phones_that_still_get_pushes(
    session, world, retiring, fake
):
    """Told through a channel that works: the owner's iPad, reachable, hears of the phone."""
    user = world.users["worker_a1"]
    make_device(session, user, "unavailable-1", now=T0)
    register_device(session, user.id, "ios", token="fcm-ipad", label="iPad", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-live", now=T0)
    for day in (0, 3, 7):  # a push to the failing phone alone, and to worker_a2
        now = T0 + timedelta(days=day)
        notify(session, [world.users["worker_a2"].id], "task_updated", "t", now=now)
        _tell_one_device(session, "unavailable-1", now)
        retiring.run_once(now)
    assert not _device(session, "unavailable-1").active
    retiring.run_once(T0 + timedelta(days=7, minutes=1))
    [pushed] = [m for m in fake.messages if m.get("token", m.get("fid")) == "fcm-ipad"]
    assert pushed["notification"]["title"] == "有一台设备收不到推送了"
    assert "安卓手机" in pushed["notification"]["body"]


def _tell_one_device(session, token: str, now: datetime) -> None:
    """A notice queued to one device only (the others of its user left out)."""
    from api.models import Delivery, Notification

    device = _device(session, token)
    notice = Notification(
        user_id=device.user_id, kind="task_updated", title="t", body="", data={}, created_at=now
    )
    session.add(notice)
    session.flush()
    session.add(Delivery(notification_id=notice.id, device_id=device.id, next_attempt_at=now))
    session.flush()


def test_a_retired_phones_owner_is_told_once(session, world, retiring):
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7, 8, 9])
    assert len(_notices(session, world.users["worker_a1"])) == 1


def test_a_phone_retired_again_after_registering_again_is_told_again(session, world, retiring):
    """Registered again, it was a live device: its second silence is news again."""
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3, 7])
    make_device(session, world.users["worker_a1"], "unavailable-1", now=T0 + timedelta(days=8))
    _days(session, world, retiring, [8, 12, 16])
    assert not _device(session, "unavailable-1").active
    assert len(_notices(session, world.users["worker_a1"])) == 2


def test_the_owner_of_a_switched_off_account_is_not_told(session, world, retiring):
    """A phone whose owner left (account switched off while its last round was sending) is
    retired all the same; nobody is told."""
    user = world.users["worker_a1"]
    _dead_and_live_phones(session, world)
    _days(session, world, retiring, [0, 3])
    now = T0 + timedelta(days=7)
    notify(session, [user.id, world.users["worker_a2"].id], "task_updated", "t", now=now)
    claim_id, claimed = retiring.claim(now)
    user.active = False
    session.flush()
    outcome = retiring.send(claimed, now)  # rows claimed before the switch-off
    retiring.mark(claim_id, claimed, outcome, now)
    assert not _device(session, "unavailable-1").active
    assert _notices(session, user) == []


# --- dropped as unregistered: its owner told too -------------------------------------------
LATER = T0 + timedelta(days=1, hours=6, minutes=5)  # Wednesday 16:05 in Beijing


@pytest.mark.parametrize("token", ["unregistered-1", "invalid-1"])
def test_a_phone_dropped_as_unregistered_has_its_owner_told_which_and_when(
    session, world, worker, token
):
    """FCM answered UNREGISTERED (the app reinstalled, its data cleared) or INVALID_ARGUMENT for
    the token: the phone was dropped, and a worker whose only phone it was got nothing,
    unawares, until they opened the app on it again."""
    user = world.users["worker_a1"]
    register_device(session, user.id, "android", token=token, label="华为 Mate 40", now=T0)
    _told(session, world, now=LATER)
    worker.run_once(LATER)
    device = _device(session, token)
    assert not device.active
    [notice] = _notices(session, user)
    assert notice.title == "有一台设备收不到推送了"
    assert "安卓手机「华为 Mate 40」" in notice.body
    assert "11月18日 16:05" in notice.body
    assert "推送登记已失效" in notice.body
    assert "在这台设备上打开网格员应用" in notice.body
    assert notice.data == {"device_id": str(device.id)}
    assert notice.read_at is None


@pytest.mark.parametrize("status", [404, 410])
def test_a_browser_whose_push_service_dropped_its_subscription_has_its_owner_told(
    session, world, worker, push_service, status
):
    user = world.users["worker_a1"]
    endpoint = push_service.endpoint("gone")
    register_device(
        session, user.id, "web", subscription=subscription(endpoint), label="Chrome · 安卓", now=T0
    )
    push_service.answer("gone", status)
    _told(session, world, now=LATER)
    worker.run_once(LATER)
    assert not _device(session, endpoint).active
    [notice] = _notices(session, user)
    assert "浏览器「Chrome · 安卓」" in notice.body


def test_a_phone_dropped_as_unregistered_is_told_once(session, world, worker):
    """Three pushes to it in the round, each answered UNREGISTERED, and more queued after:
    one notice."""
    user = world.users["worker_a1"]
    make_device(session, user, "unregistered-1", now=T0)
    for _ in range(3):
        _told(session, world)
    worker.run_once(T0)
    _told(session, world, now=T0 + timedelta(hours=1))
    worker.run_once(T0 + timedelta(hours=1))
    assert len(_notices(session, user)) == 1


def test_a_phone_dropped_as_unregistered_is_listed_to_its_owner_as_getting_nothing(
    client, session, world, worker
):
    """Listed as a retired one is, so that its owner (and the app on it) sees that it gets
    nothing, and why: it was not listed at all."""
    make_device(session, world.users["worker_a1"], "unregistered-1", now=T0)
    _told(session, world)
    worker.run_once(T0)
    [listed] = client.get("/api/v1/devices", headers=world.auth("worker_a1")).json
    assert (listed["active"], listed["retired"]) == (False, True)
    assert listed["retired_at"] == T0.isoformat()
    assert listed["retired_reason"].startswith("unregistered: UNREGISTERED")


def test_no_notice_when_the_reinstalled_app_registered_its_new_token_first(session, world, worker):
    """The app reinstalled registers its new token as it opens, before a push finds the old
    one unregistered: the phone gets pushes, and a notice would alarm its owner for nothing."""
    user = world.users["worker_a1"]
    register_device(
        session, user.id, "android", token="unregistered-old", label="华为 Mate 40", now=T0
    )
    _told(session, world)  # queued to the old token only
    later = T0 + timedelta(minutes=5)
    register_device(session, user.id, "android", token="fcm-new", label="华为 Mate 40", now=later)
    worker.run_once(later)
    assert not _device(session, "unregistered-old").active
    assert _notices(session, user) == []


def test_no_notice_when_the_app_registers_its_new_token_while_the_round_sends(
    session, world, worker
):
    user = world.users["worker_a1"]
    make_device(session, user, "unregistered-old", now=T0)
    _told(session, world)
    claim_id, claimed = worker.claim(T0)
    make_device(session, user, "fcm-new", now=T0 + timedelta(seconds=1))
    outcome = worker.send(claimed, T0, claim_id=claim_id)
    worker.mark(claim_id, claimed, outcome, T0)
    assert not _device(session, "unregistered-old").active
    assert _notices(session, user) == []


@pytest.mark.parametrize(
    ("platform", "label"), [("web", "Chrome · Windows"), ("android", "小米 13")]
)
def test_a_newer_device_that_is_another_one_does_not_stand_in_for_the_phone_dropped(
    session, world, worker, platform, label
):
    """The office PC's browser, or another phone, registered since: the phone dropped is
    still silent, and its owner told."""
    user = world.users["worker_a1"]
    register_device(
        session, user.id, "android", token="unregistered-1", label="华为 Mate 40", now=T0
    )
    _told(session, world)
    later = T0 + timedelta(minutes=5)
    if platform == "web":
        register_device(
            session,
            user.id,
            "web",
            subscription=subscription("https://push.example.net/send/pc"),
            label=label,
            now=later,
        )
    else:
        register_device(session, user.id, platform, token="fcm-xiaomi", label=label, now=later)
    worker.run_once(later)
    assert len(_notices(session, user)) == 1


def test_a_dead_token_registered_again_is_not_told_again_while_its_notice_is_unread(
    session, world, worker
):
    """An app that registers the token it cached at each start, dead or not, had its worker
    told at each of its openings: once is enough until they have read it."""
    user = world.users["worker_a1"]
    for hour in range(3):
        now = T0 + timedelta(hours=hour)
        make_device(session, user, "unregistered-1", now=now)
        _told(session, world, now=now)
        worker.run_once(now)
    [notice] = _notices(session, user)
    notice.read_at = T0 + timedelta(hours=3)
    session.flush()
    now = T0 + timedelta(hours=4)
    make_device(session, user, "unregistered-1", now=now)
    _told(session, world, now=now)
    worker.run_once(now)
    assert len(_notices(session, user)) == 2


def test_the_owner_of_a_switched_off_account_is_not_told_of_a_phone_unregistered(
    session, world, worker
):
    user = world.users["worker_a1"]
    make_device(session, user, "unregistered-1", now=T0)
    _told(session, world)
    claim_id, claimed = worker.claim(T0)
    user.active = False
    session.flush()
    outcome = worker.send(claimed, T0)
    worker.mark(claim_id, claimed, outcome, T0)
    assert not _device(session, "unregistered-1").active
    assert _notices(session, user) == []
