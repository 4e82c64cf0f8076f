"""`gridwork seed city`: a tiny city loaded with COPY has the right counts and keeps every rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from api.auth import hash_password
from api.crypto import decrypt, encrypt
from fixtures.city import CityAlreadyLoaded, load_city
from tests.databases import create_database, drop_database, sibling_url

NOW = datetime(2026, 11, 19, 4, 0, tzinfo=UTC)  # a Thursday noon in Beijing, week 2026-W47
GRIDS, HOUSEHOLDS, WEEKS, TASKS = 6, 600, 2, 300


@pytest.fixture(scope="module")
def city_url(database_url):
    """A database of its own (the loader commits), migrated, with the tiny city loaded."""
    url = create_database(sibling_url(database_url, "_city"))
    report = _load(url)
    yield url, report
    drop_database(url)


def _load(url, tasks=TASKS, **kw):
    return load_city(
        url,
        grids=GRIDS,
        households=HOUSEHOLDS,
        weeks=WEEKS,
        tasks=tasks,
        seed=3,
        password_hash=hash_password("demo-pass-1234"),
        encrypt=encrypt,
        now=NOW,
        **kw,
    )


@pytest.fixture(scope="module")
def q(city_url):
    engine = create_engine(city_url[0])

    def run(sql, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    yield run
    engine.dispose()


def one(q, sql, **params):
    return q(sql, **params)[0][0]


def test_counts_match_what_was_asked(city_url, q):
    _, report = city_url
    assert one(q, "SELECT count(*) FROM grids") == GRIDS
    assert one(q, "SELECT count(*) FROM households") == HOUSEHOLDS
    assert one(q, "SELECT count(*) FROM tasks") == TASKS
    assert report.counts["visits"] == one(q, "SELECT count(*) FROM visits")
    # A worker per grid, a leader and an admin per community, a viewer per district.
    assert one(q, "SELECT count(*) FROM users WHERE role = 'worker'") == GRIDS
    assert report.peak_rss_mb > 0 and report.total_seconds > 0


def test_codes_follow_the_15_digit_standard_and_the_tree(q):
    bad = q(
        """
        SELECT g.code FROM grids g
        JOIN communities c ON c.code = g.community_code
        JOIN streets s ON s.code = c.street_code
        JOIN districts d ON d.code = s.district_code
        WHERE g.code !~ '^[0-9]{15}$' OR left(g.code, 12) <> c.code
           OR left(c.code, 9) <> s.code OR left(s.code, 6) <> d.code
        """
    )
    assert bad == []
    assert one(q, "SELECT count(DISTINCT code) FROM grids") == GRIDS


def test_grid_polygons_are_valid_and_do_not_overlap(q):
    assert one(q, "SELECT count(*) FROM grids WHERE NOT ST_IsValid(boundary)") == 0
    overlap = one(
        q,
        """
        SELECT coalesce(sum(ST_Area(ST_Intersection(a.boundary, b.boundary)::geography)), 0)
        FROM grids a JOIN grids b ON a.id < b.id AND ST_Intersects(a.boundary, b.boundary)
        """,
    )
    assert overlap < 1.0  # square metres: shared edges only


def test_every_household_lies_in_its_grid(q):
    outside = one(
        q,
        "SELECT count(*) FROM households h JOIN grids g ON g.id = h.grid_id "
        "WHERE NOT ST_Covers(g.boundary, h.location)",
    )
    assert outside == 0


def test_households_carry_kinds_and_care_tags_in_realistic_shares(q):
    business = one(q, "SELECT avg((kind = 'business')::int) FROM households")
    assert 0.03 <= business <= 0.07
    tagged = one(q, "SELECT avg((cardinality(tags) > 0)::int) FROM households")
    assert 0.05 <= tagged <= 0.40


def test_phones_are_stored_encrypted(q):
    stored = one(q, "SELECT phone FROM households WHERE phone IS NOT NULL LIMIT 1")
    assert stored.startswith("v1:")
    assert len(decrypt(stored)) == 11


def test_visits_fall_in_the_weeks_asked_and_before_now(q):
    weeks = {w for (w,) in q("SELECT DISTINCT week FROM visits")}
    assert weeks == {"2026-W46", "2026-W47"}
    first, last = q("SELECT min(visited_at), max(visited_at) FROM visits")[0]
    assert first >= datetime(2026, 11, 8, 16, 0, tzinfo=UTC)  # Monday 9th 00:00 Beijing (W46)
    assert last < NOW
    mismatched = one(
        q,
        """
        SELECT count(*) FROM visits v JOIN households h ON h.id = v.household_id
        WHERE v.grid_id <> h.grid_id OR v.week <> to_char(v.visited_at AT TIME ZONE
              'Asia/Shanghai', 'IYYY-"W"IW')
           OR NOT EXISTS (SELECT 1 FROM user_grids ug WHERE ug.user_id = v.worker_id
                          AND ug.grid_id = v.grid_id)
        """,
    )
    assert mismatched == 0


def test_visits_were_received_by_the_server_before_now(q):
    """A visit is received (`received_at`, the server's clock at upload) after it was made and
    no later than now: the loader added an upload delay of up to 36 h to the last visits and
    wrote arrivals the server had not yet had, `delay_s` evidence included."""
    ahead, out_of_order, disagreeing = q(
        """
        SELECT count(*) FILTER (WHERE received_at > :now),
               count(*) FILTER (WHERE received_at < visited_at),
               count(*) FILTER (WHERE (evidence->>'delay_s')::int
                                      <> extract(epoch FROM received_at - visited_at)::int)
        FROM visits
        """,
        now=NOW,
    )[0]
    assert (ahead, out_of_order, disagreeing) == (0, 0, 0)


def test_every_worker_rests_a_day_a_week(q):
    """A worker rests at least a day a week (rosters keep min_rest_days_per_week = 1, Labour
    Law art. 38): the loader put the second weekly visit of people living alone on Sunday, so
    every worker was at the doors seven days a week."""
    worked = q(
        "SELECT worker_id, week, count(DISTINCT (visited_at AT TIME ZONE 'Asia/Shanghai')::date) "
        "FROM visits GROUP BY 1, 2"
    )
    assert worked
    assert max(days for _, _, days in worked) <= 6


def test_visit_evidence_agrees_with_the_grade(q):
    rows = q(
        "SELECT grade, reasons, (evidence->>'distance_to_household_m')::float, "
        "ST_Distance(v.location::geography, h.location::geography) "
        "FROM visits v JOIN households h ON h.id = v.household_id"
    )
    assert {g for g, *_ in rows} >= {"ok"}
    for grade, reasons, recorded, actual in rows:
        assert (grade == "ok") == (reasons == [])
        assert abs(recorded - actual) < max(2.0, 0.02 * actual)


def test_visit_evidence_measures_the_grid_as_the_ingest_does(q):
    """A fix taken away from the door can lie outside the grid: the ingest records how far
    (`distance_to_grid_m`) and, beyond the tolerance and the fix's accuracy, `outside_grid`
    (doubtful at least). The loader wrote 0 m and no reason for every visit."""
    from geo.evidence import DEFAULT_RULES

    rows = q(
        "SELECT grade, reasons, (evidence->>'distance_to_grid_m')::float, accuracy_m, "
        "ST_Distance(v.location::geography, g.boundary::geography) "
        "FROM visits v JOIN grids g ON g.id = v.grid_id"
    )
    outside = 0
    for grade, reasons, recorded, accuracy, actual in rows:
        assert abs(recorded - actual) < max(2.0, 0.02 * actual)
        far = actual - accuracy > DEFAULT_RULES.grid_tolerance_m
        assert ("outside_grid" in reasons) == far
        if far:
            outside += 1
            assert grade != "ok"
    assert outside > 0


def test_a_workers_visits_follow_one_another_at_walking_pace(q):
    """A worker goes from door to door: the ingest grades a visit `impossible_speed` when it is
    farther from the worker's previous one than 42 m/s allows. The loader drew each visit's
    time of day on its own, so a worker was at two ends of the grid in the same second."""
    from geo.evidence import DEFAULT_RULES

    too_fast, same_minute = q(
        """
        WITH v AS (
            SELECT visited_at, location, accuracy_m,
                   lag(visited_at) OVER w AS before_at, lag(location) OVER w AS before,
                   lag(accuracy_m) OVER w AS before_accuracy
            FROM visits WINDOW w AS (PARTITION BY worker_id ORDER BY visited_at, id)
        ), m AS (
            SELECT ST_Distance(location::geography, before::geography) AS d,
                   extract(epoch FROM visited_at - before_at) AS s,
                   accuracy_m + before_accuracy AS slack
            FROM v WHERE before_at IS NOT NULL
        )
        SELECT count(*) FILTER (WHERE d > slack AND (s = 0 OR d / s > :max_speed)),
               count(*) FILTER (WHERE s < 60)
        FROM m
        """,
        max_speed=DEFAULT_RULES.max_speed_mps,
    )[0]
    assert (too_fast, same_minute) == (0, 0)


def test_derived_rows_are_filled(q):
    # One open boundary version per grid; every grid has its community's leader.
    assert one(q, "SELECT count(*) FROM grid_versions WHERE valid_to IS NULL") == GRIDS
    assert one(q, "SELECT count(*) FROM grids WHERE leader_id IS NULL") == 0
    # Every follow-up visit became its task, as task_from_visit does at ingest.
    orphans = one(
        q,
        "SELECT count(*) FROM visits v WHERE v.follow_up "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.visit_id = v.id)",
    )
    assert orphans == 0


def test_a_follow_up_task_describes_what_its_visit_noted(q):
    """task_from_visit puts the visit's follow-up note into the task's (sealed) description:
    the worker who opens the task reads what to follow up. The loader left it empty."""
    rows = q(
        "SELECT t.description, v.follow_up_note FROM tasks t JOIN visits v ON v.id = t.visit_id"
    )
    assert rows
    for description, note in rows:
        assert description.startswith("v1:")
        assert decrypt(description) == decrypt(note)


def test_a_follow_up_task_is_on_the_list_its_visit_named(q):
    """task_from_visit puts the task on its visit's list (a follow-up of no kind: the need
    list); a task of another source is on none, a visit without a follow-up names none."""
    rows = q(
        """SELECT t.source, t.list_kind, v.follow_up_kind
           FROM tasks t LEFT JOIN visits v ON v.id = t.visit_id"""
    )
    assert {(s, k, v) for s, k, v in rows if s == "visit"} == {("visit", "need", "need")}
    assert {k for s, k, _ in rows if s != "visit"} == {None}
    assert (
        one(q, "SELECT count(*) FROM visits WHERE follow_up_kind IS NOT NULL AND NOT follow_up")
        == 0
    )


def test_fewer_tasks_than_follow_ups_leaves_no_flagged_visit_without_its_task(database_url, q):
    """The API makes a flagged visit's task in its transaction: a city asked for fewer tasks
    than it has follow-up visits loads the others as visits that asked for none."""
    flagged = one(q, "SELECT count(*) FROM visits WHERE follow_up")
    assert flagged > 1  # the same seed's visits: more follow-ups than the one task below
    url = create_database(sibling_url(database_url, "_city_few_tasks"))
    try:
        _load(url, tasks=1)
        engine = create_engine(url)
        with engine.connect() as conn:
            orphans, kept = conn.execute(
                text(
                    """SELECT count(*) FILTER (WHERE t.id IS NULL), count(*)
                       FROM visits v LEFT JOIN tasks t ON t.visit_id = v.id
                       WHERE v.follow_up"""
                )
            ).one()
        engine.dispose()
        assert (orphans, kept) == (0, 1)
    finally:
        drop_database(url)


def test_the_register_and_the_grids_are_there_from_the_first_week_of_visits(city_url, q):
    """The grids, households and workers' grids were stamped with the load's time: a city with
    weeks of visits whose past weeks the report (and the map) read as having no grid at all."""
    from api.services import reports

    monday = datetime(2026, 11, 8, 16, 0, tzinfo=UTC)  # W46, the first week of visits
    for table, column in (
        ("grid_versions", "valid_from"),
        ("grids", "created_at"),
        ("households", "created_at"),
        ("household_history", "valid_from"),
        ("grid_holdings", "started_at"),
    ):
        assert one(q, f"SELECT max({column}) FROM {table}") <= monday, table
    engine = create_engine(city_url[0])
    with Session(engine) as session:
        district = one(q, "SELECT min(code) FROM districts")
        selection = reports.select_scope(session, None, "2026-W46", district=district)
        report = reports.coverage_report(session, selection, "2026-W46", now=NOW)
    engine.dispose()
    assert len(report["grids"]) == GRIDS
    assert sum(g["households"] for g in report["grids"]) == HOUSEHOLDS
    assert sum(g["visited"] for g in report["grids"]) > 0


def test_tasks_have_an_event_trail_ending_in_their_status(q):
    bad = one(
        q,
        """
        SELECT count(*) FROM tasks t
        WHERE t.status <> (SELECT e.to_status FROM task_events e WHERE e.task_id = t.id
                           ORDER BY e.at DESC, e.id DESC LIMIT 1)
           OR t.created_at > :now
           OR (t.status = 'closed') <> (t.closed_at IS NOT NULL)
        """,
        now=NOW,
    )
    assert bad == 0


def test_tasks_come_after_the_register_they_are_about(q):
    """A task is made about a household in a grid: never before the grid and the household were
    registered. The loader spread tasks over `weeks` x 7 days back from now, which reaches up to
    six days before the first week's Monday, where the register begins."""
    early = one(
        q,
        """
        SELECT count(*) FROM tasks t
        JOIN households h ON h.id = t.household_id JOIN grids g ON g.id = t.grid_id
        WHERE t.created_at < h.created_at OR t.created_at < g.created_at
           OR EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id
                      AND (e.at < t.created_at OR e.at > :now))
        """,
        now=NOW,
    )
    assert early == 0


