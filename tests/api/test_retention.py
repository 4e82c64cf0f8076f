"""Retention (PIPL: personal information kept no longer than the work needs): workers' precise
tracks coarsened, photos, notifications and their deliveries deleted, each after its period;
the visits themselves, and every report on them, kept as they were."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import create_engine, func, select, text

from api.models import Delivery, Notification, TaskEvent, TaskPhoto, Visit, VisitPhoto
from api.services import report_verify, retention
from api.services.notifications import notify
from api.services.photos import build_storage, load_name_key
from tests.factories import A1, A, image_bytes, make_device, make_task_at, make_visit

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = retention.Policy(
    visit_tracks=timedelta(days=90),
    photos=timedelta(days=180),
    read_notifications=timedelta(days=90),
    notifications=timedelta(days=365),
    deliveries=timedelta(days=30),
    complainants=timedelta(days=180),
    removed_households=timedelta(days=180),
    batch=2000,
)
# A worker's precise position, to the centimetre, in the middle of grid A1.
PRECISE = (116.4023456, 39.9223456)
EVIDENCE = {
    "accuracy_m": 8.5,
    "distance_to_household_m": 12.3,
    "distance_to_grid_m": 0.0,
    "distance_to_previous_m": 41.2,
    "seconds_to_previous": 300,
    "speed_to_previous_mps": 0.1,
    "delay_s": 12,
}


@pytest.fixture()
def storage(app, session, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path)
    return build_storage(app.config, load_name_key(session))


def visit_at(session, world, visited_at, household=0, **fields):
    fields.setdefault("grade", "doubtful")
    return make_visit(
        session,
        world.users["worker_a1"],
        world.households[A1][household],
        visited_at,
        location=from_shape(Point(*PRECISE), srid=4326),
        raw_lon=PRECISE[0] + 0.006,  # the phone's own datum (GCJ-02 here)
        raw_lat=PRECISE[1] + 0.001,
        datum="gcj02",
        accuracy_m=8.5,
        provider="gps",
        evidence=dict(EVIDENCE),
        reasons=["far_from_household"],
        notes="腿脚不便",
        **fields,
    )


def lonlat(session, table: str, key) -> tuple[float, float]:
    return session.execute(
        text(f"SELECT ST_X(location), ST_Y(location) FROM {table} WHERE id = :id"), {"id": key}
    ).one()


def purge(session, storage=None, now=NOW, policy=POLICY):
    """A run as the push worker makes it: the purge, then (committed) the photos' bytes."""
    done = retention.purge(session, storage, policy, now)
    if storage is None:
        return done
    return replace(done, photo_files=retention.delete_photo_files(session, storage, policy.batch))


# --- visits: the track coarsened, the visit kept ----------------------------------------------
def test_a_visits_precise_position_is_coarsened_to_about_100_m_after_its_period(
    session, world, storage
):
    visit = visit_at(session, world, NOW - 91 * DAY)
    done = purge(session, storage)
    assert done.visits == 1
    session.expire_all()
    lon, lat = lonlat(session, "visits", visit.id)
    assert (lon, lat) == (pytest.approx(116.402, abs=1e-9), pytest.approx(39.922, abs=1e-9))
    row = session.get(Visit, visit.id)
    assert (row.raw_lon, row.raw_lat) == (
        pytest.approx(116.408, abs=1e-9),
        pytest.approx(39.923, abs=1e-9),
    )
    assert (row.accuracy_m, row.provider) == (None, None)
    # The distances and speeds would give the position back from the household's point.
    assert row.evidence == {"seconds_to_previous": 300, "delay_s": 12}
    assert row.coarsened_at == NOW


def test_a_coarsened_visit_stays_the_evidence_it_was(session, world, storage):
    visit = visit_at(session, world, NOW - 91 * DAY)
    purge(session, storage)
    session.expire_all()
    row = session.get(Visit, visit.id)
    assert (row.household_id, row.grid_id, row.worker_id, row.week, row.outcome) == (
        visit.household_id,
        visit.grid_id,
        visit.worker_id,
        visit.week,
        "met",
    )
    assert (row.grade, row.reasons, row.notes) == ("doubtful", ["far_from_household"], "腿脚不便")
    assert row.visited_at == NOW - 91 * DAY


