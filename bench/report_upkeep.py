"""Benchmark: the report's upkeep when households or a cadence change, 0023 against 0026.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gw_report_upkeep \\
        .venv/bin/python -m bench.report_upkeep [--no-setup] [--grids 300] [--repeat 7]

Two pieces of the trigger-kept report aggregates (docs/report.md) that 0026 rewrites:

- `gw_households_updated()`, the statement trigger on UPDATE of households (0014): it closes the
  open `household_history` row of each household whose grid, kind or tags changed. 0014 joined
  the statement's changed rows to the history in one UPDATE ... FROM, which PostgreSQL ran as a
  hash join over every open history row of the city: its cost grew with the table, not with the
  statement. 0026 closes them by household id (`= ANY(ids)`, an index probe each), and recounts
  the `counted` sets of the household-weeks a tag change dated into the past reaches (none for
  a change dated now: three index probes a household that find nothing).
- `gw_report_recount_must_visits()`, run when a community's cadence changes (0020): it replayed
  every visit of the community's grids in the weeks from the change on, households without any
  care tag included (most of them; their `counted` is empty whatever the cadence). 0026 replays
  only the household-weeks whose household has a tag now or had one in a history row overlapping
  the week (the only ones a visit can count done).

Setup (skipped with --no-setup) empties the domain tables of DATABASE_URL (it must be a database
of its own) and builds --grids grids of 300 households in communities of 10 grids: 20 % tagged
now (elderly_80, living alone), a tag removed from another 30 % two months before; --weeks weeks
of visits ending with 2026-W47 (~85 % of households a week, living alone twice), loaded with the
triggers off and the aggregates rebuilt.

Measured, each statement under EXPLAIN ANALYZE inside a transaction rolled back (every round sees
the same data), both definitions swapped in turn with CREATE OR REPLACE FUNCTION, alternating
(medians of --repeat rounds, and the paired median of the difference). Each round draws other
households and runs its statement once untimed first (under 0026), so both definitions meet a
warm cache (otherwise the one timed first pays the round's reads: at 900,000 households that
decided the pair). A cold cache costs 0026's retag more: it reads the visits index.

- `retag`: one UPDATE giving 500 households drawn at random a care tag or taking theirs away
  (dated now, as `PATCH /households/<id>` does); the trigger's own time;
- `move`: one UPDATE moving 500 households to the next grid (as a redraw does); the trigger's time;
- `recount`: a new cadence for one community (10 grids) from 2026-W47 and its recount
  (`SELECT gw_report_recount_must_visits(...)`), the statement's time.

Checked in round 0 of each: both definitions leave the same aggregates, and (recount) the same
as gw_report_rebuild(). Also shown (0026 only, informational): `retag_past`, the same UPDATE dated
a week back, whose trigger recounts the household-weeks of W46 and W47 it reaches.
"""

from __future__ import annotations

import argparse
import json
import statistics

from sqlalchemy import Engine, create_engine, text

from api.settings import load_config, normalise_database_url
from bench._report_world import build, migration, tagged_district
from bench._result import emit

LAST_WEEK = "2026-W47"
LAST_MONDAY = "2026-11-16 00:00+08"  # Monday of 2026-W47 (Asia/Shanghai)
STREET = "110131001"
COMMUNITY = STREET + "001"  # the community whose cadence changes

SETUP = tagged_district(
    [
        "INSERT INTO districts (code, name) VALUES ('110131', '基准区')",
        "INSERT INTO streets (code, district_code, name)"
        f" VALUES ('{STREET}', '110131', '基准街道')",
        f"""
        INSERT INTO communities (code, street_code, name)
        SELECT '{STREET}' || lpad(c::text, 3, '0'), '{STREET}', '社区' || c
        FROM generate_series(1, (:grids + 9) / 10) c
        """,
        f"""
        INSERT INTO grids (code, name, community_code, boundary, version)
        SELECT '{STREET}' || lpad(((k - 1) / 10 + 1)::text, 3, '0')
                 || lpad(((k - 1) % 10 + 1)::text, 3, '0'),
               '网格' || k, '{STREET}' || lpad(((k - 1) / 10 + 1)::text, 3, '0'),
               ST_Multi(ST_MakeEnvelope(116.3 + (k % 60) * 0.01, 39.9 + (k / 60) * 0.01,
                                        116.31 + (k % 60) * 0.01, 39.91 + (k / 60) * 0.01,
                                        4326)), 1
        FROM generate_series(1, :grids) k
        """,
    ]
)


