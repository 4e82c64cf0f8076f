"""Roster decisions under real concurrency: two requests for one change, the second is told.

Each test races two requests that would both pass a read-then-write check. A third connection
holds the row the service must lock, so both requests are in flight before either decides;
once it lets go, the first decides and the second must see that decision (409), not
overwrite it or add a second copy.

The requests commit, so this module works in a database of its own (migrated to head, dropped
at the end), each test in a community of its own.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, text

from api.models import Leave, Notification, ShiftChange, ShiftSwap
from api.services import rosters as roster_service
from api.services.weeks import week_dates
from tests import races
from tests.factories import RosterCommunity, build_app, make_roster_community

WEEK = "2026-W48"
MON = week_dates(WEEK)[0]
BEFORE_THE_WEEK = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # the week's shifts lie ahead
_codes = itertools.count(1)


@dataclass
class Live:
    app: Flask
    c: RosterCommunity

    def post(self, path: str, user, json: dict | None = None):
        with self.app.test_client() as client:
            return client.post(path, json=json, headers=self.c.auth(user))

    def put(self, path: str, user, json: dict):
        with self.app.test_client() as client:
            return client.put(path, json=json, headers=self.c.auth(user))

    def patch(self, path: str, user, json: dict):
        with self.app.test_client() as client:
            return client.patch(path, json=json, headers=self.c.auth(user))

    def scalar(self, query):
        from api.extensions import db

        with self.app.app_context(), db.engine.connect() as conn:
            return conn.scalar(query)


@pytest.fixture()
def live(own_database_url):
    """A committed community of four workers (the first a leader) over two grids."""
    from api.extensions import db

    app = build_app(own_database_url, FIXED_NOW=BEFORE_THE_WEEK)
    with app.app_context(), db.begin() as session:
        c = make_roster_community(
            session, app, 4, 2, code=f"110109009{next(_codes):03d}", roster={"a_min": 1, "a_max": 1}
        )
    yield Live(app, c)
    db.engine.dispose()


def race(live: Live, lock_sql: str, params: dict, *requests: Callable):
    from api.extensions import db

    with live.app.app_context():
        return races.race(db.engine, lock_sql, params, *requests)


def wait_for_lock_waits(live: Live, n: int) -> None:
    from api.extensions import db

    with live.app.app_context():
        races.wait_for_lock_waits(db.engine, n)


def draft_roster(live: Live) -> dict:
    c = live.c
    return live.post(f"/api/v1/communities/{c.code}/rosters", c.leader, {"week": WEEK}).get_json()


def published_roster(live: Live) -> dict:
    c = live.c
    view = draft_roster(live)
    assert live.post(f"/api/v1/rosters/{view['id']}/publish", c.leader).status_code == 200
    return view


def test_two_publishes_at_once_notify_each_worker_once(live):
    c = live.c
    view = draft_roster(live)
    path = f"/api/v1/rosters/{view['id']}/publish"
    answers = race(
        live,
        "SELECT 1 FROM rosters WHERE id = :id FOR UPDATE",
        {"id": view["id"]},
        lambda: live.post(path, c.leader),
        lambda: live.post(path, c.admin),
    )
    assert sorted(r.status_code for r in answers) == [200, 409]
    notices = live.scalar(
        select(func.count()).where(
            Notification.kind == "roster_published",
            Notification.collapse_key == f"roster:{view['id']}",
        )
    )
    workers_on_roster = len({s["worker_id"] for d in view["days"] for p in "AB" for s in d[p]})
    assert notices == workers_on_roster


def test_two_leaders_deciding_one_leave_the_second_is_told_the_first_decision(live):
    c = live.c
    leave = live.post(
        "/api/v1/leaves",
        c.workers[2],
        {"start_date": str(MON), "end_date": str(MON), "reason": "家事"},
    ).get_json()
    path = f"/api/v1/leaves/{leave['id']}/decision"
    answers = race(
        live,
        "SELECT 1 FROM leaves WHERE id = :id FOR UPDATE",
        {"id": leave["id"]},
        lambda: live.post(path, c.leader, {"decision": "approve"}),
        lambda: live.post(path, c.admin, {"decision": "reject"}),
    )
    assert sorted(r.status_code for r in answers) == [200, 409]
    decided = next(r for r in answers if r.status_code == 200).get_json()
    stored = live.scalar(select(Leave.status).where(Leave.id == leave["id"]))
    assert stored == decided["status"]


def test_a_worker_withdrawing_leave_while_a_leader_decides_it_ends_cancelled(live):
    """Whichever goes first, the worker's cancel is not overwritten: an approval that came
    first is cancelled after it (200, 200); one that comes second finds it cancelled (409)."""
    c = live.c
    worker = c.workers[2]
    leave = live.post(
        "/api/v1/leaves", worker, {"start_date": str(MON), "end_date": str(MON), "reason": "家事"}
    ).get_json()
    answers = race(
        live,
        "SELECT 1 FROM leaves WHERE id = :id FOR UPDATE",
        {"id": leave["id"]},
        lambda: live.post(
            f"/api/v1/leaves/{leave['id']}/decision", c.leader, {"decision": "approve"}
        ),
        lambda: live.post(f"/api/v1/leaves/{leave['id']}/cancel", worker),
    )
    decided, cancelled = (r.status_code for r in answers)
    assert cancelled == 200
    assert decided in (200, 409)
    assert live.scalar(select(Leave.status).where(Leave.id == leave["id"])) == "cancelled"


def test_two_early_ends_at_once_keep_the_approved_last_day(live):
    """Each reads the leave after the other: the earlier last day wins whatever the order
    (Tuesday after Wednesday shortens it again; Wednesday after Tuesday is no shortening, 422),
    and the last day as approved stays Friday rather than the first end's."""
    c = live.c
    worker = c.workers[2]
    mon, tue, wed, _thu, fri = week_dates(WEEK)[:5]
    leave = live.post(
        "/api/v1/leaves", worker, {"start_date": str(mon), "end_date": str(fri), "reason": "病"}
    ).get_json()
    path = f"/api/v1/leaves/{leave['id']}/decision"
    assert live.post(path, c.leader, {"decision": "approve"}).status_code == 200
    path = f"/api/v1/leaves/{leave['id']}/end"
    answers = race(
        live,
        "SELECT 1 FROM leaves WHERE id = :id FOR UPDATE",
        {"id": leave["id"]},
        lambda: live.post(path, worker, {"last_day": str(wed)}),
        lambda: live.post(path, c.leader, {"last_day": str(tue)}),
    )
    assert sorted(r.status_code for r in answers) in ([200, 200], [200, 422])
    last_day = live.scalar(select(Leave.end_date).where(Leave.id == leave["id"]))
    approved = live.scalar(select(Leave.approved_end_date).where(Leave.id == leave["id"]))
    assert (last_day, approved) == (tue, fri)


