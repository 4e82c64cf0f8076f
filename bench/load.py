"""Load test: 500 simulated grid workers syncing visits and polling tasks/inbox, under gunicorn.

    DATABASE_URL=postgresql://... python -m bench.load [--users 500] [--duration 300]

Seeds a dedicated database (`<database>_load`, dropped and re-created; the DATABASE_URL
database itself is not touched) with a generated district from fixtures/ (grids and
households), one worker account per simulated user, tasks and notifications; starts the API
under gunicorn (2 x cores + 1 sync workers) on a free loopback port; runs locust headless
(bench/locustfile.py) for `--duration` seconds; prints errors (the limit is 0: failed requests
and tasks that raised, which locust leaves out of its stats), p50/p95
latency and requests/s, as a table and as RESULT lines. Needs locust (`pip install -e
".[load]"`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench._result import reporter
from tests.databases import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
SECRET = "load-test-secret-key-with-enough-length-for-hs256"
DATA_KEY = "Z3JpZHdvcmstbG9hZC10ZXN0LWRhdGEta2V5LTMyYnk"
P95_LIMIT_MS = 500.0  # goal for a phone on a mobile network: answers well inside a second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, users: int, grids: int, households_per_grid: int, plan_path: Path) -> dict:
    """A generated district, `users` workers spread over its grids, tasks and notifications."""
    from flask_jwt_extended import create_access_token

    from api import create_app
    from api.auth import claims_for
    from api.extensions import db
    from api.services import grids as grid_service
    from api.services import households as household_service
    from api.services import tasks as task_service
    from api.services import users as user_service
    from api.services.notifications import notify
    from fixtures.export import write_households_csv
    from fixtures.generate import generate_city

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "DATA_KEY": DATA_KEY,
            "LOG_LEVEL": "WARNING",
            "PASSWORD_HASHING": "fast",
            "STATEMENT_TIMEOUT_S": 0,  # the setup's; the API under load runs as served
        }
    )
    city = generate_city(
        grids * households_per_grid, grids=grids, households_per_grid=households_per_grid
    )
    now = datetime.now(UTC)
    with app.app_context(), tempfile.TemporaryDirectory() as tmp:
        register = Path(tmp) / "households.csv"
        write_households_csv(city["households"], register)
        with db.begin() as session:
            grid_service.import_grids(session, None, city["grids"])
        with db.begin() as session:
            household_service.import_households(
                session, None, register.read_bytes(), filename="households.csv"
            )
        codes = [f["properties"]["code"] for f in city["grids"]["features"]]
        with db.begin() as session:
            rows = session.execute(
                text(
                    "SELECT g.code, h.id, ST_X(h.location), ST_Y(h.location) "
                    "FROM households h JOIN grids g ON g.id = h.grid_id"
                )
            ).all()
            by_grid: dict[str, list[list]] = {}
            for code, hid, lon, lat in rows:
                by_grid.setdefault(code, []).append([hid, lon, lat])
            rng = random.Random(7)
            for code in codes:  # a few open tasks per grid, dispatched by the service
                for i in range(3):
                    _, lon, lat = rng.choice(by_grid[code])
                    task_service.create_task(
                        session,
                        None,
                        {
                            "source": "window",
                            "type": "help",
                            "title": f"负载测试工单 {i + 1}",
                            "urgency": "general",
                            "location": {"lon": lon, "lat": lat},
                        },
                        actor_id=None,
                        now=now,
                    )
        workers = []
        with db.begin() as session:
            for i in range(users):
                code = codes[i % len(codes)]
                user = user_service.create_user(
                    session,
                    username=f"load_worker_{i:04d}",
                    password="load-test-password",
                    role="worker",
                    grids=[code],
                )
                session.flush()
                notify(session, [user.id], "task_updated", "负载测试", "通知", now=now)
                token = create_access_token(user, additional_claims=claims_for(user))
                workers.append(
                    {"id": user.id, "token": token, "grid": code, "households": by_grid[code]}
                )
        db.engine.dispose()
    plan = {"workers": workers}
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    return {"grids": len(codes), "households": len(rows), "workers": len(workers)}


def start_api(url: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWORK_")}
    env.update(
        DATABASE_URL=url,
        GRIDWORK_SECRET_KEY=SECRET,
        GRIDWORK_DATA_KEY=DATA_KEY,
        GRIDWORK_LOG_LEVEL="WARNING",
        GRIDWORK_PUSH_BACKEND="off",
    )
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--backlog",
        "2048",
        "--timeout",
        "60",
        "--config",
        "python:api.heap",  # the collector settled in each worker, as `gridwork serve` does
        "api:create_app()",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return process
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


def run_locust(host: str, plan: Path, users: int, duration: int, out: Path, think: str) -> Path:
    prefix = out / "locust"
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(max(1, users // 20)),
        "--run-time",
        f"{duration}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    env = {**os.environ, "GRIDWORK_LOAD_PLAN": str(plan), "GRIDWORK_LOAD_THINK": think}
    subprocess.run(argv, env=env, cwd=ROOT, check=True)
    return Path(f"{prefix}_stats.csv")


def read_stats(path: Path) -> tuple[dict, list[dict]]:
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return total, [r for r in rows if r["Name"] != "Aggregated"]


def read_exceptions(path: Path) -> list[dict]:
    """What the phones' tasks raised (locust's `<prefix>_exceptions.csv`): a request whose answer
    the task could not read (not JSON, no `results`) raises out of the task, and locust then
    counts it nowhere in its stats, neither as a request nor as a failure."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def count_errors(stats: Path) -> int:
    """The run's errors: the failed requests and the tasks that raised (beside `stats`)."""
    total, _ = read_stats(stats)
    raised = read_exceptions(stats.with_name(stats.name.replace("_stats.csv", "_exceptions.csv")))
    return int(total["Failure Count"]) + sum(int(row["Count"]) for row in raised)


