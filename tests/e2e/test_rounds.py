"""The B-post worker's round on a phone: the week's plan kept in step with the visits recorded."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_app import PHONE, open_app, plan_from_api, plan_groups


@pytest.fixture()
def round_page(context, page):
    page.set_viewport_size(PHONE)
    return open_app(context, page)


def shown_due(page) -> set[int]:
    """The households the plan shows still to visit."""
    return {s for g in plan_groups(page) for s in g["stops"]}


def shown_done(page) -> list[int]:
    return page.locator("#plan-done .plan-stop").evaluate_all(
        "stops => stops.map((s) => Number(s.dataset.household))"
    )


def still_due(page) -> int:
    """The number in "还需走访 N 户"."""
    return int(page.inner_text("#plan-summary").split("还需走访 ")[1].split(" 户")[0])


def record(context, page, household: int, outcome: str) -> None:
    """Record a visit to `household` with `outcome`, offline (it waits in the queue)."""
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    queued = int(page.inner_text("#queue-count"))
    page.select_option("#household", str(household))
    page.select_option("#outcome", outcome)
    page.click("#record")
    page.wait_for_function(
        f"() => document.querySelector('#queue-count').textContent === '{queued + 1}'"
    )


def sync_online(context, page) -> None:
    context.set_offline(False)
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '0'")


def a_stop(page, per_week: int, last: bool = True) -> dict:
    """A household of the plan due `per_week` times a week and not yet visited this week (from
    the plan's end: other tests take its first doors)."""
    stops = [
        h
        for h in plan_from_api(page)
        if h["visits_per_week"] == per_week and h["visits_this_week"] == 0
    ]
    return stops[-1 if last else 0]


def test_a_door_nobody_opened_stays_in_the_plan(context, round_page):
    """ "无人在家" is an attempt, not a visit: the server still counts the household due this week
    (docs/report.md). The app moved it to "本机已记录" and took it off "还需走访 N 户": the worker
    walked on and never came back to it, until the app was opened again the next day."""
    page = round_page
    household = a_stop(page, 1)["household_id"]
    before = still_due(page)
    record(context, page, household, "nobody_home")
    assert household in shown_due(page)
    assert household not in shown_done(page)
    assert still_due(page) == before
    # The picker moves on to the next door all the same.
    assert page.locator("#household").input_value() != str(household)
    # The server agrees once the attempt is stored.
    sync_online(context, page)
    assert household in {h["household_id"] for h in plan_from_api(page)}
    assert household in shown_due(page)


def test_a_household_due_twice_a_week_stays_in_the_plan_after_its_first_visit(context, round_page):
    """A must-visit household on its own cadence (an old person living alone: twice a week) is
    still due after its first visit of the week, as the server says. The app counted one visit
    as the week's: the household left the plan for "本机已记录" and the worker did not come back
    that week. Its first visit does end its lateness: it is due again in half a week."""
    page = round_page
    stop = a_stop(page, 2)
    household = stop["household_id"]
    before = still_due(page)
    record(context, page, household, "met")
    assert household in shown_due(page)
    assert household not in shown_done(page)
    assert still_due(page) == before
    marks = page.locator(f"#plan .plan-stop[data-household='{household}'] small").text_content()
    assert "必访" in marks and "逾期" not in marks
    sync_online(context, page)
    (served,) = [h for h in plan_from_api(page) if h["household_id"] == household]
    assert (served["visits_this_week"], served["overdue"]) == (1, False)
    # The second visit is the week's last: the household is done.
    record(context, page, household, "met")
    assert household not in shown_due(page)
    assert household in shown_done(page)
    assert still_due(page) == before - 1
    sync_online(context, page)
    assert household not in {h["household_id"] for h in plan_from_api(page)}


def test_the_app_opened_without_a_signal_shows_the_weeks_plan_as_last_read(context, round_page):
    """A worker on the round reopens the app in a stairwell with no signal (the phone closed it
    meanwhile): the plan card said only "本周计划暂不可用", no households due, no counts. The
    plan read last is kept on the phone and shown, said as such; back online it is read afresh."""
    page = round_page
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    groups = plan_groups(page)
    before = still_due(page)
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert plan_groups(page) == groups
    assert still_due(page) == before
    assert page.inner_text("#plan-saved").startswith("离线：显示 ")
    assert page.inner_text("#plan-saved").endswith("保存的本周计划，联网后更新")
    # The round goes on from it: the door recorded leaves it.
    household = groups[0]["stops"][0]
    assert page.locator("#household").input_value() == str(household)
    record(context, page, household, "met")
    assert household not in shown_due(page) and household in shown_done(page)
    assert still_due(page) == before - 1
    # Back online the visit is sent and the plan read again: the server's, nothing kept.
    sync_online(context, page)
    page.wait_for_function("() => document.querySelector('#plan-saved').hidden")
    assert household not in {h["household_id"] for h in plan_from_api(page)}
    assert household not in shown_due(page)
    assert still_due(page) == before - 1


def refuse_every_visit(page) -> None:
    """The server refuses every visit sent (as when the household's grid was taken from the
    worker meanwhile): its answer, made here."""

    def route_it(route):
        visits = json.loads(route.request.post_data)["visits"]
        results = [
            {
                "id": v["id"],
                "status": "rejected",
                "code": "not-your-grid",
                "reason": f"Household {v['household_id']} is not in your grids.",
            }
            for v in visits
        ]
        route.fulfill(status=200, json={"results": results})

    page.route("**/api/v1/visits/batch", route_it)


def record_refused(page, household: int) -> None:
    page.select_option("#household", str(household))
    page.select_option("#outcome", "met")
    page.click("#record")
    page.wait_for_selector("#queue li.rejected")


def test_a_refused_visit_discarded_puts_its_household_back_in_the_plan(context, round_page):
    """The visit recorded took its household off the plan; refused by the server and discarded
    by the worker, nothing of it was stored, but the household stayed under "本机已记录" and
    off "还需走访 N 户" until the app was opened again: a door left unvisited that week."""
    page = round_page
    household = a_stop(page, 1)["household_id"]
    before = still_due(page)
    refuse_every_visit(page)
    record_refused(page, household)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#queue li.rejected button.discard").click()
    page.wait_for_selector("#queue li.rejected", state="detached")
    assert household in shown_due(page)
    assert household not in shown_done(page)
    assert still_due(page) == before


def test_a_refused_visit_corrected_to_another_household_moves_the_plans_mark(context, round_page):
    """The worker had recorded the wrong door: corrected, the visit is the other household's.
    The plan kept the first one as visited and the second as due."""
    page = round_page
    wrong, right = a_stop(page, 1)["household_id"], a_stop(page, 1, last=False)["household_id"]
    before = still_due(page)
    refuse_every_visit(page)
    record_refused(page, wrong)
    page.locator("#queue li.rejected button.edit").click()
    page.wait_for_selector("#cancel-edit:not([hidden])")
    page.select_option("#household", str(right))
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#cancel-edit').hidden")
    assert wrong in shown_due(page) and wrong not in shown_done(page)
    assert right in shown_done(page) and right not in shown_due(page)
    assert still_due(page) == before - 1


def test_the_weeks_plan_stands_under_the_visit_form_and_the_tasks(round_page):
    """The plan is the B-post worker's round: it stood eighth on the page, some 2,500 px down
    a phone, below the 上报问题 form, the inbox and the leave; each door meant scrolling there
    and back. It comes under the visit form and the worker's tasks (their deadlines first, a
    short list) now, before the rest."""
    page = round_page
    order = page.evaluate(
        """() => [...document.querySelectorAll('#home > section.card')]
                   .filter((s) => !s.hidden).map((s) => s.id || s.querySelector('[id]')?.id)"""
    )
    assert order[1:4] == ["visit-form", "tasks", "plan-card"]


def test_from_the_keyboard_a_visit_recorded_leaves_the_focus_on_the_next_door(context, round_page):
    """The record button is switched off while the phone locates: the focus it had fell to the
    page's top, and a keyboard (or screen reader) user started the form again from there."""
    page = round_page
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.focus("#record")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    page.wait_for_function("() => !document.querySelector('#record').disabled")
    assert page.evaluate("() => document.activeElement.id") == "household"
    context.set_offline(False)
