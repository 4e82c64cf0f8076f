"""Stored weekly reports: the Monday 08:00 run, its files, listing and download, the push."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, undefer

from api import errors
from api.models import CARE_TAGS, REPORT_FORMATS, Community, Grid, Report, ReportFile, User
from api.models.tasks import TASK_LISTS
from api.scope import Scope
from api.services import report_render, reports
from api.services.notifications import notify
from api.services.rates import percent
from api.services.task_lists import LIST_FIGURES
from api.services.weeks import parse_week, shift_week, week_bounds

log = logging.getLogger("gridwork.reports")


# A community whose report failed is tried again this long after its first failure, doubling
# with each failure, never more than RETRY_MAX apart: the push worker's tick (every
# TASK_TICK_SECONDS) skips it until then, instead of rendering, failing and logging each tick.
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)


# The week due and the weeks before it that a run stores when their report is missing: a push
# worker down across a Monday (or two...) leaves a week unstored, which the next run makes up.
# Eight weeks, as many as the report's trend shows: enough for an outage noticed late, and the
# first tick after a longer one renders at most eight reports a community (in one transaction);
# `report tick --now <an older Monday>` reaches further back, eight weeks from that Monday.
CATCH_UP_WEEKS = 8
# A week's report falls due this long after the week ends (Monday 08:00 Asia/Shanghai).
REPORT_DUE_AFTER = timedelta(hours=8)


@dataclass(frozen=True)
class Generated:
    """What a run did for one week: the week due (and, in `earlier`, each missed week before it
    that it stored, failed or deferred a report of, oldest first)."""

    week: str
    created: list[Report]
    skipped: int
    failed: list[str] = field(default_factory=list)  # community codes that failed this run
    # Community codes that failed before and whose next attempt is not due yet; and for each
    # failed or deferred one, (the number of its next attempt, when it is due).
    deferred: list[str] = field(default_factory=list)
    retry_at: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    earlier: list[Generated] = field(default_factory=list)

    @property
    def all_created(self) -> list[Report]:
        """The reports stored by the run, missed weeks' first."""
        return [r for g in self.earlier for r in g.created] + self.created

    @property
    def any_failed(self) -> bool:
        return bool(self.failed) or any(g.failed for g in self.earlier)


def _communities_due(session: Session, week: str) -> list[Community]:
    """Communities with at least one grid existing during the week."""
    start, end = reports.week_bounds(week)
    return list(
        session.scalars(
            select(Community)
            .where(
                text(
                    "EXISTS (SELECT 1 FROM grids g JOIN grid_versions v ON v.grid_id = g.id "
                    "WHERE g.community_code = communities.code AND v.valid_from < :end "
                    "AND (v.valid_to IS NULL OR v.valid_to > :start))"
                ).bindparams(start=start, end=end)
            )
            .order_by(Community.code)
        )
    )


def _missed_weeks(session: Session, week: str) -> list[str]:
    """The weeks before `week` a run looks for missing reports in, oldest first: up to
    CATCH_UP_WEEKS - 1 of them, none before the first week any report was stored.

    Before that week no Monday run had stored anything (a new platform, or one whose register
    was loaded dated back, `backdate_register`): those weeks were never missed, and making up
    their reports would announce weeks of nothing to every community's leaders at once.
    """
    first = session.scalar(select(func.min(Report.week)).where(Report.level == "community"))
    if first is None:
        return []
    weeks = [shift_week(week, -i) for i in range(CATCH_UP_WEEKS - 1, 0, -1)]
    return [w for w in weeks if w >= first]  # "YYYY-Www" sorts as the weeks do


