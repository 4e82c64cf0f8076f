"""The audit log's id arrays are stored with lz4 (migration 0031): pglz spent ~1 ms failing to
compress each tile's array of UUIDs."""

from __future__ import annotations

from sqlalchemy import create_engine, text

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


def test_migration_0031_downgrades_to_pglz_and_upgrades_again(own_database_url):
    from alembic import command

    from api.cli import alembic_config

    config = alembic_config(own_database_url)
    engine = create_engine(own_database_url)
    try:
        command.downgrade(config, "0030")
        try:
            with engine.connect() as conn:
                assert compression(conn) == {"resource_ids": "p", "resource_uuids": "p"}
        finally:
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compression(conn) == {"resource_ids": "l", "resource_uuids": "l"}
    finally:
        engine.dispose()