result = reporter("load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=500, help="simulated workers")
    parser.add_argument("--duration", type=int, default=300, help="seconds of load")
    parser.add_argument("--grids", type=int, default=50)
    parser.add_argument("--households-per-grid", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument(
        "--think",
        default="20,40",
        help="seconds between a phone's actions, min,max (a sync or a poll about every 30 s)",
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("locust") is None:  # before seeding anything
        raise SystemExit('locust is not installed: .venv/bin/pip install -e ".[dev,load]"')

    from api.settings import load_config

    base = make_url(load_config()["DATABASE_URL"])
    url = base.set(database=f"{base.database}_load").render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="gridwork-load-"))
    started = time.monotonic()
    create_database(url)
    seeded = seed(url, args.users, args.grids, args.households_per_grid, work / "plan.json")
    print(
        f"seeded {seeded['grids']} grids, {seeded['households']} households, "
        f"{seeded['workers']} workers in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    port = _free_port()
    api = start_api(url, port, args.workers, work / "gunicorn.log")
    try:
        stats = run_locust(
            f"http://127.0.0.1:{port}",
            work / "plan.json",
            args.users,
            args.duration,
            work,
            args.think,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(api.pid, signal.SIGTERM)
        api.wait(timeout=30)
    total, by_name = read_stats(stats)

    cores = os.cpu_count()
    print(
        f"\nload: {args.users} workers, think {args.think} s, {args.duration} s, "
        f"gunicorn {args.workers} sync workers, "
        f"{cores} cores (shared), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    header = f"{'request':<34} {'count':>7} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>7}"
    print(header)
    print("-" * len(header))
    for row in [*by_name, total]:
        print(
            f"{row['Name'][:34]:<34} {int(row['Request Count']):>7} {int(row['Failure Count']):>6} "
            f"{float(row['50%']):>7.0f} {float(row['95%']):>7.0f} {float(row['Requests/s']):>7.1f}"
        )
    failures = work / "locust_failures.csv"
    if failures.exists() and failures.read_text().count("\n") > 1:
        print("\nfailures:\n" + failures.read_text())
    for row in read_exceptions(work / "locust_exceptions.csv"):
        print(f"\nraised {row['Count']} times: {row['Message']}\n{row['Traceback']}")
    errors = count_errors(stats)
    p50, p95 = float(total["50%"]), float(total["95%"])
    print()
    result(
        "errors",
        errors,
        "requests",
        0,
        "any non-2xx, a visit not created/deduplicated, or a task that raised",
        errors == 0,
    )
    result("p50", p50, "ms", P95_LIMIT_MS, "all requests; goal is on p95", True)
    result("p95", p95, "ms", P95_LIMIT_MS, "all requests", p95 <= P95_LIMIT_MS)
    result(
        "throughput",
        float(total["Requests/s"]),
        "req/s",
        None,
        f"{args.users} users, {args.think} s think time",
        True,
    )
    result("requests", int(total["Request Count"]), "requests", None, f"{args.duration} s", True)
    drop_database(url)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
