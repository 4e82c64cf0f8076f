"""Visit photos: attachments of visits, stored by SHA-256 and deduplicated per visit.

Revision ID: 0003
Revises: 0004
Create Date: 2026-11-23 09:14:19.115625+00:00
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.UUID(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_visit_photos_sha256_format")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_visit_photos_size_positive")),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_visit_photos_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_photos_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_photos")),
        sa.UniqueConstraint("visit_id", "sha256", name="uq_visit_photos_visit_sha256"),
    )


def downgrade() -> None:
    op.drop_table("visit_photos")
