"""The data keys that have sealed data here: a wrong GRIDWORK_DATA_KEY is refused at start-up.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 10:00:00+00:00

`data_keys` holds one row per key that has sealed a value in this database: its id (the first 8
hex digits of its SHA-256, as in `v1:<kid>:...`) and a canary sealed by it. The app reads this
small table at start-up instead of the sealed columns (visits alone are 10 M rows at city scale).

The data step reads every sealed column once (one pass per table: a few minutes for 10 M
visits) and records each key id it finds. A key held by the migrating process
(GRIDWORK_DATA_KEY, GRIDWORK_OLD_DATA_KEYS) gets its canary; a key id found without its key is
recorded without one, and the app will refuse to start until that key is configured. Values of
the first format (no key id; 0013 re-sealed them all) are recorded under the held key that
opens one of them; if none does, the migration stops and says so.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _configure_keys() -> None:
    from api import crypto
    from api.settings import load_config

    config = load_config()
    crypto.configure(config["DATA_KEY"], config.get("OLD_DATA_KEYS"))


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("kid", sa.String(length=8), nullable=False),
        sa.Column("canary", sa.Text(), nullable=True),
        sa.Column(
            "first_sealed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_data_keys")),
    )
    from api import crypto
    from api.services.encryption import scan_key_ids

    _configure_keys()
    connection = op.get_bind()
    found = scan_key_ids(connection)
    legacy = found.pop("", None)
    if legacy is not None:
        opener = crypto.opener(legacy)
        if opener is None:
            raise RuntimeError(
                "sensitive columns hold values of the first format (no key id) that no "
                "configured key opens: run this migration with GRIDWORK_DATA_KEY (or "
                "GRIDWORK_OLD_DATA_KEYS) set to the key they were sealed with"
            )
        found.setdefault(opener, None)
    held = set(crypto.configured_key_ids())
    for kid in sorted(found):
        connection.execute(
            sa.text("INSERT INTO data_keys (kid, canary) VALUES (:kid, :canary)"),
            {"kid": kid, "canary": crypto.seal_canary(kid) if kid in held else None},
        )


def downgrade() -> None:
    op.drop_table("data_keys")
