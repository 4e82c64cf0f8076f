"""A wrong data key is refused at start-up, naming key ids, instead of answering 500s.

These apps commit for real (a restart must see what the previous run sealed), on a database of
this module's own that each test empties at its end.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api import crypto
from api.cli import main
from api.extensions import db
from api.models import Household, IdempotencyKey
from tests.factories import (
    A1,
    TEST_SETTINGS,
    bearer,
    box,
    build_app,
    make_grid,
    make_household,
    make_user,
)

GRID = "110105001001001"
KEY_A, KEY_B = crypto.new_key(), crypto.new_key()


def kid(key: str) -> str:
    return crypto.key_id(crypto._decode_key(key, "key"))


@pytest.fixture()
def url(own_database_url) -> Iterator[str]:
    yield own_database_url
    db.engine.dispose()
    engine = create_engine(own_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE data_keys, idempotency_keys, households, users, grid_versions, grids, "
                "communities, streets, districts CASCADE"
            )
        )
    engine.dispose()
    crypto.configure(TEST_SETTINGS["DATA_KEY"])


def start(url: str, key: str, old: str | None = None, **settings):
    """A restart of the API: a new app on the same database with these keys."""
    if db.engine is not None:
        db.engine.dispose()  # the previous run's connections
    return build_app(url, DATA_KEY=key, OLD_DATA_KEYS=old, **settings)


def seal_a_household(url: str, key: str, *, row_only: bool = False) -> int:
    """Start with `key` and commit a household whose phone it seals; its id. `row_only`:
    the row alone, without the register's checks, whose SQL reads columns of later migrations
    (a database held back at an old one has none of them), in the grid made before the
    database was held back (`make_the_grid`: drawing one reads them too)."""
    from api.models import Household

    app = start(url, key)
    with app.app_context(), db.begin() as session:
        if row_only:
            grid_id = session.scalar(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID})
            sealed = Household.__table__.c.phone.type.process_bind_param("13812345678", None)
            household_id = session.scalar(
                text(
                    "INSERT INTO households (grid_id, building, location, phone) VALUES"
                    " (:grid, '1', ST_GeomFromText('POINT(116.442 39.922)', 4326), :phone)"
                    " RETURNING id"
                ),
                {"grid": grid_id, "phone": sealed},
            )
        else:
            make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
            household_id = make_household(session, 116.442, 39.922, phone="13812345678").id
    db.engine.dispose()
    return household_id


def make_the_grid(url: str, key: str) -> None:
    """The grid `seal_a_household(row_only=True)` places its household in, drawn at head."""
    app = start(url, key)
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
    db.engine.dispose()


def recorded(url: str) -> list[str]:
    """The ids of the keys data here may need (a rotation's emptied keys left out)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        kids = list(
            conn.scalars(text("SELECT kid FROM data_keys WHERE emptied_at IS NULL ORDER BY kid"))
        )
    engine.dispose()
    return kids


def cli(url: str, key: str, *args: str, old: str = ""):
    env = {"DATABASE_URL": url, "GRIDWORK_DATA_KEY": key, "GRIDWORK_OLD_DATA_KEYS": old}
    if args[0] == "seed":  # development only; the data key it is given still seals
        env["GRIDWORK_ENV"] = "development"
    result = CliRunner().invoke(main, list(args), env=env)
    db.engine.dispose()  # the command's app kept its connections pooled
    return result


def test_the_first_value_sealed_records_its_key_id(url):
    assert recorded(url) == []
    seal_a_household(url, KEY_A)
    assert recorded(url) == [kid(KEY_A)]


def test_a_restart_with_another_key_is_refused_naming_the_key_ids_not_the_keys(url):
    seal_a_household(url, KEY_A)
    with pytest.raises(crypto.DataKeyMismatch) as refused:
        start(url, KEY_B)
    message = str(refused.value)
    assert kid(KEY_A) in message and kid(KEY_B) in message
    assert "GRIDWORK_OLD_DATA_KEYS" in message
    assert KEY_A not in message and KEY_B not in message


def test_a_restart_with_the_old_key_listed_in_old_data_keys_starts_and_reads(url):
    household_id = seal_a_household(url, KEY_A)
    app = start(url, KEY_B, old=KEY_A)
    with app.app_context(), db.begin() as session:
        assert session.get(Household, household_id).phone == "13812345678"