def test_a_leave_request_sent_twice_at_once_is_stored_once(live):
    c = live.c
    worker = c.workers[2]
    body = {"start_date": str(MON), "end_date": str(MON), "reason": "家事"}
    answers = race(
        live,
        "SELECT 1 FROM users WHERE id = :id FOR NO KEY UPDATE",
        {"id": worker.id},
        lambda: live.post("/api/v1/leaves", worker, body),
        lambda: live.post("/api/v1/leaves", worker, body),
    )
    assert sorted(r.status_code for r in answers) == [201, 409]
    assert live.scalar(select(func.count()).where(Leave.worker_id == worker.id)) == 1


def test_a_swap_request_sent_twice_at_once_opens_one_swap(live):
    view = published_roster(live)
    shifts = [s for d in view["days"] if d["date"] == str(MON) for p in "AB" for s in d[p]]
    a, b = shifts[0], next(s for s in shifts if s["worker_id"] != shifts[0]["worker_id"])
    worker = next(w for w in live.c.workers if w.id == a["worker_id"])
    path = f"/api/v1/shifts/{a['id']}/swap"
    answers = race(
        live,
        "SELECT 1 FROM shifts WHERE id IN (:a, :b) FOR UPDATE",
        {"a": a["id"], "b": b["id"]},
        lambda: live.post(path, worker, {"with_shift_id": b["id"]}),
        lambda: live.post(path, worker, {"with_shift_id": b["id"]}),
    )
    assert sorted(r.status_code for r in answers) == [201, 409]
    assert live.scalar(select(func.count()).where(ShiftSwap.shift_id == a["id"])) == 1


