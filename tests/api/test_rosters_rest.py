"""The weekly rest: each worker has a full day off every ISO week (Labour Law art. 38)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from api.models import Roster
from tests.api.test_rosters import BEFORE_THE_WEEK, SAT, SUN, WEEK, all_shifts, generate, set_today
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


def test_a_week_too_short_of_hands_for_the_weekly_rest_is_422_naming_the_rule(client, session, app):
    c = make_roster_community(
        session, app, 3, 1, roster={"working_days": EVERY_DAY, "min_b_days_per_grid": 0}
    )
    response = generate(client, c)
    assert response.status_code == 422
    body = response.get_json()
    assert body["detail"] == (
        "Weekly rest: 3 workers resting at least 1 day a week each have 18 worker-days"
        " for Mon–Sun, the window needs 21 (3 a day on 7 days)"
    )
    assert "Worker 01" in " ".join(body["details"])
    assert body["week"] == WEEK
    assert session.scalar(select(Roster).where(Roster.community_code == c.code)) is None
