"""Machine-readable benchmark figures: one `RESULT {json}` line per figure, read by run_all."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def pct(values, p: float) -> float:
    """The p-th percentile of `values` by nearest rank, no interpolation: the least value with
    at least p % of the values at or below it (p95 of 72 timings: the fourth-slowest)."""
    values = sorted(values)
    # p * n / 100, not p / 100 * n: exact when p % of n is a whole number (95 * 20 / 100 is 19.0,
    # 0.95 * 20 may not be), so the ceiling does not step one rank too high.
    return values[max(0, math.ceil(p * len(values) / 100) - 1)]


def emit(
    bench: str,
    metric: str,
    value: float,
    unit: str,
    limit: float | None,
    *,
    higher_is_better: bool = False,
    limit_note: str = "",
    ok: bool | None = None,
) -> dict:
    """Print the figure as `RESULT {...}`; `ok` is judged against `limit` unless given."""
    if ok is None:
        ok = limit is None or (value >= limit if higher_is_better else value <= limit)
    line = {
        "bench": bench,
        "metric": metric,
        "value": round(float(value), 4),
        "unit": unit,
        "limit": None if limit is None else round(float(limit), 4),
        "limit_note": limit_note,
        "ok": bool(ok),
    }
    print("RESULT " + json.dumps(line, ensure_ascii=False), flush=True)
    return line


def reporter(bench: str):
    """`emit` bound to one bench: `result(metric, value, unit, limit, note, ok)`."""

    def result(metric: str, value: float, unit: str, limit, note: str, ok: bool) -> dict:
        return emit(bench, metric, value, unit, limit, limit_note=note, ok=ok)

    return result


# The app a bench builds in its own process: as the API runs, but its statements unbounded
# (STATEMENT_TIMEOUT_S 0), as the console's are: a bench's setup and baselines (a raw COPY of
# 900,000 rows, their deletion) may outlast the 30 s a request's statement is allowed.
BENCH_APP = {"LOG_LEVEL": "WARNING", "GRIDWORK_ENV": "development", "STATEMENT_TIMEOUT_S": 0}


@contextmanager
def rolled_back(engine=None) -> Iterator[Connection]:
    """A connection in one transaction, the app's sessions bound to it (`db.bind`), rolled
    back at the end: whatever the bench writes (its seed, audit rows, sign-ins) is gone after
    it, and the database is as it found it. `engine`: the app's (`db.engine`) unless given."""
    from api.extensions import db

    with (engine or db.engine).connect() as connection:
        outer = connection.begin()
        db.bind(connection)
        try:
            yield connection
        finally:
            outer.rollback()
