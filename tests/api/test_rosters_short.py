"""Short-staffed weeks through the API: the best roster, its gaps said, published knowingly."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from api.models import Notification, Roster, Shift
from tests.api.test_rosters import (
    BEFORE_THE_WEEK,
    FRI,
    MON,
    SUN,
    THU,
    TUE,
    WED,
    WEEK,
    all_shifts,
    decide_leave,
    generate,
    publish,
    request_leave,
)
from tests.factories import make_roster_community, make_user


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


@pytest.fixture()
def short_office(session, app):
    """Five workers, four grids, the window three a day and each grid three B-post days: two
    hands a day after the window for the grids' twelve days, ten of them."""
    return make_roster_community(session, app, 5, 4)


def publish_with(client, c, roster_id, body):
    return client.post(f"/api/v1/rosters/{roster_id}/publish", json=body, headers=c.auth(c.leader))


def test_a_five_worker_office_gets_its_week_with_the_window_staffed_and_the_grids_short_listed(
    client, short_office
):
    c = short_office
    response = generate(client, c)
    assert response.status_code == 201, response.get_json()
    view = response.get_json()

    at_window = Counter(s["date"] for s in all_shifts(view) if s["post"] == "A")
    assert at_window == {str(d): 3 for d in (MON, TUE, WED, THU, FRI)}
    assert view["complete"] is False
    assert len(view["shortfall_details"]) == 5  # a line a day, as the 422 listed them
    assert view["shortfall_rule"] == (
        "Week 2026-W48: 10 B-post days can be staffed after the window, the 4 grids need 12"
        " (3 each)"
    )
    short = view["shortfalls"]
    assert {s["rule"] for s in short} == {"grid"} and sum(s["short"] for s in short) == 2
    for s in short:
        days = {x["date"] for x in all_shifts(view) if x["grid_code"] == s["grid_code"]}
        assert (s["post"], s["required"], s["rostered"]) == ("B", 3, len(days))
        assert s["why"].startswith(f"Grid {s['grid_code']}: {len(days)} B-post day")
    # The week read back says the same.
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    assert read.get_json()["shortfalls"] == short and read.get_json()["complete"] is False


def test_too_few_in_on_tuesday_is_rostered_with_the_window_short_by_one_and_why(
    client, session, app
):
    """Before, this week was a 422 ("Tuesday 2026-11-24: 2 workers available, 3 required at
    the window") and nothing was stored."""
    c = make_roster_community(session, app, 4, 1)
    for worker in c.workers[1:3]:
        leave = request_leave(client, c, worker, TUE, TUE).get_json()
        decide_leave(client, c, leave, "approve")
    view = generate(client, c).get_json()
    window = [s for s in view["shortfalls"] if s["rule"] == "window"]
    assert [(s["date"], s["post"], s["required"], s["rostered"], s["short"]) for s in window] == [
        (str(TUE), "A", 3, 2, 1)
    ]
    assert window[0]["why"].startswith(
        "Tuesday 2026-11-24: 2 workers available, 3 required at the window (away:"
    )
    assert view["shortfall_rule"] == (
        "Tuesday 2026-11-24: 2 workers available, 3 required at the window"
    )
    away = {c.workers[1].id, c.workers[2].id}
    assert not [s for s in all_shifts(view) if s["date"] == str(TUE) and s["worker_id"] in away]


def test_a_week_that_can_be_met_is_complete_and_tells_nobody(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert (view["complete"], view["shortfalls"]) == (True, [])
    assert (view["shortfall_rule"], view["shortfall_details"]) == (None, [])
    assert not session.scalars(
        select(Notification).where(Notification.kind == "roster_short")
    ).all()


def test_leaders_and_admins_are_told_of_a_short_roster_in_chinese(client, session, short_office):
    c = short_office
    view = generate(client, c).get_json()
    told = session.scalars(select(Notification).where(Notification.kind == "roster_short")).all()
    # The leader who generated it reads it in the answer; the admin is told.
    assert {n.user_id for n in told} == {c.admin.id}
    (notice,) = told
    assert notice.title == "2026-W48 排班人手不足"
    assert "2处缺口" in notice.body and "网格" in notice.body
    assert notice.data == {"roster_id": str(view["id"]), "week": WEEK, "shortfalls": "2"}


def test_publishing_a_short_roster_without_accepting_its_shortfalls_is_409_and_changes_nothing(
    client, session, short_office
):
    c = short_office
    view = generate(client, c).get_json()
    refused = publish(client, c, view["id"])
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["shortfalls"] == view["shortfalls"] and "accept_shortfalls" in body["detail"]
    assert session.get(Roster, view["id"]).status == "draft"
    assert not session.scalars(
        select(Notification).where(Notification.kind == "roster_published")
    ).all()


def test_a_short_roster_is_published_when_its_shortfalls_are_accepted(
    client, session, short_office
):
    c = short_office
    view = generate(client, c).get_json()
    published = publish_with(client, c, view["id"], {"accept_shortfalls": True})
    assert published.status_code == 200, published.get_json()
    assert published.get_json()["status"] == "published"
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.workers[2]))
    assert read.get_json()["complete"] is False  # the workers see the gaps too


