"""Tasks from the hotline, the window, visits and rounds; their lifecycle as an event log."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.crypto import EncryptedJSON, EncryptedString
from api.db import Base
from api.models.photos import PhotoColumns
from api.models.visits import FOLLOW_UP_KINDS, URGENCIES

TASK_SOURCES = ("hotline", "window", "visit", "proactive", "leader")
HOTLINE_TYPES = ("consultation", "help", "complaint", "report", "suggestion")
# What a task is when no one says how urgent (a visit's follow-up sent with no urgency too).
URGENCY_DEFAULT = "general"
TASK_STATUSES = (
    "new",
    "dispatched",
    "accepted",
    "in_progress",
    "resolved",
    "callback",
    "closed",
    "returned",
    "escalated",
    "reopened",
    # The hotline re-dispatched (改派) the ticket to another community while this task was
    # open: it ends here, and the ticket lives on in the task `transferred_to_id`.
    "transferred",
)
# Still to be worked, by its assignee or the grid (a task's list, the tiles, scope).
OPEN_STATUSES = (
    "new",
    "dispatched",
    "accepted",
    "in_progress",
    "returned",
    "escalated",
    "reopened",
)
DONE_STATUSES = ("resolved", "callback", "closed")
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")
# The need and problem lists (需求清单 / 问题清单), as a visit's follow-up names them.
TASK_LISTS = FOLLOW_UP_KINDS


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_in("source", TASK_SOURCES), name="source_valid"),
        CheckConstraint(_in("urgency", URGENCIES), name="urgency_valid"),
        CheckConstraint(_in("status", TASK_STATUSES), name="status_valid"),
        CheckConstraint(
            "satisfaction IS NULL OR " + _in("satisfaction", SATISFACTION),
            name="satisfaction_valid",
        ),
        # A ticket's tasks form a chain: one holds it (the partial unique index below), and
        # at most one task was transferred from each task.
        CheckConstraint(
            f"list_kind IS NULL OR {_in('list_kind', TASK_LISTS)}", name="list_kind_valid"
        ),
        UniqueConstraint("transferred_from_id", name="uq_tasks_transferred_from_id"),
        UniqueConstraint("transferred_to_id", name="uq_tasks_transferred_to_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    # Encrypted at rest: the resident's own words and contact (see docs/security.md).
    description: Mapped[str] = mapped_column(EncryptedString, default="", server_default="")
    urgency: Mapped[str] = mapped_column(String(10), default="general", server_default="general")
    external_id: Mapped[str | None] = mapped_column(String(64))
    complainant: Mapped[dict | None] = mapped_column(EncryptedJSON)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("visits.id"), unique=True
    )
    location: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False)
    )
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    status: Mapped[str] = mapped_column(String(12), default="new", server_default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    first_contact_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The deadline a 12345 ticket came with (its 办理时限, `POST /tasks`' `due_at`), which the
    # city measures: kept by a reopening. NULL: the urgency set the deadline (migration 0040).
    ticket_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The first-contact deadline in the tick (migration 0060): when whoever answered for the
    # task, not yet contacted, was warned of it (cleared for a new holder, as `warned_at`), and
    # when it was found passed with no contact (its overseers told; once a task).
    contact_warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contact_overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    satisfaction: Mapped[str | None] = mapped_column(String(20))
    # The list it is on (TASK_LISTS): a visit's follow-up is a need or a problem (migration
    # 0059), a task opened with a `list` is on it; NULL: on no list. Answered and asked for
    # as `list`.
    list_kind: Mapped[str | None] = mapped_column(String(7))
    # A re-dispatched hotline ticket (改派): the task it came from, the task it went on to, and
    # when it went (set also when the task had been resolved, whose status then stays).
    transferred_from_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    transferred_to_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When retention erased the complainant's contact, the task being closed long enough
    # (api/services/retention.py); NULL: not yet.
    contact_erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    grid = relationship("Grid")
    household = relationship("Household")
    assignee = relationship("User", foreign_keys=[assignee_id])
    events: Mapped[list[TaskEvent]] = relationship(
        back_populates="task", order_by="TaskEvent.id", cascade="all, delete-orphan"
    )


Index("ix_tasks_grid_status", Task.grid_id, Task.status)
Index("ix_tasks_assignee_status", Task.assignee_id, Task.status)
Index("ix_tasks_created_by_id", Task.created_by_id)  # Scope.tasks: the tasks one opened
Index("ix_tasks_due", Task.due_at)
Index("ix_tasks_location", Task.location, postgresql_using="gist")
Index(
    "ix_tasks_household_no_location",
    Task.household_id,
    postgresql_where=Task.location.is_(None),
)
Index("ix_tasks_created_at", Task.created_at)
# The tick's first-contact warnings and notices: the tasks not contacted and not yet told of a
# missed first contact (migration 0060), less those passed on to another community uncontacted
# (else there for good: a task done was contacted, an open one is told in time).
Index(
    "ix_tasks_contact_owed",
    Task.first_contact_due_at,
    postgresql_where=Task.first_contact_at.is_(None)
    & Task.contact_overdue_at.is_(None)
    & (Task.status != "transferred"),
)
# The lists' figures per grid (GET /tasks/lists, the weekly report): the tasks on a list only.
Index(
    "ix_tasks_list_grid",
    Task.grid_id,
    Task.list_kind,
    postgresql_where=Task.list_kind.is_not(None),
)
# GET /tasks?external_id=: the 12345 bridge finding a ticket's task(s) by its number (0044).
Index(
    "ix_tasks_external_id",
    Task.external_id,
    postgresql_where=Task.external_id.is_not(None),
)
# Retention walks the closed tasks whose complainant is not erased yet, oldest closed first
# (migration 0035).
Index(
    "ix_tasks_closed_contact_kept",
    Task.closed_at,
    postgresql_where=(Task.status == "closed") & (Task.contact_erased_at.is_(None)),
)
# A hotline ticket is held by one task at a time, system-wide, however often it is sent: the
# one not passed on (`transferred_at`) to another community. Also how a ticket's holder is
# found. Another source's reference (a window's request number) is unique within its community
# only (0067): no index can say so (a task's community is its grid's), `create_task` does,
# under an advisory lock (`services.tasks._lock_reference`).
Index(
    "uq_tasks_source_external_id",
    Task.source,
    Task.external_id,
    unique=True,
    postgresql_where=(Task.source == "hotline") & Task.transferred_at.is_(None),
)


class TaskEvent(Base):
    """One step of a task: who did what, when, with a note, optionally where and with photos."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(EncryptedString, default="", server_default="")
    location: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False)
    )
    # Before photos were uploaded (migration 0055) a step took free strings said to be "photo
    # URLs or storage keys", which nothing checked or served: kept as they were sent, read-only.
    photo_refs: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    # When the server recorded the step (the history's order).
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When it was taken, as the phone that kept it with no signal said (`transition`'s
    # `taken_at`, bounded); NULL: sent with no time of its own (migration 0057).
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When retention coarsened `location` (the worker's position) to ~100 m
    # (api/services/retention.py); NULL: precise, or no position.
    coarsened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    task: Mapped[Task] = relationship(back_populates="events")
    # The photos sent with the step (uploaded to the task first: POST /tasks/{id}/photos).
    photos: Mapped[list[TaskPhoto]] = relationship(order_by="TaskPhoto.id", viewonly=True)


# Retention walks the events whose point is still precise, oldest first (migration 0033).
Index(
    "ix_task_events_precise_at",
    TaskEvent.at,
    postgresql_where=(TaskEvent.location.is_not(None)) & (TaskEvent.coarsened_at.is_(None)),
)


class TaskPhoto(PhotoColumns, Base):
    """A photo of a task (the problem, the repair), uploaded by who may take a step on it and
    then named by the step it documents (`event_id`); the bytes live in photo storage under
    their SHA-256, as a visit photo's do (the same image is stored once for both)."""

    __tablename__ = "task_photos"
    __table_args__ = (
        # The same picture sent twice to one task is one photo.
        UniqueConstraint("task_id", "sha256", name="uq_task_photos_task_sha256"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_format"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )
    OWNER = "task_id"  # see VisitPhoto
    UNIQUE = "uq_task_photos_task_sha256"
    MAX_PER_OWNER = 20  # as a visit: a repair's before and after, not a disk to fill

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # The step it was sent with; NULL: uploaded, not sent with a step (yet).
    event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("task_events.id", ondelete="CASCADE"), index=True
    )
