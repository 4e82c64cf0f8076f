"""Benchmark: an update re-import (`mode=update`) of a 20,000-row register, ~10% of rows changed.

    DATABASE_URL=postgresql://... python -m bench.import_households_update [--rows 20000]

Draws the district of `bench.import_households` (100 grids), imports its register (create
mode), then imports a copy in which a tenth of the rows changed (a care tag, occupancy and
members, a point moved ~17 m — across a grid border for some —, a phone, members): in-process,
through `import_households`, each in its own transaction. Figures: that update, the same file
again (every row unchanged), and an update-mode import of rows none of which matches (the
radius lookup for every row). The kept report aggregates are compared with a rebuild after the
update (`report_verify.check`): the edits must have kept them as PATCHes would. Everything the
bench made is deleted at the end.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import time

from api import create_app
from api.extensions import db
from api.services import audit, report_verify
from api.services import households as service
from bench._result import BENCH_APP, reporter
from bench.import_households import HEADER, LON0, SIDE, households, setup, teardown

GRIDS = 100
result = reporter("import_households_update")


def register(rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def changed_copy(rows: list[list], share: float = 0.1, seed: int = 7) -> list[list]:
    """The register with `share` of its rows changed, five kinds of change in turn."""
    rng = random.Random(seed)
    out = [list(r) for r in rows]
    middle = LON0 + 5 * SIDE
    for k, n in enumerate(rng.sample(range(len(rows)), int(len(rows) * share))):
        r = out[n]
        match k % 5:
            case 0:
                r[9] = "elderly_80" if r[9] == "low_income" else "low_income"
            case 1:
                r[7], r[8] = ("owner", 2) if r[7] == "vacant" else ("vacant", 0)
            case 2:  # ~17 m towards the middle of the district: stays inside it
                r[4] = round(r[4] + (0.0002 if r[4] < middle else -0.0002), 7)
            case 3:
                r[10] = f"137{n:08d}"
            case _:
                r[8] += 1
    return out


def run(app, data: bytes, *, mode: str, commit: bool) -> tuple[float, service.HouseholdImport]:
    with app.app_context():
        session = db.session
        start = time.perf_counter()
        answer = service.import_households(
            session,
            None,
            data,
            mode=mode,
            audit_as=audit.Reader(None, None, "bench"),
            audit_fields=audit.HOUSEHOLD_FIELDS,
        )
        if commit:
            session.commit()
        seconds = time.perf_counter() - start
        if not commit:
            session.rollback()
        session.close()
        return seconds, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    app = create_app(BENCH_APP)
    teardown(app)
    setup(app, GRIDS)
    rows = [r for _, r in households(args.rows, GRIDS)]
    changed = register(changed_copy(rows))
    figures = {}
    try:
        figures["create"] = run(app, register(rows), mode="create", commit=True)
        figures["update_10pct"] = run(app, changed, mode="update", commit=True)
        with app.app_context():
            equal = report_verify.check(db.session).equal
            db.session.rollback()
        figures["update_unchanged"] = run(app, changed, mode="update", commit=False)
        fresh = register([[f"N{r[0]}", *r[1:]] for r in rows])
        figures["update_all_new"] = run(app, fresh, mode="update", commit=False)
    finally:
        teardown(app)
    print(f"{'import':<18} {'wall s':>7} {'rows/s':>8}  created updated unchanged")
    for name, (seconds, a) in figures.items():
        print(
            f"{name:<18} {seconds:7.2f} {args.rows / seconds:8.0f}  "
            f"{a.created:7d} {a.updated:7d} {a.unchanged:9d}"
        )
        note = f"{args.rows} rows, in-process, commit included"
        result(f"{name}_rows_per_s", args.rows / seconds, "rows/s", None, note, True)
    print(f"report aggregates equal to a rebuild after the update: {equal}")
    result("update_kept_reports_equal", float(equal), "bool", 1, "report_verify.check", equal)


if __name__ == "__main__":
    main()
