"""Visit photos record when their stored bytes were known clean (`stripped_at`).

`gridwork photos scrub` read every stored photo on each run to find it carries no metadata.
Uploads store the image stripped and set `stripped_at`; the scrub sets it on the photos it
finds clean or strips, and reads only the photos where it is NULL.

Existing rows cannot be known clean without reading their bytes: they start NULL, and the
next scrub reads and marks them. Adding a nullable column without a default rewrites nothing.
The partial index serves the scrub's walk (by id) over the photos not marked yet.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-11 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE visit_photos ADD COLUMN stripped_at timestamptz")
    op.execute(
        "CREATE INDEX ix_visit_photos_not_stripped ON visit_photos (id) WHERE stripped_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_visit_photos_not_stripped")
    op.execute("ALTER TABLE visit_photos DROP COLUMN stripped_at")
