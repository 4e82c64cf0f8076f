"""Rosters, shifts and leave; visits; tasks and their events; notifications.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:06:24.225814+00:00
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leaves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=10), server_default="requested", nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'cancelled')",
            name=op.f("ck_leaves_status_valid"),
        ),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_leaves_period_order")),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_leaves_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_leaves_worker_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaves")),
    )
    op.create_index(op.f("ix_leaves_worker_id"), "leaves", ["worker_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "data", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("urgent", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("collapse_key", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_user_created", "notifications", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "rosters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="draft", nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'published')", name=op.f("ck_rosters_status_valid")
        ),
        sa.CheckConstraint("week ~ '^[0-9]{4}-W[0-9]{2}$'", name=op.f("ck_rosters_week_format")),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["communities.code"],
            name=op.f("fk_rosters_community_code_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_rosters_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rosters")),
        sa.UniqueConstraint("community_code", "week", name="uq_rosters_community_week"),
    )
    op.create_table(
        "shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roster_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("post", sa.String(length=1), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("relief_for_id", sa.Integer(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(post = 'B') = (grid_id IS NOT NULL)", name=op.f("ck_shifts_b_post_has_grid")
        ),
        sa.CheckConstraint("post IN ('A', 'B')", name=op.f("ck_shifts_post_valid")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_shifts_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["relief_for_id"],
            ["users.id"],
            name=op.f("fk_shifts_relief_for_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["roster_id"],
            ["rosters.id"],
            name=op.f("fk_shifts_roster_id_rosters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_shifts_worker_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shifts")),
        sa.UniqueConstraint("worker_id", "date", name="uq_shifts_worker_date"),
    )
    op.create_index("ix_shifts_grid_date", "shifts", ["grid_id", "date"], unique=False)
    op.create_index("ix_shifts_roster_date", "shifts", ["roster_id", "date"], unique=False)
    op.create_geospatial_table(
        "visits",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("premises", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("utc_offset_minutes", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("datum", sa.String(length=5), nullable=False),
        sa.Column("raw_lon", sa.Float(), nullable=False),
        sa.Column("raw_lat", sa.Float(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("mock", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "observations",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("follow_up", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("follow_up_note", sa.Text(), nullable=True),
        sa.Column("relief", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("grade", sa.String(length=10), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "evidence", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "datum IN ('wgs84', 'gcj02', 'bd09')", name=op.f("ck_visits_datum_valid")
        ),
        sa.CheckConstraint(
            "grade IN ('ok', 'doubtful', 'suspect')", name=op.f("ck_visits_grade_valid")
        ),
        sa.CheckConstraint(
            "outcome IN ('met', 'nobody_home', 'refused', 'moved_out', 'vacant')",
            name=op.f("ck_visits_outcome_valid"),
        ),
        sa.CheckConstraint("week ~ '^[0-9]{4}-W[0-9]{2}$'", name=op.f("ck_visits_week_format")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_visits_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_visits_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_visits_worker_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    op.create_index("ix_visits_grid_week", "visits", ["grid_id", "week"], unique=False)
    op.create_index(
        "ix_visits_household_visited", "visits", ["household_id", "visited_at"], unique=False
    )
    op.create_geospatial_index(
        "ix_visits_location",
        "visits",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_visits_worker_visited", "visits", ["worker_id", "visited_at"], unique=False)
    op.create_geospatial_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("urgency", sa.String(length=10), server_default="general", nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("complainant", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("visit_id", sa.UUID(), nullable=True),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="new", nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("first_contact_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("satisfaction", sa.String(length=20), nullable=True),
        sa.CheckConstraint(
            "satisfaction IS NULL OR satisfaction IN ('satisfied', 'basically_satisfied', 'unsatisfied')",
            name=op.f("ck_tasks_satisfaction_valid"),
        ),
        sa.CheckConstraint(
            "source IN ('hotline', 'window', 'visit', 'proactive', 'leader')",
            name=op.f("ck_tasks_source_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('new', 'dispatched', 'accepted', 'in_progress', 'resolved', 'callback', 'closed', 'returned', 'escalated', 'reopened')",
            name=op.f("ck_tasks_status_valid"),
        ),
        sa.CheckConstraint(
            "urgency IN ('danger', 'utility', 'general', 'complex')",
            name=op.f("ck_tasks_urgency_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_tasks_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_tasks_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_tasks_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_tasks_household_id_households")
        ),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_tasks_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("source", "external_id", name="uq_tasks_source_external_id"),
        sa.UniqueConstraint("visit_id", name=op.f("uq_tasks_visit_id")),
    )
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee_id", "status"], unique=False)
    op.create_index("ix_tasks_due", "tasks", ["due_at"], unique=False)
    op.create_index("ix_tasks_grid_status", "tasks", ["grid_id", "status"], unique=False)
    op.create_geospatial_table(
        "task_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "photos", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_task_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_events_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
    )
    op.create_index(op.f("ix_task_events_task_id"), "task_events", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_task_events_task_id"), table_name="task_events")
    op.drop_geospatial_table("task_events")
    op.drop_index("ix_tasks_grid_status", table_name="tasks")
    op.drop_index("ix_tasks_due", table_name="tasks")
    op.drop_index("ix_tasks_assignee_status", table_name="tasks")
    op.drop_geospatial_table("tasks")
    op.drop_index("ix_visits_worker_visited", table_name="visits")
    op.drop_geospatial_index(
        "ix_visits_location", table_name="visits", postgresql_using="gist", column_name="location"
    )
    op.drop_index("ix_visits_household_visited", table_name="visits")
    op.drop_index("ix_visits_grid_week", table_name="visits")
    op.drop_geospatial_table("visits")
    op.drop_index("ix_shifts_roster_date", table_name="shifts")
    op.drop_index("ix_shifts_grid_date", table_name="shifts")
    op.drop_table("shifts")
    op.drop_table("rosters")
    op.drop_index("ix_notifications_user_created", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_leaves_worker_id"), table_name="leaves")
    op.drop_table("leaves")
