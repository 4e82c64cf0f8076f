"""The resident register's page (/register) in headless Chromium, on the demo district: a grid
leader corrects a household's facts, takes a household found moved out of the register (from the
notice's link) and puts it back, imports a register file (a wrong row listed, nothing imported;
then the fixed file) and exports the grid; a worker is told the page is the office's, and a
district viewer reads it only."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, screenshot, sign_in
from tests.e2e.test_accounts import PHONE, TAP, TOO_SMALL, WIDER_THAN_SCREEN

IMPORTED_BUILDING = "E2E导入楼"


def open_register(page, username: str = "leader01", query: str = "") -> None:
    page.goto(f"/register{query}")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")


def choose_grid(page, code: str = DEMO_GRID) -> None:
    page.select_option("#filter-grid", code)
    page.wait_for_selector(f"#households tbody tr[data-id] td.col-grid:has-text('{code}')")


def row(page, household_id: int):
    return page.locator(f"#households tbody tr[data-id='{household_id}']")


def grid_households(e2e_engine, code: str = DEMO_GRID) -> list[int]:
    from api.models import Grid, Household

    with Session(e2e_engine) as session:
        return list(
            session.scalars(
                select(Household.id)
                .join(Grid, Grid.id == Household.grid_id)
                .where(Grid.code == code, Household.removed_at.is_(None))
                .order_by(Household.id)
            )
        )


@pytest.fixture()
def household(e2e_engine):
    """The demo grid's first household (the list's first row), put back as it was afterwards:
    its facts, and in the register."""
    from api.models import Household
    from api.services.household_removal import restore_household

    household_id = grid_households(e2e_engine)[0]
    fields = ("building", "unit", "floor", "room", "kind", "occupancy", "members", "tags", "phone")
    with Session(e2e_engine) as session:
        before = {f: getattr(session.get(Household, household_id), f) for f in fields}
    yield household_id
    with Session(e2e_engine) as session:
        h = session.get(Household, household_id, with_for_update=True)
        if h.removed_at is not None:
            restore_household(session, None, h)
        for field, value in before.items():
            setattr(h, field, value)
        session.commit()


@pytest.fixture()
def new_households(e2e_engine):
    """Households a test registers or imports are deleted afterwards; the last id before."""
    from api.models import Household

    with Session(e2e_engine) as session:
        last = session.scalar(select(func.max(Household.id)))
    yield last
    with Session(e2e_engine) as session:
        session.execute(delete(Household).where(Household.id > last))
        session.commit()


def a_point_in(e2e_engine, code: str = DEMO_GRID) -> tuple[float, float]:
    from api.models import Grid

    with Session(e2e_engine) as session:
        point = func.ST_PointOnSurface(Grid.boundary)
        lon, lat = session.execute(
            select(func.ST_X(point), func.ST_Y(point)).where(Grid.code == code)
        ).one()
    return lon, lat


def register_file(tmp_path: Path, rows: list[list]) -> Path:
    path = tmp_path / "登记表.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["楼栋", "单元", "楼层", "房号", "经度", "纬度", "类型", "居住性质", "人数", "标签", "电话"]
    )
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return path


def test_a_leader_corrects_a_households_phone_and_care_tags(page, e2e_engine, household):
    from api.models import Household

    open_register(page)
    choose_grid(page)
    row(page, household).locator("button[data-action=edit]").click()
    form = page.locator("#edit-form")
    form.locator("input[name=phone]").fill("13800001234")
    form.locator("label.tag-option", has_text="独居").locator("input").check()
    form.locator("button[type=submit]").click()

    page.wait_for_selector("#status:has-text('已保存')")
    page.wait_for_selector(
        f"#households tr[data-id='{household}'] td.col-tags .tag:has-text('独居')"
    )
    assert row(page, household).locator("td.col-phone").inner_text() == "13800001234"
    screenshot(page, "register-edited")
    with Session(e2e_engine) as session:
        saved = session.get(Household, household)
        assert saved.phone == "13800001234"
        assert "living_alone" in saved.tags


def test_a_household_is_found_by_its_address_as_a_clerk_writes_it(page, e2e_engine, household):
    from api.models import Household

    with Session(e2e_engine) as session:
        h = session.get(Household, household)
        words = f"{h.building}号楼{h.unit}单元{h.room}"  # run together, as a resident says it
    open_register(page)
    choose_grid(page)  # the community's other grids number their buildings from 1 too
    page.fill("#filter-address", words)
    page.wait_for_function(
        "(id) => [...document.querySelectorAll('#households tbody tr[data-id]')]"
        ".map((r) => r.dataset.id).join() === String(id)",
        arg=household,
    )
    page.fill("#filter-address", "1 2 3 4 5")
    page.wait_for_selector("#households tbody td.error:has-text('地址最多四个词')")


def test_a_field_the_api_refuses_is_said_beside_it_in_chinese_and_nothing_is_saved(
    page, e2e_engine, household
):
    from api.models import Household

    with Session(e2e_engine) as session:
        before = session.get(Household, household).building
    open_register(page)
    choose_grid(page)
    row(page, household).locator("button[data-action=edit]").click()
    page.fill("#edit-form input[name=building]", "楼" * 51)
    page.click("#edit-form button[type=submit]")

    error = page.locator("#edit-form .field-error[data-field=building]")
    error.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#edit-form .field-error[data-field=building]').textContent"
    )
    assert "50" in error.inner_text() and "字符" in error.inner_text()
    assert page.locator("#edit-dialog").evaluate("d => d.open")
    with Session(e2e_engine) as session:
        assert session.get(Household, household).building == before


def test_a_household_found_moved_out_is_taken_out_of_the_register_and_put_back(
    page, e2e_engine, household
):
    """The notice 住户可能已搬离 links to /register?household=ID: its removal is asked at once."""
    from api.models import Household

    open_register(page, query=f"?household={household}")
    dialog = page.locator("#removal-dialog")
    dialog.wait_for()
    assert "移出登记册" in page.locator("#removal-title").inner_text()
    assert page.locator("#removal-form select[name=reason]").input_value() == "moved_out"
    page.fill("#removal-form input[name=note]", "邻居说已搬去外区")
    page.click("#removal-form button[type=submit]")
    page.wait_for_selector("#status:has-text('已移出登记册')")
    with Session(e2e_engine) as session:
        gone = session.get(Household, household)
        assert gone.removed_at is not None and gone.removal_reason == "moved_out"

    page.select_option("#filter-status", "removed")
    removed = row(page, household)
    removed.wait_for()
    assert "已搬离" in removed.locator("td.col-status").inner_text()
    assert "邻居说已搬去外区" in removed.locator("td.col-status").inner_text()
    screenshot(page, "register-removed")
    removed.locator("button[data-action=restore]").click()
    page.click("#restore-form button[type=submit]")
    page.wait_for_selector("#status:has-text('已恢复到登记册')")
    with Session(e2e_engine) as session:
        assert session.get(Household, household).removed_at is None


def test_a_register_file_with_a_wrong_row_is_refused_whole_then_the_fixed_file_imports(
    page, e2e_engine, new_households, tmp_path
):
    from api.models import Household

    lon, lat = a_point_in(e2e_engine)
    good = [IMPORTED_BUILDING, "1", "1", "101", lon, lat, "住宅", "自住", "2", "独居", ""]
    wrong = [IMPORTED_BUILDING, "1", "1", "102", lon, lat, "城堡", "自住", "3", "", ""]
    open_register(page)
    page.click("#import-box summary")
    page.set_input_files("#import-form input[name=file]", register_file(tmp_path, [good, wrong]))
    page.click("#import-form button[type=submit]")

    problems = page.locator("#import-outcome table.problems tbody tr")
    problems.first.wait_for()
    assert "一户也没有导入" in page.locator("#import-outcome").inner_text()
    cells = [c.strip() for c in problems.first.locator("td").all_inner_texts()]
    assert cells == ["3", "类型", "类型“城堡”无法识别：应为 住宅 或 商铺。"]
    with Session(e2e_engine) as session:
        count = select(func.count()).where(Household.building == IMPORTED_BUILDING)
        assert session.scalar(count) == 0

    fixed = [IMPORTED_BUILDING, "1", "1", "102", lon, lat, "商铺", "租住", "3", "", ""]
    page.set_input_files("#import-form input[name=file]", register_file(tmp_path, [good, fixed]))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-outcome:has-text('导入成功：新增 2 户')")
    assert DEMO_GRID in page.locator("#import-outcome").inner_text()
    screenshot(page, "register-imported")
    with Session(e2e_engine) as session:
        assert session.scalar(count) == 2


def test_a_new_flat_is_registered_at_the_point_of_a_household_of_its_entrance(
    page, e2e_engine, household, new_households
):
    """A family moved into a flat the register lacks: 同楼门登记 on a household of its stair
    entrance takes that household's point, building and unit."""
    from geoalchemy2.shape import to_shape

    from api.models import Household

    open_register(page)
    choose_grid(page)
    row(page, household).locator("button[data-action=entrance]").click()
    form = page.locator("#edit-form")
    assert "同一楼门" in page.locator("#edit-title").inner_text()
    assert form.locator(".point-fields").is_hidden()
    assert form.locator("button[type=submit]").inner_text() == "登记"
    form.locator("input[name=floor]").fill("18")
    form.locator("input[name=room]").fill("1801")
    form.locator("select[name=occupancy]").select_option("tenant")
    form.locator("input[name=members]").fill("2")
    screenshot(page, "register-new-at-entrance")
    form.locator("button[type=submit]").click()

    page.wait_for_selector("#status:has-text('已登记')")
    assert DEMO_GRID in page.locator("#status").inner_text()
    with Session(e2e_engine) as session:
        model = session.get(Household, household)
        [made] = session.scalars(select(Household).where(Household.id > new_households)).all()
        assert (made.unit, made.floor, made.occupancy, made.members) == (
            model.unit,
            "18",
            "tenant",
            2,
        )
        assert to_shape(made.location).equals(to_shape(model.location))


