"""A-post / B-post rosters: a community's week of shifts, and workers' leave."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base

ROSTER_STATUSES = ("draft", "published")
POSTS = ("A", "B")
LEAVE_STATUSES = ("requested", "approved", "rejected", "cancelled")
SWAP_STATUSES = ("requested", "accepted", "approved", "rejected", "cancelled", "expired")


class Roster(Base):
    """One community's ISO week ("2026-W48"); drafts are edited, then published."""

    __tablename__ = "rosters"
    __table_args__ = (
        UniqueConstraint("community_code", "week", name="uq_rosters_community_week"),
        CheckConstraint("week ~ '^[0-9]{4}-W[0-9]{2}$'", name="week_format"),
        CheckConstraint("status IN ('draft', 'published')", name="status_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"))
    week: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default="draft", server_default="draft")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The week's pairs (a trio when the count is odd), as lists of worker ids.
    pairs: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    # What a short-staffed week's generation could not meet (`rosters.shortfall_dict` each),
    # and the rule as the solver names it, with its details (each day, grid or worker
    # concerned); [], null and [] for a roster that meets every rule.
    shortfalls: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    shortfall_rule: Mapped[str | None] = mapped_column(Text)
    shortfall_details: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    # The B-post days the generation asked of each grid, counted from `grid_minimum_from` (a
    # week generated midweek: the days left's share of the settings' minimum), so an edit
    # that leaves a grid below it is found; null for a roster generated before 0053.
    grid_minimum: Mapped[int | None] = mapped_column(Integer)
    grid_minimum_from: Mapped[date | None] = mapped_column(Date)
    # The codes of the grids that generation asked it of (0054): a grid taken into service
    # since is not a gap of a week that never rostered it; null before 0054 (the grids in
    # service when read).
    grid_minimum_grids: Mapped[list | None] = mapped_column(JSONB)

    shifts: Mapped[list[Shift]] = relationship(
        back_populates="roster", cascade="all, delete-orphan", order_by="Shift.date"
    )


class Shift(Base):
    """One worker's post on one day: A (the hall window) or B (door to door in a grid)."""

    __tablename__ = "shifts"
    __table_args__ = (
        # Nobody holds two posts at once.
        # Deferrable (checked at the end of each statement), so one UPDATE can swap two workers.
        UniqueConstraint(
            "worker_id",
            "date",
            name="uq_shifts_worker_date",
            deferrable=True,
            initially="IMMEDIATE",
        ),
        CheckConstraint("post IN ('A', 'B')", name="post_valid"),
        CheckConstraint("(post = 'B') = (grid_id IS NOT NULL)", name="b_post_has_grid"),
        CheckConstraint("(slot_start IS NULL) = (slot_end IS NULL)", name="slot_whole"),
        CheckConstraint("slot_start IS NULL OR post = 'A'", name="slot_a_post_only"),
        CheckConstraint("slot_start < slot_end", name="slot_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    post: Mapped[str] = mapped_column(String(1))
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    # Set when the worker covers the grid of a colleague who is away.
    relief_for_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # An A-post's time slot (local hours, Asia/Shanghai) in a hall with staggered hours (the
    # settings' `a_slots`, migration 0058): the shift's own hours, kept with the shift through
    # swaps and later changes of the settings. Null: the community's `a_hours` (no slots set),
    # and always for a B-post.
    slot_start: Mapped[time | None] = mapped_column(Time)
    slot_end: Mapped[time | None] = mapped_column(Time)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    roster: Mapped[Roster] = relationship(back_populates="shifts")
    worker = relationship("User", foreign_keys=[worker_id])
    grid = relationship("Grid")


Index("ix_shifts_roster_date", Shift.roster_id, Shift.date)
Index("ix_shifts_grid_date", Shift.grid_id, Shift.date)


class Leave(Base):
    """Leave or absence over [start_date, end_date], requested by a worker, decided by a leader."""

    __tablename__ = "leaves"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="period_order"),
        CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'cancelled')", name="status_valid"
        ),
        CheckConstraint(
            "approved_end_date IS NULL OR approved_end_date > end_date",
            name="approved_end_after_end",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The decider's words on the decision, '' when none (migration 0046).
    decision_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(10), default="requested", server_default="requested")
    # The decision (approve / reject) only: a cancel or an early end has columns of its own.
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who cancelled it and when (migration 0027; rows cancelled before it moved their decided_*
    # here, the cancel having overwritten them).
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An approved leave ended early: end_date is then the new last day (everything reading the
    # leave's days follows it) and approved_end_date the last day as approved.
    shortened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    shortened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_end_date: Mapped[date | None] = mapped_column(Date)

    worker = relationship("User", foreign_keys=[worker_id])


class ShiftChange(Base):
    """One change to a published roster's shift: who made it, when, and the shift before / after."""

    __tablename__ = "shift_changes"
    __table_args__ = (CheckConstraint("action IN ('edit', 'swap')", name="action_valid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(10))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    before: Mapped[dict] = mapped_column(JSONB)
    after: Mapped[dict] = mapped_column(JSONB)


class ShiftSwap(Base):
    """A request to exchange the workers of two shifts; the other worker or a leader decides."""

    __tablename__ = "shift_swaps"
    __table_args__ = (
        CheckConstraint(
            "status IN ('requested', 'accepted', 'approved', 'rejected', 'cancelled', 'expired')",
            name="status_valid",
        ),
        CheckConstraint("shift_id <> with_shift_id", name="two_shifts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), index=True)
    with_shift_id: Mapped[int] = mapped_column(
        ForeignKey("shifts.id", ondelete="CASCADE"), index=True
    )
    # The workers at request time: the swap is stale once either shift changes hands.
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    other_worker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="requested", server_default="requested")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# The open swaps, for the tick that expires them (a few among many decided ones).
Index("ix_shift_swaps_open", ShiftSwap.id, postgresql_where=ShiftSwap.status == "requested")


class CalendarFeed(Base):
    """A worker's iCalendar feed: the version signed into its token; bumping it revokes the URL."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
