"""Residents' sensitive data: sealed at rest, masked per role, every read audited, the audit log
readable by admins and kept six months."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from api import crypto
from api.cli import main
from api.models import AuditEntry, LoginAttempt
from api.services import audit
from api.services.encryption import seal_all
from tests.api.test_matrix import targets  # noqa: F401  (fixture)
from tests.api.test_tiles import url as tile_url
from tests.factories import A1, A2, B1, centre, image_bytes, make_task_at, make_visit

NOW = datetime.now(UTC)  # each test's own: set again as it starts (`_now`)


@pytest.fixture(autouse=True)
def _now(monkeypatch):
    """Now as the test starts, not as the module was collected (half an hour before, maybe, on
    a loaded CI machine: in another week by then)."""
    monkeypatch.setitem(globals(), "NOW", datetime.now(UTC))


@pytest.fixture()
def visit(session, world):
    return make_visit(
        session,
        world.users["worker_a1"],
        world.households[A1][0],
        NOW - timedelta(hours=1),
        notes="腿脚不便，需要轮椅",
        observations={"disability": "wheelchair"},
        follow_up=True,
        follow_up_note="申请无障碍改造",
    )


@pytest.fixture()
def task(session, world):
    return make_task_at(
        session,
        world.households[A1][0],
        NOW + timedelta(days=1),
        description="楼上漏水，老人独居",
        complainant={"name": "王秀英", "phone": "13912345678"},
    )


def last_entry(session) -> AuditEntry:
    return session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()


def raw(session, sql: str, **params):
    return session.execute(text(sql), params).scalar()


# --- encrypted at rest ----------------------------------------------------------------------
def test_visit_notes_observations_and_follow_up_notes_are_stored_encrypted(session, visit):
    row = session.execute(
        text("SELECT notes, observations, follow_up_note FROM visits WHERE id = :i"),
        {"i": visit.id},
    ).one()
    assert row.notes.startswith("v1:") and "轮椅" not in row.notes
    assert isinstance(row.observations, str) and row.observations.startswith("v1:")
    assert row.follow_up_note.startswith("v1:")


def test_sealed_visit_fields_read_back_in_clear(client, world, visit):
    body = client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("worker_a1")).json
    assert body["notes"] == "腿脚不便，需要轮椅"
    assert body["observations"] == {"disability": "wheelchair"}
    assert body["follow_up_note"] == "申请无障碍改造"


def test_task_description_complainant_and_event_notes_are_stored_encrypted(session, task):
    description = raw(session, "SELECT description FROM tasks WHERE id = :i", i=task.id)
    complainant = raw(session, "SELECT complainant FROM tasks WHERE id = :i", i=task.id)
    assert description.startswith("v1:") and "漏水" not in description
    assert complainant.startswith("v1:") and "13912345678" not in complainant


def test_task_event_notes_are_stored_encrypted(client, session, world):
    lon, lat = centre(A1)
    created = client.post(
        "/api/v1/tasks",
        json={"source": "window", "title": "证明", "description": "身份证号 110101...",
              "location": {"lon": lon, "lat": lat}},
        headers=world.auth("worker_a1"),
    ).json  # fmt: skip
    notes = session.execute(
        text("SELECT note FROM task_events WHERE task_id = :i AND note <> ''"), {"i": created["id"]}
    ).scalars()
    assert all(n.startswith("v1:") for n in notes)


def test_empty_notes_stay_empty_so_most_visits_cost_nothing(session, world):
    plain = make_visit(session, world.users["worker_a1"], world.households[A1][1], NOW)
    assert raw(session, "SELECT notes FROM visits WHERE id = :i", i=plain.id) == ""
    assert raw(session, "SELECT observations FROM visits WHERE id = :i", i=plain.id) == {}


def test_encrypt_command_seals_plaintext_left_by_older_versions(app, session, visit, task):
    session.execute(text("UPDATE visits SET notes = 'plain words' WHERE id = :i"), {"i": visit.id})
    session.execute(
        text('UPDATE tasks SET complainant = \'{"name": "李"}\' WHERE id = :i'), {"i": task.id}
    )
    with app.app_context():
        result = CliRunner().invoke(main, ["security", "encrypt"], catch_exceptions=False)
    assert "visits.notes: 1" in result.output and "tasks.complainant: 1" in result.output
    assert raw(session, "SELECT notes FROM visits WHERE id = :i", i=visit.id).startswith("v1:")
    session.expire_all()
    assert session.get(type(visit), visit.id).notes == "plain words"


def test_rotating_the_data_key_reencrypts_under_the_new_key(app, session, visit):
    old_key = app.config["DATA_KEY"]
    new_key = crypto.new_key()
    try:
        crypto.configure(new_key, old_key)
        counts = seal_all(session.connection())
        assert counts["visits.notes"] == 1 and counts["households.phone"] == 0
        crypto.configure(new_key)  # the old key is gone: everything still reads
        session.expire_all()
        assert session.get(type(visit), visit.id).notes == "腿脚不便，需要轮椅"
        assert seal_all(session.connection())["visits.notes"] == 0
    finally:
        crypto.configure(old_key)


def test_a_value_under_an_unknown_key_names_the_setting(app, session, visit):
    try:
        crypto.configure(crypto.new_key())
        session.expire_all()
        with pytest.raises(crypto.DataKeyError, match="GRIDWORK_OLD_DATA_KEYS"):
            session.get(type(visit), visit.id).notes  # noqa: B018
    finally:
        crypto.configure(app.config["DATA_KEY"])


def test_values_written_before_key_ids_still_decrypt(app):
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = base64.urlsafe_b64decode(app.config["DATA_KEY"] + "=" * 2)
    nonce = os.urandom(12)
    legacy = (
        "v1:"
        + base64.urlsafe_b64encode(
            nonce + AESGCM(key).encrypt(nonce, b"13800001111", None)
        ).decode()
    )
    assert crypto.decrypt(legacy) == "13800001111"


# --- masked per role ------------------------------------------------------------------------
def test_district_viewers_get_no_visit_notes(client, world, visit):
    body = client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("viewer_110101")).json
    assert body["notes"] is None and body["observations"] is None
    assert body["follow_up_note"] is None
    assert body["outcome"] == "met"


def test_district_viewers_do_not_read_a_follow_up_note_through_its_task(client, world):
    """The follow-up task of a visit carries its note as the description: withheld from the
    roles that do not read visit notes, and not repeated in the task's first event."""
    from tests.factories import visit_item

    item = visit_item(world.households[A1][0], follow_up=True, follow_up_note="需要轮椅，独居")
    stored = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert stored.json["results"][0]["status"] == "created"
    viewer, leader = world.auth("viewer_110101"), world.auth("leader_a")
    tasks = client.get("/api/v1/tasks?source=visit", headers=viewer).json
    assert len(tasks) == 1 and tasks[0]["description"] is None
    detail = client.get(f"/api/v1/tasks/{tasks[0]['id']}", headers=viewer).json
    assert detail["description"] is None
    assert "需要轮椅" not in str(detail)
    shown = client.get(f"/api/v1/tasks/{tasks[0]['id']}", headers=leader).json
    assert shown["description"] == "需要轮椅，独居"


