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
from sqlalchemy.orm import sessionmaker

from api.services.delivery import PushWorker
from api.services.notifications import notify
from push import Router, build_channels
from tests.factories import box, build_app, make_device, make_grid, make_user
from tests.fakes.fcm import FakeFcm

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
    """A connection of the test's own to the committed database; the outbox starts empty."""
    engine = create_engine(own_database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM deliveries"))
        yield conn
    engine.dispose()


@pytest.fixture
def fake():
    with FakeFcm() as server:
        yield server


@pytest.fixture
def router(fake, tmp_path):
    account = fake.service_account(tmp_path / "sa.json")
    router = Router(
        build_channels({"GRIDWORK_FCM_CREDENTIALS": str(account), "GRIDWORK_FCM_URL": fake.url})
    )
    yield router
    router.close()


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
