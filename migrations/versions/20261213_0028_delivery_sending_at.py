"""Deliveries record, before a round sends them, that it did: `sending_at`.

Whether a round whose lease passed without a mark had sent its rows was known only to the
worker that ran it. A round that lost its database before sending (its pre-send re-hold
failed) kept its claim in memory to hand it back; a worker killed during the outage forgot
it, and the next claim counted the round lost and attempted: a few such crashes made a push
dead that was never sent. The pre-send re-hold now writes `sending_at` (the claim clears it):
a lease that passes without it is taken over with no attempt and no lost round counted; one
that passes with it counts as before (the round may have sent, or may crash every time it
sends: the poison-message limit `GRIDWORK_PUSH_MAX_LOST_ROUNDS`).

Rows under a lease at the upgrade were claimed by a worker that writes no `sending_at`: they
are marked as sending, so they count as they did before.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-13 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("sending_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE deliveries SET sending_at = now() "
        "WHERE state = 'pending' AND claimed_until IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("deliveries", "sending_at")
