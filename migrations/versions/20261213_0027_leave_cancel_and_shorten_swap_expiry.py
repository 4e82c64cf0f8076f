"""Leave keeps its decision apart from its cancel and records an early end; swaps expire.

- `leaves.cancelled_by_id` / `cancelled_at`: who cancelled the leave and when. Cancelling used
  to overwrite `decided_by_id` / `decided_at`, so a cancelled leave no longer said who had
  approved it. From now on those two are the decision only.
  Rows cancelled before this migration: their `decided_*` named the canceller (the cancel
  overwrote them), so they move to `cancelled_*`, and `decided_*` become NULL: who approved
  (or whether anyone did) was overwritten and cannot be recovered.
- `leaves.shortened_by_id` / `shortened_at` / `approved_end_date`: an approved leave ended
  early (`POST /leaves/{id}/end`) has its `end_date` moved to the new last day, so everything
  that reads the leave's days (rosters, edits, swaps, dispatch) follows; `approved_end_date`
  keeps the last day as approved. NULL for leave never shortened (all rows before this).
- `shift_swaps.status` may be `expired`: an open swap whose day has passed (the tick sets it).
  `ix_shift_swaps_open` (partial, the open swaps) serves the tick, which looks at them only.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-13 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE leaves
          ADD COLUMN cancelled_by_id integer
            CONSTRAINT fk_leaves_cancelled_by_id_users REFERENCES users (id) ON DELETE SET NULL,
          ADD COLUMN cancelled_at timestamptz,
          ADD COLUMN shortened_by_id integer
            CONSTRAINT fk_leaves_shortened_by_id_users REFERENCES users (id) ON DELETE SET NULL,
          ADD COLUMN shortened_at timestamptz,
          ADD COLUMN approved_end_date date,
          ADD CONSTRAINT ck_leaves_approved_end_after_end
            CHECK (approved_end_date IS NULL OR approved_end_date > end_date)
        """
    )
    op.execute(
        """
        UPDATE leaves
        SET cancelled_by_id = decided_by_id, cancelled_at = decided_at,
            decided_by_id = NULL, decided_at = NULL
        WHERE status = 'cancelled'
        """
    )
    op.execute("ALTER TABLE shift_swaps DROP CONSTRAINT ck_shift_swaps_status_valid")
    op.execute(
        "ALTER TABLE shift_swaps ADD CONSTRAINT ck_shift_swaps_status_valid CHECK (status IN"
        " ('requested', 'accepted', 'approved', 'rejected', 'cancelled', 'expired'))"
    )
    op.execute("CREATE INDEX ix_shift_swaps_open ON shift_swaps (id) WHERE status = 'requested'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_shift_swaps_open")
    # Expired swaps were open swaps nobody can accept any more: `cancelled` is the nearest.
    op.execute("UPDATE shift_swaps SET status = 'cancelled' WHERE status = 'expired'")
    op.execute("ALTER TABLE shift_swaps DROP CONSTRAINT ck_shift_swaps_status_valid")
    op.execute(
        "ALTER TABLE shift_swaps ADD CONSTRAINT ck_shift_swaps_status_valid CHECK (status IN"
        " ('requested', 'accepted', 'approved', 'rejected', 'cancelled'))"
    )
    # The old meaning: a cancelled leave's decided_* named the canceller.
    op.execute(
        """
        UPDATE leaves
        SET decided_by_id = cancelled_by_id, decided_at = cancelled_at
        WHERE status = 'cancelled' AND cancelled_at IS NOT NULL
        """
    )
    op.execute(
        """
        ALTER TABLE leaves
          DROP CONSTRAINT ck_leaves_approved_end_after_end,
          DROP COLUMN approved_end_date,
          DROP COLUMN shortened_at,
          DROP COLUMN shortened_by_id,
          DROP COLUMN cancelled_at,
          DROP COLUMN cancelled_by_id
        """
    )
