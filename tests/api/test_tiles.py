"""Vector tiles: layers, properties, scope, weeks, caching and errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
import pytest
from sqlalchemy import select, text

from api.models import AuditEntry
from api.scope import Scope
from api.services import reports, tiles
from api.services.weeks import current_week, shift_week
from tests.factories import (
    A1,
    A2,
    B1,
    A,
    box,
    centre,
    make_grid,
    make_task,
    make_task_at,
    make_visit,
)

ZOOM = 15


def tile_of(lon: float, lat: float, z: int = ZOOM) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def url(layer: str, lon: float, lat: float, z: int = ZOOM, **query) -> str:
    z, x, y = tile_of(lon, lat, z)
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{qs}" if qs else "")


def features(response, layer: str) -> list[dict]:
    assert response.status_code in (200, 204), response.get_json()
    if response.status_code == 204:
        return []
    decoded = mapbox_vector_tile.decode(response.data)
    return decoded[layer]["features"] if layer in decoded else []


def props(response, layer: str) -> list[dict]:
    return [f["properties"] for f in features(response, layer)]


NOW = datetime.now(UTC)  # each test's own: set again as it starts (`_now`)


@pytest.fixture(autouse=True)
def _now(monkeypatch):
    """Now as the test starts, not as the module was collected (half an hour before, maybe, on
    a loaded CI machine: in another week by then)."""
    monkeypatch.setitem(globals(), "NOW", datetime.now(UTC))


def test_grids_tile_carries_this_weeks_coverage(client, world, session):
    make_visit(session, world.users["worker_a1"], world.households[A1][0], NOW)
    response = client.get(url("grids", *centre(A1), z=14), headers=world.auth("leader_a"))
    by_code = {p["code"]: p for p in props(response, "grids")}
    assert by_code[A1]["households"] == 3
    assert by_code[A1]["visited"] == 1
    assert by_code[A1]["coverage"] == pytest.approx(0.333)
    assert by_code[A2]["coverage"] == 0


def test_grids_tile_counts_a_household_visited_twice_once(client, world, session):
    household = world.households[A1][0]
    make_visit(session, world.users["worker_a1"], household, NOW)
    make_visit(session, world.users["worker_a1"], household, NOW - timedelta(minutes=5))
    response = client.get(url("grids", *centre(A1), z=14), headers=world.auth("leader_a"))
    assert {p["code"]: p["visited"] for p in props(response, "grids")}[A1] == 1


def test_grids_tile_shows_only_the_callers_grids(client, world):
    response = client.get(url("grids", *centre(A1), z=14), headers=world.auth("leader_a"))
    assert {p["code"] for p in props(response, "grids")} == {A1, A2}
    response = client.get(url("grids", *centre(A1), z=14), headers=world.auth("worker_a1"))
    assert {p["code"] for p in props(response, "grids")} == {A1}


def test_grids_tile_reads_the_week_asked_for(client, world, session):
    session.execute(text("UPDATE grid_versions SET valid_from = valid_from - interval '21 days'"))
    make_visit(session, world.users["worker_a1"], world.households[A1][0], NOW - timedelta(days=7))
    last_week = shift_week(current_week(), -1)
    headers = world.auth("leader_a")
    this = props(client.get(url("grids", *centre(A1), z=14), headers=headers), "grids")
    past = props(
        client.get(url("grids", *centre(A1), z=14, week=last_week), headers=headers), "grids"
    )
    assert {p["code"]: p["visited"] for p in this}[A1] == 0
    assert {p["code"]: p["visited"] for p in past}[A1] == 1
    assert {p["week"] for p in past} == {last_week}


def _west_edge(feature: dict) -> int:
    """The westmost tile coordinate of a grid feature's outline."""
    geometry = feature["geometry"]
    rings = geometry["coordinates"]
    if geometry["type"] == "MultiPolygon":
        rings = [ring for polygon in rings for ring in polygon]
    return min(x for ring in rings for x, _ in ring)