def test_a_complete_roster_is_published_without_accepting_anything(client, session, app):
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert publish(client, c, view["id"]).status_code == 200


@pytest.mark.parametrize("body", [{"accept_shortfalls": "yes"}, {"accept": True}])
def test_a_publish_request_with_a_bad_body_is_422_and_publishes_nothing(
    client, session, short_office, body
):
    c = short_office
    view = generate(client, c).get_json()
    refused = publish_with(client, c, view["id"], body)
    assert refused.status_code == 422
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert session.get(Roster, view["id"]).status == "draft"


def test_a_gap_filled_since_generation_is_no_longer_listed(client, session, app):
    """Tuesday's window short by one; a leave is cancelled and its worker given the window
    (written directly here: the API hands shifts on, it adds none): the roster, recounted on
    read, no longer lists the gap."""
    c = make_roster_community(session, app, 4, 1)
    leaves = [request_leave(client, c, w, TUE, TUE).get_json() for w in c.workers[1:3]]
    for leave in leaves:
        decide_leave(client, c, leave, "approve")
    view = generate(client, c).get_json()
    assert [s["rule"] for s in view["shortfalls"]] == ["window"]
    # One leave is cancelled: the worker comes in and is given the window.
    cancelled = client.post(
        f"/api/v1/leaves/{leaves[0]['id']}/cancel", headers=c.auth(c.workers[1])
    )
    assert cancelled.status_code == 200
    back = c.workers[1]
    session.execute(
        Shift.__table__.insert().values(roster_id=view["id"], date=TUE, post="A", worker_id=back.id)
    )
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["shortfalls"] == [] and read.get_json()["complete"] is True


def test_a_community_without_workers_is_still_422_and_writes_nothing(client, session, app):
    c = make_roster_community(session, app, 1, 1)
    c.workers[0].active = False
    session.flush()
    response = generate(client, c, who=c.admin)
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert session.scalar(select(Roster).where(Roster.community_code == c.code)) is None


def test_approved_leave_nobody_can_relieve_leaves_the_published_shift_uncovered_and_says_so(
    client, session, short_office
):
    """Every worker of the office holds a post every day: approving Wednesday's leave of one
    of them is not refused (leave is the worker's), their shift is listed to hand on, and the
    roster now says the post is uncovered; the other leaders and admins are told."""
    c = short_office
    view = generate(client, c).get_json()
    assert publish_with(client, c, view["id"], {"accept_shortfalls": True}).status_code == 200
    worker = c.workers[2]
    (theirs,) = [
        s for s in all_shifts(view) if s["worker_id"] == worker.id and s["date"] == str(WED)
    ]
    leave = request_leave(client, c, worker, WED, WED).get_json()
    decided = decide_leave(client, c, leave, "approve")
    assert decided["status"] == "approved"
    assert [s["id"] for s in decided["shifts_to_reassign"]] == [theirs["id"]]

    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    uncovered = [s for s in read.get_json()["shortfalls"] if s["rule"] == "uncovered"]
    assert [
        (s["shift_id"], s["date"], s["post"], s["worker_id"], s["short"]) for s in uncovered
    ] == [(theirs["id"], str(WED), theirs["post"], worker.id, 1)]
    assert uncovered[0]["reason"] == "on_leave" and "on approved leave" in uncovered[0]["why"]
    told = session.scalars(
        select(Notification).where(
            Notification.kind == "roster_short",
            Notification.data["leave_id"].as_integer() == leave["id"],
        )
    ).all()
    assert {n.user_id for n in told} == {c.admin.id}
    assert "空缺" in told[0].body


