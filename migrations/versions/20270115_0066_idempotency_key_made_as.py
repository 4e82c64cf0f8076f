"""An `Idempotency-Key`'s row keeps the role and community its request was made as.

A kept answer was made for the caller as they were: an account change's answer holds the
account's phone in full, a roster's the workers' names. A community admin made a worker since
(`gridwork user set-role`) who sent the same request again with its key got that answer back,
where the request itself is now refused. The row now keeps `made_as` (role, community,
district); a replay made as another is a 409 `carried_out` without the answer
(api/idempotency.py). Rows kept before have none and replay as they did, for their last 24
hours.

Revision ID: 0066
Revises: 0065
Create Date: 2027-01-15 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0066"
down_revision: str | None = "0065"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("made_as", sa.String(120), nullable=True))


def downgrade() -> None:
    op.drop_column("idempotency_keys", "made_as")
