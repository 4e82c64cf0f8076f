"""Staggered window hours: a hall open 08:00–20:00 rosters its A-post in time slots (`a_slots`),
each A-post shift holding its own slot: generated, read, swapped, edited, in the calendar."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from api.models import Shift
from api.services.weeks import week_dates
from tests.factories import make_roster_community, make_user

WEEK = "2026-W48"  # Monday 2026-11-23 .. Sunday 2026-11-29
NEXT_WEEK = "2026-W49"
MON, TUE, WED, THU, FRI, SAT, SUN = week_dates(WEEK)
BEFORE_THE_WEEK = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Beijing
EARLY = {"start": "08:00", "end": "16:30"}
LATE = {"start": "11:30", "end": "20:00"}


@pytest.fixture(autouse=True)
def clock_before_the_week(app):
    app.config["FIXED_NOW"] = BEFORE_THE_WEEK


@pytest.fixture()
def community(session, app):
    """Eight workers over six grids; the hall open 08:00–20:00 in two slots, 2–3 at the window."""
    return make_roster_community(
        session, app, 8, 6, roster={"a_min": 2, "a_max": 3, "a_slots": [EARLY, LATE]}
    )


def settings_url(c) -> str:
    return f"/api/v1/communities/{c.code}/roster-settings"


def generate(client, c) -> dict:
    response = client.post(
        f"/api/v1/communities/{c.code}/rosters", json={"week": WEEK}, headers=c.auth(c.leader)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def published(client, c) -> dict:
    view = generate(client, c)
    answer = client.post(f"/api/v1/rosters/{view['id']}/publish", headers=c.auth(c.leader))
    assert answer.status_code == 200, answer.get_json()
    return view


def window_shifts(view: dict) -> list[dict]:
    return [s for day in view["days"] for s in day["A"]]


def hours(shift: dict) -> dict:
    """The shift's local hours as HH:MM, from its starts_at / ends_at."""
    return {"start": shift["starts_at"][11:16], "end": shift["ends_at"][11:16]}


def by_id(c, user_id):
    return next(w for w in c.workers if w.id == user_id)


# --- settings ------------------------------------------------------------------------------


def test_roster_settings_have_no_slots_by_default(client, session, app):
    c = make_roster_community(session, app, 3, 3)
    body = client.get(settings_url(c), headers=c.auth(c.admin)).get_json()
    assert body["a_slots"] == []
    assert body["a_hours"] == {"start": "08:30", "end": "17:30"}


def test_an_admin_sets_the_window_slots_and_reads_them_back_in_order_of_start(client, community):
    c = community
    put = client.put(
        settings_url(c), json={"a_min": 2, "a_slots": [LATE, EARLY]}, headers=c.auth(c.admin)
    )
    assert put.status_code == 200, put.get_json()
    got = client.get(settings_url(c), headers=c.auth(c.admin)).get_json()
    assert got["a_slots"] == [EARLY, LATE]
    assert got["a_hours"] == {"start": "08:30", "end": "17:30"}  # untouched


@pytest.mark.parametrize(
    "slots, words",
    [
        ([EARLY, {"start": "20:00", "end": "11:30"}], "start must be before end"),
        ([EARLY, {"start": "11:30", "end": "11:30"}], "start must be before end"),
        ([EARLY, dict(EARLY)], "twice"),
    ],
)
def test_slots_out_of_order_or_twice_are_422_naming_a_slots_and_write_nothing(
    client, community, slots, words
):
    c = community
    put = client.put(settings_url(c), json={"a_min": 2, "a_slots": slots}, headers=c.auth(c.admin))
    assert put.status_code == 422
    assert put.headers["Content-Type"] == "application/problem+json"
    assert words in " ".join(put.get_json()["errors"]["json"]["a_slots"])
    got = client.get(settings_url(c), headers=c.auth(c.admin)).get_json()
    assert got["a_slots"] == [EARLY, LATE]