def test_the_deadline_tick_finds_nothing_owed_in_a_fresh_city(city_url):
    """The tick runs every minute: by the load's time it had warned every held task at 80 % of
    its time and escalated every open one at its deadline. The loader walked tasks past their
    deadlines with neither, so the first tick after a load escalated and warned them all at
    once (a flood of urgent notifications, and deadline escalations dated the load's day). So
    with the first contact: each task not contacted in time was warned and its miss told."""
    from api.services import tasks

    engine = create_engine(city_url[0])
    with Session(engine) as session:
        result = tasks.tick(session, NOW)
        session.rollback()
    engine.dispose()
    assert (result.escalated, result.warned) == (0, 0)
    assert (result.contact_warned, result.contact_overdue) == (0, 0)


def test_a_task_resolved_after_its_deadline_was_escalated_at_the_deadline(q):
    """What the tick did is in the trail: a task still open when its deadline passed has the
    tick's escalation (no actor) at its deadline, and its later steps are legal from there."""
    late, unescalated = q(
        """
        SELECT count(*),
               count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM task_events e WHERE e.task_id = t.id AND e.action = 'escalate'
                   AND e.actor_id IS NULL AND e.at = t.due_at))
        FROM tasks t WHERE t.due_at <= coalesce(t.resolved_at, :now)
        """,
        now=NOW,
    )[0]
    assert late > 0
    assert unescalated == 0


