"""The push worker end to end: outbox → push/ → real firebase-admin → the fake FCM on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Delivery, Device, NotificationSettings
from api.services.delivery import PushWorker
from api.services.notifications import notify
from push import Router, build_channels
from tests.factories import make_device, make_task
from tests.fakes.fcm import FakeFcm

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback only, not {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm() as server:
        yield server


@pytest.fixture
def router(fake, tmp_path) -> Iterator[Router]:
    account = fake.service_account(tmp_path / "sa.json")
    router = Router(
        build_channels({"GRIDWORK_FCM_CREDENTIALS": str(account), "GRIDWORK_FCM_URL": fake.url})
    )
    yield router
    router.close()


@pytest.fixture
def worker(app, router) -> PushWorker:
    return PushWorker(db.begin, router, batch_size=100, lease_seconds=60, max_attempts=3)


def states(session):
    session.expire_all()
    return {
        d.device.token: d.state for d in session.scalars(select(Delivery).order_by(Delivery.id))
    }


def test_a_notification_reaches_the_phone_with_a_stable_message_id(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    [note] = notify(session, [world.users["worker_a1"].id], "task_updated", "标题", "正文", now=T0)
    stats = worker.run_once(T0)
    assert (stats.claimed, stats.sent) == (1, 1)
    [message] = fake.messages
    assert message["fid"] == "fcm-1"
    assert message["data"]["message_id"] == f"n{note.id}"
    assert states(session) == {"fcm-1": "sent"}
    assert worker.run_once(T0 + timedelta(hours=1)).claimed == 0


def test_a_dispatched_urgent_task_goes_at_high_priority_collapsing_per_task(
    session, world, worker, fake
):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    task = make_task(session, now=T0, urgency="danger")
    worker.run_once(T0)
    [message] = fake.messages
    assert message["android"]["priority"] == "high"
    assert message["android"]["collapse_key"] == f"task:{task.id}"
    assert message["data"]["task_id"] == str(task.id)


def test_unregistered_deactivates_the_device(session, world, worker):
    make_device(session, world.users["worker_a1"], "unregistered-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    worker.run_once(T0)
    assert states(session) == {"unregistered-1": "failed"}
    device = session.scalar(select(Device))
    assert not device.active and "UNREGISTERED" in device.deactivation_reason


def test_quota_exceeded_is_retried_no_sooner_than_retry_after(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", kind="quota")
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    assert worker.run_once(T0).retried == 1
    delivery = session.scalar(select(Delivery))
    assert delivery.state == "pending" and delivery.next_attempt_at >= T0 + timedelta(seconds=30)
    assert worker.run_once(T0 + timedelta(seconds=29)).claimed == 0
    assert worker.run_once(T0 + timedelta(seconds=31)).sent == 1
    assert len(fake.messages) == 1 and states(session) == {"fcm-1": "sent"}


def test_unavailable_is_retried_until_delivered(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=2, kind="unavailable")
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    now = T0
    for _ in range(3):
        worker.run_once(now)
        now += timedelta(minutes=5)
    assert states(session) == {"fcm-1": "sent"}
    assert session.scalar(select(Delivery.attempts)) == 3


def test_retries_end_dead_after_the_last_attempt(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=5, kind="unavailable")
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    now = T0
    for _ in range(4):
        worker.run_once(now)
        now += timedelta(minutes=5)
    assert states(session) == {"fcm-1": "dead"}


def test_a_worker_killed_between_send_and_mark_loses_nothing(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-2", now=T0)
    notify(
        session,
        [world.users["worker_a1"].id, world.users["worker_a2"].id],
        "task_updated",
        "t",
        now=T0,
    )
    # The first worker claims and sends, then dies before marking.
    claim_id, claimed = worker.claim(T0)
    worker.send(claimed, T0)
    assert len(fake.messages) == 2 and set(states(session).values()) == {"pending"}
    # While the lease holds, nobody else takes the rows.
    assert worker.run_once(T0 + timedelta(seconds=30)).claimed == 0
    # After it, they are sent again (at least once) under the same message ids.
    stats = worker.run_once(T0 + timedelta(seconds=61))
    assert (stats.claimed, stats.sent) == (2, 2)
    assert states(session) == {"fcm-1": "sent", "fcm-2": "sent"}
    ids = [m["data"]["message_id"] for m in fake.messages]
    assert sorted(ids[:2]) == sorted(ids[2:])
    # The dead worker's late mark changes nothing: its claim is no longer the row's.
    worker.mark(claim_id, claimed, {c.id: "late" for c in claimed}, T0 + timedelta(seconds=90))
    assert states(session) == {"fcm-1": "sent", "fcm-2": "sent"}


def test_quiet_hours_hold_a_normal_push_until_morning(session, world, worker, fake):
    user = world.users["worker_a1"]
    session.add(NotificationSettings(user_id=user.id, quiet_start=time(22), quiet_end=time(7)))
    make_device(session, user, "fcm-1", now=T0)
    notify(session, [user.id], "task_updated", "t", now=T0)
    night = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)  # 23:00 in Beijing
    assert worker.run_once(night).deferred == 1
    delivery = session.scalar(select(Delivery))
    assert delivery.next_attempt_at == datetime(2026, 11, 17, 23, 0, tzinfo=UTC)  # 07:00
    assert delivery.attempts == 0 and fake.messages == []
    assert worker.run_once(datetime(2026, 11, 17, 23, 0, tzinfo=UTC)).sent == 1


def test_a_push_held_for_one_user_never_reaches_the_next_user_of_the_phone(
    session, world, worker, fake
):
    """worker_a1's push waits out the quiet hours; meanwhile worker_a2 signs in on the same
    phone (same FCM token). At 07:00 the push is closed, not sent to worker_a2's phone."""
    first, second = world.users["worker_a1"], world.users["worker_a2"]
    session.add(NotificationSettings(user_id=first.id, quiet_start=time(22), quiet_end=time(7)))
    make_device(session, first, "fcm-shared", now=T0)
    notify(session, [first.id], "task_updated", "给 worker_a1 的任务", now=T0)
    night = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)  # 23:00 in Beijing
    assert worker.run_once(night).deferred == 1
    make_device(session, second, "fcm-shared", now=night)
    worker.run_once(datetime(2026, 11, 17, 23, 0, tzinfo=UTC))
    assert fake.messages == []
    assert states(session) == {"fcm-shared": "failed"}  # closed as "device inactive"
    notify(session, [second.id], "task_updated", "给 worker_a2", now=night)
    assert worker.run_once(datetime(2026, 11, 17, 23, 1, tzinfo=UTC)).sent == 1
    assert [m["notification"]["title"] for m in fake.messages] == ["给 worker_a2"]


