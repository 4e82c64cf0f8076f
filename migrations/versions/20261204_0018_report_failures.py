"""A community's failing weekly report is retried with backoff, its attempts recorded.

`generate_due_reports` runs on every push-worker tick (TASK_TICK_SECONDS); a community whose
report kept failing was claimed, rendered, rolled back and logged with its traceback on every
tick. `report_failures` holds, per (week, community), the attempts so far, the first and last
failure, the last error's class (no message: it may quote personal data) and the next attempt:
1 min after the first failure, doubling, at most 1 h. A tick before then skips the community;
a stored report deletes its row. `gridwork report tick --retry-now` retries regardless.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_failures",
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(length=100), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["communities.code"],
            name=op.f("fk_report_failures_community_code_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("week", "community_code", name=op.f("pk_report_failures")),
    )


def downgrade() -> None:
    op.drop_table("report_failures")