def test_district_viewers_see_worker_positions_to_about_100_m(client, world, visit):
    body = client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("viewer_110101")).json
    lon, lat = body["location"]["lon"], body["location"]["lat"]
    assert (round(lon, 3), round(lat, 3)) == (lon, lat)
    assert body["location"]["raw_lon"] is None and body["location"]["accuracy_m"] is None


def test_district_viewers_get_no_evidence_numbers_that_place_the_worker(client, world):
    """Household points are shown in full: a visit's distance to its household and to the
    previous visit (to 0.1 m) would trilaterate where the worker stood. Viewers get the
    grade, the reasons and the times; leaders get every number."""
    from tests.factories import visit_item

    first, second = world.households[A1][0], world.households[A1][1]
    start = NOW - timedelta(hours=1)
    items = [
        visit_item(first, at=start),
        visit_item(second, at=start + timedelta(minutes=10), lon=116.40312, lat=39.92338),
    ]
    stored = client.post(
        "/api/v1/visits/batch", json={"visits": items}, headers=world.auth("worker_a1")
    )
    assert [r["status"] for r in stored.json["results"]] == ["created", "created"]
    placing = ("distance_", "speed_", "accuracy_m")
    viewer, leader = world.auth("viewer_110101"), world.auth("leader_a")
    seen = [
        client.get(f"/api/v1/visits/{items[1]['id']}", headers=viewer).json,
        *client.get("/api/v1/visits", headers=viewer).json,
        *client.get(f"/api/v1/households/{second.id}/visits", headers=viewer).json,
    ]
    assert len(seen) == 4
    for body in seen:
        details = body["evidence"]["details"]
        assert not [k for k in details if k.startswith(placing)], details
        assert body["evidence"]["grade"] and "delay_s" in details
    full = client.get(f"/api/v1/visits/{items[1]['id']}", headers=leader).json["evidence"]
    assert full["details"]["distance_to_household_m"] > 0
    assert {"distance_to_previous_m", "speed_to_previous_mps", "accuracy_m"} <= set(full["details"])


def test_leaders_and_admins_see_visit_notes(client, world, visit):
    for user in ("leader_a", "admin_a"):
        body = client.get(f"/api/v1/visits/{visit.id}", headers=world.auth(user)).json
        assert body["notes"] == "腿脚不便，需要轮椅"


def test_district_viewers_see_complainants_masked(client, world, task):
    body = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("viewer_110101")).json
    assert body["complainant"] == {"name": "王**", "phone": "139****5678"}


def test_workers_see_the_complainant_to_call_back(client, world, task):
    body = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("worker_a1")).json
    assert body["complainant"] == {"name": "王秀英", "phone": "13912345678"}


def test_household_lists_mask_phones_for_district_viewers(client, session, world):
    world.households[A1][0].phone = "13812345678"
    session.flush()
    body = client.get(f"/api/v1/households?grid={A1}", headers=world.auth("viewer_110101")).json
    assert "13812345678" not in str(body) and "138****5678" in str(body)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),  # the familiar format of a mobile number
        ("65123456", "******56"),  # a Beijing landline: 7 of 8 digits were shown
        ("6512345", "*****45"),  # 7 digits: every digit was shown ("651*2345")
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_a_masked_phone_shows_3_and_4_of_a_mobile_and_a_third_of_a_shorter_number(phone, masked):
    assert crypto.mask_phone(phone) == masked
    if phone and len(phone) < 11:
        shown = sum(c != "*" for c in masked)
        assert shown <= len(phone) // 3 < len(phone) / 2


