"""kill -9 of the push worker while FCM holds its sends: after a restart each delivery is sent.

From our side every delivery ends `sent` exactly once in the outbox. At FCM the guarantee is at
least once: sends that were in flight when the worker died may have been accepted, and are sent
again once their lease passes. Those duplicates are bounded by one batch and carry the same
message id (`n<notification id>`), by which the app drops the second copy.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.fakes.fcm import FakeFcm
from tests.faults.conftest import Process, fault_app, process_env, wait_until

NOTIFICATIONS = 20
BATCH = 5
SENT_BEFORE_KILL = 10  # two whole batches go through before FCM starts holding


@pytest.fixture
def queued(seeded):
    """NOTIFICATIONS notifications for one user with one Android device, committed."""
    from api.extensions import db
    from api.models import User
    from api.services.notifications import notify
    from tests.factories import make_device

    app = fault_app(seeded.url)
    now = datetime.now(UTC)
    with app.app_context():
        with db.begin() as session:
            user = session.get(User, seeded.user_ids["worker_b1"])
            make_device(session, user, "fcm-fault-device", now=now)
            notes = [
                notify(session, [user.id], "task_updated", f"任务 {i}", "正文", now=now)[0]
                for i in range(NOTIFICATIONS)
            ]
            ids = [n.id for n in notes]
        db.engine.dispose()
    return ids


def worker(seeded, fake: FakeFcm, tmp_path: Path, name: str) -> Process:
    account = fake.service_account(tmp_path / "sa.json")
    env = process_env(
        seeded.url,
        GRIDWORK_PUSH_BACKEND="fcm",
        GRIDWORK_FCM_CREDENTIALS=str(account),
        GRIDWORK_FCM_URL=fake.url,
        GRIDWORK_PUSH_BATCH_SIZE=str(BATCH),
        GRIDWORK_PUSH_LEASE_SECONDS="2",
        GRIDWORK_PUSH_POLL_SECONDS="0.1",
        GRIDWORK_TASK_TICK_SECONDS="3600",
    )
    gridwork = str(Path(sys.executable).with_name("gridwork"))
    return Process([gridwork, "push-worker"], env, tmp_path / f"{name}.log").start()


def outbox(seeded, notification_ids: list[int]) -> list[tuple[int, str, int]]:
    """(notification id, state, attempts) of each delivery of these notifications."""
    with seeded.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT notification_id, state, attempts FROM deliveries "
                    "WHERE notification_id = ANY(:ids) ORDER BY notification_id"
                ),
                {"ids": notification_ids},
            )
        ]


def restart_until_all_sent(seeded, queued: list[int], fake: FakeFcm, tmp_path: Path) -> None:
    """A second worker, run until every delivery of `queued` is marked sent."""
    second = worker(seeded, fake, tmp_path, "worker-2")
    try:
        wait_until(
            lambda: all(state == "sent" for _, state, _ in outbox(seeded, queued)),
            what="every delivery to be marked sent after the restart",
        )
    finally:
        second.stop()


def received(fake: FakeFcm) -> Counter[str]:
    return Counter(m["data"]["message_id"] for m in fake.messages)


def test_a_worker_killed_mid_send_loses_nothing_and_marks_each_delivery_once(
    seeded, queued, fake, tmp_path
):
    fake.hold(after=SENT_BEFORE_KILL)
    first = worker(seeded, fake, tmp_path, "worker-1")
    try:
        wait_until(lambda: fake.held == BATCH, what="a whole batch to be in flight at FCM")
        first.kill()  # kill -9 while FCM holds the third batch's sends
    finally:
        first.stop()
    states = Counter(state for _, state, _ in outbox(seeded, queued))
    assert states == {"sent": SENT_BEFORE_KILL, "pending": NOTIFICATIONS - SENT_BEFORE_KILL}
    # FCM now accepts what was in flight: the phone may get those while we recorded nothing.
    fake.release()
    wait_until(lambda: len(fake.messages) == SENT_BEFORE_KILL + BATCH, what="held sends")

    restart_until_all_sent(seeded, queued, fake, tmp_path)

    rows = outbox(seeded, queued)
    assert [n for n, _, _ in rows] == queued  # one delivery per notification: none lost, none added
    assert {state for _, state, _ in rows} == {"sent"}
    counts = received(fake)
    assert set(counts) == {f"n{n}" for n in queued}  # every notification reached FCM
    in_flight = {f"n{n}" for n, _, attempts in rows if attempts == 2}
    assert len(in_flight) == BATCH  # only the batch in flight at the kill was sent again
    assert {m for m, c in counts.items() if c == 2} == in_flight
    assert all(c == 1 for m, c in counts.items() if m not in in_flight)


def test_a_worker_told_to_stop_mid_send_finishes_its_round_and_sends_nothing_twice(
    seeded, queued, fake, tmp_path
):
    """SIGTERM (a deploy, `systemctl stop`) while FCM holds a batch: the worker finishes the
    round (its sends answered, their deliveries marked) and exits 0; the next worker sends the
    rest. Before, SIGTERM killed it mid-round like a crash: the batch in flight was sent again
    after its lease, on every deploy."""
    import os
    import signal

    fake.hold(after=SENT_BEFORE_KILL)
    first = worker(seeded, fake, tmp_path, "worker-1")
    try:
        wait_until(lambda: fake.held == BATCH, what="a whole batch to be in flight at FCM")
        os.kill(first.pid, signal.SIGTERM)
        wait_until(lambda: "stopping" in (tmp_path / "worker-1.log").read_text(), what="the stop")
        fake.release()
        assert first.popen.wait(timeout=30) == 0
    finally:
        first.stop()
    states = Counter(state for _, state, _ in outbox(seeded, queued))
    assert states == {
        "sent": SENT_BEFORE_KILL + BATCH,
        "pending": NOTIFICATIONS - SENT_BEFORE_KILL - BATCH,
    }

    restart_until_all_sent(seeded, queued, fake, tmp_path)
    assert received(fake) == Counter({f"n{n}": 1 for n in queued})  # each once, none again