def _missing(session: Session, weeks: list[str]) -> dict[str, list[tuple[str, str]]]:
    """For each of `weeks`, (code, name) of the communities due then whose report is not stored.

    Due then: a grid of the community existed during the week, and was in the database when
    the week's report fell due (Monday 08:00 after it). A community loaded later with its
    register dated back (`backdate_register`: its grids' versions start in the past, not their
    rows) had no report missed: its leaders would be announced weeks of nothing at once.

    One statement; once every report is stored it costs an index probe a community and week
    (`uq_reports_week_level_code`), and claims nothing."""
    if not weeks:
        return {}
    bounds = [reports.week_bounds(w) for w in weeks]
    rows = session.execute(
        text(
            "SELECT w.week, c.code, c.name FROM unnest(CAST(:weeks AS text[]), "
            "CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])) AS w(week, s, e) "
            "CROSS JOIN communities c "
            "WHERE NOT EXISTS (SELECT 1 FROM reports r WHERE r.week = w.week "
            "AND r.level = 'community' AND r.code = c.code) "
            "AND EXISTS (SELECT 1 FROM grids g JOIN grid_versions v ON v.grid_id = g.id "
            "WHERE g.community_code = c.code AND v.valid_from < w.e "
            "AND (v.valid_to IS NULL OR v.valid_to > w.s) AND g.created_at < w.e + :due) "
            "ORDER BY w.week, c.code"
        ),
        {
            "weeks": weeks,
            "starts": [s for s, _ in bounds],
            "ends": [e for _, e in bounds],
            "due": REPORT_DUE_AFTER,
        },
    )
    missing: dict[str, list[tuple[str, str]]] = {}
    for week, code, name in rows:
        missing.setdefault(week, []).append((code, name))
    return missing


def generate_due_reports(session: Session, now: datetime, *, retry_now: bool = False) -> Generated:
    """Store (and announce) every community's report for the week due at `now`, and those of
    the weeks before it that a run missed.

    Due from Monday 08:00 Asia/Shanghai for the week before. A week whose Monday passed with no
    run (the push worker down across it) is made up by the next run: each of the
    CATCH_UP_WEEKS - 1 weeks before the week due, from the first week any report was stored,
    whose report of a community due then is not stored, is stored too, oldest first. Its
    figures are its week's own (the report reads the week as it closed: `cutoff` is the week's
    end for any run after it); it is stamped and announced at `now`, when it is made.

    Idempotent: a report is claimed by inserting its (week, level, code) row with ON CONFLICT
    DO NOTHING, so a second run, or a second worker racing this one, skips it (the loser waits
    on the unique index until the winner commits, then sees the row). Only the claimant
    renders, stores and notifies, all in the caller's transaction.

    Each (week, community) is claimed, rendered and announced in its own savepoint: one that
    fails is rolled back, claim included, and the other reports are stored all the same. The
    failure is logged once (with its traceback) and recorded in `report_failures` with when the
    next attempt is due (RETRY_FIRST after the first failure, doubling, at most RETRY_MAX); runs
    before then skip that report (`deferred`) unless `retry_now`. A stored (or already stored)
    report deletes its record.
    """
    week = reports.previous_week_due(now)
    earlier = _missed_weeks(session, week)
    waiting = {
        (w, code): (attempts, next_at, stored)
        for w, code, attempts, next_at, stored in session.execute(
            text(
                "SELECT f.week, f.community_code, f.attempts, f.next_attempt_at, EXISTS ("
                "SELECT 1 FROM reports r WHERE r.week = f.week AND r.level = 'community' "
                "AND r.code = f.community_code) FROM report_failures f "
                "WHERE f.week = ANY(CAST(:weeks AS text[]))"
            ),
            {"weeks": [*earlier, week]},
        )
    }
    # Reports already stored are skipped before any claim: the claim's INSERT draws an id from
    # the reports' sequence even when it meets the conflict, and this runs every tick all week.
    stored = set(
        session.scalars(select(Report.code).where(Report.week == week, Report.level == "community"))
    )
    due = [(c.code, c.name, c.code in stored) for c in _communities_due(session, week)]
    missing = _missing(session, earlier)
    # A missed week's failure whose report was stored since (by another worker): not in
    # `missing`, its record goes here.
    for (w, code), (_, _, done) in waiting.items():
        if done and w != week:
            _clear_failure(session, w, code)
    caught_up = []
    for w in earlier:
        if w in missing:
            todo = [(code, name, False) for code, name in missing[w]]
            result = _store_week(session, w, todo, waiting, now, retry_now)
            if result.created or result.failed or result.deferred:
                caught_up.append(result)
    result = _store_week(session, week, due, waiting, now, retry_now)
    return Generated(
        week,
        result.created,
        result.skipped,
        result.failed,
        result.deferred,
        result.retry_at,
        caught_up,
    )


