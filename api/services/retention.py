"""Retention: personal information kept no longer than the work needs (PIPL), a batch a run.

What goes, and when (the defaults; GRIDWORK_RETAIN_* set them, docs/security.md says why):

- a visit's precise track after 90 days: its point (and the raw point as the phone sent it)
  rounded to 3 decimals (~100 m, what a district viewer is shown), the phone's accuracy and
  location provider dropped, and of its evidence details only the times kept (the distances
  and speeds would give the point back from the household's). The visit itself stays —
  household, grid, worker, week, outcome, grade and reasons, notes — as the evidence the
  reports count, so no report changes: the weekly aggregates are kept by triggers on INSERT
  only, and a rebuild (`gridwork report verify`) reads none of what is coarsened. A visit's
  follow-up task carries the worker's point too: it is coarsened with its visit.
- a photo after 180 days: the row, and its bytes unless another photo (of a younger visit)
  has the same bytes, once the rows' deletion is committed (`delete_photo_files`). Photos
  are not counted by any report. A photo whose visit's follow-up task is still open is kept
  until that task is closed (or passed on). A task's photos (the problem, the repair) alike:
  180 days after they were taken, never while the task is not closed (or passed on), then due
  at once. With the defaults they are so gone before its complainant's contact (180 days after
  the close): the photos are not the contact, and need no erasing of their own.
- a notification 90 days after it was read, an unread one after 365 days, with its
  deliveries; never one with a delivery still pending.
- a finished delivery (sent, failed, dead) after 30 days: the device it went to, the push
  service's id and error are operational records, not needed after a month.
- a closed task's complainant 180 days after the task was closed (the hotline's callback and
  any appeal of the handling are long over; the hotline keeps its own record under the ticket
  number, which stays): `tasks.complainant` emptied, and the complainant's name and phone as
  recorded, and anything shaped like a phone or identity card number, struck from the task's
  title, description and steps' notes, and from the notices about it (their text is the
  title). The rest of the description stays: what was wrong and where is the substance of
  the complaint, which the district's supervision reads. Status, times, satisfaction: kept,
  as every rate and report counts them. A step `erase_contact` (naming nobody) records it;
  a task not closed (resolved, called back, reopened) is not touched. A task passed on to
  another community (`transferred_to_id`: the hotline re-dispatched the ticket) holds its copy
  of the complainant for the ticket: it goes with the last task of the ticket, 180 days after
  that one was closed (never while the ticket is open where it went), whatever the task
  passed on was when it went, closed or not.
- a household out of the register (removed: moved out, demolished, closed, a duplicate) 180
  days after it left: its phone, care tags and removal note erased (`erased_at` set). Its
  address, point, kind and members stay, with its visits and the history rows the past weeks'
  reports were counted from (`household_removal.erase_removed_households`): a removal undone
  in those 180 days gives the household back whole; after them it cannot be undone.

Each step deletes or coarsens at most `batch` rows a run (the push worker runs it every
GRIDWORK_RETENTION_SECONDS), oldest first, so a run stays short; a backlog (the first runs
after an upgrade) goes over several runs. Running again changes nothing: what was done is not
found again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import TextClause, select, text
from sqlalchemy.orm import Session, selectinload

from api.models.tasks import Task, TaskEvent
from api.models.visits import TRACK_DECIMALS, UNTRACKED_DETAILS
from api.services.household_removal import erase_removed_households
from api.services.photos import PHOTO_LOCK_CLASS, PhotoStorage

# Tasks whose point a worker's phone measured (a visit's follow-up): a track. A hotline or
# window task's point is the place the resident named: the task itself, kept.
TRACK_SOURCES = ("visit",)

# The settings, in days (and rows): config key -> Policy field.
SETTINGS = {
    "RETAIN_VISIT_TRACKS_DAYS": "visit_tracks",
    "RETAIN_PHOTOS_DAYS": "photos",
    "RETAIN_READ_NOTIFICATIONS_DAYS": "read_notifications",
    "RETAIN_NOTIFICATIONS_DAYS": "notifications",
    "RETAIN_DELIVERIES_DAYS": "deliveries",
    "RETAIN_COMPLAINANTS_DAYS": "complainants",
    "RETAIN_REMOVED_HOUSEHOLDS_DAYS": "removed_households",
    "RETENTION_BATCH": "batch",
}


@dataclass(frozen=True)
class Policy:
    """How long each kind of record is kept, and how many rows of each a run may touch."""

    visit_tracks: timedelta
    photos: timedelta
    read_notifications: timedelta
    notifications: timedelta
    deliveries: timedelta
    complainants: timedelta  # after the task was closed
    removed_households: timedelta  # after the household left the register
    batch: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        values: dict[str, Any] = {}
        for key, name in SETTINGS.items():
            value = int(config[key])
            if value < 1:
                raise ValueError(f"{key} must be at least 1, not {value}")
            values[name] = value if name == "batch" else timedelta(days=value)
        return cls(**values)


@dataclass(frozen=True)
class Purged:
    """What a run did."""

    visits: int = 0  # visits whose track was coarsened
    tasks: int = 0  # visits' follow-up tasks whose point was coarsened with them
    task_events: int = 0  # tasks' steps whose point (where the worker stood) was coarsened
    photos: int = 0  # visit photo rows deleted
    task_photos: int = 0  # task photo rows deleted
    photo_files: int = 0  # stored photo files deleted (no kept photo has their bytes)
    notifications: int = 0  # notifications deleted (their deliveries with them)
    deliveries: int = 0  # finished deliveries deleted, their notification kept
    complainants: int = 0  # closed tasks whose complainant's contact was erased
    households: int = 0  # removed households whose phone and care tags were erased

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


Step = Callable[[Session], Purged]


def steps(storage: PhotoStorage | None, policy: Policy, now: datetime) -> list[tuple[str, Step]]:
    """The steps of a run, each as (what it does, the step on a session). The push worker runs
    each in a transaction of its own: a step that fails (one closed task whose sealed note
    cannot be opened, met first every run) keeps none of the others from its work. Without
    `storage` photos are left. The photos' bytes are not among them (`delete_photo_files`,
    after the commit)."""
    tracks, batch = now - policy.visit_tracks, policy.batch
    found: list[tuple[str, Step]] = [
        ("visit tracks", lambda s: Purged(*coarsen_visit_tracks(s, tracks, now, batch))),
        (
            "task steps' points",
            lambda s: Purged(task_events=coarsen_task_event_points(s, tracks, now, batch)),
        ),
    ]
    if storage is not None:
        photos = now - policy.photos
        found.append(("photos", lambda s: Purged(photos=purge_photos(s, photos, batch))))
        found.append(
            ("task photos", lambda s: Purged(task_photos=purge_task_photos(s, photos, batch)))
        )
    read, unread = now - policy.read_notifications, now - policy.notifications
    deliveries, closed = now - policy.deliveries, now - policy.complainants
    removed = now - policy.removed_households
    found += [
        (
            "notifications",
            lambda s: Purged(notifications=purge_notifications(s, read, unread, batch)),
        ),
        ("deliveries", lambda s: Purged(deliveries=purge_deliveries(s, deliveries, batch))),
        ("complainants", lambda s: Purged(complainants=erase_complainants(s, closed, now, batch))),
        (
            "removed households",
            lambda s: Purged(households=erase_removed_households(s, removed, now, batch)),
        ),
    ]
    return found


def purge(session: Session, storage: PhotoStorage | None, policy: Policy, now: datetime) -> Purged:
    """One run of every step, in the caller's transaction. Without `storage` photos are left.

    The photos deleted have their bytes queued, not deleted: once the caller committed,
    `delete_photo_files` in a transaction of its own deletes them (`photo_files` is its)."""
    done = Purged()
    for _, step in steps(storage, policy, now):
        done += step(session)
    return done


def _coarse(column: str) -> str:
    return f"round(CAST({column} AS numeric), {TRACK_DECIMALS})::float8"


# The visits still precise and past the period, oldest first, through the partial index of
# migration 0033; rows another run holds are skipped (two push workers). Found first, apart:
# an UPDATE of visits runs the last-visit trigger (migration 0011) even when it sets no row
# (50-80 ms beside 200,000 visits), which a run with nothing to do need not pay.
_DUE_VISITS = text("""
SELECT id FROM visits
WHERE coarsened_at IS NULL AND visited_at < :cutoff
ORDER BY visited_at
LIMIT :batch
FOR UPDATE SKIP LOCKED
""")
# Rounded as api/privacy.track_point rounds (decimal rounding, as a district viewer is shown).
_COARSEN_VISITS = text(f"""
WITH visits_done AS (
  UPDATE visits v SET
    location = ST_SetSRID(ST_MakePoint({_coarse("ST_X(v.location)")},
                                       {_coarse("ST_Y(v.location)")}), 4326),
    raw_lon = {_coarse("v.raw_lon")},
    raw_lat = {_coarse("v.raw_lat")},
    accuracy_m = NULL,
    provider = NULL,
    evidence = COALESCE((
      SELECT jsonb_object_agg(key, value) FROM jsonb_each(v.evidence)
      WHERE EXISTS (SELECT 1 FROM unnest(CAST(:kept AS text[])) AS kept
                    WHERE starts_with(key, kept))), '{{}}'::jsonb),
    coarsened_at = :now
  WHERE v.id = ANY(CAST(:ids AS uuid[]))
  RETURNING v.id
), tasks_done AS (
  UPDATE tasks t SET
    location = ST_SetSRID(ST_MakePoint({_coarse("ST_X(t.location)")},
                                       {_coarse("ST_Y(t.location)")}), 4326)
  FROM visits_done WHERE t.visit_id = visits_done.id
    AND t.source = ANY(CAST(:sources AS text[])) AND t.location IS NOT NULL
  RETURNING t.id
)
SELECT (SELECT count(*) FROM visits_done), (SELECT count(*) FROM tasks_done)
""")


def coarsen_visit_tracks(
    session: Session, cutoff: datetime, now: datetime, batch: int
) -> tuple[int, int]:
    """Coarsen the tracks of up to `batch` visits made before `cutoff`; (visits, tasks)."""
    due = session.scalars(_DUE_VISITS, {"cutoff": cutoff, "batch": batch}).all()
    if not due:
        return 0, 0
    visits, tasks = session.execute(
        _COARSEN_VISITS,
        {
            "ids": list(due),
            "now": now,
            "kept": list(UNTRACKED_DETAILS),
            "sources": list(TRACK_SOURCES),
        },
    ).one()
    return visits, tasks


def _older(table: str) -> str:
    """Rows of `table` made before :cutoff, found along the primary key (ids grow with time)
    and only up to the first younger row: with nothing to do, a run reads one row, not the
    table (a filter alone on `created_at` walks every row when none matches)."""
    return (
        f"created_at < :cutoff AND id < COALESCE((SELECT id FROM {table}"
        " WHERE created_at >= :cutoff ORDER BY id LIMIT 1), 9223372036854775807)"
    )


# No trigger on task_events: one statement. The partial index of migration 0033 holds only the
# events with a point not coarsened yet.
_COARSEN_TASK_EVENTS = text(f"""
WITH due AS (
  SELECT id FROM task_events
  WHERE location IS NOT NULL AND coarsened_at IS NULL AND at < :cutoff
  ORDER BY at LIMIT :batch
  FOR UPDATE SKIP LOCKED
)
UPDATE task_events e SET
  location = ST_SetSRID(ST_MakePoint({_coarse("ST_X(e.location)")},
                                     {_coarse("ST_Y(e.location)")}), 4326),
  coarsened_at = :now
