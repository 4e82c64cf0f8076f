"""Benchmark: the visits trigger's must-visit replay, 0020's definition against 0023's.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gw_replay_bench \\
        .venv/bin/python -m bench.must_visit_replay [--no-setup] [--grids 30] [--repeat 7]

`gw_visits_inserted()` replays a household-week's visits (in order, with the tags at each visit
and the week's cadence) when a visit of that week may count the household done under a care tag
not yet counted. 0017 to 0020 asked whether the household has or had such a tag *ever*: a
household whose tag was removed keeps it in `household_history`, so each later visit replayed
its week for nothing. 0023 looks only at the tags of the history rows overlapping the week.

Setup (skipped with --no-setup) empties the domain tables of DATABASE_URL (it must be a database
of its own) and builds one community of --grids grids of 300 households: half were given a
care tag when registered (2026-08-01); on 2026-09-15 the tag was removed from 60 % of them
(30 % of all households: 2,700 with 30 grids); 12 weeks of visits (W36..W47: ~85 % of
households a week, living-alone households twice), loaded with the triggers off and the
aggregates rebuilt.

Measured: a 500-visit INSERT (one statement, as the batch ingest does) into W47, where the
households already have their visits of the week, under each definition in turn (swapped with
CREATE OR REPLACE FUNCTION inside the transaction, the INSERT run by EXPLAIN ANALYZE, then rolled
back: every round sees the same data). The trigger's own time (EXPLAIN's "Trigger
trg_visits_report") and the statement's are the medians of --repeat rounds, the two
definitions alternating so both see the same machine load. Batches: visits to households whose
tag was removed (the case 0023 changes), to households that never had a tag, to households
tagged now, and to households drawn at random. After each round the kept W47 aggregates are
compared between the two definitions, and, once per batch, with gw_report_rebuild().
"""

from __future__ import annotations

import argparse
import json
import statistics

from sqlalchemy import create_engine, text

from api.settings import load_config, normalise_database_url
from bench._report_world import build, migration, tagged_district
from bench._result import emit

WEEK = "2026-W47"
FIRST_MONDAY = "2026-08-31 00:00+08"  # Monday of 2026-W36 (Asia/Shanghai)
WEEKS = 12
COMMUNITY = "110130001001"

SETUP = tagged_district(
    [
        "INSERT INTO districts (code, name) VALUES ('110130', '基准区')",
        "INSERT INTO streets (code, district_code, name)"
        " VALUES ('110130001', '110130', '基准街道')",
        f"""
        INSERT INTO communities (code, street_code, name)
          VALUES ('{COMMUNITY}', '110130001', '基准社区')
        """,
        f"""
        INSERT INTO grids (code, name, community_code, boundary, version)
        SELECT '{COMMUNITY}' || lpad(k::text, 3, '0'), '网格' || k, '{COMMUNITY}',
               ST_Multi(ST_MakeEnvelope(116.3 + k * 0.01, 39.9, 116.31 + k * 0.01, 39.91, 4326)),
               1
        FROM generate_series(1, :grids) k
        """,
    ]
)

# Which households a batch visits (500 of them, drawn anew each round).
BATCHES = {
    "tag_removed": "((h.room::int - 100) % 10) IN (1, 2, 3)",
    "never_tagged": "((h.room::int - 100) % 10) NOT IN (1, 2, 3, 4, 5)",
    "tagged_now": "h.tags <> '{}'",
    "random": "true",
}

# A visit on Saturday afternoon of WEEK, after the households' stored visits of the week.
INSERT = """
INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at, utc_offset_minutes, week,
                    location, accuracy_m, datum, raw_lon, raw_lat, provider, outcome, grade)
SELECT gen_random_uuid(), ug.user_id, h.id, h.grid_id,
       timestamptz '2026-11-21 15:00+08' + make_interval(mins => h.id % 120), 480, '{week}',
       h.location, 10, 'wgs84', ST_X(h.location), ST_Y(h.location), 'gps', 'met', 'ok'
FROM households h JOIN user_grids ug ON ug.grid_id = h.grid_id
WHERE {where}
ORDER BY md5(h.id::text || '{seed}') LIMIT {size}
"""

KEPT = """
SELECT md5(coalesce(string_agg(x::text, ';' ORDER BY x::text), '')) FROM (
  SELECT 'hw', grid_id, week, household_id, visits, met, counted::text
  FROM report_household_weeks WHERE week = :week
  UNION ALL
  SELECT 'gt', grid_id, week, 0, done, 0, tag FROM report_grid_week_tags WHERE week = :week
  UNION ALL
  SELECT 'gw', grid_id, week, 0, visits, visited, visited_2w::text FROM report_grid_weeks
  WHERE week = :week) x
"""