def test_an_edit_made_while_the_roster_is_being_published_is_logged_and_notified(live, monkeypatch):
    """The publish has read the shifts and is about to commit; an edit of a shift then waits
    for it, and is a published roster's change: logged, and its worker told."""
    c = live.c
    view = draft_roster(live)
    shift = next(s for d in view["days"] for s in d["B"])
    other_grid = next(g.code for g in c.grids if g.code != shift["grid_code"])
    paused, go = threading.Event(), threading.Event()
    real_notify = roster_service.notify

    def notify(session, workers, kind, *args, **kwargs):
        real_notify(session, workers, kind, *args, **kwargs)
        if kind == "roster_published":  # the publish's notices are written: hold its commit
            paused.set()
            assert go.wait(30)

    monkeypatch.setattr(roster_service, "notify", notify)
    with ThreadPoolExecutor(2) as pool:
        published = pool.submit(live.post, f"/api/v1/rosters/{view['id']}/publish", c.leader)
        assert paused.wait(30)
        edited = pool.submit(
            live.patch, f"/api/v1/shifts/{shift['id']}", c.admin, {"grid_code": other_grid}
        )
        wait_for_lock_waits(live, 1)
        go.set()
        assert (published.result(30).status_code, edited.result(30).status_code) == (200, 200)
    logged = live.scalar(select(func.count()).where(ShiftChange.shift_id == shift["id"]))
    told = live.scalar(
        select(func.count()).where(
            Notification.kind == "roster_changed", Notification.user_id == shift["worker_id"]
        )
    )
    assert (logged, told) == (1, 1)


def test_a_swap_accepted_while_its_shift_is_handed_on_does_not_overwrite_the_hand_on(live):
    """The accept read the shifts before a leader's edit committed: it must wait for the edit
    and see it (409), not exchange the workers over it and lose the stand-in."""
    from api.extensions import db
    from api.models import Shift

    c = live.c
    view = published_roster(live)
    monday = [s for d in view["days"] if d["date"] == str(MON) for p in "AB" for s in d[p]]
    a = monday[0]
    b = next(s for s in monday if s["worker_id"] != a["worker_id"])
    requester = next(w for w in c.workers if w.id == a["worker_id"])
    other = next(w for w in c.workers if w.id == b["worker_id"])
    stand_in = next(w for w in c.workers if w.id not in (requester.id, other.id))
    swap = live.post(f"/api/v1/shifts/{a['id']}/swap", requester, {"with_shift_id": b["id"]})
    assert swap.status_code == 201
    with live.app.app_context(), db.engine.begin() as conn:  # the stand-in is free on Monday
        conn.execute(delete(Shift).where(Shift.worker_id == stand_in.id, Shift.date == MON))
    with live.app.app_context(), db.engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM shifts WHERE id = :id FOR UPDATE"), {"id": a["id"]})
        with ThreadPoolExecutor(2) as pool:
            edited = pool.submit(
                live.patch, f"/api/v1/shifts/{a['id']}", c.leader, {"worker_id": stand_in.id}
            )
            wait_for_lock_waits(live, 1)  # the edit queues first for the shift
            accepted = pool.submit(
                live.post, f"/api/v1/swaps/{swap.get_json()['id']}/accept", other
            )
            wait_for_lock_waits(live, 2)
            holder.commit()
            answers = (edited.result(30).status_code, accepted.result(30).status_code)
    assert answers == (200, 409)
    held = live.scalar(select(Shift.worker_id).where(Shift.id == a["id"]))
    assert held == stand_in.id
    status = live.scalar(select(ShiftSwap.status).where(ShiftSwap.id == swap.get_json()["id"]))
    assert status == "cancelled"


