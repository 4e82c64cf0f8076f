"""Benchmark: `gridwork import households` of a 900,000-row CSV (and an XLSX) vs a raw COPY.

    DATABASE_URL=postgresql://... python -m bench.import_households [--rows 900000]
        [--xlsx-rows 50000] [--grids 100]

The bench draws its own district (110118, one community, a square of `--grids` grids),
writes a register CSV of `--rows` households spread over them (Chinese headers and values
for a quarter of the file's rows would change nothing: English headers here) and an XLSX of
`--xlsx-rows`, then runs the real command `gridwork import households FILE` in a child
process and reads its wall time and peak RSS (getrusage of the child) beside the 500 MB
limit. The baseline COPYs the same rows (grid ids already known, no checks, no placement)
in one transaction, in the same run. Everything the bench made is deleted at the end.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, select

from api import create_app
from api.cli import alembic_config
from api.extensions import db
from api.models import Community, District, Grid, GridVersion, Household, Street
from api.settings import load_config
from bench._result import BENCH_APP, reporter
from tests.factories import box, make_grid

DISTRICT = "110118"
COMMUNITY = DISTRICT + "001001"
LON0, LAT0, SIDE = 116.20, 39.80, 0.004
MEMORY_LIMIT_MB = 500
HEADER = ["building", "unit", "floor", "room", "lon", "lat", "kind", "occupancy", "members"]
HEADER += ["tags", "phone"]
TAGS = ["", "", "", "", "elderly_80", "living_alone", "low_income;disability", "migrant"]


result = reporter("import_households")


def setup(app, grids: int) -> dict[str, int]:
    """A square of grids; their codes and ids."""
    side = math.ceil(math.sqrt(grids))
    with app.app_context(), db.begin() as session:
        made = {}
        for k in range(grids):
            i, j = divmod(k, side)
            lon, lat = LON0 + j * SIDE, LAT0 + i * SIDE
            code = f"{COMMUNITY}{k + 1:03d}"
            made[code] = make_grid(session, code, box(lon, lat, lon + SIDE, lat + SIDE)).id
        return made


def teardown(app) -> None:
    with app.app_context(), db.engine.begin() as conn:
        ids = select(Grid.id).where(Grid.community_code == COMMUNITY)
        conn.execute(delete(Household).where(Household.grid_id.in_(ids)))
        conn.execute(delete(GridVersion).where(GridVersion.grid_id.in_(ids)))
        conn.execute(delete(Grid).where(Grid.community_code == COMMUNITY))
        conn.execute(delete(Community).where(Community.code == COMMUNITY))
        conn.execute(delete(Street).where(Street.code == COMMUNITY[:9]))
        conn.execute(delete(District).where(District.code == DISTRICT))


def households(rows: int, grids: int, seed: int = 1):
    """(grid number, row) for each household, strictly inside its grid."""
    side = math.ceil(math.sqrt(grids))
    rng = random.Random(seed)
    for n in range(rows):
        k = rng.randrange(grids)
        i, j = divmod(k, side)
        lon = LON0 + j * SIDE + SIDE * (0.02 + 0.96 * rng.random())
        lat = LAT0 + i * SIDE + SIDE * (0.02 + 0.96 * rng.random())
        phone = f"139{n:08d}" if n % 3 == 0 else ""
        yield (
            k,
            [
                f"{n // 600 + 1}",
                f"{n % 6 + 1}",
                f"{n % 30 + 1}",
                f"{n % 600 + 101}",
                round(lon, 7),
                round(lat, 7),
                "business" if n % 20 == 0 else "residence",
                "tenant" if n % 4 == 0 else "owner",
                n % 5 + 1,
                TAGS[n % len(TAGS)],
                phone,
            ],
        )


def write_csv(path: Path, rows: int, grids: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for _, row in households(rows, grids):
            writer.writerow(row)


def write_xlsx(path: Path, rows: int, grids: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for _, row in households(rows, grids, seed=2):
        sheet.append(row)
    book.save(path)


PEAK = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF)"
    ".ru_maxrss, file=sys.stderr))\n"
    "from api.cli import main\n"
    "main()\n"
)


def run_import(path: Path) -> tuple[float, float, str]:
    """Wall seconds (start-up included) and peak RSS (MB) of `gridwork import households`."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "import", "households", str(path)],
        capture_output=True,
        text=True,
        env={"GRIDWORK_ENV": "development", **os.environ, "GRIDWORK_LOG_LEVEL": "WARNING"},
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr[-2000:]}")
    peak_kb = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return wall, peak_kb / 1024, done.stdout.splitlines()[0]


