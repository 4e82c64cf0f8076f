"""The visit ledger per household: cadence, last visited, next due, overdue (map, reports)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api import clock, errors
from api.models import CARE_TAGS, Community, CommunityCadence
from api.services.community_settings import lock_community
from api.services.weeks import week_bounds, week_of

# Visits per week: every household weekly; people living alone twice a week. A community
# overrides this in Community.settings["visit_cadence"] with the same shape; each change is
# recorded in community_cadences with the ISO week it applies from (migration 0019), and a
# week is judged by the cadence in force then (`cadences_in_week`).
DEFAULT_CADENCE: dict[str, Any] = {"default": 1, "tags": {"living_alone": 2}}
MAX_PER_WEEK = 7
# A visit where nobody opened the door is an attempt, not a visit: it does not reset the clock.
NOT_A_VISIT = "nobody_home"


@dataclass(frozen=True)
class Cadence:
    """How many visits per ISO week a household needs: the default, raised by its care tags."""

    default: int = 1
    tags: dict[str, int] | None = None

    def per_week(self, tags: Iterable[str]) -> int:
        by_tag = self.tags or {}
        return max([self.default, *(by_tag.get(t, 0) for t in tags)])

    def as_dict(self) -> dict[str, Any]:
        return {"default": self.default, "tags": dict(sorted((self.tags or {}).items()))}


def validate_cadence(data: Any) -> Cadence:
    """A Cadence from {"default": n, "tags": {tag: n}}, or a 422 naming the bad part."""
    problems: dict[str, list[str]] = {}
    if not isinstance(data, dict):
        raise errors.Unprocessable("The cadence must be an object with `default` and `tags`.")
    default = data.get("default", DEFAULT_CADENCE["default"])
    if not _per_week_ok(default):
        problems["default"] = [f"Must be a whole number of visits per week, 1 to {MAX_PER_WEEK}."]
    tags = data.get("tags", {})
    if not isinstance(tags, dict):
        problems["tags"] = ["Must be an object mapping care tags to visits per week."]
        tags = {}
    for tag, n in tags.items():
        if tag not in CARE_TAGS:
            problems[f"tags.{tag}"] = [f"Unknown care tag; one of {', '.join(CARE_TAGS)}."]
        elif not _per_week_ok(n):
            problems[f"tags.{tag}"] = [f"Must be a whole number 1 to {MAX_PER_WEEK}."]
    unknown = set(data) - {"default", "tags"}
    for key in sorted(unknown):
        problems[key] = ["Unknown field."]
    if problems:
        raise errors.Unprocessable("The visit cadence is not valid; see `errors`.", errors=problems)
    return Cadence(default=default, tags=dict(tags))


def _per_week_ok(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_PER_WEEK


def _cadence(stored: dict | None) -> Cadence:
    if not stored:
        return Cadence(default=DEFAULT_CADENCE["default"], tags=dict(DEFAULT_CADENCE["tags"]))
    return Cadence(default=stored.get("default", 1), tags=dict(stored.get("tags", {})))


def community_cadence(community: Community) -> Cadence:
    """The community's cadence now: its own setting, else the default."""
    return _cadence((community.settings or {}).get("visit_cadence"))


def cadences_in_week(session: Session, grid_ids: Iterable[int], week: str) -> dict[str, Cadence]:
    """The cadence in force in the ISO week of each community the grids are in, as the report
    aggregates read it (`gw_cadence_of`): its latest change from that week or before. One
    statement: the grids' communities are found by a join, not a query of their own."""
    rows = session.execute(
        text(
            "SELECT c.code, gw_cadence_of(c.code, :week) FROM communities c "
            "WHERE c.code IN (SELECT g.community_code FROM grids g "
            "WHERE g.id = ANY(CAST(:grid_ids AS integer[])))"
        ),
        {"week": week, "grid_ids": sorted(set(grid_ids))},
    )
    return {code: _cadence(stored) for code, stored in rows}


def set_community_cadence(
    session: Session,
    community: Community,
    data: Any,
    *,
    changed_by_id: int | None = None,
    at: datetime | None = None,
) -> Cadence:
    """Set the community's cadence from the ISO week (Asia/Shanghai) of `at` (default now) on.

    The change applies to the whole of that week: its history row says so, and the week's
    must-visit figures are recounted under it (as `gw_report_rebuild()` would count them).
    Earlier weeks keep the cadence they had; the first change also records the cadence before
    it, for every week before. Who changed it and when is on the history row (as grid
    redraws and roster edits keep theirs; the audit log is for personal data).
    """
    cadence = validate_cadence(data)
    at = at or clock.now()
    week = week_of(at)
    # One change at a time per community (and the settings as they are, not as read before).
    community = lock_community(session, community.code)
    recorded = session.scalar(
        select(CommunityCadence.id)
        .where(CommunityCadence.community_code == community.code)
        .limit(1)
    )
    if recorded is None:
        session.add(
            CommunityCadence(
                community_code=community.code,
                from_week=None,
                cadence=community_cadence(community).as_dict(),
            )
        )
    session.add(
        CommunityCadence(
            community_code=community.code,
            from_week=week,
            cadence=cadence.as_dict(),
            changed_by_id=changed_by_id,
            changed_at=at,
        )
    )
    # A new dict, so the JSONB column is seen as changed.
    community.settings = {**(community.settings or {}), "visit_cadence": cadence.as_dict()}
    session.flush()
    session.execute(
        text("SELECT gw_report_recount_must_visits(:code, :week)"),
        {"code": community.code, "week": week},
    )
    return cadence