def test_district_viewers_see_a_landline_mostly_masked(client, session, world):
    world.households[A1][0].phone = "65123456"
    session.flush()
    body = client.get(f"/api/v1/households?grid={A1}", headers=world.auth("viewer_110101")).json
    assert "65123456" not in str(body) and "651*3456" not in str(body)
    assert "******56" in str(body)


def test_district_viewers_see_a_complainants_landline_mostly_masked(client, session, world):
    task = make_task_at(
        session,
        world.households[A1][0],
        NOW + timedelta(days=1),
        complainant={"name": "王秀英", "phone": "6512345"},
    )
    body = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("viewer_110101")).json
    assert body["complainant"] == {"name": "王**", "phone": "*****45"}


# --- every read audited ---------------------------------------------------------------------
def test_reading_a_visit_is_audited_with_its_uuid(client, session, world, visit):
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("leader_a"))
    entry = last_entry(session)
    assert (entry.user_id, entry.action, entry.resource) == (
        world.users["leader_a"].id,
        "read",
        "visit",
    )
    assert entry.resource_uuids == [visit.id] and "notes" in entry.fields


def test_a_viewers_audit_entry_lists_only_what_was_disclosed(client, session, world, visit):
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("viewer_110101"))
    assert "notes" not in last_entry(session).fields


def test_a_households_visit_history_is_audited(client, session, world, visit):
    household = world.households[A1][0]
    client.get(f"/api/v1/households/{household.id}/visits", headers=world.auth("worker_a1"))
    assert last_entry(session).resource_uuids == [visit.id]


def test_listing_visits_is_audited(client, session, world, visit):
    client.get("/api/v1/visits", headers=world.auth("admin_a"))
    assert last_entry(session).resource_uuids == [visit.id]


def test_task_details_and_lists_are_audited(client, session, world, task):
    client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("worker_a1"))
    entry = last_entry(session)
    assert (entry.resource, entry.resource_ids) == ("task", [task.id])
    assert "complainant" in entry.fields
    client.get("/api/v1/tasks", headers=world.auth("admin_a"))
    assert task.id in last_entry(session).resource_ids


@pytest.mark.parametrize(
    ("source", "username", "disclosed"),
    [
        ("visit", "viewer_110101", False),  # a visit's follow-up note, withheld from viewers
        ("visit", "leader_a", True),
        ("hotline", "viewer_110101", True),  # the substance of a complaint, shown to viewers
    ],
)
def test_a_tasks_audit_entry_lists_its_description_only_when_it_was_shown(
    client, session, world, source, username, disclosed
):
    task = make_task_at(
        session,
        world.households[A1][0],
        NOW + timedelta(days=1),
        source=source,
        description="腿脚不便，申请无障碍改造",
    )
    for path in (f"/api/v1/tasks/{task.id}", "/api/v1/tasks"):
        body = client.get(path, headers=world.auth(username)).json
        shown = body if isinstance(body, dict) else next(t for t in body if t["id"] == task.id)
        assert (shown["description"] is not None) is disclosed
        assert ("description" in last_entry(session).fields) is disclosed, path


def test_the_visit_plan_audits_the_households_it_lists(client, session, world):
    body = client.get("/api/v1/visits/plan", headers=world.auth("worker_a1")).json
    entry = last_entry(session)
    assert entry.resource == "household"
    assert sorted(entry.resource_ids) == sorted(s["household_id"] for s in body["households"])


def test_a_households_tile_audits_the_households_in_it(client, session, world):
    response = client.get(tile_url("households", *centre(A1)), headers=world.auth("worker_a1"))
    assert response.status_code == 200
    entry = last_entry(session)
    assert entry.resource == "household"
    assert {h.id for h in world.households[A1]} <= set(entry.resource_ids)
    assert not {h.id for h in world.households[A2]} & set(entry.resource_ids)


def test_a_visits_tile_audits_the_visits_in_it(client, session, world, visit):
    response = client.get(
        tile_url("visits", *centre(A1), week=visit.week), headers=world.auth("admin_a")
    )
    assert response.status_code == 200
    assert last_entry(session).resource_uuids == [visit.id]


def test_a_grids_tile_is_aggregates_and_not_audited(client, session, world):
    before = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    client.get(tile_url("grids", *centre(A1)), headers=world.auth("admin_a"))
    after = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    assert before == after


def test_a_visit_photo_read_is_audited(client, session, world, visit, tmp_path, app):
    app.config["PHOTO_DIR"] = str(tmp_path)
    png = image_bytes("PNG")
    import io

    uploaded = client.post(
        f"/api/v1/visits/{visit.id}/photos",
        data={"file": (io.BytesIO(png), "p.png", "image/png")},
        headers=world.auth("worker_a1"),
    )
    assert uploaded.status_code == 201, uploaded.json
    client.get(uploaded.json["url"], headers=world.auth("leader_a"))
    entry = last_entry(session)
    assert (entry.resource, entry.resource_ids, entry.resource_uuids) == (
        "visit_photo",
        [uploaded.json["id"]],
        [visit.id],
    )


