"""The audit log's record index moves its upkeep off the requests that write entries.

`ix_audit_log_resource_ids` (GIN, "who read this household or task") takes new entries into a
pending list and merges that list into the index when it passes `gin_pending_list_limit` (4 MB
by default), inside whichever INSERT passes it. A map tile writes an entry naming every
household or task it draws (up to ~3,000 ids): every few dozen heavy tiles, one tile request
paid the merge of the whole list (measured: 150 entries of 3,000 ids, median 1.9 ms, max 577
ms; without the index, max 5 ms).

Now the list may grow to 32 MB before an INSERT has to merge it, and it is merged in the
background well before that: by the push worker (`audit.merge_pending_index`, every
GRIDWORK_AUDIT_MERGE_SECONDS, 10 s) and by autovacuum, which now visits audit_log every 20,000
inserted entries instead of after 20% of the table. A search by record reads the pending list
too (sequentially): a few MB at most between merges.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-16 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_LIST_KB = 32768
INSERTS_PER_VACUUM = 20000


def upgrade() -> None:
    op.execute(
        f"ALTER INDEX ix_audit_log_resource_ids SET (gin_pending_list_limit = {PENDING_LIST_KB})"
    )
    op.execute(
        "ALTER TABLE audit_log SET (autovacuum_vacuum_insert_threshold = "
        f"{INSERTS_PER_VACUUM}, autovacuum_vacuum_insert_scale_factor = 0)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE audit_log RESET (autovacuum_vacuum_insert_threshold,"
        " autovacuum_vacuum_insert_scale_factor)"
    )
    op.execute("SELECT gin_clean_pending_list('ix_audit_log_resource_ids'::regclass)")
    op.execute("ALTER INDEX ix_audit_log_resource_ids RESET (gin_pending_list_limit)")
