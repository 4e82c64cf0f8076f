"""The household triggers keep the report's history and weekly count deltas, once per statement.

A register import writes thousands of households per statement (COPY); a move or a tag change
can touch many at once. Whatever the statement, the open history row of each household is its
current grid, kind and tags, and the deltas summed over the weeks count the households of each
grid, kind and tag ('' for the household itself) — the same as a full rebuild finds.
"""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import A1, A2, centre

DELTAS = text(
    "SELECT grid_id, kind, tag, sum(delta) AS n FROM report_household_deltas"
    " GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3"
)
COUNTS = text(
    "SELECT grid_id, kind, tag, count(*) AS n FROM households,"
    " LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', tags)) u) t"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
OPEN_HISTORY = text("SELECT h.id, h.grid_id, h.kind, h.tags FROM households h ORDER BY h.id")
OPEN_HISTORY_ROWS = text(
    "SELECT household_id, grid_id, kind, tags FROM household_history"
    " WHERE valid_to IS NULL ORDER BY household_id"
)


def rows(session, query):
    return [tuple(r) for r in session.execute(query)]


def assert_consistent(session):
    assert rows(session, DELTAS) == rows(session, COUNTS)
    assert rows(session, OPEN_HISTORY_ROWS) == rows(session, OPEN_HISTORY)


def insert_many(session, grid_id, lonlat, n, tags):
    """`n` households in one INSERT … SELECT statement."""
    session.execute(
        text(
            "INSERT INTO households (grid_id, building, room, location, kind, tags)"
            " SELECT :g, 'B', k::text, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
            " CASE WHEN k % 5 = 0 THEN 'business' ELSE 'residence' END, CAST(:tags AS text[])"
            " FROM generate_series(1, :n) k"
        ),
        {"g": grid_id, "lon": lonlat[0], "lat": lonlat[1], "n": n, "tags": tags},
    )


def test_many_households_inserted_by_one_statement_are_counted_once_each(session, world):
    insert_many(session, world.grids[A1].id, centre(A1), 250, ["elderly_80", "living_alone"])
    # A repeated tag counts the household once under that tag.
    insert_many(session, world.grids[A1].id, centre(A1), 40, ["migrant", "migrant"])
    assert_consistent(session)


def test_moving_many_households_in_one_update_moves_their_counts_and_history(session, world):
    insert_many(session, world.grids[A1].id, centre(A1), 100, ["low_income"])
    session.execute(
        text(
            "UPDATE households SET grid_id = :to, tags = array_append(tags, 'disability')"
            " WHERE grid_id = :from AND room::int % 2 = 0"
        ),
        {"to": world.grids[A2].id, "from": world.grids[A1].id},
    )
    assert_consistent(session)
    closed = session.scalar(
        text("SELECT count(*) FROM household_history WHERE valid_to IS NOT NULL")
    )
    assert closed >= 50


def test_an_update_that_changes_nothing_counted_writes_no_history(session, world):
    before = session.scalar(text("SELECT count(*) FROM household_history"))
    deltas = rows(session, text("SELECT * FROM report_household_deltas ORDER BY 1, 2, 3, 4"))
    session.execute(text("UPDATE households SET members = members + 1, room = room || 'a'"))
    assert session.scalar(text("SELECT count(*) FROM household_history")) == before
    assert (
        rows(session, text("SELECT * FROM report_household_deltas ORDER BY 1, 2, 3, 4")) == deltas
    )


def test_deleting_many_households_closes_their_history_and_takes_them_off_the_counts(
    session, world
):
    insert_many(session, world.grids[A2].id, centre(A2), 60, ["special_care"])
    session.execute(text("DELETE FROM households WHERE 'special_care' = ANY(tags)"))
    assert_consistent(session)


def test_the_kept_deltas_equal_a_full_rebuild(session, world):
    insert_many(session, world.grids[A1].id, centre(A1), 120, ["elderly_80"])
    session.execute(
        text("UPDATE households SET kind = 'business' WHERE room = '7'"),
    )
    kept = rows(session, DELTAS)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert rows(session, DELTAS) == kept
