"""Weekly coverage report: hand-computed figures on a small history, scope, bad input.

The fixture `history` lives through three past weeks (Asia/Shanghai):

- W45: grids R1 (h1 elderly, h2 living alone, h3 business, h4) and R2 (h5, h6 living alone,
  h7); every household but h7 visited once.
- W46: h1 visited in R1; R2's h5 only attempted (nobody home). On Wednesday R1 and R2 are
  redrawn and h4 passes from R1 to R2, where it is visited; h6 is visited twice.
- W47: on Wednesday h7 moves from R2 to R1. In R1 h1 and h2 are visited (h2 twice, its
  cadence), h7 after its move, and h1 again by a reliever from community RC2 on a relief shift;
  one visit is synced twice. In R2 h5 is visited and h4 only attempted. One task per grid.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from api.models import Community, District, Grid, Household, Leave, Roster, Shift, User, Visit
from api.services import grids as grid_service
from api.services import household_removal, ledger, reports
from api.services import households as household_service
from api.services.report_verify import AGGREGATES  # every trigger-kept table
from api.services.weeks import week_of
from tests.factories import (
    bearer,
    box,
    grid_feature,
    make_household,
    make_relief_shift,
    make_task_at,
    make_user,
    make_visit,
    visit_item,
)

SH = ZoneInfo("Asia/Shanghai")
RC = "110106001001"
RC2 = "110106001002"
R1, R2, S1 = RC + "001", RC + "002", RC2 + "001"
COVERAGE = "/api/v1/reports/coverage"


def at(day: int, hour: int = 10) -> datetime:
    """A November 2026 instant in Asia/Shanghai."""
    return datetime(2026, 11, day, hour, tzinfo=SH)


def effective(session, moment: datetime | None) -> None:
    """Date the household changes that follow (the history trigger reads it)."""
    session.execute(
        text("SELECT set_config('gridwork.effective_at', :v, true)"),
        {"v": moment.isoformat() if moment else ""},
    )


def redraw(session, r1_east: float, moment: datetime) -> None:
    """Move the R1 | R2 border to `r1_east`, dated `moment` (versions and households)."""
    effective(session, moment)
    grid_service.import_grids(
        session,
        None,
        {
            "type": "FeatureCollection",
            "features": [
                grid_feature(R1, box(116.600, 39.900, r1_east, 39.910), name="一网格"),
                grid_feature(R2, box(r1_east, 39.900, 116.620, 39.910), name="二网格"),
            ],
        },
    )
    session.execute(
        text("UPDATE grid_versions SET valid_to = :t WHERE valid_to > :t"), {"t": moment}
    )
    session.execute(
        text("UPDATE grid_versions SET valid_from = :t WHERE valid_to IS NULL AND valid_from > :t"),
        {"t": moment},
    )
    effective(session, None)
    session.flush()


@dataclass
class History:
    app: object
    grids: dict[str, Grid]
    users: dict[str, User]
    h: dict[str, Household]
    duplicate_id: uuid.UUID | None = None
    snapshots: dict[str, dict] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        with self.app.app_context():
            return bearer(self.users[name])


def _report(session, week: str, **level) -> dict:
    selection = reports.select_scope(session, None, week, **level)
    data = reports.coverage_report(session, selection, week)
    data.pop("generated_at")
    return data


@pytest.fixture()
def history(session, app) -> History:
    created = datetime(2026, 10, 1, tzinfo=SH)
    grids = {
        R1: grid_service.create_grid(
            session,
            None,
            grid_feature(
                R1,
                box(116.600, 39.900, 116.610, 39.910),
                name="一网格",
                community_name="向阳社区",
                street_name="东风街道",
                district_name="丰台区",
            ),
        ),
        R2: grid_service.create_grid(
            session, None, grid_feature(R2, box(116.610, 39.900, 116.620, 39.910), name="二网格")
        ),
        S1: grid_service.create_grid(
            session,
            None,
            grid_feature(
                S1, box(116.620, 39.900, 116.630, 39.910), name="东网格", community_name="朝霞社区"
            ),
        ),
    }
    # The grids were drawn long before the weeks reported on.
    session.execute(text("UPDATE grid_versions SET valid_from = :t"), {"t": created})
    session.execute(text("UPDATE grids SET created_at = :t"), {"t": created})
    session.add(District(code="110101", name="东城区"))
    u = {
        "w1": make_user(session, "rp_w1", "worker", grids=[R1], display_name="甲"),
        "w2": make_user(session, "rp_w2", "worker", grids=[R2], display_name="乙"),
        "wx": make_user(session, "rp_wx", "worker", grids=[S1], display_name="丙"),
        "leader": make_user(session, "rp_leader", "grid_leader", grids=[R1], display_name="丁"),
        "admin": make_user(session, "rp_admin", "community_admin", community=RC),
        "admin2": make_user(session, "rp_admin2", "community_admin", community=RC2),
        "viewer": make_user(session, "rp_viewer", "district_viewer", district="110106"),
        "other_viewer": make_user(session, "rp_viewer9", "district_viewer", district="110101"),
    }
    session.flush()
    # ... and held by their workers since (`grid_holdings`: whose a past week's grids were).
    session.execute(text("UPDATE grid_holdings SET started_at = :t"), {"t": created})

    def hh(lon, **fields):
        return make_household(session, lon, 39.905, created_at=created, **fields)

    h = {
        "h1": hh(116.602, tags=["elderly_80"]),
        "h2": hh(116.604, tags=["living_alone"]),
        "h3": hh(116.606, kind="business"),
        "h4": hh(116.608),
        "h5": hh(116.612),
        "h6": hh(116.615, tags=["living_alone"]),
        "h7": hh(116.618),
    }
    w1, w2, wx = u["w1"], u["w2"], u["wx"]
    # W45
    for name in ("h1", "h2", "h3", "h4"):
        make_visit(session, w1, h[name], at(3))
    for name in ("h5", "h6"):
        make_visit(session, w2, h[name], at(3))
    history = History(app, grids, u, h)
    history.snapshots["W45 before the redraw"] = _report(session, "2026-W45", community=RC)
    # W46
    make_visit(session, w1, h["h1"], at(9), grade="doubtful")
    make_visit(session, w2, h["h5"], at(9), outcome="nobody_home")
    redraw(session, 116.607, at(11))
    session.refresh(h["h4"])
    assert h["h4"].grid_id == grids[R2].id
    make_visit(session, w2, h["h4"], at(12))
    make_visit(session, w2, h["h6"], at(12))
    make_visit(session, w2, h["h6"], at(13))
    history.snapshots["W46 in W47"] = _report(session, "2026-W46", community=RC)
    # W47
    effective(session, at(18))
    household_service.update_household(session, None, h["h7"], {"lon": 116.601, "lat": 39.902})
    effective(session, None)
    roster = Roster(community_code=RC, week="2026-W47", status="published")
    session.add(roster)
    session.flush()
    session.add_all(
        [
            Shift(roster_id=roster.id, date=date(2026, 11, 16), post="A", worker_id=w1.id),
            Shift(
                roster_id=roster.id,
                date=date(2026, 11, 17),
                post="B",
                worker_id=w1.id,
                grid_id=grids[R1].id,
            ),
            Shift(
                roster_id=roster.id,
                date=date(2026, 11, 19),
                post="B",
                worker_id=w1.id,
                grid_id=grids[R1].id,
            ),
        ]
    )
    session.flush()
    make_relief_shift(session, wx, grids[R1], date(2026, 11, 19), relief_for=w1)
    first = make_visit(session, w1, h["h1"], at(17))
    make_visit(session, w1, h["h2"], at(17))
    make_visit(session, w1, h["h2"], at(19))
    make_visit(session, w1, h["h7"], at(19))
    make_visit(session, wx, h["h1"], at(19), relief=True, grade="suspect")
    make_visit(session, w2, h["h5"], at(17))
    make_visit(session, w2, h["h4"], at(17), outcome="nobody_home")
    # The phone syncs the first W47 visit again: the ingest's INSERT ... ON CONFLICT DO NOTHING.
    row = {c.name: getattr(first, c.key) for c in Visit.__table__.columns}
    session.execute(insert(Visit).values(**row).on_conflict_do_nothing(index_elements=["id"]))
    history.duplicate_id = first.id
    make_task_at(
        session,
        h["h1"],
        at(20),
        created_at=at(16),
        status="resolved",
        first_contact_due_at=at(16, 12),
        first_contact_at=at(16, 11),
        satisfaction="satisfied",
    )
    make_task_at(session, h["h5"], at(20), created_at=at(18))
    session.flush()
    return history


def grid_of(report: dict, code: str) -> dict:
    return next(g for g in report["grids"] if g["code"] == code)


# --- figures -------------------------------------------------------------------------------
# R1's tasks in W47: one 12345 ticket, answered in time, resolved, rated satisfied.
R1_TASKS = {
    "opened": 1,
    "resolved": 1,
    "overdue": 0,
    "response_rate": 100.0,
    "resolution_rate": 100.0,
    "satisfaction_rate": 100.0,
    "rated": 1,  # the callbacks the satisfaction rate rests on
}


def test_week_47_grid_figures_match_the_hand_count(client, history):
    r = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    )
    assert r.status_code == 200, r.json
    report = r.json
    assert [g["code"] for g in report["grids"]] == [R1, R2]
    r1 = grid_of(report, R1)
    assert r1["name"] == "一网格"
    # h1, h2, h3 (business) and h7 (moved in on Wednesday); h4 left in W46.
    assert r1["households"] == 4
    assert r1["households_by_kind"] == {"residence": 3, "business": 1}
    assert r1["visited"] == 3  # h1, h2, h7 (h1 twice, by two workers)
    assert r1["coverage"] == 75.0
    assert r1["visits"] == 5  # the replayed visit is not counted
    assert r1["visits_by_grade"] == {"ok": 4, "doubtful": 0, "suspect": 1}
    assert r1["relief_visits"] == 1
    assert r1["not_visited_2w"] == 1  # h3, last seen in W45
    assert r1["must_visit"] == [
        {"tag": "elderly_80", "due": 1, "done": 1, "rate": 100.0},
        {"tag": "living_alone", "due": 1, "done": 1, "rate": 100.0},
    ]
    assert r1["tasks"] == {**R1_TASKS, "hotline": R1_TASKS}  # a 12345 ticket
    r2 = grid_of(report, R2)
    assert r2["households"] == 3  # h4 (since W46), h5, h6; h7 left on Wednesday
    assert r2["visited"] == 1  # h5; h4 was only attempted
    assert r2["coverage"] == 33.3
    assert r2["visits"] == 2
    assert r2["not_visited_2w"] == 0  # h4 and h6 were seen in W46
    assert r2["must_visit"] == [{"tag": "living_alone", "due": 1, "done": 0, "rate": 0.0}]
    r2_tasks = {
        "opened": 1,
        "resolved": 0,
        "overdue": 1,
        "response_rate": 0.0,
        "resolution_rate": 0.0,
        "satisfaction_rate": None,
        "rated": 0,
    }
    assert r2["tasks"] == {**r2_tasks, "hotline": r2_tasks}


RATES = ("response_rate", "resolution_rate", "satisfaction_rate")


def test_the_hotlines_own_three_rates_stand_beside_those_of_every_source(client, session, history):
    """A community is judged by its 12345 tickets' three rates (三率): the report gives them per
    grid and in the totals (`tasks.hotline`), as GET /tasks/rates?source=hotline counts them,
    beside the rates of every source. A request taken at the window and not yet answered lowers
    the latter only."""
    make_task_at(session, history.h["h2"], at(20), created_at=at(17), source="window")
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    r1 = grid_of(report, R1)["tasks"]
    assert (r1["opened"], r1["response_rate"], r1["resolution_rate"]) == (2, 50.0, 50.0)
    assert r1["hotline"] == R1_TASKS
    totals = report["totals"]["tasks"]
    assert (totals["opened"], totals["hotline"]["opened"]) == (3, 2)

    def same_keys(figures):
        return {k: figures[k] for k in ("opened", "rated", *RATES)}

    def rates(**area):
        r = client.get(
            "/api/v1/tasks/rates",
            query_string={"week": "2026-W47", "source": "hotline", **area},
            headers=history.auth("admin"),
        )
        assert r.status_code == 200, r.json
        return same_keys(r.json)

    assert same_keys(r1["hotline"]) == rates(grid=R1)
    assert same_keys(grid_of(report, R2)["tasks"]["hotline"]) == rates(grid=R2)
    assert same_keys(totals["hotline"]) == rates(community=RC)


def test_a_ticket_transferred_to_another_community_is_not_in_the_grids_task_figures(
    client, session, history
):
    """Re-dispatched (改派) by the hotline while open: the ticket counts where it went."""
    make_task_at(session, history.h["h2"], at(18), created_at=at(17), status="transferred")
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    assert (grid_of(report, R1)["tasks"]["opened"], grid_of(report, R1)["tasks"]["overdue"]) == (
        1,
        0,
    )


def test_the_week_under_way_counts_overdue_only_the_deadlines_passed_so_far(session, history):
    """Read on Wednesday of W47, R1's task due on Thursday and R2's due on Friday are not late
    yet (judged at the week's end, both were); by Saturday both are. A finished week reads as
    its end saw it, whenever it is read."""
    make_task_at(session, history.h["h3"], at(19), created_at=at(16))
    selection = reports.select_scope(session, None, "2026-W47", community=RC)

    def overdue(now):
        report = reports.coverage_report(session, selection, "2026-W47", now=now)
        return grid_of(report, R1)["tasks"]["overdue"], grid_of(report, R2)["tasks"]["overdue"]

    assert overdue(at(18)) == (0, 0)
    assert overdue(at(21)) == (1, 1)
    assert overdue(at(30)) == (1, 1)


def test_a_past_weeks_overdue_task_stays_overdue_once_resolved_late(session, history):
    """R2's task, due on Friday of W47, was still open when the week ended: the Monday report
    counted it overdue. Resolved on Tuesday of W48, it vanished from W47's overdue count read
    afterwards (the status read was today's), so the stored report and the live one differed
    and a late resolution wiped out the lateness."""
    from api.models import Task

    selection = reports.select_scope(session, None, "2026-W47", community=RC)

    def r2_tasks(now):
        report = reports.coverage_report(session, selection, "2026-W47", now=now)
        return grid_of(report, R2)["tasks"]

    assert r2_tasks(at(23))["overdue"] == 1
    task = session.query(Task).filter_by(grid_id=history.grids[R2].id).one()
    task.status, task.resolved_at = "resolved", at(24)
    session.flush()
    assert (r2_tasks(at(30))["overdue"], r2_tasks(at(30))["resolved"]) == (1, 1)


def test_the_need_and_problem_lists_stand_beside_the_tasks_figures(client, session, history):
    """What visits put on the need list and the problem list (需求清单 / 问题清单), per grid, in
    the totals and per community: raised and done in the week, open as it closed; as GET
    /tasks/lists counts them. The tasks' own figures count them as tasks, as before."""

    def on_list(household, kind, created, **fields):
        make_task_at(session, household, created + timedelta(days=7), created_at=created,
                     source="visit", type="help", list_kind=kind, **fields)  # fmt: skip

    on_list(history.h["h1"], "need", at(17), status="resolved", resolved_at=at(18))
    on_list(history.h["h2"], "need", at(19))
    on_list(history.h["h2"], "problem", at(10))  # raised in W46, still open
    on_list(history.h["h5"], "problem", at(19), status="closed", resolved_at=at(23))  # in W48
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    r1, r2 = grid_of(report, R1), grid_of(report, R2)
    assert r1["lists"] == {
        "need": {"raised": 2, "done": 1, "open": 1},
        "problem": {"raised": 0, "done": 0, "open": 1},
    }
    assert r2["lists"] == {
        "need": {"raised": 0, "done": 0, "open": 0},
        "problem": {"raised": 1, "done": 0, "open": 1},  # done after the week: open then
    }
    assert report["totals"]["lists"] == {
        "need": {"raised": 2, "done": 1, "open": 1},
        "problem": {"raised": 1, "done": 0, "open": 2},
    }
    assert r1["tasks"]["opened"] == 3  # the ticket and the two needs raised this week
    [community] = report["communities"]
    assert (community["needs_open"], community["problems_raised"]) == (1, 1)
    lists = client.get(
        "/api/v1/tasks/lists",
        query_string={"week": "2026-W47", "community": RC},
        headers=history.auth("admin"),
    ).json
    assert {g["code"]: {"need": g["need"], "problem": g["problem"]} for g in lists["grids"]} == {
        R1: r1["lists"],
        R2: r2["lists"],
    }
    assert {"need": lists["need"], "problem": lists["problem"]} == report["totals"]["lists"]


def test_week_47_totals_and_communities(client, history):
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    t = report["totals"]
    assert (t["grids"], t["households"], t["visited"], t["coverage"]) == (2, 7, 4, 57.1)
    assert t["visits"] == 7 and t["not_visited_2w"] == 1
    assert t["must_visit"] == [
        {"tag": "elderly_80", "due": 1, "done": 1, "rate": 100.0},
        {"tag": "living_alone", "due": 2, "done": 1, "rate": 50.0},
    ]
    assert t["tasks"]["opened"] == 2 and t["tasks"]["resolution_rate"] == 50.0
    assert report["communities"] == [
        {
            "code": RC,
            "name": "向阳社区",
            "street_code": RC[:9],
            "street_name": "东风街道",
            "grids": 2,
            "households": 7,
            "visited": 4,
            "coverage": 57.1,
            "visits": 7,
            "not_visited_2w": 1,
            "tasks_opened": 2,
            "tasks_resolved": 1,
            "tasks_overdue": 1,
            **dict.fromkeys(
                [f"{k}s_{n}" for k in ("need", "problem") for n in ("raised", "done", "open")], 0
            ),
        }
    ]
    assert (report["level"], report["code"], report["name"]) == ("community", RC, "向阳社区")


def test_workers_count_visits_households_and_posts_including_the_reliever(client, history):
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    workers = {w["username"]: w for w in report["workers"]}
    assert set(workers) == {"rp_w1", "rp_w2", "rp_wx", "rp_leader"}
    assert {k: workers["rp_w1"][k] for k in ("visits", "households", "a_days", "b_days")} == {
        "visits": 4,
        "households": 3,
        "a_days": 1,
        "b_days": 2,
    }
    assert {k: workers["rp_wx"][k] for k in ("visits", "households", "a_days", "b_days")} == {
        "visits": 1,
        "households": 1,
        "a_days": 0,
        "b_days": 1,
    }
    assert (workers["rp_w2"]["visits"], workers["rp_w2"]["households"]) == (2, 1)
    assert workers["rp_leader"]["visits"] == 0


def _workers(client, history) -> dict[str, dict]:
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    return {w["username"]: w for w in report["workers"]}


def test_a_relievers_posts_count_only_the_shifts_here(client, session, history):
    """rp_wx works four B-posts at home (RC2) and relieves once in R1: the report on RC showed
    b_days 5, and so disclosed RC2's roster."""
    home = Roster(community_code=RC2, week="2026-W47", status="published")
    session.add(home)
    session.flush()
    wx, s1 = history.users["wx"], history.grids[S1]
    session.add_all(
        [
            Shift(
                roster_id=home.id, date=date(2026, 11, d), post="B", worker_id=wx.id, grid_id=s1.id
            )
            for d in (16, 17, 18, 20)
        ]
        + [Shift(roster_id=home.id, date=date(2026, 11, 21), post="A", worker_id=wx.id)]
    )
    session.commit()
    wx_row = _workers(client, history)["rp_wx"]
    assert (wx_row["a_days"], wx_row["b_days"]) == (0, 1)


def test_a_post_on_a_day_of_approved_leave_is_not_a_day_worked(client, session, history):
    """Leave approved for Thursday after the roster was published: the shift still names rp_w1
    (a reliever went instead), and the report credited rp_w1 with a day out in the grid. A
    leave only asked for changes nothing."""
    w1 = history.users["w1"]
    session.add_all(
        [
            Leave(
                worker_id=w1.id,
                start_date=date(2026, 11, 19),
                end_date=date(2026, 11, 20),
                status="approved",
            ),
            Leave(
                worker_id=w1.id,
                start_date=date(2026, 11, 16),
                end_date=date(2026, 11, 16),
                status="requested",
            ),
        ]
    )
    session.commit()
    row = _workers(client, history)["rp_w1"]
    assert (row["a_days"], row["b_days"]) == (1, 1)


def test_a_past_week_lists_the_workers_who_held_its_grids_then_not_those_given_them_since(
    client, session, history
):
    """A past week is reported on the assignments as they were: its worker list read who holds
    the grids now, so a worker given R1 after the week stood in W47's list with nothing done,
    and one who held R2 through it and was moved off since, nothing done either, was gone
    from the week they answered for."""
    make_user(session, "rp_new", "worker", grids=[R1], display_name="戊")
    gone = make_user(session, "rp_gone", "worker", grids=[R2], display_name="己")
    session.flush()
    session.execute(
        text("UPDATE grid_holdings SET started_at = :t WHERE user_id = :u"),
        {"t": datetime(2026, 10, 1, tzinfo=SH), "u": gone.id},
    )
    gone.grids = []  # moved off R2 now, after W47
    session.commit()
    workers = _workers(client, history)
    assert "rp_new" not in workers
    assert {k: workers["rp_gone"][k] for k in ("visits", "households", "a_days", "b_days")} == {
        "visits": 0,
        "households": 0,
        "a_days": 0,
        "b_days": 0,
    }
    this_week = client.get(
        COVERAGE,
        query_string={"week": week_of(datetime.now(SH)), "community": RC},
        headers=history.auth("admin"),
    ).json
    # This week both held a grid: the newcomer from today, rp_gone until today.
    assert {"rp_new", "rp_gone"} <= {w["username"] for w in this_week["workers"]}


def test_a_draft_rosters_shift_adds_no_worker_to_the_report(client, session, history):
    """W48's roster of RC is still a draft: a B-post in it for rp_wx (of RC2) put rp_wx on the
    week's worker list of RC, with 0 of everything."""
    draft = Roster(community_code=RC, week="2026-W48", status="draft")
    session.add(draft)
    session.flush()
    wx, r1 = history.users["wx"], history.grids[R1]
    session.add(
        Shift(roster_id=draft.id, date=date(2026, 11, 24), post="B", worker_id=wx.id, grid_id=r1.id)
    )
    session.commit()
    report = client.get(
        COVERAGE, query_string={"week": "2026-W48", "community": RC}, headers=history.auth("admin")
    ).json
    assert "rp_wx" not in {w["username"] for w in report["workers"]}


def test_trend_covers_eight_weeks_ending_with_the_week(client, history):
    report = client.get(
        COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=history.auth("admin")
    ).json
    assert [w["week"] for w in report["trend"]] == [f"2026-W{n}" for n in range(40, 48)]
    by_week = {w["week"]: w for w in report["trend"]}
    assert all(w["households"] == 7 for w in report["trend"])
    assert (by_week["2026-W45"]["visited"], by_week["2026-W45"]["coverage"]) == (6, 85.7)
    assert (by_week["2026-W46"]["visited"], by_week["2026-W46"]["coverage"]) == (3, 42.9)
    assert by_week["2026-W47"]["coverage"] == 57.1
    assert by_week["2026-W44"]["visited"] == 0


def test_week_46_reads_the_redraw_in_the_middle_of_it(session, history):
    report = _report(session, "2026-W46", community=RC)
    r1, r2 = grid_of(report, R1), grid_of(report, R2)
    assert (r1["households"], r1["visited"], r1["coverage"]) == (3, 1, 33.3)
    assert r1["visits_by_grade"]["doubtful"] == 1
    assert (r2["households"], r2["visited"], r2["coverage"]) == (4, 2, 50.0)
    assert r2["visits"] == 4  # h5 attempted, h4, h6 twice
    assert r2["must_visit"] == [{"tag": "living_alone", "due": 1, "done": 1, "rate": 100.0}]


def test_a_past_week_reads_the_same_after_later_moves_redraws_and_visits(session, history):
    before = history.snapshots["W45 before the redraw"]
    assert (grid_of(before, R1)["households"], grid_of(before, R2)["households"]) == (4, 3)
    assert _report(session, "2026-W45", community=RC) == before
    assert (
        _report(session, "2026-W46", community=RC)["grids"]
        == (history.snapshots["W46 in W47"]["grids"])
    )


def test_a_past_week_maps_the_boundaries_it_had(session, history):
    ids = [history.grids[R1].id, history.grids[R2].id]
    old = reports.grid_shapes(session, ids, "2026-W45")
    new = reports.grid_shapes(session, ids, "2026-W47")
    assert round(shape(old[R1]).bounds[2], 3) == 116.610
    assert round(shape(new[R1]).bounds[2], 3) == 116.607


def test_a_grid_drawn_after_the_week_is_not_in_it(session, history):
    grid_service.create_grid(
        session, None, grid_feature(RC + "003", box(116.600, 39.910, 116.610, 39.920))
    )
    assert [g["code"] for g in _report(session, "2026-W47", community=RC)["grids"]] == [R1, R2]


# --- the aggregates stay exact ---------------------------------------------------------------


def _aggregates(session) -> dict[str, list]:
    out = {}
    for table in AGGREGATES:
        rows = session.execute(text(f"SELECT * FROM {table}")).all()
        out[table] = sorted(tuple(r) for r in rows)
    return out


def test_the_aggregates_equal_a_rebuild_from_raw_visits(session, history):
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


def _elderly_in_w48(session, history) -> dict:
    r1 = grid_of(_report(session, "2026-W48", community=RC), R1)
    return next(m for m in r1["must_visit"] if m["tag"] == "elderly_80")


def test_a_tag_raised_mid_week_counts_a_must_visit_household_done_once(session, history):
    """h1 (elderly_80, once a week) is visited Monday, tagged living alone on Tuesday (twice a
    week now) and visited Wednesday: it was counted done again (2 of 1, 200 %)."""
    h1, w1 = history.h["h1"], history.users["w1"]
    make_visit(session, w1, h1, at(23))
    effective(session, at(24))
    household_service.update_household(session, None, h1, {"tags": ["elderly_80", "living_alone"]})
    effective(session, None)
    make_visit(session, w1, h1, at(25))
    assert _elderly_in_w48(session, history) == {
        "tag": "elderly_80",
        "due": 1,
        "done": 1,
        "rate": 100.0,
    }
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


def test_a_visit_synced_after_a_tag_change_counts_under_the_tags_it_had_then(session, history):
    """h1 (elderly_80, once a week) is visited Monday; on Tuesday it is tagged living alone too
    (twice a week now); Monday's visit is synced on Wednesday. The trigger read today's tags
    (1 of 2 visits: not done), the rebuild the tags at the visit (1 of 1: done)."""
    h1, w1 = history.h["h1"], history.users["w1"]
    effective(session, at(24))
    household_service.update_household(session, None, h1, {"tags": ["elderly_80", "living_alone"]})
    effective(session, None)
    make_visit(session, w1, h1, at(23))
    assert _elderly_in_w48(session, history)["done"] == 1
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


def test_a_visit_synced_late_before_a_stored_one_counts_as_the_rebuild_replays_them(
    session, history
):
    """h1 (elderly_80) is tagged living alone too on Tuesday (twice a week) and visited
    Wednesday (1 of 2: not done); its tags are cleared on Thursday; Monday's visit is synced
    after that. Replayed in order, Monday's visit is done under elderly_80 (1 of 1) and makes
    Wednesday's the second, done under living_alone (2 of 2). The trigger read today's tags
    (none: nothing done); reading only the late visit's own tags would miss living_alone."""
    h1, w1 = history.h["h1"], history.users["w1"]
    effective(session, at(24))
    household_service.update_household(session, None, h1, {"tags": ["elderly_80", "living_alone"]})
    make_visit(session, w1, h1, at(25))
    effective(session, at(26))
    household_service.update_household(session, None, h1, {"tags": []})
    effective(session, None)
    make_visit(session, w1, h1, at(23))
    counted = session.scalar(
        text(
            "SELECT counted FROM report_household_weeks "
            "WHERE household_id = :h AND week = '2026-W48'"
        ),
        {"h": h1.id},
    )
    assert counted == ["elderly_80", "living_alone"]
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


def test_a_cadence_raised_mid_week_counts_a_must_visit_household_done_once(session, history):
    """h1 (elderly_80, once a week) is visited Monday; on Tuesday the community asks two visits
    a week of everyone, which applies to the whole week (1 of 2: not done); visited Wednesday,
    it is done once. The earlier weeks keep the cadence they had, so a rebuild equals the kept
    aggregates in every week."""
    h1, w1 = history.h["h1"], history.users["w1"]
    make_visit(session, w1, h1, at(23))
    assert _elderly_in_w48(session, history)["done"] == 1
    ledger.set_community_cadence(
        session,
        session.get(Community, RC),
        {"default": 2, "tags": {"living_alone": 2}},
        at=at(24),
    )
    assert _elderly_in_w48(session, history)["done"] == 0
    make_visit(session, w1, h1, at(25))
    assert _elderly_in_w48(session, history)["done"] == 1
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


# --- a care tag removed: counted as the rebuild counts it, replayed only while it may count ---


def _replays(session) -> int:
    """Household-weeks the visits trigger has replayed in this transaction so far: it reads the
    cadence (`gw_cadence_of`) once for each household-week it replays, and for no other."""
    session.execute(text("SET LOCAL track_functions = 'all'"))
    calls = session.scalar(
        text("SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'gw_cadence_of'")
    )
    return calls or 0


def _counted(session, household: Household, week: str) -> list[str]:
    return session.scalar(
        text("SELECT counted FROM report_household_weeks WHERE household_id = :h AND week = :w"),
        {"h": household.id, "w": week},
    )


def _living_alone(session, grid: str, week: str) -> dict:
    report = grid_of(_report(session, week, community=RC), grid)
    return next(m for m in report["must_visit"] if m["tag"] == "living_alone")


def _assert_kept_equals_rebuild(session) -> None:
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


def test_a_household_whose_tag_was_removed_is_not_replayed_in_the_weeks_after(session, history):
    """h2 stops living alone on the Sunday that ends W47. Its history keeps the tag, but no visit
    of W48 or W49 carries it, so replaying those weeks could count nothing: each later visit is
    counted without a replay (0017 to 0020 replayed the week at every visit, forever). h1, still
    elderly, is replayed at its first visit of the week, which may count it done."""
    h1, h2, w1 = history.h["h1"], history.h["h2"], history.users["w1"]
    effective(session, at(22, 20))
    household_service.update_household(session, None, h2, {"tags": []})
    effective(session, None)
    for moment in (at(23), at(25), at(27), at(30)):
        before = _replays(session)
        make_visit(session, w1, h2, moment)
        assert _replays(session) == before
    before = _replays(session)
    make_visit(session, w1, h1, at(24))
    assert _replays(session) == before + 1
    assert _counted(session, h2, "2026-W48") == []
    assert _counted(session, h2, "2026-W49") == []
    assert _counted(session, h1, "2026-W48") == ["elderly_80"]
    _assert_kept_equals_rebuild(session)


def test_a_tag_removed_mid_week_counts_a_late_visit_from_before_the_removal(session, history):
    """h6 (living alone, twice a week) is visited Monday (1 of 2); on Tuesday it stops living
    alone; Wednesday's visit carries no tag. A second Monday visit synced after that carries
    the tag and is its second: done, as the rebuild replays it. So the week a tag was removed
    in is still replayed."""
    h6, w2 = history.h["h6"], history.users["w2"]
    make_visit(session, w2, h6, at(23))
    effective(session, at(24))
    household_service.update_household(session, None, h6, {"tags": []})
    effective(session, None)
    make_visit(session, w2, h6, at(25))
    assert _counted(session, h6, "2026-W48") == []
    make_visit(session, w2, h6, at(23, 15))
    assert _counted(session, h6, "2026-W48") == ["living_alone"]
    _assert_kept_equals_rebuild(session)


def test_a_tag_removed_and_added_again_mid_week_counts_the_visits_that_carried_it(session, history):
    """h6 is visited Monday as living alone (1 of 2), Wednesday without the tag (removed on
    Tuesday) and Friday with it again (added back on Thursday): Friday's is its third visit
    that found someone, and it carries the tag, so h6 is done once. The next week it is
    counted again under the tag it has."""
    h6, w2 = history.h["h6"], history.users["w2"]
    make_visit(session, w2, h6, at(23))
    effective(session, at(24))
    household_service.update_household(session, None, h6, {"tags": []})
    effective(session, None)
    make_visit(session, w2, h6, at(25))
    effective(session, at(26))
    household_service.update_household(session, None, h6, {"tags": ["living_alone"]})
    effective(session, None)
    make_visit(session, w2, h6, at(27))
    assert _counted(session, h6, "2026-W48") == ["living_alone"]
    assert _living_alone(session, R2, "2026-W48")["done"] == 1
    make_visit(session, w2, h6, at(30))
    make_visit(session, w2, h6, at(30, 15))
    assert _counted(session, h6, "2026-W49") == ["living_alone"]
    _assert_kept_equals_rebuild(session)


def test_a_cadence_changed_mid_week_after_a_tag_removal_recounts_as_a_rebuild(session, history):
    """h6 is visited Monday as living alone (1 of 2) and stops living alone on Tuesday. On
    Wednesday the community asks one visit a week of those living alone: the week is recounted
    and Monday's visit, which carried the tag, is enough. On Friday it asks three: the week is
    recounted again, and h6 is not done. Visits that follow carry no tag and change nothing."""
    h6, w2 = history.h["h6"], history.users["w2"]
    community = session.get(Community, RC)
    make_visit(session, w2, h6, at(23))
    effective(session, at(24))
    household_service.update_household(session, None, h6, {"tags": []})
    effective(session, None)
    ledger.set_community_cadence(
        session, community, {"default": 1, "tags": {"living_alone": 1}}, at=at(25)
    )
    assert _counted(session, h6, "2026-W48") == ["living_alone"]
    make_visit(session, w2, h6, at(26))
    assert _counted(session, h6, "2026-W48") == ["living_alone"]
    _assert_kept_equals_rebuild(session)
    ledger.set_community_cadence(
        session, community, {"default": 1, "tags": {"living_alone": 3}}, at=at(27)
    )
    make_visit(session, w2, h6, at(28))
    assert _counted(session, h6, "2026-W48") == []
    make_visit(session, w2, h6, at(30))
    _assert_kept_equals_rebuild(session)


# --- a tag change dated before visits already stored: their weeks are counted again ---------
# A tag change takes effect at `gridwork.effective_at` when an import or a test sets it, else at
# the transaction's time; a visit is stored with the time the phone recorded, which may be later
# than that (a phone whose clock runs ahead). Visits stored by then, dated at or after the change,
# now carry the new tags in a rebuild's replay: the weeks they fall in are counted again.


def test_a_tag_removed_with_a_past_date_uncounts_the_week_it_reaches_back_into(session, history):
    """h6 (living alone, twice a week) is visited Monday and Wednesday of W48: done. A change
    dated Tuesday takes its tag away: Wednesday's visit carries none, so only 1 of 2 visits
    carried it and h6 is not done that week, as a rebuild finds."""
    h6, w2 = history.h["h6"], history.users["w2"]
    make_visit(session, w2, h6, at(23))
    make_visit(session, w2, h6, at(25))
    assert _counted(session, h6, "2026-W48") == ["living_alone"]
    effective(session, at(24))
    household_service.update_household(session, None, h6, {"tags": []})
    effective(session, None)
    assert _counted(session, h6, "2026-W48") == []
    # Nobody in R2 is due (h6 no longer lives alone by the end of W48) nor done any more.
    assert grid_of(_report(session, "2026-W48", community=RC), R2)["must_visit"] == []
    _assert_kept_equals_rebuild(session)


def test_a_tag_given_with_a_past_date_counts_the_weeks_it_reaches_back_into(session, history):
    """h5 (no tag) was found at home in W47 and W48. Tagged elderly (once a week) with a
    change dated Tuesday of W46, whose only visit found nobody home: it is done in W47 and
    W48, not in W46, and earlier weeks are untouched."""
    h5, w2 = history.h["h5"], history.users["w2"]
    make_visit(session, w2, h5, at(23))
    effective(session, at(10))
    household_service.update_household(session, None, h5, {"tags": ["elderly_80"]})
    effective(session, None)
    assert _counted(session, h5, "2026-W45") == []
    assert _counted(session, h5, "2026-W46") == []
    assert _counted(session, h5, "2026-W47") == ["elderly_80"]
    assert _counted(session, h5, "2026-W48") == ["elderly_80"]
    r2 = grid_of(_report(session, "2026-W47", community=RC), R2)
    assert {"tag": "elderly_80", "due": 1, "done": 1, "rate": 100.0} in r2["must_visit"]
    _assert_kept_equals_rebuild(session)


def test_a_tag_changed_through_the_api_recounts_a_visit_dated_after_the_change(
    client, session, history
):
    """A phone whose clock runs an hour ahead records h1 (elderly, once a week) visited: done.
    The community admin then takes h1's tag away (now): the stored visit, dated after the
    change, carries no tag any more, so h1 is not done that week, as a rebuild finds."""
    h1, w1 = history.h["h1"], history.users["w1"]
    ahead = datetime.now(SH) + timedelta(hours=1)
    make_visit(session, w1, h1, ahead)
    week = week_of(ahead)
    assert _counted(session, h1, week) == ["elderly_80"]
    response = client.patch(
        f"/api/v1/households/{h1.id}", json={"tags": []}, headers=history.auth("admin")
    )
    assert response.status_code == 200, response.json
    assert _counted(session, h1, week) == []
    _assert_kept_equals_rebuild(session)


def test_a_tag_changed_now_recounts_a_visit_dated_before_the_household_was_registered(
    session, history
):
    """A phone whose clock runs days behind records h4 (no tag) visited before its registration
    (1 October): no history row covers that visit, so it carries the household's tags now.
    Tagged elderly today, h4 is done that week, as a rebuild finds."""
    h4, w1 = history.h["h4"], history.users["w1"]
    make_visit(session, w1, h4, datetime(2026, 9, 29, 10, tzinfo=SH))
    assert _counted(session, h4, "2026-W40") == []
    household_service.update_household(session, None, h4, {"tags": ["elderly_80"]})
    assert _counted(session, h4, "2026-W40") == ["elderly_80"]
    _assert_kept_equals_rebuild(session)


def test_a_tag_changed_now_recounts_nothing_when_no_visit_is_dated_after_it(session, history):
    """The usual change: every stored visit is older than it, so no week is counted again and
    the trigger's recount finds nothing to do (nothing is replayed: the cadence is not read)."""
    h6 = history.h["h6"]
    before = _replays(session)
    household_service.update_household(session, None, h6, {"tags": ["living_alone", "migrant"]})
    assert _replays(session) == before
    _assert_kept_equals_rebuild(session)


def test_replayed_batches_leave_the_aggregates_exact(client, world, session):
    from tests.factories import A1, visit_item

    households = world.households[A1]
    items = [visit_item(households[0]), visit_item(households[1]), visit_item(households[0])]
    for _ in range(2):
        r = client.post(
            "/api/v1/visits/batch", json={"visits": items}, headers=world.auth("worker_a1")
        )
        assert r.status_code == 200, r.json
    row = session.execute(
        text("SELECT visits, visited FROM report_grid_weeks WHERE grid_id = :g AND visits > 0"),
        {"g": world.grids[A1].id},
    ).one()
    assert tuple(row) == (3, 2)
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept


# --- scope -----------------------------------------------------------------------------------
def _get(client, history, who, **query):
    return client.get(
        COVERAGE, query_string={"week": "2026-W47", **query}, headers=history.auth(who)
    )


def test_a_grid_leader_sees_only_their_grids(client, history):
    for query in ({}, {"community": RC}):
        r = _get(client, history, "leader", **query)
        assert r.status_code == 200
        assert r.json["level"] == "grids"
        assert [g["code"] for g in r.json["grids"]] == [R1]


def test_a_grid_leader_may_not_ask_for_a_district_or_another_community(client, history):
    assert _get(client, history, "leader", district="110106").status_code == 403
    r = _get(client, history, "leader", community=RC2)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_a_community_admin_sees_their_community_only(client, history):
    assert [g["code"] for g in _get(client, history, "admin").json["grids"]] == [R1, R2]
    assert _get(client, history, "admin", community=RC2).status_code == 404
    assert _get(client, history, "admin", street="110106001").status_code == 403


def test_a_district_viewer_reads_the_district_its_streets_and_communities(client, history):
    r = _get(client, history, "viewer", district="110106")
    assert [g["code"] for g in r.json["grids"]] == [R1, R2, S1]
    assert r.json["level"] == "district"
    assert [c["code"] for c in r.json["communities"]] == [RC, RC2]
    assert _get(client, history, "viewer", street="110106001").json["level"] == "street"
    assert [g["code"] for g in _get(client, history, "viewer").json["grids"]] == [R1, R2, S1]
    assert _get(client, history, "other_viewer", district="110106").status_code == 404
    assert _get(client, history, "other_viewer", community=RC).status_code == 404


def test_a_district_reports_communities_carry_their_names_and_their_streets(client, history):
    """What a viewer chooses from is named: each community and the street it lies in."""
    communities = _get(client, history, "viewer", district="110106").json["communities"]
    assert [(c["code"], c["name"], c["street_code"], c["street_name"]) for c in communities] == [
        (RC, "向阳社区", "110106001", "东风街道"),
        (RC2, "朝霞社区", "110106001", "东风街道"),
    ]


def test_a_worker_gets_no_report(client, history):
    assert _get(client, history, "w1").status_code == 403


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"week": "2026-W60", "community": RC}, 422),
        ({"week": "9999-W52", "community": RC}, 422),
        ({"week": "0001-W01", "community": RC}, 422),
        ({"week": "47", "community": RC}, 422),
        ({"community": RC}, 422),
        ({"week": "2026-W47", "community": "12345"}, 422),
        ({"week": "2026-W47", "community": RC, "district": "110106"}, 422),
        ({"week": "2026-W47", "community": "110106009009"}, 404),
        ({"week": "2026-W47", "community": RC, "format": "docx"}, 406),
    ],
)
def test_bad_input_is_a_problem(client, history, query, status):
    r = client.get(COVERAGE, query_string=query, headers=history.auth("admin"))
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json["status"] == status