def test_a_shift_handed_to_a_worker_whose_leave_is_being_approved_is_listed_to_reassign(
    live, monkeypatch
):
    """A leader hands Monday's shift to a worker while another approves the worker's Monday
    leave. The edit has found no approved leave and is about to commit; the approval then
    waits for it and lists the shift to hand on. Before, the approval read the shifts without
    it: the worker was rostered on approved leave and nobody was told."""

    from api.extensions import db
    from api.models import Shift

    c = live.c
    view = published_roster(live)
    worker = c.workers[2]
    leave = live.post(
        "/api/v1/leaves", worker, {"start_date": str(MON), "end_date": str(MON), "reason": "病"}
    ).get_json()
    with live.app.app_context(), db.engine.begin() as conn:  # the worker is free on Monday
        conn.execute(delete(Shift).where(Shift.worker_id == worker.id, Shift.date == MON))
    shift = next(
        s
        for d in view["days"]
        if d["date"] == str(MON)
        for p in "AB"
        for s in d[p]
        if s["worker_id"] != worker.id
    )
    paused, go = threading.Event(), threading.Event()
    real_notify = roster_service.notify

    def notify(session, workers, kind, *args, **kwargs):
        real_notify(session, workers, kind, *args, **kwargs)
        if kind == "roster_changed":  # the edit passed its checks: hold its commit
            paused.set()
            assert go.wait(30)

    monkeypatch.setattr(roster_service, "notify", notify)
    with ThreadPoolExecutor(2) as pool:
        edited = pool.submit(
            live.patch, f"/api/v1/shifts/{shift['id']}", c.leader, {"worker_id": worker.id}
        )
        assert paused.wait(30)
        decided = pool.submit(
            live.post, f"/api/v1/leaves/{leave['id']}/decision", c.admin, {"decision": "approve"}
        )
        _until_it_waits(live, decided)
        go.set()
        edit, decision = edited.result(30), decided.result(30)
    assert (edit.status_code, decision.status_code) == (200, 200)
    listed = [s["id"] for s in decision.get_json()["shifts_to_reassign"]]
    assert shift["id"] in listed


def test_leave_approved_while_the_week_is_being_generated_lists_the_new_drafts_shifts(
    live, monkeypatch
):
    """A leader regenerates the week while another approves a worker's Monday leave. The
    generation read the leave still requested and is solving; the approval then waits for it
    and lists the new draft's Monday shift to hand on. Before, the approval listed the old
    draft's shifts (which the generation deleted) and the new draft rostered the worker on
    approved leave, nobody told."""

    from api.extensions import db
    from api.models import Roster, Shift

    c = live.c
    draft_roster(live)
    worker = c.workers[2]
    leave = live.post(
        "/api/v1/leaves", worker, {"start_date": str(MON), "end_date": str(MON), "reason": "病"}
    ).get_json()
    paused, go = threading.Event(), threading.Event()
    real_solve = roster_service.solve_week

    def solve_week(inp, **options):
        result = real_solve(inp, **options)
        paused.set()  # the generation has read the leave and solved: hold its commit
        assert go.wait(30)
        return result

    monkeypatch.setattr(roster_service, "solve_week", solve_week)
    with ThreadPoolExecutor(2) as pool:
        generated = pool.submit(
            live.post, f"/api/v1/communities/{c.code}/rosters", c.leader, {"week": WEEK}
        )
        assert paused.wait(30)
        decided = pool.submit(
            live.post, f"/api/v1/leaves/{leave['id']}/decision", c.admin, {"decision": "approve"}
        )
        _until_it_waits(live, decided)
        go.set()
        generation, decision = generated.result(30), decided.result(30)
    assert (generation.status_code, decision.status_code) == (201, 200)
    with live.app.app_context(), db.engine.connect() as conn:
        on_leave = set(
            conn.scalars(
                select(Shift.id)
                .join(Roster, Roster.id == Shift.roster_id)
                .where(
                    Roster.community_code == c.code, Shift.worker_id == worker.id, Shift.date == MON
                )
            )
        )
    listed = {s["id"] for s in decision.get_json()["shifts_to_reassign"]}
    assert on_leave <= listed


