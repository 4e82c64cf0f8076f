"""未诉先办 ("act before the complaint"): the problems that keep coming back, by place and by
words, so a grid's people fix them before the next call to 12345."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.models import Task
from api.services import household_removal
from api.services.recurring import phrases
from tests.factories import A1, A2, A, B, centre, make_household, make_task

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Beijing
# About 10 m and 20 m east of the centre of A1 (a degree of longitude is ~85 km at 39.9°N).
NEAR = (0.00012, 0.00024)


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = NOW


def recurring(client, world, who="leader_a", **args):
    query = {"community": A, **args}
    return client.get("/api/v1/tasks/recurring", query_string=query, headers=world.auth(who))


@pytest.fixture()
def stairwell(session, world):
    """Three calls about one stairwell's lights in the last four weeks, one the four weeks
    before; a lone drain elsewhere in A2; a stairwell call in community B."""
    lon, lat = centre(A1)
    made = {
        "now": [
            make_task(
                session,
                A1,
                now=NOW - timedelta(days=days),
                title=title,
                source=source,
                location={"lon": lon + dx, "lat": lat},
                **({"external_id": f"2026111{days:02d}"} if source == "hotline" else {}),
            )
            for days, title, source, dx in (
                (2, "3号楼楼道灯不亮", "hotline", 0.0),
                (9, "楼道灯不亮，晚上看不见", "window", NEAR[0]),
                (20, "楼道灯坏了", "hotline", NEAR[1]),
            )
        ],
        "before": make_task(
            session,
            A1,
            now=NOW - timedelta(days=35),
            title="楼道灯不亮",
            source="hotline",
            external_id="20261016001",
        ),
        "drain": make_task(session, A2, now=NOW - timedelta(days=3), title="下水道堵了"),
        "other": make_task(session, B + "001", now=NOW - timedelta(days=3), title="楼道灯不亮"),
    }
    session.flush()
    return made


def test_three_calls_about_one_stairwell_are_one_recurring_place_and_one_rising_phrase(
    client, world, stairwell
):
    response = recurring(client, world)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["community"] == A and body["weeks"] == 4
    assert body["tasks"] == 4 and body["previous_tasks"] == 1  # three and the drain; one before
    (place,) = body["places"]
    assert place["grid_code"] == A1
    assert place["tasks"] == 3 and place["previous"] == 1
    assert place["task_ids"] == [t.id for t in stairwell["now"]]  # newest first
    assert place["sources"] == {"hotline": 2, "window": 1}
    assert place["radius_m"] == pytest.approx(10.2, abs=1.5)  # the centre to the farthest call
    lon, lat = centre(A1)
    assert place["lon"] == pytest.approx(lon + sum(NEAR) / 3, abs=1e-6)
    assert place["lat"] == pytest.approx(lat, abs=1e-6)
    assert place["phrase"] == "楼道灯"
    (word,) = body["words"]
    assert word == {
        "phrase": "楼道灯",
        "tasks": 3,
        "previous": 1,
        "task_ids": [t.id for t in stairwell["now"]],
    }


def test_a_place_names_the_building_and_entrance_nearest_it(client, session, world, stairwell):
    """Where it is, as the grid's people say it: 3号楼2单元, the registered entrance nearest the
    place's centre (one removed from the register does not count). The world's own entrance
    1-1 stands ~10 m west of the centre."""
    lon, lat = centre(A1)
    here = lon + sum(NEAR) / 3
    make_household(session, here + 0.00005, lat, building="3", unit="2")  # ~4 m
    make_household(session, here + 0.0002, lat, building="4", unit="1")  # ~17 m
    gone = make_household(session, here - 0.00003, lat, building="9", unit="9")  # ~2.5 m
    household_removal.remove_household(
        session, None, gone, reason="moved_out", now=datetime.now(UTC)
    )
    session.flush()
    (place,) = recurring(client, world).get_json()["places"]
    assert (place["building"], place["unit"]) == ("3", "2")


def test_the_nearest_entrance_is_nearest_in_metres_not_in_degrees(client, session, world):
    """A degree of longitude is ~85 km here, of latitude ~111 km: an entrance 20 m east is
    nearer than one 24 m north, though fewer degrees lie north."""
    for household in world.households[A1]:
        household_removal.remove_household(
            session, None, household, reason="demolished", now=datetime.now(UTC)
        )
    lon, lat = centre(A1)
    for n in range(3):
        make_task(session, A1, now=NOW - timedelta(days=n + 1), location={"lon": lon, "lat": lat})
    make_household(session, lon + 20 / 85_300, lat, building="5", unit="1")  # 20 m east
    make_household(session, lon, lat + 24 / 111_000, building="6", unit="1")  # 24 m north
    session.flush()
    (place,) = recurring(client, world).get_json()["places"]
    assert (place["building"], place["unit"]) == ("5", "1")


def test_entrances_standing_at_one_point_name_the_first_registered(client, session, world):
    """A register geocoded to a compound's centre puts several entrances at one point: the
    place names the same one every time, the first registered."""
    for household in world.households[A1]:
        household_removal.remove_household(
            session, None, household, reason="demolished", now=datetime.now(UTC)
        )
    lon, lat = centre(A1)
    for n in range(3):
        make_task(session, A1, now=NOW - timedelta(days=n + 1), location={"lon": lon, "lat": lat})
    for building, unit in (("8", "2"), ("12", "1"), ("8", "1"), ("9", "3")):
        make_household(session, lon + 0.0001, lat, building=building, unit=unit)
    session.flush()
    for _ in range(3):
        (place,) = recurring(client, world).get_json()["places"]
        assert (place["building"], place["unit"]) == ("8", "2")


def test_a_grid_quiet_these_weeks_but_not_before_reads_as_quiet(client, session, world):
    """No task in the span, three in the span before: nothing recurs now, and the span before
    is counted (the reach of the span's places, scaled at their mean latitude, had no
    latitude to scale at: a 500)."""
    for n in range(3):
        make_task(session, A1, now=NOW - timedelta(days=35 + n))
    session.flush()
    response = recurring(client, world)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["tasks"], body["previous_tasks"]) == (0, 3)
    assert body["places"] == [] and body["words"] == []


def test_a_place_with_no_registered_entrance_within_reach_names_none(
    client, session, world, stairwell
):
    for household in world.households[A1]:  # the nearest ~10 m, the others 30 m and 75 m away
        household_removal.remove_household(
            session, None, household, reason="demolished", now=datetime.now(UTC)
        )
    make_household(session, centre(A1)[0] + 0.002, centre(A1)[1], building="7")  # ~160 m
    session.flush()
    (place,) = recurring(client, world).get_json()["places"]
    assert place["building"] is None and place["unit"] is None


def test_a_place_or_phrase_needs_three_tasks(client, session, world, stairwell):
    """Two calls are not yet a pattern: with the oldest of the three moved before the period,
    nothing recurs (and it counts for the four weeks before)."""
    oldest = stairwell["now"][2]
    session.execute(
        Task.__table__.update()
        .where(Task.id == oldest.id)
        .values(created_at=NOW - timedelta(days=30))
    )
    body = recurring(client, world).get_json()
    assert body["places"] == [] and body["words"] == []
    assert body["tasks"] == 3 and body["previous_tasks"] == 2


def test_the_period_is_set_in_weeks(client, world, stairwell):
    body = recurring(client, world, weeks=1).get_json()
    assert body["tasks"] == 2 and body["places"] == [] and body["words"] == []
    assert body["start"] == (NOW - timedelta(days=7)).isoformat()
    assert body["previous_start"] == (NOW - timedelta(days=14)).isoformat()
    assert body["end"] == NOW.isoformat()


def test_one_grid_alone(client, world, stairwell):
    body = recurring(client, world, community=None, grid=A2).get_json()
    assert body["grid"] == A2 and body["tasks"] == 1 and body["places"] == []


def test_a_worker_sees_what_recurs_in_their_own_grid_only(client, world, stairwell):
    """worker_a2 holds A2: the stairwell of A1 is not theirs to see."""
    body = recurring(client, world, who="worker_a2").get_json()
    assert body["tasks"] == 1 and body["places"] == [] and body["words"] == []
    mine = recurring(client, world, who="worker_a1").get_json()
    assert [p["tasks"] for p in mine["places"]] == [3]


def test_a_community_out_of_scope_is_404_and_a_district_viewer_reads_any_of_theirs(
    client, world, stairwell
):
    assert recurring(client, world, who="worker_b1").status_code == 404
    assert recurring(client, world, who="admin_b").status_code == 404
    body = recurring(client, world, who="viewer_110101").get_json()
    assert [p["tasks"] for p in body["places"]] == [3]


@pytest.mark.parametrize(
    "args",
    [
        {"community": None},
        {"grid": A1},  # and the community: one of them
        {"weeks": 0},
        {"weeks": 27},
        {"weeks": "four"},
        {"community": "11010100100"},
    ],
)
def test_a_bad_query_is_a_422_problem(client, world, args):
    response = recurring(client, world, **args)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"


def test_transferred_tickets_are_not_counted(client, session, world, stairwell):
    """A ticket the hotline re-dispatched elsewhere was not this grid's problem."""
    session.execute(
        Task.__table__.update()
        .where(Task.id == stairwell["now"][0].id)
        .values(status="transferred")
    )
    body = recurring(client, world).get_json()
    assert body["places"] == [] and body["tasks"] == 3
    assert session.scalar(select(func.count()).select_from(Task)) == 6


