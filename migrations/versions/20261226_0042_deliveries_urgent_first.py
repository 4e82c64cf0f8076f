"""Deliveries: urgent ones claimed first (`deliveries.urgent`, `ix_deliveries_pending_due`).

The push worker claimed due deliveries by due time only: an escalation or a danger-to-life task
queued behind a fan-out (10,000 pushes of a district notice) waited for the whole backlog, some
20 s at FCM's pace. The claim now takes due urgent deliveries first. Urgency is the
notification's; it is copied onto each delivery when queued (`urgent`), so the claim reads it
without a join, and the partial index of pending rows is rebuilt in the claim's order
(`urgent DESC, next_attempt_at, id`): the claim reads its batch off the index and stops, where
it sorted every due row of the backlog before (measured in bench/push_claim.py).

Backfill: every delivery of an urgent notification (only pending ones matter to the claim; the
others are set so that the column tells the truth). The index is small (pending rows only); it
is built in the migration's transaction, blocking writes to deliveries for that time.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-26 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE deliveries ADD COLUMN urgent boolean NOT NULL DEFAULT false")
    op.execute(
        """
        UPDATE deliveries d SET urgent = true
        FROM notifications n
        WHERE n.id = d.notification_id AND n.urgent
        """
    )
    op.execute("DROP INDEX ix_deliveries_pending_due")
    op.execute(
        "CREATE INDEX ix_deliveries_pending_due ON deliveries "
        "(urgent DESC, next_attempt_at, id) WHERE state = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_deliveries_pending_due")
    op.execute(
        "CREATE INDEX ix_deliveries_pending_due ON deliveries (next_attempt_at) "
        "WHERE state = 'pending'"
    )
    op.execute("ALTER TABLE deliveries DROP COLUMN urgent")