def test_an_accept_header_nothing_is_offered_for_is_a_406(client, history):
    headers = {**history.auth("admin"), "Accept": "image/png"}
    r = client.get(COVERAGE, query_string={"week": "2026-W47", "community": RC}, headers=headers)
    assert r.status_code == 406
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_a_report_needs_a_token(client, history):
    assert client.get(COVERAGE, query_string={"week": "2026-W47"}).status_code == 401


# --- a week a household moved or a grid was redrawn: each grid counts its own households -----
# A grid's `visited` counts the households that end the week in it (its `households`) and were
# found at home that week, wherever the visit was recorded; a care tag's `done` counts only the
# households due under it there (the tag and the grid as the week ends).


def _w48(session) -> dict:
    return _report(session, "2026-W48", community=RC)


def _assert_no_grid_reads_above_its_households(report: dict) -> None:
    for g in [*report["grids"], report["totals"]]:
        assert g["visited"] <= g["households"], g
        assert all(m["done"] <= m["due"] for m in g["must_visit"]), g


def test_a_household_that_moves_after_its_visit_counts_in_the_grid_it_ends_the_week_in(
    session, history
):
    """W48: R2's h4, h5 and h6 are all found at home on Monday; on Tuesday h5 moves to R1. R2
    ends the week with h4 and h6, both visited (100 %, not 3 of 2); R1 with h1, h2, h3, h7 and
    h5, of which only h5 was visited (in R2)."""
    w2 = history.users["w2"]
    for name in ("h4", "h5", "h6"):
        make_visit(session, w2, history.h[name], at(23))
    effective(session, at(24))
    household_service.update_household(
        session, None, history.h["h5"], {"lon": 116.603, "lat": 39.902}
    )
    effective(session, None)
    report = _w48(session)
    r1, r2 = grid_of(report, R1), grid_of(report, R2)
    assert (r2["households"], r2["visited"], r2["coverage"]) == (2, 2, 100.0)
    assert (r1["households"], r1["visited"], r1["coverage"]) == (5, 1, 20.0)
    assert (r2["visits"], r1["visits"]) == (3, 0)  # visits stay where they were made
    assert (report["totals"]["households"], report["totals"]["visited"]) == (7, 3)
    assert report["trend"][-1]["visited"] == 3
    # Seen this week, so not among those unseen for two weeks wherever it ends.
    assert r1["not_visited_2w"] == 1  # h3 (last seen in W45); h5 was seen this week, in R2
    assert r2["not_visited_2w"] == 0
    _assert_no_grid_reads_above_its_households(report)


