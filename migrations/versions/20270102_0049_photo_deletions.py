"""photo_deletions: the bytes of deleted photos, deleted from storage after the commit.

Retention deleted a photo's file before its transaction committed (under the hash's lock):
a run that failed after that (a later step's error, the database restarting) kept the row,
which pointed at nothing until a later run deleted it. The rows' deletion now queues their
hashes here, in its transaction; the next transaction takes each hash's lock, deletes the
file if no photo points at it any more, and takes the hash off the queue. A crash between the
two keeps the queue, drained by the next run; a rollback queues nothing.

Revision ID: 0049
Revises: 0047
Create Date: 2027-01-02 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0049"
down_revision: str | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE photo_deletions ("
        " sha256 varchar(64) CONSTRAINT pk_photo_deletions PRIMARY KEY,"
        " queued_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade() -> None:
    # Hashes still queued keep their files: `gridwork photos scrub` finds files no photo
    # points at (it removes those carrying metadata).
    op.execute("DROP TABLE photo_deletions")
