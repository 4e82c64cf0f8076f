"""Tile latency p50/p95 per layer and zoom: the API beside its ST_AsMVT statement run raw.

Usage: DATABASE_URL=... python -m bench.tiles [--per-zoom 24] [--rounds 3] [--min-samples 72]
       [--zooms 13-17] [--layers ...]

On the city (`gridwork seed city`) it reads the loaded weeks as they are, and the API runs as in
production (pooled connections, a transaction per request). On the demo district (`gridwork
seed demo`, no visits this week) it first adds a week of visits (60% of households) and 60 open
tasks inside a transaction that is rolled back at the end, and the API runs inside it. Until
2026-12-02 the API ran inside the bench's transaction on the city too: two savepoint round
trips per tile that production does not pay.

The caller is a district viewer (sees a whole district). Tiles are sampled evenly over the
district's extent. "raw" is the layer's statement as the API builds it for this caller, its text
and parameters as the API sends them, run on a plain psycopg connection (no Flask, no ORM, no
auth) with the API's tile settings: prepared from its 6th run and planned for each tile, as the
API's is (until 2026-12-05 it was the statement compiled to text with its values inline, which
psycopg prepared as well: with no parameters PostgreSQL then ran it on one cached plan, never
planned again, so the grids layer's raw timings, which no audited rollback reset, left out the
planning the API pays for every tile), without the audit
entry the API writes for the layers that disclose records (households, visits, tasks): the
floor for the API at that tile, and the goal's baseline. "raw+audit" (those layers) is the very
statement the API sends, with its audit INSERT, run the same way in a transaction rolled back:
what of the API's time is the database's. "floor" is the raw statement served by a bare Flask app
(one route, no extension, no auth, the same test client): the least any Flask app could add to
the statement; where it misses 1.3 x raw, no request built on the fixed stack can meet the goal
at that zoom. "floor+check" adds one more round trip (`SELECT 1`), as a token check that asks the
database (revocation, a disabled account) does when it is a statement of its own: the API paid
it on every tile until 2026-12-04 (afternoon); now a map session's first tile pays it, and each
next tile's statement checks the token itself (api.auth, docs/performance.md).
Each sampled tile is timed `--rounds` times, API and raw in turn, or more often where a zoom has
fewer tiles, so a zoom's p95 is taken over at least `--min-samples` timings of each side (until
2026-12-03 night, z13, 12 tiles in a district, had 36; until 2026-12-02 afternoon, 16, one per
tile: p95 was the second-slowest, and two runs a minute apart gave grids z13 1.26 and 1.74).
Goals (issue 8): API p95 <= 1.3 x raw p95 and <= 50 ms.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import UTC, datetime

import psycopg
from sqlalchemy import func, select, text

from bench._result import BENCH_APP, emit, pct

LIMIT_P95_MS = 50.0
LIMIT_RATIO = 1.3
LAYERS = ("grids", "households", "visits", "tasks")


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


def sample(coords, k):
    if len(coords) <= k:
        return coords
    step = len(coords) / k
    return [coords[int(i * step + step / 2)] for i in range(k)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-zoom", type=int, default=24, help="tiles sampled per zoom")
    parser.add_argument("--rounds", type=int, default=3, help="timings of each tile, each side")
    parser.add_argument(
        "--min-samples",
        type=int,
        default=72,
        help="timings per zoom and side at least: a zoom with fewer tiles times each more often",
    )
    parser.add_argument("--zooms", default="13-17")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args()
    lo, _, hi = args.zooms.partition("-")
    zooms = range(int(lo), int(hi or lo) + 1)
    layers = [x for x in args.layers.split(",") if x]

    from flask_jwt_extended import create_access_token

    from api import create_app, heap
    from api.auth import claims_for
    from api.extensions import db
    from api.models import Grid, User
    from api.privacy import NOTHING, POLICY
    from api.scope import Scope
    from api.services import tiles
    from api.services.audit import Reader
    from api.services.weeks import current_week

    app = create_app(BENCH_APP)
    week = current_week()
    url = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with db.engine.connect() as connection:
        outer = connection.begin()
        seeded = connection.scalar(text("SELECT count(*) FROM visits WHERE week = :w"), {"w": week})
        if not seeded:
            # The demo's week of visits lives in this open transaction: the API must run
            # inside it (its commits become savepoints). On a loaded city the API runs as in
            # production, on its own pooled connections, a transaction per request.
            db.bind(connection)
            _demo_week(connection, week)
        with app.app_context():
            session = db.session
            viewer = session.scalar(
                select(User).where(User.role == "district_viewer").order_by(User.id)
            )
            scope = Scope.for_user(session, viewer)
            tracks = POLICY.get(viewer.role, NOTHING).tracks
            bounds = session.execute(
                select(func.ST_Extent(Grid.boundary)).where(
                    Grid.retired_at.is_(None), scope.grids()
                )
            ).scalar()
            box = [float(v) for v in bounds[4:-1].replace(",", " ").split()]
            token = create_access_token(viewer, additional_claims=claims_for(viewer))
            counts = session.execute(
                text(
                    "SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM households),"
                    " (SELECT count(*) FROM visits), (SELECT count(*) FROM tasks)"
                )
            ).one()
        # Raw runs on its own connection: it sees committed data only, so on the demo (where
        # this week's visits live in the open transaction) it would not see them. Use the
        # bench's connection there instead.
        raw_conn = psycopg.connect(url, autocommit=True) if seeded else None
        # The same settings the API uses for a tile (api/services/tiles.tile_settings), for the
        # raw connection's session.
        if raw_conn is not None:
            _apply(raw_conn, tiles.tile_settings(False), local=False)
        client = app.test_client()
        floor = _floor_client(raw_conn, connection)
        heap.settle()  # as `gridwork serve` does in each worker once the app is loaded
        headers = {"Authorization": f"Bearer {token}"}
        print(
            f"tile latency, week {week}, caller: district viewer {viewer.username} "
            f"({viewer.district_code}); database: {counts[0]:,} grids, {counts[1]:,} households, "
            f"{counts[2]:,} visits, {counts[3]:,} tasks; each tile timed {args.rounds}x each side, "
            f"at least {args.min_samples} timings a zoom"
        )
        reader = Reader(user_id=viewer.id, ip="127.0.0.1", path="/bench/tiles")
        print(
            f"{'layer':<11}{'z':>3}{'tiles':>6}{'api p50':>9}{'api p95':>9}{'raw p50':>9}"
            f"{'raw p95':>9}{'ratio':>7}{'avg KiB':>9}{'+audit p95':>11}{'floor':>7}"
            f"{'+check':>7}"
            f"   goals: api p95 <= {LIMIT_P95_MS:.0f} ms and <= {LIMIT_RATIO} x raw"
        )
        for layer in layers:
            worst = most = None
            overheads: list[tuple[int, float]] = []  # (zoom, API p50 - raw p50)
            floors: list[tuple[int, float, float]] = []  # (zoom, floor / raw, +check / raw)
            for z in zooms:
                coords = sample(tile_range(box, z), args.per_zoom)
                api_ms, raw_ms, audit_ms, sizes = [], [], [], []
                floor_ms: dict[bool, list[float]] = {False: [], True: []}
                if z < tiles.MIN_ZOOM[layer]:
                    print(f"{layer:<11}{z:>3}  empty below z{tiles.MIN_ZOOM[layer]}, no SQL")
                    continue
                # A district has 12 tiles at z13: 3 rounds would make its p95 the second-slowest
                # of 36 timings, where the other zooms take the fourth of 72.
                rounds = max(args.rounds, math.ceil(args.min_samples / max(1, len(coords))))
                for zz, x, y in coords:
                    with app.app_context():
                        # As the API builds it for this caller (a viewer sees snapped tracks).
                        req = tiles.TileRequest(
                            layer, zz, x, y, week, datetime.now(UTC), precise_tracks=tracks
                        )
                        dialect = session.get_bind().dialect
                        text_, constants = tiles._compiled(
                            scope, tiles.shape_of(req), False, None, dialect
                        )
                        sql = (text_, {**constants, **tiles.tile_params(req)})
                        audited = None
                        if layer in tiles.AUDITED:
                            text_, constants = tiles._compiled(
                                scope, tiles.shape_of(req), True, None, dialect
                            )
                            audited = (text_, {**constants, **tiles.tile_params(req, reader)})
                    path = f"/api/v1/tiles/{layer}/{zz}/{x}/{y}.mvt?week={week}"
                    # Each side once untimed (the data's pages, the API's compiled statement
                    # for the layer's shape), then timed.
                    _run_raw(raw_conn, connection, sql)
                    client.get(path, headers=headers)
                    floor.sql = sql
                    floor.get("/floor")
                    for _ in range(rounds):
                        t0 = time.perf_counter()
                        _run_raw(raw_conn, connection, sql)
                        raw_ms.append((time.perf_counter() - t0) * 1000)
                        t0 = time.perf_counter()
                        response = client.get(path, headers=headers)
                        api_ms.append((time.perf_counter() - t0) * 1000)
                        # Every timed answer, not the last round's only: an error answers fast,
                        # and timed as a tile it would pull the percentiles down.
                        assert response.status_code in (200, 204), (path, response.status_code)
                        if audited is not None:
                            audit_ms.append(_run_audited(raw_conn, connection, *audited))
                        for check in (False, True):
                            t0 = time.perf_counter()
                            served = floor.get("/floor?check=1" if check else "/floor")
                            floor_ms[check].append((time.perf_counter() - t0) * 1000)
                            assert served.status_code == 200, ("floor", path, served.status_code)
                    sizes.append(len(response.data))
                a95, r95 = pct(api_ms, 95), pct(raw_ms, 95)
                ratio = a95 / r95 if r95 else float("inf")
                f95, c95 = (pct(floor_ms[check], 95) / r95 if r95 else 0.0 for check in (0, 1))
                floors.append((z, f95, c95))
                print(
                    f"{layer:<11}{z:>3}{len(coords):>6}{statistics.median(api_ms):>9.1f}"
                    f"{a95:>9.1f}{statistics.median(raw_ms):>9.1f}{r95:>9.1f}{ratio:>7.2f}"
                    f"{statistics.mean(sizes) / 1024:>9.1f}"
                    + (f"{pct(audit_ms, 95):>11.1f}" if audit_ms else f"{'-':>11}")
                    + f"{f95:>6.2f}x{c95:>6.2f}x"
                )
                overheads.append((z, statistics.median(api_ms) - statistics.median(raw_ms)))
                if worst is None or a95 > worst[1]:
                    worst = (z, a95, r95)
                if most is None or ratio > most[1]:
                    most = (z, ratio, a95, r95)
            z, a95, r95 = worst
            emit("tiles", f"{layer} API p95 (worst zoom z{z})", a95, "ms", LIMIT_P95_MS)
            emit(
                "tiles",
                f"{layer} API p95 / raw p95 (z{z})",
                a95 / r95 if r95 else 0.0,
                "ratio",
                LIMIT_RATIO,
                limit_note=f"raw ST_AsMVT p95 {r95:.1f} ms same run",
            )
            # What the request adds to the statement: about the same at every zoom, so the
            # smaller the tile, the larger the ratio (the goal's misses from z14 down).
            lows = ", ".join(f"z{zz} {ms:.1f}" for zz, ms in overheads)
            emit(
                "tiles",
                f"{layer} API p50 - raw p50, smallest tiles (z{overheads[-1][0]})",
                overheads[-1][1],
                "ms",
                None,
                limit_note=f"informational: the request around the statement; by zoom {lows}",
            )
            # The least a Flask app adds (see the module's doc): the goal's reach by zoom.
            zz, f95, c95 = max(floors, key=lambda item: item[1])
            by_zoom = ", ".join(f"z{z_} {f:.2f}/{c:.2f}" for z_, f, c in floors)
            emit(
                "tiles",
                f"{layer} bare Flask p95 / raw p95, worst zoom (z{zz})",
                f95,
                "ratio",
                None,
                limit_note=(
                    "informational: the floor of any Flask app serving the statement; by zoom,"
                    f" without/with a token check round trip of its own: {by_zoom}"
                ),
            )
            z, ratio, a95, r95 = most
            emit(
                "tiles",
                f"{layer} API p95 / raw p95, worst zoom (z{z})",
                ratio,
                "ratio",
                LIMIT_RATIO,
                limit_note=f"API {a95:.1f} ms vs raw {r95:.1f} ms same run",
            )
        if raw_conn is not None:
            raw_conn.close()
        outer.rollback()


def _floor_client(raw_conn, connection):
    """A bare Flask app serving the raw statement (`client.sql`, text and parameters): GET /floor
    runs it as _run_raw does, and with
    `?check=1` a `SELECT 1` first, the round trip of a token check."""
    from flask import Flask, Response, request

    app = Flask("floor")
    client = app.test_client()

    @app.get("/floor")
    def floor():
        conn = raw_conn or connection.connection.driver_connection
        if request.args.get("check"):
            conn.execute("SELECT 1").fetchone()
        data = conn.execute(*client.sql).fetchone()[0]
        return Response(bytes(data or b""), mimetype="application/vnd.mapbox-vector-tile")

    return client


def _apply(conn, settings: dict[str, str], *, local: bool = True) -> None:
    """`settings` on a psycopg connection: for its transaction (`local`) or its session."""
    calls = ", ".join(f"set_config(%s, %s, {'true' if local else 'false'})" for _ in settings)
    conn.execute(f"SELECT {calls}", [part for item in settings.items() for part in item])


def _run_raw(raw_conn, connection, sql: tuple[str, dict]) -> None:
    """The tile's statement without its audit: the text and parameters the API sends, on a
    connection with the API's tile settings, so psycopg prepares it from its 6th run as it does
    the API's, and PostgreSQL plans it for each tile (force_custom_plan), as the API's."""
    if raw_conn is None:  # the demo: inside the bench's transaction, same settings
        from api.services.tiles import tile_settings

        conn = connection.connection.driver_connection
        _apply(conn, tile_settings(False))
    else:
        conn = raw_conn
    conn.execute(*sql).fetchone()


def _run_audited(raw_conn, connection, sql: str, params: dict) -> float:
    """The API's very statement (the audit INSERT with it), with the API's settings, in a
    transaction (a savepoint on the demo) rolled back; its milliseconds."""
    from api.services.tiles import tile_settings

    conn = connection.connection.driver_connection if raw_conn is None else raw_conn
    with conn.transaction(force_rollback=True):
        _apply(conn, tile_settings(True))
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchone()
        return (time.perf_counter() - t0) * 1000


def _demo_week(connection, week: str) -> None:
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


if __name__ == "__main__":
    main()