# --- the words ----------------------------------------------------------------------------------


def test_phrases_join_the_bigrams_the_same_tasks_share():
    titles = {1: "3号楼楼道灯不亮", 2: "楼道灯不亮，晚上看不见", 3: "楼道灯坏了", 4: "楼道灯不亮"}
    # 灯不亮 is said, in each of its three titles, as 楼道灯不亮: the phrase is the whole run.
    assert phrases(titles, at_least=3) == {"楼道灯": {1, 2, 3, 4}, "楼道灯不亮": {1, 2, 4}}


def test_a_phrase_is_said_whole_not_as_a_fragment_of_a_longer_one():
    """楼道 is said by five titles, 楼道灯 by three of them: the three say 楼道灯 (before, the
    pair 道灯, which no title says alone, was listed as a phrase of its own)."""
    titles = {1: "楼道灯不亮", 2: "楼道灯坏了", 3: "楼道灯闪", 4: "楼道堆物", 5: "楼道堆物"}
    assert phrases(titles, at_least=3) == {"楼道": {1, 2, 3, 4, 5}, "楼道灯": {1, 2, 3}}


def test_a_phrase_counts_only_the_titles_that_say_it():
    """Each title holds 楼道 and 道灯, one of them not side by side: 楼道灯 is said by two, so
    the pairs stand as they are."""
    titles = {1: "楼道灯", 2: "道灯楼道", 3: "楼道灯"}
    assert phrases(titles, at_least=3) == {"楼道": {1, 2, 3}, "道灯": {1, 2, 3}}


