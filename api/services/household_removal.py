"""Households leaving the register (moved out, demolished, closed, a duplicate) and coming back.

A removed household keeps its row: its visits, and the weeks it was counted in, stay as they
were. From its removal's time on it is in no grid's count (its `household_history` row closed
then, by the households trigger of migration 0052), due nowhere (plan, map, list, export), and
a visit dated after that time is refused. Retention erases its phone, care tags and note
`GRIDWORK_RETAIN_REMOVED_HOUSEHOLDS_DAYS` after it left (`erase_removed_households`).

Who: the community admin, and the leader of the household's grid (the one it names): the
register's keepers, who see the grid's figures drop and answer for them. Not its workers: a
household removed is one nobody has to visit any more, the figure a worker is measured by.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api import errors
from api.models import Grid, Household, Notification
from api.models.reports import HouseholdHistory
from api.models.visits import Visit
from api.scope import Scope
from api.services.households import ADDRESS_PARTS, household_lonlat, refuse_repeat
from api.services.weeks import LOCAL

# The listing's choices (`GET /households?status=`).
STATUSES = ("active", "removed", "all")


# A household a visit found gone is told of once in this time to each who may remove it: a
# worker recording it again at each weekly round is no new notice.
MOVED_OUT_NOTICE_EVERY = timedelta(days=7)


def suggest_removals(session: Session, visits: Sequence[Any]) -> None:
    """A visit finding its household gone (outcome `moved_out`) tells whoever may take it out
    of the register: the grid's leader, else the community's admins (`tasks.overseers`). The
    worker at the door may not (`require_remover`), and a household left in the register stays
    due every week. Once a week a household and reader; none for one already out of it."""
    from api.services.notifications import notify
    from api.services.tasks import overseers

    found = {v.household_id: v for v in visits if v.outcome == "moved_out" and v.household_id}
    if not found:
        return
    gone = session.scalars(
        select(Household)
        .where(Household.id.in_(sorted(found)), Household.removed_at.is_(None))
        .order_by(Household.id)
    )
    for household in gone:
        visit = found[household.id]
        now = visit.received_at or visit.visited_at
        grid = session.get(Grid, household.grid_id)
        key = f"household:{household.id}:moved_out"
        readers = overseers(session, grid, now=now, district=False)
        told = set(
            session.scalars(
                select(Notification.user_id).where(
                    Notification.user_id.in_(readers),
                    Notification.created_at > now - MOVED_OUT_NOTICE_EVERY,
                    Notification.collapse_key == key,
                )
            )
        )
        address = " ".join(p for p in (household.building, household.unit, household.room) if p)
        notify(
            session,
            [user for user in readers if user not in told],
            "household_moved_out",
            "住户可能已搬离",
            f"{grid.name or grid.code} {address}：走访记录为“已搬离”。如属实，请将其移出登记册。",
            data={"household_id": household.id, "visit_id": visit.id},
            collapse_key=key,
            now=now,
        )


def require_remover(scope: Scope, grid: Grid) -> None:
    """The community admin of the grid, or the grid's leader: a worker (or a leader of another
    grid) may not take a household out of the register; a viewer changes nothing."""
    scope.require_writer()
    if not scope.leads_grid(grid):
        raise errors.Forbidden(
            "Only the grid's leader or the community admin takes a household out of the "
            "register; tell them in the visit's notes."
        )


def removal_time(effective: date, now: datetime) -> datetime:
    """When a household said to have left on `effective` leaves the register: at the end of
    that day (Asia/Shanghai), or now if the day is today. A visit that day, before it, counts."""
    end = datetime.combine(effective + timedelta(days=1), datetime.min.time(), LOCAL)
    return min(end, now)


def remove_household(
    session: Session,
    scope: Scope | None,
    household: Household,
    *,
    reason: str,
    now: datetime,
    note: str | None = None,
    effective_date: date | None = None,
    user_id: int | None = None,
) -> Household:
    """Take a locked household out of the register (`get_household(..., lock=True)`).

    409 when it is out already; 422 for an effective date in the future, before it was
    registered, before its register facts last changed (its grid, kind or tags: the history
    cannot end before its last row began), or before a visit stored of it (it was there)."""
    if scope is not None:
        require_remover(scope, household.grid)
    if household.removed_at is not None:
        raise errors.Conflict(
            f"Household {household.id} left the register on "
            f"{household.removal_date.isoformat()} ({household.removal_reason}); undo that "
            "removal (DELETE) before removing it again.",
            removed_at=household.removed_at.isoformat(),
        )
    today = now.astimezone(LOCAL).date()
    effective = effective_date or today
    if effective > today:
        raise _bad_date(f"{effective.isoformat()} is in the future (today is {today.isoformat()}).")
    registered = household.created_at.astimezone(LOCAL).date()
    if effective < registered:
        raise _bad_date(
            f"{effective.isoformat()} is before the household was registered "
            f"({registered.isoformat()})."
        )
    at = removal_time(effective, now)
    since = session.scalar(
        select(func.max(HouseholdHistory.valid_from)).where(
            HouseholdHistory.household_id == household.id, HouseholdHistory.valid_to.is_(None)
        )
    )
    if since is not None and since > at:
        raise _bad_date(
            f"{effective.isoformat()} is before its grid, kind or care tags last changed "
            f"({since.astimezone(LOCAL).date().isoformat()}); the register held it then."
        )
    last_visit = session.scalar(
        select(func.max(Visit.visited_at)).where(Visit.household_id == household.id)
    )
    if last_visit is not None and last_visit >= at:
        raise _bad_date(
            f"{effective.isoformat()} is before its last visit "
            f"({last_visit.astimezone(LOCAL).date().isoformat()}); it was there then."
        )
    household.removed_at = at
    household.removal_date = effective
    household.removal_reason = reason
    household.removal_note = note or None
    household.removed_by_id = user_id
    session.flush()  # the trigger closes its history row at `at`
    session.refresh(household)
    return household


def _bad_date(reason: str) -> errors.Unprocessable:
    """A 422 naming the field: `reason` says what the date is (`2026-12-10 is in the future`)."""
    return errors.Unprocessable(
        f"The removal's effective date {reason}", errors={"effective_date": [reason]}
    )


def restore_household(session: Session, scope: Scope | None, household: Household) -> Household:
    """Undo a locked household's removal: back in the register as if it had never left (its
    history reopened from the removal's time; visits refused meanwhile may be sent again).

    409 when it is in the register; when retention erased its phone and care tags (the
    household it was cannot be given back: register it again); when its address is registered
    again at its point meanwhile (a new household, or an import's row); when its grid was
    retired, or redrawn off its door, since it left."""
    if scope is not None:
        require_remover(scope, household.grid)
    if household.removed_at is None:
        raise errors.Conflict(f"Household {household.id} is in the register; nothing to undo.")
    # FOR SHARE, as `households.place_held` holds a grid it places in: a retirement of the grid
    # (which holds it FOR NO KEY UPDATE, then counts its households) either commits first and
    # is read here, or waits for this restore and counts the household. Read unheld, both
    # succeeded, and a household in the register stood in a grid off the map.
    # A redraw holds it too (`grids._hold_in_service`): the boundary read below is the one
    # committed, and stays so until this restore commits.
    retired_at, holds_door = session.execute(
        select(Grid.retired_at, func.ST_Intersects(Grid.boundary, Household.location))
        .join(Household, Household.grid_id == Grid.id)
        .where(Household.id == household.id)
        .with_for_update(of=Grid, read=True)
    ).one()
    if retired_at is not None:
        raise errors.Conflict(
            f"Household {household.id}'s grid {household.grid.code} was retired since it left; "
            "register it again, in the grid that holds its door now."
        )
    if not holds_door:
        # Its grid was redrawn off its door while it was out of the register (a removed
        # household does not hold a grid's boundary: `grids._TOUCHED`). Put back in it, it
        # was due in a grid whose area does not hold it; moved to the grid that does, the
        # weeks since its removal would count it where it never was.
        raise errors.Conflict(
            f"Household {household.id}'s grid {household.grid.code} was redrawn since it left "
            "and no longer holds its door; register it again, in the grid that holds it now."
        )
    if household.erased_at is not None:
        raise errors.Conflict(
            f"Household {household.id}'s phone and care tags were erased on "
            f"{household.erased_at.astimezone(LOCAL).date().isoformat()}, as retention keeps "
            "a removed household's facts no longer; register it again."
        )
    lon, lat = household_lonlat(household)
    address = {part: getattr(household, part) for part in ADDRESS_PARTS}
    refuse_repeat(session, scope, address, lon, lat, editing=household.id)
    household.removed_at = None
    household.removal_date = None
    household.removal_reason = None
    household.removal_note = None
    household.removed_by_id = None
    session.flush()  # the trigger opens its history row again, at the removal's time
    session.refresh(household)
    return household


# --- retention -------------------------------------------------------------------------------
# The removed households due, oldest removal first, through ix_households_removed_to_erase;
# rows another run (or an undo) holds are skipped.
_DUE = text(
    """
    SELECT id FROM households
    WHERE removed_at IS NOT NULL AND erased_at IS NULL AND removed_at < :cutoff
    ORDER BY removed_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
    """
)
# One statement: the households trigger runs once (no history, no count: they are in no grid;
# the visits dated before their first history row, if any, replayed without the tags).
_ERASE = text(
    """
    UPDATE households SET phone = NULL, tags = '{}', removal_note = NULL, erased_at = :now,
                          updated_at = :now
    WHERE id = ANY(CAST(:ids AS integer[]))
    """
)


def erase_removed_households(session: Session, cutoff: datetime, now: datetime, batch: int) -> int:
    """Erase the phone, care tags and removal note of up to `batch` households removed before
    `cutoff`; how many. Their address, point, kind, members and visits stay: the reports of
    the weeks they were in count them (their history rows keep the tags they had then)."""
    due = session.scalars(_DUE, {"cutoff": cutoff, "batch": batch}).all()
    if not due:
        return 0
    session.execute(_ERASE, {"ids": list(due), "now": now})
    return len(due)
