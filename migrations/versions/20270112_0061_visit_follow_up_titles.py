"""A visit's follow-up says what it is about and how urgent it is.

`visits.follow_up_title`: one plain line ("3号楼楼道灯不亮"), its task's title (NULL: none
given, the task is titled 入户走访跟进 as before); `visits.follow_up_urgency`: its task's urgency,
which sets the deadline. Both NULL without a follow-up (check constraints). The follow-ups
recorded before were made `general` tasks: so they are recorded.

Revision ID: 0061
Revises: 0060
Create Date: 2027-01-12 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0061"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("visits", sa.Column("follow_up_title", sa.String(200), nullable=True))
    op.add_column("visits", sa.Column("follow_up_urgency", sa.String(10), nullable=True))
    op.execute("UPDATE visits SET follow_up_urgency = 'general' WHERE follow_up")
    op.create_check_constraint(
        op.f("ck_visits_follow_up_title_valid"), "visits", "follow_up_title IS NULL OR follow_up"
    )
    op.create_check_constraint(
        op.f("ck_visits_follow_up_urgency_valid"),
        "visits",
        "follow_up_urgency IS NULL OR follow_up",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_visits_follow_up_urgency_valid"), "visits", type_="check")
    op.drop_constraint(op.f("ck_visits_follow_up_title_valid"), "visits", type_="check")
    op.drop_column("visits", "follow_up_urgency")
    op.drop_column("visits", "follow_up_title")
