"""Racing real requests: hold a row or table from a third connection until every request waits.

Two requests that would both pass a read-then-write check are only caught racing when both are
in flight before either decides. The holder makes that certain: it takes the lock the code
under test must take (or a lock the old code would block on later), both requests start, and
only once the database shows them waiting does the holder let go.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine


def wait_for_lock_waits(engine: Engine, n: int, timeout_s: float = 20.0) -> None:
    """Return once `n` backends of this database wait on a lock (polls, bounded)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout_s
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(query)
            conn.rollback()
            if waiting >= n:
                return
            time.sleep(0.01)
    raise AssertionError(f"fewer than {n} requests ever waited on the held lock")


def race(engine: Engine, lock_sql: str, params: dict, *requests: Callable[[], Any]) -> list:
    """Run `requests` at once while another transaction holds what `lock_sql` locks; let go
    once every request waits, and return their answers in order."""
    with engine.connect() as holder:
        holder.execute(text(lock_sql), params)
        with ThreadPoolExecutor(len(requests)) as pool:
            futures = [pool.submit(r) for r in requests]
            wait_for_lock_waits(engine, len(requests))
            holder.commit()
            return [f.result(timeout=60) for f in futures]