# --- the audit log API ----------------------------------------------------------------------
def test_a_community_admin_reads_the_audit_entries_of_their_community(client, world, visit):
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("worker_a1"))
    client.get("/api/v1/households", headers=world.auth("worker_b1"))
    response = client.get("/api/v1/audit", headers=world.auth("admin_a"))
    assert response.status_code == 200
    users = {e["username"] for e in response.json}
    assert "worker_a1" in users and "worker_b1" not in users
    entry = next(e for e in response.json if e["resource"] == "visit")
    assert entry["resource_uuids"] == [str(visit.id)] and entry["at"]


def test_a_district_viewer_reads_the_whole_districts_entries(client, world, visit):
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("worker_a1"))
    client.get("/api/v1/households", headers=world.auth("worker_b1"))
    body = client.get("/api/v1/audit", headers=world.auth("viewer_110101")).json
    assert {"worker_a1", "worker_b1"} <= {e["username"] for e in body}
    other = client.get("/api/v1/audit", headers=world.auth("viewer_110102")).json
    assert not {"worker_a1", "worker_b1"} & {e["username"] for e in other}


def test_workers_and_leaders_may_not_read_the_audit_log(client, world):
    for user in ("worker_a1", "leader_a"):
        response = client.get("/api/v1/audit", headers=world.auth(user))
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"


def test_the_audit_log_answers_who_read_a_household(client, world):
    household = world.households[A1][0]
    client.get(f"/api/v1/households/{household.id}", headers=world.auth("leader_a"))
    client.get(f"/api/v1/households/{world.households[A1][1].id}", headers=world.auth("worker_a1"))
    body = client.get(
        f"/api/v1/audit?record={household.id}&resource=household", headers=world.auth("admin_a")
    ).json
    assert [e["username"] for e in body] == ["leader_a"]


def test_the_audit_log_answers_who_read_a_household_whoever_read_it(client, world):
    """A district viewer (no community) read one of community A's households: A's admin, asking
    about that household, sees the read. Entries were shown by the reader's community only,
    so reads by the district's viewers or a reliever from another community were invisible."""
    household = world.households[A1][0]
    client.get(f"/api/v1/households/{household.id}", headers=world.auth("viewer_110101"))
    query = f"/api/v1/audit?record={household.id}&resource=household"
    body = client.get(query, headers=world.auth("admin_a")).json
    assert [e["username"] for e in body] == ["viewer_110101"]
    # Another community's admin asking about it sees only their own community's readers.
    assert client.get(query, headers=world.auth("admin_b")).json == []


def test_the_audit_log_filters_by_user_action_and_period(client, session, world, visit):
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("worker_a1"))
    worker = world.users["worker_a1"].id
    body = client.get(
        f"/api/v1/audit?user={worker}&action=read&resource=visit&record_uuid={visit.id}",
        headers=world.auth("admin_a"),
    ).json
    assert len(body) == 1 and body[0]["user_id"] == worker
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = client.get(
        "/api/v1/audit", query_string={"since": tomorrow}, headers=world.auth("admin_a")
    ).json
    assert later == []


def test_the_audit_log_is_paginated(client, world):
    for _ in range(3):
        client.get(f"/api/v1/households?grid={A1}", headers=world.auth("worker_a1"))
    response = client.get("/api/v1/audit?page_size=2", headers=world.auth("admin_a"))
    assert len(response.json) == 2
    assert json.loads(response.headers["X-Pagination"])["total"] == 3


def test_paging_on_from_the_last_entry_read_neither_repeats_nor_skips_as_entries_arrive(
    client, world
):
    """Newest first, entries written while the office pages through the log push every page
    down: page 2 began with the last entry page 1 showed. `before` (the last entry's id) lists
    what comes after it, whatever arrived since."""
    for _ in range(3):
        client.get(f"/api/v1/households?grid={A1}", headers=world.auth("worker_a1"))
    admin = world.auth("admin_a")
    first = client.get("/api/v1/audit?page_size=2", headers=admin).json
    client.get(f"/api/v1/households?grid={A1}", headers=world.auth("worker_a1"))  # arrives
    by_number = client.get("/api/v1/audit?page_size=2&page=2", headers=admin).json
    assert by_number[0]["id"] == first[-1]["id"]  # what a page number gives: a repeat
    response = client.get(f"/api/v1/audit?page_size=2&before={first[-1]['id']}", headers=admin)
    assert response.status_code == 200, response.json
    rest = response.json
    everything = client.get("/api/v1/audit?page_size=10", headers=admin).json
    assert [e["id"] for e in first + rest] == [e["id"] for e in everything[1:]]
    gone = client.get("/api/v1/audit?before=999999999", headers=admin)
    assert (gone.status_code, gone.json.get("field")) == (422, "before")


def test_a_bad_audit_filter_is_422(client, world):
    response = client.get("/api/v1/audit?record_uuid=nope", headers=world.auth("admin_a"))
    assert response.status_code == 422


