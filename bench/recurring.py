"""未诉先办: what one community's tasks keep saying (`GET /api/v1/tasks/recurring`).

Usage: DATABASE_URL=... python -m bench.recurring [--rounds 15] [--tasks 4000]
Needs a seeded database (`gridwork seed demo`, or `seed city` for a busy one). Runs inside a
transaction rolled back at the end. The busiest community is read over four weeks, as the office
reads it on /reports, three ways:
- as it is seeded (titles drawn from a few dozen phrases, as real calls say them);
- with `--tasks` of its tasks (copies of its own added where it has fewer) given random titles of
  20-40 characters drawn from 300 (thousands of phrases no two places share; until 2026-12-05
  ~8,400 such titles took 5.4 s): a stress case, some eighteen times a city community's month
  (200,000 tasks in 12 weeks over 3,000 grids: ~220 in four weeks for ten grids), timed with no
  goal;
- the raw statement reading the span's titles alone, the floor of any reading (informational).
Goal (ours, not the issue's): the office's page answers within 500 ms, p95 against p95.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from bench._result import BENCH_APP, emit, pct, rolled_back

GOAL_MS = 500.0


def result(metric: str, value: float, limit: float | None, note: str) -> None:
    emit("recurring", metric, value, "ms", limit, limit_note=note)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15, help="readings per figure")
    parser.add_argument("--tasks", type=int, default=4000, help="tasks given random titles")
    args = parser.parse_args()

    from flask_jwt_extended import create_access_token

    from api import create_app
    from api.auth import claims_for
    from api.extensions import db
    from api.models import User

    app = create_app(BENCH_APP)
    with rolled_back() as connection:
        row = connection.execute(
            text(
                "SELECT g.community_code, count(*) AS n, max(t.created_at) AS latest FROM tasks t"
                " JOIN grids g ON g.id = t.grid_id GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            )
        ).first()
        if row is None:
            raise SystemExit("no tasks: run `gridwork seed demo` or `seed city` first")
        community, now = row.community_code, max(row.latest, datetime.now(UTC))
        with app.app_context():
            app.config["FIXED_NOW"] = now
            admin = db.session.scalar(
                select(User).where(User.role == "community_admin", User.community_code == community)
            )
            if admin is None:
                raise SystemExit(f"community {community} has no admin to read it as")
            token = create_access_token(admin, additional_claims=claims_for(admin))
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        url = f"/api/v1/tasks/recurring?community={community}&weeks=4"

        def api_ms() -> tuple[list[float], dict]:
            timings, body = [], None
            for _ in range(args.rounds + 1):
                started = time.perf_counter()
                response = client.get(url, headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
                body = response.get_json()
            return timings[1:], body  # the first warms the caches

        grids = connection.scalars(
            text("SELECT id FROM grids WHERE community_code = :c"), {"c": community}
        ).all()
        span = {"grids": grids, "start": now - timedelta(weeks=8), "end": now}

        def raw_ms() -> list[float]:
            timings = []
            for _ in range(args.rounds + 1):
                started = time.perf_counter()
                connection.execute(
                    text(
                        "SELECT id, title FROM tasks WHERE grid_id = ANY(:grids)"
                        " AND created_at >= :start AND created_at < :end"
                        " ORDER BY created_at DESC, id DESC"
                    ),
                    span,
                ).all()
                timings.append((time.perf_counter() - started) * 1000)
            return timings[1:]

        seeded, body = api_ms()
        raw = raw_ms()
        note = (
            f"{body['tasks']} tasks in 4 weeks, {len(body['words'])} phrases, "
            f"{len(body['places'])} places; raw titles read p95 {pct(raw, 95):.1f} ms same run"
        )
        result("community 4 weeks p95", pct(seeded, 95), GOAL_MS, note)
        result("community 4 weeks median", statistics.median(seeded), None, "informational")

        # A community of few tasks gets more: copies of its own, spread over the four weeks, so
        # that `--tasks` of them carry random titles.
        have = connection.scalar(
            text(
                "SELECT count(*) FROM tasks WHERE grid_id = ANY(:grids) AND created_at >= :start"
                " AND created_at < :end"
            ),
            span,
        )
        if have < args.tasks:
            connection.execute(
                text(
                    """
                    INSERT INTO tasks (source, type, title, urgency, grid_id, household_id,
                                       location, status, due_at, created_at, updated_at)
                    SELECT 'proactive', t.type, t.title, t.urgency, t.grid_id, t.household_id,
                           t.location, 'new', t.due_at,
                           :end - (random() * interval '28 days'), :end
                    FROM generate_series(1, :n) AS s(i)
                    CROSS JOIN LATERAL (
                      SELECT * FROM tasks WHERE grid_id = ANY(:grids) AND created_at >= :start
                      ORDER BY id OFFSET (s.i % :have) LIMIT 1) t
                    """
                ),
                {**span, "n": args.tasks - have, "have": have},
            )
        rng = random.Random(1)
        alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 300)]
        ids = connection.scalars(
            text(
                "SELECT id FROM tasks WHERE grid_id = ANY(:grids) AND created_at >= :start"
                " AND created_at < :end ORDER BY id LIMIT :n"
            ),
            {**span, "n": args.tasks},
        ).all()
        titles = ["".join(rng.choices(alphabet, k=rng.randint(20, 40))) for _ in ids]
        connection.execute(
            text(
                "UPDATE tasks t SET title = u.title FROM unnest(CAST(:ids AS integer[]),"
                " CAST(:titles AS text[])) AS u(id, title) WHERE t.id = u.id"
            ),
            {"ids": ids, "titles": titles},
        )
        varied, body = api_ms()
        result(
            "community 4 weeks, random titles p95",
            pct(varied, 95),
            None,
            f"informational, a stress case: {len(ids)} tasks given 20-40 random characters of "
            f"300; raw titles read p95 {pct(raw_ms(), 95):.1f} ms same run",
        )


if __name__ == "__main__":
    main()
