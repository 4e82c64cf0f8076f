"""The grids layer's coverage is the weekly report's: per grid and week, the same households
(those in the grid as the week ends), the same households visited (found at home, counted once,
in the grid they end the week in) and so the same coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from api.services import households as household_service
from api.services import reports
from api.services.weeks import current_week, shift_week
from tests.api.test_tiles import props, url
from tests.factories import A1, A2, A, box, centre, make_grid, make_household, make_visit


def effective(session, moment: datetime | None) -> None:
    """Date the household changes that follow (the history trigger reads it)."""
    session.execute(
        text("SELECT set_config('gridwork.effective_at', :v, true)"),
        {"v": moment.isoformat() if moment else ""},
    )


def map_grids(client, world, week: str) -> dict[str, dict]:
    """The grids layer's features of community A's two grids, as its grid leader sees them."""
    response = client.get(
        url("grids", *centre(A1), z=14, week=week), headers=world.auth("leader_a")
    )
    return {p["code"]: p for p in props(response, "grids")}


def report_grids(session, week: str) -> dict[str, dict]:
    selection = reports.select_scope(session, None, week, community=A)
    return {g["code"]: g for g in reports.coverage_report(session, selection, week)["grids"]}


def assert_map_agrees_with_report(client, world, session, week: str) -> dict[str, dict]:
    drawn, reported = map_grids(client, world, week), report_grids(session, week)
    for code in (A1, A2):
        m, r = drawn[code], reported[code]
        assert (m["households"], m["visited"]) == (r["households"], r["visited"]), code
        if r["coverage"] is None:  # nothing to divide by: no figure, as in the report
            assert "coverage" not in m, code
            continue
        assert m["coverage"] == pytest.approx(r["coverage"] / 100, abs=0.0005), code
        assert m["coverage"] <= 1, code
    return drawn


def test_an_ordinary_weeks_coverage_is_the_reports(client, world, session):
    now = datetime.now(UTC)
    make_visit(session, world.users["worker_a1"], world.households[A1][0], now)
    make_visit(session, world.users["worker_a1"], world.households[A1][1], now)
    drawn = assert_map_agrees_with_report(client, world, session, current_week())
    assert (drawn[A1]["households"], drawn[A1]["visited"]) == (3, 2)
    assert drawn[A1]["coverage"] == pytest.approx(0.667)


def test_a_nobody_home_attempt_is_not_a_visited_household(client, world, session):
    now = datetime.now(UTC)
    worker = world.users["worker_a1"]
    make_visit(session, worker, world.households[A1][0], now)
    make_visit(session, worker, world.households[A1][1], now, outcome="nobody_home")
    drawn = assert_map_agrees_with_report(client, world, session, current_week())
    assert drawn[A1]["visited"] == 1
    assert drawn[A1]["coverage"] == pytest.approx(0.333)


def test_a_household_that_moves_after_its_visit_counts_in_the_grid_it_ends_the_week_in(
    client, world, session
):
    """A2's three households are all found at home; then one moves to A1. A2 ends the week with
    two households, both visited (100 %, not 3 of 2); A1 with four, one visited (in A2)."""
    now = datetime.now(UTC)
    worker = world.users["worker_a2"]
    for household in world.households[A2]:
        make_visit(session, worker, household, now)
    effective(session, now + timedelta(seconds=1))
    household_service.update_household(
        session, None, world.households[A2][2], {"lon": centre(A1)[0], "lat": centre(A1)[1] + 0.001}
    )
    effective(session, None)
    session.flush()
    drawn = assert_map_agrees_with_report(client, world, session, current_week())
    assert (drawn[A2]["households"], drawn[A2]["visited"], drawn[A2]["coverage"]) == (2, 2, 1)
    assert (drawn[A1]["households"], drawn[A1]["visited"]) == (4, 1)


def test_a_past_week_counts_the_households_the_grid_had_as_it_ended(client, world, session):
    """A household registered in A1 two weeks ago, found at home last week, moves to A2 this
    week. Last week A1 had that one household, visited (100 %), and A2 none (the world's were
    registered this week): the map read today's register for every week (A1 1 of 3, A2 0 of 4)."""
    now = datetime.now(UTC)
    last_week = shift_week(current_week(), -1)
    session.execute(text("UPDATE grid_versions SET valid_from = valid_from - interval '21 days'"))
    effective(session, now - timedelta(days=14))
    household = make_household(session, *centre(A1, dy=0.001), room="901")
    effective(session, None)
    make_visit(session, world.users["worker_a1"], household, now - timedelta(days=7))
    effective(session, now)
    household_service.update_household(
        session, None, household, {"lon": centre(A2)[0], "lat": centre(A2)[1] + 0.001}
    )
    effective(session, None)
    session.flush()
    drawn = assert_map_agrees_with_report(client, world, session, last_week)
    assert (drawn[A1]["households"], drawn[A1]["visited"], drawn[A1]["coverage"]) == (1, 1, 1)
    assert drawn[A2]["households"] == 0 and "coverage" not in drawn[A2]


def test_a_grid_without_households_has_no_coverage_as_the_report_has_none(client, world, session):
    """A grid drawn this week, no household in it yet: the report's coverage is null (nothing
    to divide by) and its row reads "—", while the map carried 0 and painted the grid red,
    "0%", the colour of a grid nobody visits. The tile now carries no coverage for it."""
    make_grid(session, A + "003", box(116.400, 39.925, 116.405, 39.930))
    response = client.get(url("grids", 116.4025, 39.9275, z=14), headers=world.auth("admin_a"))
    drawn = {p["code"]: p for p in props(response, "grids")}
    selection = reports.select_scope(session, None, current_week(), community=A)
    reported = {
        g["code"]: g for g in reports.coverage_report(session, selection, current_week())["grids"]
    }
    assert reported[A + "003"]["coverage"] is None
    assert drawn[A + "003"]["households"] == 0
    assert "coverage" not in drawn[A + "003"]


def test_a_past_weeks_households_are_those_registered_by_its_end(client, world, session):
    """Last week's map drew today's register: households registered this week (the world's)
    were red dots, "overdue, never visited", on last week's map, over a grid whose figures
    (the report's) counted none of them. A past week now draws the households registered by
    its end: those its figures count."""
    last_week = shift_week(current_week(), -1)
    session.execute(text("UPDATE grid_versions SET valid_from = valid_from - interval '21 days'"))
    effective(session, datetime.now(UTC) - timedelta(days=14))
    earlier = make_household(session, *centre(A1, dy=0.001), room="901")
    effective(session, None)
    session.flush()

    def drawn(week: str) -> set[int]:
        response = client.get(
            url("households", *centre(A1), z=16, week=week), headers=world.auth("leader_a")
        )
        return {p["id"] for p in props(response, "households")}

    assert drawn(current_week()) == {earlier.id, *(h.id for h in world.households[A1])}
    assert drawn(last_week) == {earlier.id}
    assert map_grids(client, world, last_week)[A1]["households"] == 1
