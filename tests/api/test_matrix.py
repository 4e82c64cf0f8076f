"""The role × scope × endpoint matrix: every route of the app, every kind of caller, no leaks.

Each route of `app.url_map` (and each of its methods) has one line in MATRIX saying how each
caller is answered. A route added without a line fails `test_every_route_has_a_line`. The
targets all live in grid A1 of community A (district 110101): the worker of A1 and its grid
leader reach them; the worker of the next grid A2, the admin of community B and the viewer of
district 110102 must find them absent (404) or be refused; the viewer of district 110101 reads
them masked. Every answer is also searched for A1's residents' data (LEAK markers): none may
reach a caller outside A1, and the full phone, notes and complainant never reach the viewer.

Adding a route: one line `"METHOD /rule": Line(url, expect, body)`, e.g.
    "GET /api/v1/reports/weekly": Line("/api/v1/reports/weekly?grid={grid_code}", READ_LIST),
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from api.models import Leave, Roster, Shift, ShiftSwap, TaskEvent
from api.services import calendar, devices, notifications, photos
from api.services.weeks import current_week, week_bounds
from tests.api.test_tiles import tile_of
from tests.factories import (
    A1,
    A2,
    PASSWORD,
    A,
    box,
    centre,
    grid_feature,
    image_bytes,
    make_visit,
    visit_item,
)

# A place in A2 (a task moved there stands in it).
A2_PLACE = dict(zip(("lon", "lat"), centre(A2), strict=True))

ROLES = (
    "anonymous",
    "worker_a1",  # the worker of grid A1: the targets are theirs
    "leader_a",  # leads A1 and A2
    "admin_a",  # community admin of A
    "viewer_110101",  # district viewer of A's district: reads, masked
    "worker_a2",  # the worker of the next grid in the same community
    "admin_b",  # community admin of another community
    "viewer_110102",  # district viewer of another district
)
IN_A1 = ("worker_a1", "leader_a", "admin_a", "viewer_110101")
OUTSIDE_A1 = ("anonymous", "worker_a2", "admin_b", "viewer_110102")
OUTSIDE_COMMUNITY_A = ("anonymous", "admin_b", "viewer_110102")

OK = "ok"  # any 2xx or 304
PHONE = "13800000001"
COMPLAINANT_PHONE = "13900000002"
# Markers planted in A1's residents' data.
RESIDENT_MARKERS = ("MKROOM-A1", "MKTASK-A1", "MKDESC-A1", "MKNOTE-A1", PHONE, COMPLAINANT_PHONE)
# What even the viewer of A1's district must not read in full.
PERSONAL_MARKERS = (PHONE, COMPLAINANT_PHONE, "MKNOTE-A1", "MKNAME")


def outcomes(default, **roles) -> dict[str, object]:
    """Expected answer per role: `default` for every signed-in role unless named."""
    table = {role: default for role in ROLES}
    table["anonymous"] = 401
    table.update(roles)
    return table


# Building blocks for the common shapes of a line.
PUBLIC = {role: OK for role in ROLES}
SIGNED_IN = outcomes(OK)  # own data or a scoped list: every role answered, lists filtered
SCOPED_READ = outcomes(OK, worker_a2=404, admin_b=404, viewer_110102=404)
SCOPED_WRITE = outcomes(OK, viewer_110101=403, worker_a2=404, admin_b=404, viewer_110102=404)
COMMUNITY_READ = outcomes(OK, admin_b=404, viewer_110102=404)
REPORT_READ = outcomes(OK, worker_a1=403, worker_a2=403, admin_b=404, viewer_110102=404)
UNIFORM: dict[str, object] = {}  # the same answer for every caller, 503 allowed (assets unbuilt)


@dataclass(frozen=True)
class Line:
    """One route and method: the URL to call (formatted with the Targets), what each role gets,
    and the request body (a dict for JSON, or a callable giving the request's kwargs)."""

    url: str
    expect: dict[str, object]
    body: dict | Callable[[Targets], dict] | None = None
    # Roles whose answer legitimately carries A1's residents' data besides IN_A1 (none so far).
    sees_a1: tuple[str, ...] = ()


def _csv(t: Targets) -> dict:
    lon, lat = centre(A1, dy=0.001)
    data = f"building,room,lon,lat\n9,909,{lon},{lat}\n".encode()
    return {"data": {"file": (io.BytesIO(data), "register.csv", "text/csv")}}


def _photo(t: Targets) -> dict:
    return {"data": {"file": (io.BytesIO(PNG), "door.png", "image/png")}}


def _deadline(t: Targets) -> dict:
    # The hotline's new deadline for the ticket: ahead of the (real) clock the matrix runs on.
    return {"json": {"due_at": (datetime.now(UTC) + timedelta(days=10)).isoformat()}}


def _grid_import(t: Targets) -> dict:
    feature = grid_feature(A + "008", box(116.400, 39.930, 116.402, 39.932))
    return {"json": {"type": "FeatureCollection", "features": [feature]}}


MATRIX: dict[str, Line] = {
    # --- infrastructure and pages: the same for everyone
    "GET /healthz": Line("/healthz", PUBLIC),
    "GET /static/<path:filename>": Line("/static/none.txt", {r: 404 for r in ROLES}),
    # The web pages: 200 once `web` is built, 503 naming the build step before; same for all.
    "GET /map": Line("/map", UNIFORM),
    "GET /accounts": Line("/accounts", UNIFORM),
    "GET /window": Line("/window", UNIFORM),
    "GET /reports": Line("/reports", UNIFORM),
    "GET /rosters": Line("/rosters", UNIFORM),
    "GET /register": Line("/register", UNIFORM),
    "GET /audit": Line("/audit", UNIFORM),
    "GET /tasks": Line("/tasks", UNIFORM),
    "GET /app": Line("/app", UNIFORM),
    "GET /app/": Line("/app/", UNIFORM),
    "GET /app/sw.js": Line("/app/sw.js", UNIFORM),
    "GET /web/config.js": Line("/web/config.js", UNIFORM),
    "GET /web/<path:filename>": Line("/web/map.js", UNIFORM),
    "GET /api/v1/openapi.json": Line("/api/v1/openapi.json", PUBLIC),
    "GET /api/v1/docs": Line("/api/v1/docs", PUBLIC),
    "GET /api/v1/docs/assets/<path:filename>": Line("/api/v1/docs/assets/swagger-ui.css", PUBLIC),
    # --- auth
    "POST /api/v1/auth/token": Line(
        "/api/v1/auth/token", PUBLIC, {"username": "worker_a1", "password": PASSWORD}
    ),
    # An access token is not a refresh token (the refresh flow: test_auth_sessions.py).
    "POST /api/v1/auth/refresh": Line("/api/v1/auth/refresh", outcomes(401)),
    "GET /api/v1/auth/me": Line("/api/v1/auth/me", SIGNED_IN),
    "POST /api/v1/auth/logout": Line("/api/v1/auth/logout", SIGNED_IN, {}),
    "POST /api/v1/auth/logout-all": Line("/api/v1/auth/logout-all", SIGNED_IN),
    # --- accounts: each caller finds the accounts of their reach; the community's admin
    # manages them (POST opens one in the caller's own community, so admin_b opens one in B)
    "GET /api/v1/users": Line("/api/v1/users", SIGNED_IN),
    "POST /api/v1/users": Line(
        "/api/v1/users",
        outcomes(403, admin_a=OK, admin_b=OK),
        {"username": "matrix_new", "password": PASSWORD, "role": "worker"},
    ),
    "GET /api/v1/users/<id:user_id>": Line("/api/v1/users/{user_id}", SCOPED_READ),
    "PATCH /api/v1/users/<id:user_id>": Line(
        "/api/v1/users/{user_id}",
        outcomes(403, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"display_name": "Renamed", "grid_codes": [A1]},
    ),
    "POST /api/v1/users/<id:user_id>/password": Line(
        "/api/v1/users/{user_id}/password",
        outcomes(403, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"new_password": "another-long-password"},
    ),
    "POST /api/v1/auth/password": Line(
        "/api/v1/auth/password",
        SIGNED_IN,
        {"current_password": PASSWORD, "new_password": "another-long-password"},
    ),
    "GET /api/v1/audit": Line(
        "/api/v1/audit", outcomes(OK, worker_a1=403, worker_a2=403, leader_a=403)
    ),
    # --- grids
    "GET /api/v1/grids": Line("/api/v1/grids", SIGNED_IN),
    "POST /api/v1/grids": Line(
        "/api/v1/grids",
        outcomes(403, admin_a=OK),
        {**grid_feature(A + "009", box(116.400, 39.926, 116.402, 39.928))},
    ),
    "GET /api/v1/grids/<id:grid_id>": Line("/api/v1/grids/{grid_id}", SCOPED_READ),
    "PATCH /api/v1/grids/<id:grid_id>": Line(
        "/api/v1/grids/{grid_id}",
        outcomes(403, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"name": "Renamed"},
    ),
    "DELETE /api/v1/grids/<id:grid_id>": Line(  # authorised, refused: it holds households
        "/api/v1/grids/{grid_id}",
        outcomes(403, admin_a=409, worker_a2=404, admin_b=404, viewer_110102=404),
    ),
    "POST /api/v1/grids/import": Line(
        "/api/v1/grids/import", outcomes(403, admin_a=OK), _grid_import
    ),
    # --- reports: leaders, admins and viewers; a worker is refused outright
    "GET /api/v1/reports/coverage": Line(
        "/api/v1/reports/coverage?week={week}&community={community}", REPORT_READ
    ),
    "GET /api/v1/reports": Line("/api/v1/reports", outcomes(OK, worker_a1=403, worker_a2=403)),
    "GET /api/v1/reports/<id:report_id>": Line("/api/v1/reports/{report_id}", REPORT_READ),
    "GET /api/v1/reports/<id:report_id>/files/<fmt>": Line(
        "/api/v1/reports/{report_id}/files/csv", REPORT_READ
    ),
    # The window page's grids: the caller's (every grid of the community at the window);
    # district viewers open no tasks.
    "GET /api/v1/grids/window": Line(
        "/api/v1/grids/window", outcomes(OK, viewer_110101=403, viewer_110102=403)
    ),
    "GET /api/v1/grids/locate": Line("/api/v1/grids/locate?lon={lon}&lat={lat}", SCOPED_READ),
    "POST /api/v1/grids/locate": Line(  # outside the caller's grids: null, not 404
        "/api/v1/grids/locate", SIGNED_IN, {"points": [{"lon": "{lon}", "lat": "{lat}"}]}
    ),
    # --- households
    "GET /api/v1/households": Line("/api/v1/households", SIGNED_IN),
    "POST /api/v1/households": Line(
        "/api/v1/households",
        outcomes(OK, viewer_110101=403, worker_a2=403, admin_b=403, viewer_110102=403),
        {"building": "8", "lon": 116.4021, "lat": 39.9221},
    ),
    # The register file (CSV, so the markers can be searched): phones in full, so no viewer.
    # The hall window's lookup: the A-post worker of today (none here) and the admins.
    "GET /api/v1/households/window": Line(
        "/api/v1/households/window?address=MKROOM-A1", outcomes(403, admin_a=OK, admin_b=OK)
    ),
    "GET /api/v1/households/export": Line(
        "/api/v1/households/export?format=csv&grid={grid_code}",
        outcomes(OK, viewer_110101=403, worker_a2=404, admin_b=404, viewer_110102=403),
    ),
    "GET /api/v1/households/<id:household_id>": Line(
        "/api/v1/households/{household_id}", SCOPED_READ
    ),
    "PATCH /api/v1/households/<id:household_id>": Line(
        "/api/v1/households/{household_id}", SCOPED_WRITE, {"members": 4}
    ),
    "POST /api/v1/households/import": Line(
        "/api/v1/households/import",
        # All or nothing: each row outside the caller's reach is named in a 422. A district
        # viewer imports nothing: 403 before the file is read.
        outcomes(OK, viewer_110101=403, worker_a2=422, admin_b=422, viewer_110102=403),
        _csv,
    ),
    "POST /api/v1/households/<id:household_id>/removal": Line(
        "/api/v1/households/{household_id}/removal",
        outcomes(
            OK, worker_a1=403, viewer_110101=403, worker_a2=404, admin_b=404, viewer_110102=404
        ),
        {"reason": "moved_out"},
    ),
    "DELETE /api/v1/households/<id:household_id>/removal": Line(  # authorised, refused: in it
        "/api/v1/households/{household_id}/removal",
        outcomes(
            409, worker_a1=403, viewer_110101=403, worker_a2=404, admin_b=404, viewer_110102=404
        ),
    ),
    "GET /api/v1/households/<id:household_id>/visits": Line(
        "/api/v1/households/{household_id}/visits", SCOPED_READ
    ),
    # --- visits
    "POST /api/v1/visits/batch": Line(
        "/api/v1/visits/batch",
        outcomes(OK, admin_a=403, admin_b=403, viewer_110101=403, viewer_110102=403),
        lambda t: {"json": {"visits": [visit_item(t.household)]}},
    ),
    # worker_a1 is active: the admin of their community and the leader of their grid are told
    # they send their own (409).
    "POST /api/v1/visits/handover": Line(
        "/api/v1/visits/handover?worker={worker_id}",
        outcomes(403, admin_a=409, leader_a=409, admin_b=404),
        lambda t: {"json": {"visits": [visit_item(t.household)]}},
    ),
    "GET /api/v1/visits": Line("/api/v1/visits", SIGNED_IN),
    "GET /api/v1/visits/plan": Line("/api/v1/visits/plan", SIGNED_IN),
    "GET /api/v1/visits/<uuid:visit_id>": Line("/api/v1/visits/{visit_id}", SCOPED_READ),
    "POST /api/v1/visits/<uuid:visit_id>/photos": Line(
        "/api/v1/visits/{visit_id}/photos",
        outcomes(404, worker_a1=OK, leader_a=403, admin_a=403, viewer_110101=403),
        _photo,
    ),
    "GET /api/v1/visits/<uuid:visit_id>/photos/<id:photo_id>": Line(
        "/api/v1/visits/{visit_id}/photos/{photo_id}", SCOPED_READ
    ),
    "GET /api/v1/communities/<string:code>/visit-cadence": Line(
        "/api/v1/communities/{community}/visit-cadence", COMMUNITY_READ
    ),
    "PUT /api/v1/communities/<string:code>/visit-cadence": Line(
        "/api/v1/communities/{community}/visit-cadence",
        outcomes(403, admin_a=OK, admin_b=404, viewer_110102=404),
        {"default": 2, "tags": {"elderly_80": 3}},
    ),
    "GET /api/v1/communities/<string:code>/task-settings": Line(
        "/api/v1/communities/{community}/task-settings", COMMUNITY_READ
    ),
    "PUT /api/v1/communities/<string:code>/task-settings": Line(
        "/api/v1/communities/{community}/task-settings",
        outcomes(403, admin_a=OK, admin_b=404, viewer_110102=404),
        {"deadline_hours": {"general": 72}},
    ),
    "POST /api/v1/communities/<string:code>/campaigns": Line(
        "/api/v1/communities/{community}/campaigns",
        outcomes(403, leader_a=OK, admin_a=OK, viewer_110101=403, admin_b=404, viewer_110102=404),
        {"title": "汛期前清理雨水口", "grids": ["{grid_code}"]},
    ),
    # --- rosters
    "GET /api/v1/communities/<string:code>/roster-settings": Line(
        "/api/v1/communities/{community}/roster-settings", COMMUNITY_READ
    ),
    "PUT /api/v1/communities/<string:code>/roster-settings": Line(
        "/api/v1/communities/{community}/roster-settings",
        outcomes(403, admin_a=OK, admin_b=404, viewer_110102=404),
        {"time_limit_s": 5},
    ),
    # Authorised: its 3 workers cannot staff the window and 2 grids, a short roster, gaps said.
    "POST /api/v1/communities/<string:code>/rosters": Line(
        "/api/v1/communities/{community}/rosters",
        outcomes(403, admin_a=OK, leader_a=OK, admin_b=404, viewer_110102=404),
        {"week": "{unrostered_week}"},
    ),
    "GET /api/v1/communities/<string:code>/rosters/<string:week>": Line(
        "/api/v1/communities/{community}/rosters/{roster_week}", COMMUNITY_READ
    ),
    # Drafts are seen by their editors only. The draft has no shift: short-staffed, published
    # with the acknowledgement.
    "POST /api/v1/rosters/<id:roster_id>/publish": Line(
        "/api/v1/rosters/{draft_roster_id}/publish",
        outcomes(404, admin_a=OK, leader_a=OK),
        {"accept_shortfalls": True},
    ),
    "GET /api/v1/rosters/<id:roster_id>/changes": Line(
        "/api/v1/rosters/{roster_id}/changes", COMMUNITY_READ
    ),
    "GET /api/v1/shifts": Line("/api/v1/shifts?week={roster_week}", SIGNED_IN),
    "GET /api/v1/shifts/<id:shift_id>": Line("/api/v1/shifts/{shift_id}", COMMUNITY_READ),
    "PATCH /api/v1/shifts/<id:shift_id>": Line(
        "/api/v1/shifts/{shift_id}",
        outcomes(403, admin_a=OK, leader_a=OK, admin_b=404, viewer_110102=404),
        {"post": "A"},
    ),
    "POST /api/v1/shifts/<id:shift_id>/swap": Line(
        "/api/v1/shifts/{free_shift_id}/swap",
        outcomes(OK, worker_a2=403, viewer_110101=403, admin_b=404, viewer_110102=404),
        {"with_shift_id": "{free_other_id}"},
    ),
    "GET /api/v1/swaps": Line("/api/v1/swaps", SIGNED_IN),
    "GET /api/v1/swaps/<id:swap_id>": Line(  # its two workers, and the community's editors
        "/api/v1/swaps/{swap_id}", outcomes(404, worker_a1=OK, leader_a=OK, admin_a=OK)
    ),
    "POST /api/v1/swaps/<id:swap_id>/accept": Line(  # swaps are seen by their two workers
        "/api/v1/swaps/{swap_id}/accept", outcomes(404, worker_a1=403, leader_a=OK, admin_a=OK)
    ),
    "POST /api/v1/swaps/<id:swap_id>/reject": Line(
        "/api/v1/swaps/{swap_id}/reject", outcomes(404, worker_a1=OK, leader_a=OK, admin_a=OK)
    ),
    "GET /api/v1/leaves": Line("/api/v1/leaves", SIGNED_IN),
    "POST /api/v1/leaves": Line(
        "/api/v1/leaves",
        outcomes(OK, admin_a=403, admin_b=403, viewer_110101=403, viewer_110102=403),
        {"start_date": "{leave_day}", "end_date": "{leave_day}"},
    ),
    "POST /api/v1/leaves/<id:leave_id>/decision": Line(
        "/api/v1/leaves/{leave_id}/decision",
        outcomes(403, leader_a=OK, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"decision": "approve"},
    ),
    "POST /api/v1/leaves/<id:leave_id>/cancel": Line(  # the worker's own, or a leader's call
        "/api/v1/leaves/{leave_id}/cancel",
        outcomes(OK, viewer_110101=403, worker_a2=404, admin_b=404, viewer_110102=404),
    ),
    "POST /api/v1/leaves/<id:leave_id>/end": Line(  # as a cancel: the worker, or a leader
        "/api/v1/leaves/{approved_leave_id}/end",
        outcomes(OK, viewer_110101=403, worker_a2=404, admin_b=404, viewer_110102=404),
        {"last_day": "{approved_leave_first_day}"},
    ),
    "GET /api/v1/me/calendar-url": Line("/api/v1/me/calendar-url", SIGNED_IN),
    "DELETE /api/v1/me/calendar-url": Line("/api/v1/me/calendar-url", SIGNED_IN),
    "GET /api/v1/workers/<id:worker_id>/shifts.ics": Line(
        "/api/v1/workers/{worker_id}/shifts.ics?token={feed_token}", PUBLIC
    ),
    # --- tasks
    "GET /api/v1/tasks": Line("/api/v1/tasks", SIGNED_IN),
    "POST /api/v1/tasks": Line(
        "/api/v1/tasks",
        outcomes(OK, viewer_110101=403, worker_a2=403, admin_b=403, viewer_110102=403),
        {"source": "window", "title": "证明", "location": {"lon": 116.4022, "lat": 39.9222}},
    ),
    "GET /api/v1/tasks/export": Line("/api/v1/tasks/export?format=csv", SIGNED_IN),
    "GET /api/v1/tasks/rates": Line(
        "/api/v1/tasks/rates?grid={grid_code}&week={week}", SCOPED_READ
    ),
    "GET /api/v1/tasks/lists": Line(
        "/api/v1/tasks/lists?grid={grid_code}&week={week}", SCOPED_READ
    ),
    "GET /api/v1/tasks/recurring": Line("/api/v1/tasks/recurring?grid={grid_code}", SCOPED_READ),
    "GET /api/v1/tasks/<id:task_id>": Line("/api/v1/tasks/{task_id}", SCOPED_READ),
    "POST /api/v1/tasks/<id:task_id>/transitions": Line(
        "/api/v1/tasks/{task_id}/transitions",
        outcomes(403, worker_a1=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"action": "accept"},
    ),
    # A photo of a step: by who may take one (the assignee; the leader and the admin escalate).
    "POST /api/v1/tasks/<id:task_id>/photos": Line(
        "/api/v1/tasks/{task_id}/photos",
        outcomes(
            403,
            worker_a1=OK,
            leader_a=OK,
            admin_a=OK,
            worker_a2=404,
            admin_b=404,
            viewer_110102=404,
        ),
        _photo,
    ),
    "GET /api/v1/tasks/<id:task_id>/photos/<id:photo_id>": Line(
        "/api/v1/tasks/{task_id}/photos/{task_photo_id}", SCOPED_READ
    ),
    # The worker's photo not sent yet: theirs to delete, no one else's.
    "DELETE /api/v1/tasks/<id:task_id>/photos/<id:photo_id>": Line(
        "/api/v1/tasks/{task_id}/photos/{unsent_task_photo_id}",
        outcomes(403, worker_a1=OK, worker_a2=404, admin_b=404, viewer_110102=404),
    ),
    "POST /api/v1/tasks/<id:task_id>/assign": Line(
        "/api/v1/tasks/{task_id}/assign",
        outcomes(403, leader_a=OK, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"assignee_id": "{leader_id}", "note": "over to the leader"},
    ),
    "PUT /api/v1/tasks/<id:task_id>/deadline": Line(  # a 12345 ticket's: leader or admin
        "/api/v1/tasks/{task_id}/deadline",
        outcomes(403, leader_a=OK, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        _deadline,
    ),
    # The grids it may move to: for whoever may move it, as the move.
    "GET /api/v1/tasks/<id:task_id>/move": Line(
        "/api/v1/tasks/{task_id}/move",
        outcomes(403, leader_a=OK, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
    ),
    "POST /api/v1/tasks/<id:task_id>/move": Line(  # the grid's leader or the admin, to A2
        "/api/v1/tasks/{task_id}/move",
        outcomes(403, leader_a=OK, admin_a=OK, worker_a2=404, admin_b=404, viewer_110102=404),
        {"grid_code": A2, "reason": "wrong address", "location": A2_PLACE},
    ),
    # --- devices and the inbox: each user's own
    "GET /api/v1/devices": Line("/api/v1/devices", SIGNED_IN),
    "POST /api/v1/devices": Line(
        "/api/v1/devices", SIGNED_IN, {"platform": "android", "token": "fcm-matrix-new"}
    ),
    "DELETE /api/v1/devices/<id:device_id>": Line(
        "/api/v1/devices/{device_id}", outcomes(404, worker_a1=OK)
    ),
    "GET /api/v1/devices/quiet-hours": Line("/api/v1/devices/quiet-hours", SIGNED_IN),
    "PUT /api/v1/devices/quiet-hours": Line(
        "/api/v1/devices/quiet-hours",
        SIGNED_IN,
        {"quiet_start": "22:00", "quiet_end": "07:00", "timezone": "Asia/Shanghai"},
    ),
    "GET /api/v1/notifications": Line("/api/v1/notifications", SIGNED_IN),
    "GET /api/v1/notifications/unread-count": Line("/api/v1/notifications/unread-count", SIGNED_IN),
    "POST /api/v1/notifications/ack-all": Line("/api/v1/notifications/ack-all", SIGNED_IN),
    "POST /api/v1/notifications/<id:notification_id>/ack": Line(
        "/api/v1/notifications/{notification_id}/ack", outcomes(404, worker_a1=OK)
    ),
    # --- map tiles: every layer answers everyone signed in, each with their own features
    "GET /api/v1/tiles/<layer>/<int(signed=True):z>/<int(signed=True):x>/<int(signed=True):y>.mvt": Line(  # noqa: E501
        "/api/v1/tiles/households/{z}/{x}/{y}.mvt?week={week}", SIGNED_IN
    ),
}
# Further URLs of a route worth the same expectations (other layers of the tiles route).
EXTRA_URLS = {
    "GET /api/v1/tiles/<layer>/<int(signed=True):z>/<int(signed=True):x>/<int(signed=True):y>.mvt": [  # noqa: E501
        "/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt?week={week}".replace("{layer}", layer)
        for layer in ("grids", "visits", "tasks")
    ],
}

PNG = image_bytes("PNG")


@dataclass
class Targets:
    """The objects of grid A1 every line points at; attributes fill the URL templates."""

    values: dict[str, object] = field(default_factory=dict)
    household: object = None

    def fill(self, template):
        """`"{task_id}"` alone becomes the value itself (an int stays an int); in longer text
        every `{name}` is replaced."""
        if isinstance(template, str):
            name = template[1:-1]
            if template.startswith("{") and template.endswith("}") and name in self.values:
                return self.values[name]
            for key, value in self.values.items():
                template = template.replace("{" + key + "}", str(value))
            return template
        if isinstance(template, dict):
            return {k: self.fill(v) for k, v in template.items()}
        if isinstance(template, list):
            return [self.fill(v) for v in template]
        return template


@pytest.fixture()
def targets(app, session, world, tmp_path) -> Targets:
    """A1's residents' data with LEAK markers, and one of everything a route can point at."""
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    now = datetime.now(UTC)
    week = current_week()
    grid = world.grids[A1]
    household = world.households[A1][0]
    household.room = "MKROOM-A1"
    household.phone = PHONE
    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    # Half an hour ago, but in this week: in the first half hour of a Monday (Beijing), half an
    # hour ago was last week, and this week's visits tile was empty (a 204 with no audit entry).
    visit = make_visit(
        session,
        worker,
        household,
        max(now - timedelta(minutes=30), week_bounds(week)[0]),
        notes="MKNOTE-A1 needs a wheelchair",
        observations={"disability": "MKNOTE-A1"},
    )
    photo, _ = photos.attach_photo(
        session,
        photos.build_storage(app.config, photos.load_name_key(session)),
        visit,
        PNG,
        uploader_id=worker.id,
        max_bytes=10**6,
    )
    from api.services import tasks as task_service

    task = task_service.create_task(
        session,
        None,
        {
            "source": "hotline",
            "type": "complaint",
            "external_id": "MX-1",
            "title": "MKTASK-A1 leaking pipe",
            "description": "MKDESC-A1",
            "urgency": "general",
            "complainant": {"name": "MKNAME", "phone": COMPLAINANT_PHONE},
            "household_id": household.id,
        },
        actor_id=None,
        now=now,
    )
    task.assignee_id, task.status = worker.id, "dispatched"
    session.flush()
    storage = photos.build_storage(app.config, photos.load_name_key(session))

    def task_photo_of(seed: int):
        shot = image_bytes("PNG", seed)
        return photos.attach_photo(
            session, storage, task, shot, uploader_id=worker.id, max_bytes=10**6
        )[0]

    # Sent with a step: the task's to whoever reads it (one no step holds is its uploader's).
    task_photo, unsent_photo = task_photo_of(9), task_photo_of(10)
    step = TaskEvent(
        task_id=task.id,
        action="accept",
        from_status="dispatched",
        to_status="accepted",
        actor_id=worker.id,
    )
    session.add(step)
    session.flush()
    task_photo.event_id = step.id
    # The roster is next week's: its shifts lie ahead whatever today is (past days' shifts are
    # not changed, so this week's Wednesday would answer 409 from Thursday on).
    next_week = current_week(now + timedelta(days=7))
    start, _end = week_bounds(next_week)
    day = (start + timedelta(days=2)).date()
    roster = Roster(community_code=A, week=next_week, status="published", created_by_id=leader.id)
    session.add(roster)
    session.flush()
    shift = Shift(roster_id=roster.id, date=day, post="B", worker_id=worker.id, grid_id=grid.id)
    other = Shift(roster_id=roster.id, date=day, post="A", worker_id=leader.id, grid_id=None)
    later = day + timedelta(days=1)
    free = Shift(roster_id=roster.id, date=later, post="B", worker_id=worker.id, grid_id=grid.id)
    free_other = Shift(roster_id=roster.id, date=later, post="A", worker_id=leader.id)
    session.add_all([shift, other, free, free_other])
    session.flush()
    swap = ShiftSwap(
        shift_id=shift.id,
        with_shift_id=other.id,
        requester_id=worker.id,
        other_worker_id=leader.id,
        requested_by_id=worker.id,
    )
    draft = Roster(community_code=A, week=current_week(now + timedelta(days=14)))
    leave = Leave(worker_id=worker.id, start_date=day, end_date=day, reason="family")
    # Approved leave to end early, weeks after every shift and leave_day above.
    away = day + timedelta(days=30)
    approved = Leave(
        worker_id=worker.id,
        start_date=away,
        end_date=away + timedelta(days=2),
        status="approved",
        decided_by_id=leader.id,
        decided_at=now,
    )
    session.add_all([swap, leave, approved, draft])
    device = devices.register_device(session, worker.id, "android", token="fcm-matrix", now=now)
    (note,) = notifications.notify(session, [worker.id], "task_updated", "MKTASK-A1", now=now)
    session.flush()
    from api.models import Report
    from api.services import report_store

    report = Report(week=week, level="community", code=A, name="A", created_at=now)
    session.add(report)
    session.flush()
    report_store.store_files(session, report, now)
    z, x, y = tile_of(*centre(A1))
    targets = Targets(household=household)
    targets.values = {
        "grid_id": grid.id,
        "user_id": worker.id,
        "grid_code": A1,
        "community": A,
        "household_id": household.id,
        "visit_id": visit.id,
        "photo_id": photo.id,
        "task_id": task.id,
        "task_photo_id": task_photo.id,
        "unsent_task_photo_id": unsent_photo.id,
        "roster_id": roster.id,
        "draft_roster_id": draft.id,
        "shift_id": shift.id,
        "free_shift_id": free.id,
        "free_other_id": free_other.id,
        "swap_id": swap.id,
        "leave_id": leave.id,
        "approved_leave_id": approved.id,
        "approved_leave_first_day": away.isoformat(),
        "leave_day": (now + timedelta(days=20)).date().isoformat(),
        "device_id": device.id,
        "notification_id": note.id,
        "worker_id": worker.id,
        "leader_id": leader.id,
        "feed_token": calendar.feed_token(session, worker, app.config["SECRET_KEY"]),
        "report_id": report.id,
        "week": week,
        "roster_week": next_week,
        "unrostered_week": current_week(now + timedelta(days=21)),
        "z": z,
        "x": x,
        "y": y,
        "lon": centre(A1)[0],
        "lat": centre(A1)[1],
    }
    return targets


def _rule_keys(app) -> set[str]:
    keys = set()
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            keys.add(f"{method} {rule.rule}")
    return keys


def test_every_route_has_a_line(app):
    routes = _rule_keys(app)
    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not missing, "routes without a line in MATRIX (add one each):\n" + "\n".join(missing)
    assert not stale, "lines for routes that no longer exist:\n" + "\n".join(stale)


def _request(client, world, targets: Targets, method: str, url: str, line: Line, role: str):
    headers = {} if role == "anonymous" else world.auth(role)
    kwargs: dict = {}
    if callable(line.body):
        kwargs = line.body(targets)
    elif line.body is not None:
        kwargs = {"json": targets.fill(line.body)}
    return client.open(targets.fill(url), method=method, headers=headers, **kwargs)


def _matches(status: int, expected) -> bool:
    if expected == OK:
        return 200 <= status < 300 or status == 304
    return status == expected


def _leaks(role: str, data: bytes, line: Line) -> list[str]:
    if role in IN_A1 or role in line.sees_a1:
        markers = PERSONAL_MARKERS if role == "viewer_110101" else ()
    else:
        markers = tuple(dict.fromkeys(RESIDENT_MARKERS + PERSONAL_MARKERS))
    return [m for m in markers if m.encode() in data]


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_route_answers_every_role_as_the_matrix_says(key, app, client, connection, world, targets):
    method, rule = key.split(" ", 1)
    line = MATRIX[key]
    problems = []
    for url in [line.url, *EXTRA_URLS.get(key, [])]:
        statuses = {}
        for role in ROLES:
            savepoint = connection.begin_nested()  # each caller meets the same world
            try:
                response = _request(client, world, targets, method, url, line, role)
                statuses[role] = response.status_code
                leaked = _leaks(role, response.data, line)
                if leaked:
                    problems.append(f"{role} {url}: LEAK of {leaked}")
                response.close()
                if response.status_code >= 500 and not (
                    line.expect is UNIFORM and response.status_code == 503
                ):
                    problems.append(f"{role} {url}: server error {response.status_code}")
                elif line.expect is not UNIFORM and not _matches(
                    response.status_code, line.expect[role]
                ):
                    body = response.get_data(as_text=True)[:200]
                    problems.append(
                        f"{role} {url}: got {response.status_code}, "
                        f"expected {line.expect[role]}: {body}"
                    )
            finally:
                savepoint.rollback()
        if line.expect is UNIFORM and len(set(statuses.values())) != 1:
            problems.append(f"{url}: answers differ by role: {statuses}")
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_role_on_every_line():
    for key, line in MATRIX.items():
        if line.expect is not UNIFORM:
            assert set(line.expect) == set(ROLES), key
