"""Households leave the register (moved out, demolished, closed, a duplicate) and come back.

`POST /households/{id}/removal` takes one out: from its removal's time it is due nowhere (the
plan, the map, the list, the export, the weekly report from that week on; the weeks before
stay as they were), a visit dated after it is refused and one dated before it is still taken.
`DELETE` undoes a mistaken removal. Retention erases a removed household's phone and care tags
after GRIDWORK_RETAIN_REMOVED_HOUSEHOLDS_DAYS; the removal can then no longer be undone.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from api.cli import main
from api.models import AuditEntry, Household
from api.services import retention
from api.services.weeks import LOCAL, shift_week, week_of
from tests.api.test_cli import gridwork  # noqa: F401  (the fixture)
from tests.api.test_reports import _aggregates
from tests.api.test_retention import POLICY
from tests.api.test_tiles import props, url
from tests.factories import A1, A, box, centre, make_household, make_visit, visit_item

# The API's clock, fixed: a Wednesday noon in Asia/Shanghai, as the database's own day.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=LOCAL).astimezone(UTC)
TODAY = NOW.astimezone(LOCAL).date()
WEEK = week_of(NOW)  # 2026-W49
LAST_MONDAY = TODAY - timedelta(days=TODAY.weekday() + 7)  # of 2026-W48
REGISTERED = NOW - timedelta(days=60)
DOOR = centre(A1, dy=0.001)
PHONE = "13800001111"


@pytest.fixture()
def home(app, session, world) -> Household:
    """A household of A1, registered two months ago, living alone, with a phone. The grids
    were drawn, and held by their workers, long before."""
    app.config["FIXED_NOW"] = NOW
    long_before = {"t": REGISTERED - timedelta(days=30)}
    session.execute(text("UPDATE grid_versions SET valid_from = :t"), long_before)
    session.execute(text("UPDATE grids SET created_at = :t"), long_before)
    session.execute(text("UPDATE grid_holdings SET started_at = :t"), long_before)
    household = make_household(
        session,
        *DOOR,
        building="9",
        room="909",
        tags=["living_alone"],
        phone=PHONE,
        created_at=REGISTERED,
    )
    session.flush()
    return household


def path(household) -> str:
    return f"/api/v1/households/{household.id}/removal"


def remove(client, world, household, user="leader_a", **body):
    body.setdefault("reason", "moved_out")
    return client.post(path(household), json=body, headers=world.auth(user))


def undo(client, world, household, user="leader_a"):
    return client.delete(path(household), headers=world.auth(user))


def read(client, world, household, user="admin_a") -> dict:
    response = client.get(f"/api/v1/households/{household.id}", headers=world.auth(user))
    assert response.status_code == 200, response.json
    return response.json


def sync(client, world, *items, user="worker_a1") -> list[dict]:
    response = client.post(
        "/api/v1/visits/batch", json={"visits": list(items)}, headers=world.auth(user)
    )
    assert response.status_code == 200, response.json
    return response.json["results"]


def listed(client, world, user="admin_a", **query) -> set[int]:
    response = client.get(
        "/api/v1/households", query_string={"page_size": 100, **query}, headers=world.auth(user)
    )
    assert response.status_code == 200, response.json
    return {h["id"] for h in response.json}


def coverage(client, world, week: str) -> dict:
    response = client.get(
        "/api/v1/reports/coverage",
        query_string={"week": week, "community": A, "format": "json"},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 200, response.get_json()
    grid = next(g for g in response.json["grids"] if g["code"] == A1)
    return {"households": grid["households"], "visited": grid["visited"]}


def at_local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL)


# --- who removes, and what it answers --------------------------------------------------------
def test_the_grids_leader_removes_a_household_as_of_today(client, world, home):
    response = remove(client, world, home, note="全家搬往外地")
    assert response.status_code == 201, response.json
    removal = response.json["removal"]
    assert removal["reason"] == "moved_out"
    assert removal["note"] == "全家搬往外地"
    assert removal["effective_date"] == TODAY.isoformat()
    assert datetime.fromisoformat(removal["removed_at"]) == NOW
    assert removal["removed_by_id"] == world.users["leader_a"].id
    assert removal["erased_at"] is None
    assert read(client, world, home)["removal"] == removal


def test_a_past_effective_date_takes_it_out_at_the_end_of_that_day(client, world, home):
    response = remove(
        client, world, home, user="admin_a", reason="demolished", effective_date="2026-11-20"
    )
    assert response.status_code == 201, response.json
    removed_at = datetime.fromisoformat(response.json["removal"]["removed_at"])
    assert removed_at == datetime(2026, 11, 21, tzinfo=LOCAL)


def test_a_district_viewer_reads_the_removal_without_its_note(client, world, home):
    remove(client, world, home, note="全家搬往外地")
    removal = read(client, world, home, user="viewer_110101")["removal"]
    assert removal["reason"] == "moved_out"
    assert removal["note"] is None


def test_the_removal_note_is_stored_encrypted(client, world, home, session):
    """The note (a resident's illness, why they left) was stored in clear text, though it is
    withheld from district viewers like a visit's notes."""
    assert remove(client, world, home, note="老人确诊阿尔茨海默症").status_code == 201
    stored = session.execute(
        text("SELECT removal_note FROM households WHERE id = :i"), {"i": home.id}
    ).scalar_one()
    assert stored.startswith("v1:") and "阿尔茨海默症" not in stored
    assert read(client, world, home)["removal"]["note"] == "老人确诊阿尔茨海默症"


def test_the_encrypt_command_seals_a_removal_note_left_in_clear(app, client, world, home, session):
    """`security encrypt` (a key rotation) left removal notes out: they were in no sealed
    column's list."""
    remove(client, world, home)
    session.execute(
        text("UPDATE households SET removal_note = '搬去儿子家' WHERE id = :i"), {"i": home.id}
    )
    with app.app_context():
        result = CliRunner().invoke(main, ["security", "encrypt"], catch_exceptions=False)
    assert "households.removal_note: 1" in result.output
    stored = session.execute(
        text("SELECT removal_note FROM households WHERE id = :i"), {"i": home.id}
    ).scalar_one()
    assert stored.startswith("v1:")
    assert read(client, world, home)["removal"]["note"] == "搬去儿子家"


def test_a_read_of_a_removed_household_audits_its_note(client, world, home, session):
    """A removed household's read showed its note, and the audit entry named only the address,
    location, members, tags and phone."""
    remove(client, world, home, note="全家搬往外地")
    read(client, world, home)
    entry = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "read", AuditEntry.resource == "household")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.resource_ids == [home.id] and "removal_note" in entry.fields


