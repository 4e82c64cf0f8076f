"""Stripping the metadata from visit photos stored before uploads were stripped (`photos scrub`).

Task photos came after: each was stored stripped, marked so, and is never read here."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import errors
from api.models import VisitPhoto
from api.services import audit
from api.services.encryption import key_is_retired
from api.services.photos import (
    PHOTO_LOCK_CLASS,
    PhotoDamaged,
    PhotoStorage,
    sniff_image_type,
    strip_metadata,
)

PAGE = 500  # photo rows read per query
LISTED_BATCH = 10_000  # stored keys sent to the database per statement
AUDIT_PATH = "gridwork photos scrub"
_RETRIES = 3  # an upload of the same image to the same visit may race a switch

Begin = Callable[[], AbstractContextManager[Session]]


@dataclass
class ScrubResult:
    """What a run did (or, dry, would do)."""

    dry_run: bool = False
    unmarked: int = 0  # photos not marked clean when the run began: the ones it reads
    scrubbed: int = 0  # photos now pointing at their bytes without metadata
    already_clean: int = 0  # photos whose stored bytes carry no metadata (marked or found so)
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


def count_photos(begin: Begin, *, unmarked_only: bool = False) -> int:
    """How many photos are stored; `unmarked_only`: how many are not marked clean (the ones a
    run reads)."""
    query = select(func.count(VisitPhoto.id))
    if unmarked_only:
        query = query.where(VisitPhoto.stripped_at.is_(None))
    with begin() as session:
        return session.scalar(query)


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
    Only the photos not marked clean (`stripped_at` NULL) are read: an upload marks its photo
    (it stores it stripped), step 1 marks each photo it finds clean or strips. A dry run marks
    nothing.
    A crash loses nothing: before a switch its row still points at the old file, after it the
    old file waits for step 2 of this run or the next; a clean photo not marked yet is read
    again. A second run changes nothing and reads no photo's bytes. A clean file no row points
    at is kept (it may be an upload in flight: bytes go before the row), and read by each run.
    `begin` opens a transaction (`db.begin`).
    """
    result = ScrubResult(dry_run=dry_run)
    with begin() as session:
        counts = dict(
            session.execute(
                select(VisitPhoto.stripped_at.is_(None), func.count()).group_by(
                    VisitPhoto.stripped_at.is_(None)
                )
            ).all()
        )
    result.unmarked, result.already_clean = counts.get(True, 0), counts.get(False, 0)
    try:
        for page in _pages(begin):
            clean = [
                (photo_id, key)
                for photo_id, key, content_type in page
                if _scrub_photo(begin, storage, photo_id, key, content_type, result)
            ]
            if clean and not dry_run:
                _mark_clean(begin, clean)  # (a crash before: they are read again next time)
            if progress:
                progress(len(page))
        for key in _unreferenced(begin, storage.iter_keys()):
            _remove_if_not_clean(storage, key, result)
    except OSError as exc:
        raise StorageFailed(result, exc) from exc
    return result


def _pages(begin: Begin):
    """(id, key, content type) of every photo not marked clean, a page at a time, by id."""
    after = 0
    while True:
        with begin() as session:
            page = session.execute(
                select(VisitPhoto.id, VisitPhoto.sha256, VisitPhoto.content_type)
                .where(VisitPhoto.id > after, VisitPhoto.stripped_at.is_(None))
                .order_by(VisitPhoto.id)
                .limit(PAGE)
            ).all()
        if not page:
            return
        yield page
        after = page[-1][0]


def _mark_clean(begin: Begin, photos: list[tuple[int, str]]) -> None:
    """Mark the photos found clean, one statement per page. A row switched or marked since it
    was read (another run) is left as it is."""
    ids, keys = zip(*photos, strict=True)
    with begin() as session:
        session.execute(
            text(
                "UPDATE visit_photos p SET stripped_at = now() "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:keys AS text[])) AS c(id, key) "
                "WHERE p.id = c.id AND p.sha256 = c.key AND p.stripped_at IS NULL"
            ),
            {"ids": list(ids), "keys": list(keys)},
        )


