"""Run every benchmark, collect their RESULT lines, and rewrite the summary atop bench/RESULTS.md.

Usage:
  DATABASE_URL=... python -m bench.run_all [--only tiles,visits_ingest] [--database-url URL]
                                           [--city postgresql://.../gw_city] [--timeout 1800]

Every module `bench/<name>.py` (not this one, not `_*.py`, not NOT_BENCHES) is a benchmark, run as
`python -m bench.<name>` with DATABASE_URL set. The city-scale ones (CITY_BENCHES, when present)
run against the `--city` database (`gridwork seed city`) when one is given. Each prints
`RESULT {json}` lines (bench/_result.py); the figures land in a table between the markers
`<!-- run_all:begin -->` and `<!-- run_all:end -->` at the top of bench/RESULTS.md, with the
machine and the date. With --only, the other benches' rows of the last run are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.databases import create_database, drop_database, sibling_url

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"
DATA = "<!-- run_all:data "
# Benches that measure the city (`gridwork seed city`): they run on --city when it is given.
CITY_BENCHES = {"tiles", "locate", "load", "audit_records"}
# Benches that build their own dataset by emptying the domain tables (the report's 3,000-grid
# city and 425-grid district; must_visit_replay's community; report_upkeep's and
# report_verify's 90,000 households): each runs in a fresh database of its own, dropped afterwards.
OWN_DATABASE = {"report", "must_visit_replay", "report_upkeep", "report_verify"}
# Modules under bench/ that are not benchmarks themselves: the locust scenario bench/load.py drives.
NOT_BENCHES = {"run_all", "__init__", "locustfile"}


def discover() -> list[str]:
    return sorted(
        p.stem
        for p in BENCH_DIR.glob("*.py")
        if p.stem not in NOT_BENCHES and not p.stem.startswith("_")
    )


def parse_results(output: str) -> list[dict]:
    rows = []
    for line in output.splitlines():
        if line.startswith("RESULT "):
            try:
                rows.append(json.loads(line[len("RESULT ") :]))
            except json.JSONDecodeError:
                continue
    return rows


def failed_run(name: str, why: str) -> dict:
    """The row that stands for a bench that gave no figure."""
    return {
        "bench": name,
        "metric": "run",
        "value": None,
        "unit": "",
        "limit": None,
        "limit_note": why,
        "ok": False,
    }


def run_bench(name: str, url: str, timeout: float, log_dir: Path) -> tuple[list[dict], float]:
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    print(f"== {name} (DATABASE_URL={url})", flush=True)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        code = f"timeout after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{name}.log").write_text(output)
    sys.stdout.write(output)
    rows = parse_results(output)
    if code != 0:
        tail = output.strip().splitlines()[-1:] or [""]
        rows.append(failed_run(name, f"exit {code}: {tail[0][:120]}"))
    elif not rows:
        rows.append(failed_run(name, "printed no RESULT line"))
    return rows, seconds


def machine(url: str) -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info["cpu"] = info.get("cpu") or platform.processor() or platform.machine()
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            # The extension as installed on the server: the default database may not have it
            # created (a bench with a database of its own), and postgis_lib_version() is then
            # no function there.
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
            info["postgis"] = row[0] if row else "?"
    except Exception as exc:  # noqa: BLE001 - the summary still gets written
        info["postgresql"] = f"unknown ({type(exc).__name__})"
    return info


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def _runs(rows: list[dict], when: str) -> str | None:
    """Which benches this run measured and when the kept rows (after --only) were measured;
    None when every row is this run's."""
    at: dict[str, list[str]] = {}
    for r in rows:
        benches = at.setdefault(r.get("at", when), [])
        if r["bench"] not in benches:
            benches.append(r["bench"])
    if list(at) == [when]:
        return None
    kept = "; ".join(f"{', '.join(b)} at {t}" for t, b in sorted(at.items()) if t != when)
    return f"for {', '.join(at.get(when, []))} (rows kept from earlier runs: {kept})"


def render(rows: list[dict], info: dict, when: str, urls: dict[str, str]) -> str:
    kept = _runs(rows, when)
    lines = [
        BEGIN,
        "## Summary (bench/run_all.py)",
        "",
        f"Run {when}{' ' + kept if kept else ''} on {info.get('cpu')}, {info.get('cores')} cores, "
        f"{info.get('ram_gib', '?')} GiB RAM (shared with other work), "
        f"PostgreSQL {info.get('postgresql')}, PostGIS {info.get('postgis', '?')}, "
        f"Python {info.get('python')}. "
        + ("This run's databases: " if kept else "Databases: ")
        + ", ".join(f"{k} `{v.rsplit('/', 1)[-1]}`" for k, v in urls.items())
        + ". `limit` is the goal, or the raw baseline measured in the same run.",
        "",
        "| bench | metric | value | limit | ok |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        unit = f" {r['unit']}" if r.get("unit") else ""
        limit = _fmt(r.get("limit"))
        note = f" ({r['limit_note']})" if r.get("limit_note") else ""
        ok = "yes" if r.get("ok") else "**NO**"
        value = _fmt(r.get("value"))
        lines.append(f"| {r['bench']} | {r['metric']} | {value}{unit} | {limit}{note} | {ok} |")
    lines += ["", DATA + json.dumps(rows, ensure_ascii=False) + " -->", END]
    return "\n".join(lines)


def previous_rows(text: str) -> list[dict]:
    """The rows of the last summary, each with the time of the run that measured it."""
    start = text.find(DATA)
    if start < 0:
        return []
    end = text.find(" -->", start)
    try:
        rows = json.loads(text[start + len(DATA) : end])
    except json.JSONDecodeError:
        return []
    header = re.search(r"^Run (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", text, re.MULTILINE)
    for r in rows:
        r.setdefault("at", header.group(1) if header else "an earlier run")
    return rows


def write_block(block: str, path: Path = RESULTS) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        first, _, rest = text.partition("\n")
        heading = first.startswith("# ")
        text = f"{first}\n\n{block}\n{rest}" if heading else f"{block}\n\n{text}"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--only", help="comma-separated bench names (default: all found)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--city", help="database loaded by `gridwork seed city`")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per bench")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL")

    found = discover()
    names = found
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(found))
        if unknown:
            parser.error(f"no such bench: {', '.join(unknown)}; found: {', '.join(found)}")
        names = wanted
    log_dir = ROOT / ".bench-logs"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[dict] = []
    for name in names:
        url = args.city if (args.city and name in CITY_BENCHES) else args.database_url
        if name in OWN_DATABASE:
            url = create_database(sibling_url(args.database_url, f"_{name}"))
        try:
            got, seconds = run_bench(name, url, args.timeout, log_dir)
        finally:
            if name in OWN_DATABASE:
                drop_database(url)
        print(f"== {name}: {len(got)} figures in {seconds:.0f} s", flush=True)
        rows += [dict(r, at=when) for r in got]
    text = args.results.read_text() if args.results.exists() else ""
    kept = [r for r in previous_rows(text) if r.get("bench") not in set(names)]
    order = {n: k for k, n in enumerate(found)}
    rows = sorted(kept + rows, key=lambda r: order.get(r.get("bench"), len(order)))
    urls = {"default": args.database_url}
    if args.city:
        urls["city"] = args.city
    write_block(render(rows, machine(args.database_url), when, urls), args.results)
    missed = [r for r in rows if not r.get("ok")]
    print(f"wrote {args.results}: {len(rows)} figures, {len(missed)} not ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
