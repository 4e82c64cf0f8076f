"""Rosters through the API and the service: generation, leave, edits, publishing, swaps, scope."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

import pytest
from geoalchemy2.shape import to_shape
from sqlalchemy import delete, func, select, update

from api.models import (
    Community,
    GridHolding,
    Leave,
    Notification,
    Roster,
    Shift,
    ShiftChange,
    ShiftSwap,
    user_grids,
)
from api.services import rosters as roster_service
from api.services.rosters import HOURS_CHANGED_TITLE
from api.services.weeks import LOCAL, current_week, week_dates
from tests.factories import make_household, make_roster_community, make_task_at, visit_item

WEEK = "2026-W48"  # Monday 2026-11-23 .. Sunday 2026-11-29
NEXT_WEEK = "2026-W49"
MON, TUE, WED, THU, FRI, SAT, SUN = week_dates(WEEK)
SMALL = {"a_min": 1, "a_max": 1}
# (workers, grids, roster settings): 3 to 40 workers.
SIZES = {
    "3-workers": (3, 3, SMALL),
    "8-workers": (8, 6, None),
    "20-workers": (20, 8, None),
    "40-workers": (40, 14, None),
}
# The tests' weeks lie ahead unless a test moves the clock: past days' shifts are not changed.
BEFORE_THE_WEEK = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Beijing


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


def set_today(app, day: date) -> None:
    """Move the app's clock (api.clock) to 10:00 in Beijing on `day`."""
    app.config["FIXED_NOW"] = datetime.combine(day, time(10), LOCAL).astimezone(UTC)


@pytest.fixture()
def community(session, app):
    """Eight workers over six grids, default settings (3–4 at the window, 3 B-days a grid)."""
    return make_roster_community(session, app, 8, 6)


def generate(client, c, week=WEEK, who=None):
    return client.post(
        f"/api/v1/communities/{c.code}/rosters",
        json={"week": week},
        headers=c.auth(who or c.leader),
    )


def all_shifts(view: dict) -> list[dict]:
    return [s for day in view["days"] for post in ("A", "B") for s in day[post]]


def publish(client, c, roster_id):
    return client.post(f"/api/v1/rosters/{roster_id}/publish", headers=c.auth(c.leader))


def published_week(client, c, week=WEEK) -> dict:
    view = generate(client, c, week).get_json()
    assert publish(client, c, view["id"]).status_code == 200
    return view


# --- settings ------------------------------------------------------------------------------


def test_roster_settings_default_to_three_to_four_at_the_window(client, community):
    body = client.get(
        f"/api/v1/communities/{community.code}/roster-settings",
        headers=community.auth(community.workers[3]),
    ).get_json()
    assert (body["a_min"], body["a_max"], body["working_days"]) == (3, 4, [1, 2, 3, 4, 5])


def test_admin_replaces_roster_settings(client, community):
    c = community
    rest = {str(c.workers[2].id): [3]}
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={
            "a_min": 2,
            "a_max": 3,
            "rest_days": rest,
            "a_hours": {"start": "08:00", "end": "20:00"},
        },
        headers=c.auth(c.admin),
    )
    assert put.status_code == 200
    got = client.get(f"/api/v1/communities/{c.code}/roster-settings", headers=c.auth(c.admin))
    assert got.get_json()["a_hours"] == {"start": "08:00", "end": "20:00"}
    assert got.get_json()["rest_days"] == rest


def _put_settings(client, c, **settings):
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings", json=settings, headers=c.auth(c.admin)
    )
    assert put.status_code == 200, put.get_json()


def _hours_notices(session) -> dict[int, tuple[str, str]]:
    rows = session.execute(
        select(Notification.user_id, Notification.title, Notification.body).where(
            Notification.kind == "roster_changed", Notification.title == HOURS_CHANGED_TITLE
        )
    )
    return {user: (title, body) for user, title, body in rows}


def test_new_post_hours_are_told_to_the_workers_whose_published_shifts_they_move(
    client, session, community
):
    """A published week's shifts read the community's hours of their post: changed, the hours
    of shifts already published moved under the workers' feet (calendar, app) with no word."""
    c = community
    view = published_week(client, c)
    b_workers = {s["worker_id"] for s in all_shifts(view) if s["post"] == "B"}
    _put_settings(client, c, b_hours={"start": "09:00", "end": "18:00"})
    told = _hours_notices(session)
    assert set(told) == b_workers
    title, body = next(iter(told.values()))
    assert "09:00" in body and "18:00" in body and "B岗" in body
    # One notice a worker, with the hours of every post they hold: a later change of the other
    # post's hours replaces it (collapsed) without losing these.
    both = b_workers & {s["worker_id"] for s in all_shifts(view) if s["post"] == "A"}
    assert both and all("A岗（窗口） 08:30–17:30" in told[w][1] for w in both)
    shift = next(s for s in all_shifts(view) if s["post"] == "B")
    got = client.get(f"/api/v1/shifts/{shift['id']}", headers=c.auth(c.admin)).get_json()
    assert got["starts_at"].endswith("09:00:00+08:00")


def test_settings_written_again_as_they_were_tell_nobody(client, session, community):
    c = community
    published_week(client, c)
    _put_settings(client, c, a_min=3, a_max=4)  # the hours as they are
    assert _hours_notices(session) == {}


@pytest.mark.parametrize("start", ["08:00\n", "０８:００", "8:00"])
def test_roster_settings_reject_hours_that_are_not_plain_hh_mm_and_write_nothing(
    client, community, start
):
    """A final newline passed `^...$` (`$` matches before it) and fullwidth digits passed `\\d`:
    both were stored, and every later read of the hours failed on them."""
    c = community
    url = f"/api/v1/communities/{c.code}/roster-settings"
    body = {"a_hours": {"start": start, "end": "20:00"}}
    put = client.put(url, json=body, headers=c.auth(c.admin))
    assert put.status_code == 422, put.get_json()
    assert put.headers["Content-Type"] == "application/problem+json"
    assert "a_hours" in put.get_json()["errors"]["json"]
    got = client.get(url, headers=c.auth(c.admin)).get_json()
    assert got["a_hours"]["start"] != start


def test_roster_settings_reject_a_min_above_a_max_and_write_nothing(client, community):
    c = community
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"a_min": 5, "a_max": 3},
        headers=c.auth(c.admin),
    )
    assert put.status_code == 422
    assert "a_min" in put.get_json()["errors"]["json"]
    got = client.get(f"/api/v1/communities/{c.code}/roster-settings", headers=c.auth(c.admin))
    assert got.get_json()["a_min"] == 3


def test_roster_settings_reject_a_rest_day_for_a_stranger(client, community, world):
    c = community
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"rest_days": {str(world.users["worker_a1"].id): [1]}},
        headers=c.auth(c.admin),
    )
    assert put.status_code == 422


def test_settings_read_back_are_taken_again_after_a_worker_with_rest_days_left_the_roster(
    client, session, community
):
    """A worker given rest days, then switched off: the office reads the settings, changes the
    hall's hours and sends them back. The stored rest days of someone no longer rostered were a
    422 ("not a worker of community"), so no setting could be changed as read; they are kept
    as they were (only a new or changed entry must name a worker of the community)."""
    c = community
    url = f"/api/v1/communities/{c.code}/roster-settings"
    gone = c.workers[3]
    rest = {str(gone.id): [3]}
    assert client.put(url, json={"rest_days": rest}, headers=c.auth(c.admin)).status_code == 200
    gone.active = False
    session.flush()
    settings = client.get(url, headers=c.auth(c.admin)).get_json()
    settings["a_hours"] = {"start": "08:00", "end": "20:00"}
    put = client.put(url, json=settings, headers=c.auth(c.admin))
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["rest_days"] == rest
    changed = {**settings, "rest_days": {str(gone.id): [4]}}
    assert client.put(url, json=changed, headers=c.auth(c.admin)).status_code == 422


@pytest.mark.parametrize("key", ["²", "١٢", "1" * 5000])
def test_roster_settings_reject_a_rest_day_key_that_is_not_an_ascii_id(client, community, key):
    c = community
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"rest_days": {key: [1]}},
        headers=c.auth(c.admin),
    )
    assert put.status_code == 422
    assert "rest_days" in put.get_json()["errors"]["json"]


@pytest.mark.parametrize("path", ["/api/v1/leaves", "/api/v1/shifts"])
@pytest.mark.parametrize("worker", ["²", "١٢", "1" * 5000])
def test_a_worker_filter_that_is_not_me_or_an_ascii_id_is_422(client, community, path, worker):
    c = community
    response = client.get(
        path, query_string={"week": WEEK, "worker": worker}, headers=c.auth(c.leader)
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"query": {"worker": ["me or an id"]}}


def test_a_leader_cannot_change_roster_settings(client, community):
    put = client.put(
        f"/api/v1/communities/{community.code}/roster-settings",
        json={"a_min": 2},
        headers=community.auth(community.leader),
    )
    assert put.status_code == 403


# --- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(SIZES))
def test_every_working_day_has_its_window_staff(client, session, app, size):
    n, g, settings = SIZES[size]
    c = make_roster_community(session, app, n, g, roster=settings)
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    rules = {**roster_service.DEFAULT_SETTINGS, **(settings or {})}
    for day in response.get_json()["days"]:
        working = date.fromisoformat(day["date"]).isoweekday() in rules["working_days"]
        count = len(day["A"])
        assert (rules["a_min"] <= count <= rules["a_max"]) if working else count == 0


@pytest.mark.parametrize("size", list(SIZES))
def test_every_grid_gets_its_b_post_days(client, session, app, size):
    n, g, settings = SIZES[size]
    c = make_roster_community(session, app, n, g, roster=settings)
    shifts = all_shifts(generate(client, c).get_json())
    days = Counter(
        code for code, _ in {(s["grid_code"], s["date"]) for s in shifts if s["post"] == "B"}
    )
    assert min(days[grid.code] for grid in c.grids) >= 3


def test_nobody_holds_two_posts_on_one_day(client, session, app):
    c = make_roster_community(session, app, 20, 8)
    shifts = all_shifts(generate(client, c).get_json())
    pairs = Counter((s["worker_id"], s["date"]) for s in shifts)
    assert max(pairs.values()) == 1


def test_a_b_post_is_in_the_workers_own_grid(client, community):
    own = {w.id: w.grids[0].code for w in community.workers}
    shifts = all_shifts(generate(client, community).get_json())
    assert all(s["grid_code"] == own[s["worker_id"]] for s in shifts if s["post"] == "B")


def test_a_shift_carries_the_contract_fields(client, community):
    shift = all_shifts(generate(client, community).get_json())[0]
    assert {"id", "date", "post", "worker_id", "grid_code", "relief_for_id", "roster_id"} <= set(
        shift
    )
    assert shift["status"] == "draft"


def test_a_worker_cannot_generate_a_roster(client, community):
    response = generate(client, community, who=community.workers[3])
    assert response.status_code == 403


def test_a_week_that_is_not_an_iso_week_is_422(client, community):
    assert generate(client, community, week="2026-W54").status_code == 422


@pytest.mark.parametrize("week", ["9999-W52", "0001-W01"])
def test_a_week_beyond_the_calendar_is_422(client, community, week):
    c = community
    response = generate(client, c, week=week)
    assert (response.status_code, response.get_json()["field"]) == (422, "week")
    for path in ("/api/v1/leaves", "/api/v1/shifts"):
        response = client.get(path, query_string={"week": week}, headers=c.auth(c.leader))
        assert (response.status_code, response.get_json()["field"]) == (422, "week"), path


