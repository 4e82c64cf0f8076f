"""A week's roster generated midweek: the days before today are kept as they were."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.models import Community, Notification, Roster, Shift
from api.services import rosters as roster_service
from tests.api.test_rosters import (
    BEFORE_THE_WEEK,
    FRI,
    MON,
    SAT,
    SUN,
    THU,
    TUE,
    WED,
    WEEK,
    all_shifts,
    generate,
    publish,
    set_today,
)
from tests.factories import make_roster_community


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


@pytest.fixture()
def community(session, app):
    """Eight workers over six grids, default settings (3–4 at the window, 3 B-days a grid)."""
    return make_roster_community(session, app, 8, 6)


def stored(session, roster_id) -> dict[int, tuple]:
    session.expire_all()
    rows = session.scalars(select(Shift).where(Shift.roster_id == roster_id))
    return {s.id: (s.date, s.post, s.worker_id, s.grid_id, s.relief_for_id) for s in rows}


def test_a_first_generation_on_wednesday_starts_that_day(client, app, community):
    set_today(app, WED)
    response = generate(client, community)
    assert response.status_code == 201, response.get_json()
    view = response.get_json()
    assert view["kept_days"] == [str(MON), str(TUE)]
    dates = {s["date"] for s in all_shifts(view)}
    assert dates == {str(WED), str(THU), str(FRI)}


def test_a_regeneration_on_wednesday_keeps_monday_and_tuesday_as_they_were(
    client, app, session, community
):
    first = generate(client, community).get_json()
    before = stored(session, first["id"])
    set_today(app, WED)
    response = generate(client, community)
    assert response.status_code == 201, response.get_json()
    second = response.get_json()
    assert second["kept_days"] == [str(MON), str(TUE)]
    after = stored(session, first["id"])
    past = {i: row for i, row in before.items() if row[0] < WED}
    assert past and {i: after[i] for i in past} == past
    # From today on the shifts are new rows, each day rostered again.
    assert not (set(after) - set(past)) & set(before)
    assert {row[0] for i, row in after.items() if i not in past} == {WED, THU, FRI}
    # The answer is the whole week, the kept days with it.
    assert sorted(s["id"] for s in all_shifts(second)) == sorted(after)


def test_the_window_days_kept_count_in_the_fairness_of_the_days_left(session, app, community):
    """A worker who held the window on Monday and Tuesday is not sent there first again."""
    c = community
    roster = Roster(community_code=c.code, week=WEEK, status="draft")
    session.add(roster)
    session.flush()
    kept = c.workers[3]
    session.add_all(
        Shift(roster_id=roster.id, date=day, post="A", worker_id=kept.id) for day in (MON, TUE)
    )
    session.flush()
    inp = roster_service.roster_input(session, session.get(Community, c.code), WEEK, today=WED)
    assert inp.first_day == WED
    assert inp.history_a_days.get(kept.id, 0) == 2


def test_regenerating_on_today_leaves_nothing_kept_of_the_days_ahead(client, app, community):
    set_today(app, MON)
    view = generate(client, community).get_json()
    assert view["kept_days"] == []
    assert str(MON) in {s["date"] for s in all_shifts(view)}


def test_a_week_ahead_keeps_no_day(client, community):
    view = generate(client, community).get_json()
    assert view["kept_days"] == []


def test_on_the_weekend_the_days_worked_are_kept_and_nothing_is_rostered(
    client, app, session, community
):
    first = generate(client, community).get_json()
    before = stored(session, first["id"])
    set_today(app, SAT)
    view = generate(client, community).get_json()
    assert view["kept_days"] == [str(d) for d in (MON, TUE, WED, THU, FRI)]
    assert stored(session, first["id"]) == before


def test_a_week_already_over_is_not_generated(client, app, session, community):
    set_today(app, SUN + timedelta(days=1))  # the Monday after
    response = generate(client, community)
    assert response.status_code == 409, response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "over" in response.get_json()["detail"]
    assert session.scalar(select(func.count(Roster.id))) == 0


def test_a_draft_of_a_week_already_over_is_not_published(client, app, session, community):
    """A draft left unpublished past its week was published all the same: every worker was
    told of a roster for days gone, its shifts became the record of who worked them, and the
    relief they named opened grids to visits after the fact."""
    draft = generate(client, community).get_json()
    set_today(app, SUN + timedelta(days=1))  # the Monday after
    response = publish(client, community, draft["id"])
    assert response.status_code == 409, response.get_json()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "over" in response.get_json()["detail"]
    session.expire_all()
    assert session.get(Roster, draft["id"]).status == "draft"
    assert session.scalar(select(func.count(Notification.id))) == 0


def test_a_draft_published_on_its_last_day_is_published(client, app, community):
    draft = generate(client, community).get_json()
    set_today(app, SUN)
    assert publish(client, community, draft["id"]).status_code == 200


def test_a_regeneration_on_wednesday_keeps_the_window_gaps_of_monday_and_tuesday(
    client, app, session
):
    """The days kept are a record, their gaps with them (`roster_shortfalls` reads a past
    day's gap only as the generation left it): a regeneration midweek replaced the stored gaps
    with its own, from today on, and Monday's and Tuesday's were gone from the roster."""
    short = make_roster_community(
        session, app, 2, 1, code="110105001007", roster={"a_min": 3, "a_max": 3}
    )
    first = generate(client, short).get_json()
    assert {("window", str(MON)), ("window", str(TUE))} <= {
        (s["rule"], s["date"]) for s in first["shortfalls"]
    }
    set_today(app, WED)
    again = generate(client, short).get_json()
    gaps = {(s["rule"], s["date"]) for s in again["shortfalls"]}
    assert {("window", str(d)) for d in (MON, TUE, WED, THU, FRI)} <= gaps
    # Recorded once, not once a generation.
    third = generate(client, short).get_json()
    dated = [(s["rule"], s["date"]) for s in third["shortfalls"] if s["date"]]
    assert len(dated) == len(set(dated))


def test_a_worker_kept_at_the_window_is_counted_once_with_the_week(client, app, session, community):
    """The answer's A-post days count the kept days and the new ones together."""
    generate(client, community)
    set_today(app, WED)
    view = generate(client, community).get_json()
    counted = Counter(s["worker_id"] for day in view["days"] for s in day["A"])
    assert view["a_days"] == {str(w): n for w, n in sorted(counted.items())}