def test_a_past_weeks_grids_are_drawn_as_they_stood_that_week(client, world, session):
    """The report reads a past week on the grids as they were (versions); the map drew today's:
    a grid redrawn this week showed its new outline on last week's map, and a grid retired this
    week, still in last week's report, was missing from last week's map."""
    session.execute(text("UPDATE grid_versions SET valid_from = valid_from - interval '21 days'"))
    admin = world.auth("admin_a")
    old_edge_grid = make_grid(session, A + "003", box(116.400, 39.9255, 116.405, 39.9295))
    session.execute(
        text(
            "UPDATE grid_versions SET valid_from = valid_from - interval '21 days' "
            "WHERE grid_id = :id"
        ),
        {"id": old_edge_grid.id},
    )
    redrawn = client.patch(
        f"/api/v1/grids/{world.grids[A1].id}",
        json={"geometry": box(116.399, 39.920, 116.405, 39.925)},
        headers=admin,
    )
    assert redrawn.status_code == 200, redrawn.json
    assert client.delete(f"/api/v1/grids/{old_edge_grid.id}", headers=admin).status_code == 204
    last_week = shift_week(current_week(), -1)

    def drawn(**query) -> dict[str, dict]:
        response = client.get(url("grids", *centre(A1), z=14, **query), headers=admin)
        return {f["properties"]["code"]: f for f in features(response, "grids")}

    this, past = drawn(), drawn(week=last_week)
    assert A + "003" not in this
    assert A + "003" in past  # as last week's report lists it
    assert {A1, A2} <= past.keys()
    # A1 reached 0.001 degrees (~190 units at z14) further west this week only.
    assert _west_edge(past[A1]) - _west_edge(this[A1]) > 150
    assert _west_edge(past[A2]) == _west_edge(this[A2])
    reported = reports.select_scope(session, None, last_week, community=A)
    assert sorted(
        g["code"] for g in reports.coverage_report(session, reported, last_week)["grids"]
    ) == sorted(past)


def test_households_tile_colours_by_visit_recency(client, world, session):
    worker = world.users["worker_a1"]
    visited, _, overdue = world.households[A1]
    make_visit(session, worker, visited, NOW)
    make_visit(session, worker, overdue, NOW - timedelta(days=9))
    response = client.get(url("households", *centre(A1)), headers=world.auth("worker_a1"))
    by_id = {p["id"]: p for p in props(response, "households")}
    assert by_id[visited.id]["status"] == "visited"
    assert by_id[visited.id]["visited_this_week"] is True
    assert by_id[visited.id]["days_since_visit"] == 0
    assert by_id[overdue.id]["status"] == "overdue"
    assert by_id[overdue.id]["days_since_visit"] == 9


def test_household_visited_within_the_cadence_but_not_this_week_is_due(world, session):
    thursday = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)  # 2026-W40, Thursday noon in Beijing
    household = world.households[A1][1]
    make_visit(session, world.users["worker_a1"], household, thursday - timedelta(days=4))
    scope = Scope.for_user(session, world.users["worker_a1"])
    req = tiles.TileRequest("households", *tile_of(*centre(A1)), "2026-W40", thursday)
    decoded = mapbox_vector_tile.decode(tiles.render_tile(session, scope, req)[0])
    by_id = {f["properties"]["id"]: f["properties"] for f in decoded["households"]["features"]}
    assert by_id[household.id]["status"] == "due"
    assert by_id[household.id]["days_since_visit"] == 4


def test_households_tile_marks_a_never_visited_household_overdue(client, world):
    response = client.get(url("households", *centre(A1)), headers=world.auth("worker_a1"))
    statuses = {p["status"] for p in props(response, "households")}
    assert statuses == {"overdue"}


def test_households_tile_flags_must_visit_households_due(client, world, session):
    tagged = world.households[A1][0]  # elderly_80
    response = client.get(url("households", *centre(A1)), headers=world.auth("worker_a1"))
    by_id = {p["id"]: p for p in props(response, "households")}
    assert by_id[tagged.id]["must_visit_due"] is True
    assert by_id[world.households[A1][1].id]["must_visit_due"] is False
    make_visit(session, world.users["worker_a1"], tagged, NOW)
    response = client.get(url("households", *centre(A1)), headers=world.auth("worker_a1"))
    assert {p["id"]: p for p in props(response, "households")}[tagged.id]["must_visit_due"] is False


def test_households_tile_leaves_out_other_workers_households(client, world):
    response = client.get(url("households", *centre(A2)), headers=world.auth("worker_a1"))
    ids = {p["id"] for p in props(response, "households")}
    assert ids.isdisjoint({h.id for h in world.households[A2]})