def _store_week(
    session: Session,
    week: str,
    communities: list[tuple[str, str, bool]],
    waiting: dict[tuple[str, str], tuple[int, datetime, bool]],
    now: datetime,
    retry_now: bool,
) -> Generated:
    """Store the week's report of each (code, name, already stored) community not stored yet."""
    created, skipped, failed, deferred, retry_at = [], 0, [], [], {}
    for code, name, done in communities:
        before = waiting.get((week, code))
        if done:
            if before is not None:  # stored by another worker after this one's failure
                _clear_failure(session, week, code)
            skipped += 1
            continue
        if before is not None and before[1] > now and not retry_now:
            deferred.append(code)
            retry_at[code] = (before[0] + 1, before[1])
            continue
        try:
            with session.begin_nested():
                report = _claim_and_store(session, week, code, name, now)
        except Exception as exc:
            attempts, next_at = _record_failure(session, week, code, exc, now)
            log.exception(
                "report %s of community %s failed (attempt %s); retried from %s",
                week,
                code,
                attempts,
                next_at.isoformat(),
            )
            failed.append(code)
            retry_at[code] = (attempts + 1, next_at)
            continue
        if before is not None:
            _clear_failure(session, week, code)
        if report is None:
            skipped += 1
        else:
            created.append(report)
    if created or failed:
        log.info(
            "reports for %s: %s stored, %s already there, %s failed, %s waiting to retry",
            week,
            len(created),
            skipped,
            len(failed),
            len(deferred),
        )
    return Generated(week, created, skipped, failed, deferred, retry_at)


def _clear_failure(session: Session, week: str, code: str) -> None:
    session.execute(
        text("DELETE FROM report_failures WHERE week = :week AND community_code = :code"),
        {"week": week, "code": code},
    )


def _error_class(exc: BaseException) -> str:
    """The exception's class, module-qualified unless built in; never its message."""
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"[:100]


def _record_failure(
    session: Session, week: str, code: str, exc: BaseException, now: datetime
) -> tuple[int, datetime]:
    """Count a failed attempt and set the next one: (attempts so far, next attempt's time).

    One upsert, so two workers failing at once count two attempts and neither loses its row.
    """
    row = session.execute(
        text(
            "INSERT INTO report_failures AS f (week, community_code, attempts, error_class, "
            "first_failed_at, last_failed_at, next_attempt_at) "
            "VALUES (:week, :code, 1, :error, :now, :now, :now + :first) "
            "ON CONFLICT (week, community_code) DO UPDATE SET "
            "attempts = f.attempts + 1, error_class = EXCLUDED.error_class, "
            "last_failed_at = EXCLUDED.last_failed_at, "
            "next_attempt_at = EXCLUDED.last_failed_at "
            "+ LEAST(:first * power(2, LEAST(f.attempts, 20)), :max) "
            "RETURNING attempts, next_attempt_at"
        ),
        {
            "week": week,
            "code": code,
            "error": _error_class(exc),
            "now": now,
            "first": RETRY_FIRST,
            "max": RETRY_MAX,
        },
    ).one()
    return row.attempts, row.next_attempt_at


def _claim_and_store(
    session: Session, week: str, code: str, name: str, now: datetime
) -> Report | None:
    """Claim (week, community) and store and announce its report; None when already claimed."""
    report_id = session.execute(
        text(
            "INSERT INTO reports (week, level, code, name, created_at) "
            "VALUES (:week, 'community', :code, :name, :now) "
            "ON CONFLICT (week, level, code) DO NOTHING RETURNING id"
        ),
        {"week": week, "code": code, "name": name, "now": now},
    ).scalar()
    if report_id is None:
        return None
    report = session.get(Report, report_id)
    store_files(session, report, now)
    announce(session, report, session.get(Community, code), now)
    return report