def test_the_audit_log_lists_every_access_to_the_communitys_records_whoever_read_them(
    client, world
):
    """`view=records`: entries about the caller's residents' records, whoever the reader (a
    district viewer here). The default view lists entries by the caller's users only, so a
    read by anyone else was invisible unless the admin already knew which record to ask about."""
    ours, theirs = world.households[A1][0], world.households[B1][0]
    for household in (ours, theirs):
        client.get(f"/api/v1/households/{household.id}", headers=world.auth("viewer_110101"))

    body = client.get("/api/v1/audit?view=records", headers=world.auth("admin_a")).json

    assert [(e["username"], e["resource_ids"]) for e in body] == [("viewer_110101", [ours.id])]
    readers = client.get("/api/v1/audit", headers=world.auth("admin_a")).json
    assert "viewer_110101" not in {e["username"] for e in readers}  # the default is unchanged
    other = client.get("/api/v1/audit?view=records", headers=world.auth("admin_b")).json
    assert [e["resource_ids"] for e in other] == [[theirs.id]]


@pytest.mark.parametrize(
    "query", ["view=records", "household={ours}", "resource=household&record={ours}"]
)
def test_an_entry_about_several_communities_names_only_the_callers_records(
    client, session, world, query
):
    """A district viewer lists the district's households: one entry names A's and B's. Shown
    to A's admin because it is about A's records, it names A's only: B's household ids are
    another community's, which A's admin is answered 404 for everywhere else."""
    ours, theirs = world.households[A1], world.households[B1]
    visit = make_visit(session, world.users["worker_a1"], ours[0], datetime.now(UTC))
    other = make_visit(session, world.users["worker_b1"], theirs[0], datetime.now(UTC))
    session.commit()
    assert client.get("/api/v1/households", headers=world.auth("viewer_110101")).json
    audit.record(
        session,
        user_id=world.users["viewer_110101"].id,
        action="read",
        resource="visit",
        resource_ids=[visit.id, other.id],
        fields=["notes"],
    )
    session.commit()
    body = client.get(
        f"/api/v1/audit?{query.format(ours=ours[0].id)}", headers=world.auth("admin_a")
    ).json
    named = {e["resource"]: (e["resource_ids"], e["resource_uuids"]) for e in body}
    community_a = world.households[A1] + world.households[A2]
    assert named["household"] == (sorted(h.id for h in community_a), [])
    if "record=" not in query:
        assert named["visit"] == ([], [str(visit.id)])
    # The district's viewer, whose reach is both communities, reads the entry whole.
    whole = client.get("/api/v1/audit?view=records", headers=world.auth("viewer_110101")).json
    households = next(e for e in whole if e["resource"] == "household")["resource_ids"]
    assert set(households) >= {h.id for h in ours + theirs}


def test_the_records_view_lists_the_consoles_entries_about_the_communitys_records(
    client, session, world, visit
):
    """An import or a photo scrub at the console writes entries with no user: they are about
    the community's records, so its admin sees them."""
    audit.record(
        session,
        user_id=None,
        action="update",
        resource="visit_photo",
        resource_ids=[7, visit.id],
        fields=["photo"],
        path="gridwork photos scrub",
    )
    session.commit()
    body = client.get("/api/v1/audit?view=records", headers=world.auth("admin_a")).json
    assert [(e["user_id"], e["username"], e["path"]) for e in body] == [
        (None, None, "gridwork photos scrub")
    ]


def test_asked_about_one_household_the_audit_log_lists_the_consoles_entries_too(
    client, session, world
):
    """A register import at the console created it: "who touched this household?" names the
    import (no user; its path names the file). Entries with no user were left out of every
    view (an inner join on the users)."""
    household = world.households[A1][0]
    audit.record(
        session,
        user_id=None,
        action="create",
        resource="household",
        resource_ids=[household.id],
        fields=audit.HOUSEHOLD_FIELDS,
        path="gridwork import households register.csv",
    )
    session.commit()
    for query in (f"record={household.id}&resource=household", f"household={household.id}"):
        body = client.get(f"/api/v1/audit?{query}", headers=world.auth("admin_a")).json
        assert [(e["action"], e["path"]) for e in body] == [
            ("create", "gridwork import households register.csv")
        ]


def test_the_records_view_takes_the_other_filters(client, world, visit):
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("viewer_110101"))
    client.get(f"/api/v1/households/{visit.household_id}", headers=world.auth("viewer_110101"))
    viewer = world.users["viewer_110101"].id

    def listed(**params):
        response = client.get(
            "/api/v1/audit",
            query_string={"view": "records", **params},
            headers=world.auth("admin_a"),
        )
        assert response.status_code == 200, response.json
        return [e["resource"] for e in response.json]

    assert listed(user=viewer) == ["household", "visit"]
    assert listed(resource="visit") == ["visit"]
    assert listed(action="update") == []
    assert listed(since=(NOW + timedelta(days=1)).isoformat()) == []
    assert listed(until=(NOW - timedelta(days=1)).isoformat()) == []


def _reads_of_both_communities(session, world, count: int) -> list[int]:
    """`count` reads by B's worker, a minute apart, every other one of a household of A's
    (whose records view lists it) and the others of B's; the ids of A's, newest first."""
    ours, theirs = world.households[A1][0], world.households[B1][0]
    about_ours = []
    for minute in range(count):
        household = ours if minute % 2 else theirs
        entry = audit.record(
            session,
            user_id=world.users["worker_b1"].id,
            action="read",
            resource="household",
            resource_ids=[household.id],
            fields=["address"],
            at=NOW - timedelta(minutes=count - minute),
        )
        if household is ours:
            about_ours.append(entry.id)
    session.commit()
    return about_ours[::-1]