def test_a_visit_younger_than_its_period_keeps_its_track(session, world, storage):
    visit = visit_at(session, world, NOW - 89 * DAY)
    assert purge(session, storage).visits == 0
    session.expire_all()
    assert lonlat(session, "visits", visit.id) == PRECISE
    row = session.get(Visit, visit.id)
    assert (row.accuracy_m, row.evidence, row.coarsened_at) == (8.5, EVIDENCE, None)


def test_a_visits_follow_up_task_has_the_workers_point_coarsened_with_it(session, world, storage):
    visit = visit_at(session, world, NOW - 91 * DAY)
    follow_up = make_task_at(
        session,
        world.households[A1][0],
        NOW - 80 * DAY,
        source="visit",
        visit_id=visit.id,
        location=from_shape(Point(*PRECISE), srid=4326),
    )
    hotline = make_task_at(
        session,
        world.households[A1][1],
        NOW - 80 * DAY,
        location=from_shape(Point(*PRECISE), srid=4326),  # where the caller said: not a track
    )
    assert purge(session, storage).tasks == 1
    assert lonlat(session, "tasks", follow_up.id) == (
        pytest.approx(116.402, abs=1e-9),
        pytest.approx(39.922, abs=1e-9),
    )
    assert lonlat(session, "tasks", hotline.id) == PRECISE


def event_at(session, task, at, location=PRECISE):
    event = TaskEvent(
        task_id=task.id,
        action="start",
        from_status="accepted",
        to_status="in_progress",
        location=from_shape(Point(*location), srid=4326) if location else None,
        at=at,
    )
    session.add(event)
    session.flush()
    return event


def test_where_a_worker_stood_for_a_tasks_step_is_coarsened_after_its_period(
    session, world, storage
):
    task = make_task_at(session, world.households[A1][1], NOW - 80 * DAY)
    old = event_at(session, task, NOW - 91 * DAY)
    recent = event_at(session, task, NOW - 89 * DAY)
    nowhere = event_at(session, task, NOW - 91 * DAY, location=None)
    assert purge(session, storage).task_events == 1
    assert lonlat(session, "task_events", old.id) == (
        pytest.approx(116.402, abs=1e-9),
        pytest.approx(39.922, abs=1e-9),
    )
    assert lonlat(session, "task_events", recent.id) == PRECISE
    assert lonlat(session, "task_events", nowhere.id) == (None, None)
    assert purge(session, storage).task_events == 0


def test_a_past_weeks_report_reads_the_same_after_the_purge(app, client, session, world, storage):
    """The world's grids and households exist from today: the report is of this week, and
    the purge runs as it would 100 days from now."""
    today = datetime.now(UTC)
    for household, grade in ((0, "ok"), (1, "ok"), (2, "suspect")):
        visit_at(session, world, today, household=household, grade=grade)
    week = session.scalar(select(Visit.week).limit(1))
    url = f"/api/v1/reports/coverage?week={week}&community={A}"
    before = client.get(url, headers=world.auth("admin_a")).get_json()
    assert before["totals"]["visits"] == 3
    assert purge(session, storage, now=today + 100 * DAY).visits == 3
    after = client.get(url, headers=world.auth("admin_a")).get_json()
    del before["generated_at"], after["generated_at"]
    assert after == before
    assert report_verify.check(session).equal


# --- notifications and their deliveries -------------------------------------------------------
def notice(session, world, created_at, *, read_at=None):
    user = world.users["worker_a1"]
    (row,) = notify(session, [user.id], "roster_published", "排班已发布", now=created_at)
    row.read_at = read_at
    session.flush()
    return row


@pytest.fixture()
def device(session, world):
    return make_device(session, world.users["worker_a1"], "fcm-token-1", now=NOW - 400 * DAY)


def remaining(session, model) -> set[int]:
    return set(session.scalars(select(model.id)))


def finish(session, notification, state="sent", at=None):
    for delivery in session.scalars(
        select(Delivery).where(Delivery.notification_id == notification.id)
    ):
        delivery.state = state
        delivery.created_at = notification.created_at
        delivery.sent_at = at if state == "sent" else None
    session.flush()


