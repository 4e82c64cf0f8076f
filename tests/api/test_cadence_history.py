"""A community's visit cadence has a history: each week is judged by the cadence in force then.

Community A's household `alone` lives alone: twice a week under the default cadence. It is
visited twice last week (W); this week (W+1) the community admin raises living alone to three
visits a week. Last week stays done (2 of 2) in the report, after a full rebuild, in the ledger
and in last week's plan; this week needs 3.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from api.services import households as household_service
from api.services import reports
from api.services.ledger import household_ledger
from api.services.report_verify import AGGREGATES  # every trigger-kept table
from api.services.weeks import shift_week, week_bounds, week_of
from tests.factories import A1, A, centre, make_household, make_visit

CADENCE = f"/api/v1/communities/{A}/visit-cadence"
RAISED = {"default": 1, "tags": {"living_alone": 3}}


def this_week() -> str:
    return week_of(datetime.now(UTC))


def last_week() -> str:
    return shift_week(this_week(), -1)


def day(week: str, n: int) -> datetime:
    """10:00 Asia/Shanghai on day n (0 = Monday) of the week."""
    return week_bounds(week)[0] + timedelta(days=n, hours=10)


@pytest.fixture()
def alone(world, session):
    """A household living alone in A1, registered a month ago (the grids drawn before)."""
    created = datetime.now(UTC) - timedelta(days=30)
    session.execute(text("UPDATE grid_versions SET valid_from = :t"), {"t": created})
    session.execute(text("UPDATE grid_holdings SET started_at = :t"), {"t": created})
    household = make_household(
        session, *centre(A1, dy=0.001), tags=["living_alone"], created_at=created
    )
    session.flush()
    return household


def visit(world, session, household, at):
    make_visit(session, world.users["worker_a1"], household, at)


def raise_cadence(client, world, body=RAISED):
    response = client.put(CADENCE, json=body, headers=world.auth("admin_a"))
    assert response.status_code == 200, response.json
    return response


def living_alone(session, week: str) -> dict:
    selection = reports.select_scope(session, None, week, community=A)
    a1 = next(
        g for g in reports.coverage_report(session, selection, week)["grids"] if g["code"] == A1
    )
    return next(m for m in a1["must_visit"] if m["tag"] == "living_alone")


def aggregates(session) -> dict[str, list]:
    return {
        table: sorted(tuple(r) for r in session.execute(text(f"SELECT * FROM {table}")))
        for table in AGGREGATES
    }


def rebuild(session) -> None:
    session.execute(text("SELECT gw_report_rebuild()"))


# --- reports ---------------------------------------------------------------------------------


def test_a_past_week_stays_done_after_the_cadence_is_raised_and_the_aggregates_rebuilt(
    client, world, session, alone
):
    visit(world, session, alone, day(last_week(), 0))
    visit(world, session, alone, day(last_week(), 1))
    before = living_alone(session, last_week())
    assert before == {"tag": "living_alone", "due": 1, "done": 1, "rate": 100.0}
    raise_cadence(client, world)
    rebuild(session)
    assert living_alone(session, last_week()) == before


def test_the_week_the_cadence_is_raised_in_asks_the_new_cadence(client, world, session, alone):
    raise_cadence(client, world)
    visit(world, session, alone, day(this_week(), 0))
    visit(world, session, alone, day(this_week(), 1))
    assert living_alone(session, this_week())["done"] == 0  # 2 of 3
    visit(world, session, alone, day(this_week(), 2))
    assert living_alone(session, this_week())["done"] == 1
    rebuild(session)
    assert living_alone(session, this_week())["done"] == 1


def test_the_kept_aggregates_equal_a_rebuild_in_every_week_after_a_cadence_change(
    client, world, session, alone
):
    visit(world, session, alone, day(last_week(), 0))
    visit(world, session, alone, day(last_week(), 1))
    raise_cadence(client, world)
    visit(world, session, alone, day(this_week(), 0))
    visit(world, session, alone, day(this_week(), 1))
    kept = aggregates(session)
    rebuild(session)
    assert aggregates(session) == kept


def test_a_visit_synced_after_the_change_counts_under_its_weeks_cadence(
    client, world, session, alone
):
    """Last week's second visit reaches the server only after this week's raise."""
    visit(world, session, alone, day(last_week(), 0))
    raise_cadence(client, world)
    visit(world, session, alone, day(last_week(), 1))
    assert living_alone(session, last_week())["done"] == 1
    kept = aggregates(session)
    rebuild(session)
    assert aggregates(session) == kept


def test_raising_the_cadence_mid_week_recounts_the_week_as_a_rebuild_would(
    client, world, session, alone
):
    visit(world, session, alone, day(this_week(), 0))
    visit(world, session, alone, day(this_week(), 1))
    assert living_alone(session, this_week())["done"] == 1  # 2 of 2
    raise_cadence(client, world)
    assert living_alone(session, this_week())["done"] == 0  # 2 of 3 now
    kept = aggregates(session)
    rebuild(session)
    assert aggregates(session) == kept


def test_lowering_the_cadence_mid_week_counts_a_household_it_satisfies(
    client, world, session, alone
):
    visit(world, session, alone, day(this_week(), 0))
    assert living_alone(session, this_week())["done"] == 0  # 1 of 2
    raise_cadence(client, world, {"default": 1, "tags": {}})
    assert living_alone(session, this_week())["done"] == 1  # 1 of 1
    kept = aggregates(session)
    rebuild(session)
    assert aggregates(session) == kept


def effective(session, moment: datetime | None) -> None:
    """Date the household changes that follow (the history trigger reads it)."""
    session.execute(
        text("SELECT set_config('gridwork.effective_at', :v, true)"),
        {"v": moment.isoformat() if moment else ""},
    )


def retag(session, household, tags: list[str], at: datetime) -> None:
    effective(session, at)
    household_service.update_household(session, None, household, {"tags": tags})
    effective(session, None)


def counted(session, household) -> list[str]:
    return session.scalar(
        text("SELECT counted FROM report_household_weeks WHERE household_id = :h AND week = :w"),
        {"h": household.id, "w": this_week()},
    )


def test_the_recount_replays_the_households_a_tag_may_count_and_equals_a_rebuild(
    client, world, session, alone
):
    """The recount replays only the households that have a care tag now or had one during the
    week; the others cannot be counted done under any cadence. This week, in A1: `alone`
    (living alone, visited Monday and Tuesday); `before`, whose tag was taken away last week;
    `mid`, living alone visited Monday, its tag taken away Tuesday, visited Wednesday; `late`,
    tagged elderly on Tuesday between its Monday and Wednesday visits; `plain`, never tagged.
    Each cadence change leaves the aggregates a rebuild computes."""
    created = datetime.now(UTC) - timedelta(days=30)

    def household(dx, tags):
        return make_household(session, *centre(A1, dx=dx, dy=-0.001), tags=tags, created_at=created)

    before = household(-0.001, ["living_alone"])
    mid = household(0.0, ["living_alone"])
    late = household(0.001, [])
    plain = household(0.002, [])
    retag(session, before, [], day(last_week(), 2))
    for h in (alone, before, mid, late, plain):
        visit(world, session, h, day(this_week(), 0))
    visit(world, session, alone, day(this_week(), 1))
    visit(world, session, before, day(this_week(), 1))
    retag(session, mid, [], day(this_week(), 1))
    retag(session, late, ["elderly_80"], day(this_week(), 1))
    visit(world, session, mid, day(this_week(), 2))
    visit(world, session, late, day(this_week(), 2))
    assert [counted(session, h) for h in (alone, before, mid, late, plain)] == [
        ["living_alone"],
        [],
        [],
        ["elderly_80"],
        [],
    ]

    raise_cadence(client, world, {"default": 1, "tags": {}})  # Monday's visit is enough for mid
    assert [counted(session, h) for h in (alone, before, mid, late, plain)] == [
        ["living_alone"],
        [],
        ["living_alone"],
        ["elderly_80"],
        [],
    ]
    kept = aggregates(session)
    rebuild(session)
    assert aggregates(session) == kept

    raise_cadence(client, world)  # living alone three times a week
    assert [counted(session, h) for h in (alone, before, mid, late, plain)] == [
        [],
        [],
        [],
        ["elderly_80"],
        [],
    ]
    kept = aggregates(session)
    rebuild(session)
    assert aggregates(session) == kept


# --- the ledger and the plan -------------------------------------------------------------------


def test_the_ledger_of_a_past_week_reads_that_weeks_cadence(client, world, session, alone):
    visit(world, session, alone, day(last_week(), 0))
    visit(world, session, alone, day(last_week(), 1))
    raise_cadence(client, world)
    end_of_last_week = week_bounds(last_week())[1] - timedelta(microseconds=1)
    rows = household_ledger(session, grid_ids=[world.grids[A1].id], as_of=end_of_last_week)
    row = next(r for r in rows if r.household_id == alone.id)
    assert (row.visits_this_week, row.visits_per_week, row.due) == (2, 2, False)
    rows = household_ledger(session, grid_ids=[world.grids[A1].id], as_of=datetime.now(UTC))
    assert next(r for r in rows if r.household_id == alone.id).visits_per_week == 3


def test_last_weeks_plan_does_not_list_a_household_that_got_that_weeks_visits(
    client, world, session, alone
):
    neighbour = make_household(
        session, *centre(A1, dy=0.0012), tags=["living_alone"], created_at=alone.created_at
    )
    visit(world, session, alone, day(last_week(), 0))
    visit(world, session, alone, day(last_week(), 1))
    raise_cadence(client, world)
    response = client.get(
        "/api/v1/visits/plan", query_string={"week": last_week()}, headers=world.auth("worker_a1")
    )
    assert response.status_code == 200, response.json
    listed = {s["household_id"] for s in response.json["households"]}
    assert alone.id not in listed
    assert neighbour.id in listed  # never visited: due


# --- the history rows ------------------------------------------------------------------------


def test_setting_the_cadence_records_who_changed_it_when_and_from_which_week(
    client, world, session
):
    raise_cadence(client, world)
    rows = session.execute(
        text(
            "SELECT from_week, cadence, changed_by_id, changed_at FROM community_cadences "
            "WHERE community_code = :c ORDER BY id"
        ),
        {"c": A},
    ).all()
    # The cadence before the first recorded change, for every week before it; then the change.
    assert [(r.from_week, r.cadence, r.changed_by_id) for r in rows] == [
        (None, {"default": 1, "tags": {"living_alone": 2}}, None),
        (this_week(), RAISED, world.users["admin_a"].id),
    ]
    assert datetime.now(UTC) - rows[-1].changed_at < timedelta(minutes=5)
    body = client.get(CADENCE, headers=world.auth("worker_a1")).json
    assert body == {"community_code": A, **RAISED}


def test_a_refused_cadence_records_nothing(client, world, session):
    response = client.put(CADENCE, json={"default": 0}, headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert session.scalar(text("SELECT count(*) FROM community_cadences")) == 0
