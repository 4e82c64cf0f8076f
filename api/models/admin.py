"""Administrative hierarchy: district (区), street (街道), community (社区), keyed by codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base


class District(Base):
    __tablename__ = "districts"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{6}$'", name="code_format"),)

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    streets: Mapped[list[Street]] = relationship(back_populates="district")


class Street(Base):
    __tablename__ = "streets"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{9}$'", name="code_format"),)

    code: Mapped[str] = mapped_column(String(9), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    district: Mapped[District] = relationship(back_populates="streets")
    communities: Mapped[list[Community]] = relationship(back_populates="street")


class Community(Base):
    __tablename__ = "communities"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{12}$'", name="code_format"),)

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    street_code: Mapped[str] = mapped_column(ForeignKey("streets.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Per-community settings (roster rules, visit cadences) live here as they arrive.
    settings: Mapped[dict] = mapped_column(JSONB, server_default="{}", default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    street: Mapped[Street] = relationship(back_populates="communities")

    @property
    def district_code(self) -> str:
        return self.code[:6]


class CommunityCadence(Base):
    """A community's visit cadence from an ISO week (Asia/Shanghai) on: its change history.

    A change applies from the week it is made in (the whole week, so the week is judged by one
    cadence). A week reads the latest row with `from_week` at or before it; the row with no
    `from_week` holds the cadence before any recorded change (every community with rows has
    one). `Community.settings["visit_cadence"]` keeps the current value for the API (0019).
    """

    __tablename__ = "community_cadences"
    __table_args__ = (
        CheckConstraint(
            "from_week IS NULL OR from_week ~ '^[0-9]{4}-W[0-9]{2}$'", name="from_week_format"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("communities.code", ondelete="CASCADE")
    )
    from_week: Mapped[str | None] = mapped_column(String(8))
    cadence: Mapped[dict] = mapped_column(JSONB)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


Index(
    "ix_community_cadences_community_week",
    CommunityCadence.community_code,
    CommunityCadence.from_week,
)
# One "before any recorded change" row per community.
Index(
    "uq_community_cadences_before_any_change",
    CommunityCadence.community_code,
    unique=True,
    postgresql_where=CommunityCadence.from_week.is_(None),
)