@pytest.mark.parametrize("week", ["2026-W48\n", "\uff12\uff10\uff12\uff16-W48"])
def test_a_week_with_a_final_newline_or_non_ascii_digits_is_422_and_writes_nothing(
    client, session, community, week
):
    """`$` let "2026-W48\\n" through (the solver then refused it: a 500), and `\\d` let
    fullwidth digits through (the database's CHECK then refused the roster: a 409, "retry")."""
    c = community
    response = generate(client, c, week=week)
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert session.scalar(select(Roster.id).where(Roster.community_code == c.code)) is None
    for path in (
        f"/api/v1/communities/{c.code}/rosters/{quote(week)}",
        "/api/v1/tiles/grids/0/0/0.mvt",
    ):
        response = client.get(path, query_string={"week": week}, headers=c.auth(c.leader))
        assert response.status_code == 422, path


def test_a_holiday_is_not_rostered_and_an_adjusted_working_saturday_is(client, community):
    """China moves working days around public holidays (调休): a Thursday off, the Saturday
    worked in exchange. The roster follows the dates, not only the weekdays."""
    c = community
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"holidays": [THU.isoformat()], "extra_working_days": [SAT.isoformat()]},
        headers=c.auth(c.admin),
    )
    assert put.status_code == 200, put.get_json()
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    by_day = {d["date"]: d for d in response.get_json()["days"]}
    assert by_day[THU.isoformat()]["A"] == by_day[THU.isoformat()]["B"] == []
    assert 3 <= len(by_day[SAT.isoformat()]["A"]) <= 4
    assert by_day[SAT.isoformat()]["B"]
    assert by_day[SUN.isoformat()]["A"] == by_day[SUN.isoformat()]["B"] == []


def test_a_week_of_holidays_asks_no_more_b_post_days_than_it_has(client, community):
    c = community
    off = [MON, TUE, WED, THU]
    client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"a_min": 2, "holidays": [d.isoformat() for d in off]},
        headers=c.auth(c.admin),
    )
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    worked = [d for d in response.get_json()["days"] if d["A"] or d["B"]]
    assert [d["date"] for d in worked] == [FRI.isoformat()]


def test_a_day_both_holiday_and_worked_is_422(client, community):
    c = community
    put = client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"holidays": [SAT.isoformat()], "extra_working_days": [SAT.isoformat()]},
        headers=c.auth(c.admin),
    )
    assert put.status_code == 422
    assert "extra_working_days" in put.get_json()["errors"]["json"]


def test_regenerating_a_draft_replaces_it(client, session, community):
    first = generate(client, community).get_json()
    second = generate(client, community).get_json()
    assert second["id"] == first["id"]
    stored = session.scalars(select(Shift.id).where(Shift.roster_id == first["id"])).all()
    assert sorted(stored) == sorted(s["id"] for s in all_shifts(second))
    assert not {s["id"] for s in all_shifts(first)} & set(stored)


def test_a_published_roster_is_not_regenerated(client, community):
    published_week(client, community)
    response = generate(client, community)
    assert response.status_code == 409


def test_a_week_that_cannot_be_met_is_stored_with_the_binding_rule_named(client, session, app):
    """Before 2026-12-05 a 422 naming the rule, nothing stored; now the best roster, the rule
    named (`shortfall_rule`) and each gap listed (`test_rosters_short.py`)."""
    c = make_roster_community(session, app, 4, 1)
    for worker in c.workers[:2]:
        leave = client.post(
            "/api/v1/leaves",
            json={"start_date": str(TUE), "end_date": str(TUE)},
            headers=c.auth(worker),
        ).get_json()
        client.post(
            f"/api/v1/leaves/{leave['id']}/decision",
            json={"decision": "approve"},
            headers=c.auth(c.admin),
        )
    response = generate(client, c)
    assert response.status_code == 201
    body = response.get_json()
    assert body["shortfall_rule"] == (
        "Tuesday 2026-11-24: 2 workers available, 3 required at the window"
    )
    assert body["shortfalls"][0]["why"].startswith("Tuesday 2026-11-24")
    assert session.scalar(select(Roster).where(Roster.community_code == c.code)) is not None


def test_rest_days_keep_a_worker_off_that_weekday(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    resting = c.workers[4]
    client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"rest_days": {str(resting.id): [3]}},
        headers=c.auth(c.admin),
    )
    shifts = all_shifts(generate(client, c).get_json())
    assert {s["date"] for s in shifts if s["worker_id"] == resting.id} == {
        str(d) for d in (MON, TUE, THU, FRI)
    }


def test_a_post_is_shared_fairly_over_four_consecutive_weeks(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    for week in ("2026-W45", "2026-W46", "2026-W47", "2026-W48"):
        set_today(app, week_dates(week)[0])  # each generated on its Monday, none of it past
        published_week(client, c, week)
    totals = Counter(
        session.scalars(
            select(Shift.worker_id)
            .join(Roster)
            .where(Roster.community_code == c.code, Shift.post == "A")
        )
    )
    assert max(totals.values()) - min(totals[w.id] for w in c.workers) <= 1


def test_history_of_the_previous_three_weeks_comes_from_the_database(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    for week in ("2026-W44", "2026-W45", "2026-W46", "2026-W47"):
        set_today(app, week_dates(week)[0])  # each generated on its Monday, none of it past
        published_week(client, c, week)
    expected = Counter(
        session.scalars(
            select(Shift.worker_id)
            .join(Roster)
            .where(
                Roster.community_code == c.code,
                Roster.week.in_(("2026-W45", "2026-W46", "2026-W47")),
                Shift.post == "A",
            )
        )
    )
    inp = roster_service.roster_input(session, session.get(Community, c.code), WEEK)
    assert dict(inp.history_a_days) == dict(expected)


def test_pairs_rotate_weekly(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    set_today(app, week_dates("2026-W47")[0])  # generated on its Monday, none of it past
    first = published_week(client, c, "2026-W47")
    second = generate(client, c, WEEK).get_json()

    def edges(view):
        return {
            frozenset((a["id"], b["id"])) for g in view["pairs"] for a in g for b in g if a != b
        }

    assert len(second["pairs"]) == 4
    assert not edges(first) & edges(second)


# --- leave -----------------------------------------------------------------------------------


def request_leave(client, c, worker, start=WED, end=THU):
    return client.post(
        "/api/v1/leaves",
        json={"start_date": str(start), "end_date": str(end), "reason": "家事"},
        headers=c.auth(worker),
    )


def test_a_worker_requests_leave_for_themself(client, community):
    worker = community.workers[3]
    body = request_leave(client, community, worker).get_json()
    assert (body["worker_id"], body["status"]) == (worker.id, "requested")


def test_a_leader_approves_leave(client, community):
    leave = request_leave(client, community, community.workers[3]).get_json()
    decided = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "approve"},
        headers=community.auth(community.leader),
    )
    assert decided.get_json()["status"] == "approved"


def test_a_worker_cannot_decide_leave(client, community):
    leave = request_leave(client, community, community.workers[3]).get_json()
    decided = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "approve"},
        headers=community.auth(community.workers[4]),
    )
    assert decided.status_code == 404  # another worker's leave is out of scope


def test_overlapping_leave_is_a_conflict(client, community):
    worker = community.workers[3]
    request_leave(client, community, worker)
    assert request_leave(client, community, worker, THU, FRI).status_code == 409


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (date(1, 1, 1), date(9999, 12, 31), "start_date"),  # every day there is
        (date(1999, 12, 20), date(1999, 12, 24), "start_date"),  # before the served weeks
        (date(2026, 11, 23), date(3000, 1, 5), "end_date"),  # past them
        (date(2026, 11, 23), date(2027, 11, 24), "end_date"),  # 367 days
    ],
    ids=["year-1-to-9999", "before-2000", "past-2999", "over-a-year"],
)
def test_leave_outside_the_calendar_or_over_a_year_is_refused(
    client, session, community, start, end, field
):
    """Leave is asked for days the rosters can hold (the served weeks, 2000 to 2999), a year
    at most: `0001-01-01` to `9999-12-31` was stored, a worker away for ever."""
    response = request_leave(client, community, community.workers[3], start, end)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]["json"]
    assert session.scalar(select(func.count(Leave.id))) == 0


def test_leave_starting_before_today_is_422_naming_start_date_and_stores_nothing(
    client, app, session, community
):
    """Leave is asked ahead: a request whose first day has passed (Asia/Shanghai, the app's
    clock) was stored and sent to the leaders to approve, days already worked or missed."""
    from api.models import Notification

    set_today(app, WED)
    response = request_leave(client, community, community.workers[3], TUE, THU)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "start_date" in response.get_json()["errors"]["json"]
    assert session.scalar(select(func.count(Leave.id))) == 0
    told = select(func.count(Notification.id)).where(Notification.kind == "leave_requested")
    assert session.scalar(told) == 0


def test_leave_starting_today_is_taken(client, app, community):
    set_today(app, WED)
    response = request_leave(client, community, community.workers[3], WED, THU)
    assert response.status_code == 201, response.get_json()


def test_leave_days_are_judged_by_the_date_in_asia_shanghai(client, app, community):
    """At 01:00 on Wednesday in Beijing it is still Tuesday in UTC: Tuesday has passed."""
    app.config["FIXED_NOW"] = datetime.combine(WED, time(1), LOCAL).astimezone(UTC)
    assert request_leave(client, community, community.workers[3], TUE, THU).status_code == 422
    assert request_leave(client, community, community.workers[3], WED, THU).status_code == 201


def test_a_year_of_leave_is_taken(client, community):
    start = date(2026, 11, 23)
    response = request_leave(client, community, community.workers[3], start, date(2027, 11, 23))
    assert response.status_code == 201


def test_a_leaves_reason_is_withheld_from_the_district_viewer(client, community):
    """A reason for leave is often a worker's health ("住院", "病假"): their leader and admin
    decide on it; the district's viewer, who supervises coverage, sees the leave, not why."""
    c = community
    worker = c.workers[3]
    request_leave(client, c, worker)
    seen = {
        who: client.get(f"/api/v1/leaves?worker={worker.id}", headers=c.auth(user)).get_json()
        for who, user in (
            ("worker", worker),
            ("leader", c.leader),
            ("admin", c.admin),
            ("viewer", c.viewer),
        )
    }
    assert {who: [leave["reason"] for leave in answer] for who, answer in seen.items()} == {
        "worker": ["家事"],
        "leader": ["家事"],
        "admin": ["家事"],
        "viewer": [None],
    }


def test_a_worker_lists_only_their_own_leave(client, community):
    c = community
    request_leave(client, c, c.workers[3])
    request_leave(client, c, c.workers[4])
    mine = client.get("/api/v1/leaves", headers=c.auth(c.workers[3])).get_json()
    everyone = client.get("/api/v1/leaves", headers=c.auth(c.leader)).get_json()
    assert [x["worker_id"] for x in mine] == [c.workers[3].id]
    assert len(everyone) == 2


def test_leave_ending_on_or_after_a_day_is_listed_without_the_years_before(client, community):
    """The app's list of leave under way or to come asks for leave whose last day is today or
    later (`ends_from`): without it, every approved leave of the community since it began."""
    c = community
    over = request_leave(client, c, c.workers[3], MON, TUE).get_json()
    ends_today = request_leave(client, c, c.workers[4], TUE, WED).get_json()
    to_come = request_leave(client, c, c.workers[5], THU, FRI).get_json()
    listed = client.get(f"/api/v1/leaves?ends_from={WED}", headers=c.auth(c.leader))
    assert listed.status_code == 200, listed.get_json()
    assert [x["id"] for x in listed.get_json()] == [ends_today["id"], to_come["id"]]
    assert over["id"] not in {x["id"] for x in listed.get_json()}


def test_leave_ends_from_that_is_not_a_date_is_422(client, community):
    r = client.get("/api/v1/leaves?ends_from=tomorrow", headers=community.auth(community.leader))
    assert r.status_code == 422
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert "ends_from" in str(r.get_json())


