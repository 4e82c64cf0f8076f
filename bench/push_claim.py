"""The push worker's claim on a backlog: its time, and whether an urgent push is claimed first.

A fan-out of `--backlog` non-urgent pushes is queued, then `--urgent` urgent ones (an
escalation, a danger-to-life task) behind it. The claim is run (rolled back each time) and
timed, its statement shown with EXPLAIN ANALYZE, and the urgent pushes found or not in the
first batch claimed.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gw_tasks .venv/bin/python bench/push_claim.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.services.delivery import PushWorker  # noqa: E402
from api.services.notifications import notify  # noqa: E402
from bench._push_users import fresh_database, make_recipients  # noqa: E402
from bench._result import emit, pct  # noqa: E402
from push import LogChannel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--urgent", type=int, default=5)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database", default="gw_push_claim_bench")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/gridwork")
    url = fresh_database(base, args.database)
    engine = create_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)

    def scope(commit: bool):
        class _Ctx:
            def __enter__(self_):
                self_.session = factory()
                self_.session.begin()
                return self_.session

            def __exit__(self_, exc_type, *rest):
                (self_.session.commit if commit and not exc_type else self_.session.rollback)()
                self_.session.close()

        return _Ctx()

    with scope(True) as session:
        user_ids = make_recipients(session, args.users)
        queued = session.scalar(text("SELECT clock_timestamp()")) - timedelta(minutes=5)
    for n in range(args.backlog // args.users):
        with scope(True) as session:
            notify(session, user_ids, "task_updated", f"通知 {n}", "bench", now=queued)
    with scope(True) as session:
        urgent = notify(
            session,
            user_ids[: args.urgent],
            "task_escalated",
            "升级",
            urgent=True,
            now=queued + timedelta(minutes=1),
        )
        urgent_ids = {note.id for note in urgent}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE deliveries"))
        conn.execute(text("VACUUM ANALYZE notifications"))
        pending = conn.scalar(text("SELECT count(*) FROM deliveries WHERE state = 'pending'"))

    statements: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):
        if "WITH due AS" in statement:
            statements.append((statement, parameters))

    worker = PushWorker(lambda: scope(False), LogChannel(), batch_size=args.batch)
    now = queued + timedelta(minutes=4)
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        _, claimed = worker.claim(now)
        timings.append((time.perf_counter() - started) * 1000)
    first_urgent = sum(1 for row in claimed if row.notification_id in urgent_ids)
    statement, parameters = statements[-1]
    event.remove(engine, "before_cursor_execute", capture)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        raw.rollback()
    finally:
        raw.close()
    engine.dispose()
    print(plan)
    print(
        f"backlog: {pending} pending deliveries; claim of {len(claimed)}: median "
        f"{statistics.median(timings):.1f} ms, p95 {pct(timings, 95):.1f} ms over {args.runs} "
        f"runs; urgent claimed in the first batch: {first_urgent} of {args.urgent}"
    )
    emit("push_claim", "claim median", statistics.median(timings), "ms", 200.0)
    emit(
        "push_claim",
        "urgent in the first batch",
        first_urgent,
        "count",
        args.urgent,
        higher_is_better=True,
    )


if __name__ == "__main__":
    main()
