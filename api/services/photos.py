"""Visit photos: type sniffing, content hashing, and the storage interface (local disk for now)."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from api import errors
from api.models import Visit, VisitPhoto

# Magic bytes of the accepted image types. The client's Content-Type is not trusted.
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/webp")
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# Beyond any phone photo that fits the size limit; a small file claiming more is a bomb.
MAX_PIXELS = 50_000_000


def sniff_image_type(data: bytes) -> str | None:
    """The image type from the file's first bytes (JPEG, PNG, WebP), or None for anything else."""
    if data.startswith(_JPEG):
        return "image/jpeg"
    if data.startswith(_PNG):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def verify_image(data: bytes, content_type: str) -> tuple[int, int]:
    """Check that `data` really is an image of `content_type`; its (width, height).

    Magic bytes only say what a file claims to be. Pillow reads the header and checks the
    structure (PNG chunk CRCs; a JPEG is decoded at 1/8 scale, which finds truncated or
    garbage data in bounded memory). Nothing is decoded at full size.
    """
    from PIL import Image, UnidentifiedImageError

    kind = _PIL_FORMATS[content_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise errors.PayloadTooLarge(
                        f"The photo claims {width}x{height} pixels; the limit is "
                        f"{MAX_PIXELS:,} pixels.",
                        limit=MAX_PIXELS,
                    )
                if kind == "JPEG":
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                    image.load()
                else:
                    image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.PayloadTooLarge(
            f"The photo's pixel count is beyond {MAX_PIXELS:,}.", limit=MAX_PIXELS
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise errors.UnsupportedMediaType(
            f"The photo starts like {kind} but is not a readable {kind} image.",
            accepted=list(ACCEPTED_TYPES),
        ) from exc
    return width, height


class PhotoStorage(Protocol):
    """Where photo bytes live, addressed by their SHA-256 hex digest (content-addressed)."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`; storing the same key again is a no-op."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; KeyError when absent."""


class LocalStorage:
    """Photos as files under a directory, sharded by the first hex digits of their hash.

    Writes go to a temporary file that is fsynced and renamed into place, so a crash never
    leaves a half-written photo under its final name.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None


def build_storage(config: dict) -> PhotoStorage:
    """The storage the settings name (PHOTO_STORAGE); only "local" exists so far."""
    kind = config.get("PHOTO_STORAGE", "local")
    if kind == "local":
        return LocalStorage(config["PHOTO_DIR"])
    raise ValueError(f"unknown PHOTO_STORAGE {kind!r}; expected 'local'")


def attach_photo(
    session: Session,
    storage: PhotoStorage,
    visit: Visit,
    data: bytes,
    *,
    uploader_id: int,
    max_bytes: int,
    claimed_sha256: str | None = None,
) -> tuple[VisitPhoto, bool]:
    """Check, store and attach a photo; (the photo, True if it was already attached)."""
    if not data:
        raise errors.Unprocessable("The photo is empty.", errors={"file": ["Empty file."]})
    if len(data) > max_bytes:
        raise errors.PayloadTooLarge(
            f"The photo is {len(data)} bytes; the limit is {max_bytes} bytes.", limit=max_bytes
        )
    content_type = sniff_image_type(data)
    if content_type is None:
        raise errors.UnsupportedMediaType(
            "The photo must be a JPEG, PNG or WebP image.", accepted=list(ACCEPTED_TYPES)
        )
    verify_image(data, content_type)
    digest = hashlib.sha256(data).hexdigest()
    if claimed_sha256 is not None and claimed_sha256.lower() != digest:
        raise errors.Unprocessable(
            "The photo's SHA-256 does not match the sha256 sent with it; it was damaged on "
            "the way. Send it again.",
            errors={"sha256": [f"Expected {claimed_sha256}, received content hashes to {digest}."]},
        )
    # The bytes go to storage before the row: a row never points at missing bytes, and a file
    # left by a failed transaction is simply reused (same hash) by the retry.
    storage.put(digest, data)
    inserted = session.scalar(
        insert(VisitPhoto)
        .values(
            visit_id=visit.id,
            sha256=digest,
            content_type=content_type,
            size_bytes=len(data),
            uploaded_by_id=uploader_id,
        )
        .on_conflict_do_nothing(constraint="uq_visit_photos_visit_sha256")
        .returning(VisitPhoto.id)
    )
    photo = session.scalar(
        select(VisitPhoto).where(VisitPhoto.visit_id == visit.id, VisitPhoto.sha256 == digest)
    )
    return photo, inserted is None


def get_photo(session: Session, visit_id: uuid.UUID, photo_id: int) -> VisitPhoto:
    photo = session.scalar(
        select(VisitPhoto).where(VisitPhoto.id == photo_id, VisitPhoto.visit_id == visit_id)
    )
    if photo is None:
        raise errors.NotFound(f"Photo {photo_id} of visit {visit_id} not found.")
    return photo