def test_a_restart_with_the_same_key_starts(url):
    seal_a_household(url, KEY_A)
    start(url, KEY_A)


def test_after_security_encrypt_the_old_key_is_no_longer_needed(url):
    household_id = seal_a_household(url, KEY_A)
    app = start(url, KEY_B, old=KEY_A)
    with app.app_context(), db.begin() as session:  # a create's stored answer, kept 24 h
        worker = make_user(session, "dk_worker", "worker", grids=[GRID], phone="13900000000")
        session.add(IdempotencyKey(user_id=worker.id, key="k1", request_hash="h", body="{}"))
    db.engine.dispose()

    rotated = cli(url, KEY_B, "security", "encrypt", old=KEY_A)
    assert rotated.exit_code == 0, rotated.output
    assert f"no data needs key id(s) {kid(KEY_A)} any more" in rotated.output
    assert recorded(url) == [kid(KEY_B)]

    app = start(url, KEY_B)  # GRIDWORK_OLD_DATA_KEYS dropped
    with app.app_context(), db.begin() as session:
        assert session.get(Household, household_id).phone == "13812345678"
        assert session.get(IdempotencyKey, (worker.id, "k1")).body == "{}"
    db.engine.dispose()


def test_a_value_changed_while_the_rotation_re_seals_keeps_its_change(url, monkeypatch):
    """`security encrypt` reads a batch of old values, seals them again, then writes them back:
    a phone a resident changed meanwhile (on a process already on the new key, committed
    between the two) was overwritten with the old number, or a complainant erased by retention
    brought back. A value changed since it was read is left as it now is."""
    from api.services import encryption

    household_id = seal_a_household(url, KEY_A)
    crypto.configure(KEY_B, KEY_A)
    engine = create_engine(url)
    opened = encryption._open

    def open_then_change_meanwhile(col, stored):
        if col.table == "households" and col.column == "phone":
            with engine.begin() as other:  # an API process on the new key, editing the phone
                other.execute(
                    text("UPDATE households SET phone = :phone WHERE id = :id"),
                    {"phone": crypto.encrypt("13900009999"), "id": household_id},
                )
        return opened(col, stored)

    try:
        with engine.begin() as conn:
            encryption.retire_other_keys(conn)
        monkeypatch.setattr(encryption, "_open", open_then_change_meanwhile)
        with engine.begin() as conn:
            encryption.seal_all(conn)
        with engine.connect() as conn:
            stored = conn.scalar(
                text("SELECT phone FROM households WHERE id = :id"), {"id": household_id}
            )
        assert crypto.decrypt(stored) == "13900009999"
    finally:
        engine.dispose()
        crypto.configure(KEY_A)


def test_a_row_re_sealed_by_a_rotation_can_be_edited_while_the_rotation_goes_on(url, monkeypatch):
    """`security encrypt` re-sealed every column in one transaction: each row it re-sealed
    stayed locked until the last table was done (minutes at city scale, 10 M visits' notes),
    so a household's edit, a task's transition or retention's coarsening of a follow-up task
    waited all that while, and the API's statement timeout failed them. A batch re-sealed is
    committed at once; a rotation cut short is finished by running it again."""
    from sqlalchemy.exc import DBAPIError

    from api.services import encryption

    household_id = seal_a_household(url, KEY_A)
    app = start(url, KEY_A)
    with app.app_context(), db.begin() as session:  # re-sealed after the households
        make_user(session, "dk_later", "worker", grids=[GRID], phone="13900000000")
    db.engine.dispose()
    engine = create_engine(url)
    edits: list[str] = []
    opened = encryption._open

    def edit_the_household_meanwhile(col, stored):
        if col.table == "users" and not edits:
            with engine.connect() as other:  # an API process on the new key
                other.execute(text("SET lock_timeout = '2s'"))
                try:
                    other.execute(
                        text("UPDATE households SET members = 4 WHERE id = :id"),
                        {"id": household_id},
                    )
                    other.commit()
                    edits.append("saved")
                except DBAPIError:
                    other.rollback()
                    edits.append("waited for the rotation")
        return opened(col, stored)

    monkeypatch.setattr(encryption, "_open", edit_the_household_meanwhile)
    try:
        rotated = cli(url, KEY_B, "security", "encrypt", old=KEY_A)
    finally:
        engine.dispose()
    assert rotated.exit_code == 0, rotated.output
    assert edits == ["saved"]
    assert "households.phone: 1" in rotated.output and "users.phone: 1" in rotated.output


