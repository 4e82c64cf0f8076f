"""`gridwork seed demo` run again after a crash part-way: each part of the demo activity
(each worker's visits of each week, each hotline ticket, each community's roster) is checked
and completed on its own, so the rerun completes the demo and a rerun after that changes
nothing."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select

from api import cli
from api import demo as demo_module
from api.demo import DemoActivity
from api.models import Household, Roster, Task, Visit
from api.services.geometry import point_lonlat
from tests.factories import bearer, make_household, make_roster_community

WEDNESDAY = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 2026-W48
# One request per batch of visits, so a crash can fall between two batches of one part.
BATCH = 1


class Crash(Exception):
    """The process ending between two requests (each of which has committed)."""


@pytest.fixture()
def community(session, app, monkeypatch):
    monkeypatch.setattr(demo_module, "BATCH", BATCH)
    community = make_roster_community(session, app, 10, 3)
    for grid in community.grids:  # households to visit, and for the hotline's tickets
        lon, lat = point_lonlat(to_shape(grid.boundary).centroid)
        for i in range(3):
            make_household(session, lon + 0.0002 * i, lat, room=f"{i + 1}01")
    return community


def _run(app, session, community, now=WEDNESDAY, crash_after: int | None = None):
    """One `seed demo` activity run; with `crash_after`, it dies after that many requests."""
    activity = DemoActivity(app, session, seed=1)
    requests = 0
    for name in ("post", "put"):
        send = getattr(activity.client, name)

        def counted(*args, _send=send, **kwargs):
            nonlocal requests
            response = _send(*args, **kwargs)
            requests += 1
            if requests == crash_after:
                raise Crash
            return response

        setattr(activity.client, name, counted)
    with app.app_context():
        summary = activity.run(community.workers[1:3], [community.admin], now)
    return summary, requests


def _state(session):
    """What the activity made (visits by their ids, which every run draws alike)."""
    return {
        "visits": sorted(
            (str(v.id), v.week) for v in session.execute(select(Visit.id, Visit.week))
        ),
        "hotline": sorted(
            session.scalars(select(Task.external_id).where(Task.source == "hotline")).all()
        ),
        "rosters": sorted(session.execute(select(Roster.week, Roster.status)).all()),
    }


def _uninterrupted(app, session, connection, community) -> dict:
    """The state an uninterrupted run leaves, made in a savepoint then rolled back."""
    mark = connection.begin_nested()
    try:
        _run(app, session, community)
        return _state(session)
    finally:
        mark.rollback()
        session.expire_all()


CRASH_POINTS = range(1, 14)


def test_the_crash_tests_cut_a_complete_run_short_after_each_of_its_requests(
    app, session, community
):
    summary, requests = _run(app, session, community)
    state = _state(session)
    assert requests == len(CRASH_POINTS) + 1  # and a crash after the last is a complete run
    assert {week for _, week in state["visits"]} == {"2026-W47", "2026-W48"}
    assert len(state["hotline"]) == 4
    assert state["rosters"] == [("2026-W48", "published")]
    assert summary.startswith(f"demo activity: {len(state['visits'])} visits, 4 hotline tasks")


@pytest.mark.parametrize("crash_after", CRASH_POINTS)
def test_a_rerun_after_a_crash_makes_what_an_uninterrupted_run_makes(
    app, session, connection, community, crash_after
):
    expected = _uninterrupted(app, session, connection, community)
    with pytest.raises(Crash):
        _run(app, session, community, crash_after=crash_after)
    assert _state(session) != expected
    _run(app, session, community)
    assert _state(session) == expected


def test_a_rerun_after_a_complete_run_changes_nothing(app, session, community):
    _run(app, session, community)
    before = _state(session)
    summary, requests = _run(app, session, community, now=WEDNESDAY + timedelta(hours=30))
    assert (summary, requests) == ("demo activity: already recorded", 0)
    assert _state(session) == before


def test_a_rerun_a_week_after_a_crash_completes_the_first_runs_fortnight(
    app, session, connection, community
):
    """The activity's week is its first run's: a rerun the next week completes that one
    rather than rostering and visiting another."""
    expected = _uninterrupted(app, session, connection, community)
    with pytest.raises(Crash):
        _run(app, session, community, crash_after=3)
    _run(app, session, community, now=WEDNESDAY + timedelta(days=7))
    assert _state(session)["rosters"] == expected["rosters"] == [("2026-W48", "published")]
    assert _state(session)["visits"] == expected["visits"]


def test_a_rerun_after_a_visit_recorded_weeks_back_changes_nothing(app, session, community):
    """Found playing the demo: a worker of the demo synced a visit dated weeks back (a phone
    whose clock was wrong, a visit kept offline), then `seed demo` ran again (scripts/demo.sh
    is safe to run twice). The activity took its week from the demo workers' earliest visit:
    it made another fortnight of visits, hotline steps and published rosters weeks back."""
    from tests.factories import visit_item

    _run(app, session, community)
    worker = community.workers[1]
    household = session.scalars(
        select(Household).where(Household.grid_id.in_([g.id for g in worker.grids]))
    ).first()
    stale = visit_item(household, at=WEDNESDAY - timedelta(days=24))
    with app.app_context():
        response = app.test_client().post(
            "/api/v1/visits/batch", json={"visits": [stale]}, headers=bearer(worker)
        )
    assert response.get_json()["results"][0]["status"] == "created"
    before = _state(session)
    summary, requests = _run(app, session, community, now=WEDNESDAY + timedelta(hours=30))
    assert (summary, requests) == ("demo activity: already recorded", 0)
    assert _state(session) == before


def test_a_rerun_after_households_were_registered_changes_nothing(app, session, community):
    """Found playing the demo: households imported into a demo grid, then `seed demo` again.
    A worker's visits were drawn from one generator over the grid's households in order, so
    one more household changed every id drawn after it: the rerun took the week's visits for
    missing and sent them all again, each household visited twice."""
    _run(app, session, community)
    for grid in community.grids:
        lon, lat = point_lonlat(to_shape(grid.boundary).centroid)
        added = make_household(session, lon - 0.0002, lat + 0.0002, room="901")
        # Registered after the run, as an import is (here every row bears the test's start).
        added.created_at = datetime.now(UTC)
    session.flush()
    before = _state(session)
    summary, requests = _run(app, session, community, now=WEDNESDAY + timedelta(hours=30))
    assert (summary, requests) == ("demo activity: already recorded", 0)
    assert _state(session) == before


_command_session = cli._session


# --- through the command: `gridwork seed demo` ------------------------------------------------


@pytest.fixture()
def small_district(monkeypatch, app):
    """The demo district's first community with two households a grid: quick to seed."""
    import fixtures.demo
    from fixtures.demo import demo_district

    app.config["GRIDWORK_ENV"] = "development"
    district = demo_district()
    community = district["communities"][0]["code"]
    district["grids"]["features"] = [
        f for f in district["grids"]["features"] if f["properties"]["code"].startswith(community)
    ]
    codes = {f["properties"]["code"] for f in district["grids"]["features"]}
    kept: dict[str, int] = {}
    households = []
    for row in district["households"]:
        if row["grid_code"] in codes and kept.get(row["grid_code"], 0) < 2:
            kept[row["grid_code"]] = kept.get(row["grid_code"], 0) + 1
            households.append(row)
    district["households"] = households
    district["users"] = [u for u in district["users"] if u.get("community") == community]
    monkeypatch.setattr(fixtures.demo, "demo_district", lambda: district)
    return district