def test_a_read_notification_is_deleted_with_its_deliveries_after_its_period(
    session, world, device, storage
):
    old = notice(session, world, NOW - 200 * DAY, read_at=NOW - 91 * DAY)
    recent = notice(session, world, NOW - 200 * DAY, read_at=NOW - 89 * DAY)
    finish(session, old, at=NOW - 200 * DAY)
    finish(session, recent, at=NOW - 200 * DAY)
    # Deliveries kept here past their own period, to see them go with their notification.
    done = purge(session, storage, policy=replace(POLICY, deliveries=1000 * DAY))
    assert done == retention.Purged(notifications=1)
    assert remaining(session, Notification) == {recent.id}
    assert {d.notification_id for d in session.scalars(select(Delivery))} == {recent.id}


def test_an_unread_notification_is_kept_a_year(session, world, device, storage):
    year_old = notice(session, world, NOW - 366 * DAY)
    unread = notice(session, world, NOW - 364 * DAY)
    finish(session, year_old, "dead")
    finish(session, unread, "dead")
    assert purge(session, storage).notifications == 1
    assert remaining(session, Notification) == {unread.id}


def test_a_notification_with_a_delivery_still_pending_is_kept(session, world, device, storage):
    pending = notice(session, world, NOW - 400 * DAY, read_at=NOW - 300 * DAY)
    assert purge(session, storage).notifications == 0
    assert remaining(session, Notification) == {pending.id}


def test_a_finished_delivery_is_deleted_after_its_period_and_its_notification_kept(
    session, world, device, storage
):
    old = notice(session, world, NOW - 31 * DAY)
    recent = notice(session, world, NOW - 29 * DAY)
    finish(session, old, at=NOW - 31 * DAY)
    finish(session, recent, at=NOW - 29 * DAY)
    done = purge(session, storage)
    assert (done.deliveries, done.notifications) == (1, 0)
    assert {d.notification_id for d in session.scalars(select(Delivery))} == {recent.id}
    assert remaining(session, Notification) == {old.id, recent.id}


# --- photos -----------------------------------------------------------------------------------
def stored_photo(session, storage, model, created_at, data, **owner):
    """A photo row of `model` (VisitPhoto, TaskPhoto) owned as `owner` says, its bytes stored."""
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    storage.put(digest, data)
    row = model(
        **owner,
        sha256=digest,
        content_type="image/png",
        size_bytes=len(data),
        created_at=created_at,
        stripped_at=created_at,
    )
    session.add(row)
    session.flush()
    return row


def photo(session, storage, visit, created_at, data):
    return stored_photo(session, storage, VisitPhoto, created_at, data, visit_id=visit.id)


def test_a_photo_is_deleted_with_its_bytes_after_its_period(session, world, storage):
    visit = visit_at(session, world, NOW - 200 * DAY)
    old = photo(session, storage, visit, NOW - 181 * DAY, image_bytes("PNG", 8))
    recent = photo(session, storage, visit, NOW - 179 * DAY, image_bytes("PNG", 9))
    done = purge(session, storage)
    assert (done.photos, done.photo_files) == (1, 1)
    assert remaining(session, VisitPhoto) == {recent.id}
    with pytest.raises(KeyError):
        storage.get(old.sha256)
    assert storage.get(recent.sha256)


def test_bytes_another_kept_photo_points_at_are_kept(session, world, storage):
    data = image_bytes("PNG", 8)
    old = photo(session, storage, visit_at(session, world, NOW - 200 * DAY), NOW - 181 * DAY, data)
    kept = photo(session, storage, visit_at(session, world, NOW - 10 * DAY), NOW - 10 * DAY, data)
    done = purge(session, storage)
    assert (done.photos, done.photo_files) == (1, 0)
    assert remaining(session, VisitPhoto) == {kept.id}
    assert storage.get(old.sha256) == data


def test_a_photo_is_kept_while_its_visits_follow_up_task_is_open(session, world, storage):
    """A visit found a cracked wall and opened a follow-up task, still being handled after
    six months (a complex repair): its photo is what the task is about, and stays until the
    task is closed; then the next run deletes it, its period long past."""
    visit = visit_at(session, world, NOW - 200 * DAY)
    kept = photo(session, storage, visit, NOW - 181 * DAY, image_bytes("PNG", 8))
    task = make_task_at(
        session,
        world.households[A1][0],
        NOW - 150 * DAY,
        source="visit",
        type="report",
        status="in_progress",
        visit_id=visit.id,
    )
    assert purge(session, storage).photos == 0
    assert remaining(session, VisitPhoto) == {kept.id}
    assert storage.get(kept.sha256)
    task.status = "closed"
    session.flush()
    assert (purge(session, storage).photos, remaining(session, VisitPhoto)) == (1, set())


