"""The roster page (/rosters) in headless Chromium: a grid leader or the community's admin
generates next week's AB-post roster, reads it as a grid of names, publishes it (a short-staffed
week only once its gaps are confirmed) and hands a shift to another worker; the community's roster
settings and visit cadence are read there by both and changed by the admin."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from api.services.weeks import week_dates, week_of
from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import (
    DEMO_GRID,
    _csp_violation,
    lose_the_first_answer,
    screenshot,
    sign_in,
)

COMMUNITY = DEMO_GRID[:12]


def next_week() -> str:
    return week_of(datetime.now(UTC) + timedelta(days=7))


@pytest.fixture
def fresh_week(e2e_engine):
    """Next week unrostered for the demo community, its roster settings the defaults; both put
    back afterwards. Yields the community's shift holders by username."""
    from api.models import Community, Roster, User

    week = next_week()

    def clear(session, settings=None):
        session.execute(
            delete(Roster).where(Roster.community_code == COMMUNITY, Roster.week == week)
        )
        if settings is not None:
            session.get(Community, COMMUNITY).settings = settings

    # The throwaway workers other tests opened (test_own_password.opened_by_the_office: one a
    # test of the inbox, the account pages...) are off meanwhile: the week is the demo's people's,
    # and a window asked one more than the community's hands stays within the 50 it may ask.
    throwaway = (User.community_code == COMMUNITY) & User.username.like("new\\_worker\\_%")
    with Session(e2e_engine, expire_on_commit=False) as session:
        community = session.get(Community, COMMUNITY)
        kept = copy.deepcopy(community.settings or {})
        community.settings = {k: v for k, v in kept.items() if k != "roster"}
        clear(session)
        idle = session.scalars(select(User.id).where(throwaway, User.active)).all()
        session.execute(update(User).where(User.id.in_(idle)).values(active=False))
        session.commit()
        people = {
            u.username: u
            for u in session.scalars(select(User).where(User.community_code == COMMUNITY))
        }
    yield {"week": week, "people": people}
    with Session(e2e_engine) as session:
        clear(session, kept)
        session.execute(update(User).where(User.id.in_(idle)).values(active=True))
        session.commit()


def open_rosters(page, username: str):
    page.goto("/rosters")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    return page


def roster_row(e2e_engine, week: str):
    from api.models import Roster

    with Session(e2e_engine) as session:
        return session.scalar(
            select(Roster).where(Roster.community_code == COMMUNITY, Roster.week == week)
        )


def shifts_of(e2e_engine, roster_id: int):
    from api.models import Shift

    with Session(e2e_engine) as session:
        return list(session.scalars(select(Shift).where(Shift.roster_id == roster_id)))


def generate(page):
    page.click("#generate")
    page.wait_for_selector("#grid-table td.cell")


def leader_of(people) -> str:
    return next(name for name, u in people.items() if u.role == "grid_leader")


def admin_of(people) -> str:
    return next(name for name, u in people.items() if u.role == "community_admin")


def test_a_leader_generates_next_week_and_sees_each_working_day_posts_filled_by_name(
    page, e2e_engine, fresh_week
):
    people = fresh_week["people"]
    open_rosters(page, leader_of(people))
    week = fresh_week["week"]
    assert page.inner_text("#week-label").startswith(week)  # next week by default
    assert "尚未排班" in page.inner_text("#roster-status")
    generate(page)
    roster = roster_row(e2e_engine, week)
    assert roster is not None and roster.status == "draft"
    assert page.inner_text("#roster-status").startswith("草稿")
    names = {u.id: u.display_name for u in people.values()}
    days = [d.isoformat() for d in week_dates(week)[:5]]
    # A column per working day (Monday to Friday by default), in order.
    assert (
        page.locator("#grid-table thead th[data-date]").evaluate_all(
            "ths => ths.map(th => th.dataset.date)"
        )
        == days
    )
    shifts = shifts_of(e2e_engine, roster.id)
    for day in days:
        window = page.locator(f"tr.post-A td[data-date='{day}'] .who").all_inner_texts()
        expected = sorted(
            names[s.worker_id] for s in shifts if str(s.date) == day and s.post == "A"
        )
        assert window and sorted(w.replace("（顶岗）", "") for w in window) == expected
        b_cells = page.locator(f"tr.post-B td[data-date='{day}'] .who").all_inner_texts()
        assert b_cells, f"nobody in the grids on {day}"
    # Every B-post shift is shown in its grid's row, by name.
    grid_ids = {s.grid_id for s in shifts if s.post == "B"}
    assert page.locator("tr.post-B").count() >= len(grid_ids)
    for s in shifts:
        if s.post == "B":
            cell = page.locator(f"td[data-date='{s.date}'] .who[data-shift='{s.id}']")
            assert cell.inner_text().replace("（顶岗）", "") == names[s.worker_id]
    screenshot(page, "rosters-draft")

    page.click("#publish")
    page.wait_for_selector("#roster-status.published")
    assert page.inner_text("#roster-status").startswith("已发布")
    assert roster_row(e2e_engine, week).status == "published"
    # A published week is not regenerated: the button is gone.
    assert page.is_hidden("#generate")


