"""Weekly reports: stored runs and files, household history, and the visit aggregates they read.

The aggregate tables (`report_*`) are maintained by database triggers on `visits` and
`households` (migration 0005), so every path that writes visits or moves households keeps them
exact; the report reads O(grids × weeks) rows from them instead of scanning raw visits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base

REPORT_LEVELS = ("grids", "community", "street", "district")
REPORT_FORMATS = ("json", "csv", "xlsx", "pdf")


class Report(Base):
    """One weekly coverage report of one scope (a community, street or district), stored."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("week", "level", "code", name="uq_reports_week_level_code"),
        CheckConstraint("week ~ '^[0-9]{4}-W[0-9]{2}$'", name="week_format"),
        CheckConstraint(
            "level IN (" + ", ".join(repr(v) for v in REPORT_LEVELS) + ")", name="level_valid"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8))
    level: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # Summary figures for the listing, so it need not open the files.
    households: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visited: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The visits of its week its figures counted (`totals.visits`), read with them: what its
    # `late_visits` is measured from. NULL: stored before migration 0062 (late by arrival time).
    visits_seen: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    files: Mapped[list[ReportFile]] = relationship(
        back_populates="report", order_by="ReportFile.format", lazy="selectin"
    )


class ReportFile(Base):
    """One rendering of a stored report (json, csv, xlsx, pdf)."""

    __tablename__ = "report_files"
    __table_args__ = (
        CheckConstraint(
            "format IN (" + ", ".join(repr(v) for v in REPORT_FORMATS) + ")", name="format_valid"
        ),
    )

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[str] = mapped_column(String(5), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    report: Mapped[Report] = relationship(back_populates="files")


Index("ix_reports_code_week", Report.code, Report.week)


class ReportFailure(Base):
    """A community's report for a week that failed to be stored, and when to try it again.

    One row per (week, community) while it keeps failing: how many attempts, when the first and
    the last failed, the last error's class (never its message, which may quote personal data)
    and the next attempt (1 min after the first failure, doubling, at most 1 h). Deleted when
    the report is stored (0018).
    """

    __tablename__ = "report_failures"

    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    community_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("communities.code", ondelete="CASCADE"), primary_key=True
    )
    attempts: Mapped[int] = mapped_column(Integer)
    error_class: Mapped[str] = mapped_column(String(100))
    first_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HouseholdHistory(Base):
    """Which grid (and kind, tags) a household belonged to over [valid_from, valid_to)."""

    __tablename__ = "household_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(Integer)
    grid_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The grid the household was in before this row, when the row opened by a move (NULL for
    # a registration or a change of tags or kind): the report finds households moved in by it.
    from_grid_id: Mapped[int | None] = mapped_column(Integer)


Index("ix_household_history_household", HouseholdHistory.household_id, HouseholdHistory.valid_from)
Index("ix_household_history_grid", HouseholdHistory.grid_id, HouseholdHistory.valid_from)
# The report finds the households whose grid changed: rows closed (left, retagged) and rows
# opened by a move, by grid (migration 0041).
Index(
    "ix_household_history_grid_closed",
    HouseholdHistory.grid_id,
    HouseholdHistory.valid_to,
    postgresql_where=HouseholdHistory.valid_to.is_not(None),
)
Index(
    "ix_household_history_grid_moved_in",
    HouseholdHistory.grid_id,
    HouseholdHistory.valid_from,
    postgresql_where=HouseholdHistory.from_grid_id.is_not(None),
)


class ReportHouseholdDelta(Base):
    """+1 / -1 per household entering / leaving a grid in a week, by kind and care tag.

    `tag` '' counts every household; a running sum over weeks ≤ W is the count as of week W.
    """

    __tablename__ = "report_household_deltas"

    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    tag: Mapped[str] = mapped_column(String(30), primary_key=True)
    delta: Mapped[int] = mapped_column(Integer)


class ReportHouseholdWeek(Base):
    """Visits of one household in one grid in one ISO week (`met`: someone was found);
    `counted`: the care tags it has been counted done under that week, each once (0016)."""

    __tablename__ = "report_household_weeks"

    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    household_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visits: Mapped[int] = mapped_column(Integer)
    met: Mapped[int] = mapped_column(Integer)
    counted: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")


class ReportGridWeek(Base):
    """One grid's week: visit counts by grade, distinct households visited (this week, and
    this or last week), relief visits."""

    __tablename__ = "report_grid_weeks"

    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, server_default="0")
    met: Mapped[int] = mapped_column(Integer, server_default="0")
    visited: Mapped[int] = mapped_column(Integer, server_default="0")
    visited_2w: Mapped[int] = mapped_column(Integer, server_default="0")
    grade_ok: Mapped[int] = mapped_column(Integer, server_default="0")
    grade_doubtful: Mapped[int] = mapped_column(Integer, server_default="0")
    grade_suspect: Mapped[int] = mapped_column(Integer, server_default="0")
    relief_visits: Mapped[int] = mapped_column(Integer, server_default="0")
    unregistered_visits: Mapped[int] = mapped_column(Integer, server_default="0")


class ReportGridWeekTag(Base):
    """Must-visit households of a care tag that got their cadence's visits in the week."""

    __tablename__ = "report_grid_week_tags"

    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    tag: Mapped[str] = mapped_column(String(30), primary_key=True)
    done: Mapped[int] = mapped_column(Integer, server_default="0")


class ReportWorkerWeek(Base):
    """One worker's visits in one grid in one week, and distinct households found at home."""

    __tablename__ = "report_worker_weeks"

    worker_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, server_default="0")
    households: Mapped[int] = mapped_column(Integer, server_default="0")


Index("ix_report_worker_weeks_week_grid", ReportWorkerWeek.week, ReportWorkerWeek.grid_id)


class ReportWorkerHousehold(Base):
    """Key table: a (worker, week, grid, household) pair already counted in report_worker_weeks."""

    __tablename__ = "report_worker_households"

    worker_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(Integer, primary_key=True)