def test_phrases_leave_out_the_words_every_call_uses():
    titles = {i: f"居民反映问题{x}" for i, x in enumerate(("噪音", "噪音扰民", "夜间噪音"))}
    assert phrases(titles, at_least=3) == {"噪音": {0, 1, 2}}


def test_latin_words_and_numbers_are_words_too():
    titles = {1: "WiFi 信号差", 2: "wifi断了", 3: "WIFI 没有网"}
    assert phrases(titles, at_least=3) == {"wifi": {1, 2, 3}}


def test_full_width_letters_and_digits_read_as_their_plain_forms():
    """A phone's input method in full-width mode writes ＷｉＦｉ and ５Ｇ: the same words."""
    titles = {1: "ＷｉＦｉ信号差", 2: "wifi断了", 3: "WIFI 没有网", 4: "５Ｇ基站"}
    assert phrases(titles, at_least=3) == {"wifi": {1, 2, 3}}


def test_zero_width_characters_pasted_with_a_title_do_not_split_its_words():
    """A title pasted from a chat app carries zero-width spaces (U+200B) between characters:
    楼\u200b道灯 said no 楼道灯, and three calls about one stairwell were two."""
    titles = {1: "楼道灯不亮", 2: "楼\u200b道灯不亮", 3: "\ufeff楼道\u200d灯不亮"}
    assert phrases(titles, at_least=3) == {"楼道灯不亮": {1, 2, 3}}


def test_a_full_width_title_says_the_same_now_and_the_span_before(client, session, world):
    """Three 5G calls at one mast now, one of them typed full-width; one the span before, typed
    full-width too: one place and one word, each with one call before."""
    lon, lat = centre(A1)
    calls = ((1, "5G基站辐射"), (2, "５Ｇ基站辐射"), (3, "5g基站辐射"), (40, "５Ｇ基站辐射"))
    for n, (days, title) in enumerate(calls):
        make_task(
            session,
            A1,
            now=NOW - timedelta(days=days),
            title=title,
            location={"lon": lon + 0.00003 * n, "lat": lat},
        )
    body = recurring(client, world).get_json()
    assert {(w["phrase"], w["tasks"], w["previous"]) for w in body["words"]} == {
        ("5g", 3, 1),
        ("基站辐射", 3, 1),
    }
    assert {(p["phrase"], p["tasks"], p["previous"]) for p in body["places"]} == {
        ("5g", 3, 1),
        ("基站辐射", 3, 1),
    }


