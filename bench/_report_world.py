"""A district of tagged households with weeks of visits, in SQL: the report benches' data."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sqlalchemy import text

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def tagged_district(places: list[str]) -> list[str]:
    """Statements that empty the report's tables and build, in `places` (statements making the
    district, its street, communities and grids), 300 households a grid and their visits.

    One worker a grid (username `:prefix` + grid id). Tags now: a household whose room number
    ends in 4 is elderly_80, in 5 lives alone (20 %); rooms ending in 1, 2, 3 had one of those
    tags until 2026-09-15 (30 %). Visits: `:weeks` weeks from the week `:first_week` weeks after
    the one starting `:monday`, ~85 % of households a week, twice for those living alone. Every
    community visits weekly, living alone twice a week. The aggregates are rebuilt, then
    ANALYZE.
    """
    return [
        """
        TRUNCATE districts, streets, communities, grids, grid_versions, users, user_grids,
                 households, household_history, household_last_visits, visits, tasks, rosters,
                 shifts, notifications, reports, report_files, report_household_weeks,
                 report_grid_weeks, report_grid_week_tags, report_worker_weeks,
                 report_worker_households, report_household_deltas, community_cadences
                 CASCADE
        """,
        *places,
        """
        INSERT INTO grid_versions (grid_id, version, boundary, valid_from)
          SELECT id, 1, boundary, '2026-08-01 00:00+08' FROM grids
        """,
        """
        INSERT INTO users (username, display_name, role, password_hash, community_code)
          SELECT :prefix || g.id, '网格员' || g.id, 'worker', 'x', g.community_code FROM grids g
        """,
        """
        INSERT INTO user_grids (user_id, grid_id)
          SELECT u.id, g.id FROM grids g JOIN users u ON u.username = :prefix || g.id
        """,
        # Tags now: n % 10 = 4 elderly, 5 living alone (20 %); tags removed: 1, 2, 3 (30 %).
        "ALTER TABLE households DISABLE TRIGGER USER",
        """
        INSERT INTO households (grid_id, building, unit, floor, room, location, kind, tags,
                                created_at)
        SELECT g.id, (n / 30 + 1)::text, '1', ((n % 30) / 2 + 1)::text, (100 + n)::text,
               ST_SetSRID(ST_MakePoint(ST_XMin(g.boundary) + 0.0005 + (n % 20) * 0.00045,
                                       ST_YMin(g.boundary) + 0.0005 + (n / 20) * 0.0006), 4326),
               'residence',
               CASE n % 10 WHEN 4 THEN '{elderly_80}'::text[] WHEN 5 THEN '{living_alone}'::text[]
                           ELSE '{}'::text[] END,
               '2026-08-01 00:00+08'
        FROM grids g, generate_series(0, 299) n
        ORDER BY g.id, n
        """,
        "ALTER TABLE households ENABLE TRIGGER USER",
        """
        INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from, valid_to)
        SELECT id, grid_id, kind,
               CASE WHEN r THEN CASE WHEN id % 2 = 0 THEN '{living_alone}'::text[]
                                     ELSE '{elderly_80}'::text[] END
                    ELSE tags END,
               created_at, CASE WHEN r THEN timestamptz '2026-09-15 09:00+08' END
        FROM (SELECT h.*, ((h.room::int - 100) % 10) IN (1, 2, 3) AS r FROM households h) x
        UNION ALL
        SELECT id, grid_id, kind, tags, '2026-09-15 09:00+08', NULL FROM households
        WHERE ((room::int - 100) % 10) IN (1, 2, 3)
        """,
        "ALTER TABLE visits DISABLE TRIGGER USER",
        """
        INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at, utc_offset_minutes,
                            week, location, accuracy_m, datum, raw_lon, raw_lat, provider, outcome,
                            grade)
        SELECT gen_random_uuid(), ug.user_id, h.id, h.grid_id, t.at, 480, gw_week_of(t.at),
               h.location, 10, 'wgs84', ST_X(h.location), ST_Y(h.location), 'gps',
               CASE WHEN (h.id + w) % 10 = 0 THEN 'nobody_home' ELSE 'met' END, 'ok'
        FROM households h
        JOIN user_grids ug ON ug.grid_id = h.grid_id
        CROSS JOIN generate_series(:first_week, :first_week + :weeks - 1) w
        CROSS JOIN LATERAL generate_series(
          0, CASE WHEN h.tags @> '{living_alone}' THEN 1 ELSE 0 END) k
        CROSS JOIN LATERAL (
          SELECT CAST(:monday AS timestamptz) + make_interval(days => 7 * w + (h.id + k * 3) % 5,
                                                              hours => 1 + (h.id % 9)) AS at) t
        WHERE (h.id * 31 + w * 17) % 100 < 85
        """,
        "ALTER TABLE visits ENABLE TRIGGER USER",
        """
        INSERT INTO community_cadences (community_code, from_week, cadence)
        SELECT code, NULL, '{"default": 1, "tags": {"living_alone": 2}}' FROM communities
        """,
        "SELECT gw_report_rebuild()",
        "SELECT gw_last_visit_rebuild()",
        "ANALYZE",
    ]


def build(engine, statements: list[str], **params) -> None:
    """Run `statements` with the `params` each names, and commit."""
    with engine.connect() as conn:
        conn.execute(text("SET maintenance_work_mem = '256MB'"))
        for statement in statements:
            names = {k: v for k, v in params.items() if f":{k}" in statement}
            conn.execute(text(statement), names)
        conn.commit()


def migration(pattern: str) -> ModuleType:
    """The migration file matching `pattern` (e.g. "*_0026_*.py"), loaded: its SQL constants
    (the migrations are not a package)."""
    path = next(VERSIONS.glob(pattern))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
