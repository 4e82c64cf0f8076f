"""Roster pairs, the change log of published rosters, shift swaps, calendar feed tokens.

Revision ID: 0007
Revises: 0008
Create Date: 2026-11-23 09:13:29.540582+00:00
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_calendar_feeds_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_calendar_feeds")),
    )
    op.create_table(
        "shift_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roster_id", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "action IN ('edit', 'swap')", name=op.f("ck_shift_changes_action_valid")
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_shift_changes_changed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["roster_id"],
            ["rosters.id"],
            name=op.f("fk_shift_changes_roster_id_rosters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["shifts.id"],
            name=op.f("fk_shift_changes_shift_id_shifts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift_changes")),
    )
    op.create_index(
        op.f("ix_shift_changes_roster_id"), "shift_changes", ["roster_id"], unique=False
    )
    op.create_table(
        "shift_swaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=False),
        sa.Column("with_shift_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("other_worker_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="requested", nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'accepted', 'approved', 'rejected', 'cancelled')",
            name=op.f("ck_shift_swaps_status_valid"),
        ),
        sa.CheckConstraint("shift_id <> with_shift_id", name=op.f("ck_shift_swaps_two_shifts")),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_shift_swaps_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["other_worker_id"],
            ["users.id"],
            name=op.f("fk_shift_swaps_other_worker_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_shift_swaps_requested_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["users.id"],
            name=op.f("fk_shift_swaps_requester_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["shifts.id"],
            name=op.f("fk_shift_swaps_shift_id_shifts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["with_shift_id"],
            ["shifts.id"],
            name=op.f("fk_shift_swaps_with_shift_id_shifts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift_swaps")),
    )
    op.create_index(op.f("ix_shift_swaps_shift_id"), "shift_swaps", ["shift_id"], unique=False)
    op.create_index(
        op.f("ix_shift_swaps_with_shift_id"), "shift_swaps", ["with_shift_id"], unique=False
    )
    op.add_column(
        "rosters",
        sa.Column(
            "pairs", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
    )
    # Deferrable: checked at the end of each statement, so one UPDATE can swap two workers.
    op.drop_constraint("uq_shifts_worker_date", "shifts", type_="unique")
    op.create_unique_constraint(
        "uq_shifts_worker_date",
        "shifts",
        ["worker_id", "date"],
        deferrable=True,
        initially="IMMEDIATE",
    )


def downgrade() -> None:
    op.drop_constraint("uq_shifts_worker_date", "shifts", type_="unique")
    op.create_unique_constraint("uq_shifts_worker_date", "shifts", ["worker_id", "date"])
    op.drop_column("rosters", "pairs")
    op.drop_index(op.f("ix_shift_swaps_with_shift_id"), table_name="shift_swaps")
    op.drop_index(op.f("ix_shift_swaps_shift_id"), table_name="shift_swaps")
    op.drop_table("shift_swaps")
    op.drop_index(op.f("ix_shift_changes_roster_id"), table_name="shift_changes")
    op.drop_table("shift_changes")
    op.drop_table("calendar_feeds")