def store_files(session: Session, report: Report, now: datetime) -> None:
    """Compute the report once and store it in every format."""
    selection = reports.select_scope(session, None, report.week, **{report.level: report.code})
    data = reports.coverage_report(session, selection, report.week, now=now)
    shapes = reports.grid_shapes(session, selection.grid_ids, report.week)
    report.households = data["totals"]["households"]
    report.visited = data["totals"]["visited"]
    # The visits its figures counted, from the one statement that computed them (one snapshot,
    # whatever commits meanwhile): `count_late_visits` measures the live count against it.
    report.visits_seen = data["totals"]["visits"]
    for fmt in REPORT_FORMATS:
        body = report_render.render(data, fmt, shapes)
        session.add(
            ReportFile(
                report_id=report.id,
                format=fmt,
                content_type=report_render.CONTENT_TYPES[fmt],
                size_bytes=len(body),
                body=body,
            )
        )
    session.flush()
    session.refresh(report)


def announce(session: Session, report: Report, community: Community, now: datetime) -> None:
    """Push to the community's grid leaders and admins (inbox row + queued deliveries)."""
    recipients = session.scalars(
        select(User.id)
        .where(
            User.community_code == community.code,
            User.role.in_(("grid_leader", "community_admin")),
            User.active.is_(True),
        )
        .order_by(User.id)
    ).all()
    rate = percent(report.visited, report.households)
    coverage = "-" if rate is None else f"{rate:.1f}%"
    notify(
        session,
        recipients,
        "report_ready",
        f"{report.week} 走访覆盖率周报",
        f"{community.name}: 覆盖率 {coverage} ({report.visited}/{report.households} 户)",
        data={"report_id": report.id, "week": report.week, "community": community.code},
        collapse_key=f"report:{report.code}",
        now=now,
    )


# --- reading stored reports -----------------------------------------------------------------
def _visible(scope: Scope):
    """Stored reports are community reports: published to the community's leaders and admins,
    and to the district's viewers."""
    if scope.role == "worker":
        raise errors.Forbidden("Coverage reports are for grid leaders, admins and viewers.")
    return scope.communities(Report.code)


def list_reports(
    session: Session,
    scope: Scope,
    *,
    week: str | None = None,
    community: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[Report], int]:
    stmt = select(Report).where(_visible(scope))
    if week:
        parse_week(week)
        stmt = stmt.where(Report.week == week)
    if community:
        stmt = stmt.where(Report.code == community)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Report.week.desc(), Report.code)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), total


def count_late_visits(session: Session, reports: list[Report]) -> list[Report]:
    """Set each stored report's `late_visits`: the visits of its week in its community that the
    live report (`/reports/coverage`) counts and the stored one, the week as it stood when it
    was stored, did not (attempts with nobody home included: the report counts those too).
    From phones that kept them offline past Monday 08:00; the stored report says so.

    The live count minus `visits_seen`, the visits the stored figures counted (read by the
    statement that computed them): the report's own `visits` figure, over the grids its live
    report reads (the community's that existed during the week), from the aggregate it reads
    (`report_grid_weeks`: visits are only ever added, so the difference is the visits added
    since). Not by arrival time: the run stamps `created_at` as it begins and reads the figures
    later, and a visit's `received_at` is when its sync request began, not when it committed,
    so a visit could be both in the stored figures and after `created_at`, or in neither.
    Never below 0 (a grid moved to another community since). A report stored before migration
    0062 (`visits_seen` NULL) counts the visits received after its `created_at`, as before.

    One statement for the page of reports: the community's grids by their index, each grid's
    week by the aggregate's primary key (the Monday run stores community reports only)."""
    if not reports:
        return reports
    bounds = [week_bounds(r.week) for r in reports]
    rows = session.execute(
        text(
            "SELECT r.id, CASE WHEN r.visits_seen IS NULL THEN ("
            "  SELECT count(v.id) FROM grids g JOIN visits v ON v.grid_id = g.id "
            "  AND v.week = r.week AND v.received_at > r.created_at "
            "  WHERE g.community_code = r.code) "
            "ELSE GREATEST(("
            "  SELECT COALESCE(sum(w.visits), 0) FROM grids g "
            "  JOIN report_grid_weeks w ON w.grid_id = g.id AND w.week = r.week "
            "  WHERE g.community_code = r.code AND EXISTS (SELECT 1 FROM grid_versions gv "
            "  WHERE gv.grid_id = g.id AND gv.valid_from < b.e "
            "  AND (gv.valid_to IS NULL OR gv.valid_to > b.s))) - r.visits_seen, 0) END "
            "FROM unnest(CAST(:ids AS integer[]), CAST(:starts AS timestamptz[]), "
            "CAST(:ends AS timestamptz[])) AS b(id, s, e) JOIN reports r ON r.id = b.id"
        ),
        {
            "ids": [r.id for r in reports],
            "starts": [s for s, _ in bounds],
            "ends": [e for _, e in bounds],
        },
    ).all()
    late = dict(rows)
    for report in reports:
        report.late_visits = late.get(report.id, 0)
    return reports


