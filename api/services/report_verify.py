"""The report's kept aggregates against a rebuild from the raw rows (`gridwork report verify`).

The visits and households triggers keep the weekly report's aggregates as rows change
(docs/report.md). `gw_report_compute(prefix)` (migration 0030) makes what `gw_report_rebuild()`
would make into other tables. `check` has it fill temporary tables and compares them, table by
table, with the kept aggregates: all in the caller's transaction, which, REPEATABLE READ (the
CLI's), reads both sides in one snapshot, taken after the check's lock on the aggregates (it
refuses a transaction that queried before it, whose snapshot would predate that lock). Commits
made meanwhile (a visit batch, a household edit) are in neither side, so they make no false
difference, and nothing waits for the check: it takes no lock a writer or a report read would
meet (it writes only its temporary tables). Under READ COMMITTED (the tests' rolled-back
transaction) each statement sees the latest commits: a writer committing during the check can
make a difference appear.

`repair_differences` writes, so it holds the raw rows still (SHARE on the raw tables: visit
ingest and household edits wait, report reads do not) in a READ COMMITTED transaction, checks
again under that lock and replaces only the kept rows that differ. `verify` checks, and repairs
only when the check found a difference.

`since` limits both to the weeks from that ISO week on: the weeks before keep the rows they
had. Weeks counted before migration 0020 are judged by the cadence of their own time, which a
rebuild (with the cadence recorded at the upgrade) cannot know: compare from a week after the
upgrade to leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.db import Base
from api.models import reports as _models  # noqa: F401  (the aggregates' tables in Base)
from api.services.weeks import parse_week

# Every table the triggers keep and gw_report_rebuild() rewrites; each has a `week` column (in
# its primary key).
AGGREGATES = (
    "report_household_weeks",
    "report_grid_weeks",
    "report_grid_week_tags",
    "report_worker_weeks",
    "report_worker_households",
    "report_household_deltas",
)
# Each table's primary key, as the models declare it: what a repair deletes the rows by.
KEYS = {
    table: tuple(c.name for c in Base.metadata.tables[table].primary_key.columns)
    for table in AGGREGATES
}
# The raw rows the rebuild reads, held still (SHARE) while a repair runs: no ingest, household
# change or cadence change can slip between the comparison and the rows it replaces.
SOURCES = ("visits", "households", "household_history", "community_cadences", "grids")
WEEKS_SHOWN = 5
# The temporary tables of a check: the rebuild, and each side's rows the other lacks.
REBUILT, KEPT_ONLY, REBUILT_ONLY = "rebuilt_", "kept_only_", "rebuilt_only_"


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

    Nothing changes unless `repair` and the check found a difference: then, in the caller's
    transaction (READ COMMITTED), `repair_differences` replaces the kept rows that differ.
    """
    result = check(session, since=since)
    if repair and not result.equal:
        return repair_differences(session, since=since)
    return result


def check(session: Session, *, since: str | None = None) -> Verification:
    """The comparison alone: writes only temporary tables, dropped before it returns, and
    takes no lock but the one every read takes (ACCESS SHARE: only a TRUNCATE, such as
    `gw_report_rebuild()`, or a schema change waits for it).

    Under REPEATABLE READ it must be the first to query its transaction (not in a savepoint):
    its one snapshot then begins after that lock. A transaction that queried before is
    refused (RuntimeError, the transaction aborted)."""
    in_range, params = _range(since)
    _require_no_snapshot(session)
    savepoint = session.begin_nested()
    try:
        # Before the check reads, so before its snapshot: a TRUNCATE of the aggregates (not
        # MVCC-safe; nothing but a rebuild truncates) committed after the snapshot would make
        # them read as empty. A rebuild committed before the lock is in the snapshot; one
        # after waits for the check's end.
        session.execute(text(f"LOCK TABLE {', '.join(AGGREGATES)} IN ACCESS SHARE MODE"))
        _compute(session)
        on_computed(session)
        return Verification(since=since, tables=_compare(session, in_range, params))
    finally:
        if savepoint.is_active:
            savepoint.rollback()  # the temporary tables go with it