def test_a_trend_week_counts_a_household_that_left_the_selection_after_its_visit_as_its_report(
    session, history
):
    """R1's h3 is found at home on Tuesday of W45 and moves to RC2's S1 on Wednesday: W45's own
    report of RC no longer counts it (5 of the 6 it had), and W48's trend, three weeks on,
    reads the same for W45 (not the 6 of the visits where they were recorded)."""
    effective(session, at(4))
    household_service.update_household(
        session, None, history.h["h3"], {"lon": 116.626, "lat": 39.903}
    )
    effective(session, None)
    assert history.h["h3"].grid_id == history.grids[S1].id
    own = _report(session, "2026-W45", community=RC)["totals"]
    assert (own["households"], own["visited"]) == (6, 5)
    trend = {w["week"]: w for w in _w48(session)["trend"]}
    assert (trend["2026-W45"]["households"], trend["2026-W45"]["visited"]) == (6, 5)
    assert _report(session, "2026-W45", community=RC2)["totals"]["visited"] == 1
    other = {w["week"]: w for w in _report(session, "2026-W48", community=RC2)["trend"]}
    assert other["2026-W45"]["visited"] == 1  # where it ended the week


def test_a_trend_week_counts_once_a_household_found_in_two_grids_of_the_selection(session, history):
    """R1's h3 is found at home on Tuesday of W45, moves to R2 on Wednesday and is found there
    again on Thursday: each grid's aggregate counts it, the community counts it once, in its
    own W45 report and in W48's trend."""
    effective(session, at(4))
    household_service.update_household(
        session, None, history.h["h3"], {"lon": 116.613, "lat": 39.903}
    )
    effective(session, None)
    make_visit(session, history.users["w2"], history.h["h3"], at(5))
    own = _report(session, "2026-W45", community=RC)["totals"]
    assert own["visited"] == 6
    trend = {w["week"]: w for w in _w48(session)["trend"]}
    assert trend["2026-W45"]["visited"] == 6


