"""A visit's follow-up says what it is about and how urgent it is.

The worker gives the follow-up a short plain title (`follow_up_title`: one line, as a task's
title; what was said stays in the sealed `follow_up_note`) and an urgency
(`follow_up_urgency`: a task's urgencies, `general` by default). Its task takes both: the
title in place of the generic 入户走访跟进 (so the need and problem lists say what each is, and
what residents say at the door counts in what recurs), the urgency setting its deadline (a
danger found at the door gets hours, not a week).
"""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.models import Task, Visit
from api.services.tasks import VISIT_FOLLOW_UP_TITLE
from tests.api.test_need_and_problem_lists import (  # noqa: F401 (fixed_clock: a fixture)
    BATCH,
    RAW_VISIT,
    T0,
    fixed_clock,
    record,
)
from tests.factories import A1, A, visit_item


def follow_up(world, n=0, **fields):
    """The `n`th follow-up of the hour, at one of A1's three households."""
    return visit_item(
        world.households[A1][n % 3],
        at=T0 - timedelta(hours=1, minutes=-n),
        follow_up=True,
        follow_up_note="楼道灯不亮，王奶奶夜里摔过一次",
        **fields,
    )


def task_of(session, visit_id) -> Task:
    return session.scalar(select(Task).where(Task.visit_id == visit_id))


# --- the title ---------------------------------------------------------------------------------
def test_a_titled_follow_up_is_a_task_of_that_title(client, world, session):
    [result] = record(client, world, follow_up(world, follow_up_title="3号楼楼道灯不亮"))
    assert result["status"] == "created"
    task = task_of(session, result["id"])
    assert task.title == "3号楼楼道灯不亮"
    # The note stays the sealed description; the title is all the lists show.
    assert task.description == "楼道灯不亮，王奶奶夜里摔过一次"


def test_a_follow_up_with_no_title_keeps_the_generic_one(client, world, session):
    """A client from before the titles sends none (or null): its task is titled as before."""
    results = record(client, world, follow_up(world), follow_up(world, 1, follow_up_title=None))
    titles = {task_of(session, r["id"]).title for r in results}
    assert titles == {VISIT_FOLLOW_UP_TITLE}


def test_the_visit_keeps_its_follow_up_title_and_answers_it(client, world):
    [result] = record(client, world, follow_up(world, follow_up_title="3号楼楼道灯不亮"))
    assert result["visit"]["follow_up_title"] == "3号楼楼道灯不亮"
    read = client.get(f"/api/v1/visits/{result['id']}", headers=world.auth("leader_a")).json
    assert read["follow_up_title"] == "3号楼楼道灯不亮"


def test_the_title_is_shown_where_the_note_is_withheld(client, world):
    """A title is plain text, as a task's (the lists, the map): a district viewer reads it,
    not the note."""
    [result] = record(client, world, follow_up(world, follow_up_title="3号楼楼道灯不亮"))
    read = client.get(f"/api/v1/visits/{result['id']}", headers=world.auth("viewer_110101")).json
    assert (read["follow_up_title"], read["follow_up_note"]) == ("3号楼楼道灯不亮", None)


def test_the_need_list_names_each_follow_up_by_its_title(client, world):
    record(
        client,
        world,
        follow_up(world, follow_up_title="3号楼楼道灯不亮"),
        follow_up(world, 1, follow_up_title="5号楼门口要装坡道"),
    )
    tasks = client.get("/api/v1/tasks?list=need", headers=world.auth("leader_a")).json
    assert {t["title"] for t in tasks} == {"3号楼楼道灯不亮", "5号楼门口要装坡道"}


def test_a_title_as_long_as_a_task_title_may_be_is_taken(client, world, session):
    [result] = record(client, world, follow_up(world, follow_up_title="灯" * 200))
    assert result["status"] == "created"
    assert task_of(session, result["id"]).title == "灯" * 200


