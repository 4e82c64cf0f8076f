"""The three rates (三率) a community is judged by: response, resolution and satisfaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from api.models import Grid, Task

RESOLVED_STATUSES = ("resolved", "callback", "closed")


def percent(part: int, whole: int) -> float | None:
    """part / whole in per cent with one decimal, half up, as the database's `gw_pct` rounds
    the report's figures (a float's `round` goes half to even: 1 of 16 gave 6.2, not 6.3);
    None when there is nothing to divide by."""
    if not whole:
        return None
    exact = Decimal(100 * part) / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Rates:
    """Counts and rates of tasks opened in a period; a rate is None when nothing was counted.

    - response: first contact made within the first-contact deadline, of tasks opened;
    - resolution: resolved (resolved, called back or closed), of tasks opened;
    - satisfaction: satisfied or basically satisfied, of tasks whose resident was called back.

    A task `transferred` (its ticket re-dispatched to another community while open) is not
    counted at all; one resolved before the re-dispatch counts as it stood.
    """

    opened: int
    responded_in_time: int
    resolved: int
    overdue: int
    rated: int
    satisfied: int

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return percent(part, whole)

    @property
    def response_rate(self) -> float | None:
        return self._rate(self.responded_in_time, self.opened)

    @property
    def resolution_rate(self) -> float | None:
        return self._rate(self.resolved, self.opened)

    @property
    def satisfaction_rate(self) -> float | None:
        return self._rate(self.satisfied, self.rated)

    def as_dict(self) -> dict:
        return {
            "opened": self.opened,
            "resolved": self.resolved,
            "overdue": self.overdue,
            "response_rate": self.response_rate,
            "resolution_rate": self.resolution_rate,
            "satisfaction_rate": self.satisfaction_rate,
            "rated": self.rated,  # the verdicts the satisfaction rate rests on
        }


EMPTY = Rates(0, 0, 0, 0, 0, 0)


def three_rates(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    grid_ids: Iterable[int] | None = None,
    community_code: str | None = None,
    group_by_grid: bool = False,
    now: datetime | None = None,
    source: str | None = None,
) -> dict[int | None, Rates]:
    """Rates of tasks opened in [start, end), for some grids or a community (of one `source`,
    or of all).

    Returns {grid_id: Rates} when `group_by_grid`, else {None: Rates} for the whole selection.
    A task is overdue when its deadline passed before the cutoff and it was not resolved by
    then (`resolved_at`): the cutoff is the period's end, or `now` while the period is under
    way, so a past period reads the same whenever it is read, as the weekly report's 超期.
    """
    cutoff = min(now, end) if now is not None else end
    resolved = Task.status.in_(RESOLVED_STATUSES)
    # Resolved in time: resolved at the cutoff or before (one with no time recorded counts as
    # in time, as in the report); resolved after it was still open, and late, then.
    resolved_by_cutoff = and_(
        resolved, func.coalesce(Task.resolved_at, Task.closed_at, cutoff) <= cutoff
    )
    columns = [
        func.count(Task.id),
        func.count(Task.id).filter(
            and_(
                Task.first_contact_at.is_not(None),
                Task.first_contact_at
                <= func.coalesce(Task.first_contact_due_at, Task.first_contact_at),
            )
        ),
        func.count(Task.id).filter(resolved),
        func.count(Task.id).filter(and_(Task.due_at < cutoff, ~resolved_by_cutoff)),
        func.count(Task.satisfaction),
        func.sum(case((Task.satisfaction.in_(("satisfied", "basically_satisfied")), 1), else_=0)),
    ]
    stmt = select(Task.grid_id if group_by_grid else None, *columns).where(
        Task.created_at >= start,
        Task.created_at < end,
        # A ticket the hotline re-dispatched (改派) before it was done was not this grid's: it
        # counts for the community it went to, once, as the task opened there.
        Task.status != "transferred",
    )
    if source is not None:
        stmt = stmt.where(Task.source == source)
    if grid_ids is not None:
        stmt = stmt.where(Task.grid_id.in_(list(grid_ids)))
    if community_code is not None:
        stmt = stmt.where(
            Task.grid_id.in_(select(Grid.id).where(Grid.community_code == community_code))
        )
    if group_by_grid:
        stmt = stmt.group_by(Task.grid_id)
    result: dict[int | None, Rates] = {}
    for key, opened, responded, done, overdue, rated, satisfied in session.execute(stmt):
        result[key] = Rates(opened, responded, done, overdue, rated, int(satisfied or 0))
    if not group_by_grid and None not in result:
        result[None] = EMPTY
    return result