def _until_it_waits(live, request) -> None:
    """Until `request` (a future) waits on a lock in the database, or is done (20 s at most)."""
    import time

    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 20
    while not request.done() and not live.scalar(waiting) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_swap_approved_while_its_worker_is_switched_off_is_listed_in_shifts_ahead(
    live, monkeypatch
):
    """A leader approves a swap that gives Monday to a worker while an admin switches that
    worker off. The approval has found the worker active and is about to commit; the
    switch-off then waits for it and lists Monday in `shifts_ahead`. Before, the switch-off
    went through at once and listed the days the worker held before the swap: Monday ended
    with a switched-off account, and nobody was told to hand it on."""
    from api.extensions import db
    from api.models import Shift, User

    c = live.c
    view = published_roster(live)
    moving, leaving = c.workers[2], c.workers[3]
    tue = week_dates(WEEK)[1]
    with live.app.app_context(), db.engine.begin() as conn:  # each is free on one of the days
        conn.execute(delete(Shift).where(Shift.worker_id == leaving.id, Shift.date == MON))
        conn.execute(delete(Shift).where(Shift.worker_id == moving.id, Shift.date == tue))
    shifts = [s for d in view["days"] for p in "AB" for s in d[p]]
    mine = next(s for s in shifts if s["worker_id"] == moving.id and s["date"] == str(MON))
    theirs = next(s for s in shifts if s["worker_id"] == leaving.id and s["date"] == str(tue))
    swap = live.post(f"/api/v1/shifts/{mine['id']}/swap", moving, {"with_shift_id": theirs["id"]})
    assert swap.status_code == 201, swap.get_json()
    paused, go = threading.Event(), threading.Event()
    real_notify = roster_service.notify

    def notify(session, workers, kind, *args, **kwargs):
        real_notify(session, workers, kind, *args, **kwargs)
        if kind == "roster_changed":  # the exchange passed its checks: hold its commit
            paused.set()
            assert go.wait(30)

    monkeypatch.setattr(roster_service, "notify", notify)
    with ThreadPoolExecutor(2) as pool:
        approved = pool.submit(live.post, f"/api/v1/swaps/{swap.get_json()['id']}/accept", c.leader)
        assert paused.wait(30)
        switched = pool.submit(
            lambda: live.app.test_client().patch(
                f"/api/v1/users/{leaving.id}", json={"active": False}, headers=c.auth(c.admin)
            )
        )
        _until_it_waits(live, switched)
        go.set()
        approval, switch_off = approved.result(30), switched.result(30)
    assert (approval.status_code, switch_off.status_code) == (200, 200), switch_off.get_json()
    assert live.scalar(select(User.active).where(User.id == leaving.id)) is False
    assert live.scalar(select(Shift.worker_id).where(Shift.id == mine["id"])) == leaving.id
    assert str(MON) in switch_off.get_json()["shifts_ahead"]