@contextmanager
def _committed_up_to_the_crash(*args, **kwargs):
    """The command's session, keeping what the requests committed when the process dies.

    In production each request commits on a connection of its own and a crash rolls back only
    the command's session (which has only read by then); here the requests' commits are
    savepoints inside that session, so its rollback would take them back too."""
    crash = None
    with _command_session(*args, **kwargs) as session:
        try:
            yield session
        except Crash as exc:
            crash = exc
    if crash is not None:
        raise crash


def _seed_demo(app, monkeypatch, crash_after: int | None = None):
    """`gridwork seed demo`; with `crash_after`, the process dies after that many requests."""
    from click.testing import CliRunner
    from flask.testing import FlaskClient

    from api.cli import main

    requests = 0
    open_ = FlaskClient.open

    def counted(self, *args, **kwargs):
        nonlocal requests
        response = open_(self, *args, **kwargs)
        requests += 1
        if requests == crash_after:
            raise Crash
        return response

    monkeypatch.setattr(FlaskClient, "open", counted)
    monkeypatch.setattr(cli, "_session", _committed_up_to_the_crash)
    try:
        with app.app_context():
            result = CliRunner().invoke(main, ["seed", "demo"])
    finally:
        monkeypatch.setattr(FlaskClient, "open", open_)
    if crash_after is not None and requests >= crash_after:
        assert isinstance(result.exception, Crash)
    else:
        assert result.exit_code == 0, result.output
    return result.output, requests