def test_a_short_staffed_week_shows_its_gaps_in_chinese_and_publishing_asks_first(
    page, e2e_engine, fresh_week
):
    from api.services.rosters import SHIFT_ROLES

    people = fresh_week["people"]
    open_rosters(page, admin_of(people))
    # The window asks more than the community has (as tests/api/test_rosters_short.py does):
    # one more than its hands, whatever accounts the tests before this one opened in it.
    hands = sum(1 for u in people.values() if u.active and u.role in SHIFT_ROLES)
    settings = page.evaluate(
        """async ([code, short]) => {
          const token = localStorage.getItem('gridwork.token');
          const headers = {Authorization: `Bearer ${token}`, 'Content-Type': 'application/json'};
          const r = await fetch(`/api/v1/communities/${code}/roster-settings`, {
            method: 'PUT', headers, body: JSON.stringify({a_min: short, a_max: short})});
          return r.status;
        }""",
        [COMMUNITY, hands + 1],
    )
    assert settings == 200
    generate(page)
    box = page.locator("#shortfalls")
    box.wait_for()
    assert "人手不足：以下要求未能满足" in box.inner_text()
    first = box.locator("li").first.inner_text()
    assert "窗口" in first and "缺" in first  # said in Chinese, the server's words beneath
    week = fresh_week["week"]
    assert box.locator("li").count() >= 5
    page.click("#publish")
    confirm = page.locator("#confirm-publish")
    confirm.wait_for()
    assert "人手不足" in confirm.inner_text() and confirm.locator("li").count() >= 5
    assert roster_row(e2e_engine, week).status == "draft"  # nothing published yet
    page.click("#confirm-cancel")
    assert page.is_hidden("#confirm-publish")
    assert roster_row(e2e_engine, week).status == "draft"
    page.click("#publish")
    page.click("#confirm-ok")
    page.wait_for_selector("#roster-status.published")
    assert roster_row(e2e_engine, week).status == "published"
    screenshot(page, "rosters-short")


@pytest.fixture
def spare_worker(e2e_engine, fresh_week):
    """A worker of the demo grid taken on after the week was generated: free every day. Made
    on call (`make()`), gone afterwards with the shifts they were handed."""
    from api.models import Shift, User
    from api.services.users import create_user

    made = []

    def make():
        with Session(e2e_engine, expire_on_commit=False) as session:
            user = create_user(
                session,
                username="rosterpage_spare",
                password=DEMO_PASSWORD,
                role="worker",
                display_name="钱新来",
                community=COMMUNITY,
                grids=[DEMO_GRID],
            )
            session.commit()
            made.append(user.id)
            return user

    yield make
    with Session(e2e_engine) as session:
        for user_id in made:
            session.execute(delete(Shift).where(Shift.worker_id == user_id))
            session.delete(session.get(User, user_id))
        session.commit()


def test_reassigning_a_shift_shows_the_new_name_and_changes_the_shift(
    page, e2e_engine, fresh_week, spare_worker
):
    from api.models import Shift

    people = fresh_week["people"]
    open_rosters(page, leader_of(people))
    generate(page)
    spare = spare_worker()
    page.reload()  # the community's workers are read as the page starts
    page.wait_for_selector("body[data-ready='1'] #grid-table td.cell")
    roster = roster_row(e2e_engine, fresh_week["week"])
    shifts = shifts_of(e2e_engine, roster.id)
    shift = min((s for s in shifts if s.post == "B"), key=lambda s: (s.date, s.id))
    page.click(f".who[data-shift='{shift.id}']")
    page.locator("#shift-editor").wait_for()
    names = {u.id: u.display_name for u in people.values()}
    assert f"当前：{names[shift.worker_id]}" in page.inner_text("#shift-title")
    page.select_option("#shift-worker", str(spare.id))
    page.click("#shift-save")
    page.wait_for_function(
        "([id, name]) => (document.querySelector(`.who[data-shift='${id}']`) || {}).textContent"
        "?.replace('（顶岗）', '') === name",  # relieving another grid's worker, marked
        arg=[shift.id, "钱新来"],
    )
    assert page.is_hidden("#shift-editor")
    with Session(e2e_engine) as session:
        assert session.get(Shift, shift.id).worker_id == spare.id

    # Handing a shift to someone holding a post that day is refused, said in Chinese, with
    # the server's words beneath; nothing changes.
    other = next(s for s in shifts if s.date == shift.date and s.id != shift.id)
    page.click(f".who[data-shift='{shift.id}']")
    page.select_option("#shift-worker", str(other.worker_id))
    page.click("#shift-save")
    error = page.locator("#shift-error")
    error.wait_for()
    assert error.locator(".why").inner_text().startswith("未能调整")
    assert "already holds" in error.locator(".detail").inner_text()
    with Session(e2e_engine) as session:
        assert session.get(Shift, shift.id).worker_id == spare.id
    screenshot(page, "rosters-reassign-refused")


def test_a_worker_is_told_in_chinese_they_may_not_roster(page, fresh_week):
    open_rosters(page, "worker01")
    assert "只有网格长和社区管理员可以排班" in page.inner_text("#notice")
    assert page.is_hidden("#generate") and page.is_hidden("#publish")
    assert page.locator("#grid-table td.cell").count() == 0


def test_the_page_fits_a_tablet(browser, live_server, e2e_engine, fresh_week):
    context = browser.new_context(
        base_url=live_server, viewport={"width": 768, "height": 1024}, has_touch=True
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: _csp_violation(m) and errors.append(m.text))
    try:
        open_rosters(page, leader_of(fresh_week["people"]))
        generate(page)
        # Nothing wider than the screen: the page does not scroll sideways.
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 768
        box = page.locator("#grid-table").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 768
        button = page.locator("#publish").bounding_box()
        assert button["height"] >= 40  # finger-sized
        screenshot(page, "rosters-tablet")
    finally:
        context.close()
    assert errors == []


