"""Residents' sensitive data at the HTTP edge: what each role is shown, and the audit of reads.

One table decides masking (used by the schemas) and one function writes the audit entry of a
response that disclosed personal data (used by the views). docs/security.md explains both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import request

from api.auth import current_scope
from api.crypto import mask_name, mask_phone
from api.extensions import db
from api.models import visits as visit_models
from api.services import audit


@dataclass(frozen=True)
class Disclosure:
    """What a role sees in full. Everything not shown in full is masked or withheld."""

    contact: bool  # residents' phones, complainants' names and phones
    notes: bool  # visit notes, observations (health, care), follow-up notes
    tracks: bool  # workers' exact visit positions (their location tracks)
    measures: bool  # a visit's evidence numbers (distances, speeds, accuracy), not only times
    place: bool  # what a visit recorded of the place: a premises' address and name, photos


FULL = Disclosure(contact=True, notes=True, tracks=True, measures=True, place=True)
# District viewers supervise coverage and complaint handling: they need counts, places to the
# block and the substance of complaints, not who said what or where a worker stood.
SUPERVISOR = Disclosure(contact=False, notes=False, tracks=False, measures=False, place=True)
NOTHING = Disclosure(contact=False, notes=False, tracks=False, measures=False, place=False)
# A worker's own visit in a grid they do not hold (moved off it, or relieved there a day):
# their record -- when, the grid, the household's id, the outcome, the grade and the numbers
# that explain it (about their work, not the residents) -- with their position to the block as
# a supervisor has it. The residents' data they recorded (notes, observations, the premises,
# photos, the door to the metre) is for whoever holds the grid now (`Scope.holds_visit_grid`).
OWN_RECORD = Disclosure(contact=False, notes=False, tracks=False, measures=True, place=False)

POLICY: dict[str, Disclosure] = {
    "worker": FULL,
    "grid_leader": FULL,
    "community_admin": FULL,
    "district_viewer": SUPERVISOR,
}

# How precise a worker's position is for roles without `tracks`, and which evidence numbers
# they see: with the visits, which retention brings to the same once their period passed.
TRACK_DECIMALS = visit_models.TRACK_DECIMALS
UNTRACKED_DETAILS = visit_models.UNTRACKED_DETAILS


def disclosure() -> Disclosure:
    return POLICY.get(current_scope().role, NOTHING)


def visit_grid_id(visit: Any) -> int:
    """The grid a visit is read as of: its own, or in a household's history the household's
    grid now (`visits.household_visits` sets `read_in_grid_id`)."""
    return getattr(visit, "read_in_grid_id", None) or visit.grid_id


def visit_disclosure(grid_id: int, base: Disclosure | None = None) -> Disclosure:
    """What the caller sees of a visit of grid `grid_id`: their role's disclosure (`base`,
    looked up when not given) in a grid they hold, OWN_RECORD elsewhere (their own visits)."""
    scope = current_scope()
    if scope.holds_visit_grid(grid_id):
        return base or POLICY.get(scope.role, NOTHING)
    return OWN_RECORD


# --- masking, for the schemas --------------------------------------------------------------
def phone(value: str | None) -> str | None:
    return value if disclosure().contact else mask_phone(value)


def note(value):
    """Visit notes, observations, follow-up notes: in full, or withheld (None)."""
    return value if disclosure().notes else None


def complainant(value: dict | None, reached: bool = True) -> dict | None:
    """A task's complainant: in full when the role reads contacts and the task is within the
    reader's reach (`Scope.reaches_complainant`), else masked."""
    if value is None or (reached and disclosure().contact):
        return value
    masked = {}
    if "name" in value:
        masked["name"] = mask_name(value.get("name"))
    if "phone" in value:
        masked["phone"] = mask_phone(value.get("phone"))
    return masked


def track_point(lon: float, lat: float) -> tuple[float, float]:
    if disclosure().tracks:
        return lon, lat
    return round(lon, TRACK_DECIMALS), round(lat, TRACK_DECIMALS)


# --- the audit of reads, for the views ------------------------------------------------------
def fields_for(resource: str, records: Iterable[Any] = ()) -> tuple[str, ...]:
    """The personal fields a response about `resource` (`records`, when known) disclosed to
    this caller."""
    d = disclosure()
    if resource == "household":
        fields = tuple(f for f in audit.HOUSEHOLD_FIELDS if d.contact or f != "phone")
        # A list asked with `week` carries each one's last visit and last attempt
        # (`visit_status`), which the households layer's entry names too (tiles.TILE_FIELDS).
        if any(hasattr(r, "visit_status") for r in records):
            fields += ("last_visited", "last_attempt")
        # A removed household's answer carries its removal note to those shown notes.
        if d.notes and any(getattr(r, "removal_note", None) for r in records):
            fields += ("removal_note",)
        return fields
    if resource == "visit":
        # Visits given as records (not bare ids) disclosed what each showed (visit_disclosure).
        shown = [
            visit_disclosure(visit_grid_id(r), d) for r in records if hasattr(r, "grid_id")
        ] or [d]
        return (
            ("location", "worker", "outcome")
            + (("follow_up_title",) if any(s.place for s in shown) else ())
            + (("notes", "observations", "follow_up_note") if any(s.notes for s in shown) else ())
            + (("raw_location",) if any(s.tracks for s in shown) else ())
        )
    if resource in ("visit_photo", "task_photo"):
        return ("photo",)
    if resource == "task":
        # A visit's follow-up task's description is the visit's follow-up note (withheld
        # without `notes`); a record given as a bare id counts as showing it.
        described = d.notes or any(getattr(r, "source", None) != "visit" for r in records)
        return (
            ("title",)
            + (("description",) if described else ())
            + ("location",)
            + (("complainant",) if d.contact else ())
        )
    return ()


def _key(record: Any) -> int | uuid.UUID:
    if isinstance(record, (int, uuid.UUID)):
        return record
    return record.id


def reader() -> audit.Reader:
    """The caller of this request, as the actor of an audit entry.

    The path only, never the query string: a search carries what was searched for (a
    position, a name, a phone), which the entry would keep for six months beside the ids of
    the records it already names."""
    return audit.Reader.of(current_scope().user_id, request.remote_addr, request.path)


def record_disclosure(
    resource: str, records: Iterable[Any], action: str = "read", fields: Iterable[str] = ()
) -> None:
    """Write who read which records of `resource`, and commit it with the answer."""
    records = list(records)
    keys = [_key(r) for r in records]
    if not keys:
        return
    who = reader()
    # With its transaction's commit made asynchronous (audit.record_read).
    audit.record_read(
        db.session, who, action, resource, keys, tuple(fields) or fields_for(resource, records)
    )
    db.session.commit()


def audited(
    resource: str,
    action: str = "read",
    records: Callable[[Any], Iterable[Any]] | None = None,
    fields: Iterable[str] = (),
):
    """Decorate a view (under its flask-smorest decorators) whose result discloses `resource`
    records: a model, a list of them, or what `records(result)` picks out; `fields`, when the
    answer shows other fields of them than a read of the records does (`fields_for`)."""
    fields = tuple(fields)

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            result = view(*args, **kwargs)
            if records is not None:
                rows = list(records(result))
            else:
                rows = result if isinstance(result, list) else [result]
            record_disclosure(resource, rows, action, fields)
            return result

        return wrapper

    return decorate
