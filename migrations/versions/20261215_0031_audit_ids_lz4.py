"""The audit log's id arrays are compressed with lz4, not pglz.

A tile of the visits layer writes one audit entry naming every visit it draws: ~3,000 UUIDs at
z15, a 48 KB array. PostgreSQL tries to compress any value over ~2 KB before storing it out of
line, with pglz by default: on random UUIDs it finds nothing to gain and gives up after ~1 ms
of work (measured: 300 such inserts 324-365 ms with pglz, 56-125 ms with lz4, the same with no
compression at all; the stored size is 48,020 bytes every way). lz4 gives up at once on what it
cannot compress and still compresses what it can (the int ids of households and tasks, often
runs of near numbers). Only values written from now on are affected; nothing is rewritten.

A server built without lz4 keeps pglz (the change is skipped with a notice): nothing else
depends on it.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-15 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("resource_ids", "resource_uuids")


def _compression(method: str) -> str:
    alters = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION {method}" for c in COLUMNS)
    return f"""
    DO $$
    BEGIN
      ALTER TABLE audit_log {alters};
    EXCEPTION WHEN feature_not_supported THEN
      RAISE NOTICE 'audit_log keeps its compression: %', SQLERRM;
    END $$;
    """


def upgrade() -> None:
    op.execute(_compression("lz4"))


def downgrade() -> None:
    op.execute(_compression("pglz"))
