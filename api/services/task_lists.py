"""The need list and the problem list (需求清单 / 问题清单): their figures per grid.

A visit's follow-up is a task on one of the two lists (`Task.list_kind`, from the visit's
`follow_up_kind`); so is a task opened with a `list` (a resident's wish told at the window, a
problem a worker found on rounds). The community office reads each list as a ledger of a period
(an ISO week, or [start, end)):

- `raised`: put on the list in the period (the task opened then);
- `done`: done in the period (resolved, called back or closed then);
- `open`: on the list and not done as the period closed (its end, or now while it is under
  way), whenever it was raised: the list's backlog then.

A task is done when it is resolved, called back or closed (`RESOLVED_STATUSES`, as the three
rates count it) at `resolved_at` (else `closed_at`; else, a task with no time recorded, when it
was opened); a reopened task is open again. So a past period reads the same later, unless a
task done in it is reopened. The weekly report counts the same in SQL (api/services/reports.py,
`_LIST_COUNTS`): change both together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from api.models import Task
from api.models.tasks import TASK_LISTS
from api.scope import Scope
from api.services.grids import grids_asked
from api.services.rates import RESOLVED_STATUSES
from api.services.weeks import period

LIST_FIGURES = ("raised", "done", "open")


def _empty() -> dict[str, dict[str, int]]:
    return {kind: dict.fromkeys(LIST_FIGURES, 0) for kind in TASK_LISTS}


def list_counts(
    session: Session, grid_ids: list[int], start: datetime, end: datetime, *, now: datetime
) -> dict[int, dict[str, dict[str, int]]]:
    """{grid id: {list: {raised, done, open}}} for these grids over [start, end); every grid
    given has its entry (zeros when nothing was on its lists)."""
    cutoff = min(now, end)
    done_at = func.coalesce(Task.resolved_at, Task.closed_at, Task.created_at)
    done_by_cutoff = and_(Task.status.in_(RESOLVED_STATUSES), done_at <= cutoff)
    stmt = (
        select(
            Task.grid_id,
            Task.list_kind,
            func.count().filter(Task.created_at >= start, Task.created_at < end),
            func.count().filter(
                Task.status.in_(RESOLVED_STATUSES), done_at >= start, done_at < end
            ),
            func.count().filter(Task.created_at < cutoff, ~done_by_cutoff),
        )
        .where(
            Task.grid_id.in_(grid_ids),
            Task.list_kind.is_not(None),
            Task.created_at < end,
            Task.status != "transferred",
        )
        .group_by(Task.grid_id, Task.list_kind)
    )
    out = {grid_id: _empty() for grid_id in grid_ids}
    for grid_id, kind, raised, done, still_open in session.execute(stmt):
        out[grid_id][kind] = {"raised": raised, "done": done, "open": still_open}
    return out


def task_lists(
    session: Session,
    scope: Scope,
    *,
    now: datetime,
    grid: str | None = None,
    community: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    week: str | None = None,
) -> dict[str, Any]:
    """The need and problem lists of one grid, or of each grid of a community, that the
    caller can see (a leader's: their own grids), for a period or a week."""
    start, end = period(start, end, week)
    rows = grids_asked(session, scope, grid=grid, community=community)
    counts = list_counts(session, [row.id for row in rows], start, end, now=now)
    totals = _empty()
    for figures in counts.values():
        for kind, numbers in figures.items():
            for name, n in numbers.items():
                totals[kind][name] += n
    return {
        "start": start,
        "end": end,
        "grid": grid,
        "community": community,
        **totals,
        "grids": [{"code": row.code, "name": row.name, **counts[row.id]} for row in rows],
    }