def task_photo(session, storage, task, created_at, data, event_id=None):
    return stored_photo(
        session, storage, TaskPhoto, created_at, data, task_id=task.id, event_id=event_id
    )


def test_a_tasks_photos_are_kept_while_it_is_open_then_go_with_their_bytes(session, world, storage):
    """A task's photos (the problem, the repair) follow a visit photo's rule: deleted 180 days
    after they were taken, never while the task is open (a repair taking longer), at once once
    it is closed and their period is past; a recent one stays."""
    task = make_task_at(session, world.households[A1][0], NOW - 150 * DAY, status="in_progress")
    old = task_photo(session, storage, task, NOW - 181 * DAY, image_bytes("PNG", 8))
    recent = task_photo(session, storage, task, NOW - 10 * DAY, image_bytes("PNG", 9))
    assert purge(session, storage).task_photos == 0
    assert remaining(session, TaskPhoto) == {old.id, recent.id}
    task.status = "closed"
    session.flush()
    done = purge(session, storage)
    assert (done.task_photos, done.photo_files) == (1, 1)
    assert remaining(session, TaskPhoto) == {recent.id}
    with pytest.raises(KeyError):
        storage.get(old.sha256)
    assert storage.get(recent.sha256)


def test_bytes_a_visit_photo_and_a_task_photo_share_stay_while_either_is_kept(
    session, world, storage
):
    """A worker sends the picture of a visit's problem with the task's step too: one file. The
    visit photo's deletion leaves the bytes the task's photo reads, and the other way round."""
    data = image_bytes("PNG", 8)
    visit = visit_at(session, world, NOW - 200 * DAY)
    photo(session, storage, visit, NOW - 181 * DAY, data)
    task = make_task_at(session, world.households[A1][0], NOW - 20 * DAY, status="closed")
    kept = task_photo(session, storage, task, NOW - 20 * DAY, data)
    done = purge(session, storage)
    assert (done.photos, done.task_photos, done.photo_files) == (1, 0, 0)
    assert remaining(session, TaskPhoto) == {kept.id}
    assert storage.get(kept.sha256) == data
    kept.created_at = NOW - 181 * DAY
    photo(session, storage, visit_at(session, world, NOW - DAY), NOW - DAY, data)
    session.flush()
    assert (purge(session, storage).task_photos, storage.get(kept.sha256)) == (1, data)


def test_a_run_rolled_back_leaves_the_photos_bytes(session, world, storage):
    """The bytes go only once the rows' deletion is committed: a run that fails after the
    photo step (a later step's error, the database restarting) leaves the photo, row and
    bytes, as it was. They went before the commit, and the photo, listed with its visit,
    answered nothing until a later run deleted its row."""
    visit = visit_at(session, world, NOW - 200 * DAY)
    old = photo(session, storage, visit, NOW - 181 * DAY, image_bytes("PNG", 8))
    with pytest.raises(RuntimeError), session.begin_nested():
        retention.purge(session, storage, POLICY, NOW)
        raise RuntimeError("a later step failed")
    assert remaining(session, VisitPhoto) == {old.id}
    assert storage.get(old.sha256)
    assert retention.delete_photo_files(session, storage, POLICY.batch) == 0
    assert storage.get(old.sha256)


def test_the_bytes_of_photos_deleted_go_after_the_commit_even_after_a_crash(
    session, world, storage
):
    """The rows' deletion queues their bytes (in its transaction); the files go in the next
    transaction. A crash between the two loses nothing: the queue is drained by the next run,
    and draining it twice deletes nothing twice."""
    visit = visit_at(session, world, NOW - 200 * DAY)
    old = photo(session, storage, visit, NOW - 181 * DAY, image_bytes("PNG", 8))
    assert retention.purge(session, storage, POLICY, NOW).photos == 1
    assert storage.get(old.sha256)  # committed, not yet deleted: a crash here keeps the queue
    assert retention.delete_photo_files(session, storage, POLICY.batch) == 1
    with pytest.raises(KeyError):
        storage.get(old.sha256)
    assert retention.delete_photo_files(session, storage, POLICY.batch) == 0