def test_a_swap_onto_leave_accepted_while_the_leave_is_approved_ends_cancelled_and_told(
    live, monkeypatch
):
    """The approval holds the worker's leave; the worker accepts a swap that would hand them a
    day of it. The approval skipped the swap the accept held (waiting for it closed a circle),
    the accept was refused, and the swap stayed open onto approved leave, nobody told: its
    other worker could offer the shift to nobody else until the day passed. Now the accept
    waits for the leave before it takes the swap, and the approval cancels the swap and tells
    its workers, as it does for any swap onto the leave. The accept waits for the leave before
    it takes the swap (else the two would wait for each other, one of them answered 503), and
    the shift stays with the worker on leave."""
    from api.models import Shift

    c = live.c
    view = published_roster(live)
    monday = [s for d in view["days"] if d["date"] == str(MON) for p in "AB" for s in d[p]]
    a = next(s for s in monday if s["worker_id"] != c.leader.id)
    b = next(s for s in monday if s["worker_id"] not in (c.leader.id, a["worker_id"]))
    requester = next(w for w in c.workers if w.id == a["worker_id"])
    away = next(w for w in c.workers if w.id == b["worker_id"])
    swap = live.post(f"/api/v1/shifts/{a['id']}/swap", requester, {"with_shift_id": b["id"]})
    assert swap.status_code == 201, swap.get_json()
    swap_id = swap.get_json()["id"]
    leave = live.post(
        "/api/v1/leaves", away, {"start_date": str(MON), "end_date": str(MON), "reason": "病"}
    ).get_json()
    paused, go = threading.Event(), threading.Event()
    real_notify = roster_service.notify

    def notify(session, workers, kind, *args, **kwargs):
        real_notify(session, workers, kind, *args, **kwargs)
        if kind == "leave_decided":  # the approval holds the leave: hold it there
            paused.set()
            assert go.wait(30)

    monkeypatch.setattr(roster_service, "notify", notify)
    with ThreadPoolExecutor(2) as pool:
        decided = pool.submit(
            live.post, f"/api/v1/leaves/{leave['id']}/decision", c.admin, {"decision": "approve"}
        )
        assert paused.wait(30)
        accepted = pool.submit(live.post, f"/api/v1/swaps/{swap_id}/accept", away)
        _until_it_waits(live, accepted)
        go.set()
        decision, accept = decided.result(30), accepted.result(30)
    assert (decision.status_code, accept.status_code) == (200, 409), accept.get_json()
    assert live.scalar(select(Shift.worker_id).where(Shift.id == b["id"])) == away.id
    assert live.scalar(select(ShiftSwap.status).where(ShiftSwap.id == swap_id)) == "cancelled"
    told = live.scalar(
        select(func.count()).where(
            Notification.kind == "shift_swap_cancelled",
            Notification.collapse_key == f"swap:{swap_id}",
            Notification.user_id == requester.id,
        )
    )
    assert told == 1


def test_two_edits_of_one_shift_are_logged_in_the_order_they_were_made(live, monkeypatch):
    """A leader's edit began first but waited for the shift while another leader's edit of it
    went through. The change log listed them by the start of their transactions: the edit
    made last read first, and its last entry was not the shift as it stands."""
    c = live.c
    view = published_roster(live)
    shift = next(s for d in view["days"] for s in d["B"])
    other_grid = next(g.code for g in c.grids if g.code != shift["grid_code"])
    paused, go = threading.Event(), threading.Event()
    real_get_shift = roster_service.get_shift
    held = []

    def get_shift(session, scope, shift_id, *, lock=False):
        if lock and not held:  # the first edit has begun: hold it before it takes the shift
            held.append(True)
            paused.set()
            assert go.wait(30)
        return real_get_shift(session, scope, shift_id, lock=lock)

    monkeypatch.setattr(roster_service, "get_shift", get_shift)
    path = f"/api/v1/shifts/{shift['id']}"
    with ThreadPoolExecutor(1) as pool:
        began = pool.submit(live.patch, path, c.leader, {"post": "A"})
        assert paused.wait(30)
        made_first = live.patch(path, c.admin, {"grid_code": other_grid})
        go.set()
        made_last = began.result(30)
    assert (made_first.status_code, made_last.status_code) == (200, 200)
    with live.app.test_client() as client:
        log = client.get(
            f"/api/v1/rosters/{view['id']}/changes", headers=c.auth(c.leader)
        ).get_json()
    assert [(e["after"]["post"], e["after"]["grid_code"]) for e in log] == [
        ("B", other_grid),
        ("A", None),
    ]
    assert log[1]["before"] == log[0]["after"]