def test_a_leave_names_its_worker_to_whoever_reads_or_decides_it(client, community):
    """A leader deciding requests in the app reads whose each is: the list, the request's and
    the decision's answers name the worker (`worker_name`), as a shift does; a leader may decide
    leave of workers outside the grids they lead, whose accounts they cannot look up."""
    c = community
    worker = c.workers[3]
    asked = request_leave(client, c, worker).get_json()
    listed = client.get("/api/v1/leaves?status=requested", headers=c.auth(c.leader)).get_json()
    decided = client.post(
        f"/api/v1/leaves/{asked['id']}/decision",
        json={"decision": "approve"},
        headers=c.auth(c.leader),
    ).get_json()
    assert asked["worker_name"] == worker.display_name
    assert [(x["id"], x["worker_name"]) for x in listed] == [(asked["id"], worker.display_name)]
    assert decided["worker_name"] == worker.display_name


def test_approved_leave_keeps_the_worker_off_and_names_a_reliever(client, session, app):
    c = make_roster_community(session, app, 10, 8)  # grid 006 has one worker
    away = c.workers[5]
    leave = request_leave(client, c, away, MON, WED).get_json()
    client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "approve"},
        headers=c.auth(c.admin),
    )
    shifts = all_shifts(generate(client, c).get_json())
    assert {s["date"] for s in shifts if s["worker_id"] == away.id} <= {str(THU), str(FRI)}
    relief = [s for s in shifts if s["relief_for_id"] == away.id]
    assert relief and all(s["grid_code"] == away.grids[0].code for s in relief)


def test_approving_leave_after_the_roster_lists_the_shifts_left_to_reassign(client, community):
    """The roster already names the worker on their leave days: the approval says which shifts
    are now uncovered (approving is never refused: leave is the worker's), and they can be
    handed on with PATCH /shifts/{id}."""
    c = community
    worker = c.workers[3]
    published = published_week(client, c)
    theirs = {
        s["id"]: s["date"]
        for s in all_shifts(published)
        if s["worker_id"] == worker.id and s["date"] in (str(WED), str(THU))
    }
    assert theirs  # the roster has them at work on Wednesday or Thursday
    leave = request_leave(client, c, worker, WED, THU).get_json()
    decided = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "approve"},
        headers=c.auth(c.leader),
    ).get_json()
    assert decided["status"] == "approved"
    listed = decided["shifts_to_reassign"]
    assert {s["id"]: s["date"] for s in listed} == theirs
    assert all(s["status"] == "published" and s["worker_id"] == worker.id for s in listed)


def test_leave_decided_late_lists_only_the_shifts_from_today_to_reassign(client, app, community):
    """Leave asked from Monday and approved on Wednesday (Asia/Shanghai): Monday's and
    Tuesday's shifts are a record of the days gone and cannot be handed on (PATCH answers 409),
    so the approval lists only the shifts from today on. Before, it listed the past ones too,
    and the leader was told to hand on shifts the API refuses to change."""
    c = community
    worker = c.workers[3]
    published = published_week(client, c)
    leave = request_leave(client, c, worker, MON, FRI).get_json()
    set_today(app, WED)
    decided = decide_leave(client, c, leave, "approve")
    listed = decided["shifts_to_reassign"]
    ahead = {
        s["id"]
        for s in all_shifts(published)
        if s["worker_id"] == worker.id and s["date"] in (str(WED), str(THU), str(FRI))
    }
    assert ahead and {s["id"] for s in listed} == ahead


def decide_leave(client, c, leave, decision):
    """The leader's decision on `leave`: the answer's JSON."""
    return client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": decision},
        headers=c.auth(c.leader),
    ).get_json()


def _task_held_by(session, c, worker, status="dispatched"):
    centre = to_shape(worker.grids[0].boundary).centroid
    # A flat of its own (one address is registered once at a point).
    home = make_household(session, centre.x, centre.y, room=f"{worker.id}{status}")
    due = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    return make_task_at(session, home, due, assignee_id=worker.id, status=status)


def test_approving_leave_lists_the_open_tasks_the_worker_holds(client, session, community):
    """A worker going away held their open tasks through the leave: deadline warnings went to
    someone away, and nobody was told to hand them on. The approval lists them (id, grid,
    status, urgency, deadline: no title), to hand on with POST /tasks/{id}/assign."""
    c = community
    worker = c.workers[3]
    held = _task_held_by(session, c, worker)
    _task_held_by(session, c, worker, status="resolved")  # done: nothing to hand on
    _task_held_by(session, c, c.workers[4])  # someone else's
    decided = decide_leave(client, c, request_leave(client, c, worker).get_json(), "approve")
    assert decided["tasks_to_reassign"] == [
        {
            "id": held.id,
            "grid_id": held.grid_id,
            "status": "dispatched",
            "urgency": held.urgency,
            "due_at": "2026-12-01T02:00:00+00:00",
        }
    ]


def test_approving_leave_lists_the_escalated_tasks_the_worker_still_holds(
    client, session, community
):
    """An escalation tells the leader but leaves the work with the assignee, who alone resolves
    it: a worker going away with a ticket escalated past its deadline kept it through the
    leave, and the approval's list left it out (as a switch-off hands it on with the rest)."""
    c = community
    worker = c.workers[3]
    held = _task_held_by(session, c, worker, status="escalated")
    decided = decide_leave(client, c, request_leave(client, c, worker).get_json(), "approve")
    assert [(t["id"], t["status"]) for t in decided["tasks_to_reassign"]] == [
        (held.id, "escalated")
    ]


def test_rejecting_leave_lists_no_task_to_reassign(client, session, community):
    c = community
    worker = c.workers[3]
    _task_held_by(session, c, worker)
    decided = decide_leave(client, c, request_leave(client, c, worker).get_json(), "reject")
    assert decided["tasks_to_reassign"] == []


def test_a_rejection_tells_the_worker_why_in_the_deciders_words(client, session, community):
    """A worker refused leave wants to know why: the decision's `note` is kept on the leave and
    shown to whoever reads its reason; the notice (which a phone's push service carries) says a
    note is there, not what it says."""
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    decided = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "reject", "note": "周三社区有防汛检查，请改期"},
        headers=c.auth(c.leader),
    )
    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["decision_note"] == "周三社区有防汛检查，请改期"
    [mine] = client.get("/api/v1/leaves?worker=me", headers=c.auth(worker)).get_json()
    assert mine["decision_note"] == "周三社区有防汛检查，请改期"
    [seen] = client.get("/api/v1/leaves", headers=c.auth(c.viewer)).get_json()
    assert seen["decision_note"] is None  # a district viewer reads no notes
    body = session.scalar(
        select(Notification.body).where(
            Notification.user_id == worker.id, Notification.kind == "leave_decided"
        )
    )
    assert "审批意见" in body and "防汛" not in body


def test_a_decision_note_over_500_characters_is_422_and_decides_nothing(client, community):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    refused = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "reject", "note": "改" * 501},
        headers=c.auth(c.leader),
    )
    assert refused.status_code == 422 and "note" in refused.get_json()["errors"]["json"]
    [still] = client.get("/api/v1/leaves?worker=me", headers=c.auth(c.workers[3])).get_json()
    assert (still["status"], still["decision_note"]) == ("requested", "")


def test_rejecting_leave_lists_nothing_to_reassign(client, community):
    c = community
    published_week(client, c)
    leave = request_leave(client, c, c.workers[3], WED, THU).get_json()
    decided = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "reject"},
        headers=c.auth(c.leader),
    ).get_json()
    assert decided["status"] == "rejected" and decided["shifts_to_reassign"] == []


def test_requested_leave_does_not_block_the_roster(client, community):
    worker = community.workers[3]
    request_leave(client, community, worker, MON, FRI)
    shifts = all_shifts(generate(client, community).get_json())
    assert len([s for s in shifts if s["worker_id"] == worker.id]) == 5


# --- edits, publishing, the change log -------------------------------------------------------


def first_b(view, worker_id=None):
    return next(
        s
        for s in all_shifts(view)
        if s["post"] == "B" and (worker_id is None or s["worker_id"] == worker_id)
    )


def test_a_draft_shift_moves_to_the_window(client, community):
    shift = first_b(generate(client, community).get_json())
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}",
        json={"post": "A"},
        headers=community.auth(community.leader),
    )
    assert patched.status_code == 200
    assert (patched.get_json()["post"], patched.get_json()["grid_code"]) == ("A", None)


def test_moving_a_shift_onto_a_day_the_worker_already_works_is_409(client, community):
    view = generate(client, community).get_json()
    shift = next(s for s in all_shifts(view) if s["date"] == str(MON))
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}",
        json={"date": str(TUE)},
        headers=community.auth(community.leader),
    )
    assert patched.status_code == 409


def test_a_b_post_needs_a_grid_of_the_community(client, community, world):
    shift = first_b(generate(client, community).get_json())
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}",
        json={"grid_code": world.grids["110101001001001"].code},
        headers=community.auth(community.leader),
    )
    assert patched.status_code == 422


def test_a_shift_in_anothers_grid_names_whom_it_relieves(client, community):
    c = community
    shift = first_b(generate(client, c).get_json(), c.workers[1].id)
    other_grid = c.grids[3]
    body = client.patch(
        f"/api/v1/shifts/{shift['id']}",
        json={"grid_code": other_grid.code},
        headers=c.auth(c.leader),
    ).get_json()
    assert body["relief_for_id"] == c.workers[3].id


def test_draft_edits_are_not_logged(client, session, community):
    view = generate(client, community).get_json()
    shift = first_b(view)
    client.patch(
        f"/api/v1/shifts/{shift['id']}",
        json={"post": "A"},
        headers=community.auth(community.leader),
    )
    assert session.scalar(select(ShiftChange).where(ShiftChange.roster_id == view["id"])) is None


def test_publishing_notifies_every_worker_on_the_roster(client, session, community):
    view = published_week(client, community)
    notified = session.scalars(
        select(Notification.user_id).where(Notification.kind == "roster_published")
    ).all()
    assert sorted(notified) == sorted({s["worker_id"] for s in all_shifts(view)})


def test_roster_notices_speak_the_workers_language(client, session, community):
    """Read on the workers' phones beside the tasks' 新任务 and 任务即将超期: in Chinese (they
    were in English: "Roster 2026-W51 published"). The body names the week's days: it said
    本周班次已排好 ("this week's shifts") of a roster published, as rosters are, for the
    week ahead (found playing the demo)."""
    view = published_week(client, community)
    note = session.scalars(
        select(Notification).where(Notification.kind == "roster_published")
    ).first()
    monday, sunday = week_dates(view["week"])[0], week_dates(view["week"])[-1]
    assert (note.title, note.body) == (
        f"{view['week']} 排班已发布",
        f"{monday.isoformat()}至{sunday.isoformat()}的班次已排好，请查看排班。",
    )


def test_publishing_twice_is_409(client, community):
    view = published_week(client, community)
    assert publish(client, community, view["id"]).status_code == 409


def test_a_change_after_publishing_is_logged_and_notified(client, session, community):
    c = community
    view = published_week(client, c)
    shift = first_b(view)
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"post": "A"}, headers=c.auth(c.leader)
    )
    assert patched.status_code == 200
    changes = client.get(
        f"/api/v1/rosters/{view['id']}/changes", headers=c.auth(c.admin)
    ).get_json()
    assert len(changes) == 1
    assert changes[0]["changed_by_id"] == c.leader.id
    assert (changes[0]["before"]["post"], changes[0]["after"]["post"]) == ("B", "A")
    notified = session.scalars(
        select(Notification.user_id).where(Notification.kind == "roster_changed")
    ).all()
    assert notified == [shift["worker_id"]]


# --- relief --------------------------------------------------------------------------------------