def test_a_viewers_read_of_a_removed_household_does_not_audit_the_note_withheld(
    client, world, home, session
):
    remove(client, world, home, note="全家搬往外地")
    read(client, world, home, user="viewer_110101")
    entry = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "read", AuditEntry.resource == "household")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.resource_ids == [home.id] and "removal_note" not in entry.fields


def test_a_household_in_the_register_has_no_removal(client, world, home):
    assert read(client, world, home)["removal"] is None


def test_a_worker_of_the_grid_may_not_remove_its_household(client, world, home):
    response = remove(client, world, home, user="worker_a1")
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert read(client, world, home)["removal"] is None


@pytest.mark.parametrize("user", ["worker_a2", "worker_b1", "admin_b"])
def test_someone_who_does_not_see_the_household_is_told_it_is_not_found(client, world, home, user):
    assert remove(client, world, home, user=user).status_code == 404
    assert undo(client, world, home, user=user).status_code == 404
    assert read(client, world, home)["removal"] is None


def test_a_district_viewer_removes_nothing(client, world, home):
    assert remove(client, world, home, user="viewer_110101").status_code == 403
    assert read(client, world, home)["removal"] is None


def test_the_removal_and_its_undo_are_audited_as_updates_of_the_household(
    client, world, home, session
):
    assert remove(client, world, home).status_code == 201
    assert undo(client, world, home).status_code == 200
    entries = session.scalars(
        select(AuditEntry).where(
            AuditEntry.resource == "household",
            AuditEntry.action == "update",
            AuditEntry.resource_ids.contains([home.id]),
        )
    ).all()
    assert [e.path for e in entries] == [path(home), path(home)]
    assert {e.user_id for e in entries} == {world.users["leader_a"].id}


