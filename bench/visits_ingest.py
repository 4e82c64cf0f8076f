"""Benchmark: visit batch ingest through the API with every check vs a plain INSERT of the rows.

    DATABASE_URL=postgresql://... python -m bench.visits_ingest [--batches 20] [--batch-size 500]

Both paths run in the same process against the same database: the API path posts batches to
`POST /api/v1/visits/batch` through Flask's test client (JWT, per-item validation, datum
conversion, scope incl. relief shifts, evidence with neighbours, the streamed COPY, commit,
full per-item answer); after each batch the baseline inserts the very same rows (as the API
stored them: ciphertext, EWKB, new ids) with one raw statement, `INSERT INTO visits SELECT *
FROM jsonb_populate_recordset(NULL::visits, $1)`, and a commit: nothing but PostgreSQL's own
insert (constraints, indexes, and the statement-level triggers on visits — the report's weekly
aggregates, the households' last visit — once per batch, as on the API path). An executemany
would fire those triggers once per row and flatter the API. Alternating the two keeps both
under the same load from other jobs on the machine. The bench makes its own district
(110119) and deletes everything it made at the end. Goal: API >= 0.5 x plain INSERT.

It also measures the stack's ceiling the same way: an endpoint that only the bench mounts
(`/_bench/ceiling`) does what no ingest can skip (the token check, parsing, one row per item,
its household's grid, the same streamed `COPY` the API stores its rows with, commit, an answer
of ids) and nothing else: no item checks, placing, scope, neighbours, grading, sealed notes or
stored visits in the answer. Its ratio to the raw INSERT of the rows
it stored (lighter rows: no evidence, reasons or notes) is how much room Flask, auth, JSON and
the statement leave for the product's per-item work.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
from flask import Response, request
from sqlalchemy import delete, select, text

from api import create_app, heap
from api.auth import current_user
from api.cli import alembic_config
from api.extensions import db
from api.models import (
    Community,
    District,
    Grid,
    GridVersion,
    Household,
    Street,
    User,
    Visit,
    user_grids,
)
from api.services.weeks import week_of
from api.settings import load_config
from bench._result import BENCH_APP, reporter
from tests.factories import bearer, box, make_grid, make_household, make_user

DISTRICT = "110119"
COMMUNITY = DISTRICT + "001001"
GRID = COMMUNITY + "001"
GOAL = 0.5
LOCAL = ZoneInfo("Asia/Shanghai")


def setup(app, households: int):
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.300, 39.850, 116.310, 39.858))
        worker = make_user(session, f"bench_{uuid.uuid4().hex[:8]}", "worker", grids=[GRID])
        rng = random.Random(1)
        homes = [
            make_household(
                session,
                116.300 + rng.random() * 0.01,
                39.850 + rng.random() * 0.008,
                tags=["living_alone"] if i % 7 == 0 else [],
            )
            for i in range(households)
        ]
        return worker.id, bearer(worker), [(h.id, *_lonlat(h)) for h in homes]


def _lonlat(h):
    from api.services.geometry import point_lonlat

    return point_lonlat(h.location)


# The report's aggregates of the bench's visits: all in its own grid, by its own worker. The
# product never deletes visits, so no trigger takes them out with the visits.
AGGREGATES = [
    ("report_grid_weeks", "grid_id"),
    ("report_household_weeks", "grid_id"),
    ("report_grid_week_tags", "grid_id"),
    ("report_worker_households", "worker_id"),
    ("report_worker_weeks", "worker_id"),
]
# What a run churns: vacuumed at the end (see teardown).
CHURNED = ["visits", "households", "household_history", "household_last_visits"] + [
    table for table, _ in AGGREGATES
]


def teardown(worker_id: int, household_ids: list[int]) -> None:
    with db.engine.begin() as conn:
        grid_id = conn.scalar(select(Grid.id).where(Grid.code == GRID))
        keys = {"grid_id": grid_id, "worker_id": worker_id}
        for table, key in AGGREGATES:
            conn.execute(text(f"DELETE FROM {table} WHERE {key} = :{key}"), keys)
        conn.execute(delete(Visit).where(Visit.worker_id == worker_id))
        conn.execute(delete(Household).where(Household.id.in_(household_ids)))
        conn.execute(delete(user_grids).where(user_grids.c.user_id == worker_id))
        conn.execute(delete(User).where(User.id == worker_id))
        gid = select(Grid.id).where(Grid.code == GRID).scalar_subquery()
        conn.execute(delete(GridVersion).where(GridVersion.grid_id == gid))
        conn.execute(delete(Grid).where(Grid.code == GRID))
        conn.execute(delete(Community).where(Community.code == COMMUNITY))
        conn.execute(delete(Street).where(Street.code == COMMUNITY[:9]))
        conn.execute(delete(District).where(District.code == DISTRICT))
    # What the run churned, vacuumed: a server with autovacuum off (as this machine's is) would
    # otherwise carry ~20,000 dead visits a run into the next, and each run would be slower.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {', '.join(CHURNED)}"))


def make_batches(homes, batches: int, size: int, days_ago: int = 2) -> list[list[dict]]:
    """A worker's week: visits a minute apart, at the door with GPS noise, GCJ-02 half the time."""
    from geo.datum import wgs84_to_gcj02

    rng = random.Random(2)
    t = datetime.now(UTC) - timedelta(days=days_ago)
    out = []
    for _ in range(batches):
        items = []
        for _ in range(size):
            hid, lon, lat = rng.choice(homes)
            lon += rng.gauss(0, 0.0001)
            lat += rng.gauss(0, 0.0001)
            datum = "wgs84"
            if rng.random() < 0.5:
                lon, lat = wgs84_to_gcj02(lon, lat)
                datum = "gcj02"
            t += timedelta(seconds=20)
            items.append(
                {
                    "id": str(uuid.uuid4()),
                    "household_id": hid,
                    "visited_at": t.astimezone(LOCAL).isoformat(),
                    "location": {
                        "lon": lon,
                        "lat": lat,
                        "accuracy_m": rng.choice([5.0, 12.0, 30.0, 150.0]),
                        "datum": datum,
                        "provider": "gps",
                        "mock": False,
                    },
                    "outcome": rng.choice(["met", "met", "met", "nobody_home"]),
                    "notes": "bench",
                    "observations": {},
                }
            )
        out.append(items)
    return out


