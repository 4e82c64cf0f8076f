"""The Monday run catches up the weeks it missed: a push worker down across two Mondays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import undefer

from api.models import Delivery, Notification, Report, ReportFile
from api.services import grids as grid_service
from api.services import report_store, reports
from api.services.weeks import shift_week
from tests.api import test_reports as base
from tests.api.test_reports import RC, RC2
from tests.api.test_reports_files import MONDAY_0830, gridwork
from tests.factories import box, grid_feature

history = base.history  # W45, W46, W47 lived through; the grids exist since 2026-10-01 (W40)

# Monday 2026-11-09 08:30 Asia/Shanghai: W45's reports are due; the next Monday is W46's,
# MONDAY_0830 (2026-11-23) is W47's.
MONDAY_W45_DUE = datetime(2026, 11, 9, 0, 30, tzinfo=UTC)
MONDAY_W46_DUE = datetime(2026, 11, 16, 0, 30, tzinfo=UTC)


def _stored(session) -> list[tuple[str, str]]:
    return [
        tuple(row)
        for row in session.execute(
            select(Report.week, Report.code)
            .where(Report.level == "community")
            .order_by(Report.week, Report.code)
        )
    ]


def _worker_down_over_the_w46_monday(session) -> None:
    """The Monday run stored W45's reports, then the worker was down until after W47's Monday."""
    first = report_store.generate_due_reports(session, MONDAY_W45_DUE)
    assert (first.week, sorted(r.code for r in first.created)) == ("2026-W45", [RC, RC2])


def _json_file(session, week: str, code: str) -> dict:
    file = session.scalar(
        select(ReportFile)
        .options(undefer(ReportFile.body))
        .join(Report)
        .where(Report.week == week, Report.code == code, ReportFile.format == "json")
    )
    return json.loads(file.body)


def test_a_week_missed_while_the_worker_was_down_is_stored_by_the_next_tick(session, history):
    _worker_down_over_the_w46_monday(session)
    result = report_store.generate_due_reports(session, MONDAY_0830)
    assert _stored(session) == [
        (week, code) for week in ("2026-W45", "2026-W46", "2026-W47") for code in (RC, RC2)
    ]
    assert result.week == "2026-W47"
    assert [(r.week, r.code) for r in result.all_created] == [
        ("2026-W46", RC),
        ("2026-W46", RC2),
        ("2026-W47", RC),
        ("2026-W47", RC2),
    ]


def test_a_caught_up_report_holds_its_own_weeks_figures_as_made_on_its_monday(session, history):
    selection = reports.select_scope(session, None, "2026-W46", community=RC)
    on_its_monday = reports.coverage_report(session, selection, "2026-W46", now=MONDAY_W46_DUE)
    _worker_down_over_the_w46_monday(session)
    report_store.generate_due_reports(session, MONDAY_0830)
    caught_up = _json_file(session, "2026-W46", RC)
    assert caught_up.pop("generated_at") == MONDAY_0830.isoformat()  # when it was made
    on_its_monday.pop("generated_at")
    assert caught_up == on_its_monday
    row = session.scalar(select(Report).where(Report.week == "2026-W46", Report.code == RC))
    assert (row.households, row.visited) == (
        on_its_monday["totals"]["households"],
        on_its_monday["totals"]["visited"],
    )


def test_a_caught_up_report_is_announced_now_not_dated_back_to_its_monday(session, history):
    """A notification dated a week back would be dead as expired before its first send (a
    push lives a day) and would go to the phones signed in then, not now."""
    from tests.factories import make_device

    _worker_down_over_the_w46_monday(session)
    make_device(session, history.users["leader"], "tok-leader", now=MONDAY_0830)
    report_store.generate_due_reports(session, MONDAY_0830)
    note = session.scalar(
        select(Notification).where(
            Notification.kind == "report_ready",
            Notification.user_id == history.users["leader"].id,
            Notification.data["week"].astext == "2026-W46",
        )
    )
    assert note.created_at == MONDAY_0830
    delivery = session.scalar(select(Delivery).where(Delivery.notification_id == note.id))
    assert (delivery.state, delivery.next_attempt_at) == ("pending", MONDAY_0830)


def test_weeks_before_the_first_report_ever_stored_are_not_caught_up(session, history):
    """A new platform (or one whose register was loaded dated back) starts with last week's
    report: the grids existed since W40, yet no report of W40 to W46 is made up."""
    result = report_store.generate_due_reports(session, MONDAY_0830)
    assert [(r.week, r.code) for r in result.all_created] == [("2026-W47", RC), ("2026-W47", RC2)]


def test_catch_up_reaches_back_eight_weeks_at_most(session, history):
    """A worker down for months: the week due and the seven before it are stored; older ones
    are left to `report tick --now` (each run catches up the eight weeks up to its own)."""
    session.execute(text("UPDATE grid_versions SET valid_from = '2026-07-01T00:00:00+08:00'"))
    session.add(Report(week="2026-W30", level="community", code=RC, name="向阳社区"))
    session.flush()
    report_store.generate_due_reports(session, MONDAY_0830)
    weeks = [week for week, code in _stored(session) if code == RC]
    assert weeks == ["2026-W30"] + [shift_week("2026-W47", -i) for i in range(7, -1, -1)]
    assert report_store.CATCH_UP_WEEKS == 8


def test_a_tick_after_the_catch_up_stores_nothing_and_draws_no_report_ids(session, history):
    seq = "SELECT last_value FROM reports_id_seq"
    _worker_down_over_the_w46_monday(session)
    report_store.generate_due_reports(session, MONDAY_0830)
    drawn = session.scalar(text(seq))
    for minute in range(1, 4):
        again = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=minute))
        assert (again.all_created, again.skipped, again.failed, again.earlier) == ([], 2, [], [])
    assert session.scalar(text(seq)) == drawn


def _failures(session) -> list[tuple[str, int]]:
    return [
        tuple(row)
        for row in session.execute(
            text(
                "SELECT week, attempts FROM report_failures WHERE community_code = :c ORDER BY week"
            ),
            {"c": RC},
        )
    ]


def test_a_missed_week_that_fails_is_retried_with_its_own_backoff(session, history, monkeypatch):
    from api.services import report_render

    _worker_down_over_the_w46_monday(session)
    render, attempts = report_render.render, []

    def failing_for_rc(data, fmt, shapes=None):
        if data["code"] == RC and fmt == "json":
            attempts.append(data["week"])
            raise ValueError("the renderer broke")
        return render(data, fmt, shapes)

    monkeypatch.setattr(report_render, "render", failing_for_rc)
    first = report_store.generate_due_reports(session, MONDAY_0830)
    [w46] = first.earlier
    assert (w46.week, w46.failed, [r.code for r in w46.created]) == ("2026-W46", [RC], [RC2])
    assert first.failed == [RC]
    assert _failures(session) == [("2026-W46", 1), ("2026-W47", 1)]
    waiting = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(seconds=30))
    assert ([g.deferred for g in waiting.earlier], waiting.deferred) == ([[RC]], [RC])
    assert attempts == ["2026-W46", "2026-W47"]  # one a week, none while waiting
    monkeypatch.setattr(report_render, "render", render)
    again = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=1))
    assert [(r.week, r.code) for r in again.all_created] == [("2026-W46", RC), ("2026-W47", RC)]
    assert _failures(session) == []


def test_the_report_tick_command_names_the_weeks_it_caught_up(app, session, history):
    _worker_down_over_the_w46_monday(session)
    result = gridwork(app, "report", "tick", "--now", MONDAY_0830.isoformat())
    assert result.exit_code == 0, result.output
    assert "2026-W46: 2 stored (missed on its Monday)" in result.output
    assert "2026-W47: 2 stored, 0 already stored" in result.output


def test_the_push_workers_tick_stores_a_missed_week(app, session, history, monkeypatch):
    import logging

    from api import cli

    _worker_down_over_the_w46_monday(session)
    monkeypatch.setattr(cli, "database_now", lambda session: MONDAY_0830)
    session.commit()
    with app.app_context():
        cli._tick_reports(logging.getLogger("test"))
    session.expire_all()
    assert [w for w, _ in _stored(session)].count("2026-W46") == 2


def test_a_community_registered_after_a_monday_is_not_caught_up_for_that_week(session, history):
    """A week is missed only if the community was in the register when its report fell due. A
    community loaded between W46's Monday and W47's, its register dated back
    (`backdate_register`), gets W47's report, not W46's and the weeks before: its leaders
    would be announced weeks of nothing at once, which no run had missed."""
    _worker_down_over_the_w46_monday(session)
    code = "110106001003"
    grid = grid_service.create_grid(
        session,
        None,
        grid_feature(
            code + "001",
            box(116.630, 39.900, 116.640, 39.910),
            name="新网格",
            community_name="新社区",
        ),
    )
    session.flush()
    loaded = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # after W46's Monday, before W47's
    session.execute(
        text("UPDATE grids SET created_at = :t WHERE id = :g"), {"t": loaded, "g": grid.id}
    )
    report_store.backdate_register(session, [code + "001"], datetime(2026, 10, 1, tzinfo=UTC))
    result = report_store.generate_due_reports(session, MONDAY_0830)
    assert [(r.week, r.code) for r in result.all_created] == [
        ("2026-W46", RC),
        ("2026-W46", RC2),
        ("2026-W47", RC),
        ("2026-W47", RC2),
        ("2026-W47", code),
    ]