def test_the_accounts_page_and_a_leaders_app_link_to_the_rosters(page, fresh_week):
    people = fresh_week["people"]
    page.goto("/accounts")
    sign_in(page, admin_of(people), DEMO_PASSWORD)
    link = page.locator("#to-rosters")
    link.wait_for()
    assert (link.inner_text(), link.get_attribute("href")) == ("排班", "/rosters")
    page.click("#signout")  # signed out, the page loads again: then to the app
    page.wait_for_selector("#signin:not([hidden])")
    page.goto("/app")
    sign_in(page, leader_of(people), DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    link = page.locator("#week-card #rosters-link")
    link.wait_for()
    assert link.get_attribute("href") == "/rosters"
    link.click()
    page.wait_for_selector("body[data-ready='1'] #roster:not([hidden])")


def test_a_workers_app_has_no_roster_link(page, fresh_week):
    page.goto("/app")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#week-shifts li").first.wait_for()
    assert page.locator("#rosters-link").count() == 0


def test_generating_a_week_gone_by_is_refused_in_chinese(page, fresh_week):
    past = week_of(datetime.now(UTC) - timedelta(days=14))
    page.goto(f"/rosters?week={past}")
    sign_in(page, leader_of(fresh_week["people"]), DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#week-label").startswith(past)
    page.click("#generate")
    error = page.locator("#action-error")
    error.wait_for()
    assert error.locator(".why").inner_text() == "这一周已经过去，不能再排班。"
    assert "is over" in error.locator(".detail").inner_text()
    assert page.locator("#grid-table td.cell").count() == 0


def test_regenerating_a_week_published_meanwhile_is_refused_and_the_week_read_again(
    page, e2e_engine, fresh_week
):
    from api.models import Roster

    open_rosters(page, leader_of(fresh_week["people"]))
    generate(page)
    with Session(e2e_engine) as session:  # published from another desk
        roster = session.scalar(
            select(Roster).where(
                Roster.community_code == COMMUNITY, Roster.week == fresh_week["week"]
            )
        )
        roster.status, roster.published_at = "published", datetime.now(UTC)
        session.commit()
    page.click("#generate")
    page.click("#regenerate-ok")  # a draft, as the page read it
    error = page.locator("#action-error")
    error.wait_for()
    assert error.locator(".why").inner_text().startswith("本周排班已发布，不能重新生成")
    assert "is published" in error.locator(".detail").inner_text()
    page.wait_for_selector("#roster-status.published")
    assert page.is_hidden("#generate") and page.is_hidden("#publish")


def test_the_page_speaks_english_when_asked(page, fresh_week):
    page.goto("/rosters?lang=en")
    sign_in(page, leader_of(fresh_week["people"]), DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#toolbar strong") == "Rosters"
    assert page.inner_text("#roster-status") == "Not rostered yet"
    assert page.inner_text("#generate") == "Generate roster"
    assert page.inner_text("#week-label").startswith(f"{fresh_week['week']} (")
    page.locator("#cadence-view").wait_for()
    assert page.inner_text("#settings h2") == "Roster settings"
    assert "Mon, Tue, Wed, Thu, Fri" in page.inner_text("#settings-view")
    assert "3–4 people" in page.inner_text("#settings-view")
    assert "Only the community's admin" in page.inner_text("#settings-who")
    assert page.inner_text("#cadence h2").startswith("Visit cadence")
    assert "Every household" in page.inner_text("#cadence-view")


# --- the settings cards: roster settings (PUT /roster-settings), visit cadence (PUT /visit-cadence)
# Shown to leaders and admins, changed by the community's admin only, the API's refusals said
# beside the fields they name.


def stored(e2e_engine, key: str):
    from api.models import Community

    with Session(e2e_engine) as session:
        return (session.get(Community, COMMUNITY).settings or {}).get(key)


def edit_settings(page):
    page.click("#settings-edit")
    page.locator("#settings-form").wait_for()


def test_an_admin_changes_the_roster_settings_and_the_draft_stays_until_regenerated(
    page, e2e_engine, fresh_week
):
    people = fresh_week["people"]
    open_rosters(page, admin_of(people))
    generate(page)  # a draft of next week, rostered Monday to Friday
    view = page.locator("#settings-view")
    view.wait_for()
    assert "周一、周二、周三、周四、周五" in view.inner_text()
    assert "3–4 人" in view.inner_text()
    edit_settings(page)
    assert page.input_value("#settings-form input[name=a_max]") == "4"
    mon, tue, wed, *_ = [d.isoformat() for d in week_dates(fresh_week["week"])]
    worker = next(u for u in people.values() if u.role == "worker" and u.active)
    page.fill("#settings-form input[name=a_min]", "2")
    page.fill("#settings-form input[name=a_max]", "3")
    page.check("#settings-form input[name=working_days][value='6']")  # Saturdays too
    page.fill("#settings-form textarea[name=holidays]", wed)
    page.fill("#settings-form input[name='a_hours.start']", "09:00")
    page.check(f"#rest-table input[data-worker='{worker.id}'][value='1']")
    screenshot(page, "rosters-settings-editor")
    page.click("#settings-save")
    saved = page.locator("#settings-saved")
    saved.wait_for()
    assert "已保存" in saved.inner_text() and "重新生成" in saved.inner_text()
    assert page.is_hidden("#settings-form")
    roster = stored(e2e_engine, "roster")
    assert (roster["a_min"], roster["a_max"]) == (2, 3)
    assert roster["working_days"] == [1, 2, 3, 4, 5, 6]
    assert roster["holidays"] == [wed]
    assert roster["a_hours"] == {"start": "09:00", "end": "17:30"}
    assert roster["rest_days"] == {str(worker.id): [1]}
    assert "2–3 人" in view.inner_text() and wed in view.inner_text()
    assert f"{worker.display_name}：周一" in view.inner_text()
    # The draft was left as it was: regenerated, it follows the new settings.
    days = page.locator("#grid-table thead th[data-date]")
    assert wed in days.evaluate_all("ths => ths.map(th => th.dataset.date)")
    page.click("#generate")
    page.click("#regenerate-ok")
    page.wait_for_function(
        "wed => ![...document.querySelectorAll('#grid-table thead th[data-date]')]"
        ".some(th => th.dataset.date === wed)",
        arg=wed,
    )
    shown = days.evaluate_all("ths => ths.map(th => th.dataset.date)")
    assert len(shown) == 5 and shown[-1] == week_dates(fresh_week["week"])[5].isoformat()
    assert page.locator(f"td[data-date='{mon}'] .who").count() > 0


def test_an_admin_sets_staggered_window_slots_and_each_a_post_shows_its_own_hours(
    page, e2e_engine, fresh_week
):
    """A hall open 08:00–20:00: the admin adds the window's slots (three for a minimum of two at
    the window is refused beside the slots, in Chinese), and the week regenerated shows each
    A-post's slot under the worker's name."""
    open_rosters(page, admin_of(fresh_week["people"]))
    generate(page)
    edit_settings(page)
    page.fill("#settings-form input[name=a_min]", "2")
    for start, end in (("08:00", "16:30"), ("11:30", "20:00"), ("13:00", "20:00")):
        page.click("#a-slot-add")
        row = page.locator("#a-slots .slot").last
        row.locator("[data-slot=start]").fill(start)
        row.locator("[data-slot=end]").fill(end)
    page.click("#settings-save")
    refused = page.locator(".field-error[data-field='a_slots']")
    page.wait_for_function(
        "() => document.querySelector(\".field-error[data-field='a_slots']\").textContent"
    )
    assert "最少人数（2）" in refused.inner_text()
    assert not (stored(e2e_engine, "roster") or {}).get("a_slots")
    page.locator("#a-slots .slot").last.locator(".slot-remove").click()
    page.click("#settings-save")
    page.locator("#settings-saved").wait_for()
    assert stored(e2e_engine, "roster")["a_slots"] == [
        {"start": "08:00", "end": "16:30"},
        {"start": "11:30", "end": "20:00"},
    ]
    assert "08:00–16:30、11:30–20:00" in page.inner_text("#settings-view")
    page.click("#generate")
    page.click("#regenerate-ok")
    hours = page.locator("tr.post-A .who .hours")
    hours.first.wait_for()
    assert set(hours.all_inner_texts()) == {"08:00–16:30", "11:30–20:00"}


def test_refused_roster_settings_are_said_beside_their_fields_and_nothing_is_written(
    page, e2e_engine, fresh_week
):
    open_rosters(page, admin_of(fresh_week["people"]))
    edit_settings(page)
    page.fill("#settings-form textarea[name=holidays]", "2026-10-01\n2026-13-40")
    page.click("#settings-save")
    slot = page.locator(".field-error[data-field='holidays']")
    slot.wait_for()
    assert "2026-13-40" in slot.inner_text() and "日期" in slot.inner_text()
    assert "未保存" in page.inner_text("#settings-error .why")
    page.fill("#settings-form textarea[name=holidays]", "")
    page.fill("#settings-form input[name=a_min]", "5")
    page.fill("#settings-form input[name=a_max]", "3")
    page.click("#settings-save")
    page.wait_for_function(
        "() => document.querySelector(\".field-error[data-field='a_min']\").textContent"
        ".includes('大于')"
    )
    assert page.inner_text(".field-error[data-field='holidays']") == ""  # said afresh
    assert "inconsistent" in page.inner_text("#settings-error .detail")  # the server's words
    assert stored(e2e_engine, "roster") is None
    assert page.is_visible("#settings-form")


def test_a_leader_reads_the_settings_and_cadence_but_may_not_change_them(page, fresh_week):
    open_rosters(page, leader_of(fresh_week["people"]))
    page.locator("#settings-view").wait_for()
    page.locator("#cadence-view").wait_for()
    assert "周一、周二、周三、周四、周五" in page.inner_text("#settings-view")
    assert "只有社区管理员" in page.inner_text("#settings-who")
    assert page.is_hidden("#settings-edit") and page.is_hidden("#cadence-edit")
    assert "每周 1 次" in page.inner_text("#cadence-view")


@pytest.fixture
def kept_cadence(e2e_engine):
    """The demo community's visit cadence put back afterwards: its setting, its history rows,
    and this week's must-visit figures recounted under it."""
    from sqlalchemy import func, text

    from api.models import Community, CommunityCadence

    with Session(e2e_engine) as session:
        before = copy.deepcopy(session.get(Community, COMMUNITY).settings or {})
        last = session.scalar(select(func.max(CommunityCadence.id))) or 0
    yield before.get("visit_cadence")
    with Session(e2e_engine) as session:
        session.execute(delete(CommunityCadence).where(CommunityCadence.id > last))
        community = session.get(Community, COMMUNITY)
        settings = dict(community.settings or {})
        settings.pop("visit_cadence", None)
        if "visit_cadence" in before:
            settings["visit_cadence"] = before["visit_cadence"]
        community.settings = settings
        session.flush()
        session.execute(
            text("SELECT gw_report_recount_must_visits(:code, :week)"),
            {"code": COMMUNITY, "week": week_of(datetime.now(UTC))},
        )
        session.commit()


def test_an_admin_sets_the_visit_cadence_of_the_must_visit_groups_from_this_week(
    page, e2e_engine, fresh_week, kept_cadence
):
    open_rosters(page, admin_of(fresh_week["people"]))
    view = page.locator("#cadence-view")
    view.wait_for()
    assert "一般住户" in view.inner_text()
    assert "自本周" in page.inner_text("#cadence-who")
    page.click("#cadence-edit")
    form = page.locator("#cadence-form")
    form.wait_for()
    assert page.get_attribute("#cadence-form input[name='tags.living_alone']", "placeholder")
    # Eight a week is refused beside the field, said in Chinese; nothing is written.
    page.fill("#cadence-form input[name=default]", "8")
    page.click("#cadence-save")
    slot = page.locator(".field-error[data-field='default']")
    slot.wait_for()
    assert "1 至 7" in slot.inner_text()
    screenshot(page, "rosters-cadence-refused")
    assert "未保存" in page.inner_text("#cadence-error .why")
    assert stored(e2e_engine, "visit_cadence") == kept_cadence
    page.fill("#cadence-form input[name=default]", "1")
    page.fill("#cadence-form input[name='tags.living_alone']", "3")
    page.fill("#cadence-form input[name='tags.elderly_80']", "2")
    page.click("#cadence-save")
    saved = page.locator("#cadence-saved")
    saved.wait_for()
    assert "自本周起生效" in saved.inner_text()
    assert page.is_hidden("#cadence-form")
    assert stored(e2e_engine, "visit_cadence") == {
        "default": 1,
        "tags": {"elderly_80": 2, "living_alone": 3},
    }
    text = view.inner_text()
    assert "独居" in text and "每周 3 次" in text and "80岁以上老人" in text


# --- the change log of a published week (GET /rosters/{id}/changes) ------------------------------


@pytest.fixture
def on_leave(e2e_engine):
    """Approved leave for a worker on one day, as a leader approves it; gone afterwards."""
    from api.models import Leave

    made = []

    def make(worker_id: int, day, decided_by_id: int):
        with Session(e2e_engine) as session:
            leave = Leave(
                worker_id=worker_id,
                start_date=day,
                end_date=day,
                reason="病假",
                status="approved",
                decided_by_id=decided_by_id,
                decided_at=datetime.now(UTC) - timedelta(minutes=1),
            )
            session.add(leave)
            session.commit()
            made.append(leave.id)

    yield make
    with Session(e2e_engine) as session:
        session.execute(delete(Leave).where(Leave.id.in_(made)))
        session.commit()


def test_a_published_weeks_change_log_says_who_handed_which_shift_to_whom_and_why(
    page, e2e_engine, fresh_week, spare_worker, on_leave
):
    people = fresh_week["people"]
    leader = people[leader_of(people)]
    open_rosters(page, leader.username)
    generate(page)
    assert page.is_hidden("#changes")  # a draft's edits are not logged
    page.click("#publish")
    page.wait_for_selector("#roster-status.published")
    log = page.locator("#changes")
    log.wait_for()
    assert page.inner_text("#changes summary") == "变更记录（0）"
    spare = spare_worker()
    roster = roster_row(e2e_engine, fresh_week["week"])
    shifts = sorted(shifts_of(e2e_engine, roster.id), key=lambda s: (s.date, s.id))
    away = next(s for s in shifts if s.worker_id != leader.id)
    on_leave(away.worker_id, away.date, leader.id)
    page.reload()  # the community's workers are read as the page starts
    page.wait_for_selector("body[data-ready='1'] #grid-table td.cell")
    names = {u.id: u.display_name for u in people.values()}

    def hand_to_spare(shift):
        page.click(f".who[data-shift='{shift.id}']")
        page.select_option("#shift-worker", str(spare.id))
        page.click("#shift-save")
        page.wait_for_selector("#shift-editor", state="hidden")

    hand_to_spare(away)
    page.wait_for_function(
        "() => document.querySelector('#changes summary').textContent === '变更记录（1）'"
    )
    page.click("#changes summary")  # collapsed until opened
    first = log.locator("li").first
    first.wait_for()
    text = first.inner_text()
    assert "请假" in text and f"{names[away.worker_id]} → 钱新来" in text
    assert leader.display_name in text
    other = next(s for s in shifts if s.date != away.date and s.worker_id != leader.id)
    hand_to_spare(other)
    page.wait_for_function("() => document.querySelectorAll('#changes li').length === 2")
    second = log.locator("li").nth(1).inner_text()
    assert "改派" in second and "请假" not in second
    assert f"{names[other.worker_id]} → 钱新来" in second
    screenshot(page, "rosters-change-log")

    page.goto(f"/rosters?lang=en&week={fresh_week['week']}")
    page.wait_for_selector("body[data-ready='1'] #changes:not([hidden])")
    assert page.inner_text("#changes summary") == "Change log (2)"
    page.click("#changes summary")
    text = log.locator("li").first.inner_text()
    assert "on leave" in text and f"by {leader.display_name}" in text


# --- the task deadlines card (工单时限) ----------------------------------------------------------


@pytest.fixture
def kept_deadlines(e2e_engine):
    """The demo community's task deadlines the defaults; the settings put back afterwards."""
    from api.models import Community

    with Session(e2e_engine) as session:
        community = session.get(Community, COMMUNITY)
        kept = copy.deepcopy(community.settings or {})
        community.settings = {k: v for k, v in kept.items() if k != "tasks"}
        session.commit()
    yield
    with Session(e2e_engine) as session:
        session.get(Community, COMMUNITY).settings = kept
        session.commit()


def deadline_cells(page) -> list[list[str]]:
    return page.locator("#task-settings .deadlines tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def test_an_admin_sets_the_task_deadlines_and_new_tasks_follow_them(
    page, e2e_engine, fresh_week, kept_deadlines
):
    open_rosters(page, admin_of(fresh_week["people"]))
    page.wait_for_selector("#task-settings[data-loaded='1']")
    assert deadline_cells(page) == [
        ["危及生命财产", "2小时", "0.5小时"],
        ["水电气热", "24小时", "2小时"],
        ["一般", "7天", "24小时"],
        ["疑难复杂", "15天", "24小时"],
    ]
    assert "各类诉求同上表" in page.inner_text("#task-settings")
    page.click("#task-settings button.edit")
    page.fill("#task-settings input[name='deadline_hours.general']", "72")
    page.fill("#task-settings input[name='by_type.complaint.deadline_hours.general']", "48")
    page.click("#task-settings button[type=submit]")
    saved = page.locator("#task-settings .saved")
    saved.wait_for()
    assert "已有工单不变" in saved.inner_text()
    assert deadline_cells(page)[2] == ["一般", "3天", "24小时"]
    assert page.inner_text("#task-settings ul.by-type") == "投诉：一般 2天"
    tasks = stored(e2e_engine, "tasks")
    assert tasks["deadline_hours"] == {
        "danger": 2,
        "utility": 24,
        "general": 72,
        "complex": 360,
    }
    assert tasks["by_type"] == {"complaint": {"deadline_hours": {"general": 48}}}


def test_a_first_contact_after_the_deadline_is_said_beside_it_and_nothing_is_written(
    page, e2e_engine, fresh_week, kept_deadlines
):
    open_rosters(page, admin_of(fresh_week["people"]))
    page.wait_for_selector("#task-settings[data-loaded='1']")
    page.click("#task-settings button.edit")
    page.fill("#task-settings input[name='first_contact_hours.danger']", "3")
    page.click("#task-settings button[type=submit]")
    slot = page.locator("#task-settings .field-error[data-field='first_contact_hours']")
    page.wait_for_function("(el) => el.textContent.includes('晚于')", arg=slot.element_handle())
    assert slot.inner_text() == "危及生命财产：首次联系（3小时）晚于办结时限（2小时）"
    assert "未保存" in page.inner_text("#task-settings .form-error .why")
    assert stored(e2e_engine, "tasks") is None
    assert page.is_visible("#task-settings form")


def test_a_leader_reads_the_task_deadlines_but_may_not_change_them(
    page, fresh_week, kept_deadlines
):
    open_rosters(page, leader_of(fresh_week["people"]))
    page.wait_for_selector("#task-settings[data-loaded='1']")
    assert deadline_cells(page)[0] == ["危及生命财产", "2小时", "0.5小时"]
    assert page.is_hidden("#task-settings button.edit")
    assert "只有社区管理员可以修改工单时限" in page.inner_text("#task-settings")


def test_the_task_deadlines_speak_english_too(page, fresh_week, kept_deadlines):
    page.goto("/rosters?lang=en")
    sign_in(page, admin_of(fresh_week["people"]), DEMO_PASSWORD)
    page.wait_for_selector("#task-settings[data-loaded='1']")
    assert deadline_cells(page)[2] == ["General", "7 days", "24 h"]
    assert "Task deadlines" in page.inner_text("#task-settings h2")


@pytest.fixture
def week_after(e2e_engine, fresh_week):
    """The week after next unrostered for the demo community too; put back afterwards."""
    from api.models import Roster

    week = week_of(datetime.now(UTC) + timedelta(days=14))

    def clear():
        with Session(e2e_engine) as session:
            session.execute(
                delete(Roster).where(Roster.community_code == COMMUNITY, Roster.week == week)
            )
            session.commit()

    clear()
    yield week
    clear()


def test_a_change_log_that_cannot_be_read_shows_no_other_weeks_changes(
    page, e2e_engine, fresh_week, week_after
):
    """Two published weeks; next week's log lists a change; the week after's log cannot be
    read: the page says so, and does not list next week's change beneath as the week after's
    (it did: the list was left as it was)."""
    people = fresh_week["people"]
    open_rosters(page, leader_of(people))
    for n in range(2):
        if n:
            page.click("#next-week")
            page.wait_for_selector("#roster-status.none")
        generate(page)
        page.click("#publish")
        page.wait_for_selector("#roster-status.published")
    first = roster_row(e2e_engine, fresh_week["week"])
    day = str(week_dates(fresh_week["week"])[0])
    side = {"date": day, "post": "A", "grid_code": None, "worker_id": 1, "worker_name": "赵一"}
    change = {
        "id": 1,
        "action": "reassign",
        "for_leave_id": None,
        "before": side,
        "after": {**side, "worker_id": 2, "worker_name": "钱二"},
        "changed_by_name": "孙三",
        "changed_at": datetime.now(UTC).isoformat(),
    }

    def changes(route):
        if f"/rosters/{first.id}/changes" in route.request.url:
            route.fulfill(json=[change])
        else:
            route.fulfill(
                status=500,
                content_type="application/problem+json",
                json={"title": "Internal Server Error", "status": 500, "detail": "boom"},
            )

    page.route("**/api/v1/rosters/*/changes", changes)
    page.click("#prev-week")
    page.wait_for_function(
        "() => document.querySelector('#changes summary').textContent === '变更记录（1）'"
    )
    page.click("#changes summary")  # opened: it stays open for the next week
    assert page.locator("#changes-list li").count() == 1
    page.click("#next-week")
    page.wait_for_selector("#changes-error:not([hidden])")
    assert page.inner_text("#changes summary") == "变更记录（?）"
    assert "boom" in page.inner_text("#changes-error")
    assert page.locator("#changes-list li").count() == 0
    assert page.is_hidden("#changes-empty")  # nor that there was no change


def test_a_week_that_cannot_be_read_shows_no_other_weeks_change_log(page, e2e_engine, fresh_week):
    """Next week published, its log listing a change; the week after cannot be read: the page
    says so and shows no change log (before, next week's stayed beneath the error)."""
    people = fresh_week["people"]
    open_rosters(page, leader_of(people))
    generate(page)
    page.click("#publish")
    page.wait_for_selector("#roster-status.published")
    day = str(week_dates(fresh_week["week"])[0])
    side = {"date": day, "post": "A", "grid_code": None, "worker_id": 1, "worker_name": "赵一"}
    change = {
        "id": 1,
        "action": "edit",
        "for_leave_id": None,
        "before": side,
        "after": {**side, "worker_id": 2, "worker_name": "钱二"},
        "changed_by_name": "孙三",
        "changed_at": datetime.now(UTC).isoformat(),
    }
    page.route("**/api/v1/rosters/*/changes", lambda route: route.fulfill(json=[change]))
    page.reload()
    page.wait_for_function(
        "() => document.querySelector('#changes summary').textContent === '变更记录（1）'"
    )
    after = week_of(datetime.now(UTC) + timedelta(days=14))
    page.route(
        f"**/api/v1/communities/{COMMUNITY}/rosters/{after}",
        lambda route: route.fulfill(
            status=500,
            content_type="application/problem+json",
            json={"title": "Internal Server Error", "status": 500, "detail": "boom"},
        ),
    )
    page.click("#next-week")
    page.wait_for_selector("#action-error:not([hidden])")
    assert "boom" in page.inner_text("#action-error")
    assert page.is_hidden("#changes")


def test_generating_again_after_a_lost_answer_shows_the_draft_made_not_another(
    page, e2e_engine, fresh_week
):
    """The week was generated but the answer never came: pressed again, the week was solved
    anew (another draft than the one stored, those told of its gaps told twice). The first
    press's Idempotency-Key goes again and the first draft is shown."""
    open_rosters(page, leader_of(fresh_week["people"]))
    keys = lose_the_first_answer(page, f"**/api/v1/communities/{COMMUNITY}/rosters")
    page.click("#generate")
    page.locator("#action-error").wait_for()
    roster = roster_row(e2e_engine, fresh_week["week"])
    made = {s.id for s in shifts_of(e2e_engine, roster.id)}
    generate(page)
    page.wait_for_function("() => !document.querySelector('#generate').disabled")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert {s.id for s in shifts_of(e2e_engine, roster.id)} == made
    shown = page.locator("#grid-table .who[data-shift]").evaluate_all(
        "els => els.map(e => Number(e.dataset.shift))"
    )
    assert shown and set(shown) <= made
    assert page.is_hidden("#action-error")


def test_publishing_again_after_a_lost_answer_says_published_not_already_published(
    page, e2e_engine, fresh_week
):
    """Published, the answer lost: pressed again, the page said 已发布过 (409) of its own
    publication. With the first press's key it gets the first answer and shows the week
    published."""
    open_rosters(page, leader_of(fresh_week["people"]))
    generate(page)
    keys = lose_the_first_answer(page, "**/api/v1/rosters/*/publish")
    page.click("#publish")
    page.locator("#action-error").wait_for()
    assert roster_row(e2e_engine, fresh_week["week"]).status == "published"
    page.click("#publish")
    page.wait_for_function("() => !document.querySelector('#publish').disabled")
    page.wait_for_selector("#roster-status.published")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert page.is_hidden("#action-error")


def test_a_generation_answered_after_another_week_was_opened_is_not_shown_as_that_weeks(
    page, e2e_engine, fresh_week
):
    """The solver takes seconds: an admin who pressed 生成排班 and meanwhile went on to the
    week after saw, when the answer came, next week's draft under the week after's label,
    marked 草稿 with 发布 offered (pressed, it published next week). The answer of a week left
    is not drawn over the week opened since."""
    open_rosters(page, admin_of(fresh_week["people"]))
    held = []
    page.route(
        f"**/api/v1/communities/{COMMUNITY}/rosters",
        lambda route: held.append(route) if route.request.method == "POST" else route.continue_(),
    )
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#generate').disabled")
    after = week_of(datetime.now(UTC) + timedelta(days=14))
    page.click("#next-week")
    page.wait_for_function(
        "(w) => document.querySelector('#week-label').textContent.startsWith(w)", arg=after
    )
    page.wait_for_function(
        "() => document.querySelector('#roster-status').textContent === '尚未排班'"
    )
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_function("() => !document.querySelector('#generate').disabled")
    assert roster_row(e2e_engine, fresh_week["week"]).status == "draft"  # made, for its week
    assert page.inner_text("#week-label").startswith(after)
    assert page.inner_text("#roster-status") == "尚未排班"
    assert page.locator("#grid-table td.cell").count() == 0
    assert page.is_hidden("#publish")
    # Back on the week generated, its draft is there.
    page.click("#prev-week")
    page.wait_for_selector("#roster-status.draft")
    assert page.locator("#grid-table td.cell").count() > 0


def test_a_shifts_editor_is_reached_and_left_from_the_keyboard(page, fresh_week):
    """Opened with Enter on a name, the hand-over's select stood below the whole table with
    the focus left on the name: some eighty name buttons to tab through to reach it, and Escape
    did nothing. The select takes the focus, Escape closes the editor, and the focus goes back
    to the shift's name."""
    page.set_viewport_size({"width": 1280, "height": 800})
    open_rosters(page, admin_of(fresh_week["people"]))
    generate(page)
    first = page.locator("#grid-table button.who").first
    shift_id = first.get_attribute("data-shift")
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#shift-editor:not([hidden])")
    assert page.evaluate("() => document.activeElement.id") == "shift-worker"
    page.keyboard.press("Escape")
    assert page.is_hidden("#shift-editor")
    assert page.evaluate("() => document.activeElement.dataset.shift") == shift_id
    # Again, then Tab to 保存 and Enter: the editor closes, the focus on the name again.
    page.keyboard.press("Enter")
    page.wait_for_selector("#shift-editor:not([hidden])")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "shift-save"
    page.keyboard.press("Enter")
    page.wait_for_selector("#shift-editor", state="hidden")
    page.wait_for_function("(id) => document.activeElement?.dataset?.shift === id", arg=shift_id)


def test_regenerating_a_draft_asks_first_as_it_replaces_the_shifts_handed_on(
    page, e2e_engine, fresh_week
):
    """重新生成 stands beside 发布: one press solved the week anew, replacing the draft and
    every shift the admin had handed on in it, without a word. It asks first; cancelled,
    the draft stays."""
    open_rosters(page, admin_of(fresh_week["people"]))
    generate(page)
    roster = roster_row(e2e_engine, fresh_week["week"])
    before = {s.id for s in shifts_of(e2e_engine, roster.id)}
    page.click("#generate")
    page.wait_for_selector("#confirm-regenerate:not([hidden])")
    assert "改派" in page.inner_text("#confirm-regenerate")
    page.click("#regenerate-cancel")
    assert page.is_hidden("#confirm-regenerate")
    assert {s.id for s in shifts_of(e2e_engine, roster.id)} == before
    page.click("#generate")
    page.click("#regenerate-ok")
    page.wait_for_function("() => !document.querySelector('#generate').disabled")
    page.wait_for_selector("#confirm-regenerate", state="hidden")
    assert {s.id for s in shifts_of(e2e_engine, roster.id)}.isdisjoint(before)


def test_on_a_phone_a_leader_reads_each_name_whole(browser, live_server, fresh_week):
    """On a phone (390 px) the five days' columns left each name button room for two
    characters: 沈磊娟 stood as 沈磊 / 娟, 司马静怡 as 司马 / 静怡, down every cell. Names of
    three characters fit on a line, and the page does not scroll sideways."""
    context = browser.new_context(
        base_url=live_server, viewport={"width": 390, "height": 844}, has_touch=True
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        open_rosters(page, leader_of(fresh_week["people"]))
        generate(page)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        broken = page.evaluate(
            """() => [...document.querySelectorAll('#grid-table .who')]
              .filter((el) => el.textContent.trim().length <= 3)
              .filter((el) => {
                const range = document.createRange();
                range.selectNodeContents(el);
                return range.getClientRects().length > 1;
              })
              .map((el) => el.textContent.trim())"""
        )
        assert broken == []
        small = page.locator("#grid-table button.who").evaluate_all(
            "bs => bs.filter((b) => b.getBoundingClientRect().height < 40).length"
        )
        assert small == 0
        screenshot(page, "rosters-phone")
    finally:
        context.close()


PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server):
    """A page on a phone held upright (390x844, a touch screen); no script error nor CSP
    violation on it."""
    context = browser.new_context(base_url=live_server, viewport=PHONE, has_touch=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: _csp_violation(m) and errors.append(m.text))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


@pytest.fixture
def four_character_name(e2e_engine, fresh_week):
    """One of the community's workers called 欧阳明月 (a compound surname, four characters)
    meanwhile; their own name back afterwards."""
    from api.models import User

    worker = min(
        (u for u in fresh_week["people"].values() if u.role == "worker" and u.active),
        key=lambda u: u.username,
    )
    with Session(e2e_engine) as session:
        session.get(User, worker.id).display_name = "欧阳明月"
        session.commit()
    yield "欧阳明月"
    with Session(e2e_engine) as session:
        session.get(User, worker.id).display_name = worker.display_name
        session.commit()


def test_on_a_phone_a_four_character_name_stands_whole_on_one_line_in_its_cell(
    phone, fresh_week, four_character_name
):
    """On a phone the name buttons had room for three characters: 欧阳明月 stood as 欧阳明 /
    月 in every cell it held, read as 欧阳明 at a glance. Four characters fit on one line,
    inside the cell, and the page still does not scroll sideways."""
    open_rosters(phone, leader_of(fresh_week["people"]))
    generate(phone)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    names = phone.evaluate(
        """(name) => [...document.querySelectorAll('#grid-table .who')]
          .filter((el) => el.textContent === name)
          .map((el) => {
            const range = document.createRange();
            range.selectNodeContents(el);
            const text = range.getBoundingClientRect();
            const cell = el.closest('td').getBoundingClientRect();
            return {
              lines: range.getClientRects().length,
              clipped: el.scrollWidth > el.clientWidth,
              inside: text.left >= cell.left && text.right <= cell.right,
            };
          })""",
        four_character_name,
    )
    assert names, "the worker holds no shift this week"
    assert all(n == {"lines": 1, "clipped": False, "inside": True} for n in names), names
    screenshot(phone, "rosters-phone-four-characters")


def in_viewport(box) -> bool:
    return box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]


def test_on_a_phone_a_shifts_editor_opens_right_under_the_tapped_name(phone, fresh_week):
    """On a phone the hand-over editor stood below the whole table: a name tapped in the
    window's row opened it some 500 px further down, away from the day and post it changes.
    It opens right under the tapped name's row, on the screen with the name, its select
    focused; Escape closes it and the page is back at the name, which has the focus."""
    open_rosters(phone, leader_of(fresh_week["people"]))
    generate(phone)
    for name in (
        phone.locator("tr.post-A button.who").first,
        phone.locator("tr.post-B button.who").last,
    ):
        shift_id = name.get_attribute("data-shift")
        name.scroll_into_view_if_needed()
        name.tap()
        editor = phone.locator("#shift-editor")
        editor.wait_for()
        cell = name.locator("xpath=ancestor::td").bounding_box()
        box = editor.bounding_box()
        under = box["y"] - (cell["y"] + cell["height"])
        assert -1 <= under <= 12, f"the editor stands {under:.0f} px below the tapped name's cell"
        assert box["x"] <= cell["x"] + cell["width"] / 2 <= box["x"] + box["width"]  # beneath
        assert in_viewport(box) and in_viewport(name.bounding_box())
        assert phone.evaluate("() => document.activeElement.id") == "shift-worker"
        screenshot(phone, "rosters-phone-editor")
        # Read elsewhere meanwhile, then closed: the page comes back to the name.
        phone.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        phone.keyboard.press("Escape")
        assert editor.is_hidden()
        assert phone.evaluate("() => document.activeElement.dataset.shift") == shift_id
        assert in_viewport(name.bounding_box())