# --- bad input: a problem, and nothing changed -------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "emigrated"}, "reason"),
        ({"reason": None}, "reason"),
        ({"reason": "moved_out", "effective_date": "2026-13-01"}, "effective_date"),
        ({"reason": "moved_out", "note": "x" * 201}, "note"),
        ({"reason": "moved_out", "note": "line\nbreak"}, "note"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(client, world, home, body, field):
    response = client.post(path(home), json=body, headers=world.auth("leader_a"))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in str(response.json["errors"])
    assert read(client, world, home)["removal"] is None


def test_a_removal_without_a_reason_is_422(client, world, home):
    response = client.post(path(home), json={}, headers=world.auth("leader_a"))
    assert response.status_code == 422
    assert read(client, world, home)["removal"] is None


def test_an_effective_date_in_the_future_is_422(client, world, home):
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    response = remove(client, world, home, effective_date=tomorrow)
    assert response.status_code == 422
    assert "in the future" in response.json["detail"]
    assert "effective_date" in response.json["errors"]
    assert read(client, world, home)["removal"] is None


def test_an_effective_date_before_it_was_registered_is_422(client, world, home):
    before = (REGISTERED.astimezone(LOCAL).date() - timedelta(days=1)).isoformat()
    response = remove(client, world, home, effective_date=before)
    assert response.status_code == 422
    assert "before the household was registered" in response.json["detail"]
    assert read(client, world, home)["removal"] is None


def test_an_effective_date_before_its_last_visit_is_422(client, world, home, session):
    make_visit(session, world.users["worker_a1"], home, at_local(TODAY - timedelta(days=3), 10))
    response = remove(client, world, home, effective_date=(TODAY - timedelta(days=4)).isoformat())
    assert response.status_code == 422
    assert "before its last visit" in response.json["detail"]
    # The day of the visit itself is fine: it left at the end of that day.
    day_of_visit = (TODAY - timedelta(days=3)).isoformat()
    assert remove(client, world, home, effective_date=day_of_visit).status_code == 201


def test_a_second_removal_is_409_and_keeps_the_first(client, world, home):
    first = remove(client, world, home, effective_date="2026-11-25").json["removal"]
    response = remove(client, world, home, user="admin_a", reason="duplicate")
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert "2026-11-25" in response.json["detail"]
    assert read(client, world, home)["removal"] == first


def test_a_removal_sent_again_with_its_idempotency_key_gets_the_first_answer(client, world, home):
    headers = {**world.auth("leader_a"), "Idempotency-Key": "remove-909"}
    first = client.post(path(home), json={"reason": "closed"}, headers=headers)
    again = client.post(path(home), json={"reason": "closed"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json


def test_a_removed_household_is_not_edited(client, world, home):
    remove(client, world, home)
    response = client.patch(
        f"/api/v1/households/{home.id}", json={"members": 3}, headers=world.auth("admin_a")
    )
    assert response.status_code == 409
    assert "undo its removal" in response.json["detail"]


# --- due nowhere -----------------------------------------------------------------------------
def test_a_removed_household_leaves_the_list_but_status_lists_it(client, world, home):
    assert home.id in listed(client, world)
    remove(client, world, home)
    assert home.id not in listed(client, world)
    assert home.id not in listed(client, world, user="worker_a1")
    assert listed(client, world, status="removed") == {home.id}
    assert home.id in listed(client, world, status="all")
    assert listed(client, world, user="leader_a", status="removed") == {home.id}


def test_a_worker_may_not_list_the_removed_households(client, world, home):
    response = client.get(
        "/api/v1/households", query_string={"status": "removed"}, headers=world.auth("worker_a1")
    )
    assert response.status_code == 403


def test_an_unknown_status_is_422(client, world, home):
    response = client.get(
        "/api/v1/households", query_string={"status": "gone"}, headers=world.auth("admin_a")
    )
    assert response.status_code == 422


def plan_ids(client, world) -> set[int]:
    response = client.get(
        "/api/v1/visits/plan", query_string={"week": WEEK}, headers=world.auth("worker_a1")
    )
    assert response.status_code == 200, response.json
    return {stop["household_id"] for stop in response.json["households"]}


def test_a_removed_household_is_not_in_the_workers_plan(client, world, home):
    assert home.id in plan_ids(client, world)
    remove(client, world, home)
    assert home.id not in plan_ids(client, world)


def test_last_weeks_plan_still_holds_a_household_removed_this_week(client, world, home):
    assert remove(client, world, home).status_code == 201
    response = client.get(
        "/api/v1/visits/plan",
        query_string={"week": shift_week(WEEK, -1)},
        headers=world.auth("worker_a1"),
    )
    assert home.id in {stop["household_id"] for stop in response.json["households"]}


def test_a_removed_household_is_off_the_maps_households_layer(client, world, home):
    def drawn() -> set[int]:
        response = client.get(url("households", *DOOR, z=17), headers=world.auth("leader_a"))
        return {p["id"] for p in props(response, "households")}

    assert home.id in drawn()
    remove(client, world, home)
    assert home.id not in drawn()


def test_a_past_weeks_map_draws_a_household_that_left_after_it(client, world, home):
    """It was in the register that week, and the week's figures count it there; a household
    that left during a week is drawn in none of that week's tiles, as the report counts it."""

    def drawn(week: str) -> set[int]:
        tile = url("households", *DOOR, z=17, week=week)
        return {
            p["id"] for p in props(client.get(tile, headers=world.auth("leader_a")), "households")
        }

    assert remove(client, world, home, effective_date=LAST_MONDAY.isoformat()).status_code == 201
    assert home.id in drawn(shift_week(WEEK, -2))
    assert home.id not in drawn(shift_week(WEEK, -1))
    assert home.id not in drawn(WEEK)


def test_a_removed_household_is_not_in_the_export(client, world, home):
    def exported() -> str:
        response = client.get(
            "/api/v1/households/export",
            query_string={"format": "csv"},
            headers=world.auth("admin_a"),
        )
        assert response.status_code == 200
        return response.data.decode("utf-8-sig")

    assert PHONE in exported()
    remove(client, world, home)
    assert PHONE not in exported()
    assert "909" not in exported()


def test_the_grids_household_count_leaves_out_a_removed_household(client, world, home):
    def count() -> int:
        grid_id = world.grids[A1].id
        response = client.get(f"/api/v1/grids/{grid_id}", headers=world.auth("admin_a"))
        assert response.status_code == 200, response.json
        return response.json["properties"]["households"]

    before = count()
    remove(client, world, home)
    assert count() == before - 1


# --- visits: before the removal taken, after it refused --------------------------------------
def test_a_visit_made_before_the_removal_and_synced_later_is_taken(client, world, home):
    left = (TODAY - timedelta(days=2)).isoformat()
    assert remove(client, world, home, effective_date=left).status_code == 201
    made = at_local(TODAY - timedelta(days=2), 18)  # the evening of the day it left
    [result] = sync(client, world, visit_item(home, at=made))
    assert result["status"] == "created", result


def test_a_visit_after_the_removal_is_refused_saying_when_it_left(client, world, home):
    remove(client, world, home, effective_date=(TODAY - timedelta(days=2)).isoformat())
    made = at_local(TODAY - timedelta(days=1), 9)
    [result] = sync(client, world, visit_item(home, at=made))
    assert result["status"] == "rejected"
    assert result["code"] == "household-removed"
    assert result["removed_on"] == (TODAY - timedelta(days=2)).isoformat()
    assert result["removal_reason"] == "moved_out"
    assert "left the register" in result["reason"]


def test_a_visit_after_a_removal_made_today_is_refused(client, world, home):
    remove(client, world, home)
    [result] = sync(client, world, visit_item(home, at=NOW + timedelta(minutes=5)))
    assert result["code"] == "household-removed"


def test_a_task_is_not_opened_for_a_household_that_left_the_register(client, world, home, session):
    """A hotline ticket or a leader's task naming the household was opened, dispatched and
    counted for a door where nobody lives any more: a 422 saying when it left, nothing opened.
    The place can still be given (`location`)."""
    from api.models import Task

    remove(client, world, home, effective_date=(TODAY - timedelta(days=1)).isoformat())
    body = {"source": "leader", "title": "楼道堆物", "household_id": home.id}
    response = client.post("/api/v1/tasks", json=body, headers=world.auth("leader_a"))
    assert response.status_code == 422, response.json
    assert "left the register" in response.json["detail"]
    assert response.json["errors"]["json"]["household_id"]
    assert session.scalar(select(Task.id).where(Task.household_id == home.id)) is None
    at_the_door = {
        "source": "leader",
        "title": "楼道堆物",
        "location": {"lon": DOOR[0], "lat": DOOR[1]},
    }
    assert (
        client.post("/api/v1/tasks", json=at_the_door, headers=world.auth("leader_a")).status_code
        == 201
    )


def test_a_follow_up_of_a_visit_made_before_the_removal_is_still_opened(
    client, world, home, session
):
    """The visit is taken (made while the household was in the register): what it found is
    followed up, at the household's place."""
    from api.models import Task

    remove(client, world, home, effective_date=(TODAY - timedelta(days=2)).isoformat())
    made = at_local(TODAY - timedelta(days=2), 18)
    item = visit_item(home, at=made, follow_up=True, follow_up_note="水管漏水")
    [result] = sync(client, world, item)
    assert result["status"] == "created", result
    assert session.scalar(select(Task.source).where(Task.household_id == home.id)) == "visit"


def moved_out_notices(session, user) -> list:
    from api.models import Notification

    return session.scalars(
        select(Notification).where(
            Notification.user_id == user.id, Notification.kind == "household_moved_out"
        )
    ).all()


def test_a_visit_finding_the_household_gone_tells_the_grids_leader_once_a_week(
    client, world, home, session
):
    """The worker at the door learns the family left (outcome moved_out) but may not take the
    household out of the register: the grid's leader, who may, heard nothing, and the
    household stayed due every week. The leader is told, at most once a week a household (a
    worker recording it again each week is not a notice each time)."""
    made = at_local(TODAY, 10)
    [result] = sync(client, world, visit_item(home, at=made, outcome="moved_out"))
    assert result["status"] == "created", result
    [notice] = moved_out_notices(session, world.users["leader_a"])
    assert notice.data == {"household_id": str(home.id), "visit_id": result["id"]}
    assert "909" in notice.body and "移出" in notice.body
    assert moved_out_notices(session, world.users["worker_a1"]) == []
    sync(client, world, visit_item(home, at=made + timedelta(hours=1), outcome="moved_out"))
    assert len(moved_out_notices(session, world.users["leader_a"])) == 1


def test_no_notice_for_a_household_already_out_of_the_register_or_found_home(
    client, world, home, session
):
    sync(client, world, visit_item(home, at=at_local(TODAY, 9), outcome="met"))
    assert moved_out_notices(session, world.users["leader_a"]) == []
    remove(client, world, home, effective_date=TODAY.isoformat())
    before = at_local(TODAY, 8)  # made before it left, synced late: taken, no notice
    [late] = sync(client, world, visit_item(home, at=before, outcome="moved_out"))
    assert late["status"] == "created", late
    assert moved_out_notices(session, world.users["leader_a"]) == []


def test_a_worker_of_another_grid_is_told_the_removed_household_is_not_found(client, world, home):
    assert remove(client, world, home).status_code == 201
    [result] = sync(client, world, visit_item(home, at=NOW), user="worker_a2")
    assert result["code"] == "household-not-found"


# --- the weekly report: weeks before stay, weeks from the removal count it no more ------------
def visited_twice_and_removed(client, world, home, session) -> dict[str, dict]:
    """Visited in W47 and W48 (its last visit on W48's Monday), removed as of that Monday:
    the report of each week before and after."""
    worker = world.users["worker_a1"]
    make_visit(session, worker, home, at_local(LAST_MONDAY - timedelta(days=7), 10))
    make_visit(session, worker, home, at_local(LAST_MONDAY, 10))
    weeks = [shift_week(WEEK, n) for n in (-2, -1, 0)]
    return {week: coverage(client, world, week) for week in weeks}


def test_the_weeks_before_the_removal_stay_and_those_from_it_count_it_no_more(
    client, world, home, session
):
    before = visited_twice_and_removed(client, world, home, session)
    w47, w48, w49 = before
    assert remove(client, world, home, effective_date=LAST_MONDAY.isoformat()).status_code == 201
    assert coverage(client, world, w47) == before[w47]
    # Removed during W48: it ends that week out of the register, so it is neither due nor
    # visited there (a household counts in the grid it ends the week in, as a move's does).
    assert coverage(client, world, w48) == {
        "households": before[w48]["households"] - 1,
        "visited": before[w48]["visited"] - 1,
    }
    assert coverage(client, world, w49) == {
        "households": before[w49]["households"] - 1,
        "visited": before[w49]["visited"],
    }


def test_the_kept_aggregates_equal_a_rebuild_after_a_removal_and_its_undo(
    client,
    world,
    home,
    session,
    gridwork,  # noqa: F811
):
    visited_twice_and_removed(client, world, home, session)
    assert remove(client, world, home, effective_date=LAST_MONDAY.isoformat()).status_code == 201
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept
    assert undo(client, world, home).status_code == 200
    kept = _aggregates(session)
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept
    result = gridwork("report", "verify")
    assert result.exit_code == 0, result.output


def test_undo_gives_back_every_week_as_it_was(client, world, home, session):
    before = visited_twice_and_removed(client, world, home, session)
    remove(client, world, home, effective_date=LAST_MONDAY.isoformat())
    response = undo(client, world, home)
    assert response.status_code == 200, response.json
    assert response.json["removal"] is None
    assert {week: coverage(client, world, week) for week in before} == before


# --- undo --------------------------------------------------------------------------------------
def test_undo_puts_the_household_back_due_and_visits_refused_meanwhile_are_taken(
    client, world, home
):
    remove(client, world, home, effective_date=(TODAY - timedelta(days=2)).isoformat())
    item = visit_item(home, at=at_local(TODAY - timedelta(days=1), 9))
    [refused] = sync(client, world, item)
    assert refused["code"] == "household-removed"
    assert undo(client, world, home).status_code == 200
    assert home.id in listed(client, world, user="worker_a1")
    assert home.id in plan_ids(client, world)
    [taken] = sync(client, world, item)
    assert taken["status"] == "created", taken
    assert read(client, world, home)["phone"] == PHONE


def test_undo_of_a_household_in_the_register_is_409(client, world, home):
    response = undo(client, world, home)
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"


def test_a_worker_may_not_undo_a_removal(client, world, home):
    remove(client, world, home)
    assert undo(client, world, home, user="worker_a1").status_code == 403
    assert read(client, world, home)["removal"] is not None


def test_undo_is_409_when_its_address_was_registered_again_meanwhile(client, world, home):
    remove(client, world, home)
    again = client.post(
        "/api/v1/households",
        json={
            "building": "9",
            "unit": "1",
            "floor": "1",
            "room": "909",
            "lon": DOOR[0],
            "lat": DOOR[1],
        },
        headers=world.auth("admin_a"),
    )
    assert again.status_code == 201, again.json
    response = undo(client, world, home)
    assert response.status_code == 409
    assert str(again.json["id"]) in response.json["detail"]
    assert read(client, world, home)["removal"] is not None


def test_a_grid_whose_households_all_left_is_retired_and_none_comes_back_into_it(client, world):
    from tests.factories import B1

    grid = f"/api/v1/grids/{world.grids[B1].id}"
    assert client.delete(grid, headers=world.auth("admin_b")).status_code == 409
    for household in world.households[B1]:
        assert (
            remove(client, world, household, user="admin_b", reason="demolished").status_code == 201
        )
    assert client.delete(grid, headers=world.auth("admin_b")).status_code == 204
    response = undo(client, world, world.households[B1][0], user="admin_b")
    assert response.status_code == 409
    assert "was retired" in response.json["detail"]


def test_undo_is_409_when_its_grid_was_redrawn_away_from_its_door_meanwhile(client, world, home):
    """A grid may now be redrawn off a removed household's door: undone, the household came
    back in a grid that no longer holds its door (in no grid's area on the map, yet due)."""
    remove(client, world, home)
    redrawn = client.patch(
        f"/api/v1/grids/{world.grids[A1].id}",
        json={"geometry": box(116.400, 39.920, 116.405, 39.923)},
        headers=world.auth("admin_a"),
    )
    assert redrawn.status_code == 200, redrawn.json
    response = undo(client, world, home)
    assert response.status_code == 409
    assert "no longer holds its door" in response.json["detail"]
    assert read(client, world, home)["removal"] is not None


# --- the register's next household at the address ---------------------------------------------
def register_file(*rows: tuple) -> bytes:
    lines = ["building,unit,floor,room,lon,lat,phone"]
    lines += [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def import_file(client, world, data: bytes, mode: str = "create"):
    return client.post(
        f"/api/v1/households/import?mode={mode}",
        data={"file": (io.BytesIO(data), "register.csv")},
        headers=world.auth("admin_a"),
        content_type="multipart/form-data",
    )


def test_an_import_row_of_a_removed_households_address_registers_a_new_household(
    client, world, home, session
):
    remove(client, world, home)
    response = import_file(
        client, world, register_file(("9", "1", "1", "909", *DOOR, "13900002222"))
    )
    assert response.status_code == 201, response.json
    assert response.json["created"] == 1
    assert response.json.get("updated", 0) == 0
    session.expire_all()
    assert session.get(Household, home.id).phone == PHONE  # the household that left: as it was
    new = session.scalar(
        select(Household).where(Household.room == "909", Household.removed_at.is_(None))
    )
    assert new.id != home.id
    assert new.phone == "13900002222"


def test_an_update_import_row_of_a_removed_household_is_refused_naming_it(
    client, world, home, session
):
    """An old export imported again in update mode: its row of the family that left would
    have registered them again as a new household."""
    remove(client, world, home)
    data = register_file(
        ("1", "1", "1", "101", *centre(A1), ""), ("9", "1", "1", "909", *DOOR, PHONE)
    )
    response = import_file(client, world, data, mode="update")
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (3, "building/unit/floor/room")
    assert f"household {home.id}, which left the register" in error["detail"]
    assert session.scalar(text("SELECT count(*) FROM households WHERE room = '909'")) == 1


def test_an_import_row_of_a_household_in_the_register_is_still_a_repeat(client, world, home):
    response = import_file(client, world, register_file(("9", "1", "1", "909", *DOOR, "")))
    assert response.status_code == 422


# --- retention -----------------------------------------------------------------------------------
def purge(session, now):
    return retention.purge(session, None, POLICY, now)


def test_retention_erases_a_removed_households_phone_and_tags_after_180_days(
    client, world, home, session
):
    make_visit(session, world.users["worker_a1"], home, at_local(TODAY - timedelta(days=1), 10))
    remove(client, world, home, note="搬去儿子家")
    weeks = {w: coverage(client, world, w) for w in (shift_week(WEEK, -1), WEEK)}
    assert purge(session, NOW + timedelta(days=179)).households == 0
    session.expire_all()
    assert session.get(Household, home.id).phone == PHONE
    kept = _aggregates(session)
    assert purge(session, NOW + timedelta(days=181)).households == 1
    session.expire_all()
    erased = session.get(Household, home.id)
    assert (erased.phone, erased.tags, erased.removal_note) == (None, [], None)
    assert erased.erased_at == NOW + timedelta(days=181)
    # The address, point and visits stay, and so do the reports.
    assert (erased.building, erased.room) == ("9", "909")
    assert (
        session.scalar(text("SELECT count(*) FROM visits WHERE household_id = :h"), {"h": home.id})
        == 1
    )
    assert _aggregates(session) == kept
    assert {w: coverage(client, world, w) for w in weeks} == weeks
    session.execute(text("SELECT gw_report_rebuild()"))
    assert _aggregates(session) == kept
    # Nothing erased twice.
    assert purge(session, NOW + timedelta(days=400)).households == 0


def removed_and_erased(client, world, home, session) -> None:
    """`home` removed today and erased by retention two days later (kept one day)."""
    remove(client, world, home)
    retention.purge(
        session,
        None,
        replace(POLICY, removed_households=timedelta(days=1)),
        NOW + timedelta(days=2),
    )


def test_erased_care_tags_are_not_served_again_by_a_past_weeks_plan(client, world, home, session):
    """The history keeps the tags a household had each week, for the weeks' figures; a past
    week's plan read them there and listed an erased household as living alone again, beside
    its address and point, long after retention had erased them."""
    removed_and_erased(client, world, home, session)
    response = client.get(
        "/api/v1/visits/plan",
        query_string={"week": shift_week(WEEK, -1)},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 200, response.json
    (stop,) = [s for s in response.json["households"] if s["household_id"] == home.id]
    assert stop["tags"] == []
    assert stop["must_visit"] is False


def test_a_household_in_the_register_keeps_its_phone_however_old(client, world, home, session):
    assert purge(session, NOW + timedelta(days=1000)).households == 0
    session.expire_all()
    assert session.get(Household, home.id).phone == PHONE


def test_an_erased_household_can_no_longer_be_brought_back(client, world, home, session):
    removed_and_erased(client, world, home, session)
    body = read(client, world, home)
    assert body["removal"]["erased_at"] is not None
    assert body["phone"] is None and body["tags"] == []
    response = undo(client, world, home)
    assert response.status_code == 409
    assert "register it again" in response.json["detail"]
    assert read(client, world, home)["removal"] is not None


# --- the migration -----------------------------------------------------------------------------
def test_migration_0065_seals_the_removal_notes_stored_in_clear(own_database_url):
    """Removal notes written before 0065 were stored in clear text: the migration seals them
    under the data key, and records the key as sealing data here."""
    from alembic import command
    from sqlalchemy import create_engine

    from api import crypto
    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, _ = migration_grid(own_database_url)
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    try:
        command.downgrade(config, "0063")
        with engine.begin() as conn:
            household_id = conn.scalar(
                text(
                    "INSERT INTO households (grid_id, building, location) VALUES"
                    " (:g, '1', ST_GeomFromText('POINT(116.505 39.705)', 4326)) RETURNING id"
                ),
                {"g": grid_id},
            )
            conn.execute(
                text(
                    "UPDATE households SET removed_at = now(), removal_date = current_date,"
                    " removal_reason = 'moved_out', removal_note = '老人住进养老院' WHERE id = :i"
                ),
                {"i": household_id},
            )
        command.upgrade(config, "head")
        with engine.begin() as conn:
            stored = conn.scalar(
                text("SELECT removal_note FROM households WHERE id = :i"), {"i": household_id}
            )
            kids = set(conn.scalars(text("SELECT kid FROM data_keys")))
        assert stored.startswith(f"v1:{crypto.current_key_id()}:")
        assert crypto.decrypt(stored) == "老人住进养老院"
        assert crypto.current_key_id() in kids
    finally:
        engine.dispose()
