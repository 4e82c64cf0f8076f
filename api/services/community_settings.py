"""A community's settings: one JSONB of parts (the roster's, the visit cadence, the tasks'
deadlines), each written by its own service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import errors
from api.models import Community
from api.models.tasks import HOTLINE_TYPES, URGENCIES
from api.scope import Scope


def get_community(session: Session, scope: Scope, code: str) -> Community:
    """A community the caller can see, or 404 (one the caller cannot see is not told apart
    from one that does not exist)."""
    community = session.scalar(
        select(Community).where(Community.code == code, scope.communities(Community.code))
    )
    if community is None:
        raise errors.NotFound(f"No community {code} in your scope.")
    return community


def lock_community(session: Session, code: str) -> Community:
    """The community's row locked `FOR UPDATE` and read again: the settings as they are now,
    not as read earlier in the request. Each part's writer replaces the whole JSONB (a new dict,
    so it is seen as changed) and must start from here, or a part another writer committed
    meanwhile is written back as it was before (one change at a time per community)."""
    return session.scalars(
        select(Community)
        .where(Community.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


# --- the tasks' deadlines ----------------------------------------------------------------------
HOUR_KEYS = ("deadline_hours", "first_contact_hours")


def task_settings(community: Community) -> dict[str, Any]:
    """The community's task deadlines as a task is given them (`tasks.deadlines`): for each
    urgency the hours to resolve and to first contact the resident, the defaults filled in;
    `by_type` the overrides of a request type, as stored; `effective` each request type's
    hours as its tasks are given them; `defaults` Beijing 12345 practice."""
    return _task_view((community.settings or {}).get("tasks") or {})


def _task_view(stored: dict[str, Any]) -> dict[str, Any]:
    from api.services.tasks import DEFAULT_DEADLINE_HOURS, DEFAULT_FIRST_CONTACT_HOURS, deadlines

    defaults = {
        "deadline_hours": dict(DEFAULT_DEADLINE_HOURS),
        "first_contact_hours": dict(DEFAULT_FIRST_CONTACT_HOURS),
    }
    effective: dict[str, dict[str, dict[str, float]]] = {}
    for kind in HOTLINE_TYPES:
        hours = effective[kind] = {key: {} for key in HOUR_KEYS}
        for urgency in URGENCIES:
            resolve_in, contact_in = deadlines(stored, kind, urgency)
            hours["deadline_hours"][urgency] = resolve_in.total_seconds() / 3600
            hours["first_contact_hours"][urgency] = contact_in.total_seconds() / 3600
    return {
        **{key: {**defaults[key], **(stored.get(key) or {})} for key in HOUR_KEYS},
        "by_type": {
            kind: {key: dict(hours) for key, hours in override.items() if key in HOUR_KEYS}
            for kind, override in (stored.get("by_type") or {}).items()
        },
        "effective": effective,
        "defaults": defaults,
    }


def put_task_settings(session: Session, scope: Scope, community: Community, data: dict) -> dict:
    """Replace the community's task deadlines (the community admin; an urgency left out takes
    the default). Each urgency's first contact must come no later than its resolution, for
    every request type. Tasks opened from now on are given them; an open task keeps its own."""
    scope.require_roster_settings_admin(community.code, "task deadlines")
    stored = {
        **{key: dict(data.get(key) or {}) for key in HOUR_KEYS},
        "by_type": {
            kind: {key: dict(override.get(key) or {}) for key in HOUR_KEYS if override.get(key)}
            for kind, override in (data.get("by_type") or {}).items()
        },
    }
    view = _task_view(stored)
    problems: dict[str, Any] = {}
    for kind, hours in view["effective"].items():
        for urgency, deadline in hours["deadline_hours"].items():
            contact = hours["first_contact_hours"][urgency]
            if contact > deadline:
                # Named where it was set: a type's own override, else the community's hours,
                # the first contact's unless only the deadline was sent for the urgency (a
                # deadline sooner than the default first contact named the box left empty).
                own = stored["by_type"].get(kind, {})
                if any(urgency in own.get(key, {}) for key in HOUR_KEYS):
                    where = f"by_type.{kind}"
                elif (
                    urgency in stored["deadline_hours"]
                    and urgency not in stored["first_contact_hours"]
                ):
                    where = "deadline_hours"
                else:
                    where = "first_contact_hours"
                message = (
                    f"{urgency}: first contact in {contact:g} h comes after the"
                    f" deadline ({deadline:g} h)."
                )
                if message not in problems.get(where, []):
                    problems.setdefault(where, []).append(message)
    if problems:
        raise errors.Unprocessable(
            "The task deadlines are inconsistent; see `errors`.", errors={"json": problems}
        )
    community = lock_community(session, community.code)
    community.settings = {**(community.settings or {}), "tasks": stored}
    session.flush()
    return view