def test_more_slots_than_a_min_is_422_every_slot_must_be_staffed_each_day(client, community):
    c = community
    three = [EARLY, LATE, {"start": "13:00", "end": "20:00"}]
    put = client.put(settings_url(c), json={"a_min": 2, "a_slots": three}, headers=c.auth(c.admin))
    assert put.status_code == 422
    assert "a_min (2)" in put.get_json()["errors"]["json"]["a_slots"][0]


def test_a_slot_that_is_not_hh_mm_is_422(client, community):
    c = community
    bad = [{"start": "8:00", "end": "16:30"}, LATE]
    put = client.put(settings_url(c), json={"a_min": 2, "a_slots": bad}, headers=c.auth(c.admin))
    assert put.status_code == 422
    assert "a_slots" in put.get_json()["errors"]["json"]


# --- generation ----------------------------------------------------------------------------


def test_every_slot_is_staffed_each_working_day(client, community):
    view = generate(client, community)
    for day in view["days"][:5]:
        assert {(s["slot"]["start"], s["slot"]["end"]) for s in day["A"]} == {
            ("08:00", "16:30"),
            ("11:30", "20:00"),
        }, day["date"]


def test_an_a_shift_reads_its_slots_own_hours(client, community):
    view = generate(client, community)
    for shift in window_shifts(view):
        assert hours(shift) == shift["slot"]
        assert shift["starts_at"].endswith("+08:00")


def test_b_posts_keep_the_door_to_door_hours_and_no_slot(client, community):
    view = generate(client, community)
    for day in view["days"]:
        for shift in day["B"]:
            assert shift["slot"] is None
            assert hours(shift) == {"start": "08:30", "end": "17:30"}


def test_the_early_and_late_slots_are_shared_fairly_among_the_weeks_window_workers(
    client, community
):
    view = generate(client, community)
    held: dict[int, Counter] = {}
    for shift in window_shifts(view):
        held.setdefault(shift["worker_id"], Counter())[shift["slot"]["start"]] += 1
    for worker, slots in held.items():
        assert abs(slots["08:00"] - slots["11:30"]) <= 1, (worker, slots)


def test_without_slots_an_a_shift_has_the_window_hours_as_before(client, session, app):
    c = make_roster_community(session, app, 3, 3, roster={"a_min": 1, "a_max": 1, "a_hours": EARLY})
    view = generate(client, c)
    for shift in window_shifts(view):
        assert shift["slot"] is None
        assert hours(shift) == EARLY


def test_shifts_read_from_the_shifts_endpoint_carry_their_slot(client, community):
    c = community
    view = published(client, c)
    mine = window_shifts(view)[0]
    got = client.get(
        "/api/v1/shifts",
        query_string={"week": WEEK, "worker": "me"},
        headers=c.auth(by_id(c, mine["worker_id"])),
    ).get_json()
    shift = next(s for s in got if s["id"] == mine["id"])
    assert shift["slot"] == mine["slot"] and hours(shift) == mine["slot"]


def test_a_published_week_keeps_its_hours_when_the_slots_change_later(client, community):
    c = community
    view = published(client, c)
    late = next(s for s in window_shifts(view) if s["slot"] == LATE)
    other = [EARLY, {"start": "12:00", "end": "20:30"}]
    put = client.put(settings_url(c), json={"a_min": 2, "a_slots": other}, headers=c.auth(c.admin))
    assert put.status_code == 200, put.get_json()
    got = client.get(f"/api/v1/shifts/{late['id']}", headers=c.auth(c.leader)).get_json()
    assert got["slot"] == LATE and hours(got) == LATE


