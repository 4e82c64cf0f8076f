"""Who may see and change what: the one place every query's visibility is decided."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from api import errors
from api.models import Grid, Household, User, user_grids


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
    def for_user(cls, session: Session, user: User) -> Scope:
        grid_ids: set[int] = set()
        if user.role in ("worker", "grid_leader"):
            grid_ids.update(
                session.scalars(select(user_grids.c.grid_id).where(user_grids.c.user_id == user.id))
            )
            if user.role == "grid_leader":
                grid_ids.update(session.scalars(select(Grid.id).where(Grid.leader_id == user.id)))
        return cls(
            user_id=user.id,
            role=user.role,
            community_code=user.community_code,
            district_code=user.district_code or (user.community_code or "")[:6] or None,
            grid_ids=frozenset(grid_ids),
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

    # --- writes ----------------------------------------------------------------------------
    def require_grid_admin(self, community_code: str) -> None:
        """Drawing grids is the community office's job, within its own community."""
        if self.role != "community_admin":
            raise errors.Forbidden("Only a community admin may create or change grids.")
        if community_code != self.community_code:
            raise errors.Forbidden(
                f"Community {community_code} is outside your community {self.community_code}."
            )

    def require_household_writer(self, grid: Grid) -> None:
        """Workers and leaders register households in their grids; admins in their community."""
        if self.role == "district_viewer":
            raise errors.Forbidden("A district viewer has read-only access.")
        if not self.sees_grid(grid):
            raise errors.Forbidden(f"Grid {grid.code} is outside your grids.")
