"""Rosters keep the B-post days their generation asked of each grid.

A grid's shortfall was found only where the generation left one (`rosters.shortfalls`): an
edit that sent a grid's visits elsewhere, below the settings' minimum, went unlisted, and the
draft was published without the acknowledgement a short week takes. A week generated
midweek asks each grid the days left's share of the minimum, which was not stored. Now
`rosters.grid_minimum` holds what was asked, counted from `rosters.grid_minimum_from` (null
for a whole week); both null for a roster generated before this revision, which keeps its
old reading (its stored gaps only).

Revision ID: 0053
Revises: 0052
Create Date: 2027-01-06 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0053"
down_revision: str | None = "0052"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("rosters", sa.Column("grid_minimum", sa.Integer(), nullable=True))
    op.add_column("rosters", sa.Column("grid_minimum_from", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("rosters", "grid_minimum_from")
    op.drop_column("rosters", "grid_minimum")
