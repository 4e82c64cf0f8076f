"""The data keys that have sealed data here (ids and canaries), and the photo files' name key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, LargeBinary, SmallInteger, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base


class DataKey(Base):
    """One key that sealed data here: read at start-up to refuse a wrong GRIDWORK_DATA_KEY.

    Written by the first value a process seals (api/keyguard.py) and by migration 0022 from
    the data it found; retired, then emptied, by `gridwork security encrypt` as it re-seals.
    """

    __tablename__ = "data_keys"

    # The first 8 hex digits of the key's SHA-256 (api.crypto.key_id), as in `v1:<kid>:...`.
    kid: Mapped[str] = mapped_column(String(8), primary_key=True)
    # crypto.CANARY sealed by this key: opening it proves a configured key is this one. None
    # when migration 0022 found the key id in the data without the key configured.
    canary: Mapped[str | None] = mapped_column(Text)
    first_sealed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Set by a rotation before it re-seals (migration 0024): no process may seal with this key
    # ever again.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the rotation re-sealed every value under the new key: no data needs this one.
    emptied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PhotoStorageKey(Base):
    """The one key that names sealed photo files (migration 0036; `api.services.photos`).

    A file's name is the image's SHA-256 enciphered with it, so the disk alone does not say
    which image a file holds. Made once, never rotated: it is no data key (the files' contents
    are sealed by those), and a reader of this table reads the hashes in `visit_photos` anyway.
    """

    __tablename__ = "photo_storage_key"
    __table_args__ = (
        CheckConstraint("id = 1", name="ck_photo_storage_key_one"),
        CheckConstraint("length(name_key) = 32", name="ck_photo_storage_key_length"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    name_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
