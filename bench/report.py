"""Benchmark: the weekly coverage report of a district (425 grids) and of a city (3,000 grids /
900,000 households / 12 weeks of visits), through the API beside the same SQL run directly.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gw_report_bench \\
        .venv/bin/python -m bench.report [--no-setup] [--repeat 15]

Setup (skipped with --no-setup: the data an earlier run of this bench loaded, whose units 110100
and 110101 and viewers bv_city and bv_district it reads; not a `gridwork seed city` database,
which has neither) builds, server-side
with INSERT ... SELECT generate_series, in the database DATABASE_URL names (it must be a database of
its own: the setup TRUNCATEs the domain tables):

- the "city": area 110100 with 30 streets, 300 communities, 3,000 grids of 300 households each
  (900,000; 10 % businesses, care tags on ~20 %), a worker per grid;
- the "district": 110101 with 4 streets, 40 communities, 425 grids (127,500 households);
- 12 ISO weeks of visits (2026-W36..W47): ~85 % of households a week, living-alone households
  twice, 10 % nobody home, grades ok / doubtful / suspect; three tasks per grid and week; the
  report week's published A / B rosters.

The raw rows are loaded with the aggregate triggers disabled and the aggregates then rebuilt in one
set-based pass (`gw_report_rebuild()`), which is what the migration's backfill does.

Measured, same run, same database, warm, median of --repeat (15: the same statement varies by
±15 % from run to run on a shared 2-core machine, so 7 left the ratio to chance):
- API: GET /api/v1/reports/coverage?week=2026-W47&district=... through Flask's test client, as a
  district viewer (JWT, user load, scope, unit lookup, grid selection, the report statement);
- SQL: the grid selection and the same report statement (its CTEs are the sections; PostgreSQL
  builds the JSON) with the same parameters on a plain connection, the document fetched; each
  run a transaction of its own with the report planned for its parameters, as the API's is
  (until 2026-12-05 all runs shared one open transaction and the statement was left to
  PostgreSQL's plan cache, which on the city turns it generic, and slower, from its 10th run).
Goals (issue #8): API <= 1.2 x SQL; the city report <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import create_engine, text

from api import create_app
from api.services import reports
from api.settings import normalise_database_url
from bench._result import emit

WEEK = "2026-W47"
FIRST_MONDAY = "2026-08-31"  # Monday of 2026-W36 (Asia/Shanghai)
CITY, DISTRICT = "110100", "110101"
APP_CONFIG = {
    "LOG_LEVEL": "WARNING",
    "SECRET_KEY": "bench-secret-key-with-enough-length-for-hs256",
    "DATA_KEY": "dGVzdC1kYXRhLWtleS1mb3ItZ3JpZHdvcmstdGVzdHM",
    "STATEMENT_TIMEOUT_S": 0,  # as bench._result.BENCH_APP
}

SETUP = [
    (
        "clear",
        """
        TRUNCATE districts, streets, communities, grids, grid_versions, users, user_grids,
                 households, household_history, visits, tasks, rosters, shifts, notifications,
                 reports, report_files, report_household_weeks, report_grid_weeks,
                 report_grid_week_tags, report_worker_weeks, report_worker_households,
                 report_household_deltas, community_cadences
                 CASCADE
        """,
    ),
    (
        "hierarchy",
        """
        INSERT INTO districts (code, name)
          VALUES ('110100', '全市(基准)'), ('110101', '东城区(基准)');
        INSERT INTO streets (code, district_code, name)
          SELECT '110100' || lpad(s::text, 3, '0'), '110100', '街道' || s
          FROM generate_series(1, :city_streets) s
          UNION ALL
          SELECT '110101' || lpad(s::text, 3, '0'), '110101', '东城街道' || s
          FROM generate_series(1, 4) s;
        INSERT INTO communities (code, street_code, name)
          SELECT s.code || lpad(c::text, 3, '0'), s.code, '社区' || right(s.code, 3) || '-' || c
          FROM streets s, generate_series(1, 10) c;
        """,
    ),
    (
        "grids",
        """
        INSERT INTO grids (code, name, community_code, boundary, version)
        SELECT community_code || lpad(seq::text, 3, '0'), '网格' || gi, community_code,
               ST_Multi(ST_MakeEnvelope(115.5 + (gi % 80) * 0.01, 39.0 + (gi / 80) * 0.01,
                                        115.51 + (gi % 80) * 0.01, 39.01 + (gi / 80) * 0.01,
                                        4326)),
               1
        FROM (
          SELECT row_number() OVER (ORDER BY community_code, seq) AS gi, community_code, seq
          FROM (
            SELECT c.code AS community_code, k AS seq
            FROM communities c, generate_series(1, 10) k WHERE c.code LIKE '110100%'
            UNION ALL
            SELECT c.code, k FROM (
              SELECT code, row_number() OVER (ORDER BY code) AS rn
              FROM communities WHERE code LIKE '110101%') c,
              generate_series(1, CASE WHEN c.rn <= 25 THEN 11 ELSE 10 END) k
          ) plan
        ) numbered;
        INSERT INTO grid_versions (grid_id, version, boundary, valid_from)
          SELECT id, 1, boundary, '2026-08-01 00:00+08' FROM grids;
        """,
    ),
    (
        "users",
        """
        INSERT INTO users (username, display_name, role, password_hash, community_code)
          SELECT 'bw' || g.id, '网格员' || g.id, 'worker', 'x', g.community_code FROM grids g;
        INSERT INTO user_grids (user_id, grid_id)
          SELECT u.id, g.id FROM grids g JOIN users u ON u.username = 'bw' || g.id;
        INSERT INTO users (username, display_name, role, password_hash, community_code)
          SELECT 'ba' || c.code, '管理员', 'community_admin', 'x', c.code FROM communities c;
        INSERT INTO users (username, display_name, role, password_hash, district_code)
          VALUES ('bv_city', '全市', 'district_viewer', 'x', '110100'),
                 ('bv_district', '东城区', 'district_viewer', 'x', '110101');
        """,
    ),
    (
        "households",
        """
        ALTER TABLE households DISABLE TRIGGER USER;
        INSERT INTO households (grid_id, building, unit, floor, room, location, kind, occupancy,
                                members, tags, created_at)
        SELECT g.id, (n / 30 + 1)::text, '1', ((n % 30) / 2 + 1)::text, (100 + n)::text,
               ST_SetSRID(ST_MakePoint(ST_XMin(g.boundary) + 0.0005 + (n % 20) * 0.00045,
                                       ST_YMin(g.boundary) + 0.0005 + (n / 20) * 0.0006), 4326),
               CASE WHEN n % 10 = 0 THEN 'business' ELSE 'residence' END, 'owner', 2,
               CASE WHEN n % 10 = 1 THEN '{elderly_80}'::text[]
                    WHEN n % 20 = 3 THEN '{living_alone}'::text[]
                    WHEN n % 25 = 7 THEN '{low_income,disability}'::text[]
                    ELSE '{}'::text[] END,
               '2026-08-01 00:00+08'
        FROM grids g, generate_series(0, :per_grid - 1) n
        ORDER BY g.id, n;
        ALTER TABLE households ENABLE TRIGGER USER;
        INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from)
          SELECT id, grid_id, kind, tags, created_at FROM households;
        """,
    ),
    (
        "visits (disable the triggers keeping derived tables)",
        "ALTER TABLE visits DISABLE TRIGGER USER",
    ),
]

# One statement per week; ids are time-ordered so the primary key grows at its right edge.
VISITS_WEEK = """
INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at, utc_offset_minutes, week,
                    location, accuracy_m, datum, raw_lon, raw_lat, provider, outcome, grade)
