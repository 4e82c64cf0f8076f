"""A task step's own time as the phone took it: `task_events.taken_at`.

A B-post worker at the door with no signal presses 办结; the phone keeps the step and sends it
at the next sync. The server dated the step, and what it settles (the contact made, the
resolution), when the step arrived: a task resolved before its deadline and synced after it
counted overdue, and the deadline's escalation went to the leader for work already done.

`at` stays the moment the server recorded the step (the history's order, the task's version);
`taken_at` is when it was taken, as the phone said, bounded by what the server knows (not after
`at`, not before the task came to its taker). NULL: sent with no time of its own.

Revision ID: 0057
Revises: 0056
Create Date: 2027-01-10 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0057"
down_revision: str | None = "0056"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_events", sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("task_events", "taken_at")