def rotate_elsewhere(url: str) -> None:
    """`gridwork security encrypt` run by another process (new key KEY_B, old KEY_A listed),
    step by step; this process's crypto is left on KEY_A, as an old process still running."""
    from api.services.encryption import forget_other_keys, retire_other_keys, seal_all

    crypto.configure(KEY_B, KEY_A)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            retire_other_keys(conn)
        with engine.begin() as conn:
            seal_all(conn)
            forget_other_keys(conn)
    finally:
        engine.dispose()
        crypto.configure(KEY_A)


def test_a_process_still_on_the_old_key_cannot_seal_once_a_rotation_retired_it(url):
    """An API process not yet restarted after a rotation would seal new values with the old
    key, after `security encrypt` re-sealed everything and forgot that key: values nobody could
    open once GRIDWORK_OLD_DATA_KEYS is dropped. Its sealing commit is refused instead (a 503
    problem at request time), and nothing it sealed is stored."""
    app = start(url, KEY_A)
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
        make_household(session, 116.442, 39.921, phone="13900000003")  # recorded KEY_A
    rotate_elsewhere(url)
    assert recorded(url) == [kid(KEY_B)]

    with app.app_context(), pytest.raises(crypto.DataKeyRetired), db.begin() as session:
        make_household(session, 116.442, 39.922, phone="13900000004")
    assert app.test_client().get("/healthz").json["type"].endswith("/data-key")  # reads too
    db.engine.dispose()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM households")) == 1
    engine.dispose()


def serving_reads_on(url: str, key: str) -> tuple:
    """An API process started on `key` that has served a read: its app, a reader's headers and
    the id of a household whose phone it sealed."""
    app = start(url, key)
    with app.app_context():
        with db.begin() as session:
            make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
            household_id = make_household(session, 116.442, 39.921, phone="13900000003").id
            reader = make_user(session, "dk_reader", "worker", grids=[GRID])
        headers = bearer(reader)
    assert app.test_client().get("/api/v1/grids", headers=headers).status_code == 200
    return app, headers, household_id


@pytest.fixture()
def a_minute_later(monkeypatch):
    """Move the key guard's monotonic clock on by a minute and a second, when called."""
    import time

    from api import keyguard

    def later() -> None:
        ahead = time.monotonic() + getattr(keyguard, "RECHECK_SECONDS", 60.0) + 1
        fake = type("FakeTime", (), {"monotonic": staticmethod(lambda: ahead)})
        monkeypatch.setattr(keyguard, "time", fake, raising=False)

    return later


def refused_for_retirement(response, caplog) -> bool:
    return (
        response.status_code == 503
        and response.json["type"].endswith("/data-key")
        and any("was retired by a rotation" in r.getMessage() for r in caplog.records)
    )


def test_a_process_on_a_retired_key_that_only_reads_is_refused_within_a_minute(
    url, a_minute_later, caplog, monkeypatch
):
    """After a rotation, an API process not restarted with the new key went on serving reads
    for as long as it ran: values re-sealed under the new key failed one request at a time (a
    streamed export cut short half-way), and nothing told it its key was retired. It reads its
    key's record again once a minute (no query per request in between), and from then on
    refuses every request at the gate: the 503 data-key problem, nothing served."""
    from sqlalchemy import event

    from api import errors

    monkeypatch.setattr(errors, "_data_key_reported", False, raising=False)
    app, headers, _ = serving_reads_on(url, KEY_A)
    client = app.test_client()
    rotate_elsewhere(url)

    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):  # within the minute: served, and no query of the key per request
            assert client.get("/api/v1/grids", headers=headers).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert statements and not [s for s in statements if "data_keys" in s]

    a_minute_later()
    caplog.set_level(logging.ERROR, logger="gridwork.errors")
    for path in ("/api/v1/grids", "/healthz", "/api/v1/grids"):
        refused = client.get(path, headers=headers)
        assert refused_for_retirement(refused, caplog), (path, refused.status_code)
        assert refused.mimetype == "application/problem+json"
    db.engine.dispose()


