"""The weekly rest: each worker has a full day off every ISO week (Labour Law art. 38)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.api.test_rosters import BEFORE_THE_WEEK, SAT, SUN, all_shifts, generate, set_today
from tests.factories import make_roster_community

EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]  # the hall open seven days a week, as some offices keep it


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


def settings_url(c) -> str:
    return f"/api/v1/communities/{c.code}/roster-settings"


def days_worked(view: dict) -> Counter:
    return Counter(s["worker_id"] for s in all_shifts(view))


def test_the_weekly_rest_defaults_to_one_day(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    body = client.get(settings_url(c), headers=c.auth(c.workers[3])).get_json()
    assert body["min_rest_days_per_week"] == 1


def test_an_admin_sets_the_weekly_rest(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    put = client.put(settings_url(c), json={"min_rest_days_per_week": 2}, headers=c.auth(c.admin))
    assert put.status_code == 200, put.get_json()
    got = client.get(settings_url(c), headers=c.auth(c.admin)).get_json()
    assert got["min_rest_days_per_week"] == 2


@pytest.mark.parametrize("rest", [-1, 7, 1.5, "one"])
def test_a_weekly_rest_outside_zero_to_six_days_is_422_and_writes_nothing(
    client, session, app, rest
):
    c = make_roster_community(session, app, 8, 6)
    put = client.put(
        settings_url(c), json={"min_rest_days_per_week": rest}, headers=c.auth(c.admin)
    )
    assert put.status_code == 422
    assert "min_rest_days_per_week" in put.get_json()["errors"]["json"]
    got = client.get(settings_url(c), headers=c.auth(c.admin)).get_json()
    assert got["min_rest_days_per_week"] == 1


def test_a_seven_day_hall_rosters_nobody_all_seven_days(client, session, app):
    c = make_roster_community(session, app, 8, 6, roster={"working_days": EVERY_DAY})
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    worked = days_worked(response.get_json())
    assert max(worked.values()) == 6
    assert set(worked) == {w.id for w in c.workers}


def test_an_adjusted_working_weekend_leaves_everyone_a_rest_day(client, session, app):
    """调休: Saturday and Sunday worked in exchange for holidays of another week."""
    c = make_roster_community(
        session,
        app,
        8,
        6,
        roster={"extra_working_days": [str(SAT), str(SUN)]},
    )
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    assert max(days_worked(response.get_json()).values()) == 6


def test_a_regeneration_on_saturday_counts_the_days_kept_as_worked(client, app, session):
    """Monday to Friday kept as rostered (everyone worked them, under no rest rule): each
    worker takes one of Saturday and Sunday, not both."""
    c = make_roster_community(
        session, app, 8, 6, roster={"working_days": EVERY_DAY, "min_rest_days_per_week": 0}
    )
    assert max(days_worked(generate(client, c).get_json()).values()) == 7
    put = client.put(settings_url(c), json={"working_days": EVERY_DAY}, headers=c.auth(c.admin))
    assert put.status_code == 200, put.get_json()
    set_today(app, SAT)
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    assert max(days_worked(response.get_json()).values()) == 6


def test_a_week_too_short_of_hands_for_the_weekly_rest_keeps_the_rest_and_names_the_rule(
    client, session, app
):
    """Before 2026-12-05 a 422 naming the rule, nothing stored. Now the week is rostered: the
    rest day is kept (it stays a hard rule), the window is short three worker-days, each day
    said, and the rule named as the 422 named it."""
    c = make_roster_community(
        session, app, 3, 1, roster={"working_days": EVERY_DAY, "min_b_days_per_grid": 0}
    )
    response = generate(client, c)
    assert response.status_code == 201
    body = response.get_json()
    assert body["shortfall_rule"] == (
        "Weekly rest: 3 workers resting at least 1 day a week each have 18 worker-days"
        " for Mon–Sun, the window needs 21 (3 a day on 7 days)"
    )
    assert max(Counter(s["worker_id"] for s in all_shifts(body)).values()) == 6
    window = [s for s in body["shortfalls"] if s["rule"] == "window"]
    assert sum(s["short"] for s in window) == 3
    assert all("weekly rest" in s["why"] for s in window)
    assert "Worker 01" in " ".join(body["shortfall_details"])  # whom the rule holds back


def _seven_day_weeks(client, session, app):
    """A seven-day hall, two weeks published: each worker works six days of each week."""
    from tests.api.test_rosters import NEXT_WEEK, published_week

    c = make_roster_community(session, app, 8, 6, roster={"working_days": EVERY_DAY})
    return c, published_week(client, c), published_week(client, c, NEXT_WEEK)


def _rest_day(view: dict, worker_id: int) -> str:
    held = {s["date"] for s in all_shifts(view) if s["worker_id"] == worker_id}
    return next(d["date"] for d in view["days"] if d["date"] not in held)


def test_an_edit_giving_a_worker_their_rest_day_is_409_and_changes_nothing(client, session, app):
    """The solver keeps every worker's weekly rest, but an edit handing a worker a shift on
    their one free day of the week rostered them all seven days (Labour Law art. 38)."""
    from api.models import Shift

    c, _, week = _seven_day_weeks(client, session, app)
    worker = c.workers[3]
    free = _rest_day(week, worker.id)
    shift = next(s for s in all_shifts(week) if s["date"] == free and s["worker_id"] != worker.id)
    edited = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"worker_id": worker.id}, headers=c.auth(c.leader)
    )
    assert edited.status_code == 409, edited.get_json()
    assert "rest" in edited.get_json()["detail"]
    assert session.get(Shift, shift["id"]).worker_id == shift["worker_id"]


def test_a_swap_across_two_weeks_that_takes_a_workers_rest_day_is_409(client, session, app):
    """A swap of a day of one week for a day of the next moves a working day between weeks:
    onto the worker's rest day, it left them seven days without rest."""
    from api.models import Shift

    c, first, second = _seven_day_weeks(client, session, app)
    pairs = (
        (a, b)
        for a in all_shifts(first)
        for b in all_shifts(second)
        if a["worker_id"] != b["worker_id"]
        and _rest_day(second, a["worker_id"]) == b["date"]
        and _rest_day(first, b["worker_id"]) == a["date"]
    )
    a, b = next(pairs)
    requester = next(w for w in c.workers if w.id == a["worker_id"])
    asked = client.post(
        f"/api/v1/shifts/{a['id']}/swap", json={"with_shift_id": b["id"]}, headers=c.auth(requester)
    )
    assert asked.status_code == 409, asked.get_json()
    assert "rest" in asked.get_json()["detail"]
    assert session.get(Shift, a["id"]).worker_id == requester.id