def test_the_worker_rostered_in_a_grid_nobody_holds_records_its_visits(client, session, app):
    """A grid whose worker left is held by nobody: the solver gives it B-posts with no
    `relief_for` (there is nobody to name), and the worker sent there must be let in. Three
    workers: the vacant grid is visited every day while each rests a day a week."""
    every_day = {"working_days": [1, 2, 3, 4, 5, 6, 7], "a_min": 0, "a_max": 1}
    c = make_roster_community(session, app, 3, 2, roster={**every_day, "min_b_days_per_grid": 7})
    vacant = c.grids[1]
    session.execute(delete(user_grids).where(user_grids.c.grid_id == vacant.id))
    # Its worker left last month: held by nobody today. (Left just now, it was held earlier
    # today, by whoever the roster sends there on a Monday: no relief, rightly.)
    session.execute(
        update(GridHolding)
        .where(GridHolding.grid_id == vacant.id)
        .values(
            started_at=datetime.now(UTC) - timedelta(days=60),
            ended_at=datetime.now(UTC) - timedelta(days=30),
        )
    )
    lon0, lat0, lon1, lat1 = to_shape(vacant.boundary).bounds
    home = make_household(session, (lon0 + lon1) / 2, (lat0 + lat1) / 2)
    session.flush()
    view = generate(client, c, week=current_week()).get_json()
    assert publish(client, c, view["id"]).status_code == 200
    today = datetime.now(LOCAL).date().isoformat()
    (shift,) = [s for s in all_shifts(view) if s["date"] == today and s["grid_id"] == vacant.id]
    assert shift["relief_for_id"] is None
    worker = by_id(c, shift["worker_id"])
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [visit_item(home)]}, headers=c.auth(worker)
    )
    (result,) = response.get_json()["results"]
    assert result["status"] == "created", result
    assert result["visit"]["relief"] is True


# --- reading and scope -------------------------------------------------------------------------


def test_a_worker_sees_their_shift_of_the_day(client, community):
    c = community
    worker = c.workers[2]
    published_week(client, c)
    body = client.get(f"/api/v1/shifts?date={TUE}&worker=me", headers=c.auth(worker)).get_json()
    assert [(s["worker_id"], s["date"]) for s in body] == [(worker.id, str(TUE))]


def test_a_worker_sees_no_draft(client, community):
    c = community
    generate(client, c)
    body = client.get(f"/api/v1/shifts?week={WEEK}&worker=me", headers=c.auth(c.workers[2]))
    assert body.get_json() == []
    week = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.workers[2]))
    assert week.status_code == 404


def test_a_worker_reads_the_published_week_of_their_community(client, community):
    c = community
    published_week(client, c)
    week = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.workers[2]))
    assert week.status_code == 200
    assert [d["weekday"] for d in week.get_json()["days"]][:2] == ["Monday", "Tuesday"]


def test_a_worker_cannot_edit_a_shift(client, community):
    c = community
    view = published_week(client, c)
    shift = first_b(view, c.workers[2].id)
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"post": "A"}, headers=c.auth(c.workers[2])
    )
    assert patched.status_code == 403


def test_another_community_sees_nothing(client, community, world):
    c = community
    published_week(client, c)
    week = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=world.auth("admin_a"))
    assert week.status_code == 404
    shifts = client.get(f"/api/v1/shifts?week={WEEK}", headers=world.auth("worker_a1"))
    assert shifts.get_json() == []


def test_a_district_viewer_reads_but_cannot_edit(client, community):
    c = community
    view = published_week(client, c)
    week = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.viewer))
    assert week.status_code == 200
    patched = client.patch(
        f"/api/v1/shifts/{first_b(view)['id']}", json={"post": "A"}, headers=c.auth(c.viewer)
    )
    assert patched.status_code == 403


def test_the_week_view_groups_shifts_by_day_with_pairs(client, community):
    view = generate(client, community).get_json()
    assert [d["date"] for d in view["days"]] == [str(d) for d in week_dates(WEEK)]
    members = sorted(m["id"] for group in view["pairs"] for m in group)
    assert members == sorted(w.id for w in community.workers)


def test_shifts_need_exactly_one_of_date_and_week(client, community):
    response = client.get("/api/v1/shifts", headers=community.auth(community.leader))
    assert response.status_code == 422


# --- swaps -------------------------------------------------------------------------------------


def same_day_pair(view, day=MON):
    a = next(s for s in all_shifts(view) if s["date"] == str(day) and s["post"] == "A")
    b = next(s for s in all_shifts(view) if s["date"] == str(day) and s["post"] == "B")
    return a, b


def by_id(c, user_id):
    return next(w for w in c.workers if w.id == user_id)


def test_a_swap_request_notifies_the_other_worker(client, session, community):
    c = community
    a, b = same_day_pair(published_week(client, c))
    response = client.post(
        f"/api/v1/shifts/{a['id']}/swap",
        json={"with_shift_id": b["id"]},
        headers=c.auth(by_id(c, a["worker_id"])),
    )
    assert response.status_code == 201
    notified = session.scalars(
        select(Notification.user_id).where(Notification.kind == "shift_swap_requested")
    ).all()
    assert notified == [b["worker_id"]]


def test_a_swap_a_leader_asks_for_tells_its_requester_their_own_day(client, session, community):
    """A leader asks on a worker's behalf to exchange their Monday for a colleague's Tuesday.
    The colleague is asked to agree; the worker is told what was asked for them, their own
    day named as theirs. Before, the worker got the colleague's question word for word
    ("agree to exchange your Tuesday shift for Monday's?"): the wrong day named as theirs,
    and a question they cannot answer (nobody decides their own swap)."""
    c = community
    view = published_week(client, c)
    mine = next(
        s for s in all_shifts(view) if s["date"] == str(MON) and s["worker_id"] != c.leader.id
    )
    theirs = next(
        s
        for s in all_shifts(view)
        if s["date"] == str(TUE) and s["worker_id"] not in (c.leader.id, mine["worker_id"])
    )
    for worker_id, day in ((mine["worker_id"], TUE), (theirs["worker_id"], MON)):  # free then
        session.execute(delete(Shift).where(Shift.worker_id == worker_id, Shift.date == day))
    assert request_swap(client, c, mine, theirs, who=c.leader).status_code == 201
    notices = {
        n.user_id: n.body
        for n in session.scalars(
            select(Notification).where(Notification.kind == "shift_swap_requested")
        )
    }
    assert set(notices) == {mine["worker_id"], theirs["worker_id"]}
    assert f"您{TUE}的班次" in notices[theirs["worker_id"]]
    assert f"您{MON}的班次" in notices[mine["worker_id"]]
    assert f"您{TUE}" not in notices[mine["worker_id"]]
    assert "是否同意" not in notices[mine["worker_id"]]


