"""Photo files at rest: sealing the plaintext ones and re-sealing old keys' (`security encrypt`).

`seal_photos` brings every photo file under the current data key, as `encryption.seal_all`
does the columns:

1. each plaintext file (stored before photos were sealed, named by its SHA-256) is sealed
   under its new name, written atomically and made durable, and only then removed;
2. each sealed file whose header names another key is opened and sealed again by the current
   key, replacing it atomically.

Each batch holds, in one transaction, the photo lock of each image it touches (class 5, the
lock an upload and retention's deletion take: `photos.attach_photo`,
`retention.delete_photo_files`), so a file retention deletes meanwhile is not written back, and
an upload does not race the switch. A crash loses nothing: before a switch the old file is
whole, after it the new one is; a plaintext file and its sealed copy both present (killed
between the two) is sealed again from the plaintext, which is checked against its name first. A
second run finds nothing to do.

A file that cannot be re-sealed (damaged, or sealed by a key this process lacks) is reported
and its key id kept in `still_used`: the rotation does not mark that key emptied
(`encryption.forget_other_keys`), and `check-key` keeps saying it is needed.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from api import crypto
from api.services.photos import PHOTO_LOCK_CLASS, PhotoDamaged, SealedStorage

Begin = Callable[[], AbstractContextManager[Session]]

BATCH = 100  # files per transaction (each holds its images' photo locks until it commits)


@dataclass
class SealingResult:
    """What a run did, and what it could not do."""

    sealed: int = 0  # plaintext files sealed by the current key (their plaintext removed)
    resealed: int = 0  # files sealed by another key, sealed again by the current one
    current: int = 0  # files found sealed by the current key already
    damaged: list[str] = field(default_factory=list)  # images (SHA-256) whose file fails
    unopened: Counter = field(default_factory=Counter)  # key id -> files this process can't open
    still_used: set[str] = field(default_factory=set)  # other key ids files are sealed by

    @property
    def files(self) -> int:
        """Every photo file the run saw."""
        return (
            self.sealed + self.resealed + self.current + len(self.damaged) + self.unopened.total()
        )


def _batched(items: Iterable, size: int) -> Iterator[list]:
    items = iter(items)
    while batch := list(itertools.islice(items, size)):
        yield batch


def _lock(session: Session, keys: Iterable[str]) -> None:
    """The photo locks of these images, in one order (two runs never deadlock)."""
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(:lock, hashtext(key)) "
            "FROM unnest(CAST(:keys AS text[])) AS k(key) ORDER BY key"
        ),
        {"lock": PHOTO_LOCK_CLASS, "keys": sorted(keys)},
    )


def key_ids(storage: SealedStorage) -> Counter:
    """How many photo files each key id seals ('' for a header that names none, 'plaintext'
    for a file from before sealing), reading each file's header only (`check-key`)."""
    found: Counter = Counter()
    for _ in storage.plain.iter_keys():
        found["plaintext"] += 1
    for name in storage.sealed.iter_keys():
        try:
            head = storage.sealed.head(name, crypto.BYTES_HEADER)
        except KeyError:
            continue  # deleted meanwhile
        found[crypto.sealed_bytes_key_id(head) or ""] += 1
    return found


def seal_photos(begin: Begin, storage: SealedStorage, *, batch: int = BATCH) -> SealingResult:
    """Seal the plaintext photo files and re-seal those of other keys (see the module)."""
    result = SealingResult()
    for keys in _batched(storage.plain.iter_keys(), batch):
        with begin() as session:
            _lock(session, keys)
            for key in keys:
                _seal_plaintext(storage, key, result)
    current = crypto.current_key_id()
    for names in _batched(_other_keys(storage, current, result), batch):
        keys = {storage.key_of(name): name for name in names}
        with begin() as session:
            _lock(session, keys)
            for key, name in keys.items():
                _reseal(storage, key, name, current, result)
    return result


def _seal_plaintext(storage: SealedStorage, key: str, result: SealingResult) -> None:
    try:
        data = storage.plain.get(key)
    except KeyError:
        return  # deleted by retention meanwhile
    if hashlib.sha256(data).hexdigest() != key:
        result.damaged.append(key)  # left as it is: what it should hold is unknown
        return
    # Written whatever is there: a sealed copy left by a run killed before the removal below
    # is replaced by one sealed from the checked plaintext.
    storage.sealed.write(storage.name(key), crypto.seal_bytes(data))
    storage.plain.delete(key)
    result.sealed += 1


def _other_keys(storage: SealedStorage, current: str, result: SealingResult) -> Iterator[str]:
    """The names of the sealed files whose header names another key than `current`."""
    for name in storage.sealed.iter_keys():
        try:
            head = storage.sealed.head(name, crypto.BYTES_HEADER)
        except KeyError:
            continue
        if crypto.sealed_bytes_key_id(head) == current:
            result.current += 1
        else:
            yield name


def _reseal(
    storage: SealedStorage, key: str, name: str, current: str, result: SealingResult
) -> None:
    try:
        stored = storage.sealed.get(name)
    except KeyError:
        return  # deleted by retention meanwhile
    kid = crypto.sealed_bytes_key_id(stored)
    if kid == current:  # an upload replaced it meanwhile (a file of a retired key)
        result.current += 1
        return
    try:
        data = storage.open_sealed(key, stored)
    except PhotoDamaged:
        result.damaged.append(key)
        if kid:
            result.still_used.add(kid)  # kept: a repaired file may need it yet
        return
    except crypto.DataKeyError:
        result.unopened[kid] += 1
        result.still_used.add(kid)
        return
    storage.sealed.write(name, crypto.seal_bytes(data))
    result.resealed += 1
