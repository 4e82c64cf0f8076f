"""A community's task deadlines (工单时限): read by everyone of the community, set by its admin,
given to the tasks opened from then on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.models import Community
from api.models.tasks import HOTLINE_TYPES, URGENCIES
from tests.factories import A1, A, B, make_task

NOW = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
DEFAULTS = {
    "deadline_hours": {"danger": 2.0, "utility": 24.0, "general": 168.0, "complex": 360.0},
    "first_contact_hours": {"danger": 0.5, "utility": 2.0, "general": 24.0, "complex": 24.0},
}


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = NOW


def url(code: str = A) -> str:
    return f"/api/v1/communities/{code}/task-settings"


def put(client, world, body, who="admin_a", code=A):
    return client.put(url(code), json=body, headers=world.auth(who))


@pytest.mark.parametrize("who", ["worker_a1", "leader_a", "admin_a", "viewer_110101"])
def test_everyone_of_the_community_reads_its_deadlines_the_defaults_filled_in(client, world, who):
    response = client.get(url(), headers=world.auth(who))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        **DEFAULTS,
        "by_type": {},
        "defaults": DEFAULTS,
        "effective": {kind: DEFAULTS for kind in HOTLINE_TYPES},
    }


@pytest.mark.parametrize("who", ["admin_b", "worker_b1", "viewer_110102"])
def test_another_communitys_deadlines_are_404(client, world, who):
    assert client.get(url(), headers=world.auth(who)).status_code == 404


def test_the_admin_sets_them_and_new_tasks_are_given_them(client, session, world):
    before = make_task(session, A1, now=NOW, urgency="general")
    body = {
        "deadline_hours": {"general": 72},
        "first_contact_hours": {"general": 4},
        "by_type": {"complaint": {"deadline_hours": {"general": 48}}},
    }
    response = put(client, world, body)
    assert response.status_code == 200, response.get_json()
    view = response.get_json()
    assert view["deadline_hours"] == {**DEFAULTS["deadline_hours"], "general": 72.0}
    assert view["first_contact_hours"]["general"] == 4.0
    assert view["by_type"] == {"complaint": {"deadline_hours": {"general": 48.0}}}
    assert client.get(url(), headers=world.auth("worker_a1")).get_json() == view

    session.expire_all()  # the test's session read the community before the request wrote it
    help_task = make_task(session, A1, now=NOW, urgency="general", type="help")
    complaint = make_task(session, A1, now=NOW, urgency="general", type="complaint")
    assert help_task.due_at - NOW == timedelta(hours=72)
    assert help_task.first_contact_due_at - NOW == timedelta(hours=4)
    assert complaint.due_at - NOW == timedelta(hours=48)
    # A task opened before keeps the deadline it was given.
    assert before.due_at - NOW == timedelta(days=7)


def test_each_request_types_hours_are_given_as_its_tasks_are_given_them(client, session, world):
    body = {
        "deadline_hours": {"general": 72},
        "first_contact_hours": {"utility": 1},
        "by_type": {"complaint": {"deadline_hours": {"general": 48}}},
    }
    effective = put(client, world, body).get_json()["effective"]
    assert effective["complaint"]["deadline_hours"]["general"] == 48.0
    assert effective["help"]["deadline_hours"]["general"] == 72.0
    assert effective["complaint"]["first_contact_hours"]["utility"] == 1.0
    assert effective["help"]["deadline_hours"]["danger"] == 2.0
    assert client.get(url(), headers=world.auth("worker_a1")).get_json()["effective"] == effective

    session.expire_all()
    for kind in HOTLINE_TYPES:
        for urgency in URGENCIES:
            task = make_task(session, A1, now=NOW, urgency=urgency, type=kind)
            hours = effective[kind]
            assert task.due_at - NOW == timedelta(hours=hours["deadline_hours"][urgency])
            assert task.first_contact_due_at - NOW == timedelta(
                hours=hours["first_contact_hours"][urgency]
            )


def test_an_urgency_left_out_takes_the_default_again(client, session, world):
    assert put(client, world, {"deadline_hours": {"general": 72}}).status_code == 200
    view = put(client, world, {"deadline_hours": {"danger": 1}}).get_json()
    assert view["deadline_hours"] == {**DEFAULTS["deadline_hours"], "danger": 1.0}


def test_the_other_settings_of_the_community_are_kept(client, session, world):
    community = session.get(Community, A)
    community.settings = {"roster": {"a_min": 2}, "visit_cadence": {"elderly_80": 2}}
    session.flush()
    assert put(client, world, {"deadline_hours": {"general": 72}}).status_code == 200
    session.expire_all()
    settings = session.get(Community, A).settings
    assert settings["roster"] == {"a_min": 2} and settings["visit_cadence"] == {"elderly_80": 2}


@pytest.mark.parametrize(
    ("who", "status"),
    [("leader_a", 403), ("worker_a1", 403), ("viewer_110101", 403), ("admin_b", 404)],
)
def test_only_the_communitys_admin_sets_them(client, session, world, who, status):
    response = put(client, world, {"deadline_hours": {"general": 1}}, who=who)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    session.expire_all()
    assert "tasks" not in (session.get(Community, A).settings or {})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deadline_hours": {"soon": 3}}, "deadline_hours"),
        ({"deadline_hours": {"general": 0}}, "deadline_hours"),
        ({"deadline_hours": {"general": -5}}, "deadline_hours"),
        ({"deadline_hours": {"general": 90 * 24 + 1}}, "deadline_hours"),
        ({"deadline_hours": {"general": "72"}}, "deadline_hours"),
        ({"deadline_hours": {"general": True}}, "deadline_hours"),
        ({"deadline_hours": {"general": None}}, "deadline_hours"),
        ({"by_type": {"gossip": {"deadline_hours": {"general": 5}}}}, "by_type"),
        ({"by_type": {"complaint": {"hours": 5}}}, "by_type"),
        ({"weekly_hours": {"general": 5}}, "weekly_hours"),
        # The first contact after the resolution: for all, and for one type.
        ({"first_contact_hours": {"danger": 3}}, "first_contact_hours"),
        ({"by_type": {"help": {"deadline_hours": {"general": 12}}}}, "by_type.help"),
        # A deadline set sooner than the default first contact: the deadline sent is named,
        # not first_contact_hours, which was not (a form outlined the box left empty).
        ({"deadline_hours": {"danger": 0.25}}, "deadline_hours"),
    ],
)
def test_bad_deadlines_are_a_422_naming_the_field_and_change_nothing(
    client, session, world, body, field
):
    response = put(client, world, body)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    assert list(response.get_json()["errors"]["json"]) == [field]
    session.expire_all()
    assert "tasks" not in (session.get(Community, A).settings or {})


def test_a_community_not_in_the_district_is_404_for_its_admin_too(client, world):
    assert put(client, world, {}, who="admin_b", code=A).status_code == 404
    assert put(client, world, {}, who="admin_b", code=B).status_code == 200
