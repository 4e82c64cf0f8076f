"""未诉先办 campaigns: one check opened in every grid of a community at once.

Before the rainy season the drains are cleared, before windy days every grid looks for what may
fall (domain.md: "act before the complaint"). The office opened such a check grid by grid, one
task at a time, each placed by a click on the map. A campaign opens it in each grid named (by
default every grid the caller leads in the community: the admin's every grid, a leader's own),
each a `proactive` task standing at a point of its grid and dispatched there as any task is
(`tasks.create_task`): the worker on duty, else the reliever or B-post, else the leader.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shapely import wkb
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import errors
from api.models import Grid, Task
from api.scope import Scope
from api.services import tasks
from api.services.community_settings import get_community

MAX_GRIDS = 500  # a community has a few dozen; a district's worth is a mistake


def open_campaign(
    session: Session,
    scope: Scope,
    community_code: str,
    data: dict[str, Any],
    *,
    now: datetime,
) -> list[Task]:
    """Open the check in each grid named (`data["grids"]`, codes), else in every grid of the
    community the caller leads; one task a grid, in the order of the grids' codes.

    The community's admin and its grid leaders (their own grids) open campaigns; anyone else
    is refused (403), as is a grid named that the caller does not lead. A code naming no grid
    in service in the community is a 422 naming `grids`. All or nothing: the caller's
    transaction holds every task."""
    get_community(session, scope, community_code)  # 404 for one outside the caller's reach
    scope.require_writer()
    if scope.role not in ("community_admin", "grid_leader"):
        raise errors.Forbidden("A community's admin and its grid leaders open campaigns.")
    in_service = select(Grid).where(
        Grid.community_code == community_code, Grid.retired_at.is_(None)
    )
    named = data.get("grids")
    if named:
        found = {g.code: g for g in session.scalars(in_service.where(Grid.code.in_(named)))}
        unknown = [code for code in dict.fromkeys(named) if code not in found]
        if unknown:
            message = f"No grid in service in community {community_code}: {', '.join(unknown)}."
            raise errors.Unprocessable(message, errors={"json": {"grids": [message]}})
        grids = [found[code] for code in sorted(found)]
        for grid in grids:
            if not scope.leads_grid(grid):
                raise errors.Forbidden(f"Grid {grid.code} is not one you lead.")
    else:
        grids = [g for g in session.scalars(in_service.order_by(Grid.code)) if scope.leads_grid(g)]
        if not grids:
            raise errors.Forbidden(f"You lead no grid in service in community {community_code}.")
    points = dict(
        session.execute(
            select(Grid.id, func.ST_AsBinary(func.ST_PointOnSurface(Grid.boundary))).where(
                Grid.id.in_([g.id for g in grids])
            )
        ).all()
    )
    task_data = {
        "source": "proactive",
        "type": data.get("type") or "report",
        "title": data["title"],
        "description": data.get("description") or "",
        "urgency": data.get("urgency") or "general",
    }
    return [
        tasks.create_task(
            session,
            scope,
            dict(task_data),
            actor_id=scope.user_id,
            now=now,
            grid=grid,
            point=wkb.loads(bytes(points[grid.id])),
        )
        for grid in grids
    ]