SELECT (lpad(to_hex({w}), 8, '0') || '-' || lpad(to_hex(k), 4, '0') || '-4000-8000-'
        || lpad(to_hex(h.id), 12, '0'))::uuid,
       ug.user_id, h.id, h.grid_id, t.at, 480, gw_week_of(t.at), h.location, 10, 'wgs84',
       ST_X(h.location), ST_Y(h.location), 'gps',
       CASE WHEN (h.id + {w}) % 10 = 0 THEN 'nobody_home' ELSE 'met' END,
       CASE WHEN (h.id * 7 + {w}) % 33 = 0 THEN 'suspect'
            WHEN (h.id * 7 + {w}) % 14 = 0 THEN 'doubtful' ELSE 'ok' END
FROM households h
JOIN user_grids ug ON ug.grid_id = h.grid_id
CROSS JOIN LATERAL generate_series(0, CASE WHEN h.tags @> '{living_alone}' THEN 1 ELSE 0 END) k
CROSS JOIN LATERAL (
  SELECT CAST(:monday AS timestamptz) + make_interval(days => 7 * {w} + (h.id + k * 3) % 6,
                                                      hours => 1 + (h.id % 9)) AS at) t
WHERE (h.id * 31 + {w} * 17) % 100 < 85
ORDER BY 1
"""

FINISH = [
    (
        "tasks",
        """
        INSERT INTO tasks (source, type, title, grid_id, status, urgency, created_at, updated_at,
                           due_at, first_contact_due_at, first_contact_at, satisfaction)
        SELECT 'hotline', 'complaint', '基准工单', g.id,
               CASE k WHEN 0 THEN 'resolved' WHEN 1 THEN 'closed' ELSE 'dispatched' END,
               'general', t.at, t.at, t.at + interval '3 days', t.at + interval '2 hours',
               CASE WHEN k < 2 THEN t.at + interval '1 hour' END,
               CASE WHEN k = 1 THEN 'satisfied' END
        FROM grids g, generate_series(0, :weeks - 1) w, generate_series(0, 2) k,
             LATERAL (SELECT CAST(:monday AS timestamptz)
                             + make_interval(days => 7 * w + k, hours => 2) AS at) t;
        """,
    ),
    (
        "rosters",
        """
        INSERT INTO rosters (community_code, week, status)
          SELECT code, :week, 'published' FROM communities;
        INSERT INTO shifts (roster_id, date, post, worker_id, grid_id)
        SELECT r.id, d::date, CASE WHEN (u.id + i) % 5 = 0 THEN 'A' ELSE 'B' END, u.id,
               CASE WHEN (u.id + i) % 5 = 0 THEN NULL ELSE ug.grid_id END
        FROM users u
        JOIN user_grids ug ON ug.user_id = u.id
        JOIN rosters r ON r.community_code = u.community_code AND r.week = :week
        CROSS JOIN generate_series(0, 5) i
        CROSS JOIN LATERAL (SELECT CAST(:sunday AS date) - 6 + i AS d) day;
        """,
    ),
    ("aggregates (gw_report_rebuild)", "SELECT gw_report_rebuild()"),
    (
        "last visits",
        "SELECT gw_last_visit_rebuild()",
    ),
    ("enable triggers", "ALTER TABLE visits ENABLE TRIGGER USER"),
    ("analyze", "ANALYZE"),
]


def _run(conn, label: str, sql: str, params: dict) -> None:
    start = time.perf_counter()
    for statement in [s for s in sql.split(";\n") if s.strip()]:
        names = {k: v for k, v in params.items() if f":{k}" in statement}
        conn.execute(text(statement), names)
    conn.commit()
    print(f"  setup {label}: {time.perf_counter() - start:.1f} s", flush=True)


def setup(engine, args) -> None:
    params = {
        "city_streets": args.city_grids // 100,
        "per_grid": args.per_grid,
        "weeks": args.weeks,
        "week": WEEK,
        "monday": reports.shift_week(WEEK, -(args.weeks - 1)),
        "sunday": reports.week_dates(WEEK)[-1],
    }
    params["monday"] = reports.week_bounds(params["monday"])[0]
    with engine.connect() as conn:
        conn.execute(text("SET maintenance_work_mem = '256MB'"))
        conn.execute(text("SET work_mem = '64MB'"))
        for label, sql in SETUP:
            _run(conn, label, sql, params)
        # The model's secondary indexes on visits, read from the catalogue: dropped for the
        # load, rebuilt once after it (far faster than maintaining them row by row).
        indexes = conn.execute(text(VISIT_INDEXES)).all()
        for name, _definition in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        for w in range(args.weeks):
            _run(
                conn,
                f"visits week {w + 1}/{args.weeks}",
                VISITS_WEEK.replace("{w}", str(w)),
                params,
            )
        _run(conn, "visit indexes", ";\n".join(d for _n, d in indexes), params)
        for label, sql in FINISH:
            _run(conn, label, sql, params)


VISIT_INDEXES = """
SELECT i.relname, pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = 'visits'::regclass AND NOT x.indisprimary AND NOT x.indisunique
"""


# As reports.select_scope: the grids of the week, and of the trend's eight weeks (its first
# week's start: :trend_start).
SELECT_GRIDS = """
SELECT g.id,
       EXISTS (SELECT 1 FROM grid_versions v WHERE v.grid_id = g.id AND v.valid_from < :end
               AND (v.valid_to IS NULL OR v.valid_to > :start))
