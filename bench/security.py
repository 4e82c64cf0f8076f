"""What protecting personal data costs: the audit of reads (tiles, lists) and AES-GCM per value.

Usage: DATABASE_URL=... python -m bench.security [--rounds 40]
Needs the demo district (`gridwork seed demo`). Runs inside a transaction rolled back at the end
(the audit rows it writes vanish); where the demo has no visits this week (seeded with
--no-activity, or more than a week ago) it first adds a week of visits in that transaction, as
bench.tiles does: until 2026-12-05 it timed an empty visits tile (204: nothing disclosed,
nothing audited) and counted it as the audit's cost. Every timed answer must be a 200 with a
body. Each figure is measured twice in the same run: through the API
as served (masking + audit entry + commit), and the same requests with the audit switched off.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from bench._result import BENCH_APP, emit, pct, rolled_back

LIMIT_RATIO = 1.3  # the audit may add at most 30% to a read, p95 against p95


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def result(metric: str, value: float, unit: str, limit: float, note: str) -> None:
    emit("security", metric, value, unit, limit, limit_note=note)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40, help="requests per figure and mode")
    args = parser.parse_args()

    from flask_jwt_extended import create_access_token

    from api import create_app, crypto, privacy
    from api.auth import claims_for
    from api.extensions import db
    from api.models import Grid, Household, User
    from api.services.weeks import current_week

    app = create_app(BENCH_APP)
    week = current_week()
    with rolled_back() as connection:
        if not connection.scalar(text("SELECT count(*) FROM visits WHERE week = :w"), {"w": week}):
            # A demo seeded without activity, or more than a week ago, has no visits this week:
            # the visits tile would be empty (204), disclose nothing and audit nothing. Add a
            # week of visits as bench.tiles does, in this transaction (rolled back at the end).
            from bench.tiles import _demo_week

            _demo_week(connection, week)
        with app.app_context():
            session = db.session
            admin = session.scalar(select(User).where(User.role == "community_admin"))
            if admin is None:
                raise SystemExit("no demo data: run `gridwork seed demo` first")
            grid = session.scalar(
                select(Grid).where(Grid.community_code == admin.community_code).limit(1)
            )
            lon, lat = session.execute(
                select(func.ST_X(Household.location), func.ST_Y(Household.location))
                .where(Household.grid_id == grid.id)
                .limit(1)
            ).one()
            token = create_access_token(admin, additional_claims=claims_for(admin))
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        requests = {
            "households tile z16": "/api/v1/tiles/households/{}/{}/{}.mvt?week=" + week,
            "visits tile z15": "/api/v1/tiles/visits/{}/{}/{}.mvt?week=" + week,
            "household list 100": f"/api/v1/households?grid={grid.code}&page_size=100",
        }
        zooms = {"households tile z16": 16, "visits tile z15": 15}
        # The audit off: no entry from the views, and no reader for the tile statement (which
        # then leaves out its audit INSERT).
        audit_on = privacy.record_disclosure, privacy.reader
        audit_off = (lambda *a, **k: None), (lambda: None)
        rows = []
        print(f"the audit of reads, demo district, caller: community admin, {args.rounds} rounds")
        print(f"{'request':<22}{'audited p50':>12}{'p95':>8}{'off p50':>9}{'p95':>8}{'ratio':>7}")
        for name, template in requests.items():
            url = template
            if name in zooms:
                url = template.format(*tile_of(lon, lat, zooms[name]))
            timings: dict[str, list[float]] = {"on": [], "off": []}
            client.get(url, headers=headers)  # warm
            # Interleaved, so the load of a shared machine falls on both modes alike.
            for _ in range(args.rounds):
                for mode in ("on", "off"):
                    privacy.record_disclosure, privacy.reader = (
                        audit_on if mode == "on" else audit_off
                    )
                    t0 = time.perf_counter()
                    response = client.get(url, headers=headers)
                    timings[mode].append((time.perf_counter() - t0) * 1000)
                    # 200 only: an empty tile (204) or list discloses nothing, so its audit
                    # costs nothing, and the figure would say nothing about the audit.
                    assert response.status_code == 200 and response.data, (
                        name,
                        response.status_code,
                        response.get_data(as_text=True)[:200],
                    )
            privacy.record_disclosure, privacy.reader = audit_on
            on95, off95 = pct(timings["on"], 95), pct(timings["off"], 95)
            ratio = on95 / off95 if off95 else 0.0
            rows.append((name, on95, off95, ratio))
            print(
                f"{name:<22}{statistics.median(timings['on']):>12.1f}{on95:>8.1f}"
                f"{statistics.median(timings['off']):>9.1f}{off95:>8.1f}{ratio:>7.2f}"
            )

    # AES-256-GCM per value, as the column types pay it.
    note = "腿脚不便，需要轮椅；女儿每周来一次" * 3
    n = 20000
    t0 = time.perf_counter()
    sealed = [crypto.encrypt(note) for _ in range(n)]
    enc_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for value in sealed:
        crypto.decrypt(value)
    dec_us = (time.perf_counter() - t0) / n * 1e6
    size = len(note.encode())
    print(f"AES-256-GCM per {size}-byte note: seal {enc_us:.1f} µs, open {dec_us:.1f} µs")
    print(f"machine: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")

    for name, on95, off95, _ratio in rows:
        result(
            f"{name} p95 audited",
            on95,
            "ms",
            off95 * LIMIT_RATIO,
            f"{LIMIT_RATIO}x the same request with the audit off, same run",
        )
    result("seal one note", enc_us, "us", 50.0, "goal: under 50 µs per value")
    result("open one note", dec_us, "us", 50.0, "goal: under 50 µs per value")


if __name__ == "__main__":
    main()
