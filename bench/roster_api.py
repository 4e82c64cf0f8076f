"""Bench roster generation of a 40-worker, 14-grid community through the API beside the solver.

Run from the repository root: `python -m bench.roster_api` (uses DATABASE_URL, writes nothing).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import create_engine

from api import create_app
from api.extensions import db
from api.models import Community
from api.services import rosters
from api.services.roster_solver import solve_week
from api.settings import load_config
from bench._result import BENCH_APP, emit, rolled_back
from tests.factories import make_roster_community

WEEKS = ("2026-W45", "2026-W46", "2026-W47", "2026-W48")
# The app's clock before the first week: a week's days before today are not rostered, and the
# bench times whole weeks.
BEFORE_THE_WEEKS = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
LIMIT_S = 10.0  # one week's generation, request to response
OVERHEAD_LIMIT_S = 1.0  # database and HTTP work around the solver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=40)
    parser.add_argument("--grids", type=int, default=14)
    args = parser.parse_args()

    url = load_config()["DATABASE_URL"]
    app = create_app(
        {
            **BENCH_APP,
            "DATABASE_URL": url,
            "PASSWORD_HASHING": "fast",
            "FIXED_NOW": BEFORE_THE_WEEKS,
        }
    )
    engine = create_engine(url)
    # Everything the bench writes is rolled back.
    with rolled_back(engine), app.app_context(), db.new_session() as session:
        c = make_roster_community(session, app, args.workers, args.grids, code="110105001099")
        session.commit()
        client = app.test_client()
        print(f"community {c.code}: {args.workers} workers, {args.grids} grids")
        api_times, solver_times = [], []
        for week in WEEKS:
            inp = rosters.roster_input(session, session.get(Community, c.code), week)
            started = time.perf_counter()
            result = solve_week(inp, short_staffed=True)  # as generation calls it
            solver_s = time.perf_counter() - started
            started = time.perf_counter()
            response = client.post(
                f"/api/v1/communities/{c.code}/rosters",
                json={"week": week},
                headers=c.auth(c.leader),
            )
            api_s = time.perf_counter() - started
            assert response.status_code == 201, response.get_json()
            view = response.get_json()
            client.post(f"/api/v1/rosters/{view['id']}/publish", headers=c.auth(c.leader))
            shifts = sum(len(d["A"]) + len(d["B"]) for d in view["days"])
            api_times.append(api_s)
            solver_times.append(solver_s)
            print(
                f"{week}: API {api_s:.3f} s (limit {LIMIT_S:g} s), pure solver"
                f" {solver_s:.3f} s ({result.status}), overhead {api_s - solver_s:+.3f} s"
                f" (limit {OVERHEAD_LIMIT_S:g} s), {shifts} shifts,"
                f" 4-week A spread {result.stats['a_spread_4w']}"
            )
        print(
            f"median: API {statistics.median(api_times):.3f} s, solver"
            f" {statistics.median(solver_times):.3f} s, worst API {max(api_times):.3f} s"
            f" (limit {LIMIT_S:g} s)"
        )
        emit("roster_api", "worst week generation via API", max(api_times), "s", LIMIT_S)
        overhead = max(a - s for a, s in zip(api_times, solver_times, strict=True))
        emit(
            "roster_api",
            "worst overhead around the solver",
            overhead,
            "s",
            OVERHEAD_LIMIT_S,
            limit_note="API minus pure solver, same input, same run",
        )
    engine.dispose()


if __name__ == "__main__":
    main()