@pytest.mark.parametrize(
    "title",
    [
        "",  # given, but empty: leave it out for the generic title
        "   ",
        "\u200b",  # a zero-width space shows as nothing
        "3号楼\n楼道灯",  # one line
        "\u202e3号楼",  # a bidirectional override disguises what a list shows
        "x" * 201,  # a task title's longest is 200
        7,
        ["3号楼楼道灯不亮"],
    ],
)
def test_a_title_a_task_would_refuse_rejects_its_visit_alone(client, world, session, title):
    good = follow_up(world, 1, follow_up_title="3号楼楼道灯不亮")
    bad = follow_up(world, follow_up_title=title)
    rejected, created = record(client, world, bad, good)
    assert created["status"] == "created"
    assert rejected["status"] == "rejected" and "follow_up_title" in rejected["errors"]
    assert session.get(Visit, bad["id"]) is None


def test_a_title_without_a_follow_up_is_kept_nowhere(client, world, session):
    """A form may keep what was typed for a follow-up the worker then unticked."""
    item = visit_item(
        world.households[A1][0],
        at=T0 - timedelta(hours=1),
        follow_up_title="3号楼楼道灯不亮",
        follow_up_urgency="danger",
    )
    [result] = record(client, world, item)
    assert result["status"] == "created"
    assert (result["visit"]["follow_up_title"], result["visit"]["follow_up_urgency"]) == (
        None,
        None,
    )
    stored = session.get(Visit, item["id"])
    assert (stored.follow_up_title, stored.follow_up_urgency) == (None, None)
    assert task_of(session, item["id"]) is None


# --- the urgency -------------------------------------------------------------------------------
def test_a_danger_found_at_the_door_gets_a_danger_deadline(client, world, session):
    """Beijing practice: danger to life or property, feedback within 2 hours (not 7 days)."""
    [result] = record(
        client, world, follow_up(world, follow_up_title="2号楼燃气味", follow_up_urgency="danger")
    )
    task = task_of(session, result["id"])
    assert task.urgency == "danger"
    assert task.due_at - task.created_at == timedelta(hours=2)
    assert result["visit"]["follow_up_urgency"] == "danger"


@pytest.mark.parametrize("sent", [{}, {"follow_up_urgency": None}])
def test_a_follow_up_sent_with_no_urgency_is_general(client, world, session, sent):
    [result] = record(client, world, follow_up(world, **sent))
    task = task_of(session, result["id"])
    assert task.urgency == "general"
    assert task.due_at - task.created_at == timedelta(days=7)
    assert result["visit"]["follow_up_urgency"] == "general"


@pytest.mark.parametrize("urgency", ["urgent", "Danger", "", 2, ["danger"]])
def test_an_urgency_no_task_has_rejects_its_visit_alone(client, world, session, urgency):
    good = follow_up(world, 1)
    bad = follow_up(world, follow_up_urgency=urgency)
    rejected, created = record(client, world, bad, good)
    assert created["status"] == "created"
    assert rejected["status"] == "rejected" and "follow_up_urgency" in rejected["errors"]
    assert session.get(Visit, bad["id"]) is None


def test_the_visit_takes_every_urgency_a_task_takes():
    from api.models.tasks import URGENCIES
    from api.resources.visits.schemas import VisitItemSchema

    field = VisitItemSchema().fields["follow_up_urgency"]
    assert [field.deserialize(urgency) for urgency in URGENCIES] == list(URGENCIES)


# --- a batch sent again ------------------------------------------------------------------------
def test_a_batch_sent_again_makes_no_second_task(client, world, session):
    item = follow_up(world, follow_up_title="3号楼楼道灯不亮", follow_up_urgency="utility")
    [first] = record(client, world, item)
    [again] = record(client, world, item)
    assert (first["status"], again["status"]) == ("created", "duplicate")
    assert again["visit"] == first["visit"]
    assert session.scalar(select(func.count()).where(Task.visit_id == item["id"])) == 1