def test_an_edit_that_leaves_a_days_window_short_is_listed_and_publishing_asks_for_it(
    client, session, app
):
    """A complete draft; the leader sends Tuesday's window workers out to their grids until
    two are left: the roster now lists Tuesday's window as short (not only the generation's
    gaps), and publishing it takes the acknowledgement."""
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert view["complete"] is True
    tuesday = next(day for day in view["days"] if day["date"] == str(TUE))
    for shift in tuesday["A"][2:]:
        holder = next(w for w in c.workers if w.id == shift["worker_id"])
        grid = holder.grids[0].code
        patched = client.patch(
            f"/api/v1/shifts/{shift['id']}",
            json={"post": "B", "grid_code": grid},
            headers=c.auth(c.leader),
        )
        assert patched.status_code == 200, patched.get_json()
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    (gap,) = read.get_json()["shortfalls"]
    assert (gap["rule"], gap["date"], gap["required"], gap["rostered"]) == (
        "window",
        str(TUE),
        3,
        2,
    )
    assert gap["why"] == "Tuesday 2026-11-24: 2 at the window, 3 required"
    assert publish(client, c, view["id"]).status_code == 409
    assert publish_with(client, c, view["id"], {"accept_shortfalls": True}).status_code == 200


def _grid_days(view: dict) -> dict[str, list[dict]]:
    """Each grid's B-post shifts of the roster `view`."""
    days: dict[str, list[dict]] = {}
    for s in all_shifts(view):
        if s["post"] == "B":
            days.setdefault(s["grid_code"], []).append(s)
    return days


def _send_elsewhere(client, c, view, grid, keep):
    """The leader sends `grid`'s B-post shifts to another grid until `keep` days are left."""
    mine = _grid_days(view)[grid]
    other = next(g.code for g in c.grids if g.code != grid)
    for shift in sorted(mine, key=lambda s: s["date"])[keep:]:
        patched = client.patch(
            f"/api/v1/shifts/{shift['id']}", json={"grid_code": other}, headers=c.auth(c.leader)
        )
        assert patched.status_code == 200, patched.get_json()


def _the_gap(client, c) -> dict:
    """The week's one shortfall, as the office reads it."""
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    (gap,) = read.get_json()["shortfalls"]
    return gap


def test_an_edit_that_leaves_a_grid_below_its_b_post_days_is_listed_and_publishing_asks_for_it(
    client, session, app
):
    """A complete draft; the leader sends one grid's visits to another grid until it has two
    B-post days where the settings ask three: the roster lists that grid as short (before,
    only a gap the generation left was found), and publishing takes the acknowledgement."""
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert view["complete"] is True
    grid = c.grids[0].code
    _send_elsewhere(client, c, view, grid, keep=2)
    gap = _the_gap(client, c)
    assert (gap["rule"], gap["grid_code"], gap["post"], gap["required"], gap["rostered"]) == (
        "grid",
        grid,
        "B",
        3,
        2,
    )
    assert gap["short"] == 1 and gap["date"] is None
    assert gap["why"] == f"Grid {grid}: 2 B-post days this week, 3 required"
    assert publish(client, c, view["id"]).status_code == 409
    assert publish_with(client, c, view["id"], {"accept_shortfalls": True}).status_code == 200


def test_a_midweek_roster_asks_each_grid_the_days_lefts_share_after_an_edit_too(
    client, session, app
):
    """Generated on Wednesday, each grid is asked 3 x 3 // 5 = 1 B-post day of Wednesday to
    Friday: a grid sent nowhere from Wednesday on is listed short by one (its Monday and
    Tuesday, worked without a roster, do not count against the days left)."""
    from tests.api.test_rosters import set_today

    c = make_roster_community(session, app, 8, 6)
    set_today(app, WED)
    view = generate(client, c).get_json()
    assert view["complete"] is True
    grid = c.grids[0].code
    _send_elsewhere(client, c, view, grid, keep=0)
    gap = _the_gap(client, c)
    assert (gap["rule"], gap["grid_code"], gap["required"], gap["rostered"]) == (
        "grid",
        grid,
        1,
        0,
    )
    assert gap["why"] == f"Grid {grid}: 0 B-post days from {WED}, 1 required"


def _a_grid_added(session, c) -> str:
    """A seventh grid for the six-grid office `c`, east of the others, taken into service now."""
    from tests.factories import box, make_grid

    lon0 = 116.50 + 0.05 * (int(c.code[9:12]) - 1) + 0.002 * len(c.grids)
    grid = make_grid(
        session,
        f"{c.code}{len(c.grids) + 1:03d}",
        box(lon0, 39.95, lon0 + 0.002, 39.952),
        community_name=f"社区{c.code[9:12]}",
        district_name="朝阳区",
    )
    session.flush()
    return grid.code


def test_a_grid_taken_into_service_after_the_week_does_not_make_its_roster_short(
    client, session, app
):
    """A complete week published and worked; the Monday after, the community splits off a
    seventh grid: the week's roster still reads complete (before, the new grid, which the week's
    generation asked nothing of, was listed as a gap of 0 B-post days, 3 required)."""
    from tests.api.test_rosters import set_today

    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert view["complete"] is True
    assert publish(client, c, view["id"]).status_code == 200
    set_today(app, SUN + timedelta(days=1))
    _a_grid_added(session, c)
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["shortfalls"] == [] and read.get_json()["complete"] is True


