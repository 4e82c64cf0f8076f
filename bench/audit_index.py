"""A map tile's audit INSERT, and the record index's pending list (migration 0032).

Usage: DATABASE_URL=... python -m bench.audit_index [--entries 400] [--ids 3000] [--tick 0.5]

A tile of the households or tasks layer writes one audit entry naming every record it draws (up
to ~3,000 ids). `ix_audit_log_resource_ids` (GIN) takes them into a pending list that the INSERT
passing `gin_pending_list_limit` must merge into the index. Three copies of audit_log's shape,
each written `--entries` times with an entry of `--ids` ids, as the tile statement writes it
(one INSERT … SELECT, autocommit, asynchronous commit), interleaved:

- `no index`: the floor, what the INSERT costs without the record index;
- `before 0032`: the index with PostgreSQL's default 4 MB pending list, merged by the INSERT
  that fills it;
- `0032`: the 32 MB list, merged every `--tick` seconds by another connection while the
  INSERTs go on (the push worker's merge job, `audit.merge_pending_index`, every
  GRIDWORK_AUDIT_MERGE_SECONDS (10 s) in production: this bench writes entries far faster than
  tiles are viewed).

The goal: no entry waits for the merge (max within a few ms of the floor's). The tables are
created in the bench database and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import psycopg

from bench._result import emit, pct

TABLES = {
    "no index": ("bench_audit_floor", None),
    "before 0032": ("bench_audit_default", ""),
    "0032": ("bench_audit_0032", "WITH (gin_pending_list_limit = 32768)"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=400)
    parser.add_argument("--ids", type=int, default=3000)
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between merges (0032)")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(url, autocommit=True)
    tick = psycopg.connect(url, autocommit=True)
    conn.execute("SET synchronous_commit = off")  # as the tile pool's connections
    try:
        for table, index in TABLES.values():
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, resource_ids bigint[] NOT NULL)"
            )
            conn.execute(f"ALTER TABLE {table} ALTER resource_ids SET COMPRESSION lz4")
            if index is not None:
                conn.execute(f"CREATE INDEX ix_{table} ON {table} USING gin (resource_ids) {index}")
        times: dict[str, list[float]] = {name: [] for name in TABLES}
        merged, done = [], threading.Event()

        def ticks() -> None:  # the push worker's merge job, beside the requests
            while not done.wait(args.tick):
                merged.append(
                    tick.execute(
                        "SELECT gin_clean_pending_list('ix_bench_audit_0032'::regclass)"
                    ).fetchone()[0]
                )

        ticker = threading.Thread(target=ticks)
        ticker.start()
        try:
            _write(conn, args, times)
        finally:
            done.set()
            ticker.join()
    finally:
        for table, _ in TABLES.values():
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
        tick.close()

    print(
        f"audit INSERT of one entry of {args.ids:,} ids, {args.entries} entries per table, "
        f"interleaved; 0032's list merged every {args.tick} s meanwhile ({sum(merged):,} pages in "
        f"{len(merged)} merges)"
    )
    print(f"{'table':<14}{'median':>9}{'p99':>9}{'max':>9}  ms")
    for name, values in times.items():
        print(
            f"{name:<14}{statistics.median(values):>9.2f}{pct(values, 99):>9.2f}{max(values):>9.2f}"
        )
    floor_max = max(times["no index"])
    for name in ("before 0032", "0032"):
        emit(
            "audit_index",
            f"tile audit INSERT max, {name}",
            max(times[name]),
            "ms",
            # The goal: the merge never lands on a request (within 20 ms of the floor's max).
            floor_max + 20.0 if name == "0032" else None,
            limit_note=f"no-index max {floor_max:.1f} ms + 20, same run"
            if name == "0032"
            else f"informational; median {statistics.median(times[name]):.2f} ms",
        )
    emit(
        "audit_index",
        "tile audit INSERT median, 0032",
        statistics.median(times["0032"]),
        "ms",
        None,
        limit_note=f"no-index median {statistics.median(times['no index']):.2f} ms same run",
    )


def _write(conn, args, times: dict[str, list[float]]) -> None:
    for i in range(args.entries):
        first = i * args.ids  # distinct ids, as tiles of different places name
        for name, (table, _) in TABLES.items():
            t0 = time.perf_counter()
            conn.execute(
                f"INSERT INTO {table} (resource_ids) SELECT array_agg(g)"
                " FROM generate_series(%s::bigint, %s::bigint) g",
                (first, first + args.ids - 1),
            )
            times[name].append((time.perf_counter() - t0) * 1000)


if __name__ == "__main__":
    main()