def test_a_household_placed_outside_every_grid_is_refused_under_its_point_in_chinese(
    page, e2e_engine, new_households
):
    from api.models import Household

    with Session(e2e_engine) as session:
        before = session.scalar(select(func.count()).select_from(Household))
    open_register(page)
    page.click("#new-household")
    form = page.locator("#edit-form")
    assert form.locator(".point-fields").is_visible()
    form.locator("input[name=building]").fill(IMPORTED_BUILDING)
    form.locator("input[name=lon]").fill("100.5")
    form.locator("input[name=lat]").fill("30.1")
    form.locator("button[type=submit]").click()

    error = form.locator(".field-error[data-field=location]")
    page.wait_for_function(
        "() => document.querySelector('#edit-form .field-error[data-field=location]').textContent"
    )
    assert "不在任何网格内" in error.inner_text()
    with Session(e2e_engine) as session:
        assert session.scalar(select(func.count()).select_from(Household)) == before


def test_the_grid_chosen_is_exported_as_an_excel_register(page, e2e_engine):
    open_register(page)
    choose_grid(page)
    with page.expect_download() as info:
        page.click("#export-xlsx")
    download = info.value
    assert download.suggested_filename.startswith(f"住户登记册-{DEMO_GRID}-")
    assert download.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("楼栋", "单元", "楼层", "房号")
    assert len(rows) - 1 == len(grid_households(e2e_engine))