def test_a_value_that_fails_to_open_makes_the_next_request_read_the_key_record_at_once(
    url, caplog, monkeypatch
):
    """A value sealed under a key this process lacks is the first sign of a rotation: the next
    request reads the key's record without waiting for the minute, and is refused at the gate
    once the key is retired, instead of serving whatever does not touch a re-sealed value."""
    from api import errors

    monkeypatch.setattr(errors, "_data_key_reported", False, raising=False)
    app, headers, household_id = serving_reads_on(url, KEY_A)
    client = app.test_client()
    rotate_elsewhere(url)  # the household's phone is now sealed by KEY_B
    caplog.set_level(logging.ERROR, logger="gridwork.errors")

    failed = client.get(f"/api/v1/households/{household_id}", headers=headers)
    assert failed.status_code == 503 and failed.json["type"].endswith("/data-key")
    refused = client.get("/api/v1/grids", headers=headers)
    assert refused_for_retirement(refused, caplog), refused.status_code
    db.engine.dispose()


def test_the_push_worker_on_a_retired_key_stops_within_a_minute(url, a_minute_later):
    """The worker's rounds open sessions through the same gate: a worker left on the old key
    stops with the retirement's message (its supervisor restarts it with the new key) instead
    of going on with values it cannot open."""
    app, _, _ = serving_reads_on(url, KEY_A)
    rotate_elsewhere(url)
    a_minute_later()
    app.config.update(GRIDWORK_PUSH_BACKEND="log")
    with app.app_context():
        result = CliRunner().invoke(main, ["push-worker", "--once"])
    assert result.exit_code == 1, result.output
    assert "was retired by a rotation" in result.output and "Traceback" not in result.output
    db.engine.dispose()


def test_a_savepoint_rolled_back_before_the_seal_does_not_skip_the_check(url):
    """The visit batch's fallback rolls a savepoint back, then seals row by row: its commit is
    checked all the same."""
    app = start(url, KEY_A)
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
        make_household(session, 116.442, 39.921, phone="13900000003")
    rotate_elsewhere(url)
    with app.app_context(), pytest.raises(crypto.DataKeyRetired), db.begin() as session:
        with contextlib.suppress(Exception), session.begin_nested():
            session.execute(text("SELECT 1 / 0"))
        make_household(session, 116.442, 39.922, phone="13900000004")
    db.engine.dispose()


def test_a_sealing_commit_after_the_retirement_and_before_the_re_sealing_is_refused(url):
    """The old key is retired (committed) before `security encrypt` scans: a value sealed by
    it after that can never slip in behind the scan."""
    from api.services.encryption import retire_other_keys

    app = start(url, KEY_A)
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
        make_household(session, 116.442, 39.921, phone="13900000003")
    crypto.configure(KEY_B, KEY_A)
    engine = create_engine(url)
    with engine.begin() as conn:
        retire_other_keys(conn)
    engine.dispose()
    crypto.configure(KEY_A)
    with app.app_context(), pytest.raises(crypto.DataKeyRetired), db.begin() as session:
        make_household(session, 116.442, 39.922, phone="13900000004")
    db.engine.dispose()
    assert recorded(url) == sorted([kid(KEY_A), kid(KEY_B)])


def test_a_restart_on_a_retired_key_is_refused_and_says_to_use_the_new_key(url):
    seal_a_household(url, KEY_A)
    assert cli(url, KEY_B, "security", "encrypt", old=KEY_A).exit_code == 0
    with pytest.raises(crypto.DataKeyError, match="retired"):
        start(url, KEY_A, old=KEY_B)  # the keys swapped by mistake


def test_a_retirement_waits_for_a_sealing_commit_already_checked(url):
    """A transaction that checked its key and is about to commit holds the key's row: the
    rotation's retirement commits after it, so the re-sealing scan sees its values."""
    from api.services.encryption import require_sealing_key, retire_other_keys

    seal_a_household(url, KEY_A)
    engine = create_engine(url)
    sealing = engine.connect()
    sealing.begin()
    require_sealing_key(sealing, kid(KEY_A))  # checked, not committed yet
    crypto.configure(KEY_B, KEY_A)
    done = threading.Event()

    def retire() -> None:
        with engine.begin() as conn:
            retire_other_keys(conn)
        done.set()

    rotation = threading.Thread(target=retire)
    rotation.start()
    try:
        assert not done.wait(0.5)  # waiting for the sealing transaction
        sealing.commit()
        assert done.wait(10)
    finally:
        sealing.close()
        rotation.join()
        engine.dispose()
        crypto.configure(TEST_SETTINGS["DATA_KEY"])


