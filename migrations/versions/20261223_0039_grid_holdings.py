"""Grid holdings: which grids each account held, and when.

Phones record visits offline and sync them in batches; a visit made on Monday in the grid a
worker then held could reach the server on Wednesday, after the office had given them another
grid, and was refused for good (the grid was no longer theirs): the visit stayed on the phone
and the week's coverage missed it. The database now keeps every period an account held a grid
(`grid_holdings`), opened and closed by a trigger on `user_grids` whatever changes it (the
accounts API, a switch-off, a role change, the seed); a visit is judged by the grids its worker
held on its date. The grids held when this migration runs are held since 2000-01-01 (the first
week visits are served in): their visits were accepted for any date before, and still are.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-23 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_holdings (
            id bigserial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
            started_at timestamptz NOT NULL,
            ended_at timestamptz,
            CONSTRAINT ck_grid_holdings_period CHECK (ended_at IS NULL OR ended_at >= started_at)
        )
        """
    )
    op.execute("CREATE INDEX ix_grid_holdings_user_id ON grid_holdings (user_id, started_at)")
    op.execute(
        "CREATE UNIQUE INDEX uq_grid_holdings_open ON grid_holdings (user_id, grid_id)"
        " WHERE ended_at IS NULL"
    )
    # clock_timestamp(), not now(): a transaction that takes a grid away and gives it back
    # holds it from the second change on, and a long transaction stamps when it changed.
    op.execute(
        """
        CREATE FUNCTION user_grids_holding() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                UPDATE grid_holdings SET ended_at = clock_timestamp()
                WHERE user_id = OLD.user_id AND grid_id = OLD.grid_id AND ended_at IS NULL;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO grid_holdings (user_id, grid_id, started_at)
                VALUES (NEW.user_id, NEW.grid_id, clock_timestamp())
                ON CONFLICT (user_id, grid_id) WHERE ended_at IS NULL DO NOTHING;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER trg_user_grids_holding AFTER INSERT OR UPDATE OR DELETE ON user_grids"
        " FOR EACH ROW EXECUTE FUNCTION user_grids_holding()"
    )
    op.execute(
        "INSERT INTO grid_holdings (user_id, grid_id, started_at)"
        " SELECT user_id, grid_id, '2000-01-01 00:00+08' FROM user_grids"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_user_grids_holding ON user_grids")
    op.execute("DROP FUNCTION user_grids_holding()")
    op.execute("DROP TABLE grid_holdings")