def _scrub_photo(begin, storage, photo_id: int, key: str, content_type: str, result) -> bool:
    """Scrub one photo; whether its stored bytes were found clean (to be marked so)."""
    try:
        data = storage.get(key)
    except KeyError:
        result.missing.append(photo_id)
        return False
    except PhotoDamaged:  # its sealed file fails its check: nothing to strip
        result.unreadable.append(photo_id)
        return False
    try:
        clean = strip_metadata(data, content_type)  # the upload's own stripping
    except errors.UnsupportedMediaType:
        result.unreadable.append(photo_id)
        return False
    if clean == data:  # a stripped file strips to itself
        result.already_clean += 1
        return True
    if result.dry_run:
        result.scrubbed += 1
        return False
    new_key = hashlib.sha256(clean).hexdigest()
    for attempt in range(_RETRIES):
        try:
            with begin() as session:
                # A file of the stripped image sealed by a key a rotation retired (a process
                # on the old key left it) is sealed again, as an upload does: kept, it would
                # go with the old key.
                stale = partial(key_is_retired, session.connection())
                outcome = _switch(
                    session,
                    photo_id,
                    key,
                    new_key,
                    len(clean),
                    partial(storage.put, new_key, clean, stale=stale),
                )
            break
        except IntegrityError:
            # An upload of this very image to the same visit committed between our look and
            # our update: look again (it is now a twin to merge with).
            if attempt == _RETRIES - 1:
                raise
    if outcome is None:
        return False
    if outcome == "switched":
        result.scrubbed += 1
        return False
    removed, kept = outcome
    result.merged.append(outcome)
    if kept == photo_id:  # this photo was switched, its twin (attached later) removed
        result.scrubbed += 1
    return False


def _switch(
    session: Session, photo_id: int, key: str, new_key: str, size: int, store: Callable[[], None]
):
    """Point the photo at `new_key`, its bytes stored by `store`: "switched", or (removed id,
    kept id) when its visit holds that image already (one attachment, the first: the one a
    second upload is told of), or None when the row changed meanwhile.

    The bytes are stored under the lock retention deletes unused bytes by (as an upload
    stores its own), held until the photo points at them: stored before, they could go (a
    twin photo of the same image purged) before the switch committed. The rows are locked
    first, the bytes' lock then: retention deletes rows, then takes the bytes' locks, and the
    other order deadlocked with it."""
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
    session.execute(
        text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key))"),
        {"lock": PHOTO_LOCK_CLASS, "key": new_key},
    )
    store()  # a no-op when that image is stored already
    outcome, kept = "switched", row
    if twin is not None:
        gone, kept = (row, twin) if twin.id < row.id else (twin, row)
        outcome = (gone.id, kept.id)
        session.delete(gone)
        session.flush()  # before the update takes its (visit, hash)
    if twin is None or row is kept:
        row.sha256, row.size_bytes = new_key, size
    kept.stripped_at = kept.stripped_at or func.now()  # its bytes are now the stripped ones
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
    """The stored keys no photo row (of a visit or a task) points at: one scan of the rows (an
    anti-join), whatever the number of files (sha256 alone has no index: only (visit_id,
    sha256) and (task_id, sha256) do)."""
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
                "(SELECT 1 FROM visit_photos p WHERE p.sha256 = l.key) AND NOT EXISTS "
                "(SELECT 1 FROM task_photos p WHERE p.sha256 = l.key) ORDER BY key"
            )
        ).all()
        session.execute(text("DROP TABLE scrub_listed"))  # a savepoint (tests) never commits
    return list(found)


def _remove_if_not_clean(storage: PhotoStorage, key: str, result: ScrubResult) -> None:
    try:
        data = storage.get(key)
    except (KeyError, PhotoDamaged):
        return  # gone, or cannot be judged: kept
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
