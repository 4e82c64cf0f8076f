"""Idempotency keys: a client's retry of a create gets the first answer, not a second record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from api.crypto import EncryptedString
from api.db import Base


class IdempotencyKey(Base):
    """One `Idempotency-Key` a user sent with a create: what the request was, what it got."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # The role, community and district the request was made as (None: kept before 0066): a
    # replay to the account as another is refused its answer (api/idempotency.py).
    made_as: Mapped[str | None] = mapped_column(String(120))
    # The answer, once given (None: the request's effects are committed, its answer is not).
    status: Mapped[int | None] = mapped_column(SmallInteger)
    mimetype: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(EncryptedString)  # may hold phones: sealed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
