"""Push devices: the sign-in session that registered each one.

A device kept receiving pushes after the sign-in that registered it ended: a phone lost, its
owner changes the password (every other session is signed out), and the lost phone still got
every task's notice, Web Push carrying the task's title. A device now names its session
(`session_id`); revoking a session (a password change, a sign-out, a replayed refresh token)
deactivates its devices, and the caller's own device follows it to its new session. Devices
registered before have none: a password change deactivates them (the app registers again).
Ended sessions are deleted after 30 days: the link is then set null (the device was
deactivated with the session).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-22 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE devices ADD COLUMN session_id varchar(36)"
        " REFERENCES auth_sessions (id) ON DELETE SET NULL"
    )
    op.execute("CREATE INDEX ix_devices_session_id ON devices (session_id) WHERE active")


def downgrade() -> None:
    op.execute("ALTER TABLE devices DROP COLUMN session_id")
