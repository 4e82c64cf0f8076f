"""The audit log's page (/audit) in headless Chromium, on the demo district: a community admin
finds who read a household (from its row in the register) after a grid leader opened it there,
narrows the log by user, action and day, and reads the entries about the community's records
whoever read them; a worker and a grid leader are told the page is not theirs; on a phone each
entry is a card within the screen; the page speaks English too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, screenshot, sign_in
from tests.e2e.test_accounts import PHONE, TAP, TOO_SMALL, WIDER_THAN_SCREEN
from tests.e2e.test_register import grid_households, open_register, row


def open_audit(page, username: str = "admin01", query: str = "") -> None:
    page.goto(f"/audit{query}")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")


def entries(page) -> list[dict]:
    """The entries shown: who, what, action, as their cells read."""
    page.wait_for_selector("#entries tbody tr[data-id], #entries tbody td.empty")
    return page.locator("#entries tbody tr[data-id]").evaluate_all(
        """rows => rows.map((r) => ({
             who: r.querySelector('td.col-who').innerText,
             what: r.querySelector('td.col-what').innerText,
             action: r.querySelector('td.col-action').innerText,
             when: r.querySelector('td.col-when').innerText }))"""
    )


def sign_out(page) -> None:
    with page.expect_navigation():
        page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")


def user_id(e2e_engine, username: str) -> int:
    from api.models import User

    with Session(e2e_engine) as session:
        return session.scalar(select(User.id).where(User.username == username))


def display_name(e2e_engine, username: str) -> str:
    from api.models import User

    with Session(e2e_engine) as session:
        return session.scalar(select(User.display_name).where(User.username == username))


def test_an_admin_finds_who_read_a_household_after_a_leader_opened_it_in_the_register(
    page, e2e_engine
):
    household = grid_households(e2e_engine)[0]
    # The leader opens the household in the register (its removal asked: GET /households/ID).
    open_register(page, "leader01", query=f"?household={household}")
    page.locator("#removal-dialog").wait_for()
    page.locator("#removal-dialog button.cancel").click()
    sign_out(page)
    # The admin, on the register, taps 审计 on the household's row.
    open_register(page, "admin01")
    page.select_option("#filter-grid", DEMO_GRID)
    row(page, household).wait_for()
    audit_button = row(page, household).locator("a.audit")
    assert audit_button.inner_text() == "审计"
    with page.expect_navigation():
        audit_button.click()
    assert f"/audit?household={household}" in page.url
    page.wait_for_selector("body[data-ready='1']")
    shown = entries(page)
    leader = display_name(e2e_engine, "leader01")
    reads = [e for e in shown if leader in e["who"]]
    assert reads, shown
    assert "网格长" in reads[0]["who"] and reads[0]["action"] == "查看"
    assert "住户" in reads[0]["what"]
    # Newest first: the admin's own reads (the register's list, this household) come above.
    assert "社区管理员" in shown[0]["who"]
    # The household named above the list, by its address.
    assert page.locator("#household-chosen").is_visible()
    assert "号楼" in page.locator("#household-chosen").inner_text()
    screenshot(page, "audit-household")


def test_the_filters_narrow_the_log_to_a_user_an_action_and_a_day(page, e2e_engine):
    household = grid_households(e2e_engine)[0]
    open_register(page, "leader01", query=f"?household={household}")
    page.locator("#removal-dialog").wait_for()
    page.locator("#removal-dialog button.cancel").click()
    sign_out(page)
    open_audit(page)
    leader = display_name(e2e_engine, "leader01")
    # A user of the community, chosen from the list by name.
    page.select_option("#filter-user", str(user_id(e2e_engine, "leader01")))
    shown = entries(page)
    assert shown and all(leader in e["who"] for e in shown)
    # An action: none of the leader's entries of today is an export.
    page.select_option("#filter-action", "export")
    page.wait_for_selector("#entries tbody td.empty")
    page.select_option("#filter-action", "read")
    shown = entries(page)
    assert shown and all(e["action"] == "查看" for e in shown)
    # A day: until yesterday, nothing of today's.
    today = page.evaluate("() => new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10)")
    page.fill("#filter-since", today)
    page.dispatch_event("#filter-since", "change")
    assert entries(page)
    page.fill("#filter-since", "")
    page.fill("#filter-until", "2020-01-01")
    page.dispatch_event("#filter-until", "change")
    page.wait_for_selector("#entries tbody td.empty")


def test_a_household_is_found_by_its_address_and_its_history_shown(page, e2e_engine):
    household = grid_households(e2e_engine)[0]
    open_audit(page)
    # Its address typed as a clerk writes it: the households found offered to choose.
    from api.models import Household

    with Session(e2e_engine) as session:
        h = session.get(Household, household)
        words = " ".join(p for p in (h.building, h.unit, h.floor, h.room) if p)
    page.fill("#filter-address", words)
    option = page.locator(f"#address-results button[data-id='{household}']")
    option.wait_for()
    option.click()
    page.wait_for_selector("#household-chosen:not([hidden])")
    assert f"household={household}" in page.url
    assert entries(page)
    # Cleared: the whole log again.
    page.click("#household-clear")
    page.wait_for_selector("#household-chosen", state="hidden")
    assert "household=" not in page.url


def test_the_records_view_shows_a_district_viewers_reads_of_the_communitys_households(
    page, e2e_engine
):
    open_register(page, "viewer")  # the viewer lists the district's households
    sign_out(page)
    open_audit(page)
    assert not any("viewer" in e["who"] for e in entries(page))
    page.check("#view-records")
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('#entries td.col-who')]"
        ".some((td) => td.innerText.includes(name))",
        arg="viewer",
    )


def test_a_worker_and_a_grid_leader_are_told_the_page_is_not_theirs(page):
    for username in ("worker01", "leader01"):
        page.goto("/audit")
        sign_in(page, username, DEMO_PASSWORD)
        notice = page.locator("#notice")
        notice.wait_for()
        assert "社区管理员" in notice.inner_text()
        assert page.locator("#audit-section").is_hidden()
        assert page.locator(".error").filter(has_text="403").count() == 0
        sign_out(page)


def test_the_register_offers_no_audit_link_to_a_leader(page):
    open_register(page, "leader01")
    page.select_option("#filter-grid", DEMO_GRID)
    page.wait_for_selector("#households tbody tr[data-id]")
    assert page.locator("#households a.audit").count() == 0


def test_on_a_phone_each_entry_is_a_card_within_the_screen(page, e2e_engine):
    household = grid_households(e2e_engine)[0]
    page.set_viewport_size(PHONE)
    open_audit(page, query=f"?household={household}")
    assert entries(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    assert page.evaluate(TOO_SMALL, ["#audit-section", TAP]) == []
    screenshot(page, "audit-phone")


def test_the_audit_page_speaks_english_too(page):
    page.goto("/audit?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#toolbar strong").inner_text() == "Audit log"
    assert page.locator("#entries th").first.inner_text() == "When"
    shown = entries(page)
    assert shown and "Community admin" in shown[0]["who"]


def test_on_the_offices_desktop_the_admins_english_register_with_audit_needs_no_sideways_scroll(
    page,
):
    """The admin's rows carry one action more (Audit) than the leader's: still within 1366 px."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/register?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    box = page.locator(".table-scroll")
    assert box.evaluate("(s) => s.scrollWidth - s.clientWidth") <= 0
    link = page.locator("#households tbody tr[data-id]").first.locator("a.audit")
    assert link.inner_text() == "Audit"