@pytest.mark.parametrize("crash_point", ["first", "middle", "last-but-one", "last"])
def test_seed_demo_run_again_after_a_crash_completes_the_demo(
    app, session, connection, monkeypatch, small_district, crash_point
):
    session.scalar(select(func.count(Visit.id)))  # its transaction begun outside the savepoint
    mark = connection.begin_nested()
    try:
        _, total = _seed_demo(app, monkeypatch)
        expected = _state(session)
    finally:
        mark.rollback()
        session.expire_all()
    assert expected["hotline"] and expected["visits"] and expected["rosters"]
    crash_after = {"first": 1, "middle": total // 2, "last-but-one": total - 2}.get(
        crash_point, total - 1
    )
    _seed_demo(app, monkeypatch, crash_after=crash_after)
    assert _state(session) != expected
    output, _ = _seed_demo(app, monkeypatch)
    assert "already recorded" not in output
    assert _state(session) == expected
    output, requests = _seed_demo(app, monkeypatch)
    assert "demo activity: already recorded" in output
    assert requests == 0
    assert _state(session) == expected


def test_the_demos_workers_have_held_their_grids_since_the_district_was_registered(
    app, session, connection, monkeypatch, small_district
):
    """The demo's register is dated a month back (last week's report has it), but its workers
    held their grids only from the seeding on: last week's plan, read on the grids a worker
    held as it ended, was empty."""
    from datetime import UTC, datetime, timedelta

    from api.models import GridHolding, User
    from api.scope import Scope
    from api.services.weeks import week_bounds, week_of

    session.scalar(select(func.count(Visit.id)))  # its transaction begun outside the savepoint
    mark = connection.begin_nested()
    try:
        _seed_demo(app, monkeypatch)
        worker = session.scalar(select(User).where(User.role == "worker").order_by(User.id))
        started = session.scalars(
            select(GridHolding.started_at).where(GridHolding.user_id == worker.id)
        ).all()
        scope = Scope.for_user(session, worker)
        last_week = week_of(datetime.now(UTC) - timedelta(days=7))
        held = scope.grids_held_at(session, week_bounds(last_week)[1] - timedelta(seconds=1))
    finally:
        mark.rollback()
        session.expire_all()
    assert started and max(started) < datetime.now(UTC) - timedelta(days=27)
    assert held == set(scope.grid_ids) != set()


def test_the_demo_visits_households_living_alone_as_often_as_their_cadence_asks(
    app, session, community
):
    """Living alone is visited twice a week (the default cadence): the demo visited every
    household once, so its report read 0 % done for 独居 in every week."""
    from api.models import Household
    from api.services.weeks import shift_week, week_of

    alone = []
    for grid in community.grids:
        lon, lat = point_lonlat(to_shape(grid.boundary).centroid)
        for i in range(4):
            alone.append(
                make_household(session, lon, lat + 0.0002 * (i + 1), room=f"{i + 1}02",
                               tags=["living_alone"])
            )  # fmt: skip
    _run(app, session, community)
    last_week = shift_week(week_of(WEDNESDAY), -1)
    counts = dict(
        session.execute(
            select(Visit.household_id, func.count())
            .join(Household, Household.id == Visit.household_id)
            .where(Visit.week == last_week, Household.id.in_([h.id for h in alone]))
            .group_by(Visit.household_id)
        ).all()
    )
    others = session.execute(
        select(func.count())
        .select_from(Visit)
        .where(Visit.week == last_week, Visit.household_id.not_in([h.id for h in alone]))
        .group_by(Visit.household_id)
    ).scalars()
    assert counts and max(counts.values()) == 2
    assert sum(1 for n in counts.values() if n == 2) >= len(counts) / 2
    assert set(others) == {1}  # once a week for the rest