def test_the_records_view_counts_no_further_than_the_next_pages_first_entry(client, session, world):
    """The records view finds its page by walking the log newest first, never matching the
    whole log: its X-Pagination `total` counts the entries up to the next page's first (one
    more than the page says there is a next page), exact only on the last page. Counting every
    entry about the community's records took seconds on a long log."""
    about_ours = _reads_of_both_communities(session, world, 10)
    admin = world.auth("admin_a")

    def page(**params):
        response = client.get(
            "/api/v1/audit",
            query_string={"view": "records", "page_size": 2, **params},
            headers=admin,
        )
        assert response.status_code == 200, response.json
        return [e["id"] for e in response.json], json.loads(response.headers["X-Pagination"])

    first, pagination = page()
    assert first == about_ours[:2]
    assert (pagination["total"], pagination["next_page"]) == (3, 2)
    last, pagination = page(before=about_ours[2])
    assert last == about_ours[3:]
    assert (pagination["total"], pagination.get("next_page")) == (2, None)
    readers = client.get("/api/v1/audit?page_size=2", headers=world.auth("admin_b"))
    assert json.loads(readers.headers["X-Pagination"])["total"] == 10  # counted whole


@pytest.mark.parametrize("walk", [1, 2, 3, 1000])
def test_the_records_view_lists_the_same_entries_wherever_its_walk_stops(
    client, session, world, monkeypatch, walk
):
    """The walk tests at most `RECORDS_WALK` of the newest entries one by one and matches the
    older ones as a set: pages, numbered or paged on with `before`, list the same entries
    either way."""
    about_ours = _reads_of_both_communities(session, world, 9)
    monkeypatch.setattr(audit, "RECORDS_WALK", walk)
    admin = world.auth("admin_a")

    def ids(**params):
        query = {"view": "records", **params}
        response = client.get("/api/v1/audit", query_string=query, headers=admin)
        assert response.status_code == 200, response.json
        return [e["id"] for e in response.json]

    assert ids() == about_ours
    assert ids(page_size=2, page=2) == about_ours[2:4]
    assert ids(page_size=3, before=about_ours[0]) == about_ours[1:4]
    assert ids(page_size=3, before=about_ours[0], page=2) == about_ours[4:]


def test_the_audit_log_filters_by_the_household_whose_data_was_read(
    client, session, world, visit, task
):
    """`household=ID`: the entries about the household's record, its visits (and their
    photos) and its tasks, whoever read them; not those about its neighbours."""
    household = world.households[A1][0]
    neighbour = world.households[A1][1]
    client.get(f"/api/v1/households/{household.id}", headers=world.auth("viewer_110101"))
    client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("leader_a"))
    client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("admin_a"))
    client.get(f"/api/v1/households/{neighbour.id}", headers=world.auth("worker_a1"))

    body = client.get(
        "/api/v1/audit", query_string={"household": household.id}, headers=world.auth("admin_a")
    ).json

    assert [(e["username"], e["resource"]) for e in body] == [
        ("admin_a", "task"),
        ("leader_a", "visit"),
        ("viewer_110101", "household"),
    ]
    # A household list that showed it counts too; so does the action filter.
    client.get(f"/api/v1/households?grid={A1}", headers=world.auth("worker_a1"))
    listed = client.get(
        "/api/v1/audit",
        query_string={
            "household": household.id,
            "action": "read",
            "user": world.users["worker_a1"].id,
        },
        headers=world.auth("admin_a"),
    ).json
    assert [e["path"] for e in listed] == ["/api/v1/households"]


