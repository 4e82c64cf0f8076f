"""Stripping the metadata from visit photos stored before uploads were stripped (`photos scrub`)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import errors
from api.models import VisitPhoto
from api.services import audit
from api.services.photos import PhotoStorage, sniff_image_type, strip_metadata

PAGE = 500  # photo rows read per query
LISTED_BATCH = 10_000  # stored keys sent to the database per statement
AUDIT_PATH = "gridwork photos scrub"
_RETRIES = 3  # an upload of the same image to the same visit may race a switch

Begin = Callable[[], AbstractContextManager[Session]]


@dataclass
class ScrubResult:
    """What a run did (or, dry, would do)."""

    dry_run: bool = False
    scrubbed: int = 0  # photos now pointing at their bytes without metadata
    already_clean: int = 0  # photos whose stored bytes carry no metadata
    merged: list[tuple[int, int]] = field(default_factory=list)  # (photo removed, photo kept)
    removed_files: int = 0  # stored files no photo points at that carried metadata
    missing: list[int] = field(default_factory=list)  # photos whose bytes are not stored
    unreadable: list[int] = field(default_factory=list)  # photos the stripping refuses


class StorageFailed(Exception):
    """The storage failed mid-run (a full disk): what was done until then, and why it stopped.
    Nothing is lost; running again goes on from there."""

    def __init__(self, result: ScrubResult, cause: OSError) -> None:
        super().__init__(str(cause))
        self.result = result


def count_photos(begin: Begin) -> int:
    with begin() as session:
        return session.scalar(select(func.count(VisitPhoto.id)))


def scrub_photos(
    begin: Begin,
    storage: PhotoStorage,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ScrubResult:
    """Strip the metadata from every stored photo that still carries it, as uploads are.

    1. Photo by photo (by id): the stripped bytes are written under their hash, then the row
       points at them (its own transaction, with its audit entry). The photo keeps its id.
    2. Then every stored file no row points at that still carries metadata is removed: the
       old files of step 1, and any left by an interrupted run or a failed old upload.
    A crash loses nothing: before a switch its row still points at the old file, after it the
    old file waits for step 2 of this run or the next. A second run changes nothing. A clean
    file no row points at is kept (it may be an upload in flight: bytes go before the row).
    `begin` opens a transaction (`db.begin`).
    """
    result = ScrubResult(dry_run=dry_run)
    try:
        for page in _pages(begin):
            for photo_id, key, content_type in page:
                _scrub_photo(begin, storage, photo_id, key, content_type, result)
            if progress:
                progress(len(page))
        for key in _unreferenced(begin, storage.iter_keys()):
            _remove_if_not_clean(storage, key, result)
    except OSError as exc:
        raise StorageFailed(result, exc) from exc
    return result


def _pages(begin: Begin):
    """(id, key, content type) of every photo, a page at a time, by id."""
    after = 0
    while True:
        with begin() as session:
            page = session.execute(
                select(VisitPhoto.id, VisitPhoto.sha256, VisitPhoto.content_type)
                .where(VisitPhoto.id > after)
                .order_by(VisitPhoto.id)
                .limit(PAGE)
            ).all()
        if not page:
            return
        yield page
        after = page[-1][0]


def _scrub_photo(begin, storage, photo_id: int, key: str, content_type: str, result) -> None:
    try:
        data = storage.get(key)
    except KeyError:
        result.missing.append(photo_id)
        return
    try:
        clean = strip_metadata(data, content_type)  # the upload's own stripping
    except errors.UnsupportedMediaType:
        result.unreadable.append(photo_id)
        return
    if clean == data:  # a stripped file strips to itself
        result.already_clean += 1
        return
    if result.dry_run:
        result.scrubbed += 1
        return
    new_key = hashlib.sha256(clean).hexdigest()
    storage.put(new_key, clean)  # a no-op when that image is stored already
    for attempt in range(_RETRIES):
        try:
            with begin() as session:
                outcome = _switch(session, photo_id, key, new_key, len(clean))
            break
        except IntegrityError:
            # An upload of this very image to the same visit committed between our look and
            # our update: look again (it is now a twin to merge with).
            if attempt == _RETRIES - 1:
                raise
    if outcome is None:
        return
    if outcome == "switched":
        result.scrubbed += 1
        return
    removed, kept = outcome
    result.merged.append(outcome)
    if kept == photo_id:  # this photo was switched, its twin (attached later) removed
        result.scrubbed += 1


def _switch(session: Session, photo_id: int, key: str, new_key: str, size: int):
    """Point the photo at `new_key`: "switched", or (removed id, kept id) when its visit holds
    that image already (one attachment, the first: the one a second upload is told of), or
    None when the row changed meanwhile."""
    row = session.scalar(
        select(VisitPhoto)
        .where(VisitPhoto.id == photo_id, VisitPhoto.sha256 == key)
        .with_for_update()
    )
    if row is None:  # removed, or scrubbed by another run
        return None
    twin = session.scalar(
        select(VisitPhoto)
        .where(VisitPhoto.visit_id == row.visit_id, VisitPhoto.sha256 == new_key)
        .with_for_update()
    )
    outcome = "switched"
    if twin is not None:
        gone, kept = (row, twin) if twin.id < row.id else (twin, row)
        outcome = (gone.id, kept.id)
        session.delete(gone)
        session.flush()  # before the update takes its (visit, hash)
    if twin is None or row is kept:
        row.sha256, row.size_bytes = new_key, size
    audit.record(
        session,
        user_id=None,  # an operator at the console: who ran it is the host's to say
        action="update",
        resource="visit_photo",
        resource_ids=[*sorted({row.id, twin.id} if twin else {row.id}), row.visit_id],
        fields=("photo",),
        path=AUDIT_PATH,
    )
    return outcome


def _unreferenced(begin: Begin, keys: Iterable[str]) -> list[str]:
    """The stored keys no photo row points at: one scan of the rows (an anti-join), whatever
    the number of files (sha256 alone has no index: only (visit_id, sha256) does)."""
    keys = iter(keys)
    with begin() as session:
        session.execute(text("CREATE TEMPORARY TABLE scrub_listed (key text) ON COMMIT DROP"))
        while batch := list(itertools.islice(keys, LISTED_BATCH)):
            session.execute(
                text("INSERT INTO scrub_listed (key) SELECT unnest(CAST(:keys AS text[]))"),
                {"keys": batch},
            )
        found = session.scalars(
            text(
                "SELECT key FROM scrub_listed l WHERE NOT EXISTS "
                "(SELECT 1 FROM visit_photos p WHERE p.sha256 = l.key) ORDER BY key"
            )
        ).all()
        session.execute(text("DROP TABLE scrub_listed"))  # a savepoint (tests) never commits
    return list(found)


def _remove_if_not_clean(storage: PhotoStorage, key: str, result: ScrubResult) -> None:
    try:
        data = storage.get(key)
    except KeyError:
        return
    content_type = sniff_image_type(data)
    if content_type is None:
        return  # not a photo of ours
    try:
        if strip_metadata(data, content_type) == data:
            return  # clean: maybe an upload whose row is not committed yet
    except errors.UnsupportedMediaType:
        pass  # an upload never stores what the stripping refuses: an old one
    result.removed_files += 1
    if not result.dry_run:
        storage.delete(key)