def test_check_key_shows_a_retired_key_and_refuses_a_process_on_it(url):
    seal_a_household(url, KEY_A)
    assert cli(url, KEY_B, "security", "encrypt", old=KEY_A).exit_code == 0

    after = cli(url, KEY_B, "security", "check-key")
    assert after.exit_code == 0, after.output
    assert f"{kid(KEY_A)}  retired" in after.output and "no data needs it" in after.output

    swapped = cli(url, KEY_A, "security", "check-key", old=KEY_B)
    assert swapped.exit_code == 1
    assert "was retired by a rotation" in swapped.output


def test_a_process_started_ahead_of_migration_0024_starts_and_seals(url):
    """New code on a database not yet migrated (a rolling deployment): no retirement to check."""
    from alembic import command

    from api.cli import alembic_config

    make_the_grid(url, KEY_A)
    command.downgrade(alembic_config(url), "0023")
    try:
        seal_a_household(url, KEY_A, row_only=True)
        start(url, KEY_A)
        db.engine.dispose()
    finally:
        command.upgrade(alembic_config(url), "head")
    assert recorded(url) == [kid(KEY_A)]


TINY_CITY = ("seed", "city", "--grids", "2", "--households", "20", "--weeks", "1", "--tasks", "5")


@pytest.fixture()
def city_url(url) -> Iterator[str]:
    """`url`, every table emptied after the test (a city fills more than `url` empties)."""
    yield url
    engine = create_engine(url)
    with engine.begin() as conn:
        names = conn.scalars(
            text(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys', 'photo_storage_key')"
            )
        ).all()
        conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def loaded(url: str) -> tuple[int, int]:
    """How many grids and households the database holds."""
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = conn.execute(
            text("SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM households)")
        ).one()
    engine.dispose()
    return tuple(counts)


def test_seed_city_loads_nothing_when_a_rotation_retired_its_key_during_the_load(city_url):
    """`seed city` seals for its COPY on a connection of its own, past the sessions' check
    before commit: a rotation that retired its key while it loaded re-sealed everything but
    the load's rows (not committed yet, so not seen), and the load then committed them under
    the retired key, for good. It now reads its key's row FOR SHARE before it commits, and a
    retired key rolls the whole load back: a clear error, exit 1, nothing loaded."""
    from api.services.encryption import retire_other_keys

    engine = create_engine(city_url)
    holder = engine.connect()
    holder.begin()
    # The load's last step (boundary versions) waits here, every value sealed by then.
    holder.execute(text("LOCK TABLE grid_versions IN SHARE MODE"))

    def load_waiting() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database() "
                        "AND query LIKE 'INSERT INTO grid_versions%'"
                    )
                )
            )

    def rotate_while_the_load_waits() -> None:
        try:
            tick = threading.Event()
            for _ in range(600):  # 30 s at most
                if load_waiting():
                    break
                tick.wait(0.05)
            else:
                return
            crypto.configure(KEY_B, KEY_A)  # the load is blocked: it seals nothing meanwhile
            with engine.begin() as conn:
                retire_other_keys(conn)
            crypto.configure(KEY_A)
        finally:
            holder.commit()

    rotation = threading.Thread(target=rotate_while_the_load_waits)
    rotation.start()
    try:
        result = cli(city_url, KEY_A, *TINY_CITY)
    finally:
        rotation.join()
        holder.close()
        engine.dispose()
    assert result.exit_code == 1, result.output
    assert "was retired by a rotation" in result.output and "Traceback" not in result.output
    assert loaded(city_url) == (0, 0)


def test_seed_city_on_a_retired_key_is_refused_and_loads_nothing(city_url):
    seal_a_household(city_url, KEY_A)
    assert cli(city_url, KEY_B, "security", "encrypt", old=KEY_A).exit_code == 0
    result = cli(city_url, KEY_A, *TINY_CITY, "--replace", old=KEY_B)
    assert result.exit_code == 1
    assert "was retired by a rotation" in result.output and "Traceback" not in result.output
    assert loaded(city_url) == (1, 1)  # the household sealed before, nothing replaced