def _remove(session, household, effective_date: date) -> None:
    """Take `household` out of the register as the grid's leader would, on `effective_date`."""
    household_removal.remove_household(
        session, None, household, reason="moved_out", now=at(30), effective_date=effective_date
    )


def _trend_and_own_reports(session, week: str, **level) -> tuple[dict, dict]:
    """(week -> its trend point in `week`'s report, week -> that week's own totals), each as
    (households, visited, coverage)."""
    trend = {
        w["week"]: (w["households"], w["visited"], w["coverage"])
        for w in _report(session, week, **level)["trend"]
    }
    own = {}
    for w in trend:
        totals = _report(session, w, **level)["totals"]
        own[w] = (totals["households"], totals["visited"], totals["coverage"])
    return trend, own


def test_a_trend_week_counts_a_household_removed_after_its_visit_as_its_report(session, history):
    """R1's h3 is found at home on Tuesday of W45 (a visit finding it moved out counts as
    visited) and the leader takes it out of the register as of Wednesday: W45's own report no
    longer counts it (5 of 6), and every later report's trend reads the same for W45 (not the 6
    of the visits where they were recorded)."""
    _remove(session, history.h["h3"], date(2026, 11, 4))
    own = _report(session, "2026-W45", community=RC)["totals"]
    assert (own["households"], own["visited"], own["coverage"]) == (6, 5, 83.3)
    for week in ("2026-W46", "2026-W47", "2026-W48"):
        trend = {w["week"]: w for w in _report(session, week, community=RC)["trend"]}
        point = trend["2026-W45"]
        assert (point["households"], point["visited"], point["coverage"]) == (6, 5, 83.3), week
    for level in ({"community": RC}, {"district": "110106"}):
        trend, own = _trend_and_own_reports(session, "2026-W48", **level)
        assert trend == own, level


