"""The audit log's records view (`GET /audit?view=records`) on a long log, API against raw SQL.

Usage: DATABASE_URL=... python -m bench.audit_records [--entries 500000] [--rounds 30]

Needs a seeded database with communities, households, visits and tasks (`gridwork seed city`,
a small one will do: `--grids 400 --households 80000 --weeks 4 --tasks 20000`). Runs inside a
transaction rolled back at the end: it first writes `--entries` audit entries over the last
180 days, in time order as the log grows, each by one of the city's workers, leaders or admins
about records of their own community (household, visit and task reads of 1-20 records, one in
a hundred a tile's 500), and one in a hundred more by the district's viewer about 50 households
anywhere, then times, for the first community's admin and the district viewer:

- `API`: the records view's first page (50 entries) through the app, as the page asks it, and
  the next page (`before=` the last entry read);
- `raw`: the SQL statement that finds the same rows (checked to be the same), run alone on the
  same connection: the floor of any implementation of the page;
- `old`: the statements the view ran before migration 0056 (the whole log matched as a set,
  counted for the total, sorted), run raw, a few rounds (seconds each).

Goal: the records view's pages under 200 ms p95 however long the log (the first took 5-7 s on
505,000 entries before for a community admin, 13-30 s for the district viewer). The raw
figure beside it is informational: the request adds the token check, the trimming of the
entries to the caller's records (`_named_in_scope`) and the JSON of up to 50 x 500 ids.
On a database that already holds a log, the figures are for that log and the bench's entries.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.dialects import postgresql

from bench._result import BENCH_APP, emit, pct, rolled_back

GOAL_MS = 200.0
PAGE = 50

SEED = """
CREATE TEMP TABLE _bench_pool ON COMMIT DROP AS
SELECT g.community_code AS c,
       (SELECT array_agg(h.id) FROM households h JOIN grids hg ON hg.id = h.grid_id
        WHERE hg.community_code = g.community_code) AS households,
       (SELECT array_agg(t.id) FROM tasks t JOIN grids tg ON tg.id = t.grid_id
        WHERE tg.community_code = g.community_code) AS tasks,
       (SELECT array_agg(v.id) FROM (SELECT v.id FROM visits v JOIN grids vg ON vg.id = v.grid_id
        WHERE vg.community_code = g.community_code LIMIT 5000) v) AS visits
FROM (SELECT DISTINCT community_code FROM grids) g;;
CREATE TEMP TABLE _bench_users ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY u.id) AS n, u.id, u.community_code AS c
FROM users u JOIN _bench_pool p ON p.c = u.community_code
WHERE u.role IN ('worker', 'grid_leader', 'community_admin')
  AND p.households IS NOT NULL AND p.tasks IS NOT NULL AND p.visits IS NOT NULL;;
INSERT INTO audit_log (at, user_id, action, resource, resource_ids, resource_uuids, fields, path)
SELECT now() - interval '180 days' + s.n * interval '180 days' / :entries, u.id, 'read', r.res,
       CASE r.res
         WHEN 'household' THEN ARRAY(SELECT p.households[1 + floor(random()
              * cardinality(p.households))::int]::bigint FROM generate_series(1, r.k) WHERE s.n > 0)
         WHEN 'task' THEN ARRAY(SELECT p.tasks[1 + floor(random()
              * cardinality(p.tasks))::int]::bigint FROM generate_series(1, r.k) WHERE s.n > 0)
         ELSE '{}' END,
       CASE r.res WHEN 'visit' THEN ARRAY(SELECT p.visits[1 + floor(random()
              * cardinality(p.visits))::int] FROM generate_series(1, r.k) WHERE s.n > 0)
         ELSE '{}' END,
       '{address,members}', '/bench'
FROM generate_series(1, :entries) s(n)
JOIN _bench_users u ON u.n = 1 + (s.n::bigint * 7919) % (SELECT count(*) FROM _bench_users)
JOIN _bench_pool p ON p.c = u.c
CROSS JOIN LATERAL (
  SELECT CASE WHEN x < 0.70 THEN 'household' WHEN x < 0.85 THEN 'visit' ELSE 'task' END AS res,
         CASE WHEN random() < 0.01 THEN 500 ELSE 1 + floor(random() * 20)::int END AS k
  FROM (SELECT random() + 0 * s.n AS x) q) r
ORDER BY s.n;;
INSERT INTO audit_log (at, user_id, action, resource, resource_ids, fields, path)
SELECT now() - interval '180 days' + s.n * interval '180 days' / (:entries / 100),
       (SELECT id FROM users WHERE role = 'district_viewer' ORDER BY id LIMIT 1), 'read',
       'household', ARRAY(SELECT a.ids[1 + floor(random() * cardinality(a.ids))::int]::bigint
                          FROM generate_series(1, 50) WHERE s.n > 0), '{address}', '/bench'