def test_the_other_worker_accepts_and_the_shifts_change_hands(client, session, community):
    c = community
    a, b = same_day_pair(published_week(client, c))
    swap = client.post(
        f"/api/v1/shifts/{a['id']}/swap",
        json={"with_shift_id": b["id"]},
        headers=c.auth(by_id(c, a["worker_id"])),
    ).get_json()
    accepted = client.post(
        f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert accepted.get_json()["status"] == "accepted"
    moved = {
        s.id: s.worker_id
        for s in session.scalars(select(Shift).where(Shift.id.in_((a["id"], b["id"]))))
    }
    assert moved == {a["id"]: b["worker_id"], b["id"]: a["worker_id"]}
    assert session.scalar(select(ShiftChange.id).where(ShiftChange.action == "swap")) is not None


def test_a_leader_approves_a_swap(client, community):
    c = community
    a, b = same_day_pair(published_week(client, c))
    swap = client.post(
        f"/api/v1/shifts/{a['id']}/swap",
        json={"with_shift_id": b["id"]},
        headers=c.auth(by_id(c, a["worker_id"])),
    ).get_json()
    approved = client.post(f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(c.admin))
    assert approved.get_json()["status"] == "approved"


def test_a_swap_onto_a_day_already_worked_is_409(client, community):
    c = community
    view = published_week(client, c)
    mon = next(s for s in all_shifts(view) if s["date"] == str(MON))
    tue = next(
        s for s in all_shifts(view) if s["date"] == str(TUE) and s["worker_id"] != mon["worker_id"]
    )
    response = client.post(
        f"/api/v1/shifts/{mon['id']}/swap",
        json={"with_shift_id": tue["id"]},
        headers=c.auth(by_id(c, mon["worker_id"])),
    )
    assert response.status_code == 409


def test_a_leader_does_not_approve_their_own_swap(client, community):
    """Leaders hold shifts too: their swap needs the other worker, as their leave needs
    another leader."""
    c = community
    shifts = all_shifts(published_week(client, c))
    mine = next(s for s in shifts if s["worker_id"] == c.leader.id)
    other = next(
        s
        for s in shifts
        if s["date"] == mine["date"] and s["post"] != mine["post"] and s["worker_id"] != c.leader.id
    )
    swap = client.post(
        f"/api/v1/shifts/{mine['id']}/swap",
        json={"with_shift_id": other["id"]},
        headers=c.auth(c.leader),
    ).get_json()
    assert (
        client.post(f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(c.leader)).status_code
        == 403
    )
    accepted = client.post(
        f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(by_id(c, other["worker_id"]))
    )
    assert accepted.get_json()["status"] == "accepted"


def test_a_third_worker_cannot_accept_a_swap(client, community):
    c = community
    a, b = same_day_pair(published_week(client, c))
    swap = client.post(
        f"/api/v1/shifts/{a['id']}/swap",
        json={"with_shift_id": b["id"]},
        headers=c.auth(by_id(c, a["worker_id"])),
    ).get_json()
    third = next(w for w in c.workers[1:] if w.id not in (a["worker_id"], b["worker_id"]))
    assert (
        client.post(f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(third)).status_code == 404
    )


def test_a_worker_cannot_offer_someone_elses_shift(client, community):
    c = community
    a, b = same_day_pair(published_week(client, c))
    third = next(w for w in c.workers[1:] if w.id not in (a["worker_id"], b["worker_id"]))
    response = client.post(
        f"/api/v1/shifts/{a['id']}/swap", json={"with_shift_id": b["id"]}, headers=c.auth(third)
    )
    assert response.status_code == 403


# --- swaps and the roster's state ----------------------------------------------------------------


def workers_pair(view, c, day=MON):
    """An A-post and a B-post of `day` held by two workers who are not the leader."""
    shifts = [
        s for s in all_shifts(view) if s["date"] == str(day) and s["worker_id"] != c.leader.id
    ]
    a = next(s for s in shifts if s["post"] == "A")
    b = next(s for s in shifts if s["post"] == "B")
    return a, b


def request_swap(client, c, shift, other, who=None):
    return client.post(
        f"/api/v1/shifts/{shift['id']}/swap",
        json={"with_shift_id": other["id"]},
        headers=c.auth(who or by_id(c, shift["worker_id"])),
    )


def swaps_and_notices(session):
    return (
        session.scalar(select(func.count()).select_from(ShiftSwap)),
        session.scalar(select(func.count()).where(Notification.kind == "shift_swap_requested")),
    )


def draft_swap(session, c, a, b):
    """A swap row on a draft's shifts, as the API made them before it refused them."""
    swap = ShiftSwap(
        shift_id=a["id"],
        with_shift_id=b["id"],
        requester_id=a["worker_id"],
        other_worker_id=b["worker_id"],
        requested_by_id=c.leader.id,
        status="requested",
    )
    session.add(swap)
    session.flush()
    return swap


def test_a_swap_on_a_draft_roster_is_409_and_opens_nothing(client, session, community):
    """Swaps are between the workers of a published roster; a draft is edited directly."""
    c = community
    a, b = workers_pair(generate(client, c).get_json(), c)
    response = request_swap(client, c, a, b, who=c.leader)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "draft" in response.get_json()["detail"]
    assert swaps_and_notices(session) == (0, 0)


def test_a_swap_between_a_published_week_and_a_draft_week_is_409(client, session, community):
    c = community
    published = published_week(client, c)
    draft = generate(client, c, NEXT_WEEK).get_json()
    mine = next(s for s in all_shifts(published) if s["worker_id"] != c.leader.id)
    theirs = next(
        s for s in all_shifts(draft) if s["worker_id"] not in (c.leader.id, mine["worker_id"])
    )
    response = request_swap(client, c, mine, theirs, who=c.leader)
    assert response.status_code == 409
    assert "draft" in response.get_json()["detail"]
    assert swaps_and_notices(session) == (0, 0)


def test_accepting_a_swap_on_a_draft_roster_is_409_and_changes_nothing(client, session, community):
    """A swap row on a draft (left from before swaps were refused there) cannot be accepted."""
    c = community
    a, b = workers_pair(generate(client, c).get_json(), c)
    swap = draft_swap(session, c, a, b)
    response = client.post(
        f"/api/v1/swaps/{swap.id}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "draft" in response.get_json()["detail"]
    assert_shifts_unswapped(session, a, b)
    assert session.get(ShiftSwap, swap.id).status == "requested"


def swap_then_move(client, c):
    """A swap requested between two workers' shifts, then the other shift moved to another grid
    by the leader: the two shifts (as they were) and the swap."""
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    other_grid = next(g.code for g in c.grids if g.code != b["grid_code"])
    edited = client.patch(
        f"/api/v1/shifts/{b['id']}", json={"grid_code": other_grid}, headers=c.auth(c.leader)
    )
    assert edited.status_code == 200
    return a, b, swap


def test_an_edit_of_a_shift_closes_its_open_swap(client, session, community):
    """The other worker agreed to the shift as it was: once a leader changes it, the swap is
    cancelled rather than accepted for a shift nobody offered."""
    c = community
    a, b, swap = swap_then_move(client, c)
    accepted = client.post(
        f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert accepted.status_code == 409
    assert "cancelled" in accepted.get_json()["detail"]
    assert session.get(Shift, a["id"]).worker_id == a["worker_id"]


def test_a_shift_handed_on_after_leave_can_be_swapped_by_its_new_holder(client, session, community):
    """Leave approved after a swap was asked: the leader hands the away worker's shift on
    (PATCH). The old swap closes (it is no longer theirs to give) and does not block the new
    holder from offering the shift."""
    c = community
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    away = by_id(c, b["worker_id"])
    leave = request_leave(client, c, away, MON, MON).get_json()
    decided = client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": "approve"},
        headers=c.auth(c.leader),
    ).get_json()
    assert b["id"] in {s["id"] for s in decided["shifts_to_reassign"]}
    # A worker free on Monday takes the shift over.
    stand_in = next(w for w in c.workers[1:] if w.id not in (a["worker_id"], away.id))
    session.execute(delete(Shift).where(Shift.worker_id == stand_in.id, Shift.date == MON))
    handed = client.patch(
        f"/api/v1/shifts/{b['id']}", json={"worker_id": stand_in.id}, headers=c.auth(c.leader)
    )
    assert handed.status_code == 200
    assert (
        client.post(f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(away)).status_code == 409
    )
    assert request_swap(client, c, b, a, who=stand_in).status_code == 201


def test_approving_leave_cancels_the_open_swap_that_would_hand_the_worker_a_leave_day(
    client, session, community
):
    """A colleague asked the worker to take their Monday window post; the worker's Monday
    leave is then approved. The swap can no longer be accepted (the worker is away): it is
    cancelled and both are told. Before, it stayed open until Monday passed, nobody told, and
    the colleague could offer their shift to nobody else ("a swap on it is still open")."""
    c = community
    a, b = workers_pair(published_week(client, c), c)
    away = by_id(c, b["worker_id"])
    swap = request_swap(client, c, a, b).get_json()
    leave = request_leave(client, c, away, MON, MON).get_json()
    assert decide(client, c, leave).status_code == 200
    session.expire_all()
    row = session.get(ShiftSwap, swap["id"])
    assert (row.status, row.decided_by_id) == ("cancelled", c.leader.id)
    told = session.scalars(
        select(Notification.user_id)
        .where(Notification.kind == "shift_swap_cancelled")
        .order_by(Notification.user_id)
    ).all()
    assert told == sorted((a["worker_id"], away.id))
    others = [w for w in c.workers[1:] if w.id not in (a["worker_id"], away.id)]
    other = next(
        s
        for s in all_shifts(published_week_view(client, c))
        if s["date"] == str(MON) and s["worker_id"] in {w.id for w in others}
    )
    assert request_swap(client, c, a, other).status_code == 201


def published_week_view(client, c, week=WEEK) -> dict:
    return client.get(
        f"/api/v1/communities/{c.code}/rosters/{week}", headers=c.auth(c.leader)
    ).get_json()


def test_publishing_cancels_a_swap_asked_on_the_draft(client, session, community):
    """A swap row left on a draft (from before swaps were refused there) was agreed on shifts
    still being edited: publishing cancels it rather than making it acceptable."""
    c = community
    view = generate(client, c).get_json()
    a, b = workers_pair(view, c)
    swap = draft_swap(session, c, a, b)
    assert publish(client, c, view["id"]).status_code == 200
    response = client.post(
        f"/api/v1/swaps/{swap.id}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert response.status_code == 409
    assert "cancelled" in response.get_json()["detail"]
    assert session.get(Shift, a["id"]).worker_id == a["worker_id"]


# --- cancelling leave --------------------------------------------------------------------------


def decide(client, c, leave, decision="approve", who=None):
    return client.post(
        f"/api/v1/leaves/{leave['id']}/decision",
        json={"decision": decision},
        headers=c.auth(who or c.leader),
    )


def cancel(client, c, leave_id, who):
    return client.post(f"/api/v1/leaves/{leave_id}/cancel", headers=c.auth(who))


def test_a_worker_withdraws_their_requested_leave(client, community):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    response = cancel(client, c, leave["id"], worker)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["id"], body["status"], body["cancelled_by_id"]) == (
        leave["id"],
        "cancelled",
        worker.id,
    )
    assert body["cancelled_at"] is not None
    assert (body["decided_by_id"], body["decided_at"]) == (None, None)  # never decided


def test_a_worker_cancels_their_approved_leave_and_is_rostered_on_those_days_again(
    client, community
):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, WED, THU).get_json()
    assert decide(client, c, leave).status_code == 200
    assert cancel(client, c, leave["id"], worker).get_json()["status"] == "cancelled"
    shifts = all_shifts(generate(client, c).get_json())
    assert {str(WED), str(THU)} <= {s["date"] for s in shifts if s["worker_id"] == worker.id}


@pytest.mark.parametrize("who", ["leader", "admin"])
def test_a_leader_or_admin_cancels_a_workers_approved_leave(client, community, who):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    decide(client, c, leave)
    canceller = getattr(c, who)
    response = cancel(client, c, leave["id"], canceller)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["cancelled_by_id"], body["decided_by_id"]) == (
        "cancelled",
        canceller.id,
        c.leader.id,  # who approved it
    )


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_worker_is_told_the_decision_on_their_leave(client, session, community, decision):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    assert decide(client, c, leave, decision).status_code == 200
    notices = session.scalars(select(Notification).where(Notification.kind == "leave_decided"))
    assert [(n.user_id, n.data["leave_id"], n.data["status"]) for n in notices] == [
        (worker.id, str(leave["id"]), "approved" if decision == "approve" else "rejected")
    ]


def test_a_workers_approved_leave_cancelled_by_a_leader_is_told_to_the_worker(
    client, session, community
):
    """They would otherwise stay home on days the roster now expects them."""
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    decide(client, c, leave)
    assert cancel(client, c, leave["id"], c.admin).status_code == 200
    notices = session.scalars(select(Notification).where(Notification.kind == "leave_cancelled"))
    assert [(n.user_id, n.data["leave_id"]) for n in notices] == [(worker.id, str(leave["id"]))]


def test_approved_leave_withdrawn_by_the_worker_is_told_to_whoever_approved_it(
    client, session, community
):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    decide(client, c, leave)  # by the leader
    assert cancel(client, c, leave["id"], worker).status_code == 200
    notices = session.scalars(select(Notification).where(Notification.kind == "leave_cancelled"))
    assert [n.user_id for n in notices] == [c.leader.id]


def test_the_approver_told_of_a_withdrawn_or_shortened_leave_reads_whose_it_is(
    client, app, session, community
):
    """The approver's notice of a leave the worker withdrew or ended early names the worker.
    Before, it was the worker's own wording ("the leave of these days is cancelled, you report
    for duty as usual"), no name: a leader, who takes leave too, read it as their own."""
    c = community
    worker = c.workers[3]
    withdrawn = request_leave(client, c, worker, WED, THU).get_json()
    decide(client, c, withdrawn)
    shortened = request_leave(client, c, worker, FRI, SUN).get_json()
    decide(client, c, shortened)
    assert cancel(client, c, withdrawn["id"], worker).status_code == 200
    assert end(client, c, shortened["id"], FRI, worker).status_code == 200
    bodies = session.scalars(
        select(Notification.body)
        .where(Notification.user_id == c.leader.id)
        .where(Notification.kind.in_(("leave_cancelled", "leave_shortened")))
        .order_by(Notification.id)
    ).all()
    assert len(bodies) == 2
    for body in bodies:
        assert worker.display_name in body
        assert "须照常到岗" not in body  # the leader is not the one due back


def told_of(session, kind: str) -> dict[int, Notification]:
    rows = session.scalars(select(Notification).where(Notification.kind == kind))
    return {n.user_id: n for n in rows}


def test_a_leave_request_is_told_to_those_who_decide_it(client, session, community):
    """Nobody was told of a request: it waited until a leader happened to look. The leader of
    the worker's grid and the community's admin are told, by name and days (not the reason,
    which may be the worker's health: it is read in the app)."""
    c = community
    worker = c.workers[6]  # holds grid 0, which the leader leads
    leave = request_leave(client, c, worker).get_json()
    told = told_of(session, "leave_requested")
    assert set(told) == {c.leader.id, c.admin.id}
    for notice in told.values():
        assert worker.display_name in notice.body and "家事" not in notice.body
        assert notice.collapse_key == f"leave:{leave['id']}"
        assert notice.data["leave_id"] == str(leave["id"])


def test_a_request_from_a_grid_no_leader_leads_is_told_to_the_admin(client, session, community):
    c = community
    request_leave(client, c, c.workers[3])  # grid 3: no leader named
    assert set(told_of(session, "leave_requested")) == {c.admin.id}


def test_a_leaders_own_request_is_told_to_the_admin_not_to_themself(client, session, community):
    c = community
    request_leave(client, c, c.leader)
    assert set(told_of(session, "leave_requested")) == {c.admin.id}


def test_a_requested_leave_withdrawn_by_the_worker_is_told_to_those_told_of_it(
    client, session, community
):
    """Told of the request, the deciders are told it is withdrawn (the same collapse key: the
    phone replaces the request's notice), so nobody decides a request that is gone."""
    c = community
    leave = request_leave(client, c, c.workers[6]).get_json()
    assert cancel(client, c, leave["id"], c.workers[6]).status_code == 200
    told = told_of(session, "leave_cancelled")
    assert set(told) == {c.leader.id, c.admin.id}
    assert all(n.collapse_key == f"leave:{leave['id']}" for n in told.values())


def test_a_leader_cancels_their_own_leave(client, community):
    c = community
    leave = request_leave(client, c, c.leader).get_json()
    decide(client, c, leave, who=c.admin)
    assert cancel(client, c, leave["id"], c.leader).get_json()["status"] == "cancelled"


@pytest.mark.parametrize("closed_by", ["reject", "cancel"])
def test_cancelling_a_rejected_or_cancelled_leave_is_409_and_changes_nothing(
    client, session, community, closed_by
):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    if closed_by == "reject":
        decide(client, c, leave, "reject")
    else:
        cancel(client, c, leave["id"], worker)
    before = session.get(Leave, leave["id"])
    status, decided_by = before.status, before.decided_by_id
    response = cancel(client, c, leave["id"], c.admin)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert f"already {status}" in response.get_json()["detail"]
    session.expire_all()
    after = session.get(Leave, leave["id"])
    assert (after.status, after.decided_by_id) == (status, decided_by)