def get_report(session: Session, scope: Scope, report_id: int) -> Report:
    report = session.scalar(select(Report).where(Report.id == report_id, _visible(scope)))
    if report is None:
        raise errors.NotFound(f"Report {report_id} not found.")
    return report


def get_file(session: Session, scope: Scope, report_id: int, fmt: str) -> ReportFile:
    """The stored file as it is (a community admin's, a district viewer's copy)."""
    report = get_report(session, scope, report_id)
    return _stored_file(session, report, fmt)


def read_file(session: Session, scope: Scope, report_id: int, fmt: str) -> tuple[Report, bytes]:
    """One stored report's file as the caller may read it: the stored file, or for a grid
    leader their copy of it (`leader_view`), rendered in `fmt` from the stored figures."""
    if scope.role != "grid_leader":
        row = get_file(session, scope, report_id, fmt)
        return row.report, row.body
    report = get_report(session, scope, report_id)
    _check_format(report.id, fmt)
    view, grid_ids = leader_view(session, scope, report)
    shapes = reports.grid_shapes(session, grid_ids, report.week) if fmt == "pdf" else None
    return report, report_render.render(view, fmt, shapes)


def _check_format(report_id: int, fmt: str) -> None:
    if fmt not in REPORT_FORMATS:
        raise errors.NotFound(
            f"Report {report_id} has no {fmt!r} file; one of {', '.join(REPORT_FORMATS)}."
        )


def _stored_file(session: Session, report: Report, fmt: str) -> ReportFile:
    report_id = report.id
    _check_format(report_id, fmt)
    row = session.scalar(
        select(ReportFile)
        .options(undefer(ReportFile.body))
        .where(ReportFile.report_id == report.id, ReportFile.format == fmt)
    )
    if row is None:
        raise errors.NotFound(f"Report {report_id} has no {fmt} file.")
    return row


# --- a grid leader's copy ----------------------------------------------------------------------
def leader_view(session: Session, scope: Scope, report: Report) -> tuple[dict[str, Any], list[int]]:
    """A grid leader's copy of a stored community report, and the ids of the grids it keeps.

    The live report narrows a grid leader to their own grids (`reports.select_scope`: the grids
    of their scope, `Scope.grid_ids`); so does this, from the stored figures: the stored grids
    that are theirs; `totals` and `communities` summed over those alone as REPORT_SQL sums them
    (rates from the sums); `level` "grids". The stored report does not split a worker's figures
    by grid: the `workers` section is the live leader report's of the week over those grids
    (its members, their visits there, their posts there), as it counts them now. The trend:
    each week's point sums those grids in that week's stored report of the community; a week
    with no stored report (before the first Monday run) is the live report's point of it.
    """
    stored = json.loads(_stored_file(session, report, "json").body)
    codes = {g["code"] for g in stored["grids"]}
    mine = dict(
        session.execute(select(Grid.code, Grid.id).where(Grid.code.in_(codes), scope.grids())).all()
    )
    grids = [g for g in stored["grids"] if g["code"] in mine]
    grid_ids = [mine[g["code"]] for g in grids]
    live = reports.coverage_report(
        session,
        reports.Selection("grids", report.code, report.name, grid_ids),
        report.week,
        now=report.created_at,
    )
    view = {
        **stored,
        "level": "grids",
        "grids": grids,
        "communities": _communities(grids, stored.get("communities") or []),
        "workers": live["workers"],
        "totals": _totals(grids),
    }
    view["trend"] = _leader_trend(session, report, view, live["trend"])
    return view, grid_ids


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(row.get(key) or 0 for row in rows)


