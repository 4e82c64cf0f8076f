"""Who may see and change what: the one place every query's visibility is decided."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Integer,
    and_,
    cast,
    false,
    func,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import array as sql_array
from sqlalchemy.orm import Session

from api import errors
from api.db import is_any_of
from api.models import (
    Grid,
    GridHolding,
    GridLeadership,
    Household,
    Leave,
    Roster,
    Shift,
    ShiftChange,
    Task,
    User,
    Visit,
    user_grids,
)
from api.models.tasks import OPEN_STATUSES
from api.services.weeks import LOCAL, week_of


class ScopeGrids(NamedTuple):
    """The grids a user is assigned (`user_grids`) and leads (`grids.leader_id`), read with
    the token check (`sessions.token_state`) so a request's scope costs no statement more."""

    user_id: int
    assigned: tuple[int, ...]
    led: tuple[int, ...]


@dataclass(frozen=True)
class Scope:
    """The reach of one user: their own grids, their community, or their district.

    Every read filters through `grids()` / `households()`; every write asks `require_*`.
    Out-of-scope objects look absent (404), so ids do not leak what exists elsewhere.
    """

    user_id: int
    role: str
    community_code: str | None
    district_code: str | None
    grid_ids: frozenset[int]

    @classmethod
    def for_user(cls, session: Session, user: User, grids: ScopeGrids | None = None) -> Scope:
        """The user's scope; their grids from `grids` when it is theirs (read with the token),
        else from the database."""
        grid_ids: set[int] = set()
        if user.role in ("worker", "grid_leader"):
            if grids is None or grids.user_id != user.id:
                assigned = select(user_grids.c.grid_id).where(user_grids.c.user_id == user.id)
                led = select(Grid.id).where(Grid.leader_id == user.id, Grid.retired_at.is_(None))
                grids = ScopeGrids(
                    user.id,
                    tuple(session.scalars(assigned)),
                    tuple(session.scalars(led)) if user.role == "grid_leader" else (),
                )
            grid_ids.update(grids.assigned)
            if user.role == "grid_leader":
                grid_ids.update(grids.led)
        return cls(
            user_id=user.id,
            role=user.role,
            community_code=user.community_code,
            district_code=user.district_code or (user.community_code or "")[:6] or None,
            grid_ids=frozenset(grid_ids),
        )

    @classmethod
    def of_community(cls, community_code: str) -> Scope:
        """A community admin's reach with no user behind it (user id 0, which no user has):
        the console acting for the community (`gridwork export households`)."""
        return cls(
            user_id=0,
            role="community_admin",
            community_code=community_code,
            district_code=community_code[:6],
            grid_ids=frozenset(),
        )

    # --- reads -----------------------------------------------------------------------------
    def grids(self) -> ColumnElement[bool]:
        """A condition on `Grid` selecting the grids this user may see."""
        if self.role in ("worker", "grid_leader"):
            return Grid.id.in_(self.grid_ids) if self.grid_ids else false()
        if self.role == "community_admin":
            return Grid.community_code == self.community_code
        if self.role == "district_viewer":
            return Grid.community_code.startswith(self.district_code or "-", autoescape=True)
        return false()

    def households(self) -> ColumnElement[bool]:
        """A condition on `Household` selecting the households this user may see."""
        if self.role in ("worker", "grid_leader"):
            return Household.grid_id.in_(self.grid_ids) if self.grid_ids else false()
        return Household.grid_id.in_(select(Grid.id).where(self.grids()))

    def in_grids(self, grid_id_column) -> ColumnElement[bool]:
        """A condition on any `grid_id` column (visits, tasks, ...): rows of the grids seen."""
        if self.role in ("worker", "grid_leader"):
            return grid_id_column.in_(self.grid_ids) if self.grid_ids else false()
        return grid_id_column.in_(select(Grid.id).where(self.grids()))

    def communities(self, column) -> ColumnElement[bool]:
        """A condition on a community-code column."""
        if self.role == "district_viewer":
            return column.startswith(self.district_code or "-", autoescape=True)
        if self.community_code:
            return column == self.community_code
        return false()

    def tasks(self) -> ColumnElement[bool]:
        """A condition on `Task`: tasks of visible grids, any task assigned to the user (a
        reliever covering another grid sees the tasks dispatched to them), and any task they
        opened (the window worker follows up a resident's request opened for another grid).
        Not a visit's follow-up: the visit opened it for the grid (its worker's own visit, in a
        grid they left, is their record only; the task's title, note and steps are the grid's)."""
        if self.role in ("worker", "grid_leader"):
            opened = and_(Task.created_by_id == self.user_id, Task.source != "visit")
            mine = or_(Task.assignee_id == self.user_id, opened)
            return or_(Task.grid_id.in_(self.grid_ids), mine) if self.grid_ids else mine
        return Task.grid_id.in_(select(Grid.id).where(self.grids()))

    def reaches_complainant(self, task: Task) -> bool:
        """Whether this user's reach lets them read the task's complainant (the role permitting,
        `privacy`): an office or viewer reads its community's or district's (`tasks`); a worker
        or grid leader those of their grids' tasks, of the tasks they hold still open (a
        reliever's), and of those they opened. One they worked in a grid they left, and no
        longer hold open (resolved, called back, closed), is their record of the work: read
        without its complainant, who is the grid's to contact now."""
        if self.role not in ("worker", "grid_leader") or task.grid_id in self.grid_ids:
            return True
        if task.created_by_id == self.user_id and task.source != "visit":
            return True
        return task.assignee_id == self.user_id and task.status in OPEN_STATUSES

    def visible_tasks(self, session: Session, task_ids: Iterable[int | None]) -> set[int]:
        """Those of the tasks this user may see, in one query: what a link to another task may
        name (a re-dispatched ticket's tasks, a 409 on a repeated ticket)."""
        wanted = {task_id for task_id in task_ids if task_id is not None}
        if not wanted:
            return set()
        return set(
            session.scalars(
                select(Task.id).where(is_any_of(Task.id, "task_ids", wanted, Integer), self.tasks())
            )
        )

    def sees_task(self, session: Session, task_id: int | None) -> bool:
        """Whether this user may see the task (`visible_tasks` of one)."""
        return task_id is not None and task_id in self.visible_tasks(session, [task_id])

    def leads_grid(self, grid: Grid) -> bool:
        """The grid's leader, or the admin of its community: who reassigns, closes, reopens.

        The leader it names (`leader_id`), the one told of its escalations (`tasks.overseers`):
        a grid leader who merely holds the grid (a member of its team, or its leader before
        another was named) sees its tasks but does not lead them."""
        if self.role == "community_admin":
            return grid.community_code == self.community_code
        return self.role == "grid_leader" and grid.leader_id == self.user_id

    def require_task_mover(self, grid: Grid) -> None:
        """A task dispatched to the wrong grid is moved on by whoever answers for the grid it is
        in: its leader, or the community admin. The grid it goes to need not be theirs (the
        leader of the wrong grid knows it is not theirs); it is of the same community
        (`tasks.move_task`)."""
        if not self.leads_grid(grid):
            raise errors.Forbidden(
                "Only the grid's leader or the community admin moves a task to another grid."
            )

    def sees_grid(self, grid: Grid) -> bool:
        if self.role in ("worker", "grid_leader"):
            return grid.id in self.grid_ids
        if self.role == "community_admin":
            return grid.community_code == self.community_code
        if self.role == "district_viewer":
            return grid.community_code.startswith(self.district_code or "-")
        return False

    @property
    def sees_personal_details(self) -> bool:
        """Phones in full are for those who contact residents; district viewers see them masked."""
        return self.role != "district_viewer"

    def users(self) -> ColumnElement[bool]:
        """The accounts one may look up: a worker their own; a grid leader theirs and those
        of the workers in their grids; an admin their community's; a viewer their
        district's."""
        if self.role == "worker":
            return User.id == self.user_id
        if self.role == "grid_leader":
            colleagues = select(user_grids.c.user_id).where(
                is_any_of(user_grids.c.grid_id, "colleague_grids", sorted(self.grid_ids), Integer)
            )
            return or_(
                User.id == self.user_id,
                and_(User.community_code == self.community_code, User.id.in_(colleagues)),
            )
        if self.role == "community_admin":
            return User.community_code == self.community_code
        if self.role == "district_viewer":
            return User.district_code == self.district_code
        return false()

    # --- writes ----------------------------------------------------------------------------
    def require_account_admin(self, community_code: str | None) -> None:
        """Accounts of a community are its admins' to open, change, switch off and reset."""
        if self.role != "community_admin":
            raise errors.Forbidden("Only a community admin manages accounts.")
        if community_code != self.community_code:
            raise errors.Forbidden(
                f"Community {community_code} is outside your community {self.community_code}."
            )

    def require_grid_admin(self, community_code: str) -> None:
        """Drawing grids is the community office's job, within its own community."""
        if self.role != "community_admin":
            raise errors.Forbidden("Only a community admin may create or change grids.")
        if community_code != self.community_code:
            raise errors.Forbidden(
                f"Community {community_code} is outside your community {self.community_code}."
            )

    def require_writer(self) -> None:
        """A district viewer reads their district and changes nothing in it."""
        if self.role == "district_viewer":
            raise errors.Forbidden("A district viewer has read-only access.")

    def require_household_writer(self, grid: Grid) -> None:
        """Workers and leaders register households in their grids; admins in their community."""
        self.require_writer()
        if not self.sees_grid(grid):
            raise errors.Forbidden(f"Grid {grid.code} is outside your grids.")

    def require_register_export(self) -> None:
        """The register file (every household of one's reach, phones in full) is for those
        who keep the register: workers and leaders of their grids, admins of their community.
        A district viewer sees phones masked and writes nothing: a file of theirs, imported
        again, could only do damage."""
        if self.role == "district_viewer":
            raise errors.Forbidden(
                "A district viewer cannot export the register; the reports give the figures."
            )

    def require_register_importer(self) -> None:
        """A register file imports households: a district viewer, who registers none, is
        refused before the file is read (each of its rows was refused in a 422)."""
        self.require_writer()

    # --- rosters (A-post / B-post shifts, leave) --------------------------------------------
    def rosters(self) -> ColumnElement[bool]:
        """A condition on `Roster`: workers and district viewers read published rosters of their
        community / district; leaders and admins also their community's drafts."""
        from api.models import Roster

        where = self.communities(Roster.community_code)
        if self.role in ("grid_leader", "community_admin"):
            return where
        return and_(where, Roster.status == "published")

    def swaps(self) -> ColumnElement[bool]:
        """A condition on `ShiftSwap`: the swaps one is a worker of; leaders and admins also
        every swap of their community's rosters (they decide them)."""
        from api.models import ShiftSwap

        own = or_(ShiftSwap.requester_id == self.user_id, ShiftSwap.other_worker_id == self.user_id)
        if self.role not in ("grid_leader", "community_admin") or not self.community_code:
            return own
        community = ShiftSwap.shift_id.in_(
            select(Shift.id)
            .join(Roster, Roster.id == Shift.roster_id)
            .where(Roster.community_code == self.community_code)
        )
        return or_(own, community)

    def edits_roster(self, community_code: str) -> bool:
        return self.role in ("grid_leader", "community_admin") and (
            community_code == self.community_code
        )

    def require_roster_editor(self, community_code: str) -> None:
        """Leaders and admins draft, edit and publish their own community's rosters."""
        if not self.edits_roster(community_code):
            raise errors.Forbidden(
                f"Only a grid leader or admin of community {community_code} may change its rosters."
            )

    def require_roster_settings_admin(
        self, community_code: str, what: str = "roster settings"
    ) -> None:
        """The community's own admin, who alone changes its settings (`what`, for the 403)."""
        if self.role != "community_admin" or community_code != self.community_code:
            raise errors.Forbidden(
                f"Only an admin of community {community_code} may change its {what}."
            )

    def leaves(self) -> ColumnElement[bool]:
        """A condition on `Leave`: a worker their own; leaders and admins their community's;
        district viewers their district's."""
        from api.models import Leave

        if self.role == "worker":
            return Leave.worker_id == self.user_id
        return Leave.worker_id.in_(select(User.id).where(self.communities(User.community_code)))

    def require_task_creator(self, session: Session, grid: Grid, *, source: str, day: date) -> None:
        """Workers and leaders open tasks in their grids; admins in their community. At the
        hall window (an A-post of a published roster on `day`, Asia/Shanghai) a worker or leader
        also opens window tasks for any grid of their community: the resident who walks in may
        live in any of them."""
        self.require_writer()
        if self.sees_grid(grid):
            return
        window = (
            source == "window"
            and grid.community_code == self.community_code
            and self.at_window(session, day)
        )
        if not window:
            raise errors.Forbidden(f"Grid {grid.code} is outside your grids.")

    def require_redispatcher(self) -> None:
        """Saying the 12345 hotline re-dispatched a ticket here (改派) ends another community's
        task: the community office's word (it receives the tickets), not a field worker's."""
        if self.role != "community_admin":
            raise errors.Forbidden(
                "Only the community admin registers a ticket the 12345 hotline re-dispatched "
                "(改派): it passes another community's task on to yours."
            )

    def window_households(self, session: Session, day: date) -> ColumnElement[bool] | None:
        """A condition on `Household`: those the hall window finds for a request on `day` (by
        the address the resident says, `households.window_lookup`; attached to a window task):
        every grid's of the community for whoever holds the A-post that day, the community's
        for its admin; None for anyone else (their own grids' are `households()`)."""
        if self.role == "community_admin":
            return self.households()
        if not self.at_window(session, day):
            return None
        return Household.grid_id.in_(
            select(Grid.id).where(Grid.community_code == self.community_code)
        )

    def at_window(self, session: Session, day: date) -> bool:
        """Whether this user holds the A-post (the hall window) on `day` in a published roster
        of their community (a draft grants nothing, as for relief), and is not on approved
        leave that day: until the shift is handed on the roster still names them, and the
        window's reach (every household of the community, tasks resolved at the window in
        their name) went on with a worker who was not at work."""
        if self.role not in ("worker", "grid_leader") or not self.community_code:
            return False
        return (
            session.scalar(
                select(Shift.id)
                .join(Roster, Roster.id == Shift.roster_id)
                .where(
                    Shift.worker_id == self.user_id,
                    Shift.post == "A",
                    Shift.date == day,
                    Roster.status == "published",
                    Roster.community_code == self.community_code,
                    self._at_work(Shift.date),
                )
                .limit(1)
            )
            is not None
        )

    # --- visits ----------------------------------------------------------------------------
    def visits(self) -> ColumnElement[bool]:
        """A condition on `Visit`: visits in the grids this user sees, and a worker's own."""
        if self.role in ("worker", "grid_leader"):
            own = Visit.worker_id == self.user_id
            return or_(Visit.grid_id.in_(self.grid_ids), own) if self.grid_ids else own
        return Visit.grid_id.in_(select(Grid.id).where(self.grids()))

    def holds_visit_grid(self, grid_id: int) -> bool:
        """Whether a visit of the grid is read as those who serve it read it (api.privacy).

        `visits()` also lets a worker or leader read their own visits in grids they do not
        hold (one they left, one they relieved for a day); those are their record only: what
        they did, not what they learnt of the residents, which is for whoever holds the grid
        now (`privacy.OWN_RECORD`). Other roles read only visits of their reach."""
        if self.role in ("worker", "grid_leader"):
            return grid_id in self.grid_ids
        return True

    def require_visit_recorder(self) -> None:
        """Visits are recorded by the people who walk the grids: workers and grid leaders."""
        if self.role not in ("worker", "grid_leader"):
            raise errors.Forbidden("Only grid workers and grid leaders record visits.")

    def _at_work(self, day) -> ColumnElement[bool]:
        """Not on approved leave on `day` (a date or a date column): a shift not yet handed on
        still names its worker, who is not at work that day."""
        return ~(
            select(Leave.id)
            .where(
                Leave.worker_id == self.user_id,
                Leave.status == "approved",
                Leave.start_date <= day,
                Leave.end_date >= day,
            )
            .exists()
        )

    def relief_grids(
        self, session: Session, dates: Iterable[date]
    ) -> dict[date, dict[int, datetime | None]]:
        """Grids this user is rostered in on each date: a B-post of a published roster (a draft
        grants nothing, as workers never see drafts). Outside their own grids that is a relief
        shift, naming the away holder in `relief_for_id` -- or naming nobody, in a grid nobody
        holds, where the worker sent to it must be let in all the same.

        Each grid with the moment it closed to them that day, None when open all day: the
        roster and leave as they stood through the day, not as they stand now. A shift handed
        on since (an edit or a swap: its change log, `ShiftChange.before`) was theirs until
        then (`changed_at`); leave for the day approved meanwhile closed it at the approval
        (`Leave.decided_at`: leave approved late for days gone by leaves those days' visits
        theirs; approved before the day, or with no time recorded, closes it all day). Judged
        at the sync, a morning's relief visits made offline were refused once the shift was
        handed on or the leave approved at noon, and for good: the day over, neither is undone.
        """
        dates = sorted(set(dates))
        relief: dict[date, dict[int, datetime | None]] = {d: {} for d in dates}
        if not dates:
            return relief
        published = Roster.status == "published"
        rostered = (
            select(
                Shift.date.label("day"),
                Shift.grid_id.label("grid_id"),
                cast(null(), DateTime(timezone=True)).label("until"),
            )
            .join(Roster, Roster.id == Shift.roster_id)
            .where(
                Shift.worker_id == self.user_id,
                Shift.post == "B",
                Shift.date.in_(dates),
                published,
            )
        )
        before = ShiftChange.before
        handed_on = (
            select(cast(before["date"].astext, Date), Grid.id, ShiftChange.changed_at)
            .join(Roster, Roster.id == ShiftChange.roster_id)
            .join(Grid, Grid.code == before["grid_code"].astext)
            .where(
                before.contains({"worker_id": self.user_id, "post": "B"}),
                before["date"].astext.in_([d.isoformat() for d in dates]),
                Roster.week.in_({week_of(d) for d in dates}),
                published,
            )
        )
        shifts = union_all(rostered, handed_on).subquery("shifts")
        approved = (
            select(func.min(func.coalesce(Leave.decided_at, cast("-infinity", DateTime(True)))))
            .where(
                Leave.worker_id == self.user_id,
                Leave.status == "approved",
                Leave.start_date <= shifts.c.day,
                Leave.end_date >= shifts.c.day,
            )
            .scalar_subquery()
        )
        until = func.least(shifts.c.until, approved)
        starts = cast(shifts.c.day, DateTime).op("AT TIME ZONE")(LOCAL.key)
        rows = session.execute(
            select(shifts.c.day, shifts.c.grid_id, until).where(
                or_(until.is_(None), until > starts)
            )
        )
        for day, grid_id, closed in rows:
            if grid_id in relief[day]:
                kept = relief[day][grid_id]
                closed = None if kept is None or closed is None else max(kept, closed)
            relief[day][grid_id] = closed
        return relief

    def periods(self):
        """This user's periods of holding a grid (`grid_holdings`) or leading one
        (`grid_leaderships`): a leader's grids are those they lead, assigned to them or not."""
        return union_all(
            *(
                select(t.grid_id, t.started_at, t.ended_at).where(t.user_id == self.user_id)
                for t in (GridHolding, GridLeadership)
            )
        ).subquery("periods")

    def held_grids(self, session: Session, dates: Iterable[date]) -> dict[date, set[int]]:
        """Grids this user held (or led) at some time of each date (a day in Asia/Shanghai),
        those given up since included: a visit recorded offline on Monday in the grid its
        worker then held may reach the server after the office gave them another."""
        dates = sorted(set(dates))
        held: dict[date, set[int]] = {d: set() for d in dates}
        if not dates:
            return held
        day = func.unnest(sql_array(dates, type_=Date)).table_valued("day").render_derived()
        starts = cast(day.c.day, DateTime).op("AT TIME ZONE")(LOCAL.key)
        ends = cast(day.c.day + 1, DateTime).op("AT TIME ZONE")(LOCAL.key)
        p = self.periods()
        rows = session.execute(
            select(day.c.day, p.c.grid_id).join(
                p, and_(p.c.started_at < ends, or_(p.c.ended_at.is_(None), p.c.ended_at >= starts))
            )
        )
        for on, grid_id in rows:
            held[on].add(grid_id)
        return held

    def grids_held_at(self, session: Session, moment: datetime) -> set[int]:
        """The grids this user held (or led) at `moment`."""
        p = self.periods()
        return set(
            session.scalars(
                select(p.c.grid_id).where(
                    p.c.started_at <= moment, or_(p.c.ended_at.is_(None), p.c.ended_at > moment)
                )
            )
        )

    def visit_grid_refusal(self, grid_id: int, grid_code: str, open_then: set[int]) -> str | None:
        """Why this user may not record a visit in the grid, or None when they may: one of
        their grids, or `open_then` to them when the visit was made (held that day, or relieved
        then: `relief_grids`)."""
        if grid_id in self.grid_ids or grid_id in open_then:
            return None
        return (
            f"Grid {grid_code} is not one of your grids and was not on the visit's date, nor "
            "are you its named reliever then."
        )

    def require_plan_reader(self, session: Session, worker: User) -> None:
        """Own plan; a leader reads their grids' workers' plans, an admin the community's."""
        if worker.id == self.user_id:
            return
        if self.role == "grid_leader" and self.grid_ids:
            shared = session.scalar(
                select(user_grids.c.grid_id).where(
                    user_grids.c.user_id == worker.id, user_grids.c.grid_id.in_(self.grid_ids)
                )
            )
            if shared is not None:
                return
        if self.role == "community_admin" and worker.community_code == self.community_code:
            return
        raise errors.NotFound(f"Worker {worker.id} not found.")

    def require_cadence_admin(self, community_code: str) -> None:
        """Visit cadences are set by the community office, for its own community."""
        if self.role != "community_admin" or community_code != self.community_code:
            raise errors.Forbidden("Only the community's admin may change its visit cadence.")