FROM due WHERE e.id = due.id
""")


def coarsen_task_event_points(session: Session, cutoff: datetime, now: datetime, batch: int) -> int:
    """Coarsen where the worker stood for up to `batch` task steps taken before `cutoff`."""
    return session.execute(
        _COARSEN_TASK_EVENTS, {"cutoff": cutoff, "now": now, "batch": batch}
    ).rowcount


# A photo whose visit's follow-up task is still open (a repair taking more than the period)
# is what the task is about: kept until the task is closed (or passed on), then due at once.
def _delete_photos(table: str, kept_while: str) -> TextClause:
    """Delete up to :batch photos of `table` taken before :cutoff, not `kept_while` (their
    task open), their hashes queued for the bytes (`delete_photo_files`)."""
    return text(f"""
WITH due AS (
  SELECT id FROM {table} p WHERE {_older(table)} AND NOT ({kept_while})
  ORDER BY id LIMIT :batch FOR UPDATE OF p SKIP LOCKED
), deleted AS (
  DELETE FROM {table} p USING due WHERE p.id = due.id RETURNING p.sha256
), queued AS (
  INSERT INTO photo_deletions (sha256)
  SELECT DISTINCT sha256 FROM deleted ORDER BY sha256
  ON CONFLICT (sha256) DO NOTHING
)
SELECT count(*) FROM deleted
""")


_OPEN = "t.status NOT IN ('closed', 'transferred')"
_DELETE_PHOTOS = _delete_photos(
    "visit_photos", f"EXISTS (SELECT 1 FROM tasks t WHERE t.visit_id = p.visit_id AND {_OPEN})"
)
# The bytes queued, a batch (hashes in order: locks taken alike by every run), each under its
# lock (as an upload's store) and only if no photo points at it any more.
_QUEUED = text("""
SELECT sha256 FROM photo_deletions ORDER BY sha256 LIMIT :batch FOR UPDATE SKIP LOCKED
""")
_PHOTO_LOCK = text(
    f"SELECT pg_advisory_xact_lock({PHOTO_LOCK_CLASS}, hashtext(key))"
    " FROM unnest(CAST(:keys AS text[])) AS key ORDER BY key"
)
# A visit photo and a task photo of the same image share its bytes.
_STILL_USED = text("""
SELECT sha256 FROM visit_photos WHERE sha256 = ANY(:keys)
UNION SELECT sha256 FROM task_photos WHERE sha256 = ANY(:keys)
""")
_DEQUEUE = text("DELETE FROM photo_deletions WHERE sha256 = ANY(:keys)")


def purge_photos(session: Session, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` photos stored before `cutoff` (but those whose visit's follow-up
    task is open) and queue their bytes for `delete_photo_files`; how many photos.

    The files are not touched here: a transaction that then fails leaves rows and files
    alike. Queued in the same transaction, their bytes go in the next (`delete_photo_files`),
    or, after a crash between the two, in the next run's."""
    return session.scalar(_DELETE_PHOTOS, {"cutoff": cutoff, "batch": batch}) or 0


