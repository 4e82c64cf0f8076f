"""The worker's week in the app: the shifts of this week's published roster, today marked."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.services.weeks import LOCAL, week_dates, week_of
from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, sign_in

COMMUNITY = DEMO_GRID[:12]


@pytest.fixture
def published_week(e2e_engine):
    """worker01 rostered this week: A on Monday, B in the demo grid every other weekday."""
    from api.models import Grid, Roster, Shift, User

    week = week_of(datetime.now(UTC))
    with Session(e2e_engine) as session:
        worker = session.scalar(select(User.id).where(User.username == "worker01"))
        grid = session.scalar(select(Grid.id).where(Grid.code == DEMO_GRID))
        roster = Roster(
            community_code=COMMUNITY, week=week, status="published", published_at=datetime.now(UTC)
        )
        days = week_dates(week)
        roster.shifts = [Shift(date=days[0], post="A", worker_id=worker)] + [
            Shift(date=d, post="B", worker_id=worker, grid_id=grid) for d in days[1:5]
        ]
        session.add(roster)
        session.commit()
        made = roster.id
    yield days[:5]
    with Session(e2e_engine) as session:
        session.execute(delete(Roster).where(Roster.id == made))
        session.commit()


def test_an_a_post_in_a_hall_with_staggered_hours_says_its_own_slot(
    page, e2e_engine, published_week
):
    from api.models import Shift, User

    with Session(e2e_engine) as session:
        worker = session.scalar(select(User.id).where(User.username == "worker01"))
        shift = session.scalar(
            select(Shift).where(
                Shift.worker_id == worker, Shift.date == published_week[0], Shift.post == "A"
            )
        )
        shift.slot_start, shift.slot_end = time(11, 30), time(20)
        session.commit()
    page.goto("/app")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    listed = page.locator("#week-shifts li.week-shift")
    listed.first.wait_for()
    assert listed.first.inner_text() == (
        f"周一 {published_week[0]:%m-%d} · A岗 · 社区服务大厅窗口 11:30–20:00"
    )


def test_the_worker_sees_their_weeks_shifts_with_today_marked(page, published_week):
    page.goto("/app")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    listed = page.locator("#week-shifts li.week-shift")
    listed.first.wait_for()
    texts = listed.all_inner_texts()
    assert texts[0] == f"周一 {published_week[0]:%m-%d} · A岗 · 社区服务大厅窗口"
    assert texts[1:] == [
        f"{w} {d:%m-%d} · B岗 · 入户走访 {DEMO_GRID}"
        for w, d in zip(["周二", "周三", "周四", "周五"], published_week[1:], strict=True)
    ]
    today = datetime.now(UTC).astimezone(LOCAL).date()
    marked = page.locator("#week-shifts li.today")
    assert marked.count() == (1 if today in published_week else 0)
