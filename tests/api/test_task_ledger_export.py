"""The tasks' ledger as a file (工单台账): `GET /api/v1/tasks/export`.

The community office files the week's tasks, sends them up to the street, or goes through them
beside the hotline's own list. The file holds the tasks the list gives for the same filters, in
the same order, one line each in Chinese headers and words and Beijing time; nothing of a
resident's (no complainant, description or location), for a file leaves the system. Every task
in it is an audit entry; a file too large to open is refused with a 422 that says how to narrow it.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from api.models import AuditEntry
from api.services import task_files
from api.sheets import TABLE_TYPES
from tests.factories import A1, A2, B1, A, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing, 2026-W47


def export(client, world, user="admin_a", **query):
    return client.get("/api/v1/tasks/export", query_string=query, headers=world.auth(user))


def rows_of(response) -> list[list]:
    if response.mimetype == "text/csv":
        assert response.data.startswith("\ufeff".encode())  # Excel opens it as UTF-8
        return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).worksheets[0]
    assert sheet.title == "工单台账"
    width = len(task_files.HEADER)  # a row's empty cells at its end are not stored
    rows = sheet.iter_rows(values_only=True, max_col=width)
    return [["" if v is None else str(v) for v in row] + [""] * (width - len(row)) for row in rows]


def line(rows: list[list], task_id: int) -> dict:
    header, *body = rows
    [found] = [dict(zip(header, row, strict=True)) for row in body if row[0] == str(task_id)]
    return found


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_weeks_ledger_is_a_file_in_chinese_words_and_beijing_time(client, world, session, fmt):
    ticket = make_task(
        session,
        now=T0,
        source="hotline",
        type="complaint",
        urgency="utility",
        title="暖气不热",
        external_id="BJ2026111700123",
        complainant={"name": "王女士", "phone": "13900001111"},
        description="三单元502，老人独居",
    )
    done = make_task(session, A2, now=T0 + timedelta(hours=1), title="楼道灯不亮")
    done.status, done.resolved_at = "resolved", T0 + timedelta(hours=5)
    earlier = make_task(session, now=T0 - timedelta(days=8))  # 2026-W46, overdue by now
    session.flush()

    response = export(client, world, week="2026-W47", sort="newest", format=fmt)

    assert response.status_code == 200, response.data
    rows = rows_of(response)
    assert rows[0] == task_files.HEADER
    assert [row[0] for row in rows[1:]] == [str(done.id), str(ticket.id)]  # newest first
    assert str(earlier.id) not in [row[0] for row in rows[1:]]
    first = line(rows, ticket.id)
    assert first["登记时间"] == "2026-11-17 10:00"  # Beijing time, to the minute
    assert first["来源"] == "12345热线" and first["12345工单号"] == "BJ2026111700123"
    assert first["诉求类型"] == "投诉" and first["紧急程度"] == "水电气热"
    assert first["事项"] == "暖气不热" and first["社区"] == "社区001" and first["网格"] == A1
    assert first["状态"] == "已派单" and first["处理人"]
    assert first["办理时限"] == "2026-11-18 10:00"  # utility: 24 h
    assert first["是否超期"] == "是"  # the tests' clock is past it
    assert line(rows, done.id)["状态"] == "已办结"
    assert line(rows, done.id)["办结时间"] == "2026-11-17 15:00"
    assert line(rows, done.id)["是否超期"] == "否"
    text = " ".join(" ".join(row) for row in rows)
    assert "王女士" not in text and "13900001111" not in text and "老人独居" not in text


def test_the_file_holds_the_callers_tasks_only(client, world, session):
    mine = make_task(session, now=T0)
    other_grid = make_task(session, A2, now=T0)
    elsewhere = make_task(session, B1, now=T0)
    session.flush()

    def ids(user, **query):
        response = export(client, world, user, week="2026-W47", format="csv", **query)
        assert response.status_code == 200, response.json
        return {int(row[0]) for row in rows_of(response)[1:]}

    assert ids("worker_a1", assignee="me") == {mine.id}
    assert ids("admin_a") == {mine.id, other_grid.id}
    assert ids("admin_b") == {elsewhere.id}
    assert ids("viewer_110101", community=A) == {mine.id, other_grid.id}
    assert ids("viewer_110101", street="110101001") == {mine.id, other_grid.id, elsewhere.id}
    assert ids("viewer_110102") == set()


def test_a_ticket_passed_on_names_the_task_it_went_to_only_to_who_may_see_it(client, world):
    """As the list does (`transferred_to_id`): community A's file does not name community B's
    task; the district's viewer, who sees both, reads where the ticket went."""
    from tests.api.test_tasks_hotline_redispatch import TICKET, open_ticket

    first = open_ticket(client, world, "admin_a", A1).json
    there = open_ticket(client, world, "admin_b", B1, redispatch=True).json

    def passed_on(user):
        rows = rows_of(export(client, world, user, external_id=TICKET, format="csv"))
        return line(rows, first["id"])["改派至"]

    assert passed_on("admin_a") == ""
    assert passed_on("viewer_110101") == str(there["id"])


