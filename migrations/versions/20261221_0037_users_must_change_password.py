"""Accounts: a password set by an admin must be changed by its owner at the next sign-in.

`POST /api/v1/users/{id}/password` (a community admin resets a forgotten password) sets
`must_change_password`; the owner's tokens then say so (`pwc`) and open nothing but the
`/auth` endpoints until `POST /api/v1/auth/password` sets a password only the owner knows.

Adding a column with a constant default rewrites nothing (PostgreSQL 11+).

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-21 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN must_change_password")
