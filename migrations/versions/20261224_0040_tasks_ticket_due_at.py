"""Tasks: the deadline a 12345 ticket came with (`ticket_due_at`), kept by a reopening.

A hotline ticket is dispatched with its own time limit (办理时限), the deadline the city
measures the community by; `POST /tasks` takes it as `due_at`. A reopening set the deadline
again from the task's urgency (a week from the reopening for a general one), past the
hotline's: the task showed on time while the ticket was overdue. The given deadline is now
kept in its own column, and a reopening keeps it (`tasks.transition`).

Backfill: a hotline task never reopened still holds the deadline it was opened with; where that
is not its opening time plus the hours its community's settings (or the defaults) give its
type and urgency, the ticket came with it. A task reopened before this migration lost its
ticket's deadline already and stays NULL (the urgency sets its next round), as does one whose
given deadline happened to equal the computed one (or whose community's settings changed
since: then it is taken as given, which keeps its deadline on a reopening).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-24 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE tasks ADD COLUMN ticket_due_at timestamptz")
    op.execute(
        """
        UPDATE tasks t SET ticket_due_at = t.due_at
        FROM grids g JOIN communities c ON c.code = g.community_code
        WHERE g.id = t.grid_id
          AND t.source = 'hotline'
          AND NOT EXISTS (
              SELECT 1 FROM task_events e WHERE e.task_id = t.id AND e.action = 'reopen'
          )
          AND t.due_at <> t.created_at + interval '1 hour' * COALESCE(
              (c.settings #>> ARRAY['tasks', 'by_type', t.type, 'deadline_hours', t.urgency])
                  ::float8,
              (c.settings #>> ARRAY['tasks', 'deadline_hours', t.urgency])::float8,
              CASE t.urgency
                  WHEN 'danger' THEN 2 WHEN 'utility' THEN 24 WHEN 'general' THEN 168
                  ELSE 360
              END
          )
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE tasks DROP COLUMN ticket_due_at")
