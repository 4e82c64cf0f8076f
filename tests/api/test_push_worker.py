"""The push worker end to end: outbox → push/ → real firebase-admin → the fake FCM on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Delivery, Device, NotificationSettings
from api.services.delivery import PushWorker
from api.services.notifications import notify
from push import Router, build_channels
from push.fcm import PERSONAL_BODY
from tests.factories import make_device, make_task
from tests.fakes.fixtures import fcm_channels, web_push_channel
from tests.fakes.webpush import subscription

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


pytestmark = pytest.mark.usefixtures("loopback_only")


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


def test_a_task_push_through_fcm_does_not_carry_the_tasks_title(session, world, worker, fake):
    """A task's title is free text typed from a hotline call or at the window ("张三家老人摔倒"):
    residents' personal information. FCM (a third party, abroad) reads what it carries, so the
    push names the kind of news and the task's id; the phone reads the title from the API, and
    the inbox keeps it."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    task = make_task(session, now=T0, title="幸福里3号楼502 王秀英 独居老人摔倒")
    worker.run_once(T0)
    [message] = fake.messages
    assert "王秀英" not in str(message)
    assert message["notification"]["body"] == PERSONAL_BODY
    assert message["data"]["task_id"] == str(task.id)
    inbox = client_inbox(session, world.users["worker_a1"].id)
    assert inbox == [("新任务", "幸福里3号楼502 王秀英 独居老人摔倒")]


def test_a_task_push_through_web_push_keeps_the_title_it_encrypts_end_to_end(worker):
    """Web Push payloads are encrypted for the browser (RFC 8291): the push service cannot read
    them, so the title may travel."""
    from push.webpush import payload

    message = worker._message(_claimed("task_dispatched"), T0)
    assert message.personal
    assert "王秀英" in payload(message)


def test_a_roster_notice_through_fcm_keeps_its_text(session, world, worker, fake):
    """A roster notice speaks of the worker's own shifts, no resident's."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(
        session, [world.users["worker_a1"].id], "roster_changed", "排班变更", "12月5日 B岗", now=T0
    )
    worker.run_once(T0)
    [message] = fake.messages
    assert message["notification"]["body"] == "12月5日 B岗"


def test_a_long_notice_goes_as_a_preview_the_providers_take(session, world, worker, fake):
    """A short-staffed week's notice lists every gap: its body past FCM's 4 KB (a Web Push
    service's ~4 KB, a 413) was refused for good, the notice never pushed. The push carries a
    preview; the inbox keeps it whole."""
    from api.services import notifications as inbox

    user = world.users["worker_a1"]
    make_device(session, user, "fcm-1", now=T0)
    gaps = "；".join(
        f"11月{day}日 110101001001{grid:03d} 网格缺 B 岗"
        for day in range(16, 23)
        for grid in range(1, 40)
    )
    assert len(gaps.encode()) > 4096
    notify(session, [user.id], "roster_short", "排班缺人", gaps, now=T0)
    assert worker.run_once(T0).sent == 1
    (pushed,) = fake.messages
    body = pushed["notification"]["body"]
    assert body.endswith("…") and gaps.startswith(body[:-1]) and len(body.encode()) < 1024
    assert inbox.inbox(session, user.id)[0][0].body == gaps


def client_inbox(session, user_id):
    from api.models import Notification

    rows = session.scalars(select(Notification).where(Notification.user_id == user_id))
    return [(n.title, n.body) for n in rows]


def _two_phones_told(session, world) -> None:
    """Two workers' phones (fcm-1, fcm-2), one notification to each, queued at T0."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-2", now=T0)
    notify(
        session,
        [world.users["worker_a1"].id, world.users["worker_a2"].id],
        "task_updated",
        "t",
        now=T0,
    )


def _claimed(kind: str):
    from api.services.delivery import Claimed

    return Claimed(
        id=1,
        notification_id=1,
        device_id=1,
        platform="web",
        token="",
        subscription=subscription("https://push.example.net/send/1"),
        device_active=True,
        attempts=0,
        kind=kind,
        title="新任务",
        body="幸福里3号楼502 王秀英 独居老人摔倒",
        data={},
        urgent=False,
        collapse_key=None,
        quiet_start=None,
        quiet_end=None,
        timezone=None,
        created_at=T0,
    )


def test_a_push_queued_for_a_user_since_deactivated_is_not_sent(session, world, worker, fake):
    """Someone who left (their account switched off) no longer gets the community's tasks and
    residents' names on their phone, though the pushes were queued while they were active."""
    user = world.users["worker_a1"]
    make_device(session, user, "fcm-1", now=T0)
    notify(session, [user.id], "task_updated", "张阿姨: 楼道灯坏了", now=T0)
    user.active = False
    session.flush()
    stats = worker.run_once(T0)
    assert (stats.sent, stats.failed) == (0, 1)
    assert fake.messages == []
    assert states(session) == {"fcm-1": "failed"}


def test_a_push_queued_before_its_phones_sign_in_expired_is_not_sent(session, world, worker, fake):
    """Held until morning by quiet hours, or retried through an outage, a push reached a
    phone whose sign-in had run out meanwhile (nobody signed in holds it any more)."""
    from api.services import devices, sessions

    user = world.users["worker_a1"]
    sign_in = sessions.open_session(
        session, user.id, refresh_jti="r1", expires_at=T0 + timedelta(minutes=1), ip=None, now=T0
    )
    devices.register_device(
        session, user.id, "android", token="fcm-1", now=T0, session_id=sign_in.id
    )
    notify(session, [user.id], "task_updated", "张阿姨: 楼道灯坏了", now=T0)
    stats = worker.run_once(T0 + timedelta(minutes=2))
    assert (stats.sent, stats.failed) == (0, 1)
    assert fake.messages == []
    assert states(session) == {"fcm-1": "failed"}


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


def test_one_phone_answered_oddly_costs_no_other_phone_a_second_push(session, world, worker, fake):
    """One answer firebase-admin could not read (a relay's `{"error": "Too Many Requests"}`)
    failed the whole FCM batch: every push of the round was retried, those FCM had taken too,
    and each round sent the good phone the same push again."""
    make_device(session, world.users["worker_a1"], "fcm-good", now=T0)
    make_device(session, world.users["worker_a2"], "fcm-odd", now=T0)
    fake.answer("fcm-odd", 429, {"error": "Too Many Requests"}, {"Retry-After": "5"})
    users = [world.users["worker_a1"].id, world.users["worker_a2"].id]
    notify(session, users, "task_updated", "t", "b", now=T0)
    for minutes in (0, 10, 30):
        worker.run_once(T0 + timedelta(minutes=minutes))
    assert [m["fid"] for m in fake.messages] == ["fcm-good"]
    assert states(session) == {"fcm-good": "sent", "fcm-odd": "dead"}


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
    _two_phones_told(session, world)
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


@pytest.mark.parametrize("read", ["one", "all"])
def test_a_notice_read_in_the_inbox_while_its_push_waits_is_not_pushed(
    session, world, worker, fake, read
):
    """Held by quiet hours (or waiting out a retry), a notice the worker read in the app meanwhile
    still buzzed the phone at 07:00, every notice of the night with it, the unread count 0."""
    from api.services import notifications as inbox

    user = world.users["worker_a1"]
    session.add(NotificationSettings(user_id=user.id, quiet_start=time(22), quiet_end=time(7)))
    make_device(session, user, "fcm-1", now=T0)
    night = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)  # 23:00 in Beijing
    [note] = notify(session, [user.id], "roster_changed", "排班已更新", "正文", now=night)
    session.commit()
    assert worker.run_once(night).deferred == 1
    dawn = night + timedelta(hours=7, minutes=50)  # 06:50: the app opened, the notice read
    if read == "one":
        inbox.ack(session, user.id, note.id, dawn)
    else:
        assert inbox.ack_all(session, user.id, dawn) == 1
    session.commit()
    worker.run_once(dawn + timedelta(minutes=10))
    assert fake.messages == []
    (delivery,) = session.scalars(select(Delivery).where(Delivery.notification_id == note.id))
    assert (delivery.state, delivery.last_error) == ("failed", "read in the inbox before it went")


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