# The trigger reads the cadence once per household-week it replays: the replays of a statement
# are the difference of this (the backend's calls not yet flushed to the shared statistics).
CADENCE_CALLS = "SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'gw_cadence_of'"


_MIGRATION = migration("*_0023_*.py")
DEFINITIONS = {
    "0020": _MIGRATION.PREVIOUS_TRIGGER_SQL,
    "0023": _MIGRATION.TRIGGER_SQL,
}


def setup(engine, grids: int) -> None:
    build(engine, SETUP, grids=grids, weeks=WEEKS, monday=FIRST_MONDAY, first_week=0, prefix="rw")


def one_round(conn, definition: str, batch: str, seed: int, size: int, rebuild: bool) -> dict:
    """Under `definition`, the INSERT of one batch (EXPLAIN ANALYZE), rolled back."""
    with conn.begin() as tx:
        conn.execute(text(DEFINITIONS[definition]))
        conn.execute(text("SET LOCAL track_functions = 'all'"))
        before = conn.scalar(text(CADENCE_CALLS)) or 0
        sql = INSERT.format(week=WEEK, where=BATCHES[batch], seed=seed, size=size)
        plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)).scalar_one()
        plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
        triggers = {t["Trigger Name"]: t["Time"] for t in plan.get("Triggers", [])}
        replays = (conn.scalar(text(CADENCE_CALLS)) or 0) - before
        kept = conn.scalar(text(KEPT), {"week": WEEK})
        rebuilt = None
        if rebuild:
            conn.execute(text("SELECT gw_report_rebuild()"))
            rebuilt = conn.scalar(text(KEPT), {"week": WEEK})
        tx.rollback()
    return {
        "trigger_ms": triggers["trg_visits_report"],
        "statement_ms": plan["Execution Time"],
        "replays": replays,
        "kept": kept,
        "rebuilt": rebuilt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-setup", action="store_true", help="use the data already loaded")
    parser.add_argument("--grids", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    engine = create_engine(normalise_database_url(load_config()["DATABASE_URL"]))
    if not args.no_setup:
        from alembic import command

        from api.cli import alembic_config

        command.upgrade(alembic_config(engine.url.render_as_string(hide_password=False)), "head")
        setup(engine, args.grids)
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM households), (SELECT count(*) FROM visits), "
                "(SELECT count(DISTINCT household_id) FROM household_history "
                " WHERE valid_to IS NOT NULL AND tags <> '{}')"
            )
        ).one()
    print(f"data: {counts[0]} households, {counts[1]} visits, {counts[2]} with a tag removed")
    print(
        f"{'batch':14} {'def':>5} {'replays':>8} {'trigger ms':>11} {'INSERT ms':>10} "
        f"{'trigger share':>14}"
    )
    with engine.connect() as conn:
        for batch in BATCHES:
            runs = {name: [] for name in DEFINITIONS}
            for r in range(args.repeat + 1):  # round 0 warms the caches, and checks
                order = list(DEFINITIONS) if r % 2 == 0 else list(reversed(DEFINITIONS))
                results = {
                    name: one_round(conn, name, batch, r, args.batch_size, rebuild=r == 0)
                    for name in order
                }
                kept = {res["kept"] for res in results.values()}
                assert len(kept) == 1, f"{batch}: the definitions keep different aggregates"
                if r == 0:
                    for name, res in results.items():
                        assert res["rebuilt"] == res["kept"], f"{batch}/{name}: != rebuild"
                    continue
                for name, res in results.items():
                    runs[name].append(res)
            for name, rounds in runs.items():
                trig = statistics.median(x["trigger_ms"] for x in rounds)
                stmt = statistics.median(x["statement_ms"] for x in rounds)
                replays = statistics.median(x["replays"] for x in rounds)
                print(
                    f"{batch:14} {name:>5} {replays:>8.0f} {trig:>11.1f} {stmt:>10.1f} "
                    f"{trig / stmt:>13.0%}"
                )
                emit(
                    "must_visit_replay",
                    f"{batch}_{name}_trigger_ms",
                    trig,
                    "ms",
                    None,
                    limit_note=f"informational: median of {args.repeat}, "
                    f"{args.batch_size}-visit INSERT",
                )
            # Paired by round (the two ran back to back): less exposed to the machine's load.
            old, new = (runs[name] for name in DEFINITIONS)
            saved = statistics.median(
                o["trigger_ms"] - n["trigger_ms"] for o, n in zip(old, new, strict=True)
            )
            ratio = statistics.median(
                n["trigger_ms"] / o["trigger_ms"] for o, n in zip(old, new, strict=True)
            )
            print(f"{batch:14} trigger 0023 - 0020, paired median: {-saved:+.1f} ms ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