# --- the weekly rest under concurrency ----------------------------------------------------------

EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]
NEXT_WEEK = "2026-W49"


def _seven_day_week(live: Live, week: str = WEEK) -> dict:
    """A hall open every day, `week` published: each worker works at most six days of it."""
    c = live.c
    with live.app.test_client() as client:
        put = client.put(
            f"/api/v1/communities/{c.code}/roster-settings",
            json={"working_days": EVERY_DAY, "a_min": 1, "a_max": 1},
            headers=c.auth(c.admin),
        )
    assert put.status_code == 200, put.get_json()
    view = live.post(f"/api/v1/communities/{c.code}/rosters", c.leader, {"week": week}).get_json()
    assert live.post(f"/api/v1/rosters/{view['id']}/publish", c.leader).status_code == 200
    return view


def _shifts(view: dict) -> list[dict]:
    return [s for d in view["days"] for p in "AB" for s in d[p]]


def _leave_five_days(live: Live, view: dict, worker_id: int) -> list[str]:
    """Take the worker's shifts of the week down to five days (two free, one short of the
    limit of six); return their free days."""
    from api.extensions import db
    from api.models import Shift

    held = sorted(s["date"] for s in _shifts(view) if s["worker_id"] == worker_id)
    with live.app.app_context(), db.engine.begin() as conn:
        for day in held[5:]:
            conn.execute(
                delete(Shift).where(
                    Shift.worker_id == worker_id, Shift.date == date.fromisoformat(day)
                )
            )
    return [d["date"] for d in view["days"] if d["date"] not in held[:5]]


def _days_worked(live: Live, worker_id: int, week: str) -> int:
    from api.models import Shift

    dates = week_dates(week)
    return live.scalar(
        select(func.count(func.distinct(Shift.date))).where(
            Shift.worker_id == worker_id, Shift.date.between(dates[0], dates[-1])
        )
    )


def _second_while_first_is_held(live, monkeypatch, first, second) -> tuple:
    """Run `first` (a published change: an edit or a swap) and hold it once it has passed its
    checks and written; run `second` meanwhile, until it waits; let the first commit. Their
    answers, in that order."""
    paused, go = threading.Event(), threading.Event()
    real_notify = roster_service.notify

    def notify(session, workers, kind, *args, **kwargs):
        real_notify(session, workers, kind, *args, **kwargs)
        if kind == "roster_changed" and not paused.is_set():
            paused.set()
            assert go.wait(30)

    monkeypatch.setattr(roster_service, "notify", notify)
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(first)
        assert paused.wait(30)
        two = pool.submit(second)
        _until_it_waits(live, two)
        go.set()
        return one.result(30), two.result(30)


def test_two_edits_at_once_giving_a_worker_both_free_days_leave_them_their_rest(live, monkeypatch):
    """A worker holds five days of a seven-day week: two leaders each hand them one of the
    two free days. Each edit alone keeps the weekly rest (six days); both together left them
    seven days without rest, each checked before the other had committed. The second waits
    for the first, then sees its shift: a 409."""
    c = live.c
    view = _seven_day_week(live)
    worker = c.workers[3]
    free = _leave_five_days(live, view, worker.id)
    first, second = (
        next(s for s in _shifts(view) if s["date"] == day and s["worker_id"] != worker.id)
        for day in free[:2]
    )
    answers = _second_while_first_is_held(
        live,
        monkeypatch,
        lambda: live.patch(f"/api/v1/shifts/{first['id']}", c.leader, {"worker_id": worker.id}),
        lambda: live.patch(f"/api/v1/shifts/{second['id']}", c.admin, {"worker_id": worker.id}),
    )
    assert [r.status_code for r in answers] == [200, 409], answers[1].get_json()
    assert "rest" in answers[1].get_json()["detail"]
    assert _days_worked(live, worker.id, WEEK) == 6