def test_a_task_contacted_late_was_warned_and_told_as_the_tick_does(q):
    """A task first contacted after its first-contact deadline was warned at 80 % of that time
    and its miss noted at the deadline, as the minute tick would have (contact_warned_at,
    contact_overdue_at); one contacted in time was not noted missed."""
    late, unwarned, untold, told_in_time = q(
        """
        SELECT count(*) FILTER (WHERE late),
               count(*) FILTER (WHERE late AND contact_warned_at IS NULL),
               count(*) FILTER (WHERE late
                                AND contact_overdue_at IS DISTINCT FROM first_contact_due_at),
               count(*) FILTER (WHERE NOT late AND contact_overdue_at IS NOT NULL)
        FROM (SELECT *, first_contact_at > first_contact_due_at AS late
              FROM tasks WHERE first_contact_at IS NOT NULL) t
        """
    )[0]
    assert late > 0
    assert (unwarned, untold, told_in_time) == (0, 0, 0)


def test_task_events_carry_the_notes_the_app_writes(q):
    """A return says why (the app refuses one without a note); the tick's escalation at the
    deadline says "deadline passed". The loader left every note empty."""
    rows = q(
        "SELECT e.action, e.actor_id IS NULL, e.note FROM task_events e "
        "WHERE e.action IN ('return', 'escalate')"
    )
    assert {action for action, _, _ in rows} == {"return", "escalate"}
    for action, by_tick, note in rows:
        if action == "return":
            assert decrypt(note).strip()
        elif by_tick:
            assert decrypt(note) == "deadline passed"