result = reporter("visits_ingest")


COPY_ROWS = text(
    "SELECT jsonb_agg(to_jsonb(v) || jsonb_build_object("
    "'id', gen_random_uuid(), 'location', v.location::text))::text "
    "FROM visits v WHERE v.id = ANY(CAST(:ids AS uuid[]))"
)
RAW_INSERT = text(
    "INSERT INTO visits SELECT * FROM jsonb_populate_recordset(NULL::visits, CAST(:rows AS jsonb))"
)


GRIDS_OF = text("SELECT id, grid_id FROM households WHERE id = ANY(CAST(:ids AS integer[]))")


def mount_ceiling(app) -> str:
    """The ceiling endpoint, on the bench's own app only (see the module's docstring)."""
    from shapely import points

    from api.copy_rows import copy_rows
    from api.models import Visit

    @app.post("/_bench/ceiling")
    def ceiling():
        user = current_user()
        items = orjson.loads(request.get_data())["visits"]
        session = db.session
        homes = {item["household_id"] for item in items}
        grid_of = dict(session.execute(GRIDS_OF, {"ids": list(homes)}).all())
        shapes = points([[i["location"]["lon"], i["location"]["lat"]] for i in items])
        rows = []
        for item, shape in zip(items, shapes, strict=True):
            loc = item["location"]
            at = datetime.fromisoformat(item["visited_at"])
            rows.append(
                {
                    "id": uuid.UUID(item["id"]),
                    "worker_id": user.id,
                    "household_id": item["household_id"],
                    "grid_id": grid_of[item["household_id"]],
                    "visited_at": at,
                    "utc_offset_minutes": int(at.utcoffset().total_seconds() // 60),
                    "week": week_of(at),
                    "location": shape,
                    "datum": loc["datum"],
                    "raw_lon": loc["lon"],
                    "raw_lat": loc["lat"],
                    "accuracy_m": loc.get("accuracy_m"),
                    "provider": loc.get("provider"),
                    "mock": loc.get("mock", False),
                    "outcome": item["outcome"],
                    "notes": "",  # sealing notes is per-item work: none stored here
                    "grade": "ok",
                }
            )
        rows.sort(key=lambda r: r["id"].int)  # the API's lock order
        copy_rows(session, Visit.__table__, rows)
        answer = [{"id": str(item["id"]), "status": "created"} for item in items]
        session.commit()
        return Response(orjson.dumps({"results": answer}), mimetype="application/json")

    return "/_bench/ceiling"


def alternate(client, path: str, headers, batches) -> tuple[float, float, int]:
    """Post each batch to `path`, then insert the very rows it stored with the raw statement
    (new ids, read back untimed): seconds on each side, and the rows stored."""
    api_s = plain_s = 0.0
    stored_n = 0
    for items in batches:
        # The body as a phone sends it: bytes, encoded before the clock starts (the raw
        # path's document is likewise read back untimed).
        body = json.dumps({"visits": items})
        start = time.perf_counter()
        r = client.post(path, data=body, content_type="application/json", headers=headers)
        api_s += time.perf_counter() - start
        assert r.status_code == 200, r.json
        assert all(x["status"] == "created" for x in r.json["results"]), r.json["results"][:3]
        assert len(r.json["results"]) == len(items)
        sent = [item["id"] for item in items]
        with db.engine.connect() as conn:
            # The stored rows as PostgreSQL holds them (ciphertext, EWKB), under new ids.
            document = conn.execute(COPY_ROWS, {"ids": sent}).scalar_one()
        start = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(RAW_INSERT, {"rows": document})
        plain_s += time.perf_counter() - start
        stored_n += len(sent)
    return api_s, plain_s, stored_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--households", type=int, default=300)
    args = parser.parse_args()

    from alembic import command

    url = load_config()["DATABASE_URL"]
    command.upgrade(alembic_config(url), "head")
    app = create_app(BENCH_APP)
    ceiling_path = mount_ceiling(app)  # before the app's first request, as Flask requires
    worker_id, headers, homes = setup(app, args.households)
    try:
        batches = make_batches(homes, args.batches, args.batch_size)
        client = app.test_client()
        n = args.batches * args.batch_size
        # Warm-up, untimed: one batch of the measured size through both paths (imports,
        # caches, the connection pool, prepared statements, the allocator's first large
        # batch), a week before the measured ones so that none of them neighbours it.
        warm = make_batches(homes, 1, args.batch_size, days_ago=9)
        alternate(client, "/api/v1/visits/batch", headers, warm)
        heap.settle()  # as `gridwork serve` does in each worker once the app is loaded

        # Each API batch is followed by the baseline for the very rows it stored: one raw
        # INSERT statement, one commit per batch. Alternating keeps both paths under the same
        # load from whatever else runs on the machine.
        api_s, plain_s, stored_n = alternate(client, "/api/v1/visits/batch", headers, batches)
        # The stack's ceiling, on batches of its own (fresh ids), the same way.
        alternate(client, ceiling_path, headers, make_batches(homes, 1, args.batch_size, 16))
        top_s, top_plain_s, top_n = alternate(
            client, ceiling_path, headers, make_batches(homes, args.batches, args.batch_size)
        )
        api_rate, plain_rate = n / api_s, stored_n / plain_s
        ratio = api_rate / plain_rate
        verdict = "meets" if ratio >= GOAL else "MISSES"
        print(f"visits: {n} in {args.batches} batches of {args.batch_size}")
        print(f"{'path':<52} {'visits/s':>9} {'s':>7}")
        print(f"{'POST /api/v1/visits/batch, every check':<52} {api_rate:9.0f} {api_s:7.2f}")
        label = "raw INSERT of the same rows, same commits"
        print(f"{label:<52} {plain_rate:9.0f} {plain_s:7.2f}")
        print(f"ratio API / plain: {ratio:.2f} (goal >= {GOAL}: {verdict})")
        ceiling = (n / top_s) / (top_n / top_plain_s)
        print(
            f"the stack's ceiling (token, parse, the same COPY, nothing else): "
            f"{n / top_s:.0f} vs raw {top_n / top_plain_s:.0f} visits/s, ratio {ceiling:.2f}"
        )
        note = "raw INSERT of the same rows, same run"
        result(
            "api_visits_per_s",
            api_rate,
            "visits/s",
            GOAL * plain_rate,
            f"{GOAL} x {note}",
            api_rate >= GOAL * plain_rate,
        )
        result("plain_insert_visits_per_s", plain_rate, "visits/s", None, "the baseline", True)
        result("api_over_plain", ratio, "ratio", GOAL, f"goal, vs {note}", ratio >= GOAL)
        result(
            "ceiling_over_plain",
            ceiling,
            "ratio",
            None,
            "the stack alone: token check, parse, the same COPY, no per-item work; "
            "vs raw INSERT of its rows, same run",
            True,
        )
    finally:
        teardown(worker_id, [h[0] for h in homes])


if __name__ == "__main__":
    main()
