"""devices: a short send history (last success, failing since, failures in a row).

A push device whose sends timed out day after day was never retired: the outbox kept each
delivery's last error only, and nothing told a day of timeouts from one bad hour of a push
service. The push worker now writes, per device, when a send last went (`last_success_at`),
since when its sends have failed without one going (`failing_since`, null while healthy) and
how many failed in a row (`consecutive_failures`): only failures the device's side may be to
blame for (a timeout, a connection refused, a 5xx), not our quota or configuration.
`ix_devices_platform_last_success` finds a platform's latest success for the retirement's
check that pushes still go to other devices.

Revision ID: 0048
Revises: 0047
Create Date: 2027-01-01 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0048"
down_revision: str | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("last_success_at", sa.DateTime(timezone=True)))
    op.add_column("devices", sa.Column("failing_since", sa.DateTime(timezone=True)))
    op.add_column(
        "devices",
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_devices_platform_last_success", "devices", ["platform", "last_success_at"])


def downgrade() -> None:
    op.drop_index("ix_devices_platform_last_success", table_name="devices")
    op.drop_column("devices", "consecutive_failures")
    op.drop_column("devices", "failing_since")
    op.drop_column("devices", "last_success_at")