def test_a_district_viewer_opens_a_households_history_from_the_register(page, e2e_engine):
    household = grid_households(e2e_engine)[0]
    open_register(page, "viewer")
    page.select_option("#filter-grid", DEMO_GRID)
    with page.expect_navigation():
        row(page, household).locator("a.audit").click()
    page.wait_for_selector("body[data-ready='1']")
    assert "号楼" in page.locator("#household-chosen").inner_text()
    assert entries(page)


OLD = datetime(2020, 3, 1, 2, 0, tzinfo=UTC)  # past the 184 days kept: the rows may be deleted


@pytest.fixture()
def old_entries(e2e_engine):
    """60 old entries of the admin's (a household changed, one a minute from OLD), deleted
    afterwards with any a test adds after them."""
    from api.models import AuditEntry

    admin = user_id(e2e_engine, "admin01")

    def write(at: datetime, household: int) -> None:
        with Session(e2e_engine) as session:
            session.add(
                AuditEntry(
                    at=at,
                    user_id=admin,
                    action="update",
                    resource="household",
                    resource_ids=[household],
                    fields=["phone"],
                    path=f"/api/v1/households/{household}",
                )
            )
            session.commit()

    for n in range(60):
        write(OLD + timedelta(minutes=n), 1000 + n)
    yield write
    with Session(e2e_engine) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.at < datetime(2021, 1, 1, tzinfo=UTC)))
        session.commit()


def test_paging_on_neither_repeats_nor_skips_entries_written_meanwhile(page, old_entries):
    """Entries are written all day (every read of a resident's data): with page numbers, one
    written between two pages shifted the list, and the next page began with an entry already
    read."""
    open_audit(page)
    page.select_option("#filter-action", "update")
    page.fill("#filter-until", "2020-12-31")
    page.dispatch_event("#filter-until", "change")
    page.wait_for_selector("#entries tbody tr[data-id] >> nth=49")
    first = page.locator("#entries tbody tr[data-id]").evaluate_all(
        "rows => rows.map((r) => r.dataset.id)"
    )
    assert len(first) == 50
    assert "共 60 条" in page.inner_text("#page-info")
    old_entries(OLD + timedelta(hours=5), 2000)  # written meanwhile, newest of all
    page.click("#next")
    page.wait_for_function("() => document.querySelector('#page-info').innerText.includes('2/2')")
    second = page.locator("#entries tbody tr[data-id]").evaluate_all(
        "rows => rows.map((r) => r.dataset.id)"
    )
    assert len(second) == 10 and not set(first) & set(second)
    page.click("#prev")
    page.wait_for_function("() => document.querySelector('#page-info').innerText.includes('1/')")
    assert page.locator("#entries tbody tr[data-id]").count() == 50