def repair_differences(session: Session, *, since: str | None = None) -> Verification:
    """Hold the raw tables still, compare again, and replace the kept rows that differ from
    the rebuild (weeks from `since` on) with the rebuilt ones; the other rows stay untouched.

    Run it in a READ COMMITTED transaction: each statement after the lock then sees every
    change committed before it (under REPEATABLE READ the snapshot may predate the lock, and
    rows committed in between would be overwritten by a stale rebuild).
    """
    in_range, params = _range(since)
    isolation = session.scalar(text("SELECT current_setting('transaction_isolation')"))
    if isolation != "read committed":
        raise RuntimeError(f"repair_differences needs READ COMMITTED, not {isolation}")
    savepoint = session.begin_nested()
    try:
        session.execute(text(f"LOCK TABLE {', '.join(SOURCES)} IN SHARE MODE"))
        _compute(session)
        result = Verification(since=since, tables=_compare(session, in_range, params))
        for check_ in result.tables:
            if not check_.equal:
                _replace(session, check_.table)
        result.repaired = not result.equal
    except BaseException:
        savepoint.rollback()
        raise
    for table in AGGREGATES:  # the rows replaced stay; the temporary tables go
        for prefix in (REBUILT, KEPT_ONLY, REBUILT_ONLY):
            session.execute(text(f"DROP TABLE {prefix}{table}"))
    savepoint.commit()
    return result


def _require_no_snapshot(session: Session) -> None:
    """Refuse a REPEATABLE READ (or SERIALIZABLE) transaction that has queried before the
    check: its snapshot, the one the check would read, predates the check's lock.

    Neither statement takes a snapshot (SHOW and SET TRANSACTION do not); PostgreSQL refuses
    `SET TRANSACTION [NOT] DEFERRABLE` once one was taken (or in a savepoint), and otherwise
    it changes nothing here (DEFERRABLE acts only on SERIALIZABLE READ ONLY, and the check
    writes its temporary tables). Under READ COMMITTED each statement takes a snapshot of its
    own, the check's all after the lock."""
    isolation = session.scalar(text("SHOW transaction_isolation"))
    if isolation == "read committed":
        return
    try:
        session.execute(text("SET TRANSACTION NOT DEFERRABLE"))
    except DBAPIError as exc:
        if not isinstance(exc.orig, psycopg.errors.ActiveSqlTransaction):
            raise
        raise RuntimeError(
            f"report_verify.check must run first in its {isolation} transaction, so that its "
            f"snapshot begins after its lock on the aggregates ({exc.orig})"
        ) from exc


def on_computed(session: Session) -> None:
    """Called by `check` between the rebuild into temporary tables and the comparison: a
    seam for tests, which pause the check there while other connections write."""


def _range(since: str | None) -> tuple[str, dict]:
    if since is None:
        return "TRUE", {}
    parse_week(since)  # a 422 problem for anything that is not an ISO week
    return "week >= :since", {"since": since}


def _compute(session: Session) -> None:
    """What a rebuild would make, in temporary tables `rebuilt_<aggregate>`."""
    for table in AGGREGATES:
        session.execute(text(f"CREATE TEMP TABLE {REBUILT}{table} (LIKE {table}) ON COMMIT DROP"))
    session.execute(text("SELECT gw_report_compute(:prefix)"), {"prefix": REBUILT})


def _compare(session: Session, in_range: str, params: dict) -> list[TableCheck]:
    """Each table's rows kept and not rebuilt, and rebuilt and not kept (`EXCEPT ALL`), in
    temporary tables (a repair applies them), counted with the first weeks they fall in."""
    checks = []
    for table in AGGREGATES:
        kept = f"(SELECT * FROM {table} WHERE {in_range})"
        rebuilt = f"(SELECT * FROM {REBUILT}{table} WHERE {in_range})"
        for name, query in (
            (KEPT_ONLY + table, f"{kept} EXCEPT ALL {rebuilt}"),
            (REBUILT_ONLY + table, f"{rebuilt} EXCEPT ALL {kept}"),
        ):
            session.execute(text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {query}"), params)
        row = session.execute(
            text(
                f"SELECT (SELECT count(*) FROM {KEPT_ONLY}{table}), "
                f"(SELECT count(*) FROM {REBUILT_ONLY}{table}), "
                f"ARRAY(SELECT week FROM (SELECT week FROM {KEPT_ONLY}{table} "
                f"UNION SELECT week FROM {REBUILT_ONLY}{table}) w "
                f"ORDER BY week LIMIT {WEEKS_SHOWN})"
            )
        ).one()
        checks.append(
            TableCheck(table=table, kept_only=row[0], rebuilt_only=row[1], weeks=list(row[2]))
        )
    return checks


def _replace(session: Session, table: str) -> None:
    """The kept rows not rebuilt out (by primary key), the rebuilt rows not kept in."""
    key = ", ".join(KEYS[table])
    session.execute(
        text(f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {KEPT_ONLY}{table})")
    )
    session.execute(text(f"INSERT INTO {table} SELECT * FROM {REBUILT_ONLY}{table}"))