def test_a_trend_week_counts_a_household_moved_inside_the_selection_then_removed_nowhere(
    session, history
):
    """R1's h3 is found at home on Tuesday of W45, moves to R2 on Wednesday, is found there on
    Thursday and is taken out of the register as of Friday: it ends W45 in no grid, so neither
    W45's own report nor W48's trend counts it (not once for the two grids it was found in)."""
    effective(session, at(4))
    household_service.update_household(
        session, None, history.h["h3"], {"lon": 116.613, "lat": 39.903}
    )
    effective(session, None)
    make_visit(session, history.users["w2"], history.h["h3"], at(5))
    _remove(session, history.h["h3"], date(2026, 11, 6))
    own = _report(session, "2026-W45", community=RC)["totals"]
    assert (own["households"], own["visited"]) == (6, 5)
    trend, own = _trend_and_own_reports(session, "2026-W48", community=RC)
    assert trend == own
    assert trend["2026-W45"][:2] == (6, 5)


def test_a_removal_undone_gives_the_trend_its_weeks_back_as_they_were(session, history):
    """h3 is taken out of the register as of Wednesday of W45, then the removal is undone: as
    if it had never left, W45 reads 6 of 7 again, in its own report and in W48's trend."""
    before = _report(session, "2026-W48", community=RC)["trend"]
    _remove(session, history.h["h3"], date(2026, 11, 4))
    household_removal.restore_household(session, None, history.h["h3"])
    assert _report(session, "2026-W48", community=RC)["trend"] == before
    trend, own = _trend_and_own_reports(session, "2026-W48", community=RC)
    assert trend == own
    assert trend["2026-W45"] == (7, 6, 85.7)


