"""Tile latency p50/p95 per layer and zoom (13-17) over the demo district: API beside raw SQL.

Usage: DATABASE_URL=... python bench/tiles.py [--per-zoom 24]
Needs the demo district (`gridwork seed demo`). Adds a week of visits (60% of households) and
60 open tasks inside a transaction that is rolled back at the end, so the database is unchanged.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import func, select, text

LIMIT_P95_MS = 150.0  # goal: a tile through the API at p95, on the 2-core dev machine
LAYERS = ("grids", "households", "visits", "tasks")
ZOOMS = range(13, 18)


def tile_range(bounds, z):
    lon0, lat0, lon1, lat1 = bounds
    n = 1 << z

    def xy(lon, lat):
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    x0, y1 = xy(lon0, lat0)
    x1, y0 = xy(lon1, lat1)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-zoom", type=int, default=24, help="tiles sampled per zoom")
    args = parser.parse_args()

    from flask_jwt_extended import create_access_token

    from api import create_app
    from api.auth import claims_for
    from api.extensions import db
    from api.models import Grid, User
    from api.scope import Scope
    from api.services import tiles
    from api.services.weeks import current_week

    app = create_app({"LOG_LEVEL": "WARNING"})
    week = current_week()
    with db.engine.connect() as connection:
        outer = connection.begin()
        db.bind(connection)
        connection.execute(
            text(
                """
                INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at,
                  utc_offset_minutes, week, location, datum, raw_lon, raw_lat, outcome, grade)
                SELECT gen_random_uuid(), (SELECT id FROM users WHERE role = 'worker' LIMIT 1),
                  h.id, h.grid_id, now() - interval '1 hour', 480, :week, h.location, 'wgs84',
                  ST_X(h.location), ST_Y(h.location), 'met', 'ok'
                FROM households h WHERE random() < 0.6
                """
            ),
            {"week": week},
        )
        connection.execute(
            text(
                """
                INSERT INTO tasks (source, type, title, household_id, grid_id, status, due_at)
                SELECT 'hotline', 'complaint', 'bench', h.id, h.grid_id, 'dispatched',
                  now() + (random() - 0.5) * interval '4 days'
                FROM households h ORDER BY random() LIMIT 60
                """
            )
        )
        with app.app_context():
            session = db.session
            viewer = session.scalar(select(User).where(User.role == "district_viewer"))
            bounds = session.execute(
                select(func.ST_Extent(Grid.boundary)).where(Grid.retired_at.is_(None))
            ).scalar()
            box = [float(v) for v in bounds[4:-1].replace(",", " ").split()]
            token = create_access_token(viewer, additional_claims=claims_for(viewer))
            scope = Scope.for_user(session, viewer)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        print(f"tile latency, demo district, week {week}, caller: district viewer (sees all)")
        print(
            f"{'layer':<11}{'z':>3}{'tiles':>6}{'api p50':>9}{'api p95':>9}"
            f"{'sql p50':>9}{'sql p95':>9}{'avg KiB':>9}  limit api p95 {LIMIT_P95_MS:.0f} ms"
        )
        worst = 0.0
        for layer in LAYERS:
            for z in ZOOMS:
                coords = tile_range(box, z)
                step = max(1, len(coords) // args.per_zoom)
                coords = coords[::step][: args.per_zoom]
                api_ms, sql_ms, sizes = [], [], []
                for zz, x, y in coords:
                    url = f"/api/v1/tiles/{layer}/{zz}/{x}/{y}.mvt?week={week}"
                    t0 = time.perf_counter()
                    response = client.get(url, headers=headers)
                    api_ms.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code in (200, 204), response.status_code
                    sizes.append(len(response.data))
                    with app.app_context():
                        req = tiles.TileRequest(layer, zz, x, y, week, datetime.now(UTC))
                        query = tiles.tile_query(scope, req)
                        t0 = time.perf_counter()
                        db.session.scalar(query)
                        sql_ms.append((time.perf_counter() - t0) * 1000)
                worst = max(worst, pct(api_ms, 95))
                print(
                    f"{layer:<11}{z:>3}{len(coords):>6}{statistics.median(api_ms):>9.1f}"
                    f"{pct(api_ms, 95):>9.1f}{statistics.median(sql_ms):>9.1f}"
                    f"{pct(sql_ms, 95):>9.1f}{statistics.mean(sizes) / 1024:>9.1f}"
                )
        print(
            f"worst api p95 {worst:.1f} ms vs limit {LIMIT_P95_MS:.0f} ms: "
            f"{'OK' if worst <= LIMIT_P95_MS else 'OVER'}"
        )
        outer.rollback()


if __name__ == "__main__":
    main()
