"""Deliveries count the rounds lost without a result apart from the attempts answered.

A delivery was dead after `GRIDWORK_PUSH_MAX_ATTEMPTS` (10) claims, whatever became of them: a
provider outage of about a quarter of an hour (10 full-jitter retries, 2 s doubling) lost every
push queued during it. Now a push answered "retry" is retried for as long as its message lives
(a day from the notification; then it is dead as expired), and only the rounds that died
between sending and marking (their lease passed with no result) count toward the crash-loop
limit, `GRIDWORK_PUSH_MAX_LOST_ROUNDS`: `lost_rounds` holds that count.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("lost_rounds", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("deliveries", "lost_rounds")