FROM generate_series(1, :entries / 100) s(n)
CROSS JOIN (SELECT array_agg(id) AS ids FROM households) a
ORDER BY s.n
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=30, help="requests per figure")
    parser.add_argument("--old-rounds", type=int, default=3, help="rounds of the old statements")
    args = parser.parse_args()

    from flask_jwt_extended import create_access_token

    from api import create_app
    from api.auth import claims_for
    from api.extensions import db
    from api.models import AuditEntry, User
    from api.scope import Scope
    from api.services import audit

    app = create_app(BENCH_APP)
    with rolled_back() as connection:
        t0 = time.perf_counter()
        for n, statement in enumerate(SEED.split(";;")):  # one an execute (bound parameters)
            if n == 2 and not connection.scalar(text("SELECT count(*) FROM _bench_users")):
                raise SystemExit("no community with households, visits and tasks: seed a city")
            connection.execute(text(statement), {"entries": args.entries})
        connection.exec_driver_sql("ANALYZE audit_log")
        # As the view runs its walk (`set_local(jit="off")`), for every statement timed here:
        # the raw ones and the old design's too (JIT compiled them for 0.3-1.5 s more).
        connection.exec_driver_sql("SET LOCAL jit = off")
        log = connection.scalar(text("SELECT count(*) FROM audit_log"))
        print(f"audit log: {log:,} entries ({time.perf_counter() - t0:.0f} s to write)")
        callers = {}
        with app.app_context():
            session = db.session
            for role in ("community_admin", "district_viewer"):
                user = session.scalar(
                    select(User).where(User.role == role).order_by(User.id).limit(1)
                )
                if user is None:
                    raise SystemExit("no city: run `gridwork seed city` first")
                token = create_access_token(user, additional_claims=claims_for(user))
                callers[role] = (Scope.for_user(session, user), token)
        client = app.test_client()
        figures = []
        print(f"{'caller':<17}{'request':<11}{'API p50':>9}{'p95':>8}{'raw p50':>9}{'p95':>8}")
        for role, (scope, token) in callers.items():
            headers = {"Authorization": f"Bearer {token}"}
            url = f"/api/v1/audit?view=records&page_size={PAGE}"
            first = client.get(url, headers=headers)  # warm
            assert first.status_code == 200 and len(first.json) == PAGE, first.json
            cursor = first.json[-1]["id"]
            for name, query in (("page 1", url), ("page 2", f"{url}&before={cursor}")):
                api_ms, raw_ms = [], []
                ids = [e["id"] for e in client.get(query, headers=headers).json]
                with app.app_context():
                    raw = _raw_statement(db.session, audit, AuditEntry, scope, query, cursor)
                for _ in range(args.rounds):  # interleaved: a shared machine's load on both
                    t0 = time.perf_counter()
                    response = client.get(query, headers=headers)
                    api_ms.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, response.json
                    t0 = time.perf_counter()
                    got = [row[0] for row in connection.exec_driver_sql(raw)]
                    raw_ms.append((time.perf_counter() - t0) * 1000)
                    assert got[:PAGE] == ids, "the raw statement finds other rows"
                figures.append((role, name, api_ms, raw_ms))
                print(
                    f"{role:<17}{name:<11}{statistics.median(api_ms):>9.1f}{pct(api_ms, 95):>8.1f}"
                    f"{statistics.median(raw_ms):>9.1f}{pct(raw_ms, 95):>8.1f}"
                )
        old = {}
        for role, (scope, _token) in callers.items():
            with app.app_context():
                count_sql, rows_sql = _old_statements(audit, AuditEntry, scope)
            times = []
            for _ in range(args.old_rounds):
                t0 = time.perf_counter()
                connection.exec_driver_sql(count_sql).scalar()
                connection.exec_driver_sql(rows_sql).all()
                times.append((time.perf_counter() - t0) * 1000)
            old[role] = times
            print(
                f"{role:<17}old design (count + match the log + sort), raw: "
                f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms"
            )

    for role, name, api_ms, raw_ms in figures:
        raw95 = pct(raw_ms, 95)
        emit(
            "audit_records",
            f"records view {name} p95, {role}",
            pct(api_ms, 95),
            "ms",
            GOAL_MS,
            limit_note=f"goal; raw SQL of the same rows p95 {raw95:.1f} ms same run, "
            f"a log of {log:,} entries",
        )
    for role, times in old.items():
        emit(
            "audit_records",
            f"records view page 1 before 0056 (raw count + rows), {role}",
            statistics.median(times),
            "ms",
            None,
            limit_note=f"informational: median of {len(times)}, same log, same run",
        )


def _raw_statement(session, audit, AuditEntry, scope, query: str, cursor: int) -> str:
    """The statement that finds the page's rows (and one more) as the view does, literal."""
    conditions = []
    if "before=" in query:
        at = session.scalar(select(AuditEntry.at).where(AuditEntry.id == cursor))
        conditions.append(tuple_(AuditEntry.at, AuditEntry.id) < tuple_(at, cursor))
    edge = session.execute(
        select(AuditEntry.at, AuditEntry.id)
        .where(*conditions)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset(audit.RECORDS_WALK - 1)
        .limit(1)
    ).first()
    if edge is not None:
        conditions.append(tuple_(AuditEntry.at, AuditEntry.id) >= tuple_(*edge))
    stmt = (
        select(AuditEntry.id)
        .where(audit._names_records_in(scope), *conditions)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(PAGE + 1)
    )
    return _literal(stmt)


def _old_statements(audit, AuditEntry, scope) -> tuple[str, str]:
    """The count and the page the records view ran before migration 0056, literal."""
    stmt = select(AuditEntry).where(audit._about_records_in(scope, []))
    count = select(func.count()).select_from(stmt.subquery())
    rows = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(PAGE)
    return _literal(count), _literal(rows)


def _literal(stmt) -> str:
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


if __name__ == "__main__":
    main()