def test_a_replay_carrying_another_title_changes_nothing(client, world, session):
    """A stored visit cannot be changed: the replay is a duplicate, its task as it was."""
    item = follow_up(world, follow_up_title="3号楼楼道灯不亮")
    record(client, world, item)
    [again] = record(
        client, world, {**item, "follow_up_title": "别的事", "follow_up_urgency": "danger"}
    )
    assert again["status"] == "duplicate"
    assert again["visit"]["follow_up_title"] == "3号楼楼道灯不亮"
    task = task_of(session, item["id"])
    assert (task.title, task.urgency) == ("3号楼楼道灯不亮", "general")


# --- what recurs -------------------------------------------------------------------------------
def test_what_residents_say_at_the_door_counts_in_what_recurs(app, client, world):
    """Three doors telling of the stairwell lamps are a recurring phrase; the generic title of
    an untitled follow-up still says nothing."""
    record(
        client,
        world,
        *(follow_up(world, n, follow_up_title=f"{n + 3}号楼楼道灯不亮") for n in range(3)),
        follow_up(world, 3),
    )
    app.config["FIXED_NOW"] = T0 + timedelta(hours=1)  # read an hour later
    body = client.get(
        "/api/v1/tasks/recurring", query_string={"community": A}, headers=world.auth("leader_a")
    ).json
    assert body["tasks"] == 4
    phrases = {w["phrase"]: w["tasks"] for w in body["words"]}
    assert phrases.get("楼道灯不亮") == 3
    assert not any("走访" in phrase for phrase in phrases)


# --- the migration -----------------------------------------------------------------------------
def test_migration_0061_leaves_the_follow_ups_before_it_untouched(
    own_database_url,
):
    """The follow-ups recorded before were `general` tasks titled 入户走访跟进: the migration
    rewrites none of them (no title, no urgency stored: the answer says general)."""
    import uuid

    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, worker_id = migration_grid(own_database_url, worker="mig_0061")
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    visit = text(RAW_VISIT)
    followed, plain = uuid.uuid4(), uuid.uuid4()
    try:
        command.downgrade(config, "0060")
        with engine.begin() as conn:
            for vid, flagged in ((followed, True), (plain, False)):
                conn.execute(
                    visit, {"id": vid, "w": worker_id, "g": grid_id, "t": T0, "f": flagged}
                )
        command.upgrade(config, "head")
        with engine.begin() as conn:
            stored = {
                row.id: (row.follow_up_title, row.follow_up_urgency)
                for row in conn.execute(
                    text("SELECT id, follow_up_title, follow_up_urgency FROM visits")
                )
            }
            conn.execute(text("DELETE FROM visits"))
        # Not rewritten (ten million visits under the table's lock): NULL, read as general.
        assert stored == {followed: (None, None), plain: (None, None)}
    finally:
        engine.dispose()


def test_a_follow_up_recorded_before_the_urgencies_is_answered_general(client, world, session):
    """Migration 0061 wrote no urgency into the follow-ups before it: their tasks were general."""
    [result] = record(client, world, follow_up(world))
    visit = session.get(Visit, result["visit"]["id"])
    visit.follow_up_urgency = None  # as a visit recorded before 0061 is
    session.commit()
    read = client.get(f"/api/v1/visits/{visit.id}", headers=world.auth("worker_a1")).json
    assert read["follow_up_urgency"] == "general"
    listed = client.get(f"/api/v1/visits?grid={A1}", headers=world.auth("worker_a1")).json
    assert [v["follow_up_urgency"] for v in listed] == ["general"]


def test_a_follow_up_urgency_outside_a_task_s_is_refused_by_the_database(client, world, session):
    """Only the batch's schema checked the values: a row written another way (COPY, a script)
    failed the visit's task inside a later sync."""
    from sqlalchemy.exc import IntegrityError

    [result] = record(client, world, follow_up(world))
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            Visit.__table__.update()
            .where(Visit.id == result["visit"]["id"])
            .values(follow_up_urgency="urgent")
        )
