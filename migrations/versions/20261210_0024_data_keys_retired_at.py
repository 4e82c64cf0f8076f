"""A rotation retires the old data key before re-sealing: `data_keys.retired_at`, `emptied_at`.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-10 09:00:00+00:00

`gridwork security encrypt` (a rotation) sets `retired_at` on every key but the new one, in a
transaction of its own, before it re-seals. From then on a process still running on a retired
key cannot commit a value sealed by it (api/keyguard.py locks its key's row FOR SHARE and reads
`retired_at` before such a commit), so no value is left behind the re-sealing scan; the retired
records are deleted once every value is re-sealed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("data_keys", sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("data_keys", sa.Column("emptied_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # 0022 knew no retired keys: a key no data needs any more is forgotten, as it did.
    op.execute("DELETE FROM data_keys WHERE emptied_at IS NOT NULL")
    op.drop_column("data_keys", "emptied_at")
    op.drop_column("data_keys", "retired_at")