def test_the_audit_log_stores_the_path_without_its_query_string(client, session, world):
    """A query string can carry what the reader searched for: a resident's position here, a
    name or a phone elsewhere. The entry already names the records read; the search itself
    would be one more copy of residents' data, kept for at least six months."""
    lon, lat = centre(A1)
    response = client.get(
        "/api/v1/households",
        query_string={"lon": lon, "lat": lat, "within_m": 50},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 200
    entry = last_entry(session)
    assert (entry.resource, entry.path) == ("household", "/api/v1/households")
    assert raw(session, "SELECT count(*) FROM audit_log WHERE path LIKE '%lat%'") == 0


def test_the_household_filter_is_paginated(client, world):
    household = world.households[A1][0]
    for _ in range(3):
        client.get(f"/api/v1/households/{household.id}", headers=world.auth("worker_a1"))
    client.get(f"/api/v1/households/{world.households[A1][1].id}", headers=world.auth("worker_a1"))
    response = client.get(
        "/api/v1/audit",
        query_string={"household": household.id, "page_size": 2, "page": 2},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 200
    assert len(response.json) == 1
    assert json.loads(response.headers["X-Pagination"])["total"] == 3


def test_a_household_of_another_community_is_not_found_in_the_audit_log(client, world):
    theirs = world.households[B1][0]
    client.get(f"/api/v1/households/{theirs.id}", headers=world.auth("viewer_110101"))
    response = client.get(
        "/api/v1/audit", query_string={"household": theirs.id}, headers=world.auth("admin_a")
    )
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert str(theirs.id) in response.json["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"view": "everything"}, "view"),
        ({"household": "0"}, "household"),
        ({"household": "abc"}, "household"),
        ({"household": str(2**31)}, "household"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until"),
    ],
)
def test_a_bad_subject_filter_is_a_422_problem_naming_it(client, world, params, field):
    response = client.get("/api/v1/audit", query_string=params, headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in json.dumps(response.json)


# --- retention ------------------------------------------------------------------------------
def _aged_entry(session, user, days: int) -> AuditEntry:
    return audit.record(
        session,
        user_id=user.id,
        action="read",
        resource="household",
        resource_ids=[1],
        fields=["phone"],
        at=datetime.now(UTC) - timedelta(days=days),
    )


def test_purge_audit_refuses_to_delete_entries_younger_than_184_days(app, session, world):
    _aged_entry(session, world.users["worker_a1"], 10)
    with app.app_context():
        result = CliRunner().invoke(main, ["purge-audit", "--older-than-days", "183"])
    assert result.exit_code != 0 and "184" in result.output
    assert session.scalar(select(AuditEntry.id)) is not None


def test_an_audit_entry_is_kept_until_six_calendar_months_have_passed(session, world):
    """Six months run up to 184 days (1 July to 1 January, 1 August to 1 February): with a
    floor of 183 days an entry written on 1 July was purged on 31 December, and a sign-in
    attempt of 1 July deleted by the push worker's tick, before the six months were up."""
    written = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    now = datetime(2026, 12, 31, 21, 0, tzinfo=UTC)  # 183.5 days on: six months are not up
    entry = audit.record(
        session,
        user_id=world.users["worker_a1"].id,
        action="read",
        resource="household",
        resource_ids=[1],
        fields=["phone"],
        at=written,
    ).id
    with pytest.raises(Exception, match="184"):
        audit.purge(session, timedelta(days=183), now=now)
    assert audit.purge(session, audit.MIN_RETENTION, now=now) == 0
    assert session.get(AuditEntry, entry) is not None
    session.add(LoginAttempt(username="x", success=False, at=written))
    session.flush()
    assert audit.purge_login_attempts(session, now) == 0


def test_purge_audit_deletes_only_entries_past_the_retention(app, session, world):
    old = _aged_entry(session, world.users["worker_a1"], 400).id
    recent = _aged_entry(session, world.users["worker_a1"], 100).id
    with app.app_context():
        result = CliRunner().invoke(main, ["purge-audit", "--older-than-days", "184"])
    assert result.exit_code == 0 and "removed 1" in result.output
    session.expire_all()
    assert session.get(AuditEntry, old) is None and session.get(AuditEntry, recent) is not None


def test_purge_audit_deletes_a_bounded_batch_a_transaction_oldest_first(session, world):
    """A purge of a year's entries (millions) is not one DELETE holding them all to its
    commit: each transaction deletes at most a batch, the oldest first."""
    worker = world.users["worker_a1"]
    oldest, older, old = (_aged_entry(session, worker, days).id for days in (400, 300, 200))
    assert audit.purge(session, audit.MIN_RETENTION, batch=2) == 2
    session.expire_all()
    assert session.get(AuditEntry, oldest) is None and session.get(AuditEntry, older) is None
    assert session.get(AuditEntry, old) is not None
    assert audit.purge(session, audit.MIN_RETENTION, batch=2) == 1
    assert audit.purge(session, audit.MIN_RETENTION, batch=2) == 0


def test_purge_audit_goes_on_batch_after_batch_until_none_is_left(app, session, world, monkeypatch):
    monkeypatch.setattr(audit, "PURGE_BATCH", 2)
    old = [_aged_entry(session, world.users["worker_a1"], 200 + n).id for n in range(5)]
    recent = _aged_entry(session, world.users["worker_a1"], 100).id
    with app.app_context():
        result = CliRunner().invoke(main, ["purge-audit", "--older-than-days", "184"])
    assert result.exit_code == 0 and "removed 5" in result.output
    session.expire_all()
    assert all(session.get(AuditEntry, key) is None for key in old)
    assert session.get(AuditEntry, recent) is not None


def test_a_purge_of_the_audit_log_is_itself_recorded_in_it(app, session, world):
    """Whoever deletes entries leaves a trace that outlives them: how many went, and up to
    when, written in the same transaction as the deletion (a deletion without its trace cannot
    commit)."""
    _aged_entry(session, world.users["worker_a1"], 400)
    _aged_entry(session, world.users["worker_a1"], 300)
    with app.app_context():
        result = CliRunner().invoke(main, ["purge-audit", "--older-than-days", "200"])
    assert result.exit_code == 0 and "removed 2" in result.output
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "purge")).one()
    assert (entry.user_id, entry.resource, entry.path) == (None, "audit_log", audit.PURGE_PATH)
    assert entry.fields[0] == "removed 2" and entry.fields[1].startswith("before ")
    assert audit.purge(session, timedelta(days=200)) == 0  # nothing more, and no new trace
    assert session.scalar(select(func.count()).where(AuditEntry.action == "purge")) == 1


def test_the_log_s_readers_find_its_purges_with_action_purge(app, client, session, world):
    """A community admin or a district viewer asking "who read this resident's record?" must
    know the answer starts where the last purge ended. The purge's entry (written at the
    console, no user) was in no view of `GET /audit`: the readers view lists the caller's
    users' entries, the records views entries about their records. `action=purge` lists the
    purges, for every reader of the log; the other views stay as they were."""
    _aged_entry(session, world.users["worker_a1"], 400)
    audit.purge(session, timedelta(days=200))
    session.commit()
    for user in ("admin_a", "viewer_110101"):
        body = client.get("/api/v1/audit?action=purge", headers=world.auth(user)).json
        assert [(e["action"], e["resource"], e["user_id"]) for e in body] == [
            ("purge", "audit_log", None)
        ]
        assert body[0]["fields"][0] == "removed 1" and body[0]["fields"][1].startswith("before ")
    everything = client.get("/api/v1/audit", headers=world.auth("admin_a")).json
    assert all(e["action"] != "purge" for e in everything)
    mine = f"/api/v1/audit?action=purge&user={world.users['admin_a'].id}"
    assert client.get(mine, headers=world.auth("admin_a")).json == []
    refused = client.get("/api/v1/audit?action=purge", headers=world.auth("worker_a1"))
    assert refused.status_code == 403


def test_the_database_refuses_to_delete_an_audit_entry_younger_than_six_months(session, world):
    """Whatever deletes it (a script, a statement typed at psql, a purge on a clock ahead):
    the floor holds in the database, on its own clock. Older entries go as before."""
    from sqlalchemy.exc import DBAPIError

    young = _aged_entry(session, world.users["worker_a1"], 183).id
    old = _aged_entry(session, world.users["worker_a1"], 185).id
    with pytest.raises(DBAPIError, match="184 days"), session.begin_nested():
        session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": young})
    session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": old})
    session.expire_all()
    assert session.get(AuditEntry, young) is not None and session.get(AuditEntry, old) is None


def test_audit_record_keeps_uuid_and_integer_keys_apart(session, world):
    key = uuid.uuid4()
    entry = audit.record(
        session, user_id=None, action="read", resource="visit", resource_ids=[key, 5], fields=[]
    )
    assert (entry.resource_ids, entry.resource_uuids) == ([5], [key])


def test_the_migrations_downgrade_opens_what_it_sealed(session, visit, task):
    from api.services.encryption import SEALED_COLUMNS, open_all

    new = [c for c in SEALED_COLUMNS if c.table in ("visits", "tasks", "task_events")]
    assert open_all(session.connection(), new) >= 4
    assert raw(session, "SELECT notes FROM visits WHERE id = :i", i=visit.id).startswith("腿脚")
    complainant = raw(session, "SELECT complainant FROM tasks WHERE id = :i", i=task.id)
    assert complainant == {"name": "王秀英", "phone": "13912345678"}
    assert seal_all(session.connection())["visits.notes"] == 1


# Every answer that carries a resident's record writes an entry naming it, whoever reads it.
AUDITED_READS = [
    ("GET", "/api/v1/households", "household", "household_id"),
    ("GET", "/api/v1/households/{household_id}", "household", "household_id"),
    ("PATCH", "/api/v1/households/{household_id}", "household", "household_id"),
    ("GET", "/api/v1/households/{household_id}/visits", "visit", "visit_id"),
    ("GET", "/api/v1/visits", "visit", "visit_id"),
    ("GET", "/api/v1/visits/{visit_id}", "visit", "visit_id"),
    ("GET", "/api/v1/visits/{visit_id}/photos/{photo_id}", "visit_photo", "photo_id"),
    ("GET", "/api/v1/tasks", "task", "task_id"),
    ("GET", "/api/v1/tasks/{task_id}", "task", "task_id"),
    ("GET", "/api/v1/tasks/{task_id}/photos/{task_photo_id}", "task_photo", "task_id"),
    ("POST", "/api/v1/tasks/{task_id}/assign", "task", "task_id"),
    ("GET", "/api/v1/tiles/households/{z}/{x}/{y}.mvt?week={week}", "household", "household_id"),
    ("GET", "/api/v1/tiles/visits/{z}/{x}/{y}.mvt?week={week}", "visit", "visit_id"),
    ("GET", "/api/v1/tiles/tasks/{z}/{x}/{y}.mvt?week={week}", "task", "task_id"),
]
BODIES = {"PATCH": {"members": 3}, "POST": {"assignee_id": "{leader_id}"}}


@pytest.mark.parametrize(("method", "url", "resource", "key"), AUDITED_READS)
def test_every_read_of_a_residents_record_is_audited(
    request, client, session, world, method, url, resource, key
):
    records = request.getfixturevalue("targets")  # from tests/api/test_matrix.py
    user = "viewer_110101" if method == "GET" else "leader_a"
    body = records.fill(BODIES.get(method)) if method in BODIES else None
    response = client.open(records.fill(url), method=method, json=body, headers=world.auth(user))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    entry = last_entry(session)
    assert (entry.user_id, entry.resource) == (world.users[user].id, resource)
    target = records.values[key]
    assert target in (entry.resource_uuids if isinstance(target, uuid.UUID) else entry.resource_ids)