@pytest.mark.parametrize("days", [(MON, TUE), (TUE, THU)], ids=["over", "under-way"])
def test_cancelling_approved_leave_whose_days_have_begun_is_409_and_changes_nothing(
    client, app, session, community, days
):
    """Days already taken are a record: the leave that covered them stays approved."""
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, *days).get_json()
    decide(client, c, leave)
    set_today(app, WED)
    response = cancel(client, c, leave["id"], worker)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert str(days[0]) in response.get_json()["detail"]
    session.expire_all()
    assert session.get(Leave, leave["id"]).status == "approved"


def test_approved_leave_starting_today_can_still_be_cancelled(client, app, community):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, WED, THU).get_json()
    decide(client, c, leave)
    set_today(app, WED)
    assert cancel(client, c, leave["id"], worker).get_json()["status"] == "cancelled"


def test_a_request_whose_days_passed_undecided_can_still_be_withdrawn(client, app, community):
    """It never took effect, so withdrawing it rewrites nothing."""
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, MON, TUE).get_json()
    set_today(app, WED)
    assert cancel(client, c, leave["id"], worker).get_json()["status"] == "cancelled"


def test_cancelled_leave_frees_its_days_for_a_new_request(client, community):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    cancel(client, c, leave["id"], worker)
    assert request_leave(client, c, worker).status_code == 201


def test_another_worker_cannot_cancel_leave_it_is_out_of_scope(client, session, community):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    response = cancel(client, c, leave["id"], c.workers[4])
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert session.get(Leave, leave["id"]).status == "requested"


def test_another_communitys_admin_cannot_cancel_leave(client, session, community, world):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    response = client.post(f"/api/v1/leaves/{leave['id']}/cancel", headers=world.auth("admin_a"))
    assert response.status_code == 404
    assert session.get(Leave, leave["id"]).status == "requested"


def test_a_district_viewer_reads_leave_but_cannot_cancel_it(client, session, community):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    response = cancel(client, c, leave["id"], c.viewer)
    assert response.status_code == 403
    assert session.get(Leave, leave["id"]).status == "requested"


def test_cancelling_an_unknown_leave_is_404(client, community):
    response = cancel(client, community, 987654321, community.leader)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_cancelling_leave_leaves_the_shifts_handed_on_with_their_new_holders(
    client, session, community
):
    """Approval listed the shifts to hand on; a leader did. Cancelling the leave does not take
    them back: the stand-in was told, and the roster is the leader's to change again."""
    c = community
    a, b = workers_pair(published_week(client, c), c)
    away = by_id(c, b["worker_id"])
    leave = request_leave(client, c, away, MON, MON).get_json()
    assert b["id"] in {s["id"] for s in decide(client, c, leave).get_json()["shifts_to_reassign"]}
    stand_in = next(w for w in c.workers[1:] if w.id not in (a["worker_id"], away.id))
    session.execute(delete(Shift).where(Shift.worker_id == stand_in.id, Shift.date == MON))
    handed = client.patch(
        f"/api/v1/shifts/{b['id']}", json={"worker_id": stand_in.id}, headers=c.auth(c.leader)
    )
    assert handed.status_code == 200
    assert cancel(client, c, leave["id"], away).get_json()["status"] == "cancelled"
    session.expire_all()
    assert session.get(Shift, b["id"]).worker_id == stand_in.id


# --- the past is not changed -------------------------------------------------------------------


def test_editing_a_shift_of_a_past_day_is_409_and_changes_nothing(client, app, session, community):
    c = community
    view = published_week(client, c)
    shift = next(s for s in all_shifts(view) if s["date"] == str(TUE) and s["post"] == "B")
    set_today(app, THU)
    response = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"post": "A"}, headers=c.auth(c.leader)
    )
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "past" in response.get_json()["detail"]
    session.expire_all()
    assert session.get(Shift, shift["id"]).post == "B"
    assert session.scalar(select(func.count()).select_from(ShiftChange)) == 0


def test_moving_a_shift_onto_a_past_day_is_409(client, app, session, community):
    c = community
    view = published_week(client, c)
    shift = next(s for s in all_shifts(view) if s["date"] == str(FRI))
    set_today(app, THU)
    response = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"date": str(SUN)}, headers=c.auth(c.leader)
    )
    assert response.status_code == 200  # a later day of the week: allowed
    response = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"date": str(WED)}, headers=c.auth(c.leader)
    )
    assert response.status_code == 409
    assert "past" in response.get_json()["detail"]
    session.expire_all()
    assert session.get(Shift, shift["id"]).date == SUN


def test_a_shift_of_today_can_still_be_edited(client, app, community):
    c = community
    view = published_week(client, c)
    shift = next(s for s in all_shifts(view) if s["date"] == str(THU) and s["post"] == "B")
    set_today(app, THU)
    response = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"post": "A"}, headers=c.auth(c.leader)
    )
    assert response.status_code == 200, response.get_json()


def test_today_is_the_date_in_beijing(client, app, community):
    """23:30 UTC on Wednesday is already Thursday in Beijing: Wednesday's shifts are past."""
    c = community
    view = published_week(client, c)
    shift = next(s for s in all_shifts(view) if s["date"] == str(WED) and s["post"] == "B")
    app.config["FIXED_NOW"] = datetime.combine(WED, time(23, 30), UTC)
    response = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"post": "A"}, headers=c.auth(c.leader)
    )
    assert response.status_code == 409


def test_a_swap_of_a_past_shift_is_409_and_opens_nothing(client, app, session, community):
    c = community
    a, b = workers_pair(published_week(client, c), c, day=MON)
    set_today(app, WED)
    response = request_swap(client, c, a, b)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "past" in response.get_json()["detail"]
    assert swaps_and_notices(session) == (0, 0)


def test_accepting_a_swap_after_its_day_passed_is_409_and_changes_nothing(
    client, app, session, community
):
    c = community
    a, b = workers_pair(published_week(client, c), c, day=TUE)
    swap = request_swap(client, c, a, b).get_json()
    set_today(app, WED)
    response = client.post(
        f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert response.status_code == 409
    assert "past" in response.get_json()["detail"]
    session.expire_all()
    assert session.get(Shift, a["id"]).worker_id == a["worker_id"]
    assert session.get(ShiftSwap, swap["id"]).status == "requested"


# --- deactivated workers -----------------------------------------------------------------------


def deactivate(session, user) -> None:
    user.active = False
    session.flush()


def test_handing_a_shift_to_a_deactivated_worker_is_422_and_changes_nothing(
    client, session, community
):
    c = community
    shift = first_b(published_week(client, c))
    gone = next(w for w in c.workers[1:] if w.id != shift["worker_id"])
    day = date.fromisoformat(shift["date"])
    session.execute(delete(Shift).where(Shift.worker_id == gone.id, Shift.date == day))
    deactivate(session, gone)
    response = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"worker_id": gone.id}, headers=c.auth(c.leader)
    )
    assert response.status_code == 422
    assert "worker_id" in response.get_json()["errors"]["json"]
    session.expire_all()
    assert session.get(Shift, shift["id"]).worker_id == shift["worker_id"]


def test_a_swap_with_a_deactivated_workers_shift_is_409_and_opens_nothing(
    client, session, community
):
    c = community
    a, b = workers_pair(published_week(client, c), c)
    deactivate(session, by_id(c, b["worker_id"]))
    response = request_swap(client, c, a, b)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "deactivated" in response.get_json()["detail"]
    assert swaps_and_notices(session) == (0, 0)


@pytest.mark.parametrize("side", ["requester", "other"])
def test_approving_a_swap_whose_worker_was_deactivated_is_409_and_changes_nothing(
    client, session, community, side
):
    c = community
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    gone = by_id(c, a["worker_id"] if side == "requester" else b["worker_id"])
    deactivate(session, gone)
    response = client.post(f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(c.admin))
    assert response.status_code == 409
    assert "deactivated" in response.get_json()["detail"]
    assert_shifts_unswapped(session, a, b)
    assert session.get(ShiftSwap, swap["id"]).status == "requested"


def make_admin(client, c, user) -> None:
    """The office makes the worker a community admin (PATCH /users/{id} role): the account
    keeps the shifts rosters still give it, listed for the office to re-roster."""
    changed = client.patch(
        f"/api/v1/users/{user.id}", json={"role": "community_admin"}, headers=c.auth(c.admin)
    )
    assert changed.status_code == 200, changed.get_json()


def test_a_swap_with_the_shift_of_a_worker_made_an_admin_is_409_and_opens_nothing(
    client, session, community
):
    """An exchange hands each worker the other's shift: the admin, out of field work, would
    take the worker's post, and the post would stand unstaffed (dispatch passes an admin by)."""
    c = community
    a, b = workers_pair(published_week(client, c), c)
    make_admin(client, c, by_id(c, b["worker_id"]))
    response = request_swap(client, c, a, b)
    assert response.status_code == 409
    assert "not a worker" in response.get_json()["detail"]
    assert swaps_and_notices(session) == (0, 0)


def test_approving_a_swap_whose_worker_was_made_an_admin_is_409_and_changes_nothing(
    client, session, community
):
    c = community
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    make_admin(client, c, by_id(c, b["worker_id"]))
    response = client.post(f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(c.admin))
    assert response.status_code == 409
    assert_shifts_unswapped(session, a, b)


# --- a swap cancelled by an edit ---------------------------------------------------------------


def test_an_edit_that_cancels_a_swap_tells_both_its_workers(client, session, community):
    c = community
    a, b, swap = swap_then_move(client, c)
    notices = session.scalars(
        select(Notification).where(Notification.kind == "shift_swap_cancelled")
    ).all()
    assert sorted(n.user_id for n in notices) == sorted((a["worker_id"], b["worker_id"]))
    assert all(n.data["swap_id"] == str(swap["id"]) for n in notices)
    assert all(n.collapse_key == f"swap:{swap['id']}" for n in notices)


@pytest.mark.parametrize("who", ["other", "leader"])
def test_a_rejected_swap_is_told_to_its_workers_but_the_one_who_rejected_it(
    client, session, community, who
):
    c = community
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    rejecter = by_id(c, b["worker_id"]) if who == "other" else c.leader
    rejected = client.post(f"/api/v1/swaps/{swap['id']}/reject", headers=c.auth(rejecter))
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    notices = session.scalars(
        select(Notification).where(Notification.kind == "shift_swap_rejected")
    ).all()
    expected = {a["worker_id"], b["worker_id"]} - {rejecter.id}
    assert {n.user_id for n in notices} == expected
    assert all(n.collapse_key == f"swap:{swap['id']}" for n in notices)


def test_a_swap_withdrawn_by_its_requester_is_told_to_the_other_worker(client, session, community):
    c = community
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    requester = by_id(c, a["worker_id"])
    withdrawn = client.post(f"/api/v1/swaps/{swap['id']}/reject", headers=c.auth(requester))
    assert withdrawn.get_json()["status"] == "cancelled"
    notices = session.scalars(
        select(Notification).where(Notification.kind == "shift_swap_cancelled")
    ).all()
    assert [n.user_id for n in notices] == [b["worker_id"]]


def test_an_edit_that_changes_nothing_cancels_no_swap_and_sends_no_notice(
    client, session, community
):
    c = community
    a, b = workers_pair(published_week(client, c), c)
    swap = request_swap(client, c, a, b).get_json()
    edited = client.patch(
        f"/api/v1/shifts/{b['id']}", json={"post": b["post"]}, headers=c.auth(c.leader)
    )
    assert edited.status_code == 200
    assert session.get(ShiftSwap, swap["id"]).status == "requested"
    assert (
        session.scalar(select(func.count()).where(Notification.kind == "shift_swap_cancelled")) == 0
    )


