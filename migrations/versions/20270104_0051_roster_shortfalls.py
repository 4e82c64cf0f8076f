"""Rosters of short-staffed weeks: what the solver could not meet, kept with the roster.

A week whose window or grid minimums cannot all be met was refused (422) and nothing was
stored: the office rostered it by hand. Generation now stores the best roster and, here,
what it leaves unmet, so the roster's reads say it (`rosters.shortfalls`, each the rule, the
day or grid, how many required and rostered, and why in words), with the rule the 422 named
(`rosters.shortfall_rule`; null for a roster that meets every rule) and its details
(`rosters.shortfall_details`: each day, grid or worker concerned, as the 422 listed them).

Revision ID: 0051
Revises: 0050
Create Date: 2027-01-04 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0051"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "rosters",
        sa.Column(
            "shortfalls",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column("rosters", sa.Column("shortfall_rule", sa.Text(), nullable=True))
    op.add_column(
        "rosters",
        sa.Column(
            "shortfall_details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("rosters", "shortfall_details")
    op.drop_column("rosters", "shortfall_rule")
    op.drop_column("rosters", "shortfalls")