def test_an_edit_and_a_swap_at_once_giving_a_worker_both_free_days_leave_them_their_rest(
    live, monkeypatch
):
    """A swap of a day of one week for a free day of the worker's next week is accepted while
    a leader hands the worker the other free day of that week. Each alone keeps six days;
    together they left seven. The edit waits for the accept, then is refused (409)."""
    from api.extensions import db
    from api.models import Shift

    c = live.c
    first_week = _seven_day_week(live)
    next_week = _seven_day_week(live, NEXT_WEEK)
    worker = c.workers[3]
    free = _leave_five_days(live, next_week, worker.id)
    taken = next(s for s in _shifts(next_week) if s["date"] == free[0])
    third = next(w for w in c.workers if w.id == taken["worker_id"])
    # The worker gives in exchange a day of the first week both work; the third worker's
    # shift that day is taken away, so they are free for it and stay within six days.
    theirs = {s["date"] for s in _shifts(first_week) if s["worker_id"] == third.id}
    given = next(
        s for s in _shifts(first_week) if s["worker_id"] == worker.id and s["date"] in theirs
    )
    with live.app.app_context(), db.engine.begin() as conn:
        conn.execute(
            delete(Shift).where(
                Shift.worker_id == third.id, Shift.date == date.fromisoformat(given["date"])
            )
        )
    swap = live.post(f"/api/v1/shifts/{given['id']}/swap", worker, {"with_shift_id": taken["id"]})
    assert swap.status_code == 201, swap.get_json()
    handed = next(
        s for s in _shifts(next_week) if s["date"] == free[1] and s["worker_id"] != worker.id
    )
    answers = _second_while_first_is_held(
        live,
        monkeypatch,
        lambda: live.post(f"/api/v1/swaps/{swap.get_json()['id']}/accept", third),
        lambda: live.patch(f"/api/v1/shifts/{handed['id']}", c.leader, {"worker_id": worker.id}),
    )
    assert [r.status_code for r in answers] == [200, 409], answers[1].get_json()
    assert "rest" in answers[1].get_json()["detail"]
    assert _days_worked(live, worker.id, NEXT_WEEK) == 6


def test_roster_settings_saved_while_another_setting_changes_keep_that_change(live):
    """The community's settings hold the roster's, the visit cadence and the tasks' deadlines
    side by side (one JSONB). A roster settings PUT read the row unlocked and wrote the whole
    of it back: a cadence change committed in between was overwritten with what the PUT had
    read. The holder here changes another setting and holds the row while the PUT runs."""
    c = live.c
    change = '{"visit_cadence": {"elderly_80": 2}}'
    put = lambda: live.put(  # noqa: E731
        f"/api/v1/communities/{c.code}/roster-settings", c.admin, {"a_min": 2, "a_max": 3}
    )
    (answer,) = race(
        live,
        "UPDATE communities SET settings = COALESCE(settings, '{}') || CAST(:change AS jsonb)"
        " WHERE code = :code",
        {"change": change, "code": c.code},
        put,
    )
    assert answer.status_code == 200, answer.get_json()
    settings = live.scalar(
        select(text("settings"))
        .select_from(text("communities"))
        .where(text("code = :code"))
        .params(code=c.code)
    )
    assert settings["visit_cadence"] == {"elderly_80": 2}
    assert (settings["roster"]["a_min"], settings["roster"]["a_max"]) == (2, 3)