def test_a_trend_week_counts_once_a_household_whose_late_visit_landed_in_its_new_grid(
    session, client, history
):
    """One worker holds R1 and R2. R1's h3 is found at home on Tuesday of W47 (synced at once,
    in R1); in W48 it moves to R2; then the phone that found it again on Wednesday of W47,
    offline until now, syncs: the ingest records that visit in h3's grid now, R2. W47's own
    report counts h3 once, in R1 where it ended W47 (5 of 7), and so does every later report's
    trend. Before, W50's trend counted it in both grids (6 of 7): it corrected a household
    that moved inside the selection only in the week of its move, so a household found in two
    grids of a week before it (and one of W47 alone could read 2 of 1, 200 %)."""
    both = make_user(session, "rp_w12", "worker", grids=[R1, R2], display_name="戊")
    session.flush()
    session.execute(
        text("UPDATE grid_holdings SET started_at = :t WHERE user_id = :u"),
        {"t": datetime(2026, 10, 1, tzinfo=SH), "u": both.id},
    )
    h3 = history.h["h3"]
    make_visit(session, both, h3, at(17))
    effective(session, at(24))
    household_service.update_household(session, None, h3, {"lon": 116.613, "lat": 39.903})
    effective(session, None)
    assert h3.grid_id == history.grids[R2].id
    late = visit_item(h3, at=at(18), lon=116.606, lat=39.905)
    with history.app.app_context():
        auth = bearer(both)
    r = client.post("/api/v1/visits/batch", json={"visits": [late]}, headers=auth)
    assert r.status_code == 200, r.json
    assert r.json["results"][0]["status"] == "created", r.json
    own = _report(session, "2026-W47", community=RC)["totals"]
    assert (own["households"], own["visited"], own["coverage"]) == (7, 5, 71.4)
    for week in ("2026-W48", "2026-W49", "2026-W50"):
        trend = {w["week"]: w for w in _report(session, week, community=RC)["trend"]}
        point = trend["2026-W47"]
        assert (point["households"], point["visited"], point["coverage"]) == (7, 5, 71.4), week
    for level in ({"community": RC}, {"district": "110106"}):
        trend, own = _trend_and_own_reports(session, "2026-W50", **level)
        assert trend == own, level


