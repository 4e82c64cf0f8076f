"""Sign-in sessions, audit of UUID-keyed records, and sensitive free text encrypted at rest.

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-23 13:30:00+00:00

The data step encrypts every value of the sealed columns (api/services/encryption.py) that is
not yet under the current GRIDWORK_DATA_KEY: visit notes, follow-up notes and observations, task
descriptions, complainants and event notes, and any phone still in plaintext. Column types do
not change (jsonb stays jsonb: an encrypted value is a JSON string).
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns newly sealed by this revision (phones were sealed by 0008).
_NEW = (
    ("visits", "notes"),
    ("visits", "follow_up_note"),
    ("visits", "observations"),
    ("tasks", "description"),
    ("tasks", "complainant"),
    ("task_events", "note"),
)


def _configure_keys() -> None:
    from api import crypto
    from api.settings import load_config

    config = load_config()
    crypto.configure(config["DATA_KEY"], config.get("OLD_DATA_KEYS"))


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("refresh_jti", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"], unique=False)
    op.add_column(
        "audit_log",
        sa.Column(
            "resource_uuids",
            postgresql.ARRAY(sa.UUID()),
            server_default="{}",
            nullable=False,
        ),
    )
    op.create_index(
        "ix_audit_log_resource_ids",
        "audit_log",
        ["resource_ids"],
        unique=False,
        postgresql_using="gin",
    )

    from api.services.encryption import seal_all

    _configure_keys()
    seal_all(op.get_bind())


def downgrade() -> None:
    from api.services.encryption import SEALED_COLUMNS, open_all

    _configure_keys()
    open_all(op.get_bind(), [c for c in SEALED_COLUMNS if (c.table, c.column) in _NEW])
    op.drop_index("ix_audit_log_resource_ids", table_name="audit_log", postgresql_using="gin")
    op.drop_column("audit_log", "resource_uuids")
    op.drop_index(op.f("ix_auth_sessions_user_id"), table_name="auth_sessions")
    op.drop_table("auth_sessions")