# A task's photos, as its visit's follow-up task keeps a visit's: kept while the task is open.
_DELETE_TASK_PHOTOS = _delete_photos(
    "task_photos", f"EXISTS (SELECT 1 FROM tasks t WHERE t.id = p.task_id AND {_OPEN})"
)


def purge_task_photos(session: Session, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` task photos taken before `cutoff` of tasks closed (or passed on)
    and queue their bytes for `delete_photo_files`, as `purge_photos` does; how many."""
    return session.scalar(_DELETE_TASK_PHOTOS, {"cutoff": cutoff, "batch": batch}) or 0


def delete_photo_files(session: Session, storage: PhotoStorage, batch: int) -> int:
    """Delete the stored bytes of up to `batch` hashes queued by committed photo deletions,
    those no photo points at any more; how many files. Run after `purge`'s commit, in a
    transaction of its own.

    Under a lock per hash that an upload of the same bytes takes too (`photos.attach_photo`):
    an upload either committed its row first (seen here: the bytes stay) or waits and stores
    them again. Should this transaction fail after the files went, the hashes stay queued
    and the next run deletes nothing twice (a file already gone is nothing to delete)."""
    keys = session.scalars(_QUEUED, {"batch": batch}).all()
    if not keys:
        return 0
    session.execute(_PHOTO_LOCK, {"keys": keys})
    used = set(session.scalars(_STILL_USED, {"keys": keys}))
    unused = [key for key in keys if key not in used]
    for key in unused:
        storage.delete(key)
    session.execute(_DEQUEUE, {"keys": keys})
    return len(unused)


# Read ones by when they were read (the index of migration 0033), unread ones by age (ids grow
# with time: the oldest first along the primary key). A pending delivery keeps its notification
# (the push worker still has to send or give it up).
_DELETE_NOTIFICATIONS = text(f"""
WITH due AS (
  (SELECT id FROM notifications WHERE read_at < :read_cutoff ORDER BY read_at LIMIT :batch)
  UNION
  (SELECT id FROM notifications WHERE {_older("notifications")} ORDER BY id LIMIT :batch)
), deletable AS (
  SELECT n.id FROM notifications n JOIN due ON due.id = n.id
  WHERE NOT EXISTS (
    SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.state = 'pending')
  ORDER BY n.id LIMIT :batch
  FOR UPDATE OF n SKIP LOCKED
)
DELETE FROM notifications n USING deletable WHERE n.id = deletable.id
""")


def purge_notifications(
    session: Session, read_cutoff: datetime, cutoff: datetime, batch: int
) -> int:
    """Delete up to `batch` notifications read before `read_cutoff` or made before `cutoff`,
    with their deliveries (ON DELETE CASCADE); how many."""
    return session.execute(
        _DELETE_NOTIFICATIONS, {"read_cutoff": read_cutoff, "cutoff": cutoff, "batch": batch}
    ).rowcount


_DELETE_DELIVERIES = text(f"""
WITH due AS (
  SELECT id FROM deliveries
  WHERE {_older("deliveries")} AND state <> 'pending'
    AND COALESCE(sent_at, next_attempt_at) < :cutoff
  ORDER BY id LIMIT :batch
  FOR UPDATE SKIP LOCKED
)
DELETE FROM deliveries d USING due WHERE d.id = due.id
""")


def purge_deliveries(session: Session, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` deliveries finished before `cutoff` (sent, or given up); how many."""
    return session.execute(_DELETE_DELIVERIES, {"cutoff": cutoff, "batch": batch}).rowcount


# --- a closed task's complainant --------------------------------------------------------------
ERASED = "[已删除]"
# What a step records: that the contact went, and nothing of it.
ERASED_NOTE = "诉求人联系方式保留期满，已删除"  # the caller or the walk-in resident
# Numbers typed from a call, however spaced: mobiles (+86 optional), landlines with their
# area code, identity card numbers (18 characters, a plausible birth date inside). Not part
# of a longer number: a ticket number (13+ digits) or a room (502) stays.
_MOBILE = r"(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}"
_LANDLINE = r"0\d{2,3}[-\s]?\d{7,8}"
_ID_CARD = r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
_CONTACT_NUMBERS = re.compile(rf"(?<![\d+])(?:{_ID_CARD}|{_MOBILE}|{_LANDLINE})(?!\d)")
# An input method in full-width mode types １３９－１２３４ for 139-1234: numbers are looked for
# in the text with those characters folded to ASCII, one character for one (the places found
# are the same in the text as it is, which is struck there; the rest keeps its width).
_HALF_WIDTH = str.maketrans(
    {chr(0xFF10 + n): str(n) for n in range(10)}
    | {"＋": "+", "－": "-", "Ｘ": "X", "ｘ": "x", "\u3000": " "}
)
TITLE_LENGTH = Task.__table__.c.title.type.length


def strike_contact(value: str, contact: dict | None) -> str:
    """`value` without the complainant's contact as recorded (each value of two characters
    or more: a surname alone would blank that character everywhere), nor their phone however
    it was typed, nor any phone or identity card number, in ASCII or full-width digits."""
    words = {str(v).strip() for v in (contact or {}).values() if v is not None}
    for word in sorted((w for w in words if len(w) >= 2), key=len, reverse=True):
        value = value.replace(word, ERASED)
    numbers = _CONTACT_NUMBERS
    own = sorted({spelt for word in words for spelt in _spellings(word)}, key=len, reverse=True)
    if own:
        numbers = re.compile(rf"(?<!\d)(?:{'|'.join(own)})(?!\d)|{_CONTACT_NUMBERS.pattern}")
    folded = value.translate(_HALF_WIDTH)
    for match in reversed(list(numbers.finditer(folded))):
        value = value[: match.start()] + ERASED + value[match.end() :]
    return value


# A Chinese area code: 010 and 02x are three digits, the others four (0571, 0755).
_AREA_CODE = re.compile(r"0(?:[12]\d|[3-9]\d{2})")


def _spellings(word: str) -> set[str]:
    """Patterns of a recorded phone (7 digits or more) as a caller says it and an operator
    types it: its digits in any grouping (spaces, hyphens), without the country code, and a
    landline without its area code (the caller gives the local number). None for a name."""
    digits = re.sub(r"\D", "", word.translate(_HALF_WIDTH))
    if len(digits) < 7 or len(digits) * 2 < len(re.sub(r"\s", "", word)):
        return set()  # a name, an address: struck as recorded only
    forms = {digits}
    for country in ("0086", "86"):
        if digits.startswith(country) and len(digits) - len(country) >= 10:
            forms.add(digits[len(country) :])
    for form in list(forms):
        area = _AREA_CODE.match(form)
        if area and 7 <= len(form) - area.end() <= 8:
            forms.add(form[area.end() :])
    return {r"[-\s]?".join(form) for form in forms}


# A task closed once more after a reopening counts from its last close (`closed_at`). The
# last task of a ticket: a task passed on goes with it (`_PASSED_ON`), not by its own close.
_DUE_TASKS = (
    select(Task)
    .where(
        Task.status == "closed",
        Task.contact_erased_at.is_(None),
        Task.transferred_to_id.is_(None),
    )
    .order_by(Task.closed_at)
    .with_for_update(of=Task, skip_locked=True)
    .options(selectinload(Task.events))
)
# The tasks a ticket was passed on from before it came to each of `:last` (each task's
# `transferred_from_id`, a primary key lookup a step): a chain is a handful of re-dispatches.
_PASSED_ON = text("""
WITH RECURSIVE chain(id) AS (
    SELECT transferred_from_id FROM tasks
    WHERE id = ANY(CAST(:last AS integer[])) AND transferred_from_id IS NOT NULL
  UNION
    SELECT t.transferred_from_id FROM chain c JOIN tasks t ON t.id = c.id
    WHERE t.transferred_from_id IS NOT NULL
)
SELECT id FROM chain
""")
# Those not erased yet: erased with the ticket's last task once (its reopening and new close
# erase it again, not them: they take no new steps), in id order (locks taken alike by runs).
_TO_ERASE_WITH = (
    select(Task)
    .where(Task.contact_erased_at.is_(None))
    .order_by(Task.id)
    .with_for_update(of=Task)
    .options(selectinload(Task.events))
)
# A notice's text is the task's title as it was sent (`tasks._notify_task`). Nothing indexes
# a notice by its task: one pass over the notifications (a year's at most, retention deleting
# the rest) for all the titles a run changed, and none when it changed no title.
_STRIKE_NOTICES = text("""
UPDATE notifications n SET body = struck.body
FROM unnest(CAST(:task_ids AS text[]), CAST(:titles AS text[]), CAST(:struck AS text[]))
  AS struck(task_id, title, body)
