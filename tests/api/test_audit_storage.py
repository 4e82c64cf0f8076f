"""How the audit log is stored.

- Its id arrays are compressed with lz4 (migration 0031): pglz spent ~1 ms failing to compress
  each tile's array of UUIDs.
- Its record index merges its pending list in the background, not in a tile's INSERT (0032)."""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, text

from api.services import audit

COMPRESSION = text(
    "SELECT attname, attcompression FROM pg_attribute"
    " WHERE attrelid = 'audit_log'::regclass AND attname IN ('resource_ids', 'resource_uuids')"
    " ORDER BY attname"
)


def compression(conn) -> dict[str, str]:
    return {name: method for name, method in conn.execute(COMPRESSION)}


def test_the_audit_logs_id_arrays_are_compressed_with_lz4(session):
    assert compression(session) == {"resource_ids": "l", "resource_uuids": "l"}


def test_an_entry_naming_thousands_of_visits_reads_back_whole(session):
    row = session.execute(
        text(
            "INSERT INTO audit_log (action, resource, resource_ids, resource_uuids, fields)"
            " SELECT 'read', 'visit', '{}', array_agg(gen_random_uuid()), '{}'"
            " FROM generate_series(1, 3000) RETURNING id, resource_uuids"
        )
    ).one()
    stored = session.scalar(
        text("SELECT resource_uuids FROM audit_log WHERE id = :id"), {"id": row.id}
    )
    assert len(stored) == 3000 and stored == row.resource_uuids


def down_and_up(url: str, revision: str, check_down, check_up) -> None:
    """Downgrade to `revision`, check, upgrade to head (whatever happened), check."""
    from alembic import command

    from api.cli import alembic_config

    config = alembic_config(url)
    engine = create_engine(url)
    try:
        command.downgrade(config, revision)
        try:
            with engine.connect() as conn:
                check_down(conn)
        finally:
            command.upgrade(config, "head")
        with engine.connect() as conn:
            check_up(conn)
    finally:
        engine.dispose()


def test_migration_0031_downgrades_to_pglz_and_upgrades_again(own_database_url):
    def pglz(conn):
        assert compression(conn) == {"resource_ids": "p", "resource_uuids": "p"}

    def lz4(conn):
        assert compression(conn) == {"resource_ids": "l", "resource_uuids": "l"}

    down_and_up(own_database_url, "0030", pglz, lz4)


OPTIONS = text(
    "SELECT relname, reloptions FROM pg_class"
    " WHERE relname IN ('audit_log', 'ix_audit_log_resource_ids') ORDER BY relname"
)


def options(conn) -> dict[str, list[str] | None]:
    return {name: opts for name, opts in conn.execute(OPTIONS)}


def add_entries(session, count: int, ids_each: int) -> None:
    session.execute(
        text(
            "INSERT INTO audit_log (action, resource, resource_ids, fields)"
            " SELECT 'read', 'household', array_agg(g), '{}'"
            " FROM generate_series(1, :n) g, generate_series(1, :count) e GROUP BY e"
        ),
        {"n": ids_each, "count": count},
    )


def test_the_record_index_leaves_its_pending_list_to_the_background(session):
    assert options(session) == {
        "audit_log": [
            "autovacuum_vacuum_insert_threshold=20000",
            "autovacuum_vacuum_insert_scale_factor=0",
        ],
        "ix_audit_log_resource_ids": ["gin_pending_list_limit=32768"],
    }


def test_merging_the_pending_list_keeps_every_entry_findable_by_record(session):
    add_entries(session, 5, 2000)
    assert audit.merge_pending_index(session) > 0
    assert audit.merge_pending_index(session) == 0  # nothing left pending
    found = session.scalar(
        text("SELECT count(*) FROM audit_log WHERE resource_ids @> ARRAY[1999::bigint]")
    )
    assert found == 5


def test_the_push_worker_merges_the_pending_list(app, session, caplog, monkeypatch):
    from click.testing import CliRunner

    from api.cli import main

    add_entries(session, 3, 2000)
    app.config.update(GRIDWORK_PUSH_BACKEND="log", TASK_TICK_SECONDS=3600)
    with app.app_context(), caplog.at_level(logging.INFO, logger="gridwork.push"):
        result = CliRunner().invoke(main, ["push-worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pending pages merged" in caplog.text
    assert audit.merge_pending_index(session) == 0


def test_a_database_user_who_may_not_merge_leaves_it_to_autovacuum(session, caplog):
    """Only the index's owner may merge its pending list: another user's tick goes on."""
    add_entries(session, 1, 100)
    session.execute(text("CREATE ROLE gridwork_not_owner"))
    session.execute(text("GRANT SELECT ON audit_log TO gridwork_not_owner"))
    session.execute(text("SET LOCAL ROLE gridwork_not_owner"))
    with caplog.at_level(logging.WARNING, logger="api.services.audit"):
        assert audit.merge_pending_index(session) is None
    assert "left to autovacuum" in caplog.text
    assert session.scalar(text("SELECT count(*) FROM audit_log")) >= 1  # the session goes on


def test_the_push_worker_stops_trying_to_merge_when_it_may_not(app, session, caplog):
    """The worker's merge job answers False for a user who may not merge: the worker then
    stops scheduling it (one warning, not one every AUDIT_MERGE_SECONDS)."""
    from api.cli import _merge_audit_index

    log = logging.getLogger("gridwork.push")
    with app.app_context():
        assert _merge_audit_index(log) is True
        session.execute(text("CREATE ROLE gridwork_not_owner"))
        session.execute(text("GRANT SELECT ON audit_log TO gridwork_not_owner"))
        session.execute(text("SET LOCAL ROLE gridwork_not_owner"))
        with caplog.at_level(logging.WARNING, logger="api.services.audit"):
            assert _merge_audit_index(log) is False
    assert caplog.text.count("left to autovacuum") == 1


def test_migration_0032_downgrades_and_upgrades_again(own_database_url):
    def defaults(conn):
        assert options(conn) == {"audit_log": None, "ix_audit_log_resource_ids": None}

    def background(conn):
        assert options(conn)["ix_audit_log_resource_ids"] == ["gin_pending_list_limit=32768"]

    down_and_up(own_database_url, "0031", defaults, background)