def test_each_task_event_is_a_legal_step_from_the_one_before(q):
    from api.services.tasks import REASSIGNABLE, TRANSITIONS

    trails: dict[int, list] = {}
    for task_id, action, before, to in q(
        "SELECT task_id, action, from_status, to_status FROM task_events ORDER BY task_id, at, id"
    ):
        trails.setdefault(task_id, []).append((action, before, to))
    illegal = []
    for task_id, trail in trails.items():
        status = None
        for action, before, to in trail:
            if action == "create":
                ok = status is None and to == "new"
            elif action == "dispatch":
                ok = before == status == "new" and to == "dispatched"
            elif action == "assign":
                ok = before == status and status in REASSIGNABLE and to == "dispatched"
            elif action == "escalate" and before == status == "escalated":
                ok = to == "escalated"  # the deadline's escalation after the worker's own
            else:
                rule = TRANSITIONS.get(action, {}).get(status)
                ok = before == status and rule is not None and rule.to == to
            if not ok:
                illegal.append((task_id, status, action, before, to))
            status = to
    assert illegal == []


def test_sequences_continue_after_the_loaded_ids(q):
    assert one(q, "SELECT nextval('households_id_seq')") > HOUSEHOLDS
    assert one(q, "SELECT nextval('grids_id_seq')") > GRIDS