def raw_copy(app, rows: int, grids: int, grid_ids: list[int]) -> float:
    """COPY the same rows (grid known, no checks) in one transaction; seconds. Rolled back."""
    with app.app_context():
        conn = db.engine.raw_connection()
        try:
            raw = conn.driver_connection
            start = time.perf_counter()
            with raw.cursor() as cur:
                cols = "grid_id, building, unit, floor, room, lon_lat, kind, occupancy"
                cols = cols.replace("lon_lat", "location")
                sql = f"COPY households ({cols}, members, tags, phone) FROM STDIN"
                with cur.copy(sql) as copy:
                    for k, r in households(rows, grids):
                        copy.write_row(
                            [
                                grid_ids[k],
                                *r[:4],
                                f"SRID=4326;POINT({r[4]!r} {r[5]!r})",
                                r[6],
                                r[7],
                                r[8],
                                [t for t in r[9].split(";") if t],
                                r[10] or None,
                            ]
                        )
            raw.commit()
            seconds = time.perf_counter() - start
        finally:
            conn.close()
        with db.engine.begin() as c:
            c.execute(delete(Household).where(Household.grid_id.in_(grid_ids)))
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=900_000)
    parser.add_argument("--xlsx-rows", type=int, default=50_000)
    parser.add_argument("--grids", type=int, default=100)
    args = parser.parse_args()

    from alembic import command

    command.upgrade(alembic_config(load_config()["DATABASE_URL"]), "head")
    app = create_app(BENCH_APP)
    teardown(app)
    codes = setup(app, args.grids)
    grid_ids = list(codes.values())
    figures = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            csv_path, xlsx_path = Path(tmp) / "register.csv", Path(tmp) / "register.xlsx"
            start = time.perf_counter()
            write_csv(csv_path, args.rows, args.grids)
            write_xlsx(xlsx_path, args.xlsx_rows, args.grids)
            sizes = [p.stat().st_size / 1e6 for p in (csv_path, xlsx_path)]
            print(f"files written in {time.perf_counter() - start:.1f} s: ", end="")
            print(f"CSV {sizes[0]:.0f} MB, XLSX {sizes[1]:.0f} MB")

            for path, rows in ((csv_path, args.rows), (xlsx_path, args.xlsx_rows)):
                wall, peak, said = run_import(path)
                figures.append((path.suffix[1:], rows, wall, peak, said))
                with app.app_context(), db.engine.begin() as c:
                    c.execute(delete(Household).where(Household.grid_id.in_(grid_ids)))
            copy_s = raw_copy(app, args.rows, args.grids, grid_ids)
    finally:
        teardown(app)

    print(f"{'file':<6} {'rows':>9} {'wall s':>8} {'rows/s':>9} {'peak RSS MB':>12}  command said")
    for fmt, rows, wall, peak, said in figures:
        print(f"{fmt:<6} {rows:9d} {wall:8.1f} {rows / wall:9.0f} {peak:12.0f}  {said}")
    print(f"{'COPY':<6} {args.rows:9d} {copy_s:8.1f} {args.rows / copy_s:9.0f} {'-':>12}  raw")
    for fmt, rows, wall, peak, _ in figures:
        ok = peak < MEMORY_LIMIT_MB
        result(f"{fmt}_peak_rss", peak, "MB", MEMORY_LIMIT_MB, f"limit, {rows} rows", ok)
        result(f"{fmt}_rows_per_s", rows / wall, "rows/s", None, f"{rows} rows, wall", True)
    csv_rate, copy_rate = figures[0][1] / figures[0][2], args.rows / copy_s
    result("copy_rows_per_s", copy_rate, "rows/s", None, "raw COPY of the same rows", True)
    result(
        "csv_over_copy", csv_rate / copy_rate, "ratio", None, "raw COPY same rows, same run", True
    )


if __name__ == "__main__":
    main()