def test_visits_tile_carries_the_evidence_grade(client, world, session):
    visit = make_visit(
        session,
        world.users["worker_a1"],
        world.households[A1][1],
        NOW,
        grade="suspect",
        reasons=["mock_location"],
    )
    response = client.get(url("visits", *centre(A1)), headers=world.auth("leader_a"))
    (found,) = props(response, "visits")
    assert found["visit_id"] == str(visit.id)
    assert found["grade"] == "suspect"
    assert found["reasons"] == "mock_location"


def test_visits_tile_holds_only_the_weeks_visits(client, world, session):
    make_visit(session, world.users["worker_a1"], world.households[A1][1], NOW - timedelta(days=8))
    response = client.get(url("visits", *centre(A1)), headers=world.auth("leader_a"))
    assert response.status_code == 204


def test_an_empty_or_unchanged_tile_carries_no_content_type(client, world, session):
    """A 204 (no feature) and a 304 (the client holds these bytes) have no body: they said
    `Content-Type: text/html`, Flask's default, which no tile is."""
    empty = client.get(url("visits", *centre(A1)), headers=world.auth("leader_a"))
    assert empty.status_code == 204
    assert "Content-Type" not in empty.headers
    grids = client.get(url("grids", *centre(A1)), headers=world.auth("leader_a"))
    held = {**world.auth("leader_a"), "If-None-Match": grids.headers["ETag"]}
    unchanged = client.get(url("grids", *centre(A1)), headers=held)
    assert unchanged.status_code == 304
    assert "Content-Type" not in unchanged.headers


def test_tasks_tile_flags_overdue_tasks(client, world, session):
    late = make_task_at(session, world.households[A1][0], NOW - timedelta(hours=1))
    on_time = make_task_at(session, world.households[A1][1], NOW + timedelta(days=2))
    response = client.get(url("tasks", *centre(A1)), headers=world.auth("leader_a"))
    by_id = {p["id"]: p for p in props(response, "tasks")}
    assert by_id[late.id]["overdue"] is True
    assert by_id[on_time.id]["overdue"] is False
    assert by_id[late.id]["status"] == "dispatched"


def test_tasks_tile_says_which_tasks_stand_at_a_household(client, world, session):
    """The map draws a task at a household beside the household's dot (else it hides it); a
    task elsewhere (a pothole in the street) is drawn where it is."""
    at_door = make_task_at(session, world.households[A1][0], NOW + timedelta(days=2))
    street = make_task(session, A1, now=NOW, location={"lon": centre(A1)[0], "lat": centre(A1)[1]})
    response = client.get(url("tasks", *centre(A1)), headers=world.auth("leader_a"))
    by_id = {p["id"]: p for p in props(response, "tasks")}
    assert by_id[at_door.id]["at_household"] is True
    assert by_id[street.id]["at_household"] is False


def test_tasks_tile_leaves_out_closed_tasks(client, world, session):
    make_task_at(
        session,
        world.households[A1][0],
        NOW + timedelta(days=1),
        status="closed",
        closed_at=NOW - timedelta(minutes=1),
    )
    response = client.get(url("tasks", *centre(A1)), headers=world.auth("leader_a"))
    assert response.status_code == 204


@pytest.mark.parametrize("status", ["resolved", "callback"])
def test_tasks_tile_leaves_out_tasks_done_but_not_yet_closed(client, world, session, status):
    """A task resolved (办结), or being called back, is done, as the task list's open tasks and
    the report count it: the map drew it as an open task ("进行中") until someone closed it, and
    a grid whose tasks were all done still showed its pins."""
    make_task_at(
        session,
        world.households[A1][0],
        NOW - timedelta(hours=1),  # done after its deadline: not overdue now either
        status=status,
        resolved_at=NOW - timedelta(minutes=5),
    )
    response = client.get(url("tasks", *centre(A1)), headers=world.auth("leader_a"))
    assert response.status_code == 204


