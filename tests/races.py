"""Racing real requests: hold a row or table from a third connection until every request waits.

Two requests that would both pass a read-then-write check are only caught racing when both are
in flight before either decides. The holder makes that certain: it takes the lock the code
under test must take (or a lock the old code would block on later), both requests start, and
only once the database shows them waiting does the holder let go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
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


@contextmanager
def between_insert_and_read_back(
    engine: Engine, table: str, meanwhile: Callable[[], Any]
) -> Iterator[list]:
    """Run `meanwhile` (in its own thread, on its own connection) once, when an upload has
    tried to insert its photo into `table` (INSERT ... ON CONFLICT DO NOTHING) and is about to
    read the photo back: the window between the two statements, held open by a hook on the
    engine's calls to the database driver rather than left to the scheduler. Yields the list
    that holds what `meanwhile` returned once it ran."""
    returned: list = []
    inserted_on: list = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        dbapi_connection = conn.connection.dbapi_connection
        if statement.startswith(f"INSERT INTO {table} ") and "ON CONFLICT" in statement:
            inserted_on.append(dbapi_connection)
        elif (
            inserted_on
            and not returned
            and inserted_on[-1] is dbapi_connection
            and statement.startswith("SELECT")
            and f"FROM {table}" in statement
        ):
            with ThreadPoolExecutor(1) as pool:
                returned.append(pool.submit(meanwhile).result(timeout=60))

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield returned
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