def test_urgent_pushes_ignore_quiet_hours(session, world, worker, fake):
    user = world.users["worker_a1"]
    session.add(NotificationSettings(user_id=user.id, quiet_start=time(22), quiet_end=time(7)))
    make_device(session, user, "fcm-1", now=T0)
    notify(session, [user.id], "task_escalated", "t", urgent=True, now=T0)
    assert worker.run_once(datetime(2026, 11, 17, 15, 0, tzinfo=UTC)).sent == 1


def test_without_fcm_credentials_pushes_fail_but_the_inbox_keeps_them(app, session, world, caplog):
    with caplog.at_level("WARNING"):
        channels = build_channels({})
    assert "FCM is off" in caplog.text
    worker = PushWorker(db.begin, Router(channels))
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "收件箱里有", now=T0)
    worker.run_once(T0)
    assert states(session) == {"fcm-1": "failed"}
    assert session.scalar(select(Device.active))  # the device is kept


def test_an_absurd_retry_after_neither_breaks_the_round_nor_parks_the_push_for_years(
    session, world, worker, fake
):
    """A push service may send any Retry-After (a Web Push endpoint is any https host a user
    registers). 10**20 seconds overflowed the retry time: the round's marks were lost, so the
    messages already delivered in it went out again after the lease, round after round."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-2", now=T0)
    fake.retry_after = "1" + "0" * 20
    fake.fail_next("fcm-1", times=1, kind="quota")
    notify(
        session,
        [world.users["worker_a1"].id, world.users["worker_a2"].id],
        "task_updated",
        "t",
        now=T0,
    )
    stats = worker.run_once(T0)
    assert (stats.sent, stats.retried) == (1, 1)
    assert states(session) == {"fcm-1": "pending", "fcm-2": "sent"}
    assert worker.run_once(T0 + timedelta(seconds=61)).claimed == 0  # nothing sent twice
    retry_at = session.scalar(select(Delivery.next_attempt_at).where(Delivery.state == "pending"))
    assert retry_at <= T0 + timedelta(days=1)
    assert worker.run_once(retry_at).sent == 1
    assert len(fake.messages) == 2