def setup(engine, grids: int, weeks: int) -> None:
    # The `weeks` weeks ending with LAST_WEEK.
    build(
        engine,
        SETUP,
        grids=grids,
        weeks=weeks,
        monday=LAST_MONDAY,
        first_week=1 - weeks,
        prefix="uw",
    )


_MIGRATION = migration("*_0026_*.py")
DEFINITIONS = {
    "0023": _MIGRATION.PREVIOUS_FUNCTIONS_SQL,
    "0026": _MIGRATION.FUNCTIONS_SQL,
}

# 500 households drawn anew each round (seeded), as one UPDATE statement.
PICK = "SELECT id FROM households ORDER BY md5(id::text || '{seed}') LIMIT {size}"
CASES = {
    "retag": """
        UPDATE households SET tags = CASE WHEN tags = '{{}}' THEN '{{elderly_80}}'::text[]
                                          ELSE '{{}}' END
        WHERE id IN ({pick})
    """,
    "move": """
        UPDATE households h SET grid_id = g.id
        FROM grids g WHERE g.id = (SELECT min(id) FROM grids) + (h.grid_id + 1) % :grids
          AND h.id IN ({pick})
    """,
    "recount": f"SELECT gw_report_recount_must_visits('{COMMUNITY}', '{LAST_WEEK}')",
}
# Before the recount: the community's new cadence, from the last week on.
NEW_CADENCE = f"""
INSERT INTO community_cadences (community_code, from_week, cadence)
VALUES ('{COMMUNITY}', '{LAST_WEEK}', '{{"default": 1, "tags": {{"living_alone": 3}}}}')
"""
VACUUMED = (
    "households",
    "household_history",
    "report_household_weeks",
    "report_grid_week_tags",
    "report_household_deltas",
    "community_cadences",
)
# A week back from the last week's Friday: reaches the visits of W46 and W47 after it.
PAST = "2026-11-13 12:00+08"

KEPT = """
SELECT md5(coalesce(string_agg(x::text, ';' ORDER BY x::text), '')) FROM (
  SELECT 'hw', grid_id, week, household_id, visits, met, counted::text
  FROM report_household_weeks WHERE week >= :week
  UNION ALL
  SELECT 'gt', grid_id, week, 0, done, 0, tag FROM report_grid_week_tags WHERE week >= :week
  UNION ALL
  SELECT 'hh', household_id, grid_id::text, 0, 0, 0,
         concat_ws(' ', tags, CASE WHEN valid_from = now() THEN 'now' ELSE valid_from::text END,
                   CASE WHEN valid_to = now() THEN 'now' ELSE valid_to::text END)
  FROM household_history WHERE valid_from >= '2026-11-01' OR valid_to IS NOT NULL
  UNION ALL
  SELECT 'd', grid_id, week, 0, delta, 0, kind || tag FROM report_household_deltas) x
"""


def one_round(
    conn,
    definition: str,
    case: str,
    seed: int,
    grids: int,
    size: int,
    *,
    rebuild: bool = False,
    past: bool = False,
) -> dict:
    """Under `definition`, one statement of `case` (EXPLAIN ANALYZE), rolled back."""
    with conn.begin() as tx:
        conn.execute(text(DEFINITIONS[definition]))
        if past:
            conn.execute(text(f"SET LOCAL gridwork.effective_at = '{PAST}'"))
        if case == "recount":
            conn.execute(text(NEW_CADENCE))
        sql = CASES[case].format(pick=PICK.format(seed=seed, size=size))
        params = {"grids": grids} if ":grids" in sql else {}
        plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql), params).scalar_one()
        plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
        triggers = {t["Trigger Name"]: t["Time"] for t in plan.get("Triggers", [])}
        kept = conn.scalar(text(KEPT), {"week": "2026-W46"})
        rebuilt = None
        if rebuild:
            conn.execute(text("SELECT gw_report_rebuild()"))
            rebuilt = conn.scalar(text(KEPT), {"week": "2026-W46"})
        tx.rollback()
    ms = plan["Execution Time"] if case == "recount" else triggers["trg_households_report_upd"]
    return {"ms": ms, "kept": kept, "rebuilt": rebuilt}