def test_a_deleted_photo_answers_404(client, session, world, storage):
    visit = visit_at(session, world, NOW - 200 * DAY)
    old = photo(session, storage, visit, NOW - 181 * DAY, image_bytes("PNG", 8))
    purge(session, storage)
    response = client.get(
        f"/api/v1/visits/{visit.id}/photos/{old.id}", headers=world.auth("worker_a1")
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_bytes_uploaded_again_while_a_run_deletes_them_are_kept(own_database_url, tmp_path):
    """An upload of a picture whose old photo a run deleted: the run's deletion of the bytes
    waits on the upload's lock per hash, sees its row once committed, and leaves the bytes
    (without the lock it deleted them between the upload's store, a no-op as they existed,
    and its row)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy.orm import Session

    from api.services.photos import attach_photo
    from tests.factories import build_app, build_world
    from tests.races import wait_for_lock_waits

    app = build_app(own_database_url, PHOTO_DIR=str(tmp_path))
    engine = create_engine(own_database_url)
    data = image_bytes("PNG", 8)
    try:
        with Session(engine) as session, app.app_context():
            storage = build_storage(app.config, load_name_key(session))
            world = build_world(session, app)
            worker = world.users["worker_a1"].id
            old_visit = visit_at(session, world, NOW - 200 * DAY)
            new_visit = visit_at(session, world, NOW - DAY, household=1)
            old, _ = attach_photo(
                session, storage, old_visit, data, uploader_id=worker, max_bytes=10**6
            )
            old.created_at = NOW - 181 * DAY
            key = old.sha256
            session.commit()
            assert retention.purge_photos(session, NOW - 180 * DAY, 10) == 1
            session.commit()  # the row gone, its bytes queued
            with Session(engine) as upload:
                attach_photo(
                    upload,
                    storage,
                    upload.get(Visit, new_visit.id),
                    data,
                    uploader_id=worker,
                    max_bytes=10**6,
                )  # stored, its row not committed yet, its lock held

                def run():
                    with Session(engine) as purging, purging.begin():
                        return retention.delete_photo_files(purging, storage, 10)

                with ThreadPoolExecutor(1) as pool:
                    deleted = pool.submit(run)
                    wait_for_lock_waits(engine, 1)
                    upload.commit()
                    assert deleted.result(timeout=60) == 0
            assert storage.get(key) == data
            assert session.scalars(select(VisitPhoto.visit_id)).all() == [new_visit.id]
    finally:
        engine.dispose()


# --- runs: bounded, idempotent ----------------------------------------------------------------
def test_a_run_is_bounded_by_the_batch_and_the_next_run_goes_on(session, world, storage):
    for k in range(5):
        visit_at(session, world, NOW - (91 + k) * DAY)
    small = replace(POLICY, batch=2)
    assert [purge(session, storage, policy=small).visits for _ in range(4)] == [2, 2, 1, 0]
    assert session.scalar(select(func.count()).where(Visit.coarsened_at.is_(None))) == 0


def test_running_the_purge_again_changes_nothing(session, world, device, storage):
    visit = visit_at(session, world, NOW - 91 * DAY)
    photo(session, storage, visit, NOW - 181 * DAY, image_bytes("PNG", 8))
    finish(session, notice(session, world, NOW - 100 * DAY, read_at=NOW - 95 * DAY))
    first = purge(session, storage)
    assert (first.visits, first.photos, first.notifications) == (1, 1, 1)
    session.expire_all()
    coarse = lonlat(session, "visits", visit.id)
    assert purge(session, storage) == retention.Purged()
    assert lonlat(session, "visits", visit.id) == coarse
    assert session.get(Visit, visit.id).coarsened_at == NOW


def test_the_policy_is_read_from_the_settings(app):
    app.config.update(
        RETAIN_VISIT_TRACKS_DAYS=30,
        RETAIN_PHOTOS_DAYS=60,
        RETAIN_READ_NOTIFICATIONS_DAYS=20,
        RETAIN_NOTIFICATIONS_DAYS=100,
        RETAIN_DELIVERIES_DAYS=7,
        RETAIN_COMPLAINANTS_DAYS=90,
        RETAIN_REMOVED_HOUSEHOLDS_DAYS=120,
        RETENTION_BATCH=50,
    )
    assert retention.Policy.from_config(app.config) == retention.Policy(
        visit_tracks=timedelta(days=30),
        photos=timedelta(days=60),
        read_notifications=timedelta(days=20),
        notifications=timedelta(days=100),
        deliveries=timedelta(days=7),
        complainants=timedelta(days=90),
        removed_households=timedelta(days=120),
        batch=50,
    )


def test_the_default_policy(app):
    assert retention.Policy.from_config(app.config) == POLICY


@pytest.mark.parametrize("name", ["RETAIN_VISIT_TRACKS_DAYS", "RETENTION_BATCH"])
def test_a_period_or_batch_below_one_is_refused(app, name):
    app.config[name] = 0
    with pytest.raises(ValueError, match=name):
        retention.Policy.from_config(app.config)


def test_the_push_worker_runs_the_retention_purge(app, session, world, caplog):
    from click.testing import CliRunner

    from api.cli import main

    visit = visit_at(session, world, datetime.now(UTC) - 91 * DAY)
    app.config.update(GRIDWORK_PUSH_BACKEND="log", TASK_TICK_SECONDS=3600)
    with app.app_context(), caplog.at_level(logging.INFO, logger="gridwork.push"):
        result = CliRunner().invoke(main, ["push-worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "retention: 1 visit tracks coarsened" in caplog.text
    session.expire_all()
    assert session.get(Visit, visit.id).coarsened_at is not None


def test_a_step_failing_keeps_none_of_the_others_from_its_work(
    app, session, world, tmp_path, monkeypatch, caplog
):
    """One closed task whose sealed note cannot be opened (damaged, or sealed by a key since
    dropped) made the complainants' step fail every run: in the run's one transaction it took
    every other step with it, and no track was coarsened nor photo deleted again. Each step
    now has a transaction of its own: the others do their work, the failure goes out (logged
    by the worker) and is tried again next run."""
    from api.cli import _retention
    from api.crypto import DataKeyError

    def damaged(*args):
        raise DataKeyError("cannot decrypt a sensitive column")

    monkeypatch.setattr(retention, "erase_complainants", damaged)
    app.config["PHOTO_DIR"] = str(tmp_path)
    now = datetime.now(UTC)
    visit = visit_at(session, world, now - 200 * DAY)
    storage = build_storage(app.config, load_name_key(session))
    key = photo(session, storage, visit, now - 181 * DAY, image_bytes("PNG", 8)).sha256
    with (
        app.app_context(),
        caplog.at_level(logging.INFO, logger="gridwork.push"),
        pytest.raises(DataKeyError),
    ):
        _retention(logging.getLogger("gridwork.push"))
    session.expire_all()
    assert session.get(Visit, visit.id).coarsened_at is not None
    assert remaining(session, VisitPhoto) == set()
    with pytest.raises(KeyError):
        storage.get(key)
    assert "retention: 1 visit tracks coarsened" in caplog.text


# --- the migration ----------------------------------------------------------------------------
def test_migration_0033_downgrades_and_upgrades_again(own_database_url):
    from tests.api.test_audit_storage import down_and_up

    def marked(conn) -> set[str]:
        """The tables with a `coarsened_at` column."""
        return set(
            conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.columns"
                    " WHERE column_name = 'coarsened_at'"
                )
            )
        )

    def before(conn):
        assert marked(conn) == set()

    def after(conn):
        assert marked(conn) == {"visits", "task_events"}

    down_and_up(own_database_url, "0032", before, after)


def test_migration_0049_downgrades_and_upgrades_again(own_database_url):
    from tests.api.test_audit_storage import down_and_up

    def queue(conn):
        return conn.scalar(text("SELECT to_regclass('photo_deletions')"))

    def before(conn):
        assert queue(conn) is None

    def after(conn):
        assert queue(conn) == "photo_deletions"

    down_and_up(own_database_url, "0048", before, after)