def photo_name_key(url: str) -> bytes | None:
    engine = create_engine(url)
    with engine.connect() as conn:
        key = conn.scalar(text("SELECT name_key FROM photo_storage_key"))
    engine.dispose()
    return key


def test_seed_city_replace_keeps_the_key_records(city_url, monkeypatch):
    """--replace emptied every table, data_keys too: the load then waited for ever on its own
    uncommitted truncation to record its key, and a retired key's record (which refuses a
    process started on it) would have gone with the old city."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=10s")  # a wait on a lock fails, not hangs
    seal_a_household(city_url, KEY_A)
    assert cli(city_url, KEY_B, "security", "encrypt", old=KEY_A).exit_code == 0
    name_key = photo_name_key(city_url)
    assert name_key is not None

    result = cli(city_url, KEY_B, *TINY_CITY, "--replace")
    assert result.exit_code == 0, result.output
    assert loaded(city_url) == (2, 20)
    assert recorded(city_url) == [kid(KEY_B)]
    assert photo_name_key(city_url) == name_key  # the photo files on disk are named by it
    with pytest.raises(crypto.DataKeyError, match="retired"):
        start(city_url, KEY_A, old=KEY_B)


def test_security_encrypt_refuses_to_start_without_the_old_key(url):
    seal_a_household(url, KEY_A)
    result = cli(url, KEY_B, "security", "encrypt")
    assert result.exit_code == 1
    assert kid(KEY_A) in result.output and "Traceback" not in result.output


def test_check_key_reports_the_key_ids_in_use_and_whether_they_are_configured(url):
    seal_a_household(url, KEY_A)

    missing = cli(url, KEY_B, "security", "check-key")
    assert missing.exit_code == 1
    assert f"{kid(KEY_A)}  since" in missing.output and "NOT CONFIGURED" in missing.output

    rotating = cli(url, KEY_B, "security", "check-key", old=KEY_A)
    assert rotating.exit_code == 0, rotating.output
    assert "GRIDWORK_OLD_DATA_KEYS" in rotating.output and "ok" in rotating.output

    unneeded = cli(url, KEY_A, "security", "check-key", old=KEY_B)
    assert unneeded.exit_code == 0, unneeded.output
    assert f"no data needs old key id(s) {kid(KEY_B)}" in unneeded.output
    assert KEY_A not in unneeded.output + missing.output


def test_check_key_flags_a_configured_key_that_does_not_open_its_canary(url):
    seal_a_household(url, KEY_A)
    engine = create_engine(url)
    with engine.begin() as conn:  # a key whose id collides with KEY_A's (not practical)
        crypto.configure(KEY_B)
        forged = crypto.seal_canary().replace(kid(KEY_B), kid(KEY_A), 1)
        conn.execute(text("UPDATE data_keys SET canary = :c"), {"c": forged})
    engine.dispose()
    result = cli(url, KEY_A, "security", "check-key")
    assert result.exit_code == 1
    assert "WRONG KEY" in result.output


def test_the_push_worker_refuses_to_start_with_another_key(url):
    seal_a_household(url, KEY_A)
    result = cli(url, KEY_B, "push-worker", "--once")
    assert result.exit_code == 1
    assert kid(KEY_A) in result.output and "Traceback" not in result.output


def test_a_key_recorded_by_another_process_after_start_up_stops_the_first_sealing_commit(url):
    """Two deployments with different keys starting on a database holding nothing yet: the
    second to seal is refused, so keys never mix."""
    app = start(url, KEY_B)  # started on an empty table: the check passed
    crypto.configure(KEY_A)  # ... then another process, with another key, sealed first
    canary = crypto.seal_canary()
    crypto.configure(KEY_B)
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO data_keys (kid, canary) VALUES (:k, :c)"),
            {"k": kid(KEY_A), "c": canary},
        )
    with app.app_context(), pytest.raises(crypto.DataKeyMismatch), db.begin() as session:
        make_grid(session, GRID, box(116.44, 39.92, 116.445, 39.925))
        make_household(session, 116.442, 39.922, phone="13900000001")
    assert app.test_client().get("/healthz").json["type"].endswith("/data-key")  # reads too
    db.engine.dispose()
    assert recorded(url) == [kid(KEY_A)]


def test_a_value_sealed_by_a_key_not_configured_is_a_503_problem_not_a_500(
    client, world, session, caplog, monkeypatch
):
    """Read at request time anyway (a value slipped past the record): a clear problem, logged
    loudly once, not a bare 500."""
    from api import errors

    monkeypatch.setattr(errors, "_data_key_reported", False, raising=False)
    household = world.households[A1][0]
    crypto.configure(KEY_A)
    sealed = crypto.encrypt("13800000000")
    crypto.configure(TEST_SETTINGS["DATA_KEY"])
    session.execute(
        text("UPDATE households SET phone = :p WHERE id = :id"), {"p": sealed, "id": household.id}
    )
    session.commit()
    caplog.set_level(logging.ERROR, logger="gridwork.errors")
    caplog.clear()
    for _ in range(2):
        response = client.get(f"/api/v1/households/{household.id}", headers=world.auth("worker_a1"))
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.json["type"].endswith("/data-key")
        assert "Traceback" not in response.get_data(as_text=True)
    assert [r.levelname for r in caplog.records] == ["CRITICAL", "ERROR"]


class Gate:
    """A loopback TCP proxy to PostgreSQL that can be shut: the database "down" and "up"."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.open = target, False
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()  # the connection is refused as soon as it is made
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