def test_a_worker_is_told_the_register_is_the_offices(page):
    page.goto("/register")
    sign_in(page, "worker01", DEMO_PASSWORD)
    notice = page.locator("#notice")
    notice.wait_for()
    assert "社区办公室和网格长" in notice.inner_text()
    assert page.locator("#register-section").is_hidden()


def test_a_district_viewer_reads_the_register_with_phones_masked_and_changes_nothing(page):
    open_register(page, "viewer")
    assert "只读" in page.locator("#notice").inner_text()
    assert page.locator(".files").is_hidden()
    assert page.locator("#households button[data-action]").count() == 0
    phones = [p for p in page.locator("#households td.col-phone").all_inner_texts() if p != "—"]
    assert phones and all("****" in p for p in phones)


def test_on_a_phone_each_household_is_a_card_within_the_screen(page):
    page.set_viewport_size(PHONE)
    open_register(page)
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    screenshot(page, "register-phone")


def test_the_register_speaks_english_too(page):
    page.goto("/register?lang=en")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#toolbar strong").inner_text() == "Resident register"
    assert page.locator("#households th").first.inner_text() == "Address"


def test_on_a_phone_the_removal_asked_from_the_notice_fits_and_is_big_enough_to_tap(
    page, household
):
    """A leader taps 住户可能已搬离 on the phone: the removal form opens on the register's page."""
    page.set_viewport_size(PHONE)
    open_register(page, query=f"?household={household}")
    page.locator("#removal-dialog").wait_for()
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    assert page.evaluate(TOO_SMALL, ["#removal-dialog", TAP]) == []
    screenshot(page, "register-phone-removal")


@pytest.mark.parametrize("width, lang", [(1366, "en"), (1024, "en"), (1024, "zh")])
def test_on_the_offices_desktop_the_register_needs_no_sideways_scrolling(page, width, lang):
    """At 1366x768 the English page's table was 50 px wider than its box: the action buttons
    ("Register one at this entrance", "Remove from the register") were cut off at its right
    edge, reached only by the sideways scrollbar under the 50th row. At 1024 px, the smaller
    office screen, it still was until 2026-12-06."""
    page.set_viewport_size({"width": width, "height": 768})
    page.goto(f"/register?lang={lang}")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    box = page.locator(".table-scroll")
    assert box.evaluate("(s) => s.scrollWidth - s.clientWidth") <= 0
    right = box.bounding_box()["x"] + box.bounding_box()["width"]
    buttons = page.locator("#households tbody tr[data-id]").first.locator("td.actions button")
    assert buttons.count() == 3
    for button in buttons.all():
        assert button.bounding_box()["x"] + button.bounding_box()["width"] <= right + 0.5