def test_a_latin_word_before_is_counted_as_the_span_counts_it(client, session, world):
    """wifi is a word of its own: wifi6 is another, now as before (before, a title of the span
    before saying wifi6 was counted as saying wifi, one of the span itself was not)."""
    for days, title in ((1, "wifi断了"), (2, "WiFi 信号差"), (3, "wifi没网"), (4, "wifi6 信号差")):
        make_task(session, A1, now=NOW - timedelta(days=days), title=title)
    for days, title in ((30, "wifi6路由器坏了"), (31, "wifi断了")):
        make_task(session, A1, now=NOW - timedelta(days=days), title=title)
    body = recurring(client, world).get_json()
    (word,) = [w for w in body["words"] if w["phrase"] == "wifi"]
    assert (word["tasks"], word["previous"]) == (3, 1)


def test_building_and_unit_numbers_are_an_address_not_a_phrase():
    """Three different calls each naming its building (3号楼, 5号楼, 七号楼) share the pair 号楼,
    which says where, not what: no phrase (before, 号楼 was listed, and a place)."""
    titles = {
        1: "3号楼噪音扰民",
        2: "5号楼2单元下水道堵塞",
        3: "七号楼3层路灯不亮",
        4: "12号院门口漏水",
    }
    assert phrases(titles, at_least=3) == {}
    stairwells = {1: "3号楼道灯不亮", 2: "5号楼楼道灯不亮", 3: "2楼楼道灯坏了"}
    assert phrases(stairwells, at_least=3) == {"楼道灯": {1, 2, 3}}


@pytest.mark.parametrize(
    "titles",
    [
        # A busy building: what its number says is where, not what.
        ("3号楼噪音扰民", "3号楼下水道堵塞", "3号楼1单元电梯故障"),
        # A busy corner.
        ("噪音扰民", "下水道堵塞", "路灯不亮", "快递柜申请"),
    ],
)
def test_a_busy_place_whose_calls_all_differ_is_no_recurring_place(client, session, world, titles):
    lon, lat = centre(A1)
    for n, title in enumerate(titles):
        make_task(
            session,
            A1,
            now=NOW - timedelta(days=n + 1),
            title=title,
            location={"lon": lon + 0.00005 * n, "lat": lat},
        )
    body = recurring(client, world).get_json()
    assert body["tasks"] == len(titles) and body["places"] == [] and body["words"] == []


def test_one_phrase_said_in_two_places_is_two_places(client, session, world):
    """漏水 three times at the west end of A1, then three times at the east end of A2."""
    for code, dx in ((A1, -0.002), (A2, 0.002)):
        lon, lat = centre(code)
        for n, title in enumerate(("厨房漏水", "卫生间漏水", "楼上漏水")):
            make_task(
                session,
                code,
                now=NOW - timedelta(days=n + 1),
                title=title,
                location={"lon": lon + dx + 0.00003 * n, "lat": lat},
            )
    body = recurring(client, world).get_json()
    # As many tasks each: the place of the latest-numbered task first, every time.
    assert [(p["phrase"], p["grid_code"], p["tasks"]) for p in body["places"]] == [
        ("漏水", A2, 3),
        ("漏水", A1, 3),
    ]
    assert [(w["phrase"], w["tasks"]) for w in body["words"]] == [("漏水", 6)]


def test_visit_follow_ups_titled_by_the_system_say_no_words(client, session, world):
    """A follow-up of a visit given no title is titled 入户走访跟进 (what was found is in its
    sealed note): three of them are three tasks, not a recurring phrase (a titled one says its
    words: tests/api/test_visit_follow_up_titles.py)."""
    from api.services.tasks import VISIT_FOLLOW_UP_TITLE

    for n in range(3):
        make_task(session, A1, now=NOW - timedelta(days=n + 1), title=VISIT_FOLLOW_UP_TITLE)
    body = recurring(client, world).get_json()
    assert body["tasks"] == 3 and body["words"] == [] and body["places"] == []
