"""Notifications: the in-app inbox, written in the transaction of the change that causes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names as postgresql_ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from api.db import Base

NOTIFICATION_KINDS = (
    "task_dispatched",
    "task_reassigned",
    "task_deadline_warning",
    "task_escalated",
    # The first-contact deadline (响应时限) of a task not yet contacted: near, to whoever
    # answers for the task; passed, to the grid's overseers (`tasks.tick`).
    "task_contact_warning",
    "task_contact_overdue",
    "task_unassigned",
    "task_resolved",
    "task_transferred",
    "task_updated",
    "roster_published",
    "roster_changed",
    "roster_short",
    "shift_swap_requested",
    "shift_swap_cancelled",
    "shift_swap_rejected",
    "shift_swap_expired",
    "leave_requested",
    "leave_decided",
    "leave_cancelled",
    "leave_shortened",
    "report_ready",
    # One of the user's devices was retired by the push worker as unreachable: nothing goes to
    # it any more (`devices.tell_retired`).
    "device_retired",
    # One of the user's devices, getting their pushes, was registered by another account and
    # passed to it (`devices.tell_moved`).
    "device_moved",
    # A visit found a household of the register gone (outcome moved_out): those who keep the
    # register are asked to take it out (`household_removal.suggest_removals`).
    "household_moved_out",
)
# Notices whose body is a task's title: free text typed from a 12345 call or at the window,
# which may name a resident and their circumstances (push.Message.personal).
# A household's address, with what a visit found there, too.
PERSONAL_KINDS = frozenset(
    kind for kind in NOTIFICATION_KINDS if kind.startswith("task_") or kind == "household_moved_out"
)


class XID8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id (`xid8`); compared in SQL, never read into Python."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "xid8"


# Reflection (alembic check) knows the type by name.
postgresql_ischema_names["xid8"] = XID8


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Small string map for the app (task_id, week, ...); also sent as the push data payload.
    data: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Updates to the same subject (e.g. "task:42") replace each other on the phone.
    collapse_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The writing transaction (`pg_current_xact_id()`): the inbox's cursor follows commit order,
    # which `created_at` (the transaction's start) does not. NULL for rows older than 0021.
    xid: Mapped[str | None] = mapped_column(
        XID8, server_default=func.pg_current_xact_id(), deferred=True
    )


Index("ix_notifications_user_created", Notification.user_id, Notification.created_at)
Index("ix_notifications_user_id_xid", Notification.user_id, Notification.xid)
# Retention deletes read notifications some months after they were read (migration 0033).
Index(
    "ix_notifications_read_at",
    Notification.read_at,
    postgresql_where=Notification.read_at.is_not(None),
)
