"""Photos sealed at rest: the key that names their files.

From this revision photo files are sealed by the data key (`api/crypto.py`, `seal_bytes`) and
stored under a name the disk alone cannot tie to the image: the SHA-256 of the image (the
`visit_photos.sha256` column, the ETag) enciphered with this key (`api/services/photos.py`,
`SealedStorage`). The key is random, made here once and never changed: it is not a data key
and is not rotated, since renaming every file would buy nothing against a reader of this table,
who reads the hashes in `visit_photos` anyway.

The downgrade leaves the table where it is: without the key the sealed files cannot be found
again by their hash, and code from before this revision cannot open sealed photos at all. The
upgrade keeps a key it finds (an upgrade after such a downgrade).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-20 09:00:00+00:00
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS photo_storage_key ("
        " id smallint PRIMARY KEY CONSTRAINT ck_photo_storage_key_one CHECK (id = 1),"
        " name_key bytea NOT NULL"
        " CONSTRAINT ck_photo_storage_key_length CHECK (length(name_key) = 32),"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    op.get_bind().execute(
        sa.text(
            "INSERT INTO photo_storage_key (id, name_key) VALUES (1, :key) ON CONFLICT DO NOTHING"
        ),
        {"key": os.urandom(32)},
    )


def downgrade() -> None:
    # Kept on purpose (see above): dropping it would strand every sealed photo file.
    pass