def test_a_trend_week_counts_the_grids_of_that_week_after_a_merge(session, client, history):
    """In W48 R1 is redrawn over all of R2's households and R2, left empty, is retired. W45's
    own report still reads both grids (7 households, 6 visited), and so must every later
    report's trend for W45, W46 and W47, weeks R2 was on the map. Before, W49's trend read, for
    all its eight weeks, the grids of W49 alone: W45 was R1's 4 of 4 (100 %), not 6 of 7."""
    before = _report(session, "2026-W49", community=RC)["trend"]
    redraw(session, 116.619, at(25))
    for h in history.h.values():
        session.refresh(h)
    assert {h.grid_id for h in history.h.values()} == {history.grids[R1].id}
    # Its open task (h5's, W47) goes with its household first, as retiring asks.
    session.execute(
        text("UPDATE tasks SET grid_id = :r1 WHERE grid_id = :r2"),
        {"r1": history.grids[R1].id, "r2": history.grids[R2].id},
    )
    grid_service.retire_grid(session, None, history.grids[R2])
    session.execute(
        text("UPDATE grid_versions SET valid_to = :t WHERE grid_id = :g AND valid_to > :t"),
        {"t": at(25, 12), "g": history.grids[R2].id},
    )
    session.flush()
    own = _report(session, "2026-W45", community=RC)["totals"]
    assert (own["grids"], own["households"], own["visited"], own["coverage"]) == (2, 7, 6, 85.7)
    assert [g["code"] for g in _report(session, "2026-W49", community=RC)["grids"]] == [R1]
    after = _report(session, "2026-W49", community=RC)["trend"]
    assert after == before  # every week as it was before the merge
    for level in ({"community": RC}, {"street": "110106001"}, {"district": "110106"}):
        trend, own = _trend_and_own_reports(session, "2026-W49", **level)
        assert trend == own, level
    assert trend["2026-W45"] == (7, 6, 85.7)
    # R1's leader reads the grids they lead now, each week as that week's report reads them.
    points = _get(client, history, "leader", week="2026-W49").json["trend"]
    for point in points:
        totals = _get(client, history, "leader", week=point["week"]).json["totals"]
        assert (point["households"], point["visited"]) == (totals["households"], totals["visited"])


