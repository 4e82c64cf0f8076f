"""What every photo row holds, whatever it is of (a visit, a task): its bytes' hash and kind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column


class PhotoColumns:
    """The columns of a photo: the bytes live in photo storage under their SHA-256, shared by
    every photo of the same image, visit's or task's (`api/services/photos.py`)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When the stored bytes were known to carry no metadata (stored by an upload, which strips,
    # or found clean or stripped by `gridwork photos scrub`); NULL: not checked yet (visit
    # photos stored before migration 0025). The scrub reads only the photos not marked.
    stripped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
