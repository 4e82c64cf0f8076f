"""Push fan-out: 10,000 notifications committed → delivered to the fake FCM through the worker.

Prints the end-to-end throughput and the count lost (must be 0) beside the fake server's raw
accept rate measured in the same run (push/'s FcmChannel sending the same volume directly).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gw_tasks .venv/bin/python bench/push_fanout.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from bench._result import emit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.services.delivery import PushWorker  # noqa: E402
from api.services.notifications import notify  # noqa: E402
from bench._push_users import fresh_database, make_recipients  # noqa: E402
from push import Message, Router  # noqa: E402
from push.fcm import FcmChannel  # noqa: E402
from tests.fakes.fcm import FakeFcm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    url = fresh_database(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/gridwork"), "gw_push_bench"
    )
    engine = create_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)

    def scope():
        session = factory()
        session.begin()

        class _Ctx:
            def __enter__(self_):
                return session

            def __exit__(self_, exc_type, *rest):
                (session.rollback if exc_type else session.commit)()
                session.close()

        return _Ctx()

    with FakeFcm() as fake, tempfile.TemporaryDirectory() as tmp:
        account = str(fake.service_account(Path(tmp) / "sa.json"))
        # 1. The fake's raw accept rate: push/ sends the same volume directly.
        raw = FcmChannel(account, url=fake.url)
        messages = [
            Message(f"raw-{i}", f"raw-token-{i % args.users}", "android", "t", "b")
            for i in range(args.notifications)
        ]
        started = time.perf_counter()
        for i in range(0, len(messages), args.batch):
            raw.send(messages[i : i + args.batch])
        raw_seconds = time.perf_counter() - started
        raw.close()
        raw_accepted = len(fake.messages)

        # 2. End to end: notifications committed with their deliveries, then the worker.
        with scope() as session:
            user_ids = make_recipients(session, args.users)
        per_user = args.notifications // args.users
        started = time.perf_counter()
        with scope() as session:
            for n in range(per_user):
                notify(session, user_ids, "task_updated", f"通知 {n}", "bench")
        committed_seconds = time.perf_counter() - started
        channel = FcmChannel(account, url=fake.url)
        worker = PushWorker(scope, Router({"android": channel}), batch_size=args.batch)
        before = len(fake.messages)
        started = time.perf_counter()
        rounds = 0
        while worker.run_once().claimed:  # on the database's clock, as `gridwork push-worker`
            rounds += 1
        e2e_seconds = time.perf_counter() - started
        channel.close()
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY 1"))
            by_state = {state: count for state, count in rows}
            expected = conn.scalar(text("SELECT count(*) FROM notifications"))
        received = {m["data"]["message_id"] for m in fake.messages[before:]}
        lost = expected - len(received)
    engine.dispose()
    e2e_rate = len(received) / e2e_seconds
    print(
        f"fake FCM raw accept rate (FcmChannel direct): {raw_accepted} in {raw_seconds:.1f} s "
        f"= {raw_accepted / raw_seconds:.0f} msg/s"
    )
    print(f"commit {expected} notifications + deliveries: {committed_seconds:.1f} s")
    print(
        f"end to end through the worker: {len(received)} in {e2e_seconds:.1f} s "
        f"= {e2e_rate:.0f} msg/s ({e2e_rate / (raw_accepted / raw_seconds):.0%} of raw), "
        f"{rounds} rounds of {args.batch}"
    )
    print(f"deliveries by state: {by_state}; lost: {lost} (must be 0)")
    raw_rate = raw_accepted / raw_seconds
    emit(
        "push_fanout",
        "end-to-end rate",
        e2e_rate,
        "msg/s",
        0.5 * raw_rate,
        higher_is_better=True,
        limit_note="half the raw FCM accept rate, same run",
    )
    emit("push_fanout", "raw FCM accept rate", raw_rate, "msg/s", None, limit_note="baseline")
    emit("push_fanout", "notifications lost", lost, "count", 0)
    if lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
