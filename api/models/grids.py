"""Grids (网格) with their current boundary, and every boundary version with its validity period."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base


class Grid(Base):
    __tablename__ = "grids"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        CheckConstraint("left(code, 12) = community_code", name="code_in_community"),
        CheckConstraint("target_households > 0", name="target_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True), index=True
    )
    target_households: Mapped[int] = mapped_column(Integer, default=300, server_default="300")
    # The current boundary, denormalised from the open GridVersion so locate is one index probe.
    boundary: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # A retired grid keeps its versions for past reports; it no longer takes households.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    community = relationship("Community")
    leader = relationship("User", foreign_keys=[leader_id])
    versions: Mapped[list[GridVersion]] = relationship(
        back_populates="grid", order_by="GridVersion.version"
    )


Index(
    "ix_grids_boundary_active",
    Grid.boundary,
    postgresql_using="gist",
    postgresql_where=Grid.retired_at.is_(None),
)


class GridVersion(Base):
    """One boundary of a grid, valid over [valid_from, valid_to); valid_to NULL means current."""

    __tablename__ = "grid_versions"
    __table_args__ = (
        UniqueConstraint("grid_id", "version", name="uq_grid_versions_grid_version"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    boundary: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)
    )
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    grid: Mapped[Grid] = relationship(back_populates="versions")


Index("ix_grid_versions_boundary", GridVersion.boundary, postgresql_using="gist")
Index("ix_grid_versions_period", GridVersion.grid_id, GridVersion.valid_from)
