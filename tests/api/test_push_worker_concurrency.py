"""Push workers beside each other on a committed database: sweeps, sends and marks at once.

Each worker has its own engine (its own connections), as separate processes would. Where an
interleaving matters, a test pauses one worker's transaction at a statement (a SQLAlchemy
cursor event on that worker's engine) until the other is in flight, so the race is played out
every time rather than by chance. Failures are made in the database itself (connections
refused and terminated), never by replacing the worker's code.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from api.services.delivery import PushWorker, message_id
from api.services.notifications import notify
from push import DELIVERED, INVALID_TARGET, RETRY, DeliveryResult, Router
from tests.factories import box, build_app, make_device, make_grid, make_user
from tests.fakes.fixtures import web_push_channel
from tests.fakes.webpush import subscription
from tests.races import wait_for_lock_waits

pytestmark = pytest.mark.usefixtures("loopback_only")

DAY = timedelta(days=1)
GRID = "110109009002001"


@pytest.fixture(scope="module")
def app(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context():
        with db.begin() as session:
            make_grid(session, GRID, box(116.40, 39.70, 116.41, 39.71))
        yield app
        db.engine.dispose()


@pytest.fixture
def engines(own_database_url):
    made = []

    def engine(**kwargs):
        made.append(create_engine(own_database_url, pool_pre_ping=True, **kwargs))
        return made[-1]

    yield engine
    for e in made:
        e.dispose()


@pytest.fixture
def database(app, own_database_url):
    """A connection of the test's own to the committed database; the outbox starts empty, and
    no device of an earlier test gets pushes (a token registered again by this test's user
    passes to it unannounced, as a phone signed out of does: no notice queued)."""
    engine = create_engine(own_database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM deliveries"))
        conn.execute(text("UPDATE devices SET active = false WHERE active"))
        yield conn
    engine.dispose()


def worker_on(engine, channel, **kwargs) -> PushWorker:
    return PushWorker(sessionmaker(engine, expire_on_commit=False).begin, channel, **kwargs)


def database_now(conn):
    return conn.scalar(text("SELECT clock_timestamp()"))


def outbox(conn) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute(
        text(
            "SELECT v.token, d.state, d.last_error FROM deliveries d "
            "JOIN devices v ON v.id = d.device_id ORDER BY d.id"
        )
    )
    return {token: (state, error) for token, state, error in rows}


def a_user_with(app, tokens, *, created, platform="android", subscriptions=None):
    """A user with a device per token, and one notification to them created at `created`."""
    from api.extensions import db
    from api.services.devices import register_device

    with db.begin() as session:
        user = make_user(session, f"c_{uuid.uuid4().hex[:10]}", "worker", grids=[GRID])
        for token in tokens:
            if platform == "web":
                register_device(
                    session, user.id, "web", subscription=subscriptions[token], now=created
                )
            else:
                make_device(session, user, token, now=created)
        notify(session, [user.id], "task_updated", "t", now=created)
        return user.id


def pause_after(engine, statement_start: str, until) -> threading.Event:
    """Once a statement starting with `statement_start` has run on `engine`, hold that
    connection's transaction there until `until()` is true (bounded); the returned event is
    set when it pauses."""
    paused = threading.Event()

    @event.listens_for(engine, "after_cursor_execute")
    def pause(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith(statement_start) and not paused.is_set():
            paused.set()
            deadline = time.monotonic() + 20
            while not until() and time.monotonic() < deadline:
                time.sleep(0.01)

    return paused


def waiting_on_a_lock(conn) -> bool:
    return bool(
        conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    )


# --- 1. the sweep never waits on a row another round is writing --------------------------------
def test_a_sweep_beside_a_late_mark_neither_deadlocks_nor_sends_twice(
    app, database, engines, router, fake
):
    """A round that stalled past its lease marks its results late, row by row, while a worker
    beside it sweeps the expired rows. The sweep took row locks as it met them and waited on
    the mark's; the mark then waited on the sweep's: a deadlock, and one of the two
    transactions aborted (a round lost: its rows sent again after the lease)."""
    t = database_now(database)
    a_user_with(app, ["fcm-late-1", "fcm-late-2"], created=t - DAY + timedelta(seconds=30))
    fake.fail_next("fcm-late-1", kind="unavailable")  # a retry past its day: marked dead
    late_engine = engines()
    late = worker_on(late_engine, router, lease_seconds=60)
    beside = worker_on(engines(), router, lease_seconds=60)
    claim_id, claimed = late.claim(t)
    outcome = late.send(claimed, t, claim_id=claim_id)
    sweeping = []
    paused = pause_after(
        late_engine,
        "UPDATE deliveries SET state = 'sent'",
        lambda: bool(sweeping) and (sweeping[0].done() or waiting_on_a_lock(database)),
    )
    with ThreadPoolExecutor(2) as pool:
        marking = pool.submit(late.mark, claim_id, claimed, outcome, t)
        assert paused.wait(20)  # the late mark holds the row it marked sent
        sweeping.append(pool.submit(beside.run_once, t + timedelta(seconds=61)))
        marking.result(timeout=30)
        sweeping[0].result(timeout=30)
    states = outbox(database)
    assert states["fcm-late-2"] == ("sent", None)
    assert states["fcm-late-1"][0] == "dead" and "expired" in states["fcm-late-1"][1]
    assert Counter(m.get("token") or m["fid"] for m in fake.messages) == {"fcm-late-2": 1}
    assert beside.run_once(t + timedelta(seconds=200)).claimed == 0


def test_two_rounds_switching_off_the_same_devices_at_once_do_not_deadlock(
    app, database, engines, router
):
    """Two rounds, each with a push to the same two phones that FCM has unregistered, mark at
    once. Each deactivated the devices in the order its results came back: one locked phone A
    and waited on B, the other held B and waited on A, and PostgreSQL aborted one (its round
    lost: its rows sent again after the lease, and counted as a lost round). The marks lock
    devices (and deliveries) in id order now: the second waits for the first, and both go."""
    from api.extensions import db

    t = database_now(database)
    user_id = a_user_with(app, ["fcm-gone-a", "fcm-gone-b"], created=t)
    with db.begin() as session:
        notify(session, [user_id], "task_updated", "t", now=t)
    first_engine, second_engine = engines(), engines()
    first = worker_on(first_engine, router, lease_seconds=60, batch_size=2)
    second = worker_on(second_engine, router, lease_seconds=60, batch_size=2)
    (first_claim, first_rows), (second_claim, second_rows) = first.claim(t), second.claim(t)
    a, b = sorted({row.device_id for row in first_rows})
    assert {row.device_id for row in second_rows} == {a, b}

    def gone(rows, order):
        by_device = {row.device_id: row for row in rows}
        return {
            by_device[d].id: DeliveryResult(
                message_id(by_device[d].notification_id), INVALID_TARGET, error="UNREGISTERED"
            )
            for d in order
        }

    holder_engine = engines()
    with holder_engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        holder.execute(text("SELECT 1 FROM devices WHERE id = :a FOR UPDATE"), {"a": a})
        marks = [pool.submit(first.mark, first_claim, first_rows, gone(first_rows, [a, b]), t)]
        wait_for_lock_waits(holder_engine, 1)  # the first waits on phone A
        marks.append(
            pool.submit(second.mark, second_claim, second_rows, gone(second_rows, [b, a]), t)
        )
        wait_for_lock_waits(holder_engine, 2)  # the second on phone A too (or, before, on B)
        holder.commit()
        for mark in marks:
            mark.result(timeout=30)
    assert {state for state, _ in outbox(database).values()} == {"failed"}
    assert (
        database.scalar(
            text("SELECT count(*) FROM devices WHERE id IN (:a, :b) AND NOT active"),
            {"a": a, "b": b},
        )
        == 2
    )


def test_two_rounds_dropping_the_same_phones_as_unregistered_at_once_tell_their_owner_once_each(
    app, database, engines, router
):
    """Two rounds each find the same two phones unregistered and mark at once: the first
    switches them off and tells their owner; the second, waiting on their rows, finds them off
    already and tells nobody again."""
    from api.extensions import db

    t = database_now(database)
    user_id = a_user_with(app, ["fcm-gone-a", "fcm-gone-b"], created=t)
    with db.begin() as session:
        notify(session, [user_id], "task_updated", "t", now=t)
    first = worker_on(engines(), router, lease_seconds=60, batch_size=2)
    second = worker_on(engines(), router, lease_seconds=60, batch_size=2)
    (first_claim, first_rows), (second_claim, second_rows) = first.claim(t), second.claim(t)
    [a, _] = sorted({row.device_id for row in first_rows})

    def gone(rows):
        return {
            row.id: DeliveryResult(
                message_id(row.notification_id), INVALID_TARGET, error="UNREGISTERED"
            )
            for row in rows
        }

    holder_engine = engines()
    with holder_engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        holder.execute(text("SELECT 1 FROM devices WHERE id = :a FOR UPDATE"), {"a": a})
        marks = [pool.submit(first.mark, first_claim, first_rows, gone(first_rows), t)]
        wait_for_lock_waits(holder_engine, 1)
        marks.append(pool.submit(second.mark, second_claim, second_rows, gone(second_rows), t))
        wait_for_lock_waits(holder_engine, 2)
        holder.commit()
        for mark in marks:
            mark.result(timeout=30)
    told = database.scalars(
        text(
            "SELECT data->>'device_id' FROM notifications "
            "WHERE user_id = :u AND kind = 'device_retired' ORDER BY 1"
        ),
        {"u": user_id},
    ).all()
    assert len(told) == 2 and len(set(told)) == 2


def _two_phones_claimed_by_two_rounds(app, database, engines, router):
    """A user's two phones A and B (ids in that order), two notifications to them: a round
    each, each holding a push to A and one to B. (first, its claim), (second, its claim), A, B."""
    from api.extensions import db

    t = database_now(database)
    user_id = a_user_with(app, ["fcm-a", "fcm-b"], created=t)
    with db.begin() as session:
        notify(session, [user_id], "task_updated", "t", now=t)
    first = worker_on(engines(), router, lease_seconds=60, batch_size=2)
    second = worker_on(engines(), router, lease_seconds=60, batch_size=2)
    first_claim, second_claim = first.claim(t), second.claim(t)
    a, b = sorted({row.device_id for row in first_claim[1]})
    assert {row.device_id for row in second_claim[1]} == {a, b}
    return t, (first, first_claim), (second, second_claim), a, b


def _answers(rows, outcomes):
    """Results for `rows`: the push to device d answered `outcomes[d]` (an outcome, transient)."""
    return {
        row.id: DeliveryResult(
            message_id(row.notification_id),
            outcomes[row.device_id][0],
            error="x",
            transient=outcomes[row.device_id][1],
        )
        for row in rows
    }


def test_two_rounds_writing_one_devices_history_and_switching_off_another_do_not_deadlock(
    app, database, engines, router
):
    """One round's push to phone A went and phone B is unregistered; the other's went to B and
    A is unregistered. Each wrote its send history and then deactivated, each statement in id
    order: the first held A (history) and waited on B (deactivation), the second held B and
    waited on A. The mark locks every device it writes first, in one pass in id order."""
    t, (first, (c1, rows1)), (second, (c2, rows2)), a, b = _two_phones_claimed_by_two_rounds(
        app, database, engines, router
    )
    went, gone = (DELIVERED, False), (INVALID_TARGET, False)
    holder_engine = engines()
    with holder_engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        holder.execute(text("SELECT 1 FROM devices WHERE id = :a FOR UPDATE"), {"a": a})
        marks = [pool.submit(first.mark, c1, rows1, _answers(rows1, {a: went, b: gone}), t)]
        wait_for_lock_waits(holder_engine, 1)  # the first waits on phone A
        marks.append(pool.submit(second.mark, c2, rows2, _answers(rows2, {a: gone, b: went}), t))
        wait_for_lock_waits(holder_engine, 2)  # the second on A too (or, before, on A after B)
        holder.commit()
        for mark in marks:
            mark.result(timeout=30)
    # Of the rounds' own rows (the notice that a phone was dropped is queued to the other).
    states = database.scalars(
        text("SELECT DISTINCT state FROM deliveries WHERE id = ANY(:ids)"),
        {"ids": [row.id for row in rows1 + rows2]},
    ).all()
    assert set(states) == {"sent", "failed"}
    inactive = database.scalar(
        text("SELECT count(*) FROM devices WHERE id IN (:a, :b) AND NOT active"), {"a": a, "b": b}
    )
    assert inactive == 2


def test_two_rounds_failing_on_the_same_phones_at_once_count_every_failure(
    app, database, engines, router
):
    """Both rounds' pushes to both phones got a 503, and they mark at once: each failure is
    counted (the count is added in SQL under the row's lock, not read and written back)."""
    t, (first, (c1, rows1)), (second, (c2, rows2)), a, b = _two_phones_claimed_by_two_rounds(
        app, database, engines, router
    )
    down = {a: (RETRY, True), b: (RETRY, True)}
    holder_engine = engines()
    with holder_engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        holder.execute(text("SELECT 1 FROM devices WHERE id = :a FOR UPDATE"), {"a": a})
        marks = [
            pool.submit(first.mark, c1, rows1, _answers(rows1, down), t),
            pool.submit(second.mark, c2, rows2, _answers(rows2, down), t),
        ]
        wait_for_lock_waits(holder_engine, 2)
        holder.commit()
        for mark in marks:
            mark.result(timeout=30)
    rows = database.execute(
        text("SELECT consecutive_failures, failing_since FROM devices WHERE id IN (:a, :b)"),
        {"a": a, "b": b},
    ).all()
    assert [tuple(row) for row in rows] == [(2, t), (2, t)]


def test_workers_sweeping_and_sending_at_once_send_each_push_once(
    app, database, engines, router, fake
):
    """Three workers in small rounds at once over expired pushes (some under a lease that
    passed) and fresh ones: no round fails, no push is sent twice, no expired one is sent.
    (A stress run, not a forced interleaving: it guards the whole claim, sweep, send and mark.)"""
    t = database_now(database)
    fresh = [f"fcm-fresh-{i}" for i in range(30)]
    stale = [f"fcm-stale-{i}" for i in range(20)]
    a_user_with(app, stale[:10], created=t - DAY - timedelta(minutes=5))
    a_user_with(app, stale[10:], created=t - DAY + timedelta(seconds=30))
    stalled = worker_on(engines(), router, lease_seconds=60)
    stalled.claim(t)  # claims the younger stale ones and never marks them
    for i in range(0, 30, 10):  # at most 10 active devices a user
        a_user_with(app, fresh[i : i + 10], created=t)
    workers = [worker_on(engines(), router, lease_seconds=60, batch_size=7) for _ in range(3)]
    later = t + timedelta(seconds=61)

    def rounds(worker):
        while worker.run_once(later).claimed:
            pass

    with ThreadPoolExecutor(3) as pool:
        for done in [pool.submit(rounds, w) for w in workers]:
            done.result(timeout=60)
    sent = Counter(m.get("token") or m["fid"] for m in fake.messages)
    assert sent == dict.fromkeys(fresh, 1)
    states = outbox(database)
    assert {states[token][0] for token in fresh} == {"sent"}
    assert {states[token][0] for token in stale} == {"dead"}


@pytest.mark.parametrize("taken_over_answer", [None, "unavailable", "bad_payload"])
def test_a_round_counts_only_the_marks_that_changed_a_row(
    app, database, engines, router, fake, taken_over_answer
):
    """A round whose rows were taken over while it sent (its lease passed before its mark)
    counted every result as its own: the late "sent" mark, which the claim guard turned into
    nothing, was reported sent (and a retry, a failure, likewise). The round's figures count
    what its marks changed; the rows it no longer held are `lost_claims`."""
    t = database_now(database)
    a_user_with(app, ["fcm-1", "fcm-2", "fcm-3"], created=t)
    if taken_over_answer:  # what FCM answers the round for the row taken over from it
        fake.fail_next("fcm-1", kind=taken_over_answer)
    fake.fail_next("fcm-3", kind="unavailable")
    engine = engines()
    worker = worker_on(engine, router, lease_seconds=60)
    beside = worker_on(engines(), router, lease_seconds=60, batch_size=1)
    taken = []

    @event.listens_for(engine, "before_cursor_execute")
    def take_over_before_the_mark(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("UPDATE deliveries SET state = 'sent'") and not taken:
            # The round has sent; before it marks, its lease has passed and a worker beside
            # it takes the first row over (and sends it again).
            taken.append(beside.run_once(t + timedelta(minutes=5)))

    stats = worker.run_once(t)
    assert (taken[0].claimed, taken[0].sent) == (1, 1)
    assert (stats.claimed, stats.sent, stats.retried, stats.failed, stats.lost_claims) == (
        3,
        1,
        1,
        0,
        1,
    )
    states = outbox(database)
    assert (states["fcm-1"], states["fcm-2"], states["fcm-3"][0]) == (
        ("sent", None),
        ("sent", None),
        "pending",
    )
    accepted = {"fcm-1": 1 if taken_over_answer else 2, "fcm-2": 1}  # FCM keeps what it took
    assert Counter(m["fid"] for m in fake.messages) == accepted


# --- 2. the database gone between claim and send: the claim is handed back, not lost ----------
class Outage:
    """The worker's database refusing every connection, its open ones terminated: what a
    restart or a failover looks like to the worker."""

    def __init__(self, url: str) -> None:
        self.name = make_url(url).database
        self.admin = create_engine(
            make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )

    def begin(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            )

    def end(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true'))

    def close(self) -> None:
        self.end()
        self.admin.dispose()


@pytest.fixture
def outage(own_database_url):
    outage = Outage(own_database_url)
    yield outage
    outage.close()


def down_after(scope, scopes: int, outage: Outage):
    """`scope` (a worker's sessions), with the database going down after `scopes` of them:
    between what a round does in one transaction and in the next."""
    opened = [0]

    def counting():
        opened[0] += 1
        if opened[0] == scopes + 1:
            outage.begin()
        return scope()

    return counting


def test_the_database_lost_between_claim_and_send_costs_the_push_no_lost_round(
    app, database, engines, router, fake, outage, caplog
):
    """A round whose database went away after its claim committed, just as it took its rows
    again before sending (`_hold`), had sent nothing; yet its rows stayed leased and the next
    claim counted the round lost: `max_lost_rounds` such blips made the push dead, unsent,
    and each one held it back for a whole lease. The claim is handed back once the database
    answers again, the push goes at once and is counted neither lost nor attempted twice."""
    from sqlalchemy.exc import OperationalError

    t = database_now(database)
    a_user_with(app, ["fcm-blip"], created=t)
    engine = engines()
    scope = sessionmaker(engine, expire_on_commit=False).begin
    worker = PushWorker(down_after(scope, 2, outage), router, lease_seconds=60)
    with pytest.raises(OperationalError):
        worker.run_once()  # its clock, its claim; the database goes as it takes the rows again
    with pytest.raises(OperationalError):
        worker.run_once()  # still down: the next round fails before claiming anything
    outage.end()
    assert worker.run_once().sent == 1  # the database is back, well within the lease
    with engines().connect() as conn:  # the test's own connection went with the outage
        row = conn.execute(text("SELECT state, attempts, lost_rounds FROM deliveries")).one()
    assert tuple(row) == ("sent", 1, 0)
    assert [m["fid"] for m in fake.messages] == ["fcm-blip"]
    assert "database unavailable" in caplog.text
    assert "lost" not in caplog.text


def test_workers_dropped_in_outages_before_sending_cost_the_push_no_attempt(
    app, database, engines, router, fake, outage
):
    """A round that lost its database before sending handed its claim back from memory once
    the database answered again: a worker killed during the outage (a restart, a deploy)
    forgot it, the rows waited out their lease and the next claim counted the round lost and
    attempted. Three such workers made the push dead, never sent. Whether a round sent is
    now recorded in the database before it sends (`sending_at`, written as it takes its rows
    again): a lease that passes without it is taken over with nothing counted."""
    from sqlalchemy.exc import OperationalError

    t = database_now(database)
    a_user_with(app, ["fcm-dropped"], created=t)
    engine = engines()
    scope = sessionmaker(engine, expire_on_commit=False).begin
    now = t
    for _ in range(3):  # max_lost_rounds
        dropped = PushWorker(down_after(scope, 1, outage), router, lease_seconds=60)
        with pytest.raises(OperationalError):
            dropped.run_once(now)  # claims; the database goes as it takes the rows again
        outage.end()  # the database is back, and that worker is gone without handing back
        engine.dispose()
        now += timedelta(seconds=61)  # its lease passes
    stats = worker_on(engines(), router, lease_seconds=60).run_once(now)
    assert (stats.claimed, stats.sent) == (1, 1)
    with engines().connect() as conn:  # the test's own connection went with the outage
        row = conn.execute(text("SELECT state, attempts, lost_rounds FROM deliveries")).one()
    assert tuple(row) == ("sent", 1, 0)
    assert [m["fid"] for m in fake.messages] == ["fcm-dropped"]


def test_a_push_that_kills_every_round_sending_it_still_dies_after_max_lost_rounds(
    app, database, engines, router, fake, outage
):
    """The other side of the same record: a round that took its rows to send them and then
    died (a crash in the channel, an OOM kill, or the database lost after the send) may have
    sent them, so its lease passing counts a lost round, and a push that kills every round
    sending it is dead after `max_lost_rounds` (sent that many times, no more)."""
    from sqlalchemy.exc import OperationalError

    t = database_now(database)
    a_user_with(app, ["fcm-poison"], created=t)
    engine = engines()
    scope = sessionmaker(engine, expire_on_commit=False).begin
    now = t
    rounds = 0
    while rounds < 10:
        dying = PushWorker(down_after(scope, 2, outage), router, lease_seconds=60)
        try:
            if not dying.run_once(now).claimed:  # the sweep before the claim gave it up
                break
        except OperationalError:  # sent; its mark found no database, and it is gone
            rounds += 1
        outage.end()
        engine.dispose()
        now += timedelta(seconds=61)
    assert rounds == 3
    assert [m["fid"] for m in fake.messages] == ["fcm-poison"] * 3
    with engines().connect() as conn:
        row = conn.execute(text("SELECT state, last_error FROM deliveries")).one()
    assert row.state == "dead" and "no result recorded in 3 rounds" in row.last_error


# --- 3. a long Web Push batch sends no row it no longer holds -----------------------------------
@pytest.fixture
def web_channel():
    router = Router({"web": web_push_channel()})
    yield router
    router.close()


def test_a_web_push_batch_that_outlives_its_lease_sends_no_row_taken_over_since(
    app, database, engines, web_channel, push_service
):
    """Web Push sends one message per call. A round whose first send hung past the renewal
    limit let its lease go (rightly: the send may never end), a worker beside it took the
    batch over and sent it; when the hung send returned, the first round went on to send
    every other message of the batch again: its ownership was checked once, before the
    batch. It is checked again between messages once a third of a lease has passed."""
    t = database_now(database)
    names = ["web-1", "web-2", "web-3"]
    subscriptions = {n: subscription(push_service.endpoint(n)) for n in names}
    a_user_with(app, names, created=t, platform="web", subscriptions=subscriptions)
    # One slot, so the other messages wait behind the hung one, as a full pool makes them.
    slow = worker_on(
        engines(),
        web_channel,
        lease_seconds=1,
        max_renewed=timedelta(seconds=1),
        web_concurrency=1,
    )
    beside = worker_on(engines(), web_channel, lease_seconds=1)
    push_service.hold_first()
    with ThreadPoolExecutor(1) as pool:
        round_ = pool.submit(slow.run_once)
        assert push_service.holding.wait(20)  # the first message hangs at the push service
        deadline = time.monotonic() + 20
        while database.scalar(
            text("SELECT count(*) FROM deliveries WHERE claimed_until > clock_timestamp()")
        ):  # the renewals stop after max_renewed; the lease passes
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert beside.run_once().sent == 3  # taken over and sent: the hung send's row too
        push_service.release()
        round_.result(timeout=30)
    # The hung send (the first to arrive: whichever device's row came first), in flight when
    # it was taken over, and the new holder's; the others once, by the new holder.
    hung = push_service.received[0]
    assert Counter(push_service.received) == {
        f"/push/{n}": 2 if f"/push/{n}" == hung else 1 for n in names
    }
    assert {state for state, _ in outbox(database).values()} == {"sent"}


def test_two_rounds_retiring_the_same_phone_at_once_tell_its_owner_once(
    app, database, engines, router
):
    """Two rounds, each with a failed push to a phone failing for days, mark at once: the
    first retires it and tells its owner; the second, waiting on the phone's row, finds it
    retired already and tells nobody again."""
    from api.extensions import db

    t = database_now(database)
    user_id = a_user_with(app, ["unavailable-twice"], created=t)
    a_user_with(app, ["fcm-reached"], created=t)  # pushes reach other phones: no outage
    with db.begin() as session:
        notify(session, [user_id], "task_updated", "t", now=t)
    database.execute(
        text(
            "UPDATE devices SET failing_since = :since, consecutive_failures = 20 "
            "WHERE token = 'unavailable-twice'"
        ),
        {"since": t - 8 * DAY},
    )
    database.execute(
        text("UPDATE devices SET last_success_at = :t WHERE token = 'fcm-reached'"), {"t": t}
    )
    database.execute(
        text(
            "DELETE FROM deliveries WHERE device_id = "
            "(SELECT id FROM devices WHERE token = 'fcm-reached')"
        )
    )
    first = worker_on(engines(), router, lease_seconds=60, batch_size=1)
    second = worker_on(engines(), router, lease_seconds=60, batch_size=1)
    (first_claim, first_rows), (second_claim, second_rows) = first.claim(t), second.claim(t)
    [phone] = {row.device_id for row in first_rows + second_rows}

    def failed(rows):
        return {
            row.id: DeliveryResult(
                message_id(row.notification_id), RETRY, error="503", transient=True
            )
            for row in rows
        }

    holder_engine = engines()
    with holder_engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        holder.execute(text("SELECT 1 FROM devices WHERE id = :p FOR UPDATE"), {"p": phone})
        marks = [pool.submit(first.mark, first_claim, first_rows, failed(first_rows), t)]
        wait_for_lock_waits(holder_engine, 1)
        marks.append(pool.submit(second.mark, second_claim, second_rows, failed(second_rows), t))
        wait_for_lock_waits(holder_engine, 2)
        holder.commit()
        for mark in marks:
            mark.result(timeout=30)
    assert database.scalar(text("SELECT active FROM devices WHERE id = :p"), {"p": phone}) is False
    told = database.scalar(
        text("SELECT count(*) FROM notifications WHERE user_id = :u AND kind = 'device_retired'"),
        {"u": user_id},
    )
    assert told == 1