def test_an_edit_that_changes_nothing_is_not_logged_nor_told_as_a_change(
    client, session, community
):
    """A form saved as it was (PATCH with the shift's own values) changed nothing. Before, the
    change log of the published roster got an entry whose before and after were the same,
    and the worker was told their shift had changed."""
    c = community
    view = published_week(client, c)
    _, b = workers_pair(view, c)
    edited = client.patch(
        f"/api/v1/shifts/{b['id']}",
        json={"post": b["post"], "grid_code": b["grid_code"], "worker_id": b["worker_id"]},
        headers=c.auth(c.leader),
    )
    assert edited.status_code == 200
    changes = client.get(f"/api/v1/rosters/{view['id']}/changes", headers=c.auth(c.leader))
    assert changes.get_json() == []
    told = session.scalar(select(func.count()).where(Notification.kind == "roster_changed"))
    assert told == 0


# --- one rest-day rule -------------------------------------------------------------------------


def test_the_solver_and_dispatch_read_rest_days_by_one_rule(client, session, community):
    """The roster's unavailable days and dispatch's `resting` agree, day by day."""
    c = community
    rest = {str(c.workers[2].id): [1, 3], str(c.workers[5].id): [5]}
    client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={"rest_days": rest},
        headers=c.auth(c.admin),
    )
    row = session.get(Community, c.code)
    session.refresh(row)
    settings = roster_service.roster_settings(row)
    inp = roster_service.roster_input(session, row, WEEK)
    expected = {
        (w.id, d)
        for w in c.workers
        for d in week_dates(WEEK)
        if roster_service.resting(settings, w.id, d)
    }
    assert inp.unavailable == frozenset(expected)
    assert {(c.workers[2].id, MON), (c.workers[2].id, WED), (c.workers[5].id, FRI)} == expected


# --- a cancel keeps the decision ---------------------------------------------------------------


def test_cancelling_approved_leave_keeps_who_approved_it_and_records_who_cancelled(
    client, session, community
):
    """The decision and the cancel are two facts: after a cancel the leave still names the
    leader who approved it, and the worker who withdrew it."""
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker).get_json()
    approved = decide(client, c, leave).get_json()
    response = cancel(client, c, leave["id"], worker)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert (body["decided_by_id"], body["decided_at"]) == (c.leader.id, approved["decided_at"])
    assert body["cancelled_by_id"] == worker.id and body["cancelled_at"] is not None
    listed = client.get("/api/v1/leaves", headers=c.auth(c.leader)).get_json()
    assert [(x["decided_by_id"], x["cancelled_by_id"]) for x in listed] == [
        (c.leader.id, worker.id)
    ]


def test_a_leave_not_cancelled_has_no_canceller(client, community):
    c = community
    leave = request_leave(client, c, c.workers[3]).get_json()
    assert (leave["cancelled_by_id"], leave["cancelled_at"]) == (None, None)
    decided = decide(client, c, leave).get_json()
    assert (decided["cancelled_by_id"], decided["cancelled_at"]) == (None, None)


# --- publishing tells the workers of the swaps it cancels ----------------------------------------


def test_publishing_tells_both_workers_of_a_draft_swap_it_cancels(client, session, community):
    """As an edit does: the swap's notice on their phones is replaced (same collapse key)."""
    c = community
    view = generate(client, c).get_json()
    a, b = workers_pair(view, c)
    swap = draft_swap(session, c, a, b)
    assert publish(client, c, view["id"]).status_code == 200
    session.refresh(swap)
    assert swap.status == "cancelled"
    notices = session.scalars(
        select(Notification).where(Notification.kind == "shift_swap_cancelled")
    ).all()
    assert sorted(n.user_id for n in notices) == sorted((a["worker_id"], b["worker_id"]))
    assert all(n.data["swap_id"] == str(swap.id) for n in notices)
    assert all(n.collapse_key == f"swap:{swap.id}" for n in notices)


# --- ending leave early ------------------------------------------------------------------------


def end(client, c, leave_id, last_day, who):
    return client.post(
        f"/api/v1/leaves/{leave_id}/end", json={"last_day": str(last_day)}, headers=c.auth(who)
    )


def leave_under_way(client, app, c, worker, start=TUE, end_=FRI, today=THU):
    """Approved leave over [start, end_] (by the leader), the clock moved to `today`."""
    leave = request_leave(client, c, worker, start, end_).get_json()
    assert decide(client, c, leave).status_code == 200
    set_today(app, today)
    return leave


def test_a_worker_back_early_ends_their_leave_under_way(client, app, session, community):
    c = community
    worker = c.workers[3]
    leave = leave_under_way(client, app, c, worker)
    response = end(client, c, leave["id"], WED, worker)  # back on Thursday, today
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["start_date"], body["end_date"]) == (
        "approved",
        str(TUE),
        str(WED),
    )
    assert body["approved_end_date"] == str(FRI)
    assert body["shortened_by_id"] == worker.id and body["shortened_at"] is not None
    assert body["decided_by_id"] == c.leader.id  # the approval stands


@pytest.mark.parametrize("who", ["leader", "admin"])
def test_a_leader_or_admin_ends_a_workers_leave_early(client, app, community, who):
    c = community
    leave = leave_under_way(client, app, c, c.workers[3])
    response = end(client, c, leave["id"], THU, getattr(c, who))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["end_date"] == str(THU)
    assert response.get_json()["shortened_by_id"] == getattr(c, who).id


def test_leave_not_yet_begun_can_be_shortened(client, community):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, WED, FRI).get_json()
    decide(client, c, leave)
    assert end(client, c, leave["id"], WED, worker).get_json()["end_date"] == str(WED)


def test_the_days_after_an_early_end_are_worked_again(client, app, session, community):
    """Everything reading the leave's days follows its new last day: the roster generated
    after it, the edit and swap checks, task dispatch and the shifts listed to hand on."""
    from api.services import dispatch

    c = community
    worker = c.workers[3]
    leave = leave_under_way(client, app, c, worker, TUE, FRI, today=WED)
    assert end(client, c, leave["id"], WED, worker).status_code == 200
    assert roster_service._on_leave(session, worker.id, WED)
    assert not roster_service._on_leave(session, worker.id, THU)
    assert not dispatch.on_leave(session, worker.id, FRI)
    row = session.get(Leave, leave["id"])
    session.refresh(row)
    shifts = all_shifts(generate(client, c).get_json())
    assert {str(THU), str(FRI)} <= {s["date"] for s in shifts if s["worker_id"] == worker.id}
    assert {s.date for s in roster_service.shifts_during_leave(session, row)} <= {TUE, WED}
    inp = roster_service.roster_input(session, session.get(Community, c.code), WEEK)
    assert (worker.id, WED) in inp.unavailable and (worker.id, THU) not in inp.unavailable


def test_ending_leave_early_tells_whoever_counts_on_it(client, app, session, community):
    """The approver when the worker ends it; the worker when a leader or admin does."""
    c = community
    worker = c.workers[3]
    mine = leave_under_way(client, app, c, worker, TUE, WED, today=TUE)
    theirs = leave_under_way(client, app, c, c.workers[4], TUE, FRI, today=TUE)
    assert end(client, c, mine["id"], TUE, worker).status_code == 200
    assert end(client, c, theirs["id"], THU, c.admin).status_code == 200
    notices = session.scalars(
        select(Notification).where(Notification.kind == "leave_shortened").order_by(Notification.id)
    ).all()
    assert [(n.user_id, n.data["leave_id"], n.collapse_key) for n in notices] == [
        (c.leader.id, str(mine["id"]), f"leave:{mine['id']}"),
        (c.workers[4].id, str(theirs["id"]), f"leave:{theirs['id']}"),
    ]


def leave_row(session, leave_id):
    session.expire_all()
    row = session.get(Leave, leave_id)
    return (row.status, row.start_date, row.end_date, row.approved_end_date, row.shortened_by_id)


@pytest.mark.parametrize(
    ("last_day", "status", "says"),
    [
        (MON, 409, "yesterday"),  # before yesterday (Wednesday): those days are on record
        (FRI, 422, "last_day"),  # the leave's own last day: nothing to shorten
        (SAT, 422, "last_day"),  # after it: leave is lengthened by a new request
    ],
    ids=["before-yesterday", "its-end", "after-its-end"],
)
def test_an_early_end_outside_the_days_left_is_refused_and_changes_nothing(
    client, app, session, community, last_day, status, says
):
    c = community
    worker = c.workers[3]
    leave = leave_under_way(client, app, c, worker, MON, FRI, today=THU)
    before = leave_row(session, leave["id"])
    response = end(client, c, leave["id"], last_day, worker)
    assert response.status_code == status, response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert says in str(response.get_json())
    assert leave_row(session, leave["id"]) == before
    assert session.scalar(select(func.count()).where(Notification.kind == "leave_shortened")) == 0


def test_an_early_end_before_the_leaves_first_day_is_422(client, session, community):
    """Leave not begun is cancelled, not ended before it starts."""
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, WED, FRI).get_json()
    decide(client, c, leave)
    response = end(client, c, leave["id"], TUE, worker)
    assert response.status_code == 422
    assert "cancel" in response.get_json()["detail"]
    assert leave_row(session, leave["id"])[2] == FRI


def test_yesterday_may_be_the_last_day_of_leave(client, app, community):
    """A worker back this morning: yesterday was their last day away."""
    c = community
    leave = leave_under_way(client, app, c, c.workers[3], MON, FRI, today=THU)
    assert end(client, c, leave["id"], WED, c.leader).get_json()["end_date"] == str(WED)


def test_leave_already_over_is_not_shortened(client, app, session, community):
    c = community
    worker = c.workers[3]
    leave = leave_under_way(client, app, c, worker, MON, TUE, today=THU)
    before = leave_row(session, leave["id"])
    response = end(client, c, leave["id"], MON, worker)
    assert response.status_code == 409
    assert "over" in response.get_json()["detail"]
    assert leave_row(session, leave["id"]) == before


@pytest.mark.parametrize("state", ["requested", "rejected", "cancelled"])
def test_only_approved_leave_is_ended_early(client, session, community, state):
    c = community
    worker = c.workers[3]
    leave = request_leave(client, c, worker, WED, FRI).get_json()
    if state == "rejected":
        decide(client, c, leave, "reject")
    elif state == "cancelled":
        cancel(client, c, leave["id"], worker)
    response = end(client, c, leave["id"], THU, worker)
    assert response.status_code == 409
    assert state in response.get_json()["detail"]
    assert leave_row(session, leave["id"])[0] == state
    assert leave_row(session, leave["id"])[2] == FRI


@pytest.mark.parametrize(
    ("who", "status"), [("other-worker", 404), ("viewer", 403)], ids=["other-worker", "viewer"]
)
def test_only_who_may_cancel_leave_ends_it_early(client, app, session, community, who, status):
    c = community
    leave = leave_under_way(client, app, c, c.workers[3])
    caller = c.workers[4] if who == "other-worker" else c.viewer
    response = end(client, c, leave["id"], WED, caller)
    assert response.status_code == status
    assert leave_row(session, leave["id"])[2] == FRI


@pytest.mark.parametrize("body", [{}, {"last_day": "Thursday"}, {"last_day": None}])
def test_an_early_end_needs_a_last_day(client, app, community, body):
    c = community
    leave = leave_under_way(client, app, c, c.workers[3])
    response = client.post(
        f"/api/v1/leaves/{leave['id']}/end", json=body, headers=c.auth(c.workers[3])
    )
    assert response.status_code == 422
    assert "last_day" in response.get_json()["errors"]["json"]


def test_ending_leave_early_twice_keeps_the_approved_end(client, app, community):
    c = community
    worker = c.workers[3]
    leave = leave_under_way(client, app, c, worker, TUE, SUN, today=TUE)
    end(client, c, leave["id"], FRI, worker)
    body = end(client, c, leave["id"], WED, worker).get_json()
    assert (body["end_date"], body["approved_end_date"]) == (str(WED), str(SUN))


