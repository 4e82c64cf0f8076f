"""Notifications carry the id of the transaction that wrote them: the inbox's commit cursor.

`created_at` is the transaction's start time, and a notification becomes visible only when its
transaction commits: a client polling with `since` (the newest `created_at` it holds) never
saw a notification whose transaction started before that one and committed after the poll.

`notifications.xid` is `pg_current_xact_id()` of the writing transaction (the top-level one,
savepoints included). The inbox answers with a cursor, the `xmin` of a snapshot taken before
it read: every transaction below it had finished, so everything it committed was in the
answer. A later poll with that cursor returns the rows of transactions at or above it, which
holds every notification not yet visible then (and possibly a few that were: clients skip ids
they hold).

Existing rows keep a NULL `xid`: they are older than any cursor. Adding the column without a
default and then setting one rewrites nothing. The index serves the per-user cursor filter.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE notifications ADD COLUMN xid xid8")
    op.execute("ALTER TABLE notifications ALTER COLUMN xid SET DEFAULT pg_current_xact_id()")
    op.execute("CREATE INDEX ix_notifications_user_id_xid ON notifications (user_id, xid)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_notifications_user_id_xid")
    op.execute("ALTER TABLE notifications DROP COLUMN xid")