def _counted(rate: float | None, whole: int) -> int:
    """The part a stored rate was computed from (`gw_pct(part, whole)`, one decimal): exact for
    a whole under 1000 (a grid's tasks of a week), the rate's rounding being under half a
    task then."""
    if rate is None or not whole:
        return 0
    return round(rate * whole / 100)


def _task_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The tasks' figures summed over grids, the three rates from the sums (`_task_json`)."""
    opened, rated = _sum(rows, "opened"), _sum(rows, "rated")
    responded = sum(_counted(r.get("response_rate"), r.get("opened") or 0) for r in rows)
    satisfied = sum(_counted(r.get("satisfaction_rate"), r.get("rated") or 0) for r in rows)
    resolved = _sum(rows, "resolved")
    return {
        "opened": opened,
        "resolved": resolved,
        "overdue": _sum(rows, "overdue"),
        "response_rate": percent(responded, opened),
        "resolution_rate": percent(resolved, opened),
        "satisfaction_rate": percent(satisfied, rated),
        "rated": rated,
    }


def _totals(grids: list[dict[str, Any]]) -> dict[str, Any]:
    """REPORT_SQL's `totals` over the kept grids: sums of their rows, rates from the sums."""
    households, visited = _sum(grids, "households"), _sum(grids, "visited")
    tags: dict[str, list[int]] = {}
    for grid in grids:
        for m in grid.get("must_visit") or []:
            due_done = tags.setdefault(m["tag"], [0, 0])
            due_done[0] += m["due"]
            due_done[1] += m["done"]
    order = {tag: i for i, tag in enumerate(CARE_TAGS)}
    totals: dict[str, Any] = {
        "grids": len(grids),
        "households": households,
        "households_by_kind": {
            kind: sum((g.get("households_by_kind") or {}).get(kind) or 0 for g in grids)
            for kind in ("residence", "business")
        },
        "visited": visited,
        "coverage": percent(visited, households),
        "visits": _sum(grids, "visits"),
        "visits_by_grade": {
            grade: sum((g.get("visits_by_grade") or {}).get(grade) or 0 for g in grids)
            for grade in ("ok", "doubtful", "suspect")
        },
        "relief_visits": _sum(grids, "relief_visits"),
        "unregistered_visits": _sum(grids, "unregistered_visits"),
        "not_visited_2w": _sum(grids, "not_visited_2w"),
        "must_visit": [
            {"tag": tag, "due": due, "done": done, "rate": percent(done, due)}
            for tag, (due, done) in sorted(
                tags.items(), key=lambda item: order.get(item[0], len(order))
            )
            if due > 0 or done > 0
        ],
    }
    tasks = [g["tasks"] for g in grids if "tasks" in g]
    totals["tasks"] = _task_totals(tasks)
    # Figures a report stored before them has not (the hotline's rates, the lists): left out.
    if all("hotline" in t for t in tasks):
        totals["tasks"]["hotline"] = _task_totals([t["hotline"] for t in tasks])
    if all("lists" in g for g in grids):
        totals["lists"] = {
            kind: {n: sum(g["lists"][kind][n] for g in grids) for n in LIST_FIGURES}
            for kind in TASK_LISTS
        }
    return totals