def test_an_urgent_push_is_claimed_before_a_backlog_queued_ahead_of_it(
    session, world, app, router, fake
):
    """An escalation or a danger-to-life task queued behind a fan-out (10,000 pushes of a
    district notice) waited for the whole backlog, claimed by due time only: some 20 s at FCM's
    pace. A due urgent push is claimed first; the backlog keeps its order behind it."""
    worker = PushWorker(db.begin, router, batch_size=2, lease_seconds=60)
    user = world.users["worker_a1"]
    make_device(session, user, "fcm-1", now=T0)
    backlog = [
        notify(session, [user.id], "roster_changed", f"通知 {k}", now=T0 + timedelta(seconds=k))
        for k in range(3)
    ]
    [escalation] = notify(
        session, [user.id], "task_escalated", "升级", urgent=True, now=T0 + timedelta(seconds=5)
    )
    worker.run_once(T0 + timedelta(seconds=6))
    sent = {m["data"]["message_id"] for m in fake.messages}  # one batch: sent in parallel
    assert sent == {f"n{escalation.id}", f"n{backlog[0][0].id}"}


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
    # Honoured up to a day, the message's whole life: asked to come back after it is stale,
    # the push is dead as expired (it stays in the inbox), not parked for years.
    assert (stats.sent, stats.failed) == (1, 1)
    assert states(session) == {"fcm-1": "dead", "fcm-2": "sent"}
    assert "expired" in session.scalar(select(Delivery.last_error).where(Delivery.state == "dead"))
    assert worker.run_once(T0 + timedelta(seconds=61)).claimed == 0  # nothing sent twice
    assert len(fake.messages) == 1