def test_a_past_weeks_tasks_tile_keeps_a_task_resolved_after_that_week(client, world, session):
    """Last week's map draws the tasks open as it ended: one resolved this week was open then."""
    last_week = shift_week(current_week(), -1)
    task = make_task_at(
        session,
        world.households[A1][0],
        NOW - timedelta(days=8),
        status="resolved",
        resolved_at=NOW,
        created_at=NOW - timedelta(days=20),
    )
    response = client.get(url("tasks", *centre(A1), week=last_week), headers=world.auth("leader_a"))
    assert [(p["id"], p["overdue"]) for p in props(response, "tasks")] == [(task.id, True)]


def test_tasks_tile_leaves_out_tasks_whose_ticket_went_to_another_community(client, world, session):
    make_task_at(
        session,
        world.households[A1][0],
        NOW - timedelta(hours=1),
        status="transferred",
        transferred_at=NOW - timedelta(minutes=1),
    )
    response = client.get(url("tasks", *centre(A1)), headers=world.auth("leader_a"))
    assert response.status_code == 204


def test_tasks_tile_is_scoped(client, world, session):
    make_task_at(session, world.households[B1][0], NOW + timedelta(days=1))
    response = client.get(url("tasks", *centre(B1)), headers=world.auth("leader_a"))
    assert response.status_code == 204
    response = client.get(url("tasks", *centre(B1)), headers=world.auth("admin_b"))
    assert len(props(response, "tasks")) == 1


def test_tile_has_a_strong_etag_and_private_cache_control(client, world):
    response = client.get(url("grids", *centre(A1)), headers=world.auth("leader_a"))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    assert response.headers["ETag"].startswith('"') and not response.headers["ETag"].startswith(
        "W/"
    )
    assert "private" in response.headers["Cache-Control"]
    assert "max-age=60" in response.headers["Cache-Control"]


def fetch_twice(client, world, layer: str, between=lambda: None):
    """The leader's tile of A1's centre, then the same tile revalidated with its ETag after
    `between` ran: (first answer, second answer)."""
    headers = world.auth("leader_a")
    first = client.get(url(layer, *centre(A1)), headers=headers)
    between()
    again = client.get(
        url(layer, *centre(A1)), headers={**headers, "If-None-Match": first.headers["ETag"]}
    )
    return first, again


def a_visit_in_a1(world, session):
    return lambda: make_visit(session, world.users["worker_a1"], world.households[A1][0], NOW)


def test_tile_answers_304_to_its_own_etag(client, world):
    _first, again = fetch_twice(client, world, "grids")
    assert again.status_code == 304
    assert again.data == b""


def test_a_revalidation_reads_its_if_none_match_once(client, world, monkeypatch):
    """The ETags a client holds, one of several listed, are parsed once a request: the
    statement (which audits no read of bytes the client holds) and the 304 use the same."""
    from api.resources.tiles import routes

    headers = world.auth("leader_a")
    first = client.get(url("grids", *centre(A1)), headers=headers)
    parsed = []
    parse = routes.known_etags
    monkeypatch.setattr(routes, "known_etags", lambda: parsed.append(parse()) or parsed[-1])
    held = f'"another", {first.headers["ETag"]}'
    again = client.get(url("grids", *centre(A1)), headers={**headers, "If-None-Match": held})
    assert again.status_code == 304
    assert parsed == [('"another"', first.headers["ETag"])]


def test_a_tile_revalidated_with_its_etag_made_weak_is_304_and_not_audited_again(
    client, world, session
):
    """A proxy that compresses the tile (nginx with gzip) hands it on with its ETag made weak,
    W/"...": If-None-Match compares weakly (RFC 9110), yet the tile compared the text exactly,
    so every revalidation downloaded the tile again and wrote another audit entry of it."""
    headers = world.auth("leader_a")
    first = client.get(url("households", *centre(A1)), headers=headers)
    weak = "W/" + first.headers["ETag"]
    again = client.get(url("households", *centre(A1)), headers={**headers, "If-None-Match": weak})
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert len(audit_entries(session)) == 1


def test_tile_etag_changes_when_the_data_changes(client, world, session):
    first, again = fetch_twice(client, world, "grids", a_visit_in_a1(world, session))
    assert again.status_code == 200
    assert again.headers["ETag"] != first.headers["ETag"]


def test_tile_with_nothing_of_yours_is_204(client, world):
    response = client.get(url("grids", 0.0, 0.0), headers=world.auth("leader_a"))
    assert response.status_code == 204
    assert response.data == b""


