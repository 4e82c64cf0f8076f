"""Grid leaderships: who led each grid, and when.

A grid leader leads a grid by its `leader_id`, assigned to it or not; leading left no holding
(`grid_holdings`, migration 0039, is kept from `user_grids`). A visit a leader made offline in a
grid they led was refused as soon as another was made its leader (not one of their grids on
its date), and the phone retried it for ever. The database now keeps every period a grid had
its leader (`grid_leaderships`), opened and closed by a trigger on `grids.leader_id` whatever
changes it (the grids API, an import, the seed); the grids led when this migration runs are led
since 2000-01-01, as 0039 dated the holdings.

Revision ID: 0063
Revises: 0062
Create Date: 2027-01-13 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0063"
down_revision: str | None = "0062"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_leaderships (
            id bigserial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
            started_at timestamptz NOT NULL,
            ended_at timestamptz,
            CONSTRAINT ck_grid_leaderships_period
                CHECK (ended_at IS NULL OR ended_at >= started_at)
        )
        """
    )
    op.execute("CREATE INDEX ix_grid_leaderships_user_id ON grid_leaderships (user_id, started_at)")
    op.execute(
        "CREATE UNIQUE INDEX uq_grid_leaderships_open ON grid_leaderships (grid_id)"
        " WHERE ended_at IS NULL"
    )
    # clock_timestamp(), as the holdings' trigger: a long transaction stamps when it changed.
    op.execute(
        """
        CREATE FUNCTION grids_leadership() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF OLD.leader_id IS NOT DISTINCT FROM NEW.leader_id THEN
                    RETURN NULL;
                END IF;
                UPDATE grid_leaderships SET ended_at = clock_timestamp()
                WHERE grid_id = OLD.id AND ended_at IS NULL;
            END IF;
            IF NEW.leader_id IS NOT NULL THEN
                INSERT INTO grid_leaderships (user_id, grid_id, started_at)
                VALUES (NEW.leader_id, NEW.id, clock_timestamp());
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER trg_grids_leadership AFTER INSERT OR UPDATE OF leader_id ON grids"
        " FOR EACH ROW EXECUTE FUNCTION grids_leadership()"
    )
    op.execute(
        "INSERT INTO grid_leaderships (user_id, grid_id, started_at)"
        " SELECT leader_id, id, '2000-01-01 00:00+08' FROM grids WHERE leader_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_grids_leadership ON grids")
    op.execute("DROP FUNCTION grids_leadership()")
    op.execute("DROP TABLE grid_leaderships")
