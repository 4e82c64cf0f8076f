"""The report's kept aggregates against a rebuild from the raw rows (`gridwork report verify`).

The visits and households triggers keep the weekly report's aggregates as rows change
(docs/report.md). `gw_report_rebuild()` recomputes them all from the raw rows. `verify` runs
that rebuild inside a savepoint and compares, table by table, what was kept with what the
rebuild made; it then rolls the savepoint back, or, to repair, keeps the rebuild.

`since` limits both to the weeks from that ISO week on: the weeks before keep the rows they
had. Weeks counted before migration 0020 are judged by the cadence of their own time, which a
rebuild (with the cadence recorded at the upgrade) cannot know: compare from a week after the
upgrade to leave them out.

The rebuild truncates the aggregate tables: until the savepoint ends, report reads and visit
ingest wait for it (53–79 s for 2.33 M visits on the benchmark machine, docs/report.md).
Run it off-peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.services.weeks import parse_week

# Every table the triggers keep and gw_report_rebuild() rewrites; each has a `week` column.
AGGREGATES = (
    "report_household_weeks",
    "report_grid_weeks",
    "report_grid_week_tags",
    "report_worker_weeks",
    "report_worker_households",
    "report_household_deltas",
)
# The raw rows the rebuild reads, held still (SHARE) while it runs: no ingest, household
# change or cadence change can slip between the copy of what was kept and the rebuild.
SOURCES = ("visits", "households", "household_history", "community_cadences", "grids")
WEEKS_SHOWN = 5


@dataclass
class TableCheck:
    """One aggregate table: rows kept and not rebuilt, rows rebuilt and not kept, where."""

    table: str
    kept_only: int = 0
    rebuilt_only: int = 0
    weeks: list[str] = field(default_factory=list)  # the first weeks that differ

    @property
    def equal(self) -> bool:
        return self.kept_only == 0 and self.rebuilt_only == 0


@dataclass
class Verification:
    since: str | None
    tables: list[TableCheck]
    repaired: bool = False

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


def verify(session: Session, *, since: str | None = None, repair: bool = False) -> Verification:
    """Compare the kept aggregates with a rebuild (weeks from `since` on, all if None).

    Nothing changes unless `repair`: then the rebuilt rows replace the kept ones of those
    weeks (the weeks before `since` keep theirs), in the caller's transaction.
    """
    if since is not None:
        parse_week(since)  # a 422 problem for anything that is not an ISO week
    in_range = "TRUE" if since is None else "week >= :since"
    params = {} if since is None else {"since": since}
    savepoint = session.begin_nested()
    try:
        session.execute(text(f"LOCK TABLE {', '.join(SOURCES)} IN SHARE MODE"))
        for table in AGGREGATES:
            session.execute(text(f"CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}"))
        session.execute(text("SELECT gw_report_rebuild()"))
        checks = [_compare(session, table, in_range, params) for table in AGGREGATES]
        result = Verification(since=since, tables=checks)
        if repair and not result.equal:
            if since is not None:
                # The weeks before `since` get back the rows they had.
                for table in AGGREGATES:
                    session.execute(text(f"DELETE FROM {table} WHERE week < :since"), params)
                    session.execute(
                        text(f"INSERT INTO {table} SELECT * FROM kept_{table} WHERE week < :since"),
                        params,
                    )
            for table in AGGREGATES:
                session.execute(text(f"DROP TABLE kept_{table}"))
            savepoint.commit()
            result.repaired = True
        else:
            savepoint.rollback()  # the kept rows stay, the copies go
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    return result


def _compare(session: Session, table: str, in_range: str, params: dict) -> TableCheck:
    kept = f"(SELECT * FROM kept_{table} WHERE {in_range})"
    rebuilt = f"(SELECT * FROM {table} WHERE {in_range})"
    row = session.execute(
        text(
            f"WITH k AS ({kept} EXCEPT ALL {rebuilt}), r AS ({rebuilt} EXCEPT ALL {kept}) "
            "SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM r), "
            "ARRAY(SELECT week FROM (SELECT week FROM k UNION SELECT week FROM r) w "
            f"ORDER BY week LIMIT {WEEKS_SHOWN})"
        ),
        params,
    ).one()
    return TableCheck(table=table, kept_only=row[0], rebuilt_only=row[1], weeks=list(row[2]))