def test_unknown_layer_is_404_problem(client, world):
    response = client.get("/api/v1/tiles/roads/15/0/0.mvt", headers=world.auth("leader_a"))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "roads" in response.get_json()["detail"]


@pytest.mark.parametrize(
    "path", ["grids/23/0/0", "grids/-1/0/0", "grids/3/8/0", "grids/3/0/8", "grids/3/-1/0"]
)
def test_tile_address_out_of_range_is_422(client, world, path):
    response = client.get(f"/api/v1/tiles/{path}.mvt", headers=world.auth("leader_a"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_tile_with_a_bad_week_is_422(client, world):
    response = client.get(
        url("grids", *centre(A1), week="2026-W99"), headers=world.auth("leader_a")
    )
    assert response.status_code == 422


@pytest.mark.parametrize("week", ["9999-W52", "0001-W01"])
def test_tile_of_a_week_beyond_the_calendar_is_422(client, world, week):
    response = client.get(url("grids", *centre(A1), week=week), headers=world.auth("leader_a"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == "week"


def test_tile_needs_a_token(client, world):
    assert client.get(url("grids", *centre(A1))).status_code == 401


def registered_in_september(session) -> None:
    """The world's households registered before the past weeks the tests read (a past week's
    map draws the households registered by its end)."""
    session.execute(text("UPDATE household_history SET valid_from = '2026-09-01T00:00:00+08:00'"))


def test_households_tile_for_a_past_week_ignores_later_visits(world, session):
    # The household was visited in W40 and again in W42: read as of W41 it is not visited.
    registered_in_september(session)
    w41_friday = datetime(2026, 10, 9, 4, 0, tzinfo=UTC)
    household = world.households[A1][1]
    worker = world.users["worker_a1"]
    make_visit(session, worker, household, w41_friday - timedelta(days=9))  # W40, Wednesday
    make_visit(session, worker, household, w41_friday + timedelta(days=5))  # W42
    scope = Scope.for_user(session, worker)
    req = tiles.TileRequest("households", *tile_of(*centre(A1)), "2026-W41", NOW)
    decoded = mapbox_vector_tile.decode(tiles.render_tile(session, scope, req)[0])
    by_id = {f["properties"]["id"]: f["properties"] for f in decoded["households"]["features"]}
    assert by_id[household.id]["visited_this_week"] is False
    assert by_id[household.id]["last_visited"].startswith("2026-09-30")


def test_a_nobody_home_attempt_this_week_is_not_a_visit(client, world, session):
    # As the weekly report counts (docs/report.md): an attempt that found nobody is not a
    # visit. The dot stays as the last visit that found someone left it; the attempt is told.
    worker = world.users["worker_a1"]
    seen_before, only_tried = world.households[A1][:2]
    make_visit(session, worker, seen_before, NOW - timedelta(days=9))
    make_visit(session, worker, seen_before, NOW, outcome="nobody_home")
    make_visit(session, worker, only_tried, NOW, outcome="nobody_home")
    response = client.get(url("households", *centre(A1), z=16), headers=world.auth("worker_a1"))
    by_id = {p["id"]: p for p in props(response, "households")}
    today = (NOW + timedelta(hours=8)).strftime("%Y-%m-%d")
    for household in (seen_before, only_tried):
        assert by_id[household.id]["visited_this_week"] is False
        assert by_id[household.id]["status"] == "overdue"
        assert by_id[household.id]["last_attempt"].startswith(today)
    assert by_id[seen_before.id]["days_since_visit"] == 9
    assert not by_id[seen_before.id]["last_visited"].startswith(today)
    assert by_id[only_tried.id].get("days_since_visit") is None
    assert by_id[only_tried.id].get("last_visited") is None


def test_a_stair_entrance_with_only_attempts_this_week_is_not_visited(client, world, session):
    worker = world.users["worker_a1"]
    for household in world.households[A1]:
        make_visit(session, worker, household, NOW, outcome="nobody_home")
    response = client.get(url("households", *centre(A1)), headers=world.auth("worker_a1"))
    assert {p["visited_this_week"] for p in props(response, "households")} == {False}
    assert {p["status"] for p in props(response, "households")} == {"overdue"}


def test_a_past_weeks_households_carry_the_care_tags_and_kind_they_had_that_week(world, session):
    """The report counts a past week's must-visit households by their tags then (the ledger);
    the map drew today's: a household tagged since was a must-visit dot in a week it was not,
    one whose tag was taken off lost its flag in the weeks it had it."""
    registered_in_september(session)
    tagged, untagged = world.households[A1][:2]  # elderly_80, no tags
    assert "elderly_80" in tagged.tags and not untagged.tags
    kind_then = untagged.kind
    tagged.tags, untagged.tags, untagged.kind = [], ["elderly_80"], "business"  # today
    session.flush()
    scope = Scope.for_user(session, world.users["worker_a1"])

    def drawn(week: str, z: int) -> dict[int, dict]:
        req = tiles.TileRequest("households", *tile_of(*centre(A1), z), week, NOW)
        decoded = mapbox_vector_tile.decode(tiles.render_tile(session, scope, req)[0])
        return {f["properties"]["id"]: f["properties"] for f in decoded["households"]["features"]}

    for z in (15, 16):  # a stair entrance a feature (here one household each), a household
        w41 = drawn("2026-W41", z)
        assert w41[tagged.id]["must_visit"] is True and w41[tagged.id]["must_visit_due"] is True
        assert w41[untagged.id]["must_visit"] is False
        assert w41[untagged.id]["kind"] == kind_then != "business"
        today = drawn(current_week(NOW), z)
        assert today[tagged.id]["must_visit"] is False
        assert today[untagged.id]["must_visit"] is True and today[untagged.id]["kind"] == "business"


def test_households_tile_for_a_past_week_does_not_count_its_attempts(world, session):
    # W41 had only an attempt; W42 found someone: read as of W41 the household is not visited
    # (the probe of a past week), its last visit the one of W40.
    registered_in_september(session)
    w41_friday = datetime(2026, 10, 9, 4, 0, tzinfo=UTC)
    household = world.households[A1][1]
    worker = world.users["worker_a1"]
    make_visit(session, worker, household, w41_friday - timedelta(days=9))  # W40, Wednesday
    make_visit(session, worker, household, w41_friday, outcome="nobody_home")  # W41
    make_visit(session, worker, household, w41_friday + timedelta(days=5))  # W42
    scope = Scope.for_user(session, worker)
    req = tiles.TileRequest("households", *tile_of(*centre(A1), 16), "2026-W41", NOW)
    decoded = mapbox_vector_tile.decode(tiles.render_tile(session, scope, req)[0])
    by_id = {f["properties"]["id"]: f["properties"] for f in decoded["households"]["features"]}
    assert by_id[household.id]["visited_this_week"] is False
    assert by_id[household.id]["last_visited"].startswith("2026-09-30")
    assert by_id[household.id]["last_attempt"].startswith("2026-10-09")


def test_tasks_tile_draws_a_task_stored_without_a_point_at_its_household(client, world, session):
    task = make_task_at(session, world.households[A1][0], NOW + timedelta(days=1))
    task.location = None
    session.flush()
    response = client.get(url("tasks", *centre(A1)), headers=world.auth("leader_a"))
    assert [p["id"] for p in props(response, "tasks")] == [task.id]


def test_households_are_not_drawn_below_zoom_15(client, world):
    response = client.get(url("households", *centre(A1), z=14), headers=world.auth("worker_a1"))
    assert response.status_code == 204


def test_households_sharing_a_stair_entrance_are_one_feature_at_zoom_15(client, world, session):
    from tests.factories import make_household

    lon, lat = centre(A1, dy=0.001)
    upstairs = make_household(session, lon, lat, building="7", unit="2", room="301")
    downstairs = make_household(session, lon, lat, building="7", unit="2", room="101")
    make_visit(session, world.users["worker_a1"], upstairs, NOW)
    response = client.get(url("households", lon, lat, z=15), headers=world.auth("worker_a1"))
    entrance = next(p for p in props(response, "households") if p["building"] == "7")
    assert entrance["id"] == min(upstairs.id, downstairs.id)
    assert entrance["households"] == 2
    assert entrance["status"] == "overdue"  # the worst of the two: one was never visited
    assert entrance["visited_this_week"] is False
    response = client.get(url("households", lon, lat, z=16), headers=world.auth("worker_a1"))
    rooms = {p["room"]: p for p in props(response, "households") if p["building"] == "7"}
    assert rooms["301"]["status"] == "visited" and rooms["101"]["status"] == "overdue"
    assert rooms["301"]["households"] == 1


def test_visits_are_drawn_from_zoom_15_like_households(client, world, session):
    make_visit(session, world.users["worker_a1"], world.households[A1][0], NOW)
    response = client.get(url("visits", *centre(A1), z=14), headers=world.auth("worker_a1"))
    assert response.status_code == 204
    response = client.get(url("visits", *centre(A1), z=15), headers=world.auth("worker_a1"))
    assert len(props(response, "visits")) == 1


# --- the audit of what a tile draws ----------------------------------------------------------
def audit_entries(session) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_a_households_tile_audits_exactly_the_households_it_draws(client, world, session):
    path = url("households", *centre(A1), z=16)
    response = client.get(path, headers=world.auth("leader_a"))
    drawn = {p["id"] for p in props(response, "households")}
    (entry,) = audit_entries(session)
    assert drawn and sorted(entry.resource_ids) == sorted(drawn)
    assert (entry.user_id, entry.action, entry.resource) == (
        world.users["leader_a"].id,
        "read",
        "household",
    )
    assert entry.resource_uuids == []
    assert entry.fields == list(tiles.TILE_FIELDS["household"])
    assert entry.path == path  # the path only: a query string may carry what was searched


def test_a_stair_entrance_at_zoom_15_audits_every_household_it_stands_for(client, world, session):
    """One dot stands for the entrance's flats and tells of all of them (how many, the worst
    visit state, whether any is a must-visit household: one of them is disabled, low-income,
    ...): the entry names each of them, not only the lowest id the feature carries."""
    from tests.factories import make_household

    lon, lat = centre(A1, dy=0.001)
    upstairs = make_household(session, lon, lat, building="7", unit="2", room="301")
    downstairs = make_household(
        session, lon, lat, building="7", unit="2", room="101", tags=["disability"]
    )
    response = client.get(url("households", lon, lat, z=15), headers=world.auth("leader_a"))
    entrances = props(response, "households")
    entrance = next(p for p in entrances if p["building"] == "7")
    assert entrance["households"] == 2 and entrance["must_visit"] is True
    assert "audited_ids" not in entrance  # the tile carries what it did
    (entry,) = audit_entries(session)
    assert {upstairs.id, downstairs.id} <= set(entry.resource_ids)
    drawn = sum(p["households"] for p in entrances)
    assert len(entry.resource_ids) == len(set(entry.resource_ids)) == drawn


def test_a_visits_tile_audits_its_visits_by_uuid(client, world, session):
    visit = make_visit(session, world.users["worker_a1"], world.households[A1][1], NOW)
    client.get(url("visits", *centre(A1)), headers=world.auth("leader_a"))
    (entry,) = audit_entries(session)
    assert (entry.resource, entry.resource_uuids, entry.resource_ids) == ("visit", [visit.id], [])


def test_a_tile_that_draws_nothing_writes_no_audit_entry(client, world, session):
    make_visit(session, world.users["worker_a1"], world.households[A1][1], NOW - timedelta(days=8))
    assert client.get(url("visits", *centre(A1)), headers=world.auth("leader_a")).status_code == 204
    assert client.get(url("grids", *centre(A1)), headers=world.auth("leader_a")).status_code == 200
    assert audit_entries(session) == []  # grids are aggregates: they disclose no record


def test_a_tile_revalidated_unchanged_is_not_audited_again(client, world, session):
    """A 304 sends nothing the client does not already hold: the first read was audited."""
    _first, again = fetch_twice(client, world, "households")
    assert again.status_code == 304
    assert len(audit_entries(session)) == 1


def test_a_tile_revalidated_after_a_change_is_audited_again(client, world, session):
    _first, again = fetch_twice(client, world, "households", a_visit_in_a1(world, session))
    assert again.status_code == 200
    assert len(audit_entries(session)) == 2


def test_the_etag_postgresql_computes_is_the_hash_of_the_bytes(world, session):
    scope = Scope.for_user(session, world.users["leader_a"])
    req = tiles.TileRequest("households", *tile_of(*centre(A1)), current_week(), NOW)
    data, etag = tiles.render_tile(session, scope, req)
    assert data and etag == tiles.tile_etag(data)


def _tables_scanned(session, sql: str, params: dict) -> list[str]:
    """The relations and CTEs a statement's plan reads, one entry per scan node, sorted."""
    (plan,) = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params).one()
    found, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if "Relation Name" in node and node["Node Type"] != "ModifyTable":
            found.append(node["Relation Name"])
        if node["Node Type"] == "CTE Scan":
            found.append("cte " + node["CTE Name"])
        nodes.extend(node.get("Plans", []))
    return sorted(found)


@pytest.mark.parametrize(
    "layer, z", [("households", 15), ("households", 16), ("visits", 15), ("tasks", 15)]
)
def test_an_audited_tile_reads_its_features_once(world, session, layer, z):
    """The audit entry's ids come from the pass that encodes the tile: the audited statement
    reads the same relations, as many times, as the tile's statement without the audit, and
    stores no feature to read it again: its one CTE is the tile's one row, read by the answer
    and by the INSERT."""
    scope = Scope.for_user(session, world.users["leader_a"])
    req = tiles.TileRequest(layer, *tile_of(*centre(A1), z=z), current_week(), NOW)
    reader = tiles.Reader(user_id=world.users["leader_a"].id, ip="127.0.0.1", path="/t")
    dialect = session.get_bind().dialect
    scans = {}
    for audited in (False, True):
        sql, constants = tiles._compiled(scope, tiles.shape_of(req), audited, None, dialect)
        params = {**constants, **tiles.tile_params(req, reader if audited else None)}
        scans[audited] = _tables_scanned(session, sql, params)
    assert scans[False] and "cte t" not in scans[False]
    assert scans[True] == sorted(scans[False] + ["cte t", "cte t"])


def test_tiles_of_one_shape_share_one_statement_and_differ_in_parameters(world, session):
    """The API compiles a tile statement once per layer shape and scope; each tile of that
    shape runs it with its own address and week, and still draws only its own features."""
    tiles._compiled.cache_clear()
    scope = Scope.for_user(session, world.users["leader_a"])
    for code in (A1, A2, A1):
        req = tiles.TileRequest("households", *tile_of(*centre(code), z=16), current_week(), NOW)
        decoded = mapbox_vector_tile.decode(tiles.render_tile(session, scope, req)[0])
        ids = {f["properties"]["id"] for f in decoded["households"]["features"]}
        assert ids == {h.id for h in world.households[code]}
    assert tiles._compiled.cache_info().misses == 1


def _lonlat_of(feature, z: int, x: int, y: int) -> tuple[float, float]:
    """A point feature's WGS-84 position from its tile coordinates (y down, extent 4096)."""
    px, py = feature["geometry"]["coordinates"]
    n = 1 << z
    lon = (x + px / 4096) / n * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + py / 4096) / n))))
    return lon, lat


def test_tasks_tile_snaps_a_premises_follow_up_for_viewers_like_the_visits_layer(client, world):
    """A premises visit's follow-up task stands where the worker stood: viewers see it snapped
    to 0.001° (~100 m), as the visit's own point on the visits layer; leaders see it exact."""
    from tests.factories import visit_item

    stood = (116.40312, 39.92338)
    item = visit_item(
        None, lon=stood[0], lat=stood[1], follow_up=True, follow_up_note="路灯坏了",
        premises={"building": "Shop 3", "kind": "business"},
    )  # fmt: skip
    r = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert r.json["results"][0]["status"] == "created"
    tile = tile_of(*stood)
    drawn = {}
    for user in ("viewer_110101", "leader_a"):
        response = client.get(url("tasks", *stood), headers=world.auth(user))
        decoded = mapbox_vector_tile.decode(response.data, default_options={"y_coord_down": True})
        (feature,) = decoded["tasks"]["features"]
        drawn[user] = _lonlat_of(feature, *tile)
    assert drawn["viewer_110101"] == pytest.approx((116.403, 39.923), abs=1e-5)
    assert drawn["leader_a"] == pytest.approx(stood, abs=1e-5)
