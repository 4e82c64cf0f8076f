"""Users: grid workers, grid leaders, community admins and district viewers, with their grids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.crypto import EncryptedString
from api.db import Base

ROLES = ("worker", "grid_leader", "community_admin", "district_viewer")

user_grids = Table(
    "user_grids",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_id", ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(repr(r) for r in ROLES) + ")", name="role_valid"),
        CheckConstraint(
            "role NOT IN ('worker', 'grid_leader', 'community_admin') "
            "OR community_code IS NOT NULL",
            name="community_roles_have_community",
        ),
        CheckConstraint(
            "role <> 'district_viewer' OR district_code IS NOT NULL",
            name="district_viewer_has_district",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(EncryptedString)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    community_code: Mapped[str | None] = mapped_column(ForeignKey("communities.code"), index=True)
    district_code: Mapped[str | None] = mapped_column(ForeignKey("districts.code"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # When it was switched off (null while active): the admin sends its unsent visits made
    # before then (`visits.hand_over_batch`).
    switched_off_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A password an admin set (a reset): its owner sets their own at the next sign-in; until
    # then their tokens carry `pwc` and open only the /auth endpoints.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="false"
    )
    # Bumped to revoke every token issued before (password change, logout everywhere).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    grids = relationship("Grid", secondary=user_grids, order_by="Grid.code")
    # The grids in service this user leads (`grids.leader_id`), for reading.
    led_grids = relationship(
        "Grid",
        primaryjoin="and_(Grid.leader_id == User.id, Grid.retired_at.is_(None))",
        order_by="Grid.code",
        viewonly=True,
    )


def _period_args(name: str, *open_key: str) -> tuple:
    """A period table's checks and indexes: a period ends after it starts; an account's periods
    by start (a batch's days); one open period per `open_key`."""
    return (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="period"),
        Index(f"ix_{name}_user_id", "user_id", "started_at"),
        Index(f"uq_{name}_open", *open_key, unique=True, postgresql_where=text("ended_at IS NULL")),
    )


class _GridPeriod:
    """A period an account held or led a grid, from `started_at` to `ended_at` (open: NULL)."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GridHolding(_GridPeriod, Base):
    """A period an account held a grid (`user_grids`), kept by the database: a trigger opens
    one when a grid is given and closes it when taken away (migration 0039). Grids held when
    the table was made are held since 2000-01-01, the first week visits are served in."""

    __tablename__ = "grid_holdings"
    # One open period per account and grid (the trigger's ON CONFLICT).
    __table_args__ = _period_args("grid_holdings", "user_id", "grid_id")


class GridLeadership(_GridPeriod, Base):
    """A period an account led a grid (`grids.leader_id`), kept by the database: a trigger
    opens one when a grid is given its leader and closes it when the leader changes (migration
    0063). Grids led when the table was made are led since 2000-01-01, as holdings are."""

    __tablename__ = "grid_leaderships"
    # One leader at a time: one open period per grid.
    __table_args__ = _period_args("grid_leaderships", "grid_id")
