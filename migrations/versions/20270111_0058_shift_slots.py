"""Staggered window hours: an A-post shift's own time slot, `shifts.slot_start` / `slot_end`.

A hall open 08:00-20:00 rosters its window in slots (the roster settings' `a_slots`, e.g.
08:00-16:30 and 11:30-20:00): every A-post worker had the community's one `a_hours`. Each A-post
shift now holds its slot's local hours (Asia/Shanghai), given when the week is generated or the
shift edited; a swap exchanges workers and leaves each shift's slot with it. NULL (every shift
before this, and whenever the community sets no slots): the community's `a_hours`, as before.

Revision ID: 0058
Revises: 0057
Create Date: 2027-01-11 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0058"
down_revision: str | None = "0057"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("shifts", sa.Column("slot_start", sa.Time(), nullable=True))
    op.add_column("shifts", sa.Column("slot_end", sa.Time(), nullable=True))
    op.create_check_constraint(
        op.f("ck_shifts_slot_whole"), "shifts", "(slot_start IS NULL) = (slot_end IS NULL)"
    )
    op.create_check_constraint(
        op.f("ck_shifts_slot_a_post_only"), "shifts", "slot_start IS NULL OR post = 'A'"
    )
    op.create_check_constraint(op.f("ck_shifts_slot_order"), "shifts", "slot_start < slot_end")


def downgrade() -> None:
    for name in ("slot_order", "slot_a_post_only", "slot_whole"):
        op.drop_constraint(op.f(f"ck_shifts_{name}"), "shifts", type_="check")
    op.drop_column("shifts", "slot_end")
    op.drop_column("shifts", "slot_start")