def test_a_grid_added_after_generation_is_not_counted_against_the_draft_until_regenerated(
    client, session, app
):
    """The draft asked each of six grids for three B-post days; a seventh is added: the draft
    is not short for it (its generation did not roster it); regenerated, the week takes it in."""
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert view["complete"] is True
    added = _a_grid_added(session, c)
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    assert read.get_json()["shortfalls"] == []
    again = generate(client, c).get_json()
    assert added in {s["grid_code"] for s in all_shifts(again) if s["post"] == "B"} | {
        s["grid_code"] for s in again["shortfalls"]
    }


def test_a_grid_retired_since_generation_is_no_longer_a_gap_to_acknowledge(
    client, session, short_office
):
    """The five-worker office's draft leaves two grids short; one of them is taken out of
    service (merged into its neighbour, say) before publishing: its gap is no longer listed
    and publishing asks only for the other's."""
    from datetime import UTC, datetime

    from api.models import Grid

    c = short_office
    view = generate(client, c).get_json()
    short = sorted(s["grid_code"] for s in view["shortfalls"] if s["rule"] == "grid")
    assert len(short) == 2
    gone = session.scalar(select(Grid).where(Grid.code == short[0]))
    gone.retired_at = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    session.flush()
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    left = [s["grid_code"] for s in read.get_json()["shortfalls"] if s["rule"] == "grid"]
    assert left == [short[1]]


# --- gaps an edit or an account change opens in a published roster, told to the editors ----


def _roster_short_notices(session) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.kind == "roster_short")
            .order_by(Notification.user_id)
        )
    )


@pytest.fixture()
def one_at_the_window(session, app):
    """Eight workers over six grids, one at the window a day."""
    return make_roster_community(session, app, 8, 6, roster={"a_min": 1, "a_max": 1})


def _monday_a(view: dict) -> dict:
    (shift,) = [s for s in all_shifts(view) if s["post"] == "A" and s["date"] == str(MON)]
    return shift


def test_an_edit_of_a_published_roster_that_empties_a_days_window_tells_the_other_editors(
    client, session, one_at_the_window
):
    """Monday's only window worker sent out to their grid: the week lists the window short
    and the admin is told (`roster_short`), as for approved leave; the leader who made the
    edit reads it in the week. Before, nobody was told."""
    c = one_at_the_window
    view = generate(client, c).get_json()
    assert publish(client, c, view["id"]).status_code == 200
    shift = _monday_window_worker_sent_out(client, c, view)
    gap = _the_gap(client, c)
    assert (gap["rule"], gap["date"], gap["short"]) == ("window", str(MON), 1)
    (told,) = _roster_short_notices(session)
    assert told.user_id == c.admin.id
    assert told.title == f"{WEEK} 排班出现空缺"
    assert "周一（2026-11-23）窗口缺1人" in told.body
    assert told.data["roster_id"] == str(view["id"]) and told.data["shift_id"] == str(shift["id"])


def _monday_window_worker_sent_out(client, c, view) -> dict:
    """Monday's A-shift made a B-post in its worker's grid by the leader: the shift as read."""
    shift = _monday_a(view)
    holder = next(w for w in c.workers if w.id == shift["worker_id"])
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}",
        json={"post": "B", "grid_code": holder.grids[0].code},
        headers=c.auth(c.leader),
    )
    assert patched.status_code == 200, patched.get_json()
    return shift


def test_an_edit_of_a_published_roster_that_opens_no_gap_tells_nobody_of_one(
    client, session, one_at_the_window
):
    c = one_at_the_window
    view = generate(client, c).get_json()
    assert publish(client, c, view["id"]).status_code == 200
    shift = _monday_a(view)
    free = make_user(session, "short_spare", "worker", grids=[c.grids[0].code])
    patched = client.patch(
        f"/api/v1/shifts/{shift['id']}", json={"worker_id": free.id}, headers=c.auth(c.leader)
    )
    assert patched.status_code == 200, patched.get_json()
    assert _roster_short_notices(session) == []


def test_an_edit_of_a_draft_that_empties_a_window_tells_nobody_publishing_asks_for_it(
    client, session, one_at_the_window
):
    c = one_at_the_window
    view = generate(client, c).get_json()
    _monday_window_worker_sent_out(client, c, view)
    assert _roster_short_notices(session) == []
    assert publish(client, c, view["id"]).status_code == 409