def vacuum(engine) -> None:
    """The rounds roll back: their dead rows would slow the next case's scans."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {', '.join(VACUUMED)}"))


def district_arguments(description: str) -> argparse.ArgumentParser:
    """The options of a bench on this district: whether to build it, its size."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--no-setup", action="store_true", help="use the data already loaded")
    parser.add_argument("--grids", type=int, default=300, help="of 300 households each")
    parser.add_argument("--weeks", type=int, default=12)
    return parser


def district_engine(args: argparse.Namespace) -> Engine:
    """An engine on DATABASE_URL, migrated and holding the district unless --no-setup."""
    engine = create_engine(normalise_database_url(load_config()["DATABASE_URL"]))
    if not args.no_setup:
        from alembic import command

        from api.cli import alembic_config

        command.upgrade(alembic_config(engine.url.render_as_string(hide_password=False)), "head")
        setup(engine, args.grids, args.weeks)
    return engine


def main() -> None:
    parser = district_arguments(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--check", action="store_true", help="round 0 also compares a rebuild")
    args = parser.parse_args()
    engine = district_engine(args)
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM households), "
                "(SELECT count(*) FROM household_history), (SELECT count(*) FROM visits)"
            )
        ).one()
    grids = counts[0]
    print(
        f"data: {counts[1]} households in {grids} grids, {counts[2]} history rows, "
        f"{counts[3]} visits"
    )
    print(f"{'case':10} {'def':>5} {'ms (median)':>12}")
    note = f"informational: median of {args.repeat}"
    with engine.connect() as conn:
        for case in CASES:
            vacuum(engine)
            runs = {name: [] for name in DEFINITIONS}
            for r in range(args.repeat + 1):  # round 0 warms the caches, and checks
                order = list(DEFINITIONS) if r % 2 == 0 else list(reversed(DEFINITIONS))
                # Each round draws other households: an untimed pass first reads their pages in
                # (under 0026, which reads all that 0023 reads and the visits index too), so the
                # first definition timed is not the one paying for the cold cache.
                one_round(conn, "0026", case, r, grids, args.batch_size)
                results = {
                    name: one_round(
                        conn,
                        name,
                        case,
                        r,
                        grids,
                        args.batch_size,
                        rebuild=r == 0 and (args.check or case == "recount"),
                    )
                    for name in order
                }
                kept = {res["kept"] for res in results.values()}
                assert len(kept) == 1, f"{case}: the definitions keep different aggregates"
                if r == 0:
                    for name, res in results.items():
                        assert res["rebuilt"] in (None, res["kept"]), f"{case}/{name}: != rebuild"
                    continue
                for name, res in results.items():
                    runs[name].append(res["ms"])
            for name, times in runs.items():
                ms = statistics.median(times)
                print(f"{case:10} {name:>5} {ms:>12.1f}")
                what = "statement" if case == "recount" else "trigger"
                emit("report_upkeep", f"{case}_{name}_{what}_ms", ms, "ms", None, limit_note=note)
            old, new = runs["0023"], runs["0026"]
            saved = statistics.median(o - n for o, n in zip(old, new, strict=True))
            ratio = statistics.median(n / o for o, n in zip(old, new, strict=True))
            print(f"{case:10} 0026 - 0023, paired median: {-saved:+.1f} ms ({ratio:.2f}x)")
        # What 0026 adds: the recount of a tag change dated a week back (0023 has none).
        vacuum(engine)
        times, rebuilt_ok = [], True
        for r in range(args.repeat + 1):
            one_round(conn, "0026", "retag", r, grids, args.batch_size, past=True)  # warm
            res = one_round(
                conn, "0026", "retag", r, grids, args.batch_size, rebuild=r == 0, past=True
            )
            if r == 0:
                rebuilt_ok = res["rebuilt"] == res["kept"]
                assert rebuilt_ok, "retag_past: != rebuild"
                continue
            times.append(res["ms"])
        ms = statistics.median(times)
        print(f"{'retag_past':10} {'0026':>5} {ms:>12.1f}")
        emit("report_upkeep", "retag_past_0026_trigger_ms", ms, "ms", None, limit_note=note)


if __name__ == "__main__":
    main()
