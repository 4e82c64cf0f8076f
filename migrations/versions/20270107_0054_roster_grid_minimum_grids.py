"""Rosters keep which grids their generation asked B-post days of.

`rosters.grid_minimum` (0053) was checked against each grid of the community in service when
the roster is read: a grid taken into service after the week's generation, or after the week
was worked, was listed as a gap of its whole minimum on a roster that never rostered it, and a
published week's record turned short. Now `rosters.grid_minimum_grids` holds the codes of the
grids the generation rostered (a JSON list); null for a roster generated before this revision,
which keeps the reading of 0053 (the grids in service now).

Revision ID: 0054
Revises: 0053
Create Date: 2027-01-07 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0054"
down_revision: str | None = "0053"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "rosters",
        sa.Column("grid_minimum_grids", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("rosters", "grid_minimum_grids")
