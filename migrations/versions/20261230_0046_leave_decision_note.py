"""leaves.decision_note: the decider's words on an approval or a rejection ('' when none).

A worker refused leave was told "未获批准" and nothing more. The note is shown to whoever
reads the leave's reason (district viewers read neither); the notice says that there is one,
not what it says (a phone's push service carries the notice).

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-30 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "leaves", sa.Column("decision_note", sa.Text(), nullable=False, server_default="")
    )


def downgrade() -> None:
    op.drop_column("leaves", "decision_note")