FROM grids g
WHERE g.community_code LIKE :prefix
  AND EXISTS (SELECT 1 FROM grid_versions v WHERE v.grid_id = g.id AND v.valid_from < :end
              AND (v.valid_to IS NULL OR v.valid_to > :trend_start))
ORDER BY g.code
"""


# As api/services/reports.coverage_json plans the report: for its parameters on every run, in
# this transaction only (else PostgreSQL switches the statement to a generic plan from its
# 10th run on a connection: slower, measured on the city).
CUSTOM_PLANS = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"


def sql_direct(conn, district: str) -> tuple[float, int]:
    """The grid selection and the report statement, as the API runs them, on a plain connection:
    a transaction of their own (as a request's), the report planned as the API plans it."""
    start = time.perf_counter()
    week_start, week_end = reports.week_bounds(WEEK)
    trend_start = reports.week_bounds(reports.shift_week(WEEK, 1 - reports.TREND_WEEKS))[0]
    with conn.begin():
        rows = conn.execute(
            text(SELECT_GRIDS),
            {
                "prefix": district + "%",
                "start": week_start,
                "end": week_end,
                "trend_start": trend_start,
            },
        ).all()
        ids = [g for g, in_week in rows if in_week]
        selection = reports.Selection("district", district, "", ids, [g for g, _ in rows])
        conn.execute(text(CUSTOM_PLANS))
        document = conn.execute(text(reports.REPORT_SQL), reports.report_params(selection, WEEK))
        document.scalar_one()
    return time.perf_counter() - start, len(ids)


def api_call(client, headers, district: str) -> tuple[float, dict]:
    start = time.perf_counter()
    r = client.get(
        "/api/v1/reports/coverage",
        query_string={"week": WEEK, "district": district},
        headers=headers,
    )
    elapsed = time.perf_counter() - start
    assert r.status_code == 200, r.data[:300]
    return elapsed, r.json


def result(metric: str, value: float, limit: float, note: str, unit: str = "s") -> None:
    emit("report", metric, value, unit, limit, limit_note=note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-setup", action="store_true", help="use the data already loaded")
    parser.add_argument("--city-grids", type=int, default=3000)
    parser.add_argument("--per-grid", type=int, default=300)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    app = create_app(APP_CONFIG)
    engine = create_engine(normalise_database_url(app.config["DATABASE_URL"]))
    if not args.no_setup:
        from alembic import command

        from api.cli import alembic_config

        command.upgrade(alembic_config(app.config["DATABASE_URL"]), "head")
        print("setup:", flush=True)
        setup(engine, args)
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM households), "
                "(SELECT reltuples::bigint FROM pg_class WHERE relname = 'visits')"
            )
        ).one()
    print(f"data: {counts[0]} grids, {counts[1]} households, ~{counts[2]} visits")

    from flask_jwt_extended import create_access_token
    from sqlalchemy import select

    from api.auth import claims_for
    from api.extensions import db
    from api.models import User

    client = app.test_client()
    rows = []
    with app.app_context():
        users = {
            u.username: u
            for u in db.session.scalars(
                select(User).where(User.username.in_(["bv_city", "bv_district"]))
            )
        }
        headers = {
            name: {
                "Authorization": "Bearer " + create_access_token(u, additional_claims=claims_for(u))
            }
            for name, u in users.items()
        }
    for label, code, viewer in (("district", DISTRICT, "bv_district"), ("city", CITY, "bv_city")):
        api_times, sql_times = [], []
        with engine.connect() as conn:
            api_call(client, headers[viewer], code)  # warm-up (caches, plans)
            sql_direct(conn, code)
            for _ in range(args.repeat):  # interleaved: both see the same machine load
                elapsed, body = api_call(client, headers[viewer], code)
                api_times.append(elapsed)
                elapsed, n = sql_direct(conn, code)
                sql_times.append(elapsed)
        api, sql = statistics.median(api_times), statistics.median(sql_times)
        t = body["totals"]
        rows.append((label, n, t["households"], t["coverage"], api, sql))
        result(f"{label}_api_s", api, 1.2 * sql, "1.2 x raw SQL same run")
        if label == "city":
            result("city_api_s_goal", api, 1.0, "issue #8 goal: city report <= 1 s")
        result(f"{label}_sql_s", sql, sql, "raw SQL (the baseline itself)")

    # The other renderings of the district report (informational).
    render = {}
    for fmt in ("csv", "xlsx", "pdf"):
        start = time.perf_counter()
        r = client.get(
            "/api/v1/reports/coverage",
            query_string={"week": WEEK, "district": DISTRICT, "format": fmt},
            headers=headers["bv_district"],
        )
        assert r.status_code == 200
        render[fmt] = time.perf_counter() - start

    print()
    print(
        f"{'report':10} {'grids':>6} {'households':>11} {'coverage':>9} {'API s':>8} "
        f"{'SQL s':>8} {'API/SQL':>8}"
    )
    for label, n, hh, cov, api, sql in rows:
        print(f"{label:10} {n:>6} {hh:>11} {cov:>8}% {api:>8.3f} {sql:>8.3f} {api / sql:>8.2f}")
    print("district report as " + ", ".join(f"{k} {v:.2f} s" for k, v in render.items()))
    for fmt, seconds in render.items():
        result(f"district_{fmt}_s", seconds, 10.0, "informational: render + download")


if __name__ == "__main__":
    main()
