"""The workers' .ics feed: RFC 5545 text parsed back, tokens signed per user and revocable."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from api.services.calendar import escape, fold
from tests.factories import PASSWORD, bearer, make_roster_community, restart_with_rotated_key

WEEK = "2026-W48"
# The app's clock (FIXED_NOW) in that week: the feed lists the last four weeks and what is ahead.
IN_WEEK = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture()
def community(session, app):
    app.config["FIXED_NOW"] = IN_WEEK
    c = make_roster_community(session, app, 8, 6)
    c.grids[0].name = "东区, 第一网格; 老城\\片"  # characters that need escaping
    session.flush()
    return c


# Before the week: a roster generated in it keeps the days gone unrostered.
BEFORE_WEEK = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def publish_week(client, c):
    """The week generated and published the Friday before it; the clock back in the week."""
    client.application.config["FIXED_NOW"] = BEFORE_WEEK
    view = client.post(
        f"/api/v1/communities/{c.code}/rosters", json={"week": WEEK}, headers=c.auth(c.leader)
    ).get_json()
    client.post(f"/api/v1/rosters/{view['id']}/publish", headers=c.auth(c.leader))
    client.application.config["FIXED_NOW"] = IN_WEEK
    return view


def feed_path(client, c, worker, headers=None) -> str:
    headers = headers or c.auth(worker)
    url = client.get("/api/v1/me/calendar-url", headers=headers).get_json()["url"]
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def unfold(text: str) -> list[str]:
    """Content lines: CRLF line ends, continuation lines start with one space."""
    assert text.endswith("\r\n")
    physical = text[:-2].split("\r\n")
    lines: list[str] = []
    for line in physical:
        assert len(line.encode()) <= 75
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def events(lines: list[str]) -> list[dict[str, str]]:
    out, current = [], None
    for line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            out.append(current)
            current = None
        elif current is not None:
            name, value = line.split(":", 1)
            current[name] = value
    return out


def test_the_feed_lists_the_workers_published_shifts(client, community):
    c = community
    worker = c.workers[0]  # holds grid 001, whose name needs escaping
    view = publish_week(client, c)
    response = client.get(feed_path(client, c, worker))
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    got = events(unfold(response.get_data(as_text=True)))
    mine = sorted(
        s["date"]
        for day in view["days"]
        for post in ("A", "B")
        for s in day[post]
        if s["worker_id"] == worker.id
    )
    starts = sorted(e["DTSTART;TZID=Asia/Shanghai"][:8] for e in got)
    assert starts == [d.replace("-", "") for d in mine]


def test_the_feed_reads_today_from_the_apps_clock(app, client, community):
    """The feed's window (the last four weeks and what is ahead) starts from the app's clock,
    the database's in production, not the host's (`api.clock`)."""
    c = community
    publish_week(client, c)
    path = feed_path(client, c, c.workers[0])
    assert events(unfold(client.get(path).get_data(as_text=True)))
    app.config["FIXED_NOW"] = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # W48 ended 6 weeks ago
    assert events(unfold(client.get(path).get_data(as_text=True))) == []


def test_the_feed_has_a_vtimezone_and_times_from_the_settings(client, community):
    c = community
    client.put(
        f"/api/v1/communities/{c.code}/roster-settings",
        json={
            "a_hours": {"start": "08:00", "end": "20:00"},
            "b_hours": {"start": "09:00", "end": "17:00"},
        },
        headers=c.auth(c.admin),
    )
    publish_week(client, c)
    lines = unfold(client.get(feed_path(client, c, c.workers[2])).get_data(as_text=True))
    assert "BEGIN:VTIMEZONE" in lines and "TZID:Asia/Shanghai" in lines
    for event in events(lines):
        window = event["CATEGORIES"] == "A-post"
        start, end = ("080000", "200000") if window else ("090000", "170000")
        assert event["DTSTART;TZID=Asia/Shanghai"].endswith(start)
        assert event["DTEND;TZID=Asia/Shanghai"].endswith(end)


def test_uids_are_stable_across_fetches_and_regenerated_shifts(client, community):
    c = community
    publish_week(client, c)
    path = feed_path(client, c, c.workers[1])
    first = [e["UID"] for e in events(unfold(client.get(path).get_data(as_text=True)))]
    second = [e["UID"] for e in events(unfold(client.get(path).get_data(as_text=True)))]
    assert first == second and len(set(first)) == len(first) == 5


def test_text_is_escaped_and_long_lines_are_folded(client, community):
    c = community
    publish_week(client, c)
    text = client.get(feed_path(client, c, c.workers[0])).get_data(as_text=True)
    lines = unfold(text)
    b_events = [e for e in events(lines) if e["CATEGORIES"] == "B-post"]
    assert b_events
    assert b_events[0]["LOCATION"].endswith("东区\\, 第一网格\\; 老城\\\\片")


def test_the_feed_speaks_the_workers_language(client, community):
    """Workers read their calendar in Chinese, as the app says their posts: the feed's events
    read "A-post: service hall window" in their phone's calendar."""
    c = community
    publish_week(client, c)
    lines = unfold(client.get(feed_path(client, c, c.workers[0])).get_data(as_text=True))
    calendar_name = next(line for line in lines if line.startswith("X-WR-CALNAME:"))
    assert calendar_name == f"X-WR-CALNAME:排班 · {c.workers[0].display_name}"
    for event in events(lines):
        if event["CATEGORIES"] == "A-post":
            assert event["SUMMARY"] == "A岗 · 社区服务大厅窗口"
            assert event["LOCATION"] == "社区服务大厅"
        else:
            assert event["SUMMARY"].startswith("B岗 · 入户走访 · 网格 ")
            assert event["DESCRIPTION"].startswith("网格内入户走访。")
            assert event["LOCATION"].startswith("网格 ")


