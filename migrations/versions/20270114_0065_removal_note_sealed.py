"""A household's removal note encrypted at rest, as visits' notes are.

The note says why a household left the register, often in a resident's own circumstances (an
illness, a care home, a death): it is withheld from district viewers and erased by retention
with the phone and care tags, yet it was stored in clear text. `households.removal_note` joins
the sealed columns (api/services/encryption.py), so `gridwork security encrypt` re-seals it on
a key rotation; the data step seals the notes stored so far under the current
GRIDWORK_DATA_KEY and records that key in `data_keys` when it sealed any. The column's type
does not change.

Revision ID: 0065
Revises: 0064
Create Date: 2027-01-14 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0065"
down_revision: str | None = "0064"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _configure_keys() -> None:
    from api import crypto
    from api.settings import load_config

    config = load_config()
    crypto.configure(config["DATA_KEY"], config.get("OLD_DATA_KEYS"))


def _removal_note():
    from api.services.encryption import SEALED_COLUMNS

    return [c for c in SEALED_COLUMNS if (c.table, c.column) == ("households", "removal_note")]


def _any(where: str) -> bool:
    return op.get_bind().scalar(sa.text(f"SELECT EXISTS (SELECT 1 FROM households WHERE {where})"))


def upgrade() -> None:
    from api.services.encryption import record_key, seal_all

    # Nothing to seal in a new database: the keys are not even read.
    if not _any("removal_note <> ''"):
        return
    _configure_keys()
    connection = op.get_bind()
    seal_all(connection, columns=_removal_note())
    # A process refuses a database holding values of a key it lacks by this record alone
    # (api/keyguard.py); a key another one recorded, or retired, fails the migration here,
    # its sealing rolled back.
    record_key(connection)


def downgrade() -> None:
    from api.services.encryption import open_all

    if not _any("removal_note LIKE 'v1:%'"):
        return
    _configure_keys()
    open_all(op.get_bind(), _removal_note())