@dataclass(frozen=True)
class LedgerRow:
    """One household's visit standing at `as_of` (all datetimes aware UTC)."""

    household_id: int
    grid_id: int
    grid_code: str
    community_code: str
    building: str
    unit: str
    floor: str
    room: str
    kind: str
    lon: float
    lat: float
    tags: tuple[str, ...]
    # Any care tag makes a household a must-visit (五必访).
    must_visit: bool
    visits_per_week: int
    last_visited_at: datetime | None
    last_attempt_at: datetime | None
    visits_this_week: int
    next_due_at: datetime
    due: bool
    overdue: bool


# Each household as it stood at `as_of`: its grid, kind and tags from its `household_history`
# row then (a past week's plan lists a household in the grid it was in, under the tags it
# had, as the week's report counts it), else as it is now. The candidates are the households
# in the grids now and those whose row then was in them, each found by index. The tags of an
# erased household (`erased_at`: removed long ago, its phone and care tags erased by retention)
# are served as none: its history rows keep them for the weeks' figures, not for reading again.
_LEDGER_SQL = text(
    """
    SELECT h.id, g.id AS grid_id, g.code AS grid_code, g.community_code,
           h.building, h.unit, h.floor, h.room, COALESCE(hh.kind, h.kind) AS kind,
           ST_X(h.location) AS lon, ST_Y(h.location) AS lat,
           CASE WHEN h.erased_at IS NULL THEN COALESCE(hh.tags, h.tags) ELSE '{}' END AS tags,
           h.created_at,
           last.visited_at AS last_visited_at, attempt.visited_at AS last_attempt_at,
           week.n AS visits_this_week
    FROM (
        SELECT h.id FROM households h WHERE h.grid_id = ANY(CAST(:grid_ids AS integer[]))
        UNION
        SELECT x.household_id FROM household_history x
        WHERE x.grid_id = ANY(CAST(:grid_ids AS integer[])) AND x.valid_from <= :as_of
          AND x.valid_to > :as_of) candidates
    JOIN households h ON h.id = candidates.id
    LEFT JOIN LATERAL (
        SELECT x.grid_id, x.kind, x.tags FROM household_history x
        WHERE x.household_id = h.id AND x.valid_from <= :as_of
          AND (x.valid_to IS NULL OR x.valid_to > :as_of)
        ORDER BY x.valid_from DESC LIMIT 1) hh ON true
    JOIN grids g ON g.id = COALESCE(hh.grid_id, h.grid_id)
    LEFT JOIN LATERAL (
        SELECT v.visited_at FROM visits v
        WHERE v.household_id = h.id AND v.visited_at <= :as_of AND v.outcome <> :not_a_visit
        ORDER BY v.visited_at DESC LIMIT 1) last ON true
    LEFT JOIN LATERAL (
        SELECT v.visited_at FROM visits v
        WHERE v.household_id = h.id AND v.visited_at <= :as_of
        ORDER BY v.visited_at DESC LIMIT 1) attempt ON true
    LEFT JOIN LATERAL (
        SELECT count(*) AS n FROM visits v
        WHERE v.household_id = h.id AND v.visited_at >= :week_start
          AND v.visited_at <= :as_of AND v.outcome <> :not_a_visit) week ON true
    WHERE g.id = ANY(CAST(:grid_ids AS integer[]))
      AND h.created_at <= :as_of  -- as it stood then: not households registered since,
      AND (h.removed_at IS NULL OR h.removed_at > :as_of)  -- nor those out of the register
    ORDER BY h.id
    """
)


def household_ledger(
    session: Session, *, grid_ids: Iterable[int], as_of: datetime
) -> list[LedgerRow]:
    """The ledger of every household of the grids, as it stood at `as_of` (aware datetime):
    households registered after `as_of` are not in it, and each is in the grid, of the kind
    and with the care tags it had then (`household_history`).

    - `visits_per_week`: the community's cadence in force in `as_of`'s week, for the
      household's tags.
    - `last_visited_at`: the latest visit at or before `as_of` that found someone
      (outcome other than `nobody_home`); `last_attempt_at` counts every outcome.
    - `visits_this_week`: such visits in the ISO week (Asia/Shanghai) of `as_of`, up to `as_of`.
    - `next_due_at`: last visit + 7 days / visits_per_week; never visited: registration time +
      that interval.
    - `due`: the household still needs a visit this week (visits_this_week < visits_per_week).
    - `overdue`: `next_due_at` is before `as_of`.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    grid_ids = sorted(set(grid_ids))
    if not grid_ids:
        return []
    week = week_of(as_of)
    week_start, _ = week_bounds(week)
    communities = cadences_in_week(session, grid_ids, week)
    rows = session.execute(
        _LEDGER_SQL,
        {
            "grid_ids": grid_ids,
            "as_of": as_of,
            "week_start": week_start,
            "not_a_visit": NOT_A_VISIT,
        },
    )
    ledger = []
    for r in rows:
        per_week = communities[r.community_code].per_week(r.tags)
        interval = timedelta(days=7) / per_week
        next_due = (r.last_visited_at or r.created_at) + interval
        ledger.append(
            LedgerRow(
                household_id=r.id,
                grid_id=r.grid_id,
                grid_code=r.grid_code,
                community_code=r.community_code,
                building=r.building,
                unit=r.unit,
                floor=r.floor,
                room=r.room,
                kind=r.kind,
                lon=r.lon,
                lat=r.lat,
                tags=tuple(r.tags),
                must_visit=bool(r.tags),
                visits_per_week=per_week,
                last_visited_at=r.last_visited_at,
                last_attempt_at=r.last_attempt_at,
                visits_this_week=r.visits_this_week,
                next_due_at=next_due,
                due=r.visits_this_week < per_week,
                overdue=next_due < as_of,
            )
        )
    return ledger