def test_fold_never_splits_a_character_and_escape_covers_the_specials():
    folded = fold("SUMMARY:" + "网格" * 60)
    parts = folded.split("\r\n ")
    assert all(len(p.encode()) <= 75 for p in parts) and "".join(parts) == "SUMMARY:" + "网格" * 60
    assert escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_a_draft_is_not_in_the_feed(client, community):
    c = community
    client.post(
        f"/api/v1/communities/{c.code}/rosters", json={"week": WEEK}, headers=c.auth(c.leader)
    )
    lines = unfold(client.get(feed_path(client, c, c.workers[1])).get_data(as_text=True))
    assert events(lines) == []


def test_a_bad_token_is_refused(client, community):
    worker = community.workers[1]
    response = client.get(f"/api/v1/workers/{worker.id}/shifts.ics?token=forged")
    assert response.status_code == 403


def test_a_token_opens_only_its_own_workers_feed(client, community):
    c = community
    path = feed_path(client, c, c.workers[1])
    other = path.replace(f"/workers/{c.workers[1].id}/", f"/workers/{c.workers[2].id}/")
    assert client.get(other).status_code == 403


def test_a_revoked_feed_url_stops_working(client, community):
    c = community
    old = feed_path(client, c, c.workers[1])
    fresh = client.delete("/api/v1/me/calendar-url", headers=c.auth(c.workers[1])).get_json()
    assert client.get(old).status_code == 403
    parts = urlsplit(fresh["url"])
    assert client.get(f"{parts.path}?{parts.query}").status_code == 200
    assert fresh["webcal_url"].startswith("webcal://")


# --- a rotated GRIDWORK_SECRET_KEY: a phone calendar subscribed once keeps its URL ----------
def test_a_feed_url_signed_with_the_old_key_works_while_it_is_a_fallback(
    client, community, database_url, connection
):
    c = community
    old = feed_path(client, c, c.workers[1])
    app = restart_with_rotated_key(database_url, connection, keep_old=True, FIXED_NOW=IN_WEEK)
    assert app.test_client().get(old).status_code == 200


def test_a_feed_url_signed_with_the_old_key_stops_working_once_the_fallback_is_dropped(
    client, community, database_url, connection
):
    c = community
    old = feed_path(client, c, c.workers[1])
    app = restart_with_rotated_key(database_url, connection, keep_old=False, FIXED_NOW=IN_WEEK)
    assert app.test_client().get(old).status_code == 403


