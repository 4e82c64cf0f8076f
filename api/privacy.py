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


FULL = Disclosure(contact=True, notes=True, tracks=True)
# District viewers supervise coverage and complaint handling: they need counts, places to the
# block and the substance of complaints, not who said what or where a worker stood.
SUPERVISOR = Disclosure(contact=False, notes=False, tracks=False)
NOTHING = Disclosure(contact=False, notes=False, tracks=False)

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


# --- masking, for the schemas --------------------------------------------------------------
def phone(value: str | None) -> str | None:
    return value if disclosure().contact else mask_phone(value)


def note(value):
    """Visit notes, observations, follow-up notes: in full, or withheld (None)."""
    return value if disclosure().notes else None


def complainant(value: dict | None) -> dict | None:
    if value is None or disclosure().contact:
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
        return tuple(f for f in audit.HOUSEHOLD_FIELDS if d.contact or f != "phone")
    if resource == "visit":
        return (
            ("location", "worker", "outcome")
            + (("notes", "observations", "follow_up_note") if d.notes else ())
            + (("raw_location",) if d.tracks else ())
        )
    if resource == "visit_photo":
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
    resource: str, action: str = "read", records: Callable[[Any], Iterable[Any]] | None = None
):
    """Decorate a view (under its flask-smorest decorators) whose result discloses `resource`
    records: a model, a list of them, or what `records(result)` picks out."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            result = view(*args, **kwargs)
            if records is not None:
                rows = list(records(result))
            else:
                rows = result if isinstance(result, list) else [result]
            record_disclosure(resource, rows, action)
            return result

        return wrapper

    return decorate
