"""Retention of a closed task's complainant: their name and phone erased some months after the
task was closed, wherever the task holds them; the task, its history and every rate kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from api.models import Notification, Task, TaskEvent
from api.services import retention
from api.services.notifications import notify
from api.services.weeks import current_week
from tests.api.test_retention import POLICY
from tests.factories import A1, A, make_task_at

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CALLER = {"name": "王建国", "phone": "13800001111"}
GONE = retention.ERASED


def closed_task(
    session,
    world,
    closed_at,
    *,
    household=1,
    complainant=None,
    status="closed",
    satisfaction="satisfied",
    **fields,
):
    """A hotline task opened ten days before `closed_at`, answered, resolved, called back and
    (in `status` closed) closed then."""
    fields.setdefault("title", "楼道灯不亮")
    fields.setdefault("description", "3号楼2单元楼道灯坏了一周")
    return make_task_at(
        session,
        world.households[A1][household],
        closed_at - 5 * DAY,
        status=status,
        external_id=f"T{closed_at:%Y%m%d%H%M%S%f}-{household}-{status}",
        complainant=dict(CALLER) if complainant is None else complainant,
        created_at=closed_at - 10 * DAY,
        first_contact_due_at=closed_at - 9 * DAY,
        first_contact_at=closed_at - 9.5 * DAY,
        resolved_at=closed_at - 2 * DAY,
        closed_at=closed_at if status == "closed" else None,
        satisfaction=satisfaction,
        **fields,
    )


def step(session, task, action, at, note=""):
    event = TaskEvent(
        task_id=task.id, action=action, from_status="x", to_status="y", note=note, at=at
    )
    session.add(event)
    session.flush()
    return event


def purge(session, now=NOW, policy=POLICY):
    return retention.purge(session, None, policy, now)


def reload(session, task) -> Task:
    session.expire_all()
    return session.get(Task, task.id)


# --- the contact goes -------------------------------------------------------------------------
def test_a_closed_tasks_complainant_is_erased_after_its_period(session, world):
    task = closed_task(session, world, NOW - 181 * DAY)
    assert purge(session).complainants == 1
    row = reload(session, task)
    assert row.complainant is None
    assert row.contact_erased_at == NOW


def test_a_task_closed_within_the_period_keeps_its_complainant(session, world):
    task = closed_task(session, world, NOW - 179 * DAY)
    assert purge(session).complainants == 0
    row = reload(session, task)
    assert (row.complainant, row.contact_erased_at) == (CALLER, None)


def test_a_task_not_closed_keeps_its_complainant_however_old(session, world):
    """Resolved or called back and never closed, reopened (its close undone), or passed on to
    another community: the ticket is not over here, or is over elsewhere."""
    old = NOW - 400 * DAY
    kept = [
        closed_task(session, world, old, status="resolved", satisfaction=None),
        closed_task(session, world, old, status="callback"),
        closed_task(session, world, old, status="reopened", satisfaction=None),
        closed_task(session, world, old, status="transferred"),
    ]
    assert purge(session).complainants == 0
    session.expire_all()
    assert [session.get(Task, t.id).complainant for t in kept] == [CALLER] * 4


def test_the_tasks_status_times_and_satisfaction_are_kept(session, world):
    task = closed_task(session, world, NOW - 181 * DAY)
    before = {c: getattr(task, c) for c in KEPT_COLUMNS}
    purge(session)
    row = reload(session, task)
    assert {c: getattr(row, c) for c in KEPT_COLUMNS} == before


KEPT_COLUMNS = (
    "source",
    "type",
    "urgency",
    "external_id",
    "household_id",
    "grid_id",
    "status",
    "assignee_id",
    "created_at",
    "first_contact_due_at",
    "first_contact_at",
    "due_at",
    "resolved_at",
    "closed_at",
    "satisfaction",
)


# --- wherever the task repeats it ---------------------------------------------------------------
def test_the_complainants_name_and_phone_are_struck_from_the_description_title_and_steps(
    session, world
):
    task = closed_task(
        session,
        world,
        NOW - 181 * DAY,
        title="王建国反映楼道灯不亮",
        description="王建国来电：3号楼2单元楼道灯坏了一周，回电13800001111",
    )
    created = step(session, task, "create", NOW - 191 * DAY, note=task.description)
    callback = step(
        session, task, "callback", NOW - 182 * DAY, note="已回访王建国 138 0000 1111，满意"
    )
    purge(session)
    row = reload(session, task)
    assert row.title == f"{GONE}反映楼道灯不亮"
    assert row.description == f"{GONE}来电：3号楼2单元楼道灯坏了一周，回电{GONE}"
    assert session.get(TaskEvent, created.id).note == row.description
    assert session.get(TaskEvent, callback.id).note == f"已回访{GONE} {GONE}，满意"


def test_any_phone_or_identity_card_number_typed_from_the_call_is_struck_too(session, world):
    """Numbers of others the caller gave (a neighbour, the landlord) are contact too; the
    substance of the complaint, its place and ticket are kept word for word."""
    description = (
        "反映邻居（电话139-1234-5678，座机010-61234567）装修噪音，"
        "房东身份证110101199003071234；工单2026120400123，3号楼502室"
    )
    task = closed_task(session, world, NOW - 181 * DAY, description=description)
    purge(session)
    assert reload(session, task).description == (
        f"反映邻居（电话{GONE}，座机{GONE}）装修噪音，房东身份证{GONE}；工单2026120400123，3号楼502室"
    )


def test_a_number_typed_in_full_width_digits_is_struck_too(session, world):
    """A Chinese input method in full-width mode types １３９ for 139: the same number, which
    stayed readable in the description for as long as the task is kept."""
    description = (
        "邻居电话１３９－１２３４－５６７８，"
        "房东身份证１１０１０１１９９００３０７１２３Ｘ，3号楼502室"
    )
    task = closed_task(session, world, NOW - 181 * DAY, description=description)
    purge(session)
    assert reload(session, task).description == f"邻居电话{GONE}，房东身份证{GONE}，3号楼502室"


def test_the_complainants_phone_is_struck_however_it_was_typed_in_the_text(session, world):
    """The hotline records 010-65123456; the caller said 6512 3456, and the operator typed it
    so: the same phone, without its area code (or with +86 before a mobile), in any grouping."""
    task = closed_task(
        session,
        world,
        NOW - 181 * DAY,
        complainant={"name": "王建国", "phone": "010-65123456"},
        description="来电人留电话6512 3456，白天打6512-3456或65123456",
    )
    callback = step(session, task, "callback", NOW - 182 * DAY, note="已回访 0106512 3456，满意")
    purge(session)
    assert reload(session, task).description == f"来电人留电话{GONE}，白天打{GONE}或{GONE}"
    assert session.get(TaskEvent, callback.id).note == f"已回访 {GONE}，满意"


def test_a_one_character_name_is_not_struck_everywhere_it_occurs(session, world):
    """A surname alone ("王") would blank every 王 of the text: only the phone goes."""
    task = closed_task(
        session,
        world,
        NOW - 181 * DAY,
        complainant={"name": "王", "phone": "13800001111"},
        description="王府井小区王先生来电",
    )
    purge(session)
    row = reload(session, task)
    assert (row.complainant, row.description) == (None, "王府井小区王先生来电")


def test_the_erasure_is_a_step_of_the_tasks_history_naming_nobody(session, world):
    task = closed_task(session, world, NOW - 181 * DAY)
    purge(session)
    (event,) = session.scalars(
        select(TaskEvent).where(TaskEvent.task_id == task.id, TaskEvent.action == "erase_contact")
    )
    assert (event.from_status, event.to_status, event.actor_id, event.at) == (
        "closed",
        "closed",
        None,
        NOW,
    )
    assert "王建国" not in event.note and "13800001111" not in event.note


def test_the_notifications_about_the_task_lose_the_complainants_name(session, world):
    task = closed_task(session, world, NOW - 181 * DAY, title="王建国反映楼道灯不亮")
    worker = world.users["worker_a1"].id
    (about,) = notify(
        session, [worker], "task_dispatched", "新任务", task.title, data={"task_id": task.id}
    )
    (other,) = notify(session, [worker], "roster_published", "排班已发布", "王建国反映楼道灯不亮")
    purge(session)
    session.expire_all()
    assert session.get(Notification, about.id).body == f"{GONE}反映楼道灯不亮"
    assert session.get(Notification, other.id).body == "王建国反映楼道灯不亮"


def test_a_task_read_after_the_erasure_shows_no_complainant_and_the_step(client, session, world):
    task = closed_task(session, world, NOW - 181 * DAY)
    purge(session)
    answer = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("admin_a"))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["complainant"] is None
    assert body["status"] == "closed"
    assert body["events"][-1]["action"] == "erase_contact"


# --- what the rates and reports count is kept ---------------------------------------------------
def test_the_three_rates_and_the_weekly_report_read_the_same_after_the_erasure(
    client, session, world
):
    """Tasks opened today (the world's grids exist from today: the report is of this week),
    closed within days, erased as they would be 200 days from now."""
    today = datetime.now(UTC)
    for household, satisfaction in ((0, "satisfied"), (1, "unsatisfied"), (2, "satisfied")):
        closed_task(
            session, world, today + 10 * DAY, household=household, satisfaction=satisfaction
        )
    # This week in Beijing, as the rates count it (the UTC calendar's was last week's on a
    # Monday before 08:00 Beijing time).
    week = current_week(today)
    reads = (
        f"/api/v1/tasks/rates?week={week}&community={A}",
        f"/api/v1/reports/coverage?week={week}&community={A}",
    )

    def read_all():
        answers = []
        for url in reads:
            answer = client.get(url, headers=world.auth("admin_a"))
            assert answer.status_code == 200, answer.get_json()
            body = answer.get_json()
            body.pop("generated_at", None)
            answers.append(body)
        return answers

    before = read_all()
    assert (before[0]["opened"], before[0]["resolved"], before[0]["satisfaction_rate"]) == (
        3,
        3,
        66.7,
    )
    assert before[1]["totals"]["tasks"]["opened"] == 3
    assert purge(session, now=today + 200 * DAY).complainants == 3
    assert read_all() == before


# --- runs: bounded, oldest first, idempotent --------------------------------------------------
def test_a_run_erases_at_most_a_batch_oldest_closed_first(session, world):
    tasks = [closed_task(session, world, NOW - (181 + k) * DAY, household=k) for k in range(3)]
    assert purge(session, policy=replace(POLICY, batch=2)).complainants == 2
    session.expire_all()
    assert [session.get(Task, t.id).complainant for t in tasks] == [CALLER, None, None]
    assert purge(session, policy=replace(POLICY, batch=2)).complainants == 1


def test_running_again_erases_nothing_twice(session, world):
    task = closed_task(session, world, NOW - 181 * DAY)
    assert purge(session).complainants == 1
    assert purge(session, now=NOW + DAY) == retention.Purged()
    row = reload(session, task)
    assert row.contact_erased_at == NOW
    assert [e.action for e in row.events].count("erase_contact") == 1


def test_a_closed_task_without_a_complainant_has_its_description_scrubbed_once(session, world):
    """A window task, or a caller who gave no name: numbers in its text go all the same."""
    task = closed_task(
        session, world, NOW - 181 * DAY, complainant={}, description="来电人手机13912345678"
    )
    assert purge(session).complainants == 1
    assert reload(session, task).description == f"来电人手机{GONE}"
    assert purge(session).complainants == 0


def test_a_task_reopened_after_the_erasure_is_scrubbed_again_once_closed_for_the_period(
    client, session, world
):
    """Its new round's steps may hold a number typed from a new call: the reopening takes the
    mark off, and the next close starts the period again."""
    task = closed_task(session, world, NOW - 181 * DAY)
    purge(session)
    answer = client.post(
        f"/api/v1/tasks/{task.id}/transitions",
        json={"action": "reopen", "note": "居民再次来电"},
        headers=world.auth("admin_a"),
    )
    assert answer.status_code == 200, answer.get_json()
    row = reload(session, task)
    assert row.contact_erased_at is None
    later = NOW + 30 * DAY
    step(session, row, "resolve", later, note="已电话联系13912345678")
    row.status, row.closed_at = "closed", later
    session.flush()
    assert purge(session, now=later + 179 * DAY).complainants == 0
    assert purge(session, now=later + 181 * DAY).complainants == 1
    row = reload(session, task)
    assert row.events[-2].note == f"已电话联系{GONE}"
    assert [e.action for e in row.events].count("erase_contact") == 2


# --- the setting and the migration ------------------------------------------------------------
def test_the_period_is_read_from_its_setting(app):
    app.config["RETAIN_COMPLAINANTS_DAYS"] = 365
    assert retention.Policy.from_config(app.config).complainants == timedelta(days=365)


def test_the_default_period_is_180_days_after_the_close(app):
    assert retention.Policy.from_config(app.config).complainants == timedelta(days=180)


def test_migration_0035_downgrades_and_upgrades_again(own_database_url):
    from tests.api.test_audit_storage import down_and_up

    def erased_column(conn) -> int:
        return conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'tasks' AND column_name = 'contact_erased_at'"
            )
        )

    def before(conn):
        assert erased_column(conn) == 0

    def after(conn):
        assert erased_column(conn) == 1

    down_and_up(own_database_url, "0034", before, after)


# --- a ticket passed on to another community (改派) ----------------------------------------------
def handed_on(session, world, at, *, household=1, status="transferred", **fields):
    """A task of a ticket passed on at `at` (ended as transferred unless `status` says what it
    kept: one resolved or closed keeps it); `link` names the task it went to."""
    fields.setdefault("satisfaction", None)
    return closed_task(
        session, world, at, household=household, status=status, transferred_at=at, **fields
    )


def link(session, *tasks):
    """Each task passed on to the next, as `tasks._transfer` links them."""
    for earlier, later in zip(tasks, tasks[1:], strict=False):
        earlier.transferred_to_id, later.transferred_from_id = later.id, earlier.id
    session.flush()


def test_a_task_passed_on_is_erased_once_the_last_task_of_its_ticket_was_closed_for_the_period(
    session, world
):
    """Its copy of the complainant is the ticket's: kept while the ticket is worked on where it
    went, erased as the task that closed it is, and wherever the task repeats it."""
    first = handed_on(
        session, world, NOW - 300 * DAY, title="王建国反映楼道灯不亮", description="回电13800001111"
    )
    last = closed_task(session, world, NOW - 181 * DAY, household=2)
    link(session, first, last)
    assert purge(session).complainants == 2
    row = reload(session, first)
    assert (row.complainant, row.contact_erased_at) == (None, NOW)
    assert (row.title, row.description) == (f"{GONE}反映楼道灯不亮", f"回电{GONE}")
    assert (row.events[-1].action, row.events[-1].to_status) == ("erase_contact", "transferred")
    assert reload(session, last).complainant is None


def test_a_task_passed_on_keeps_its_complainant_while_the_last_is_closed_within_the_period(
    session, world
):
    first = handed_on(session, world, NOW - 300 * DAY)
    last = closed_task(session, world, NOW - 179 * DAY, household=2)
    link(session, first, last)
    assert purge(session).complainants == 0
    assert reload(session, first).complainant == CALLER


def test_a_task_passed_on_keeps_its_complainant_while_its_ticket_is_open_however_old(
    session, world
):
    first = handed_on(session, world, NOW - 400 * DAY)
    last = closed_task(session, world, NOW - 390 * DAY, household=2, status="dispatched")
    link(session, first, last)
    assert purge(session).complainants == 0
    assert reload(session, first).complainant == CALLER


def test_a_closed_task_passed_on_counts_from_its_tickets_last_close_not_its_own(session, world):
    """Closed, then sent again by the hotline to another community (a closed task keeps its
    status): the ticket is live again there, and the contact with it."""
    first = handed_on(session, world, NOW - 400 * DAY, status="closed", satisfaction="satisfied")
    first.closed_at = NOW - 400 * DAY
    last = closed_task(session, world, NOW - 300 * DAY, household=2, status="in_progress")
    link(session, first, last)
    assert purge(session).complainants == 0
    assert reload(session, first).complainant == CALLER


def test_every_task_of_a_ticket_passed_on_twice_is_erased_with_its_last(session, world):
    tasks = [
        handed_on(session, world, NOW - 300 * DAY, household=0),
        handed_on(session, world, NOW - 250 * DAY, household=1, status="resolved"),
        closed_task(session, world, NOW - 181 * DAY, household=2),
    ]
    link(session, *tasks)
    assert purge(session).complainants == 3
    session.expire_all()
    assert [session.get(Task, t.id).complainant for t in tasks] == [None] * 3


def test_a_tickets_earlier_tasks_are_erased_in_the_run_of_its_last_even_past_the_batch(
    session, world
):
    """A run's batch counts the tickets' last tasks; a ticket is erased whole, never half."""
    first = handed_on(session, world, NOW - 300 * DAY)
    last = closed_task(session, world, NOW - 181 * DAY, household=2)
    link(session, first, last)
    assert purge(session, policy=replace(POLICY, batch=1)).complainants == 2
    assert reload(session, first).complainant is None


def test_a_tickets_last_task_reopened_after_the_erasure_erases_again_only_itself(
    client, session, world
):
    """The reopening takes the mark off the last task (its new round's steps may hold a new
    number); the tasks it was passed on from take no new steps and are not erased twice."""
    first = handed_on(session, world, NOW - 300 * DAY)
    last = closed_task(session, world, NOW - 181 * DAY, household=2)
    link(session, first, last)
    purge(session)
    answer = client.post(
        f"/api/v1/tasks/{last.id}/transitions",
        json={"action": "reopen", "note": "居民再次来电"},
        headers=world.auth("admin_a"),
    )
    assert answer.status_code == 200, answer.get_json()
    later = NOW + 30 * DAY
    row = reload(session, last)
    row.status, row.closed_at = "closed", later
    session.flush()
    assert purge(session, now=later + 179 * DAY).complainants == 0
    assert purge(session, now=later + 181 * DAY).complainants == 1
    assert [e.action for e in reload(session, first).events].count("erase_contact") == 1