# --- swaps whose day passed expire ---------------------------------------------------------------


def beijing(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), LOCAL).astimezone(UTC)


def open_swap_on(client, c, day):
    a, b = workers_pair(published_week(client, c), c, day=day)
    swap = request_swap(client, c, a, b).get_json()
    assert swap["status"] == "requested"
    return a, b, swap


def test_the_tick_expires_a_swap_whose_day_passed_and_tells_both_workers(
    client, session, community
):
    """The worker asked holds the request's notice: the expiry replaces it (one collapse key),
    so nobody tries to accept a swap that is gone."""
    c = community
    a, b, swap = open_swap_on(client, c, TUE)
    assert roster_service.expire_swaps(session, beijing(TUE, 23)) == []  # its day: still open
    expired = roster_service.expire_swaps(session, beijing(WED, 0))
    assert [s.id for s in expired] == [swap["id"]]
    row = session.get(ShiftSwap, swap["id"])
    assert (row.status, row.decided_by_id, row.decided_at) == ("expired", None, beijing(WED, 0))
    notices = session.scalars(
        select(Notification).where(Notification.kind == "shift_swap_expired")
    ).all()
    assert sorted((n.user_id, n.data["swap_id"], n.collapse_key) for n in notices) == sorted(
        (worker, str(swap["id"]), f"swap:{swap['id']}")
        for worker in (a["worker_id"], b["worker_id"])
    )
    assert roster_service.expire_swaps(session, beijing(THU)) == []  # once only


def test_a_swap_a_leader_asked_for_tells_the_leader_too_when_it_expires(client, session, community):
    c = community
    a, b = workers_pair(published_week(client, c), c, day=TUE)
    swap = request_swap(client, c, a, b, who=c.leader).get_json()
    roster_service.expire_swaps(session, beijing(WED, 0))
    told = session.scalars(
        select(Notification.user_id).where(Notification.kind == "shift_swap_expired")
    ).all()
    assert sorted(told) == sorted({a["worker_id"], b["worker_id"], c.leader.id})
    assert session.get(ShiftSwap, swap["id"]).status == "expired"


def test_the_tick_leaves_open_a_swap_whose_days_are_ahead(client, session, community):
    c = community
    _, _, swap = open_swap_on(client, c, THU)
    assert roster_service.expire_swaps(session, beijing(WED)) == []
    assert session.get(ShiftSwap, swap["id"]).status == "requested"


def test_the_push_workers_tick_expires_stale_swaps(client, app, session, community, monkeypatch):
    import logging

    from api import cli

    c = community
    _, _, swap = open_swap_on(client, c, MON)
    session.commit()
    monkeypatch.setattr(cli, "database_now", lambda session: beijing(TUE))
    with app.app_context():
        cli._worker_tick(logging.getLogger("test"))
    session.expire_all()
    assert session.get(ShiftSwap, swap["id"]).status == "expired"


def test_gridwork_rosters_tick_expires_stale_swaps(client, app, session, community):
    from click.testing import CliRunner

    from api.cli import main

    c = community
    _, _, swap = open_swap_on(client, c, MON)
    session.commit()
    with app.app_context():
        result = CliRunner().invoke(main, ["rosters", "tick", "--now", beijing(TUE).isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 swap expired" in result.output
    session.expire_all()
    assert session.get(ShiftSwap, swap["id"]).status == "expired"


def test_a_stale_swap_reads_as_expired_before_the_tick(client, app, session, community):
    c = community
    a, _, swap = open_swap_on(client, c, MON)
    requester = by_id(c, a["worker_id"])
    set_today(app, TUE)
    one = client.get(f"/api/v1/swaps/{swap['id']}", headers=c.auth(requester))
    assert one.status_code == 200 and one.get_json()["status"] == "expired"
    listed = client.get("/api/v1/swaps", headers=c.auth(c.leader)).get_json()
    assert [(s["id"], s["status"]) for s in listed] == [(swap["id"], "expired")]
    assert session.get(ShiftSwap, swap["id"]).status == "requested"  # a read writes nothing


def test_swap_filters_tell_open_swaps_from_expired_ones(client, app, community):
    c = community
    view = published_week(client, c)
    a, b = workers_pair(view, c, day=MON)
    stale = request_swap(client, c, a, b).get_json()
    a2, b2 = workers_pair(view, c, day=FRI)
    fresh = request_swap(client, c, a2, b2).get_json()
    set_today(app, WED)

    def ids(**query):
        got = client.get("/api/v1/swaps", query_string=query, headers=c.auth(c.leader))
        assert got.status_code == 200, got.get_json()
        return [s["id"] for s in got.get_json()]

    assert ids(status="requested") == [fresh["id"]]
    assert ids(status="expired") == [stale["id"]]
    assert ids() == [stale["id"], fresh["id"]]
    assert ids(worker=str(a2["worker_id"])) == [fresh["id"]]
    assert ids(week=WEEK, status="expired") == [stale["id"]]
    assert ids(week=NEXT_WEEK) == []
    mine = client.get(
        "/api/v1/swaps", query_string={"worker": "me"}, headers=c.auth(by_id(c, a["worker_id"]))
    ).get_json()
    assert stale["id"] in [s["id"] for s in mine]


def test_a_worker_lists_only_the_swaps_they_are_part_of(client, community):
    c = community
    a, b, swap = open_swap_on(client, c, TUE)
    third = next(w for w in c.workers[1:] if w.id not in (a["worker_id"], b["worker_id"]))
    assert client.get("/api/v1/swaps", headers=c.auth(third)).get_json() == []
    assert client.get(f"/api/v1/swaps/{swap['id']}", headers=c.auth(third)).status_code == 404


def test_rejecting_an_expired_swap_is_409_and_changes_nothing(client, app, session, community):
    c = community
    _, b, swap = open_swap_on(client, c, MON)
    set_today(app, TUE)
    response = client.post(
        f"/api/v1/swaps/{swap['id']}/reject", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "expired" in response.get_json()["detail"]
    session.expire_all()
    assert session.get(ShiftSwap, swap["id"]).status == "requested"
    assert (
        session.scalar(select(func.count()).where(Notification.kind == "shift_swap_rejected")) == 0
    )


# --- publishing checks the draft's workers again -------------------------------------------------


def refused_publish(client, session, c, roster_id) -> dict:
    """Publishing is a 409 problem and writes nothing: the roster stays a draft, nobody told."""
    response = publish(client, c, roster_id)
    assert response.status_code == 409, response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    session.expire_all()
    assert session.get(Roster, roster_id).status == "draft"
    notices = select(func.count()).where(Notification.kind == "roster_published")
    assert session.scalar(notices) == 0
    return response.get_json()


def listed(body: dict) -> dict[int, tuple]:
    return {
        s["shift_id"]: (s["date"], s["post"], s["worker_id"], s["reason"]) for s in body["shifts"]
    }


def test_publishing_a_draft_naming_a_deactivated_worker_is_409_listing_their_shifts(
    client, session, community
):
    """Switched off after the draft was made: published as it was, the roster expected them at
    posts they will not take, and nobody was told the posts were empty."""
    c = community
    view = generate(client, c).get_json()
    gone = c.workers[3]
    deactivate(session, gone)
    body = refused_publish(client, session, c, view["id"])
    theirs = [s for s in all_shifts(view) if s["worker_id"] == gone.id]
    assert listed(body) == {s["id"]: (s["date"], s["post"], gone.id, "deactivated") for s in theirs}
    first = body["shifts"][0]
    assert first["grid_code"] == theirs[0]["grid_code"] or theirs[0]["post"] == "A"
    assert "deactivated" in first["why"]
    assert body["roster_id"] == view["id"]


def test_publishing_a_draft_naming_a_worker_made_an_admin_is_409(client, session, community):
    c = community
    view = generate(client, c).get_json()
    moved = c.workers[4]
    make_admin(client, c, moved)
    body = refused_publish(client, session, c, view["id"])
    assert {s["worker_id"] for s in body["shifts"]} == {moved.id}
    assert {s["reason"] for s in body["shifts"]} == {"not_a_worker"}
    assert len(body["shifts"]) == sum(s["worker_id"] == moved.id for s in all_shifts(view))


def test_publishing_a_draft_naming_a_worker_on_approved_leave_that_day_is_409(
    client, session, community
):
    c = community
    view = generate(client, c).get_json()
    worker = c.workers[5]
    leave = request_leave(client, c, worker, WED, WED).get_json()
    assert decide_leave(client, c, leave, "approve")["status"] == "approved"
    body = refused_publish(client, session, c, view["id"])
    (shift,) = [
        s for s in all_shifts(view) if s["worker_id"] == worker.id and s["date"] == str(WED)
    ]
    assert listed(body) == {shift["id"]: (str(WED), shift["post"], worker.id, "on_leave")}
    assert str(WED) in body["detail"]


def test_requested_leave_does_not_block_publishing(client, community):
    c = community
    view = generate(client, c).get_json()
    request_leave(client, c, c.workers[5], WED, WED)
    assert publish(client, c, view["id"]).status_code == 200


def test_a_draft_regenerated_after_the_change_publishes(client, session, community):
    c = community
    view = generate(client, c).get_json()
    deactivate(session, c.workers[3])
    leave = request_leave(client, c, c.workers[5], WED, WED).get_json()
    decide_leave(client, c, leave, "approve")
    assert publish(client, c, view["id"]).status_code == 409
    again = generate(client, c).get_json()
    assert publish(client, c, again["id"]).status_code == 200


def test_a_shift_handed_on_in_the_draft_no_longer_blocks_publishing(client, session, app):
    """Two workers without a grid beside a window of one: one of them is free each day."""
    c = make_roster_community(session, app, 8, 6, roster={"a_min": 1, "a_max": 1})
    floaters = [w.id for w in c.workers[6:]]
    session.execute(delete(user_grids).where(user_grids.c.user_id.in_(floaters)))
    session.flush()
    view = generate(client, c).get_json()
    on_wed = {s["worker_id"] for s in all_shifts(view) if s["date"] == str(WED)}
    free = next(w for w in c.workers if w.id not in on_wed)
    worker = next(w for w in c.workers[1:] if w.id in on_wed and w.id not in floaters)
    leave = request_leave(client, c, worker, WED, WED).get_json()
    decide_leave(client, c, leave, "approve")
    (shift,) = [
        s for s in all_shifts(view) if s["worker_id"] == worker.id and s["date"] == str(WED)
    ]
    refused_publish(client, session, c, view["id"])
    handed = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"worker_id": free.id}, headers=c.auth(c.leader)
    )
    assert handed.status_code == 200, handed.get_json()
    assert publish(client, c, view["id"]).status_code == 200


def test_a_deactivated_workers_shifts_on_days_gone_do_not_block_publishing(
    client, app, session, community
):
    """Monday and Tuesday are kept as they were worked (a record, not edited): only the days
    from today on must be staffed by workers who will come."""
    c = community
    generate(client, c)
    gone = c.workers[3]
    deactivate(session, gone)
    set_today(app, WED)
    view = generate(client, c).get_json()
    kept = [s for s in all_shifts(view) if s["worker_id"] == gone.id]
    assert kept and {s["date"] for s in kept} <= {str(MON), str(TUE)}
    assert publish(client, c, view["id"]).status_code == 200


def assert_shifts_unswapped(session, a: dict, b: dict) -> None:
    """Shifts `a` and `b` (as answered) are held, as stored, by the workers they had."""
    session.expire_all()
    held = dict(
        session.execute(
            select(Shift.id, Shift.worker_id).where(Shift.id.in_((a["id"], b["id"])))
        ).all()
    )
    assert held == {a["id"]: a["worker_id"], b["id"]: b["worker_id"]}
