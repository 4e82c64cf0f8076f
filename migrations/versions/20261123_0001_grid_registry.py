"""Grid registry: administrative hierarchy, versioned grids, households, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 08:54:09.627989+00:00
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "districts",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("code ~ '^[0-9]{6}$'", name=op.f("ck_districts_code_format")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_districts")),
    )
    op.create_table(
        "streets",
        sa.Column("code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("code ~ '^[0-9]{9}$'", name=op.f("ck_streets_code_format")),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_streets_district_code_districts")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_streets")),
    )
    op.create_index(op.f("ix_streets_district_code"), "streets", ["district_code"], unique=False)
    op.create_table(
        "communities",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("street_code", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "settings", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name=op.f("ck_communities_code_format")),
        sa.ForeignKeyConstraint(
            ["street_code"], ["streets.code"], name=op.f("fk_communities_street_code_streets")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_communities")),
    )
    op.create_index(
        op.f("ix_communities_street_code"), "communities", ["street_code"], unique=False
    )
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("leader_id", sa.Integer(), nullable=True),
        sa.Column("target_households", sa.Integer(), server_default="300", nullable=False),
        sa.Column(
            "boundary",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
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
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_grids_code_format")),
        sa.CheckConstraint(
            "left(code, 12) = community_code", name=op.f("ck_grids_code_in_community")
        ),
        sa.CheckConstraint("target_households > 0", name=op.f("ck_grids_target_positive")),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["communities.code"],
            name=op.f("fk_grids_community_code_communities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
        sa.UniqueConstraint("code", name=op.f("uq_grids_code")),
    )
    op.create_geospatial_index(
        "ix_grids_boundary_active",
        "grids",
        ["boundary"],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("retired_at IS NULL"),
        postgresql_ops={},
    )
    op.create_index(op.f("ix_grids_community_code"), "grids", ["community_code"], unique=False)
    op.create_index(op.f("ix_grids_leader_id"), "grids", ["leader_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role <> 'district_viewer' OR district_code IS NOT NULL",
            name=op.f("ck_users_district_viewer_has_district"),
        ),
        sa.CheckConstraint(
            "role IN ('worker', 'grid_leader', 'community_admin', 'district_viewer')",
            name=op.f("ck_users_role_valid"),
        ),
        sa.CheckConstraint(
            "role NOT IN ('worker', 'grid_leader', 'community_admin') OR community_code IS NOT NULL",
            name=op.f("ck_users_community_roles_have_community"),
        ),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["communities.code"],
            name=op.f("fk_users_community_code_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_users_district_code_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_community_code"), "users", ["community_code"], unique=False)
    # grids and users refer to each other: the grid's leader key is added once both exist.
    op.create_foreign_key(
        op.f("fk_grids_leader_id_users"),
        "grids",
        "users",
        ["leader_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_geospatial_table(
        "grid_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "boundary",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_grid_versions_period_order")
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_grid_versions_changed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
            name=op.f("fk_grid_versions_grid_id_grids"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_versions")),
        sa.UniqueConstraint("grid_id", "version", name="uq_grid_versions_grid_version"),
    )
    op.create_geospatial_index(
        "ix_grid_versions_boundary",
        "grid_versions",
        ["boundary"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_grid_versions_period", "grid_versions", ["grid_id", "valid_from"], unique=False
    )
    op.create_geospatial_table(
        "households",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("building", sa.String(length=50), nullable=False),
        sa.Column("unit", sa.String(length=20), server_default="", nullable=False),
        sa.Column("floor", sa.String(length=10), server_default="", nullable=False),
        sa.Column("room", sa.String(length=20), server_default="", nullable=False),
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
        sa.Column("kind", sa.String(length=20), server_default="residence", nullable=False),
        sa.Column("occupancy", sa.String(length=20), server_default="owner", nullable=False),
        sa.Column("members", sa.Integer(), server_default="1", nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
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
        sa.CheckConstraint(
            "kind IN ('residence', 'business')", name=op.f("ck_households_kind_valid")
        ),
        sa.CheckConstraint(
            "occupancy IN ('owner', 'tenant', 'vacant')", name=op.f("ck_households_occupancy_valid")
        ),
        sa.CheckConstraint(
            "tags <@ ARRAY['elderly_80', 'living_alone', 'low_income', 'disability', 'migrant', 'child_in_difficulty', 'woman_in_difficulty', 'special_care']::text[]",
            name=op.f("ck_households_tags_valid"),
        ),
        sa.CheckConstraint("members >= 0", name=op.f("ck_households_members_nonnegative")),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_households_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    op.create_index(op.f("ix_households_grid_id"), "households", ["grid_id"], unique=False)
    op.create_geospatial_index(
        "ix_households_location",
        "households",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_households_tags", "households", ["tags"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "user_grids",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_user_grids_grid_id_grids"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_grids_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "grid_id", name=op.f("pk_user_grids")),
    )
    op.create_index(op.f("ix_user_grids_grid_id"), "user_grids", ["grid_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_user_grids_grid_id"), table_name="user_grids")
    op.drop_table("user_grids")
    op.drop_index("ix_households_tags", table_name="households", postgresql_using="gin")
    op.drop_geospatial_index(
        "ix_households_location",
        table_name="households",
        postgresql_using="gist",
        column_name="location",
    )
    op.drop_index(op.f("ix_households_grid_id"), table_name="households")
    op.drop_geospatial_table("households")
    op.drop_index("ix_grid_versions_period", table_name="grid_versions")
    op.drop_geospatial_index(
        "ix_grid_versions_boundary",
        table_name="grid_versions",
        postgresql_using="gist",
        column_name="boundary",
    )
    op.drop_geospatial_table("grid_versions")
    op.drop_constraint(op.f("fk_grids_leader_id_users"), "grids", type_="foreignkey")
    op.drop_index(op.f("ix_users_community_code"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_grids_leader_id"), table_name="grids")
    op.drop_index(op.f("ix_grids_community_code"), table_name="grids")
    op.drop_geospatial_index(
        "ix_grids_boundary_active",
        table_name="grids",
        postgresql_using="gist",
        postgresql_where=sa.text("retired_at IS NULL"),
        column_name="boundary",
    )
    op.drop_geospatial_table("grids")
    op.drop_index(op.f("ix_communities_street_code"), table_name="communities")
    op.drop_table("communities")
    op.drop_index(op.f("ix_streets_district_code"), table_name="streets")
    op.drop_table("streets")
    op.drop_table("districts")
