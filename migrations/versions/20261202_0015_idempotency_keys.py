"""Idempotency keys for creates that have no natural key of their own.

A retry of `POST /households`, `POST /households/import` or `POST /tasks` (without a hotline
ticket number) made a second record. With an `Idempotency-Key` header, the first request's
key row is committed with its effects, and a retry gets the stored answer (sealed: it may
hold phones) instead of running again. Rows are kept 24 hours.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 16:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("mimetype", sa.String(100), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_idempotency_keys_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