def test_loading_twice_is_refused(city_url):
    with pytest.raises(CityAlreadyLoaded):
        _load(city_url[0])


def test_the_command_refuses_a_loaded_database_and_names_replace(city_url, q, monkeypatch):
    from api.cli import main

    monkeypatch.setenv("DATABASE_URL", city_url[0])
    monkeypatch.setenv("GRIDWORK_ENV", "development")
    result = CliRunner().invoke(main, ["seed", "city", "--grids", "6", "--households", "600"])
    assert result.exit_code == 1
    assert "--replace" in result.output
    assert one(q, "SELECT count(*) FROM data_keys") == 0  # refused before sealing anything


def test_each_household_last_visit_is_kept(q):
    wrong = one(
        q,
        """
        SELECT count(*) FROM households h
        LEFT JOIN household_last_visits s ON s.household_id = h.id
        WHERE s.last_attempt_at IS DISTINCT FROM
              (SELECT max(visited_at) FROM visits v WHERE v.household_id = h.id)
           OR s.last_visited_at IS DISTINCT FROM
              (SELECT max(visited_at) FROM visits v
               WHERE v.household_id = h.id AND v.outcome <> 'nobody_home')
        """,
    )
    assert wrong == 0


def test_replace_empties_and_loads_the_same_city_again(city_url, q):
    before = q("SELECT count(*), min(code), max(code) FROM grids")
    visits = one(q, "SELECT count(*) FROM visits")
    report = _load(city_url[0], replace=True)
    assert q("SELECT count(*), min(code), max(code) FROM grids") == before
    assert one(q, "SELECT count(*) FROM visits") == visits == report.counts["visits"]
    assert one(q, "SELECT count(*) FROM households") == HOUSEHOLDS