def test_a_title_typed_as_a_formula_opens_as_text(client, world, session):
    task = make_task(session, now=T0, title='=HYPERLINK("http://x")')
    session.flush()
    csv_rows = rows_of(export(client, world, week="2026-W47", format="csv"))
    assert line(csv_rows, task.id)["事项"] == '\'=HYPERLINK("http://x")'
    response = export(client, world, week="2026-W47", format="xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).worksheets[0]
    [cell] = [row[6] for row in sheet.iter_rows(min_row=2) if row[0].value == task.id]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'


def test_the_export_names_its_file_and_is_an_audit_entry_of_every_task(client, world, session):
    tasks = [make_task(session, now=T0), make_task(session, A2, now=T0)]
    session.flush()
    response = export(client, world, week="2026-W47", community=A)
    assert response.status_code == 200 and response.mimetype == TABLE_TYPES["xlsx"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="tasks-2026-W47-{A}.xlsx"'
    )
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id.desc())
    ).first()
    assert entry.resource == "task" and entry.user_id == world.users["admin_a"].id
    assert sorted(entry.resource_ids) == sorted(t.id for t in tasks)
    assert entry.fields == ["title"]  # no description, location or complainant in the file


def test_more_tasks_than_a_file_holds_is_a_422_naming_the_filters_that_narrow_it(
    client, world, session, app
):
    for _ in range(3):
        make_task(session, now=T0)
    session.flush()
    before = session.scalar(select(func.count(AuditEntry.id)))
    app.config["TASK_EXPORT_MAX_ROWS"] = 2
    try:
        response = export(client, world, format="csv")
        exactly = export(client, world, format="csv", assignee="me")  # none: still a file
    finally:
        app.config["TASK_EXPORT_MAX_ROWS"] = 20_000
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "week=" in response.json["detail"]
    assert exactly.status_code == 200 and rows_of(exactly) == [task_files.HEADER]
    assert session.scalar(select(func.count(AuditEntry.id))) == before


@pytest.mark.parametrize(
    "query", [{"format": "pdf"}, {"week": "2026-47"}, {"status": "done"}, {"community": "1"}]
)
def test_a_bad_filter_or_format_is_a_422(client, world, query):
    response = export(client, world, **query)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_the_files_words_are_the_pages_words():
    """The file says a status, an urgency, a type, a source, a list as the pages do."""
    common = (Path(__file__).parents[2] / "web/src/common.js").read_text()
    zh = common[common.index("zh: {") : common.index("en: {")]
    for words in (
        task_files.STATUS_WORDS,
        task_files.URGENCY_WORDS,
        task_files.TYPE_WORDS,
        task_files.SOURCE_WORDS,
        task_files.LIST_WORDS,
    ):
        for key, word in words.items():
            assert re.search(rf'\b{key}: "{word}"', zh), (key, word)
    detail = (Path(__file__).parents[2] / "web/src/task_detail.js").read_text()
    for key, word in task_files.SATISFACTION_WORDS.items():
        assert f'{key}: "{word}"' in detail
