"""A worker handed another grid still sends the visits made in the old one.

Phones record offline and sync in batches: a visit made on Monday in the grid a worker then
held may reach the server on Wednesday, after the office gave them another grid. Who may record
a visit is judged by the grids the worker held on the visit's date (`grid_holdings`, kept by
the database whenever an account's grids change), not only by those they hold at the sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from api.models import GridHolding, Visit
from api.services.weeks import LOCAL
from tests.factories import A1, A2, A, centre, visit_item

BATCH = "/api/v1/visits/batch"


def _home(world, code=A1, i=0):
    return world.households[code][i]


def _give_grids(client, world, username, codes):
    user = world.users[username]
    response = client.patch(
        f"/api/v1/users/{user.id}", json={"grid_codes": codes}, headers=world.auth("admin_a")
    )
    assert response.status_code == 200, response.json


def _held_since(session, world, username, code, since):
    """The worker has held the grid since `since` (the world was made a moment ago)."""
    session.execute(
        text(
            "UPDATE grid_holdings SET started_at = :since"
            " WHERE user_id = :user AND grid_id = :grid AND ended_at IS NULL"
        ),
        {"since": since, "user": world.users[username].id, "grid": world.grids[code].id},
    )


def _sync_one(client, world, item, user="worker_a1") -> dict:
    response = client.post(BATCH, json={"visits": [item]}, headers=world.auth(user))
    assert response.status_code == 200, response.json
    return response.json["results"][0]


def test_a_visit_made_in_the_old_grid_before_the_handover_is_stored(client, world, session):
    now = datetime.now(UTC)
    _held_since(session, world, "worker_a1", A1, now - timedelta(days=3))
    _give_grids(client, world, "worker_a1", [A2])

    result = _sync_one(client, world, visit_item(_home(world), at=now - timedelta(days=1)))

    assert result["status"] == "created", result
    assert result["visit"]["grid_code"] == A1
    assert result["visit"]["relief"] is False  # their own grid on the day, not a relief


def test_a_visit_dated_before_the_worker_held_the_old_grid_is_refused(client, world, session):
    now = datetime.now(UTC)
    _held_since(session, world, "worker_a1", A1, now - timedelta(days=2))
    _give_grids(client, world, "worker_a1", [A2])

    result = _sync_one(client, world, visit_item(_home(world), at=now - timedelta(days=4)))

    assert (result["status"], result["code"]) == ("rejected", "household-not-found")
    assert session.scalar(select(Visit.id).where(Visit.id == result["id"])) is None


def test_a_visit_dated_after_the_handover_day_is_refused(client, world, session):
    now = datetime.now(UTC)
    _held_since(session, world, "worker_a1", A1, now - timedelta(days=5))
    _give_grids(client, world, "worker_a1", [A2])
    session.execute(
        text("UPDATE grid_holdings SET ended_at = :ended WHERE ended_at IS NOT NULL"),
        {"ended": now - timedelta(days=3)},
    )

    result = _sync_one(client, world, visit_item(_home(world), at=now - timedelta(days=1)))

    assert (result["status"], result["code"]) == ("rejected", "household-not-found")


def test_premises_in_a_grid_given_up_today_are_recorded_there(client, world, session):
    _give_grids(client, world, "worker_a2", [A1])
    lon, lat = centre(A2)
    item = visit_item(None, lon=lon, lat=lat, premises={"building": "9"})

    result = _sync_one(client, world, item, user="worker_a2")

    assert result["status"] == "created", result
    assert result["visit"]["grid_code"] == A2


def test_every_change_of_an_accounts_grids_is_kept_as_a_holding(client, world, session):
    worker = world.users["worker_a1"]
    _give_grids(client, world, "worker_a1", [A2])
    _give_grids(client, world, "worker_a1", [A1, A2])

    rows = session.execute(
        select(GridHolding.grid_id, GridHolding.ended_at.is_(None))
        .where(GridHolding.user_id == worker.id)
        .order_by(GridHolding.started_at, GridHolding.id)
    ).all()
    a1, a2 = world.grids[A1].id, world.grids[A2].id
    assert rows == [(a1, False), (a2, True), (a1, True)]


# --- grids led: a leader leads a grid by its `leader_id`, assigned to it or not ---------------
def _lead(client, world, username, code):
    response = client.patch(
        f"/api/v1/grids/{world.grids[code].id}",
        json={"leader_id": world.users[username].id},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 200, response.json


@pytest.fixture()
def lead_only(client, session, world):
    """A grid leader who leads A1 (its `leader_id`), not assigned to it, since three days ago."""
    from tests.factories import make_user

    world.users["lead_only"] = make_user(session, "lead_only", "grid_leader", community=A)
    session.flush()
    _lead(client, world, "lead_only", A1)
    session.execute(
        text("UPDATE grid_leaderships SET started_at = :since WHERE user_id = :user"),
        {"since": datetime.now(UTC) - timedelta(days=3), "user": world.users["lead_only"].id},
    )
    return world.users["lead_only"]


def test_a_visit_made_in_a_grid_led_then_is_stored_after_another_leads_it(
    client, world, session, lead_only
):
    """Leading leaves no holding: the visit the leader made offline in the grid they led was
    refused as soon as another was made its leader, and retried from the phone for ever."""
    _lead(client, world, "leader_a", A1)
    item = visit_item(_home(world), at=datetime.now(UTC) - timedelta(hours=3))
    result = _sync_one(client, world, item, user="lead_only")
    assert result["status"] == "created", result
    assert result["visit"]["grid_code"] == A1


def test_a_visit_dated_before_the_leader_led_the_grid_is_refused(client, world, session, lead_only):
    _lead(client, world, "leader_a", A1)
    item = visit_item(_home(world), at=datetime.now(UTC) - timedelta(days=4))
    result = _sync_one(client, world, item, user="lead_only")
    assert (result["status"], result["code"]) == ("rejected", "household-not-found")


def test_every_change_of_a_grids_leader_is_kept_as_a_leadership(client, world, session, lead_only):
    from api.models import GridLeadership

    _lead(client, world, "leader_a", A1)
    periods = session.execute(
        select(GridLeadership.user_id, GridLeadership.ended_at.is_(None))
        .where(GridLeadership.grid_id == world.grids[A1].id)
        .order_by(GridLeadership.id)
    ).all()
    assert periods[-2:] == [(lead_only.id, False), (world.users["leader_a"].id, True)]
    assert all(not still for _, still in periods[:-1])


def test_migration_0063_dates_the_grids_led_before_it_from_2000(own_database_url):
    """A grid led when the table was made is led since 2000-01-01 (as 0039 dated holdings):
    its leader's offline visits of any day before are judged as they were."""
    from alembic import command
    from sqlalchemy import create_engine

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, worker_id = migration_grid(own_database_url, worker="mig_0063")
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    try:
        command.downgrade(config, "0062")
        with engine.begin() as conn:  # a leader, as the grids API set one before 0063
            conn.execute(
                text("UPDATE users SET role = 'grid_leader' WHERE id = :id"), {"id": worker_id}
            )
            conn.execute(
                text("UPDATE grids SET leader_id = :id WHERE id = :grid"),
                {"id": worker_id, "grid": grid_id},
            )
        command.upgrade(config, "head")
        with engine.begin() as conn:
            led = conn.execute(
                text("SELECT user_id, started_at, ended_at FROM grid_leaderships")
            ).all()
            conn.execute(text("UPDATE grids SET leader_id = NULL"))  # the trigger closes it
            closed = conn.scalar(
                text("SELECT count(*) FROM grid_leaderships WHERE ended_at IS NOT NULL")
            )
        assert led == [(worker_id, datetime(2000, 1, 1, tzinfo=LOCAL), None)]
        assert closed == 1
    finally:
        engine.dispose()
