"""The workers' app on a phone passed from hand to hand: a session that ends (the password reset,
the session revoked) leaves nothing of its worker on screen, nor for the next one signed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e import test_app
from tests.e2e.conftest import claims, expire_access_token, sign_in
from tests.e2e.test_app import open_app, queue_refused_visit, record_offline, visited_household

add_tasks, worker_page = test_app.add_tasks, test_app.worker_page  # fixtures

NOTES = "王阿姨 低保 独居 电话13800000000"


def session_ended(page, live_app, e2e_engine) -> None:
    """The page's session revoked on the server (say, an admin reset the password) and found out
    at the next call: the sign-in form is shown."""
    from api.services import sessions

    sid = claims(expire_access_token(live_app, page))["sid"]
    with Session(e2e_engine) as session:
        sessions.revoke(session, sid, "e2e", datetime.now(UTC))
        session.commit()
    page.evaluate(
        "async () => (await import('/web/common.js')).api('/api/v1/auth/me').catch(() => null)"
    )
    page.wait_for_selector("#signin:not([hidden])")


def signed_in_again(page, username: str) -> None:
    page.evaluate("() => { document.body.dataset.ready = ''; }")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")


def test_an_edit_begun_before_the_session_ended_is_not_left_to_the_next_user(
    worker_page, live_app, e2e_engine
):
    page = worker_page
    visit_id = queue_refused_visit(page, visited_household(e2e_engine), notes=NOTES)
    page.locator(f"#queue li.rejected[data-id='{visit_id}'] button.edit").click()
    page.wait_for_selector("#cancel-edit:not([hidden])")
    assert page.input_value("#notes") == NOTES

    session_ended(page, live_app, e2e_engine)
    # Nothing of the edit under the sign-in form either.
    assert page.input_value("#notes") == ""
    assert page.inner_text("#visit-status") == ""

    signed_in_again(page, "leader01")
    assert page.input_value("#notes") == ""
    assert page.inner_text("#record") != "保存修改"
    assert page.is_hidden("#cancel-edit")
    assert "正在修改" not in page.inner_text("#visit-status")


def test_a_task_open_when_the_session_ended_is_closed_and_emptied(
    context, page, add_tasks, live_app, e2e_engine
):
    (task_id,) = add_tasks("worker01", 1, "dispatched", timedelta(days=2), "李大爷家漏水")
    open_app(context, page)
    page.click(f"#tasks li[data-id='{task_id}'] button.open-task")
    page.wait_for_selector(f"#task-detail[data-task='{task_id}'] h2")

    session_ended(page, live_app, e2e_engine)
    assert page.evaluate("() => document.querySelector('#task-detail').open") is False
    assert "李大爷家漏水" not in page.evaluate(
        "() => document.querySelector('#task-detail').innerHTML"
    )
    assert page.locator("#task-detail button").count() == 0


@pytest.mark.parametrize(("who", "offered"), [("worker02", False), ("worker01", True)])
def test_the_households_kept_for_one_worker_are_offered_to_them_only(
    context, worker_page, live_app, e2e_engine, who, offered
):
    """worker01's session ends; `who` signs in where the plan and the households cannot be read
    (no signal indoors): worker02 was offered worker01's doors; worker01 still gets them."""
    page = worker_page
    theirs = page.locator("#household option").count()
    assert theirs > 0

    session_ended(page, live_app, e2e_engine)
    page.route("**/api/v1/visits/plan**", lambda route: route.abort())
    page.route("**/api/v1/households**", lambda route: route.abort())
    signed_in_again(page, who)
    assert page.locator("#household option").count() == (theirs if offered else 0)


# --- a second tab of the app -----------------------------------------------------------------
def second_tab(context):
    tab = context.new_page()
    tab.goto("/app")  # signed in already: the app opens for the worker
    tab.wait_for_selector("body[data-ready='1']")
    return tab


def test_signed_out_in_one_tab_the_other_goes_back_to_the_sign_in(context, worker_page):
    page = worker_page
    tab = second_tab(context)
    assert tab.is_visible("#home")

    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    tab.wait_for_selector("#signin:not([hidden])")
    assert tab.is_hidden("#home")


def test_another_worker_signed_in_in_one_tab_the_other_records_for_them_only(
    context, worker_page, e2e_engine
):
    """The other tab kept worker01's households on offer, and a visit saved there went under
    worker02 (the token's user at saving)."""
    from tests.e2e.test_phone_life import user_id

    page = worker_page
    tab = second_tab(context)
    tab.evaluate("() => { window.startedFor = 'worker01'; }")
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    signed_in_again(page, "worker02")
    offered = page.eval_on_selector_all("#household option", "(os) => os.map((o) => o.value)")

    # The second tab opened again, for worker02: it offers theirs and saves under them.
    tab.wait_for_function(
        "() => !window.startedFor && document.body.dataset.ready === '1'"
        " && !document.querySelector('#home').hidden",
        timeout=10_000,
    )
    assert tab.eval_on_selector_all("#household option", "(os) => os.map((o) => o.value)") == (
        offered
    )
    page.close()
    record_offline(context, tab)
    (queued,) = tab.evaluate("async () => (await import('/web/queue.js')).listQueued()")
    assert queued["user"] == str(user_id(e2e_engine, "worker02"))


def test_a_save_in_a_tab_whose_user_signed_out_queues_nothing(context, worker_page):
    """The storage event missed (say, the token removed by this very realm's script), a save
    still never goes under another user or none."""
    page = worker_page
    page.evaluate("() => localStorage.removeItem('gridwork.token')")
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.select_option("#outcome", "met")
    page.fill("textarea[name=notes]", "楼道灯坏了")
    page.click("#record")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("async () => (await import('/web/queue.js')).listQueued()") == []