def test_a_retry_after_within_the_messages_life_is_honoured(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.retry_after = str(6 * 3600)
    fake.fail_next("fcm-1", times=1, kind="quota")
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    assert worker.run_once(T0).retried == 1
    retry_at = session.scalar(select(Delivery.next_attempt_at))
    assert T0 + timedelta(hours=6) <= retry_at < T0 + timedelta(hours=6, seconds=5)
    assert worker.run_once(retry_at - timedelta(seconds=1)).claimed == 0
    assert worker.run_once(retry_at).sent == 1


def test_a_retry_after_counts_from_the_answer_not_from_the_start_of_the_round(
    session, world, web_router, push_service
):
    """Web Push sends a round's messages one at a time: an answer may come minutes after the
    round began. A push service's 429 "Retry-After: 30" that came five minutes in was counted
    from the round's start, already past: the push went again in the very next round, at a
    service that had asked for 30 seconds of quiet (and the backoff of a 503 late in a round
    came to nothing the same way)."""
    ticks = [0.0]  # the worker's clock of the real time since its claim
    worker = PushWorker(db.begin, web_router, lease_seconds=60, monotonic=lambda: ticks[0])

    def answered(path: str) -> None:
        if path == "/push/slow":  # this push service takes five minutes to answer
            ticks[0] += 300

    push_service.on_request = answered
    push_service.answer("busy", 429, {"Retry-After": "30"})
    _web_device(session, world.users["worker_a1"], push_service.endpoint("slow"))
    _web_device(session, world.users["worker_a2"], push_service.endpoint("busy"))
    notify(
        session,
        [world.users["worker_a1"].id, world.users["worker_a2"].id],
        "task_updated",
        "t",
        now=T0,
    )
    stats = worker.run_once(T0)
    assert (stats.sent, stats.retried) == (1, 1)
    answered_at = T0 + timedelta(seconds=300)
    busy = push_service.endpoint("busy")
    retry_at = session.scalar(
        select(Delivery.next_attempt_at).join(Device).where(Device.token == busy)
    )
    assert retry_at >= answered_at + timedelta(seconds=30)
    assert worker.run_once(answered_at + timedelta(seconds=1)).claimed == 0
    assert push_service.received.count("/push/busy") == 1


def test_a_service_account_of_another_firebase_project_switches_off_no_phone_and_loses_no_push(
    session, world, router, fake, tmp_path
):
    """FCM answers SENDER_ID_MISMATCH for every token when the server sends with the account of
    another Firebase project than the app's: GRIDWORK_FCM_CREDENTIALS pointing at the staging
    project's JSON, or unset on a host whose GOOGLE_APPLICATION_CREDENTIALS is another
    project's. Each answer deactivated its device: one round of the mistake switched off every
    phone. Then each push was failed for good: every push of the mistake was lost, while the
    same mistake with a project without FCM (403 PERMISSION_DENIED) lost none. A configuration
    fault of ours: the phones stay, and the pushes go once the setting is mended."""
    from tests.fakes.fcm import fake_service_account

    fake.other_projects.add("gridwork-staging")
    staging = fake_service_account(tmp_path / "staging.json", fake.token_uri, "gridwork-staging")
    wrong = Router(
        build_channels({"GRIDWORK_FCM_CREDENTIALS": str(staging), "GRIDWORK_FCM_URL": fake.url})
    )
    try:
        _two_phones_told(session, world)
        stats = PushWorker(db.begin, wrong, lease_seconds=60).run_once(T0)
    finally:
        wrong.close()
    assert (stats.sent, stats.retried, stats.failed) == (0, 2, 0) and fake.messages == []
    assert all(device.active for device in session.scalars(select(Device)))
    mended = PushWorker(db.begin, router, lease_seconds=60)
    assert mended.run_once(T0 + timedelta(hours=1)).sent == 2
    assert sorted(m["fid"] for m in fake.messages) == ["fcm-1", "fcm-2"]


# --- answers a push service chooses: a Web Push endpoint is any https host a user registers ----
class _HostilePushHandler(BaseHTTPRequestHandler):
    answers = {
        "/push/long-location": (201, {"Location": "/m/" + "x" * 400}, b""),
        "/push/nul-body": (
            500,
            {"Content-Type": "text/plain; charset=utf-8"},
            b"upstream\x00reset",
        ),
    }

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.answers[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile_push() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostilePushHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def web_router(app, fake, tmp_path) -> Iterator[Router]:
    """FCM (the fake) for phones, real Web Push for browsers, allowed onto loopback."""
    channels = fcm_channels(fake, tmp_path)
    channels["web"] = web_push_channel()
    router = Router(channels)
    yield router
    router.close()


@pytest.fixture
def web_worker(web_router) -> PushWorker:
    return PushWorker(db.begin, web_router, batch_size=100, lease_seconds=60, max_attempts=3)


def _web_device(session, user, endpoint):
    from api.services.devices import register_device

    return register_device(session, user.id, "web", subscription=subscription(endpoint), now=T0)


@pytest.mark.parametrize(
    ("path", "state"), [("/push/long-location", "sent"), ("/push/nul-body", "pending")]
)
def test_what_a_push_service_answers_never_costs_the_round_its_marks(
    session, world, web_worker, fake, hostile_push, path, state
):
    """A Location longer than provider_id's 200 characters, or an error body holding a NUL
    (PostgreSQL text refuses it), failed the round's mark: every message of the round,
    everybody's, went out again after the lease, round after round."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    _web_device(session, world.users["worker_a2"], hostile_push + path)
    notify(
        session,
        [world.users["worker_a1"].id, world.users["worker_a2"].id],
        "task_updated",
        "t",
        now=T0,
    )
    stats = web_worker.run_once(T0)
    assert stats.sent == (2 if state == "sent" else 1)
    assert states(session) == {"fcm-1": "sent", hostile_push + path: state}
    web_worker.run_once(T0 + timedelta(seconds=61))
    assert len(fake.messages) == 1  # fcm-1's message went once


def _round_in_the_background(worker, now):
    """`worker.run_once(now)` in a thread of its own: (the executor, the round's future)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    return pool, pool.submit(worker.run_once, now)


def test_a_web_push_endpoint_that_hangs_delays_no_other_push_of_the_round(
    session, world, web_router, push_service
):
    """Any user may register up to 10 Web Push endpoints on any https host, one that never
    answers included: each send there cost its whole deadline (20 s), and the worker sent Web
    Push one message at a time, so everybody's pushes queued behind it, an escalation's too,
    round after round (a retry comes back ~100 times a day). A round now sends its Web Push
    messages side by side (`GRIDWORK_PUSH_WEB_CONCURRENCY`): a host that hangs holds its own
    slot only, and the other pushes go while it hangs."""
    _web_device(session, world.users["worker_a2"], push_service.endpoint("hangs"))
    for name in ("a1-phone", "a1-laptop", "a1-tablet"):
        _web_device(session, world.users["worker_a1"], push_service.endpoint(name))
    notify(session, [world.users["worker_a2"].id], "task_updated", "t", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_escalated", "升级", now=T0)
    push_service.hang("hangs")
    worker = PushWorker(db.begin, web_router, batch_size=100, lease_seconds=60)
    pool, round_ = _round_in_the_background(worker, T0)
    with pool:
        assert push_service.holding.wait(20)
        went_while_it_hung = push_service.wait_for(4, timeout=10)  # its deadline is 20 s
        push_service.release()
        stats = round_.result(timeout=60)
    assert went_while_it_hung
    assert sorted(push_service.received) == sorted(
        f"/push/{name}" for name in ("hangs", "a1-phone", "a1-laptop", "a1-tablet")
    )
    assert stats.sent == 4 and set(states(session).values()) == {"sent"}


def test_a_round_hands_out_no_web_push_after_its_time_budget_and_hands_the_rest_back(
    session, world, web_router, push_service
):
    """However many slots, enough hosts that hang fill them all: a round then hands out no new
    Web Push send once `GRIDWORK_PUSH_SEND_BUDGET_SECONDS` have passed since it began sending.
    The rest are handed back, due at once and their attempt not counted, so the round ends
    and the next one claims again, an escalation queued meanwhile first."""
    _web_device(session, world.users["worker_a2"], push_service.endpoint("hangs"))
    for name in ("a1-phone", "a1-laptop"):
        _web_device(session, world.users["worker_a1"], push_service.endpoint(name))
    notify(session, [world.users["worker_a2"].id], "task_updated", "t", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    clock = [0.0]
    worker = PushWorker(
        db.begin,
        web_router,
        lease_seconds=60,
        web_concurrency=1,
        send_budget_seconds=30,
        monotonic=lambda: clock[0],
    )
    push_service.hang("hangs")
    pool, round_ = _round_in_the_background(worker, T0)
    with pool:
        assert push_service.holding.wait(20)
        clock[0] += 31  # the host took the round past its budget
        push_service.release()
        stats = round_.result(timeout=60)
    assert push_service.received == ["/push/hangs"]
    assert (stats.sent, stats.deferred) == (1, 2)
    session.expire_all()
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.state, d.next_attempt_at, d.attempts, d.claimed_until) for d in rows[1:]] == [
        ("pending", T0, 0, None)
    ] * 2
    assert worker.run_once(T0).sent == 2
    assert len(push_service.received) == 3


def test_the_worker_loop_outlives_a_database_outage(app, monkeypatch):
    """The database restarting under `gridwork push-worker` ended the process: pushes and the
    deadline tick (escalations of danger-to-life tasks) stopped until someone restarted it."""
    import threading

    from click.testing import CliRunner
    from sqlalchemy.exc import OperationalError

    from api.cli import main
    from api.services import tasks as task_service
    from api.services.delivery import RoundStats

    app.config.update(GRIDWORK_PUSH_BACKEND="log", PUSH_POLL_SECONDS=0, TASK_TICK_SECONDS=0)
    down = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    rounds, ticks, sleeps = [], [], []

    def run_once(self, now=None):
        rounds.append(now)
        if len(rounds) == 1:
            raise down
        return RoundStats()

    def tick(session, now):
        ticks.append(now)
        if len(ticks) == 2:
            raise down
        return task_service.TickResult()

    def wait(event, timeout=None):
        """The worker's pauses (it waits on its stop event, which a signal sets): none taken;
        the fourth stops it as SIGTERM would."""
        sleeps.append(timeout)
        if len(sleeps) == 4:
            threading.Event.set(event)
        return event.is_set()

    monkeypatch.setattr(PushWorker, "run_once", run_once)
    monkeypatch.setattr(task_service, "tick", tick)
    monkeypatch.setattr(threading.Event, "wait", wait)
    with app.app_context():
        result = CliRunner().invoke(main, ["push-worker"], catch_exceptions=False)
    assert "push worker stopped" in result.output
    assert len(rounds) >= 3 and len(ticks) >= 3


def test_a_delivery_whose_rounds_never_finish_is_sent_no_more_than_max_lost_rounds(
    session, world, worker, fake
):
    """A round that dies after sending (kill -9, OOM, a crash in mark) every time it takes a
    row was retried forever: each lease sent the message again, attempts counting past the
    limit."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    now = T0
    for _ in range(5):
        _, claimed = worker.claim(now)
        worker.send(claimed, now)  # the round dies here, before marking
        now += timedelta(seconds=61)  # the lease passes
    assert len(fake.messages) == 3  # max_lost_rounds
    assert states(session) == {"fcm-1": "dead"}
    assert "no result recorded" in session.scalar(select(Delivery.last_error))


# --- a provider outage: retried for as long as the message lives, not for a count of tries ------
def _outage_until(fake, end: datetime):
    """FCM answers UNAVAILABLE until `end` (as the worker's clock reads it)."""
    fake.fail_next("fcm-1", times=10_000, kind="unavailable")
    return lambda now: fake.clear_failures() if now >= end else None


def _run_until_settled(worker, session, start: datetime, until: datetime, on_tick=None):
    now = start
    while now <= until and states(session) == {"fcm-1": "pending"}:
        if on_tick:
            on_tick(now)
        worker.run_once(now)
        now += timedelta(minutes=1)
    return now


def test_a_two_hour_outage_of_fcm_loses_no_push(app, session, world, router, fake):
    """With the settings' defaults, a push waits out an outage (FCM down, the relay out of
    reach): 10 tries over about a quarter of an hour had marked it dead."""
    worker = PushWorker(db.begin, router, batch_size=100)  # the defaults
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    back = T0 + timedelta(hours=2)
    outage = _outage_until(fake, back)
    end = _run_until_settled(worker, session, T0, T0 + timedelta(hours=3), outage)
    assert states(session) == {"fcm-1": "sent"}
    assert end <= back + timedelta(minutes=16)  # retried at most the backoff's cap after
    # Sent with what is left of its day to live: FCM must not hold it past the message's expiry.
    ttl = int(fake.messages[-1]["android"]["ttl"].removesuffix("s"))
    assert timedelta(hours=21, minutes=40) <= timedelta(seconds=ttl) <= timedelta(hours=22)


def test_a_push_not_sent_within_its_day_to_live_is_dead_as_expired(
    app, session, world, router, fake
):
    worker = PushWorker(db.begin, router, batch_size=100)
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    fake.fail_next("fcm-1", times=10_000, kind="unavailable")
    now = T0
    while now < T0 + timedelta(hours=25) and states(session) == {"fcm-1": "pending"}:
        worker.run_once(now)
        now += timedelta(minutes=15)
    assert states(session) == {"fcm-1": "dead"}
    assert now <= T0 + timedelta(hours=24, minutes=15)
    assert "expired" in session.scalar(select(Delivery.last_error))


def test_a_lost_round_after_an_outage_does_not_kill_the_push(app, session, world, router, fake):
    """Attempts answered by the provider and rounds lost without a result are counted apart."""
    worker = PushWorker(db.begin, router, batch_size=100, lease_seconds=60, max_lost_rounds=3)
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    fake.fail_next("fcm-1", times=12, kind="unavailable")
    now = T0
    while session.scalar(select(Delivery.attempts)) < 12:
        worker.run_once(now)
        now += timedelta(minutes=20)
    _, claimed = worker.claim(now)
    worker.send(claimed, now)  # this round dies before marking
    now += timedelta(seconds=61)
    assert worker.run_once(now).sent == 1
    assert states(session) == {"fcm-1": "sent"}


def test_quiet_hours_in_a_zone_the_server_does_not_know_do_not_stop_the_round(
    session, world, worker, fake
):
    """Quiet hours in a zone this server's tz database does not have (a row stored before the
    zone check, a tzdata upgrade) raised out of the round: nobody's message went, and so again
    at every lease. They are read in Asia/Shanghai, the default."""
    first, second = world.users["worker_a1"], world.users["worker_a2"]
    session.add(
        NotificationSettings(
            user_id=first.id, quiet_start=time(22), quiet_end=time(7), timezone="Mars/Olympus"
        )
    )
    make_device(session, first, "fcm-1", now=T0)
    make_device(session, second, "fcm-2", now=T0)
    notify(session, [first.id, second.id], "task_updated", "t", now=T0)
    assert worker.run_once(T0).sent == 2  # 10:00 in Beijing
    notify(session, [first.id], "task_updated", "t", now=T0)
    night = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)  # 23:00 in Beijing
    assert worker.run_once(night).deferred == 1


def test_a_channel_that_raises_costs_a_retry_not_the_round(session, world, app):
    """The Channel contract says send() never raises; if one does, its messages are retried
    like a provider that cannot be reached, and the round's marks are kept."""

    class Broken:
        def send(self, messages):
            raise RuntimeError("a bug in a channel")

        def close(self):
            pass

    worker = PushWorker(db.begin, Router({"android": Broken()}), lease_seconds=60)
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    notify(session, [world.users["worker_a1"].id], "task_updated", "t", now=T0)
    assert worker.run_once(T0).retried == 1
    delivery = session.scalar(select(Delivery))
    assert delivery.state == "pending" and delivery.claimed_until is None
    assert "a bug in a channel" in delivery.last_error


# --- who owns a delivery between claim and mark: a dead delivery is never sent ---------------
DAY = timedelta(days=1)  # the messages' time to live


def _one_push(session, world, now=T0):
    user = world.users["worker_a1"]
    device = make_device(session, user, "fcm-1", now=now)
    notify(session, [user.id], "task_updated", "t", now=now)
    return user, device


def test_a_push_past_its_day_is_left_to_the_worker_holding_it(session, world, worker, fake):
    """A worker claimed the push a second before it expired; a worker beside it, a second
    after, marked it dead as expired under the first's live lease, and the first then sent
    it and overwrote "dead" with "sent". The row's lease is its holder's to settle."""
    _one_push(session, world)
    beside = PushWorker(db.begin, worker.channel, lease_seconds=60)
    held_at = T0 + DAY - timedelta(seconds=1)
    claim_id, claimed = worker.claim(held_at)
    _, taken = beside.claim(T0 + DAY + timedelta(seconds=1))
    assert taken == [] and states(session) == {"fcm-1": "pending"}
    worker.mark(claim_id, claimed, worker.send(claimed, held_at, claim_id=claim_id), held_at)
    assert states(session) == {"fcm-1": "sent"} and len(fake.messages) == 1


def test_a_push_marked_dead_after_its_claim_is_not_sent(session, world, worker, fake):
    """The holder stalled between claim and send past its lease (a pause, a database blip);
    a worker beside it marked the push dead as expired. The holder sent it all the same."""
    _one_push(session, world)
    beside = PushWorker(db.begin, worker.channel, lease_seconds=60)
    held_at = T0 + DAY - timedelta(seconds=30)
    claim_id, claimed = worker.claim(held_at)
    beside.claim(held_at + timedelta(seconds=61))  # the lease passed; the push expired
    assert states(session) == {"fcm-1": "dead"}
    outcome = worker.send(claimed, held_at, claim_id=claim_id)
    worker.mark(claim_id, claimed, outcome, held_at)
    assert fake.messages == []
    assert states(session) == {"fcm-1": "dead"}
    assert "expired" in session.scalar(select(Delivery.last_error))


def test_a_push_taken_over_after_its_claim_is_sent_by_the_new_holder_only(
    session, world, worker, fake
):
    """The holder stalled past its lease; another round took the push over and sent it. The
    holder sent it again (under the same message id, but a second time for nothing)."""
    _one_push(session, world)
    claim_id, claimed = worker.claim(T0)
    assert worker.run_once(T0 + timedelta(seconds=61)).sent == 1  # the lease had passed
    worker.mark(claim_id, claimed, worker.send(claimed, T0, claim_id=claim_id), T0)
    assert len(fake.messages) == 1 and states(session) == {"fcm-1": "sent"}


@pytest.mark.parametrize("change", ["device removed", "user switched off"])
def test_a_push_whose_device_or_user_was_switched_off_after_the_claim_is_not_sent(
    session, world, worker, fake, change
):
    """Checked at the claim only, a push claimed just before its user signed the phone out
    (or an admin switched the user off) still reached the phone."""
    from api.services.devices import remove_device

    user, device = _one_push(session, world)
    claim_id, claimed = worker.claim(T0)
    if change == "device removed":
        remove_device(session, user.id, device.id, T0)
    else:
        user.active = False
        session.flush()
    worker.mark(claim_id, claimed, worker.send(claimed, T0, claim_id=claim_id), T0)
    assert fake.messages == []
    assert states(session) == {"fcm-1": "failed"}


@pytest.mark.parametrize("change", ["device removed", "user switched off"])
def test_a_web_push_whose_device_or_user_was_switched_off_mid_round_is_not_sent(
    session, world, web_router, push_service, change
):
    """Web Push goes one message per request, and the round checked that a device might still
    be sent to only at its start and then once a third of the lease (20 s here) had passed: a
    phone signed out, or a user switched off, while the round's earlier pushes went got its
    push up to that long after. Each is checked now just before it goes."""
    from api.services.devices import remove_device

    worker = PushWorker(db.begin, web_router, batch_size=100, lease_seconds=60, web_concurrency=1)
    devices = {
        user: _web_device(session, world.users[user], push_service.endpoint(user))
        for user in ("worker_a1", "worker_a2")
    }
    notify(session, [world.users[u].id for u in devices], "task_updated", "t", now=T0)

    def switch_off_the_other(path: str) -> None:
        push_service.on_request = None  # once, as the round's first push is answered
        user = next(u for u in devices if not path.endswith(u))
        if change == "device removed":
            remove_device(session, world.users[user].id, devices[user].id, T0)
        else:
            world.users[user].active = False
        session.flush()

    push_service.on_request = switch_off_the_other
    worker.run_once(T0)
    assert len(push_service.received) == 1
    assert sorted(states(session).values()) == ["failed", "sent"]


@pytest.mark.parametrize(
    ("fcm_answers", "state"), [(None, "sent"), ("unavailable", "dead"), ("unregistered", "dead")]
)
def test_a_send_in_flight_when_its_push_was_marked_dead_is_recorded_truthfully(
    session, world, worker, fake, fcm_answers, state
):
    """The holder sent, then could not mark before its lease passed; a worker beside it gave
    the push up ("no result recorded"). The holder's late result is still its own claim's: a
    message that went is recorded "sent"; any other answer leaves the push dead as it was
    (a "retry" answer had moved it and overwritten why it died)."""
    _one_push(session, world)
    if fcm_answers:
        fake.fail_next("fcm-1", kind=fcm_answers)
    beside = PushWorker(db.begin, worker.channel, lease_seconds=60, max_lost_rounds=1)
    claim_id, claimed = worker.claim(T0)
    outcome = worker.send(claimed, T0, claim_id=claim_id)
    beside.claim(T0 + timedelta(seconds=61))
    dead = session.scalar(select(Delivery))
    session.refresh(dead)
    before = (dead.state, dead.last_error, dead.next_attempt_at)
    assert dead.state == "dead"
    worker.mark(claim_id, claimed, outcome, T0)
    assert states(session) == {"fcm-1": state}
    delivery = session.scalar(select(Delivery))
    if state == "sent":
        assert delivery.sent_at == T0 and delivery.last_error is None
    else:
        assert (delivery.state, delivery.last_error, delivery.next_attempt_at) == before


def test_a_worker_whose_clock_runs_ahead_takes_over_no_push_another_is_sending(
    app, session, world, worker, monkeypatch
):
    """Leases were read against each worker host's own clock: a host an hour ahead (NTP down,
    a VM resumed) saw every lease of the others as passed, took their rows over mid-send and
    sent them again, and its sweep marked pushes dead hours early. `gridwork push-worker`
    now reads the database's clock, which every worker shares."""
    import datetime as datetime_module

    from click.testing import CliRunner
    from sqlalchemy import text

    from api import cli

    db_now = session.scalar(text("SELECT clock_timestamp()"))
    _one_push(session, world, now=db_now)
    claim_id, _ = worker.claim(db_now)  # another worker, on time, is sending it

    class Ahead(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(hours=1)

    app.config.update(GRIDWORK_PUSH_BACKEND="log")
    monkeypatch.setattr(datetime_module, "datetime", Ahead)
    monkeypatch.setattr(cli, "_worker_tick", lambda log: None)
    with app.app_context():
        result = CliRunner().invoke(cli.main, ["push-worker", "--once"], catch_exceptions=False)
    assert result.output.startswith("0 sent")
    delivery = session.scalar(select(Delivery))
    session.refresh(delivery)
    assert (delivery.state, delivery.claim_id) == ("pending", claim_id)


def test_a_holder_that_stalled_past_its_lease_renews_it_from_the_real_time(
    session, world, router, fake
):
    """A holder that stalled past its lease after claiming, its row still untaken, keeps the
    row for its send: the lease it renews runs from the real time since the claim, not from
    the round's start (already passed), so a worker beside it does not take the push over
    while it is being sent and send it again."""
    ticks = [0.0]
    worker = PushWorker(db.begin, router, lease_seconds=60, monotonic=lambda: ticks[0])
    beside = PushWorker(db.begin, router, lease_seconds=60)
    _one_push(session, world)
    claim_id, claimed = worker.claim(T0)
    ticks[0] += 61  # stalled past the lease; nobody took the row meanwhile
    outcome = worker.send(claimed, T0, claim_id=claim_id)
    assert beside.claim(T0 + timedelta(seconds=62))[1] == []  # while that send is in flight
    worker.mark(claim_id, claimed, outcome, T0)
    assert states(session) == {"fcm-1": "sent"} and len(fake.messages) == 1


def test_a_round_that_raises_keeps_no_claim_time(session, world, worker, monkeypatch):
    """A round that fails between claim and mark (the database gone while it checks what it
    holds) leaves its rows to their lease; the worker keeps nothing of it, however many such
    rounds an outage brings."""
    _one_push(session, world)

    def gone(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(worker, "_hold", gone)
    with pytest.raises(RuntimeError):
        worker.run_once(T0)
    assert worker._claimed_at == {}


# --- the worker's periodic jobs (tick, audit index merge) -----------------------------------


class Job:
    """A periodic job that answers as told and counts its runs."""

    def __init__(self, answer=None, fails=False):
        self.answer, self.fails, self.runs = answer, fails, 0

    def __call__(self, _log):
        self.runs += 1
        if self.fails:
            raise RuntimeError("the tick broke")
        return self.answer


def test_periodic_jobs_run_at_once_then_each_when_due():
    from api.cli import PeriodicJobs

    tick, merge = Job(), Job(answer=True)
    jobs = PeriodicJobs([(60, tick, "tick"), (10, merge, "merge")], logging.getLogger("t"))
    for now in (0.0, 5.0, 10.0, 59.0, 60.0):
        jobs.run_due(now)
    assert (tick.runs, merge.runs) == (2, 3)  # tick at 0 and 60; merge at 0, 10 and 59


def test_a_job_that_answers_false_is_not_run_again():
    """The audit index merge answers False for a database user who may not merge: the worker
    stops scheduling it instead of warning every 10 seconds."""
    from api.cli import PeriodicJobs

    tick, merge = Job(), Job(answer=False)
    jobs = PeriodicJobs([(60, tick, "tick"), (10, merge, "merge")], logging.getLogger("t"))
    for now in range(0, 601, 10):
        jobs.run_due(float(now))
    assert (tick.runs, merge.runs) == (11, 1)


def test_a_job_that_fails_is_logged_and_tried_again_when_next_due(caplog):
    from api.cli import PeriodicJobs

    broken = Job(fails=True)
    jobs = PeriodicJobs([(60, broken, "tick")], logging.getLogger("t"))
    with caplog.at_level(logging.ERROR, logger="t"):
        for now in (0.0, 30.0, 60.0):
            jobs.run_due(now)
    assert broken.runs == 2
    assert caplog.text.count("tick failed; next try in 60 s") == 2
    with pytest.raises(RuntimeError):  # `push-worker --once` lets it out
        PeriodicJobs([(60, broken, "tick")], logging.getLogger("t")).run_due(0.0, once=True)


def test_a_refused_data_key_stops_the_worker_whatever_the_job():
    from api.cli import PeriodicJobs
    from api.crypto import DataKeyRefused

    def refused(_log):
        raise DataKeyRefused("the key k2 was retired")

    with pytest.raises(DataKeyRefused):
        PeriodicJobs([(60, refused, "tick")], logging.getLogger("t")).run_due(0.0)


def test_sigterm_during_the_periodic_jobs_starts_no_new_round(app, monkeypatch):
    """A deploy's SIGTERM arriving while the worker ran its tick (a Monday's reports take a
    while) was followed by a whole new round: up to a batch claimed and sent after the signal,
    which a supervisor's SIGKILL could cut between send and mark (the batch sent again after
    its lease). The worker stops after the round in flight, and starts none after the signal."""
    import os
    import signal

    from click.testing import CliRunner

    from api.cli import main
    from api.services import tasks as task_service
    from api.services.delivery import RoundStats

    app.config.update(GRIDWORK_PUSH_BACKEND="log", PUSH_POLL_SECONDS=0, TASK_TICK_SECONDS=0)
    rounds = []

    def run_once(self, now=None):
        rounds.append(now)
        return RoundStats()

    def tick(session, now):
        os.kill(os.getpid(), signal.SIGTERM)  # the deploy, mid-tick
        return task_service.TickResult()

    monkeypatch.setattr(PushWorker, "run_once", run_once)
    monkeypatch.setattr(task_service, "tick", tick)
    with app.app_context():
        result = CliRunner().invoke(main, ["push-worker"], catch_exceptions=False)
    assert "push worker stopped" in result.output
    assert rounds == []


def test_a_worker_stopped_at_once_before_sending_hands_its_whole_claim_back(
    session, world, worker, fake, monkeypatch
):
    """Stopped at once (a second signal) after it took its rows to send them, before any went
    to FCM: the claim was left to its lease, recorded as sending (a lost round counted). It is
    handed back whole, nothing counted, and the next round sends it."""
    _two_phones_told(session, world)
    hold = PushWorker._hold

    def interrupted(self, *args):
        hold(self, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(PushWorker, "_hold", interrupted)
    with pytest.raises(KeyboardInterrupt):
        worker.run_once(T0)
    session.expire_all()
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.state, d.claimed_until, d.sending_at, d.attempts) for d in rows] == [
        ("pending", None, None, 0)
    ] * 2
    monkeypatch.setattr(PushWorker, "_hold", hold)
    assert worker.run_once(T0).sent == 2
    assert len(fake.messages) == 2


def test_a_second_signal_mid_batch_hands_back_the_pushes_not_yet_sent(
    app, session, world, monkeypatch
):
    """Ctrl-C twice (or SIGTERM, then SIGINT) stops the worker at once, mid-batch. The rows it
    had claimed but not yet handed to a channel waited out the whole lease (two minutes: an
    escalation among them) before another worker took them, and the ones already answered were
    sent again. As it stops, the answered ones are marked, and the rows not yet sent are handed
    back: due again at once, their attempt not counted. The one in flight keeps its claim and
    its record of sending: it may have gone, and goes again only when the lease passes."""
    import os
    import signal

    from click.testing import CliRunner
    from sqlalchemy import text

    import push
    from api.cli import PeriodicJobs, main
    from api.services import devices

    class Interrupted:
        """A Web Push channel (one message a call) that is signalled twice during its second
        send."""

        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, messages):
            from push import DELIVERED, DeliveryResult

            self.sent += [m.target["endpoint"] for m in messages]
            if len(self.sent) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt here
            return [DeliveryResult(m.message_id, DELIVERED, provider_id="p") for m in messages]

        def close(self) -> None:
            pass

    now = session.scalar(text("SELECT clock_timestamp()")) - timedelta(seconds=1)
    user = world.users["worker_a1"]
    endpoints = [f"https://push.example.net/send/{k}" for k in range(4)]
    for endpoint in endpoints:
        devices.register_device(
            session, user.id, "web", subscription=subscription(endpoint), now=now
        )
    notify(session, [user.id], "task_escalated", "升级", now=now)
    # A round sends its rows in the order of their ids, which follow the order the INSERT ...
    # SELECT met the devices in, not that of their registration.
    endpoints = [d.device.token for d in session.scalars(select(Delivery).order_by(Delivery.id))]
    channel = Interrupted()
    monkeypatch.setattr(push, "build_channels", lambda settings: {"web": channel})
    monkeypatch.setattr(PeriodicJobs, "run_due", lambda self, now, **kw: None)
    # One slot: the messages go one after another, so which were handed to the channel when
    # the signal came is certain.
    monkeypatch.setitem(app.config, "PUSH_WEB_CONCURRENCY", 1)
    with app.app_context():
        result = CliRunner().invoke(main, ["push-worker"], catch_exceptions=False)
    assert "push worker stopped" in result.output
    assert channel.sent == endpoints[:2]
    session.expire_all()
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    answered, in_flight, *not_sent = rows
    assert answered.state == "sent"
    assert in_flight.claimed_until is not None and in_flight.sending_at is not None
    assert [(d.state, d.claimed_until, d.sending_at, d.attempts) for d in not_sent] == [
        ("pending", None, None, 0)
    ] * 2
    # The next worker sends them at once, and the one in flight only after its lease.
    after = Interrupted()
    after.sent += ["(past the first calls)"] * 2
    stats = PushWorker(db.begin, after).run_once()
    assert (stats.claimed, stats.sent) == (2, 2)
    assert after.sent[2:] == endpoints[2:]