def test_a_feed_url_handed_out_after_a_rotation_is_signed_with_the_new_key(
    community, database_url, connection
):
    c = community
    rotated = restart_with_rotated_key(database_url, connection, keep_old=True, FIXED_NOW=IN_WEEK)
    with rotated.app_context():  # signed in on the restarted app
        headers = bearer(c.workers[1])
    path = feed_path(rotated.test_client(), c, c.workers[1], headers)
    app = restart_with_rotated_key(database_url, connection, keep_old=False, FIXED_NOW=IN_WEEK)
    assert app.test_client().get(path).status_code == 200


def change_password(client, c, worker, current=PASSWORD):
    return client.post(
        "/api/v1/auth/password",
        json={"current_password": current, "new_password": "a-new-long-password"},
        headers=c.auth(worker),
    )


def test_changing_the_password_revokes_the_feed_url(client, community):
    # A feed URL is a credential like a session: whoever changes a password because it leaked
    # expects every way into the account to close, the subscribed calendar included.
    c = community
    old = feed_path(client, c, c.workers[1])
    changed = change_password(client, c, c.workers[1])
    assert changed.status_code == 200
    assert client.get(old).status_code == 403
    signed_in = {"Authorization": f"Bearer {changed.get_json()['access_token']}"}
    assert client.get(feed_path(client, c, c.workers[1], signed_in)).status_code == 200


def test_signing_out_everywhere_revokes_the_feed_url(client, community):
    """A phone lost, its owner signs out everywhere: every token, session and push device
    ended, the calendar subscribed on the lost phone went on serving every published shift
    (which grid, which post: where the worker will be), as a password change does not."""
    c = community
    lost = feed_path(client, c, c.workers[1])
    signed_out = client.post("/api/v1/auth/logout-all", headers=c.auth(c.workers[1]))
    assert signed_out.status_code == 200
    assert client.get(lost).status_code == 403
    worker = c.workers[1].username
    again = client.post("/api/v1/auth/token", json={"username": worker, "password": PASSWORD})
    signed_in = {"Authorization": f"Bearer {again.get_json()['access_token']}"}
    assert client.get(feed_path(client, c, c.workers[1], signed_in)).status_code == 200


def test_a_wrong_current_password_leaves_the_feed_url_working(client, community):
    c = community
    old = feed_path(client, c, c.workers[1])
    assert change_password(client, c, c.workers[1], current="not-my-password").status_code == 403
    assert client.get(old).status_code == 200


def test_a_deactivated_workers_feed_url_stops_working(client, community, session):
    c = community
    old = feed_path(client, c, c.workers[1])
    c.workers[1].active = False
    session.flush()
    assert client.get(old).status_code == 403


def test_a_shift_on_a_day_of_approved_leave_is_cancelled_in_the_feed(client, community, session):
    """Leave approved after the roster was published leaves the shift naming the worker (it is
    listed uncovered for the leaders): their calendar still showed them at the window or out in
    the grid that day. The feed marks it cancelled (STATUS:CANCELLED, said in the summary),
    stamped with the decision so a calendar reads it again; the other days as they were."""
    from datetime import date, timedelta

    from api.models import Leave

    c = community
    worker = c.workers[0]
    publish_week(client, c)
    before = events(unfold(client.get(feed_path(client, c, worker)).get_data(as_text=True)))
    day = min(e["DTSTART;TZID=Asia/Shanghai"][:8] for e in before)
    away = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    decided = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)  # after the roster
    session.add(
        Leave(
            worker_id=worker.id, start_date=away, end_date=away, status="approved",
            decided_at=decided, reason="病假",
        )
    )  # fmt: skip
    session.flush()
    after = events(unfold(client.get(feed_path(client, c, worker)).get_data(as_text=True)))
    by_day = {e["DTSTART;TZID=Asia/Shanghai"][:8]: e for e in after}
    cancelled = by_day[day]
    assert cancelled["STATUS"] == "CANCELLED" and cancelled["SUMMARY"].startswith("（请假）")
    assert cancelled["TRANSP"] == "TRANSPARENT"
    assert cancelled["LAST-MODIFIED"] == decided.strftime("%Y%m%dT%H%M%SZ")
    assert cancelled["UID"] == next(e["UID"] for e in before if e["UID"] == cancelled["UID"])
    others = [e for d, e in by_day.items() if d != day]
    assert others and all("STATUS" not in e for e in others)
    assert [e for e in before if e["DTSTART;TZID=Asia/Shanghai"][:8] != day] == others