def test_who_held_the_late_slot_in_the_weeks_before_opens_the_hall_first(
    client, session, community
):
    """The slots of the three weeks before count (as the A-post days do). A week before with
    no slots held, the next week sends someone to the late slot on their first window day;
    had they closed the hall every time the week before, they open it that day."""
    c = community

    def window_week(week):
        response = client.post(
            f"/api/v1/communities/{c.code}/rosters", json={"week": week}, headers=c.auth(c.leader)
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def last_week_late_for(closer):
        for shift in session.scalars(select(Shift).where(Shift.roster_id == before["id"])):
            if shift.post == "A":
                late = shift.worker_id == closer
                shift.slot_start, shift.slot_end = (
                    (time(11, 30), time(20)) if late else (None, None)
                )
        session.flush()

    def first_slot(view, worker_id):
        return next(s for s in window_shifts(view) if s["worker_id"] == worker_id)["slot"]

    before = window_week(WEEK)
    last_week_late_for(None)  # nobody's slots counted
    unweighed = window_week(NEXT_WEEK)
    closer = next(
        w
        for w in {s["worker_id"] for s in window_shifts(unweighed)}
        if first_slot(unweighed, w) == LATE and w in {s["worker_id"] for s in window_shifts(before)}
    )
    last_week_late_for(closer)
    assert first_slot(window_week(NEXT_WEEK), closer) == EARLY


# --- swaps and edits -----------------------------------------------------------------------


def test_a_swap_keeps_each_shifts_slot_with_the_shift(client, session, community):
    c = community
    view = published(client, c)
    a = next(s for s in view["days"][0]["A"] if s["slot"] == LATE)
    b = view["days"][0]["B"][0]
    swap = client.post(
        f"/api/v1/shifts/{a['id']}/swap",
        json={"with_shift_id": b["id"]},
        headers=c.auth(by_id(c, a["worker_id"])),
    ).get_json()
    accepted = client.post(
        f"/api/v1/swaps/{swap['id']}/accept", headers=c.auth(by_id(c, b["worker_id"]))
    )
    assert accepted.status_code == 200, accepted.get_json()
    got = client.get(f"/api/v1/shifts/{a['id']}", headers=c.auth(c.leader)).get_json()
    assert got["worker_id"] == b["worker_id"]
    assert got["slot"] == LATE and hours(got) == LATE


def test_a_b_shift_moved_to_the_window_takes_the_days_least_staffed_slot(
    client, session, community
):
    c = community
    view = published(client, c)
    monday = view["days"][0]
    staffed = Counter(s["slot"]["start"] for s in monday["A"])
    least = EARLY if staffed["08:00"] <= staffed["11:30"] else LATE
    b = monday["B"][0]
    answer = client.patch(f"/api/v1/shifts/{b['id']}", json={"post": "A"}, headers=c.auth(c.leader))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["slot"] == least
    assert hours(answer.get_json()) == least


def test_an_edit_names_the_slot_of_an_a_shift(client, session, community):
    c = community
    view = published(client, c)
    a = next(s for s in view["days"][0]["A"] if s["slot"] == EARLY)
    answer = client.patch(
        f"/api/v1/shifts/{a['id']}", json={"slot": LATE}, headers=c.auth(c.leader)
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["slot"] == LATE
    assert session.get(Shift, a["id"]).slot_start.isoformat(timespec="minutes") == "11:30"
    log = client.get(f"/api/v1/rosters/{view['id']}/changes", headers=c.auth(c.leader))
    change = log.get_json()[-1]
    assert (change["before"]["slot"], change["after"]["slot"]) == (EARLY, LATE)


def test_an_edit_keeps_the_slot_of_an_a_shift_given_another_worker(client, session, community):
    c = community
    view = published(client, c)
    a = next(s for s in view["days"][0]["A"] if s["slot"] == LATE)
    free = make_user(session, "slots_spare", "worker", grids=[c.grids[0].code])
    answer = client.patch(
        f"/api/v1/shifts/{a['id']}", json={"worker_id": free.id}, headers=c.auth(c.leader)
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["slot"] == LATE


def test_a_slot_that_is_not_one_of_the_communitys_is_422_and_changes_nothing(
    client, session, community
):
    c = community
    view = published(client, c)
    a = next(s for s in view["days"][0]["A"] if s["slot"] == EARLY)
    odd = {"start": "09:00", "end": "18:00"}
    answer = client.patch(f"/api/v1/shifts/{a['id']}", json={"slot": odd}, headers=c.auth(c.leader))
    assert answer.status_code == 422
    assert "slot" in answer.get_json()["errors"]["json"]
    got = client.get(f"/api/v1/shifts/{a['id']}", headers=c.auth(c.leader)).get_json()
    assert got["slot"] == EARLY


def test_a_slot_for_a_b_post_is_422(client, community):
    c = community
    view = published(client, c)
    b = view["days"][0]["B"][0]
    answer = client.patch(
        f"/api/v1/shifts/{b['id']}", json={"slot": EARLY}, headers=c.auth(c.leader)
    )
    assert answer.status_code == 422
    assert "slot" in answer.get_json()["errors"]["json"]


def test_an_a_shift_moved_to_a_b_post_leaves_its_slot(client, session, community):
    c = community
    view = published(client, c)
    a = view["days"][0]["A"][0]
    grid = next(g for g in c.grids)
    answer = client.patch(
        f"/api/v1/shifts/{a['id']}",
        json={"post": "B", "grid_code": grid.code},
        headers=c.auth(c.leader),
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["slot"] is None
    assert session.scalar(select(Shift.slot_start).where(Shift.id == a["id"])) is None


# --- the worker's calendar -----------------------------------------------------------------


def test_the_calendar_feed_gives_an_a_shift_its_slots_hours(client, community):
    c = community
    view = published(client, c)
    late = next(s for s in window_shifts(view) if s["slot"] == LATE)
    worker = by_id(c, late["worker_id"])
    url = client.get("/api/v1/me/calendar-url", headers=c.auth(worker)).get_json()["url"]
    parts = urlsplit(url)
    text = client.get(f"{parts.path}?{parts.query}").get_data(as_text=True)
    day = late["date"].replace("-", "")
    assert f"DTSTART;TZID=Asia/Shanghai:{day}T113000" in text
    assert f"DTEND;TZID=Asia/Shanghai:{day}T200000" in text
    # The title says the slot too: a phone's calendar list shows titles, and two window
    # workers' 'A岗' of a day read the same without it.
    event = text[text.index(f"DTSTART;TZID=Asia/Shanghai:{day}T113000") :]
    summary = event[event.index("SUMMARY:") : event.index("\r\n", event.index("SUMMARY:"))]
    assert summary == "SUMMARY:A岗 · 社区服务大厅窗口 · 11:30–20:00"


# --- a slot nobody holds -------------------------------------------------------------------


@pytest.fixture()
def pairs(session, app):
    """Eight workers over six grids; the hall open 08:00–20:00 in two slots, two at the window
    each working day: one a slot."""
    return make_roster_community(
        session, app, 8, 6, roster={"a_min": 2, "a_max": 2, "a_slots": [EARLY, LATE]}
    )


def week_read(client, c) -> dict:
    read = client.get(f"/api/v1/communities/{c.code}/rosters/{WEEK}", headers=c.auth(c.admin))
    assert read.status_code == 200, read.get_json()
    return read.get_json()


def slot_gaps(view: dict) -> list[tuple]:
    return [
        (s["rule"], s["date"], s["post"], s.get("slot"), s["required"], s["rostered"], s["short"])
        for s in view["shortfalls"]
    ]


def test_an_edit_that_empties_the_late_slot_is_a_window_shortfall_naming_it(client, pairs):
    """Monday's late A-post given the early slot: two at the window, as a_min asks, and nobody
    there from 16:30 to 20:00. Before, the week read complete, no shortfall."""
    c = pairs
    view = published(client, c)
    late = next(s for s in view["days"][0]["A"] if s["slot"] == LATE)
    answer = client.patch(
        f"/api/v1/shifts/{late['id']}", json={"slot": EARLY}, headers=c.auth(c.leader)
    )
    assert answer.status_code == 200, answer.get_json()
    read = week_read(client, c)
    assert [s["slot"] for s in read["days"][0]["A"]] == [EARLY, EARLY]
    assert read["complete"] is False
    assert slot_gaps(read) == [("window", str(MON), "A", LATE, 1, 0, 1)]
    assert read["shortfalls"][0]["why"] == (
        "Monday 2026-11-23: nobody at the window in its 11:30–20:00 slot"
    )


def test_a_late_worker_moved_to_another_day_leaves_the_late_slot_short_on_a_day_above_a_min(
    client, session, pairs
):
    """Monday given a third at the window (early), then its late worker sent to a day they
    have free: still two at the window, as a_min asks, and the late slot empty."""
    c = pairs
    view = published(client, c)
    monday = view["days"][0]
    extra = client.patch(
        f"/api/v1/shifts/{monday['B'][0]['id']}",
        json={"post": "A", "slot": EARLY},
        headers=c.auth(c.leader),
    )
    assert extra.status_code == 200, extra.get_json()
    late = next(s for s in monday["A"] if s["slot"] == LATE)
    worked = {s["date"] for s in all_of(view) if s["worker_id"] == late["worker_id"]}
    free = next(d for d in week_dates(WEEK) if str(d) not in worked)
    moved = client.patch(
        f"/api/v1/shifts/{late['id']}", json={"date": str(free)}, headers=c.auth(c.leader)
    )
    assert moved.status_code == 200, moved.get_json()
    read = week_read(client, c)
    assert Counter(s["slot"]["start"] for s in read["days"][0]["A"]) == {"08:00": 2}
    assert ("window", str(MON), "A", LATE, 1, 0, 1) in slot_gaps(read)
    assert read["complete"] is False


def test_a_draft_whose_edit_empties_a_slot_publishes_only_with_its_shortfall_accepted(
    client, session, pairs
):
    c = pairs
    view = generate(client, c)
    assert view["complete"] is True
    late = next(s for s in view["days"][0]["A"] if s["slot"] == LATE)
    answer = client.patch(
        f"/api/v1/shifts/{late['id']}", json={"slot": EARLY}, headers=c.auth(c.leader)
    )
    assert answer.status_code == 200, answer.get_json()
    refused = client.post(f"/api/v1/rosters/{view['id']}/publish", headers=c.auth(c.leader))
    assert refused.status_code == 409
    assert [s["slot"] for s in refused.get_json()["shortfalls"]] == [LATE]
    accepted = client.post(
        f"/api/v1/rosters/{view['id']}/publish",
        json={"accept_shortfalls": True},
        headers=c.auth(c.leader),
    )
    assert accepted.status_code == 200, accepted.get_json()


def test_a_week_with_every_slot_held_has_no_slot_shortfall(client, pairs):
    view = published(client, pairs)
    assert (view["complete"], view["shortfalls"]) == (True, [])
    assert week_read(client, pairs)["shortfalls"] == []


def all_of(view: dict) -> list[dict]:
    return [s for day in view["days"] for post in ("A", "B") for s in day[post]]


def test_a_roster_made_before_the_slots_has_no_slot_shortfall(client, session, app):
    """A week published with the window's whole hours, its A-posts of no slot; the slots set
    since: each A-post still works the whole day, and the week read every slot of every day
    left empty, though two were at the window all day."""
    c = make_roster_community(session, app, 8, 6, roster={"a_min": 2, "a_max": 2})
    view = published(client, c)
    assert {s["slot"] for s in window_shifts(view)} == {None}
    put = client.put(
        settings_url(c),
        json={"a_min": 2, "a_max": 2, "a_slots": [EARLY, LATE]},
        headers=c.auth(c.admin),
    )
    assert put.status_code == 200, put.get_json()
    assert week_read(client, c)["shortfalls"] == []
