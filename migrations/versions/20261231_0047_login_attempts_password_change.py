"""login_attempts.kind, session_id: a password change's wrong current passwords counted apart.

A wrong current password in POST /auth/password was recorded as a failed sign-in of the
username, and the change checked the sign-in count: anyone who knew a username could keep its
owner from changing their password by failing five sign-ins, and the owner's own mistyped
current passwords locked them out of signing in. A password change's guesses are now rows of
their own kind, counted per sign-in session (`session_id`) and left out of the sign-in count.

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-31 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0047"
down_revision: str | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "login_attempts",
        sa.Column("kind", sa.String(length=20), nullable=False, server_default="sign-in"),
    )
    op.add_column("login_attempts", sa.Column("session_id", sa.String(length=36), nullable=True))
    op.create_index(
        "ix_login_attempts_password_change",
        "login_attempts",
        ["user_id", "at"],
        unique=False,
        postgresql_where=sa.text("kind = 'password-change'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_login_attempts_password_change",
        table_name="login_attempts",
        postgresql_where=sa.text("kind = 'password-change'"),
    )
    op.drop_column("login_attempts", "session_id")
    op.drop_column("login_attempts", "kind")