@pytest.fixture()
def gate(url) -> Iterator[tuple[Gate, str]]:
    target = make_url(url)
    proxy = Gate((target.host or "127.0.0.1", target.port or 5432))
    yield proxy, target.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


def test_a_database_down_at_start_up_is_checked_at_the_first_request_that_reaches_it(
    url, gate, caplog, monkeypatch
):
    from api import errors

    monkeypatch.setattr(errors, "_data_key_reported", False, raising=False)
    seal_a_household(url, KEY_A)
    proxy, via_proxy = gate
    app = start(via_proxy, KEY_B, LOG_LEVEL="CRITICAL")  # starts: the database is down
    client = app.test_client()

    down = client.get("/healthz")
    assert down.status_code == 503 and down.headers["Retry-After"]

    proxy.open = True
    caplog.set_level(logging.ERROR, logger="gridwork.errors")
    caplog.clear()
    for _ in range(2):  # refused until an operator fixes the key: never a 500
        refused = client.get("/healthz")
        assert refused.status_code == 503
        assert refused.mimetype == "application/problem+json"
        assert refused.json["type"].endswith("/data-key")
        assert "Retry-After" not in refused.headers
        assert KEY_B not in refused.get_data(as_text=True)
    assert [r.levelname for r in caplog.records] == ["CRITICAL", "ERROR"]  # loud once
    assert kid(KEY_A) in caplog.records[0].getMessage()
    db.engine.dispose()


def test_a_database_down_at_start_up_then_the_right_key_serves(url, gate):
    seal_a_household(url, KEY_A)
    proxy, via_proxy = gate
    app = start(via_proxy, KEY_A, LOG_LEVEL="CRITICAL")
    client = app.test_client()
    assert client.get("/healthz").status_code == 503
    proxy.open = True
    assert client.get("/healthz").status_code == 200
    db.engine.dispose()


def test_the_migration_records_the_keys_found_in_the_data(url, monkeypatch):
    """0022 reads the sealed columns once: a held key gets its canary, another none."""
    from alembic import command

    from api.cli import alembic_config

    seal_a_household(url, KEY_A)
    app = start(url, KEY_B, old=KEY_A)
    with app.app_context(), db.begin() as session:
        make_user(session, "dk_b", "worker", grids=[GRID], phone="13900000002")
    db.engine.dispose()
    command.downgrade(alembic_config(url), "0021")
    monkeypatch.setenv("GRIDWORK_DATA_KEY", KEY_B)
    command.upgrade(alembic_config(url), "head")

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT kid, canary FROM data_keys")).all())
    engine.dispose()
    assert set(rows) == {kid(KEY_A), kid(KEY_B)}
    assert rows[kid(KEY_A)] is None  # found in the data, its key not at hand
    assert crypto.opens_canary(rows[kid(KEY_B)])
    with pytest.raises(crypto.DataKeyMismatch, match=kid(KEY_A)):
        start(url, KEY_B)
