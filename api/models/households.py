"""Households and business premises: address, location, and the register facts that drive visits."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.crypto import EncryptedString
from api.db import Base

HOUSEHOLD_KINDS = ("residence", "business")
OCCUPANCIES = ("owner", "tenant", "vacant")
# The five must-visit groups (五必访) and the register's other care facts.
CARE_TAGS = (
    "elderly_80",
    "living_alone",
    "low_income",
    "disability",
    "migrant",
    "child_in_difficulty",
    "woman_in_difficulty",
    "special_care",
)
# Why a household left the register (POST /households/{id}/removal).
REMOVAL_REASONS = ("moved_out", "demolished", "closed", "duplicate", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Household(Base):
    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint(_in("kind", HOUSEHOLD_KINDS), name="kind_valid"),
        CheckConstraint(_in("occupancy", OCCUPANCIES), name="occupancy_valid"),
        CheckConstraint("members >= 0", name="members_nonnegative"),
        CheckConstraint(
            "tags <@ ARRAY[" + ", ".join(repr(t) for t in CARE_TAGS) + "]::text[]",
            name="tags_valid",
        ),
        CheckConstraint(_in("removal_reason", REMOVAL_REASONS), name="removal_reason_valid"),
        CheckConstraint(
            "(removed_at IS NULL) = (removal_reason IS NULL)"
            " AND (removed_at IS NULL) = (removal_date IS NULL)",
            name="removal_complete",
        ),
        CheckConstraint("erased_at IS NULL OR removed_at IS NOT NULL", name="erased_only_removed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    building: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str] = mapped_column(String(20), default="", server_default="")
    floor: Mapped[str] = mapped_column(String(10), default="", server_default="")
    room: Mapped[str] = mapped_column(String(20), default="", server_default="")
    location: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    kind: Mapped[str] = mapped_column(String(20), default="residence", server_default="residence")
    occupancy: Mapped[str] = mapped_column(String(20), default="owner", server_default="owner")
    members: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default="{}", nullable=False
    )
    phone: Mapped[str | None] = mapped_column(EncryptedString)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    # Out of the register (migration 0052): when it left (NULL: in it), the day it left as
    # said (Asia/Shanghai), why, a note, who removed it; when retention erased its phone, care
    # tags and note (GRIDWORK_RETAIN_REMOVED_HOUSEHOLDS_DAYS after `removed_at`). The note is
    # sealed (migration 0065): it may say why they left (an illness, a care home).
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removal_date: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(String(20))
    removal_note: Mapped[str | None] = mapped_column(EncryptedString)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    grid = relationship("Grid")

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


Index("ix_households_location", Household.location, postgresql_using="gist")
Index("ix_households_tags", Household.tags, postgresql_using="gin")
# What retention looks for: the removed households whose facts are not erased yet (0052).
Index(
    "ix_households_removed_to_erase",
    Household.removed_at,
    postgresql_where=Household.removed_at.is_not(None) & Household.erased_at.is_(None),
)