def _communities(grids: list[dict[str, Any]], stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """REPORT_SQL's `communities` over the kept grids: each one's sums, named as stored."""
    named = {c["code"]: c for c in stored}
    out = []
    for code in sorted({g["community_code"] for g in grids}):
        rows = [g for g in grids if g["community_code"] == code]
        households, visited = _sum(rows, "households"), _sum(rows, "visited")
        c = named.get(code, {})
        entry = {
            "code": code,
            "name": c.get("name"),
            "street_code": c.get("street_code"),
            "street_name": c.get("street_name"),
            "grids": len(rows),
            "households": households,
            "visited": visited,
            "coverage": percent(visited, households),
            "visits": _sum(rows, "visits"),
            "not_visited_2w": _sum(rows, "not_visited_2w"),
            "tasks_opened": sum(r["tasks"]["opened"] for r in rows),
            "tasks_resolved": sum(r["tasks"]["resolved"] for r in rows),
            "tasks_overdue": sum(r["tasks"]["overdue"] for r in rows),
        }
        if all("lists" in r for r in rows):
            for kind in TASK_LISTS:
                for n in LIST_FIGURES:
                    entry[f"{kind}s_{n}"] = sum(r["lists"][kind][n] for r in rows)
        out.append(entry)
    return out


def _leader_trend(
    session: Session, report: Report, view: dict[str, Any], live: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each trend week's point: the kept grids in that week's stored report of the community
    (this report's own totals for its week); the live point for a week with none stored."""
    codes = {g["code"] for g in view["grids"]}
    weeks = [p["week"] for p in live]
    bodies = session.execute(
        select(Report.week, ReportFile.body)
        .join(ReportFile, ReportFile.report_id == Report.id)
        .where(
            Report.level == report.level,
            Report.code == report.code,
            Report.week.in_(weeks),
            Report.week != report.week,
            ReportFile.format == "json",
        )
    ).all()
    stored = {week: json.loads(body)["grids"] for week, body in bodies}
    stored[report.week] = view["grids"]
    trend = []
    for point in live:
        grids = stored.get(point["week"])
        if grids is None:
            trend.append(point)
            continue
        kept = [g for g in grids if g["code"] in codes]
        households, visited = _sum(kept, "households"), _sum(kept, "visited")
        trend.append(
            {
                "week": point["week"],
                "households": households,
                "visited": visited,
                "coverage": percent(visited, households),
            }
        )
    return trend


def backdate_register(session: Session, grid_codes: list[str], since: datetime) -> None:
    """Date the grids and households first registered after `since` back to `since`.

    For a register loaded in one go that describes how things already were (the demo district,
    an import of an existing register): their first boundary versions, registrations and the
    accounts' first holdings of them start at `since`, so past weeks' reports and plans include
    them. Rebuilds the aggregates (whole database).
    """
    params = {"codes": list(grid_codes), "since": since}
    grid_ids = "(SELECT id FROM grids WHERE code = ANY(CAST(:codes AS text[])))"
    session.execute(
        text(
            f"UPDATE grid_versions SET valid_from = :since WHERE grid_id IN {grid_ids} "
            "AND version = 1 AND valid_from > :since"
        ),
        params,
    )
    session.execute(
        text(
            f"UPDATE household_history hh SET valid_from = :since FROM households h "
            f"WHERE h.id = hh.household_id AND h.grid_id IN {grid_ids} "
            "AND hh.valid_from > :since AND h.created_at > :since AND NOT EXISTS ("
            "SELECT 1 FROM household_history e WHERE e.household_id = hh.household_id "
            "AND e.valid_from < hh.valid_from)"
        ),
        params,
    )
    session.execute(
        text(
            f"UPDATE households SET created_at = :since WHERE grid_id IN {grid_ids} "
            "AND created_at > :since"
        ),
        params,
    )
    # The accounts given those grids with the register held them since too (a past week's plan
    # is read on the grids held as it ended): the first holding of each, still open.
    session.execute(
        text(
            f"UPDATE grid_holdings gh SET started_at = :since WHERE gh.grid_id IN {grid_ids} "
            "AND gh.ended_at IS NULL AND gh.started_at > :since AND NOT EXISTS ("
            "SELECT 1 FROM grid_holdings e WHERE e.user_id = gh.user_id "
            "AND e.grid_id = gh.grid_id AND e.started_at < gh.started_at)"
        ),
        params,
    )
    # And their leaders led them since (a leader's past week is planned on the grids led).
    session.execute(
        text(
            f"UPDATE grid_leaderships gl SET started_at = :since WHERE gl.grid_id IN {grid_ids} "
            "AND gl.ended_at IS NULL AND gl.started_at > :since AND NOT EXISTS ("
            "SELECT 1 FROM grid_leaderships e WHERE e.grid_id = gl.grid_id "
            "AND e.started_at < gl.started_at)"
        ),
        params,
    )
    session.execute(text("SELECT gw_report_rebuild()"))
