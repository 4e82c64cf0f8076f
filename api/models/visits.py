"""Door-to-door visits: client-made UUIDs, the WGS-84 point, outcome, and location evidence."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.crypto import EncryptedJSON, EncryptedString
from api.db import Base
from api.models.photos import PhotoColumns

OUTCOMES = ("met", "nobody_home", "refused", "moved_out", "vacant")
DATUMS = ("wgs84", "gcj02", "bd09")
GRADES = ("ok", "doubtful", "suspect")
# Which list a visit's follow-up goes on (需求清单 / 问题清单): a resident's need (a wish: lamps,
# a ramp, a service) or a problem (something broken or wrong to fix). A follow-up sent with no
# kind (a client from before the lists) is a need: the default, `FOLLOW_UP_DEFAULT`.
FOLLOW_UP_KINDS = ("need", "problem")
FOLLOW_UP_DEFAULT = "need"
# A task's urgencies, which set its deadline (its own and a visit's follow-up's: here, as the
# tasks' module imports this one).
URGENCIES = ("danger", "utility", "general", "complex")

# Precision of a worker's position for roles without `tracks` (api/privacy.py), and of every
# visit's once retention has coarsened it: 3 decimals, about 100 m.
TRACK_DECIMALS = 3
# The evidence numbers a role without `tracks` is shown: times only. The distances (to the
# household, the grid, the previous and next visits, to 0.1 m), the speeds and the phone's
# accuracy would let it trilaterate the worker's exact position from the household points it
# sees in full. A list of what may be shown, not of what may not: a number added to the
# evidence later is withheld until someone decides it is harmless. Retention keeps only these
# of a visit once its period has passed (api/services/retention.py).
UNTRACKED_DETAILS = ("delay_s", "seconds_to_")


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('met', 'nobody_home', 'refused', 'moved_out', 'vacant')",
            name="outcome_valid",
        ),
        CheckConstraint("datum IN ('wgs84', 'gcj02', 'bd09')", name="datum_valid"),
        CheckConstraint("grade IN ('ok', 'doubtful', 'suspect')", name="grade_valid"),
        CheckConstraint("week ~ '^[0-9]{4}-W[0-9]{2}$'", name="week_format"),
        # A kind qualifies a follow-up: none without one (migration 0059).
        CheckConstraint(
            "follow_up_kind IS NULL OR (follow_up AND follow_up_kind IN ('need', 'problem'))",
            name="follow_up_kind_valid",
        ),
        # So do a title and an urgency, one of a task's (migration 0061). NULL with a follow-up:
        # one recorded before the urgencies, a general one (its task was made so).
        CheckConstraint("follow_up_title IS NULL OR follow_up", name="follow_up_title_valid"),
        CheckConstraint(
            f"follow_up_urgency IS NULL OR (follow_up AND follow_up_urgency IN {URGENCIES!r})",
            name="follow_up_urgency_valid",
        ),
    )

    # Made by the phone, so a replayed sync is recognised (idempotency key).
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    # The grid the visit counts for (the household's grid when it was visited).
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    # Premises not yet registered: the address as the worker typed it.
    premises: Mapped[dict | None] = mapped_column(JSONB)
    visited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    utc_offset_minutes: Mapped[int] = mapped_column(Integer)
    # ISO week of visited_at in Asia/Shanghai, e.g. "2026-W47": what reports group by.
    week: Mapped[str] = mapped_column(String(8))
    location: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    datum: Mapped[str] = mapped_column(String(5))
    raw_lon: Mapped[float] = mapped_column(Float)
    raw_lat: Mapped[float] = mapped_column(Float)
    provider: Mapped[str | None] = mapped_column(String(20))
    mock: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    outcome: Mapped[str] = mapped_column(String(12))
    # Encrypted at rest (what residents said, their health): see docs/security.md.
    notes: Mapped[str] = mapped_column(EncryptedString, default="", server_default="")
    observations: Mapped[dict] = mapped_column(EncryptedJSON, default=dict, server_default="{}")
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    follow_up_note: Mapped[str | None] = mapped_column(EncryptedString)
    # The list the follow-up goes on (FOLLOW_UP_KINDS); NULL without a follow-up.
    follow_up_kind: Mapped[str | None] = mapped_column(String(7))
    # What the follow-up is about, in one plain line ("3号楼楼道灯不亮"): its task's title, shown
    # in the lists as a task's is (not sealed: the note says what the resident said). NULL: none
    # given (the task is titled `VISIT_FOLLOW_UP_TITLE`), or no follow-up.
    follow_up_title: Mapped[str | None] = mapped_column(String(200))
    # Its task's urgency (URGENCIES), which sets the deadline; NULL without a follow-up, and for
    # a follow-up recorded before the urgencies (a general one: the answer says so).
    follow_up_urgency: Mapped[str | None] = mapped_column(String(10))
    # Set when the worker visited as the named reliever of another worker's grid.
    relief: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    grade: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    evidence: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # When retention coarsened its position to ~100 m and dropped the measurements that would
    # give it back (api/services/retention.py); NULL: the precise track, within its period.
    coarsened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    worker = relationship("User")
    household = relationship("Household")
    grid = relationship("Grid")
    photos: Mapped[list[VisitPhoto]] = relationship(order_by="VisitPhoto.id", viewonly=True)


# Coverage (distinct households visited per grid and week) as an index-only scan.
Index("ix_visits_grid_week_household", Visit.grid_id, Visit.week, Visit.household_id)
Index("ix_visits_household_visited", Visit.household_id, Visit.visited_at)
Index("ix_visits_worker_visited", Visit.worker_id, Visit.visited_at)
Index("ix_visits_location", Visit.location, postgresql_using="gist")
# One week inside one box (the visits tile): needs btree_gist for the week (migration 0011).
Index("ix_visits_week_location", Visit.week, Visit.location, postgresql_using="gist")
# Retention walks the visits still precise, oldest first (migration 0033).
Index(
    "ix_visits_precise_visited",
    Visit.visited_at,
    postgresql_where=Visit.coarsened_at.is_(None),
)


class VisitPhoto(PhotoColumns, Base):
    """A photo attached to a visit; the bytes live in photo storage under their SHA-256."""

    __tablename__ = "visit_photos"
    __table_args__ = (
        # The same picture sent twice to one visit is one attachment.
        UniqueConstraint("visit_id", "sha256", name="uq_visit_photos_visit_sha256"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_format"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )
    # What `photos.attach_photo` needs to know of it: the column naming what it is of, the
    # constraint that keeps one attachment per image, and the most one holds.
    OWNER = "visit_id"
    UNIQUE = "uq_visit_photos_visit_sha256"
    MAX_PER_OWNER = 20

    visit_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("visits.id", ondelete="CASCADE")
    )


# The scrub walks the photos not marked clean, by id (after a first run: none).
Index(
    "ix_visit_photos_not_stripped", VisitPhoto.id, postgresql_where=VisitPhoto.stripped_at.is_(None)
)


class HouseholdLastVisit(Base):
    """Each household's latest visit, kept by statement triggers on visits (migrations 0011,
    0043): `last_visited_at` the latest that found someone (outcome other than `nobody_home`,
    as the weekly report counts a visit; null: attempts only), `last_attempt_at` the latest of
    any outcome. A row for every household with any visit.

    The map's household status reads it with one primary-key probe instead of probing the
    visits index once per household; past weeks fall back to the probe (api/services/tiles).
    """

    __tablename__ = "household_last_visits"

    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    last_visited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PhotoDeletion(Base):
    """The bytes of deleted photos, to delete from storage once the rows' deletion committed
    (migration 0049): retention queues each hash in the transaction that deletes its photos;
    the next transaction deletes the file under the hash's lock, if no photo points at it any
    more, and takes the hash off the queue (api/services/retention.py)."""

    __tablename__ = "photo_deletions"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
