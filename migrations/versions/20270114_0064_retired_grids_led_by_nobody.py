"""Retired grids are led by nobody: the leaderships they kept open end at their retirement.

Retiring a grid left its `leader_id` and its leadership (`grid_leaderships`, migration 0063)
as they were: its leader led a grid off the map, kept it in their scope, and held it on every
later day. Retirement now ends the leadership at the retirement's time and clears the leader
(`services.grids._close`); the grids retired before this migration are brought to the same
state. Each open period ends at its grid's `retired_at` (or when it began, if later: one opened
by 0063 at 2000-01-01 never is), before `leader_id` is cleared, so the leadership trigger finds
no period open and stamps none at the migration's time. Down: nothing to undo (the leaders
of retired grids are not restored; an import bringing a grid back finds its last leader in
`grid_leaderships`).

Revision ID: 0064
Revises: 0063
Create Date: 2027-01-14 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0064"
down_revision: str | None = "0063"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE grid_leaderships l SET ended_at = greatest(l.started_at, g.retired_at)
        FROM grids g
        WHERE g.id = l.grid_id AND g.retired_at IS NOT NULL AND l.ended_at IS NULL
        """
    )
    op.execute("UPDATE grids SET leader_id = NULL WHERE retired_at IS NOT NULL")


def downgrade() -> None:
    pass