def test_a_grid_redrawn_mid_week_counts_each_visited_household_in_its_new_grid(session, history):
    """W48: R1's h1, h2, h3 and h7 are found at home on Monday; on Wednesday the border moves
    west of h3, which passes to R2. R1 ends the week with h1, h2 and h7, all visited (100 %,
    not 4 of 3); R2 with h3, h4, h5 and h6, of which h3 was visited (in R1)."""
    w1 = history.users["w1"]
    for name in ("h1", "h2", "h3", "h7"):
        make_visit(session, w1, history.h[name], at(23))
    redraw(session, 116.605, at(25))
    session.refresh(history.h["h3"])
    assert history.h["h3"].grid_id == history.grids[R2].id
    report = _w48(session)
    r1, r2 = grid_of(report, R1), grid_of(report, R2)
    assert (r1["households"], r1["visited"], r1["coverage"]) == (3, 3, 100.0)
    assert (r2["households"], r2["visited"], r2["coverage"]) == (4, 1, 25.0)
    assert (report["totals"]["households"], report["totals"]["visited"]) == (7, 4)
    assert report["trend"][-1]["visited"] == 4
    _assert_no_grid_reads_above_its_households(report)


def test_a_must_visit_household_that_moves_after_it_is_done_counts_done_where_it_is_due(
    session, history
):
    """W48: R2's h6 (living alone, twice a week) is visited Monday and Tuesday, then moves to
    R1 on Wednesday. R2 has no one living alone left (nothing due, nothing done); in R1 h2 and
    h6 are due and h6 is done (its visits were made in R2)."""
    w2 = history.users["w2"]
    make_visit(session, w2, history.h["h6"], at(23))
    make_visit(session, w2, history.h["h6"], at(24))
    effective(session, at(25))
    household_service.update_household(
        session, None, history.h["h6"], {"lon": 116.603, "lat": 39.902}
    )
    effective(session, None)
    report = _w48(session)
    assert grid_of(report, R2)["must_visit"] == []
    assert grid_of(report, R1)["must_visit"] == [
        {"tag": "elderly_80", "due": 1, "done": 0, "rate": 0.0},
        {"tag": "living_alone", "due": 2, "done": 1, "rate": 50.0},
    ]
    assert report["totals"]["must_visit"][-1] == {
        "tag": "living_alone",
        "due": 2,
        "done": 1,
        "rate": 50.0,
    }
    _assert_no_grid_reads_above_its_households(report)


def _h6_visited_in_r2_then_in_r1(session, history, outcome: str = "met") -> None:
    """W48: R2's h6 visited on Monday by rp_w2, moved to R1 on Wednesday, visited on Thursday
    by rp_w1 (`outcome`)."""
    make_visit(session, history.users["w2"], history.h["h6"], at(23))
    effective(session, at(25))
    household_service.update_household(
        session, None, history.h["h6"], {"lon": 116.603, "lat": 39.902}
    )
    effective(session, None)
    make_visit(session, history.users["w1"], history.h["h6"], at(26), outcome=outcome)


def test_a_must_visit_household_visited_in_two_grids_of_a_week_is_done_where_it_ends_it(
    session, history
):
    """W48: R2's h6 (living alone, twice a week) is visited on Monday, moves to R1 on
    Wednesday and is visited there on Thursday: two visits that week, its cadence, as its
    ledger counts them, so done in R1 where it ends the week (no grid got both visits)."""
    _h6_visited_in_r2_then_in_r1(session, history)
    end_of_week = datetime(2026, 11, 29, 23, 0, tzinfo=SH)
    row = next(
        r
        for r in ledger.household_ledger(
            session, grid_ids=[history.grids[R1].id], as_of=end_of_week
        )
        if r.household_id == history.h["h6"].id
    )
    assert (row.visits_this_week, row.visits_per_week) == (2, 2)
    report = _w48(session)
    assert grid_of(report, R2)["must_visit"] == []
    assert grid_of(report, R1)["must_visit"][-1] == {
        "tag": "living_alone",
        "due": 2,
        "done": 1,
        "rate": 50.0,
    }
    assert report["totals"]["must_visit"][-1]["done"] == 1
    _assert_no_grid_reads_above_its_households(report)


def test_a_must_visit_household_visited_before_and_after_a_redraw_is_done_in_its_new_grid(
    session, history
):
    """W48: R1's h2 (living alone) is visited on Monday; on Wednesday the border moves west of
    it, to R2, where it is visited on Thursday: done in R2, where it ends the week."""
    w1, w2 = history.users["w1"], history.users["w2"]
    make_visit(session, w1, history.h["h2"], at(23))
    redraw(session, 116.603, at(25))
    session.refresh(history.h["h2"])
    assert history.h["h2"].grid_id == history.grids[R2].id
    make_visit(session, w2, history.h["h2"], at(26))
    report = _w48(session)
    assert grid_of(report, R2)["must_visit"][-1] == {
        "tag": "living_alone",
        "due": 2,
        "done": 1,
        "rate": 50.0,
    }
    assert [m["tag"] for m in grid_of(report, R1)["must_visit"]] == ["elderly_80"]
    _assert_no_grid_reads_above_its_households(report)


def test_a_must_visit_household_short_of_its_cadence_across_two_grids_is_not_done(session, history):
    """W48: h6 (living alone, twice a week) is visited on Monday in R2, moves to R1 and is
    only attempted there (nobody home): one visit, not done anywhere."""
    _h6_visited_in_r2_then_in_r1(session, history, outcome="nobody_home")
    report = _w48(session)
    assert grid_of(report, R1)["must_visit"][-1]["done"] == 0
    assert grid_of(report, R1)["visited"] == 1


def test_a_tag_removed_after_the_household_was_done_is_not_done_where_nobody_is_due(
    session, history
):
    """W48: h1 (elderly, R1) is found at home on Monday, done; on Tuesday its tag is removed.
    Nobody in R1 is elderly at the end of the week: nothing due, nothing done (not 1 of 0)."""
    make_visit(session, history.users["w1"], history.h["h1"], at(23))
    effective(session, at(24))
    household_service.update_household(session, None, history.h["h1"], {"tags": []})
    effective(session, None)
    assert _counted(session, history.h["h1"], "2026-W48") == ["elderly_80"]
    report = _w48(session)
    assert [m["tag"] for m in grid_of(report, R1)["must_visit"]] == ["living_alone"]
    assert grid_of(report, R1)["visited"] == 1
    _assert_no_grid_reads_above_its_households(report)


def test_a_tag_added_after_the_visit_is_due_but_not_done_that_week(session, history):
    """W48: h4 (R2, no tag) is found at home on Monday and tagged elderly on Tuesday: due at
    the end of the week, not done (its visit carried no care tag)."""
    make_visit(session, history.users["w2"], history.h["h4"], at(23))
    effective(session, at(24))
    household_service.update_household(session, None, history.h["h4"], {"tags": ["elderly_80"]})
    effective(session, None)
    r2 = grid_of(_w48(session), R2)
    assert r2["must_visit"][0] == {"tag": "elderly_80", "due": 1, "done": 0, "rate": 0.0}
    assert r2["visited"] == 1