WHERE n.data->>'task_id' = struck.task_id AND n.body = struck.title
""")


def erase_complainants(session: Session, cutoff: datetime, now: datetime, batch: int) -> int:
    """Erase the complainant's contact of up to `batch` tasks closed before `cutoff`, oldest
    closed first, each with the tasks its ticket was passed on from (a run may so erase a few
    more than `batch`: a ticket is erased whole); how many. Sealed columns are opened and
    sealed again here, in Python: the database cannot read them."""
    last = session.scalars(_DUE_TASKS.where(Task.closed_at < cutoff).limit(batch)).all()
    passed_on = session.scalars(_PASSED_ON, {"last": [task.id for task in last]}).all()
    earlier = (
        session.scalars(_TO_ERASE_WITH.where(Task.id.in_(passed_on))).all() if passed_on else []
    )
    notices: dict[str, list[str]] = {"task_ids": [], "titles": [], "struck": []}
    for task in (*last, *earlier):
        _erase(task, now, notices)
    session.flush()
    if notices["task_ids"]:
        session.execute(_STRIKE_NOTICES, notices)
    return len(last) + len(earlier)


def _erase(task: Task, now: datetime, notices: dict[str, list[str]]) -> None:
    """Erase `task`'s complainant wherever it repeats them; a changed title is added to
    `notices` (the notices sent with the old one are struck alike)."""
    contact = task.complainant
    title = strike_contact(task.title, contact)[:TITLE_LENGTH]
    if title != task.title:
        notices["task_ids"].append(str(task.id))
        notices["titles"].append(task.title)
        notices["struck"].append(title)
        task.title = title
    description = strike_contact(task.description, contact)
    if description != task.description:
        task.description = description
    for event in task.events:
        note = strike_contact(event.note, contact)
        if note != event.note:
            event.note = note
    task.complainant = None
    task.contact_erased_at = now
    task.updated_at = now
    task.events.append(
        TaskEvent(
            action="erase_contact",
            from_status=task.status,
            to_status=task.status,
            actor_id=None,
            note=ERASED_NOTE,
            at=now,
        )
    )
