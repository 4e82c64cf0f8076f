"""devices: a label its owner recognises ("华为 Mate 40", "Chrome · 安卓").

A device was known by its platform alone: a worker with two Android phones could not tell
which one the list (or the push worker's notice that one of them gets nothing any more) meant.
The app sends a short label as it registers; registering again without one keeps it, a device
passing to another user loses it.

Revision ID: 0050
Revises: 0049
Create Date: 2027-01-03 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050"
down_revision: str | None = "0049"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("label", sa.String(60)))


def downgrade() -> None:
    op.drop_column("devices", "label")
