"""Task photos: uploaded to a task, named by the step they document; free strings kept aside.

A step (`POST /tasks/{id}/transitions`) took `photos`, a list of free strings said to be "photo
URLs or storage keys", that nothing checked and nothing served. Photos of a task are now
uploaded to it (`POST /tasks/{id}/photos`: checked, stripped, sealed and deduplicated as a
visit's, their bytes shared with visit photos of the same image), stored in `task_photos`,
and a step names them by id (`task_photos.event_id`).

The strings steps took are not photos this service holds: no bytes to convert them to, and
nothing says what they point at. They are references (a client's URL or storage key), kept as
sent in `task_events.photo_refs` (the column renamed); a step still takes them beside the ids.

Revision ID: 0055
Revises: 0054
Create Date: 2027-01-08 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0055"
down_revision: str | None = "0054"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("task_events", "photos", new_column_name="photo_refs")
    op.create_table(
        "task_photos",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("stripped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_task_photos_sha256_format")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_task_photos_size_positive")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["task_events.id"],
            name=op.f("fk_task_photos_event_id_task_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_photos_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_task_photos_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_photos")),
        sa.UniqueConstraint("task_id", "sha256", name="uq_task_photos_task_sha256"),
    )
    op.create_index(op.f("ix_task_photos_event_id"), "task_photos", ["event_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_task_photos_event_id"), table_name="task_photos")
    op.drop_table("task_photos")
    op.alter_column("task_events", "photo_refs", new_column_name="photos")