def test_the_records_view_numbers_its_pages_without_counting_the_whole_log(
    page, e2e_engine, old_entries
):
    """The records view's answer counts no further than the next page's first entry (the API
    walks the log newest first): while there is a next page its pages are numbered, not
    counted ("共 51 条" would be a count of nothing)."""
    from api.models import Grid, Household, User

    with Session(e2e_engine) as session:
        community = session.scalar(select(User.community_code).where(User.username == "admin01"))
        ours = session.scalar(
            select(Household.id)
            .join(Grid, Grid.id == Household.grid_id)
            .where(Grid.community_code == community)
            .limit(1)
        )
    for n in range(55):  # about the community's household, beside the 60 of the fixture
        old_entries(OLD + timedelta(hours=2, minutes=n), ours)
    open_audit(page)
    page.check("#view-records")
    page.fill("#filter-until", "2020-12-31")
    page.dispatch_event("#filter-until", "change")
    page.wait_for_selector("#entries tbody tr[data-id] >> nth=49")
    page.wait_for_function("() => document.querySelector('#page-info').innerText === '第 1 页'")
    assert page.locator("#next").is_enabled()
    page.click("#next")
    page.wait_for_function("() => document.querySelector('#page-info').innerText === '第 2 页'")
    assert page.locator("#entries tbody tr[data-id]").count() >= 5


def test_a_household_not_theirs_is_said_in_chinese_and_the_whole_log_shown(page):
    open_audit(page, query="?household=2000000000")
    status = page.locator("#status")
    assert status.is_visible()
    assert "找不到该住户" in status.inner_text()
    assert "not found" not in status.inner_text()
    assert page.locator("#household-chosen").is_hidden()
    assert "household=" not in page.url
    entries(page)  # the whole log: no household asked
    assert page.locator("#entries td.error").count() == 0


def test_a_purge_of_the_log_is_said_in_chinese(page, old_entries, e2e_engine):
    from api.models import AuditEntry

    with Session(e2e_engine) as session:
        session.add(
            AuditEntry(
                at=OLD + timedelta(days=1),
                user_id=None,
                action="purge",
                resource="audit_log",
                resource_ids=[],
                fields=["removed 1234", "before 2019-08-29T02:00:00+00:00"],
                path="gridwork purge-audit",
            )
        )
        session.commit()
    open_audit(page)
    page.select_option("#filter-action", "purge")
    page.wait_for_selector("#entries tbody tr[data-id] td.col-detail:has-text('1234')")
    purge = entries(page)
    detail = page.locator("#entries tbody tr[data-id] td.col-detail").first.inner_text()
    assert "删除 1234 条" in detail and "2019" in detail and "removed" not in detail
    assert purge[0]["action"] == "清理过期记录"
    assert "系统" in purge[0]["who"]


def test_a_switched_off_account_is_named_so_in_the_people_list(page, e2e_engine):
    """A worker who left is the one the office checks: their account is in the list, marked."""
    from api.models import User

    with Session(e2e_engine) as session:
        worker = session.scalar(select(User).where(User.username == "worker01"))
        worker_id, worker.active = worker.id, False
        session.commit()
    try:
        open_audit(page)
        option = page.locator(f"#filter-user option[value='{worker_id}']")
        assert "已停用" in option.inner_text()
    finally:
        with Session(e2e_engine) as session:
            session.get(User, worker_id).active = True
            session.commit()


def test_the_office_pages_toolbars_lead_admins_to_the_log_and_not_leaders(page):
    open_register(page, "admin01")
    assert page.locator("#to-audit").inner_text() == "审计日志"
    with page.expect_navigation():
        page.click("#to-audit")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#toolbar strong").inner_text() == "审计日志"
    page.goto("/accounts")
    page.wait_for_selector("#to-audit:not([hidden])")
    sign_out(page)
    open_register(page, "leader01")
    assert page.locator("#to-audit").is_hidden()


def test_a_link_with_a_user_opens_that_persons_entries(page, e2e_engine):
    household = grid_households(e2e_engine)[0]
    open_register(page, "leader01", query=f"?household={household}")
    page.locator("#removal-dialog").wait_for()
    page.locator("#removal-dialog button.cancel").click()
    sign_out(page)
    leader = user_id(e2e_engine, "leader01")
    open_audit(page, query=f"?user={leader}")
    assert page.locator("#filter-user").input_value() == str(leader)
    shown = entries(page)
    name = display_name(e2e_engine, "leader01")
    assert shown and all(name in e["who"] for e in shown)
    # Another person chosen: the page's address follows.
    page.select_option("#filter-user", "")
    page.wait_for_function("() => !location.search.includes('user=')")


def test_on_a_phone_the_registers_audit_link_fits_and_is_big_enough_to_tap(page):
    page.set_viewport_size(PHONE)
    open_register(page, "admin01")
    page.wait_for_selector("#households a.audit")
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    assert page.evaluate(TOO_SMALL, ["#households", TAP]) == []
