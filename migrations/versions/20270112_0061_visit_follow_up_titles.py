"""A visit's follow-up says what it is about and how urgent it is.

`visits.follow_up_title`: one plain line ("3号楼楼道灯不亮"), its task's title (NULL: none
given, the task is titled 入户走访跟进 as before); `visits.follow_up_urgency`: its task's urgency,
which sets the deadline, one of a task's. Both NULL without a follow-up (check constraints),
and for the follow-ups recorded before (general tasks, untitled: the answer says `general`).

Revision ID: 0061
Revises: 0060
Create Date: 2027-01-12 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0061"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A task's urgencies (api.models.visits.URGENCIES), as this revision wrote them.
URGENCIES = "('danger', 'utility', 'general', 'complex')"


def upgrade() -> None:
    # One ALTER TABLE: new nullable columns without a default are a change of the catalogue,
    # and their two checks are verified in one pass over the table (NOT VALID would skip it,
    # but a NOT VALID check breaks the reflection `alembic check` runs). No backfill: a
    # follow-up recorded before has neither (its task was a general one, titled 入户走访跟进, and
    # the answer says `general`); rewriting every follow-up of a city's ten million visits held
    # the table's lock for the whole UPDATE, and the visits' statement triggers recounted
    # every household they touched.
    op.execute(
        "ALTER TABLE visits"
        " ADD COLUMN follow_up_title varchar(200),"
        " ADD COLUMN follow_up_urgency varchar(10),"
        " ADD CONSTRAINT ck_visits_follow_up_title_valid"
        " CHECK (follow_up_title IS NULL OR follow_up),"
        " ADD CONSTRAINT ck_visits_follow_up_urgency_valid CHECK"
        f" (follow_up_urgency IS NULL OR (follow_up AND follow_up_urgency IN {URGENCIES}))"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_visits_follow_up_urgency_valid"), "visits", type_="check")
    op.drop_constraint(op.f("ck_visits_follow_up_title_valid"), "visits", type_="check")
    op.drop_column("visits", "follow_up_urgency")
    op.drop_column("visits", "follow_up_title")