def test_an_old_files_row_of_a_household_since_removed_is_refused_in_chinese(
    page, e2e_engine, household, tmp_path
):
    """A clerk imports with 按文件更新 a register exported before a household left it: the row
    is refused, and the refusal (and the other update-mode ones) stood in English on the
    Chinese page."""
    from datetime import UTC, datetime

    from api.models import Household
    from api.services.household_removal import remove_household

    with Session(e2e_engine) as session:
        h = session.get(Household, household, with_for_update=True)
        lon, lat = session.execute(
            select(func.ST_X(Household.location), func.ST_Y(Household.location)).where(
                Household.id == household
            )
        ).one()
        cells = [h.building, h.unit or "", h.floor or "", h.room or "", lon, lat, "住宅"]
        cells += ["自住", str(h.members or 1), "", ""]
        remove_household(session, None, h, reason="moved_out", now=datetime.now(UTC))
        session.commit()
    open_register(page)
    page.click("#import-box summary")
    page.set_input_files("#import-form input[name=file]", register_file(tmp_path, [cells]))
    page.check("#import-form input[name=mode][value=update]")
    page.click("#import-form button[type=submit]")

    problems = page.locator("#import-outcome table.problems tbody tr")
    problems.first.wait_for()
    row_, column, problem = (c.strip() for c in problems.first.locator("td").all_inner_texts())
    assert (row_, column) == ("2", "地址")
    assert problem == (
        f"同一地址、同一位置的住户 {household} 已移出登记册：请删去此行，或先恢复该住户，"
        "或以“新增住户”方式登记新住户。"
    )


def test_a_removal_dated_before_the_households_last_visit_is_refused_in_chinese(page, household):
    """The leader gives the day the family really left, before the visit that found them gone:
    the refusal beside 移出日期 was the server's English."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    yesterday = datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)
    open_register(page, query=f"?household={household}")
    page.locator("#removal-dialog").wait_for()
    page.fill("#removal-form input[name=effective_date]", yesterday.isoformat())
    page.click("#removal-form button[type=submit]")

    page.wait_for_function(
        "() => document.querySelector('#removal-form .field-error[data-field=effective_date]')"
        ".textContent"
    )
    said = page.locator("#removal-form .field-error[data-field=effective_date]").inner_text()
    # Before its last visit, or before its tags last changed (a test before restored it today).
    assert said.startswith(f"{yesterday.isoformat()} 早于该住户"), said
    assert "before" not in said
    assert page.locator("#removal-dialog").evaluate("d => d.open")


def test_a_restore_refused_is_said_in_chinese(page, e2e_engine, household, new_households):
    """A family taken out of the register by mistake, a new one registered at its door since:
    its 恢复 is refused (409), and the refusal stood in the server's English under
    服务器答复."""
    from datetime import UTC, datetime

    from api.models import Household
    from api.services.household_removal import remove_household
    from api.services.households import create_household, household_lonlat

    with Session(e2e_engine) as session:
        h = session.get(Household, household, with_for_update=True)
        lon, lat = household_lonlat(h)
        address = {part: getattr(h, part) for part in ("building", "unit", "floor", "room")}
        remove_household(session, None, h, reason="duplicate", now=datetime.now(UTC))
        made = create_household(session, None, {**address, "lon": lon, "lat": lat})
        session.commit()
        made_id = made.id
    open_register(page, query=f"?household={household}")
    page.locator("#restore-dialog").wait_for()
    page.click("#restore-form button[type=submit]")

    page.wait_for_function("() => document.querySelector('#restore-form .form-error').textContent")
    said = page.locator("#restore-form .form-error").inner_text()
    assert said.startswith(f"该地址在此位置已登记为住户 {made_id}"), said
    assert "registered" not in said
    assert page.locator("#restore-dialog").evaluate("d => d.open")


def test_a_phone_excel_shortened_is_refused_with_the_fix_said_in_chinese(
    page, e2e_engine, new_households, tmp_path
):
    lon, lat = a_point_in(e2e_engine)
    row_ = [IMPORTED_BUILDING, "1", "1", "101", lon, lat, "住宅", "自住", "2", "", "1.38E+10"]
    open_register(page)
    page.click("#import-box summary")
    page.set_input_files("#import-form input[name=file]", register_file(tmp_path, [row_]))
    page.click("#import-form button[type=submit]")
    problem = page.locator("#import-outcome table.problems tbody tr").first
    problem.wait_for()
    cells = [c.strip() for c in problem.locator("td").all_inner_texts()]
    assert cells[:2] == ["2", "电话"]
    assert "科学计数法" in cells[2] and "文本" in cells[2]
    assert "the column as text" not in cells[2]
    assert "文件中删去的住户不会因此移出登记册" in page.locator("#import-form").inner_text()