def _published_with_a_worker(client, session, app):
    """A community of eight with this week published: it, the week, a worker and their shifts."""
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert publish(client, c, view["id"]).status_code == 200
    worker = c.workers[3]
    return c, view, worker, _ahead_of(view, worker)


def _ahead_of(view: dict, worker) -> list[dict]:
    return [s for s in all_shifts(view) if s["worker_id"] == worker.id]


def test_switching_off_a_worker_tells_the_other_editors_of_their_published_shifts_left_uncovered(
    client, session, app
):
    """The admin switches off a worker rostered this week: their shifts stay in the published
    roster, uncovered; the leader is told (`roster_short`), as for approved leave. Before, only
    the admin learnt of them, from the answer's `shifts_ahead`."""
    c, view, worker, theirs = _published_with_a_worker(client, session, app)
    assert theirs
    answer = client.patch(
        f"/api/v1/users/{worker.id}", json={"active": False}, headers=c.auth(c.admin)
    )
    assert answer.status_code == 200, answer.get_json()
    (told,) = _roster_short_notices(session)
    assert told.user_id == c.leader.id
    assert told.title == f"{WEEK} 排班出现空缺"
    assert f"{len(theirs)}个班次" in told.body and "停用" in told.body
    assert told.data["roster_id"] == str(view["id"])
    assert told.data["worker_id"] == str(worker.id)


def test_a_worker_switched_off_after_their_leave_was_told_is_told_of_the_other_days_only(
    client, session, app
):
    """Their leave's shifts were told when it was approved: not a second time."""
    from api.models import Leave

    c, view, worker, theirs = _published_with_a_worker(client, session, app)
    first = date.fromisoformat(theirs[0]["date"])
    session.add(Leave(worker_id=worker.id, start_date=first, end_date=first, status="approved"))
    session.flush()
    answer = client.patch(
        f"/api/v1/users/{worker.id}", json={"active": False}, headers=c.auth(c.admin)
    )
    assert answer.status_code == 200, answer.get_json()
    left = [s for s in theirs if s["date"] != str(first)]
    (told,) = _roster_short_notices(session)
    assert f"{len(left)}个班次" in told.body


def test_a_worker_made_community_admin_has_the_other_editors_told_of_their_shifts_left(
    client, session, app
):
    c, view, worker, theirs = _published_with_a_worker(client, session, app)
    answer = client.patch(
        f"/api/v1/users/{worker.id}", json={"role": "community_admin"}, headers=c.auth(c.admin)
    )
    assert answer.status_code == 200, answer.get_json()
    (told,) = _roster_short_notices(session)
    assert told.user_id == c.leader.id
    assert f"{len(theirs)}个班次" in told.body


def test_a_worker_made_grid_leader_takes_their_shifts_still_and_nobody_is_told(
    client, session, app
):
    c = make_roster_community(session, app, 8, 6)
    view = generate(client, c).get_json()
    assert publish(client, c, view["id"]).status_code == 200
    answer = client.patch(
        f"/api/v1/users/{c.workers[3].id}", json={"role": "grid_leader"}, headers=c.auth(c.admin)
    )
    assert answer.status_code == 200, answer.get_json()
    assert _roster_short_notices(session) == []


def test_switching_off_a_worker_with_only_a_draft_ahead_tells_nobody(client, session, app):
    """A draft is not published: publishing refuses it until the shifts are handed on."""
    c = make_roster_community(session, app, 8, 6)
    generate(client, c)
    answer = client.patch(
        f"/api/v1/users/{c.workers[3].id}", json={"active": False}, headers=c.auth(c.admin)
    )
    assert answer.status_code == 200, answer.get_json()
    assert _roster_short_notices(session) == []


def test_an_operator_switching_off_a_worker_at_the_command_line_tells_every_editor(
    client, session, app
):
    """The command line acts at the database's clock (the real time): a week ahead of it."""
    from click.testing import CliRunner

    from api.cli import main
    from api.clock import now as clock_now
    from api.services.weeks import LOCAL, week_of

    app.config.pop("FIXED_NOW")
    week = week_of(clock_now().astimezone(LOCAL).date() + timedelta(days=14))
    c = make_roster_community(session, app, 8, 6)
    generated = generate(client, c, week)
    assert generated.status_code == 201, generated.get_json()
    assert publish(client, c, generated.get_json()["id"]).status_code == 200
    worker = c.workers[3]
    with app.app_context():
        result = CliRunner().invoke(
            main, ["user", "switch-off", "--username", worker.username], catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    told = _roster_short_notices(session)
    assert {n.user_id for n in told} == {c.leader.id, c.admin.id}
