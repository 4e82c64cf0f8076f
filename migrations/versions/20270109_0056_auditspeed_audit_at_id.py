"""The audit log's time index takes the entry's id as its second key: (at, id).

Every listing of the log is ordered `at DESC, id DESC` and pages on from the last entry read
(`before=`: the entries after it in that order). On `(at)` alone the order's tie-break and the
cursor's `(at, id) < (:at, :id)` were a sort and a filter over whatever the index returned;
on `(at, id)` a page is one backward range scan that stops after its rows. The records view
(`view=records`) walks it newest first and tests each entry against the caller's scope,
stopping once the page is full, instead of matching the whole log and sorting it
(`api.services.audit.list_entries`, `bench/audit_records.py`).

`(at, id)` serves everything `(at)` did (the purge's oldest-first batches, `since`/`until`), so
it replaces it: one index to keep up on every audited read, not two.

Revision ID: 0056
Revises: 0055
Create Date: 2027-01-09 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0056"
down_revision: str | None = "0055"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_at_id", "audit_log", ["at", "id"], unique=False)
    op.drop_index("ix_audit_log_at", table_name="audit_log")


def downgrade() -> None:
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.drop_index("ix_audit_log_at_id", table_name="audit_log")
