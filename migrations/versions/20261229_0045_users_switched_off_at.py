"""users.switched_off_at: when the account was switched off (null while active).

A switched-off worker's visits left unsent on their phone are sent by the community's admin
(`POST /visits/handover`), those made before this moment only. Accounts switched off before
this migration are stamped with the end of the sign-ins their switch-off ended (the sessions
it revoked), else with the migration's time.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-29 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("switched_off_at", sa.DateTime(timezone=True)))
    op.execute(
        """
        UPDATE users u SET switched_off_at = coalesce(
            (SELECT max(s.revoked_at) FROM auth_sessions s
             WHERE s.user_id = u.id AND s.revoked_reason = 'account switched off'),
            now())
        WHERE NOT u.active
        """
    )


def downgrade() -> None:
    op.drop_column("users", "switched_off_at")
