"""A stored report records how many visits of its week its figures counted.

`reports.visits_seen`: the report's own `totals.visits` (its community's grids that existed
during the week, attempts with nobody home included), read by the statement that computed its
figures, so from the same snapshot. A stored report's `late_visits` is the live count of those
visits minus this: the visits the live report counts and the stored one did not. Before, it
was the visits whose `received_at` was later than the report's `created_at`; but the run reads
`created_at` as it begins and the figures later, community by community, and `received_at` is
stamped as a sync request begins, not as it commits: a visit could be in the stored figures and
late as well, or in neither.

Nullable, no backfill: the visits a stored report counted cannot be known afterwards; a report
stored before this revision (NULL) keeps the rule by arrival time.

Revision ID: 0062
Revises: 0061
Create Date: 2027-01-13 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0062"
down_revision: str | None = "0061"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: a change of the catalogue, no table rewrite.
    op.add_column("reports", sa.Column("visits_seen", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("reports", "visits_seen")
