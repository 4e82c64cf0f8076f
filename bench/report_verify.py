"""Benchmark: `gridwork report verify` against a live load, the check of 0030 beside the old one.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gw_report_verify \\
        .venv/bin/python -m bench.report_verify [--no-setup] [--grids 300] [--repeat 3]

Setup (skipped with --no-setup): bench/report_upkeep.py's district (it empties the domain tables
of DATABASE_URL: a database of its own), --grids grids of 300 households, --weeks weeks of visits.

Each round runs, in turn, a check to its end and, while it computes (seen in pg_stat_activity),
from two other connections: a visit INSERT of 100 rows (their triggers keep the aggregates;
rolled back) and a report read (one week's grid rows), each timed to its answer.

- `new`: `report_verify.check` in a REPEATABLE READ transaction (what `report verify` runs);
- `old`: what `report verify` ran before 0030: SHARE locks on the raw tables, copies of the six
  aggregates, `gw_report_rebuild()` in place (TRUNCATE: ACCESS EXCLUSIVE), the same comparison,
  rolled back.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.services import report_verify
from bench._result import emit
from bench.report_upkeep import district_arguments, district_engine

INSERT = """
INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at, utc_offset_minutes, week,
                    location, accuracy_m, datum, raw_lon, raw_lat, provider, outcome, grade)
SELECT gen_random_uuid(), worker_id, household_id, grid_id, visited_at + interval '1 second',
       utc_offset_minutes, week, location, accuracy_m, datum, raw_lon, raw_lat, provider,
       outcome, grade
FROM visits WHERE week = '2026-W47' ORDER BY id LIMIT 100
"""
READ = "SELECT sum(visits) FROM report_grid_weeks WHERE week = '2026-W47'"
# The statement each check is busy with for most of its time.
BUSY = {"new": "%gw_report_compute%", "old": "%gw_report_rebuild%"}


def new_check(engine) -> None:
    with Session(engine.execution_options(isolation_level="REPEATABLE READ")) as session:
        result = report_verify.check(session)
        session.rollback()
    assert result.equal, result


def old_check(engine) -> None:
    aggregates, sources = report_verify.AGGREGATES, report_verify.SOURCES
    with engine.connect() as conn:
        conn.execute(text(f"LOCK TABLE {', '.join(sources)} IN SHARE MODE"))
        for table in aggregates:
            conn.execute(text(f"CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}"))
        conn.execute(text("SELECT gw_report_rebuild()"))
        for table in aggregates:
            differ = conn.scalar(
                text(
                    f"SELECT count(*) FROM ((SELECT * FROM kept_{table} EXCEPT ALL "
                    f"SELECT * FROM {table}) UNION ALL (SELECT * FROM {table} EXCEPT ALL "
                    f"SELECT * FROM kept_{table})) d"
                )
            )
            assert differ == 0, table
        conn.rollback()


def wait_busy(engine, pattern: str, done: threading.Event) -> None:
    with engine.connect() as conn:
        while not done.is_set():
            busy = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND query LIKE :p AND pid <> pg_backend_pid()"
                ),
                {"p": pattern},
            )
            conn.rollback()
            if busy:
                return
            time.sleep(0.01)
    raise AssertionError("the check ended before it was seen computing")


def timed(engine, sql: str) -> float:
    with engine.connect() as conn:
        start = time.perf_counter()
        conn.execute(text(sql))
        elapsed = time.perf_counter() - start
        conn.rollback()
    return elapsed


def one_round(engine, name: str) -> dict[str, float]:
    done = threading.Event()
    run = new_check if name == "new" else old_check

    def check() -> float:
        start = time.perf_counter()
        try:
            run(engine)
        finally:
            done.set()
        return time.perf_counter() - start

    with ThreadPoolExecutor(3) as pool:
        checking = pool.submit(check)
        wait_busy(engine, BUSY[name], done)
        insert = pool.submit(timed, engine, INSERT)
        read = pool.submit(timed, engine, READ)
        return {"check_s": checking.result(), "insert_s": insert.result(), "read_s": read.result()}


def main() -> None:
    parser = district_arguments(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine = district_engine(args)
    with engine.connect() as conn:
        visits = conn.scalar(text("SELECT count(*) FROM visits"))
    print(f"data: {visits} visits")
    runs: dict[str, list[dict[str, float]]] = {"new": [], "old": []}
    for r in range(args.repeat):
        for name in ("new", "old") if r % 2 == 0 else ("old", "new"):
            figures = one_round(engine, name)
            print(name, {k: round(v, 3) for k, v in figures.items()}, flush=True)
            runs[name].append(figures)
    note = f"informational: median of {args.repeat}, {visits} visits"
    for name, rounds in runs.items():
        for metric in ("check_s", "insert_s", "read_s"):
            value = statistics.median(f[metric] for f in rounds)
            emit("report_verify", f"{name}_{metric}", value, "s", None, limit_note=note)
    engine.dispose()


if __name__ == "__main__":
    main()
