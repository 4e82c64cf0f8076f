"""Push delivery state: users' devices, the deliveries outbox, quiet hours and revoked tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base

DEVICE_PLATFORMS = ("android", "ios", "web")
DELIVERY_STATES = ("pending", "sent", "failed", "dead")
# How the push worker's retirement begins a device's deactivation_reason: a device whose sends
# failed for days with none going (`PushWorker`). Listed to its owner as retired.
RETIRED_REASON = "unreachable"
# How the push worker begins the reason of a device its push service answered is gone (FCM's
# UNREGISTERED or a bad token, a Web Push 404/410): listed to its owner as retired too.
UNREGISTERED_REASON = "unregistered"
RETIRED_REASONS = (RETIRED_REASON, UNREGISTERED_REASON)


class Device(Base):
    """A phone or browser of a user that push messages go to; many per user."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("platform IN ('android', 'ios', 'web')", name="platform_valid"),
        CheckConstraint(
            "(platform = 'web') = (subscription IS NOT NULL)", name="web_has_subscription"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(10))
    # The FCM registration token / installation ID, or the Web Push endpoint: the upsert key.
    token: Mapped[str] = mapped_column(Text, unique=True)
    subscription: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deactivation_reason: Mapped[str | None] = mapped_column(String(200))
    # The sign-in that registered it: revoking that session deactivates it (migration 0038).
    session_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("auth_sessions.id", ondelete="SET NULL")
    )
    # Its send history, written by the push worker's mark (migration 0048): when a push last
    # went, since when its sends have failed without one going (null while healthy), and how
    # many failed in a row. Only failures the device's side may be to blame for count (a
    # timeout, a connection refused, a 5xx: `DeliveryResult.transient`), not our quota or our
    # configuration, which every device gets alike.
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What its owner calls it ("华为 Mate 40", "Chrome · 安卓"), given by the app as it registers
    # (migration 0050): the list and the notice of its retirement name it.
    label: Mapped[str | None] = mapped_column(String(60))

    @property
    def retired(self) -> bool:
        """Deactivated by the push worker as unreachable, or as gone from its push service
        (not removed, nor signed out)."""
        return not self.active and (self.deactivation_reason or "").startswith(RETIRED_REASONS)

    @property
    def retired_at(self) -> datetime | None:
        return self.deactivated_at if self.retired else None

    @property
    def retired_reason(self) -> str | None:
        return self.deactivation_reason if self.retired else None


class Delivery(Base):
    """One notification to one device: the outbox row the push worker claims, sends and marks."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'failed', 'dead')", name="state_valid"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Claims whose lease passed with no result (the round died between send and mark).
    lost_rounds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Its notification's `urgent`, copied when queued (migration 0042): the claim takes due
    # urgent rows first, through `ix_deliveries_pending_due`, without a join.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # A claim is a lease: a worker that dies mid-batch leaves rows claimed until this passes.
    claim_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the current claim's round took the row again to send it (written before sending,
    # cleared by the next claim): a lease that passes without it was never sent, and is taken
    # over without counting an attempt or a lost round.
    sending_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    notification = relationship("Notification")
    device = relationship("Device")


# A revoked session's devices are found by it.
Index("ix_devices_session_id", Device.session_id, postgresql_where=Device.active)

# A platform's latest success, for the retirement's check that pushes still go elsewhere.
Index("ix_devices_platform_last_success", Device.platform, Device.last_success_at)

# The worker's claim reads pending rows in its order (urgent first, then by due time) and stops
# at its batch: no sort of the whole backlog.
Index(
    "ix_deliveries_pending_due",
    Delivery.urgent.desc(),
    Delivery.next_attempt_at,
    Delivery.id,
    postgresql_where=Delivery.state == "pending",
)


class NotificationSettings(Base):
    """A user's quiet hours (local time): pushes wait until they end, except urgent ones."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(
        String(40), default="Asia/Shanghai", server_default="Asia/Shanghai"
    )


class RevokedToken(Base):
    """A JWT revoked at logout, by its jti, kept until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
