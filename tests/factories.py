"""Factories: a small world of communities, grids, users and households, built via the services."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask
from flask_jwt_extended import create_access_token

from api.auth import claims_for
from api.models import Grid, Household, User
from api.services import grids as grid_service
from api.services import households as household_service
from api.services import users as user_service

PASSWORD = "correct-horse-battery"


def box(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    """A GeoJSON Polygon for an axis-aligned box (counter-clockwise)."""
    return {
        "type": "Polygon",
        "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
    }


def grid_feature(code: str, geometry: dict, name: str | None = None, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": name or f"Grid {code[-3:]}", **props},
    }


def make_grid(session, code: str, geometry: dict, **props) -> Grid:
    return grid_service.create_grid(session, None, grid_feature(code, geometry, **props))


def make_user(session, username: str, role: str, **kwargs) -> User:
    return user_service.create_user(
        session, username=username, password=PASSWORD, role=role, **kwargs
    )


def make_led_grid(session, code: str, geometry: dict, prefix: str) -> tuple[User, User]:
    """A grid with its worker and its leader (`<prefix>_w`, `<prefix>_l`): (worker, leader)."""
    grid = make_grid(session, code, geometry)
    worker = make_user(session, f"{prefix}_w", "worker", grids=[code])
    leader = make_user(session, f"{prefix}_l", "grid_leader", grids=[code])
    session.flush()
    grid.leader_id = leader.id
    return worker, leader


def make_household(session, lon: float, lat: float, **fields) -> Household:
    data = {"building": "1", "unit": "1", "floor": "1", "room": "101", **fields}
    return household_service.create_household(session, None, {"lon": lon, "lat": lat, **data})


def bearer(user: User) -> dict[str, str]:
    token = create_access_token(user, additional_claims=claims_for(user))
    return {"Authorization": f"Bearer {token}"}


# Community A (110101001001): grids A1 | A2 side by side; community B (110101001002): grid B1
# east of A2; district 110102 holds community C with grid C1 far to the south.
A = "110101001001"
B = "110101001002"
C = "110102001001"
A1, A2, B1, C1 = A + "001", A + "002", B + "001", C + "001"
BOXES = {
    A1: (116.400, 39.920, 116.405, 39.925),
    A2: (116.405, 39.920, 116.410, 39.925),
    B1: (116.410, 39.920, 116.415, 39.925),
    C1: (116.360, 39.900, 116.365, 39.905),
}


def centre(code: str, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
    lon0, lat0, lon1, lat1 = BOXES[code]
    return (lon0 + lon1) / 2 + dx, (lat0 + lat1) / 2 + dy


# The settings every test app runs with (fast password hashing, a fixed data key).
TEST_SETTINGS = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
    "LOG_LEVEL": "WARNING",
    "PASSWORD_HASHING": "fast",
    "DATA_KEY": "dGVzdC1kYXRhLWtleS1mb3ItZ3JpZHdvcmstdGVzdHM",
}


def migration_grid(database_url: str, worker: str | None = None) -> tuple[int, int | None]:
    """A grid (and a worker of it, named `worker`) in a database of its own, for a test that
    takes the migrations back and forth over rows it writes: the grid's id, the worker's id."""
    from api.extensions import db

    app = build_app(database_url)
    code = "110109009009001"
    with app.app_context(), db.begin() as session:
        grid_id = make_grid(session, code, box(116.5, 39.7, 116.51, 39.71)).id
        worker_id = make_user(session, worker, "worker", grids=[code]).id if worker else None
    with app.app_context():
        db.engine.dispose()
    return grid_id, worker_id


def build_app(database_url: str, **overrides) -> Flask:
    """An app on the test database with the test settings."""
    from api import create_app

    return create_app({**TEST_SETTINGS, "DATABASE_URL": database_url, **overrides})


# The signing key a rotation moves to from TEST_SETTINGS' (whose key then becomes a fallback).
ROTATED_SECRET_KEY = "rotated-test-secret-key-with-enough-length-for-hs256"


def restart_with_rotated_key(database_url: str, connection, *, keep_old: bool, **overrides):
    """The API started again on the test's connection with ROTATED_SECRET_KEY, the test key
    kept as its fallback (GRIDWORK_SECRET_KEY_FALLBACKS) or dropped: what users hold (tokens,
    feed URLs, kept idempotency keys) was signed by the app that ran before."""
    from api.extensions import db

    fallbacks = [TEST_SETTINGS["SECRET_KEY"]] if keep_old else []
    app = build_app(
        database_url,
        SECRET_KEY=ROTATED_SECRET_KEY,
        SECRET_KEY_FALLBACKS=fallbacks,
        **overrides,
    )
    db.bind(connection)
    return app


@dataclass
class World:
    app: Flask
    grids: dict[str, Grid] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    households: dict[str, list[Household]] = field(default_factory=dict)

    def auth(self, username: str) -> dict[str, str]:
        """Authorization headers for one of the world's users."""
        with self.app.app_context():
            return bearer(self.users[username])


def build_world(session, app: Flask) -> World:
    world = World(app)
    for code, bounds in BOXES.items():
        world.grids[code] = make_grid(
            session,
            code,
            box(*bounds),
            community_name=f"社区{code[9:12]}",
            district_name="东城区" if code.startswith("110101") else "西城区",
        )
    u = world.users
    u["worker_a1"] = make_user(session, "worker_a1", "worker", grids=[A1])
    u["worker_a2"] = make_user(session, "worker_a2", "worker", grids=[A2])
    u["leader_a"] = make_user(session, "leader_a", "grid_leader", grids=[A1, A2])
    u["admin_a"] = make_user(session, "admin_a", "community_admin", community=A)
    u["admin_b"] = make_user(session, "admin_b", "community_admin", community=B)
    u["worker_b1"] = make_user(session, "worker_b1", "worker", grids=[B1])
    u["viewer_110101"] = make_user(session, "viewer_110101", "district_viewer", district="110101")
    u["viewer_110102"] = make_user(session, "viewer_110102", "district_viewer", district="110102")
    for code in BOXES:
        world.households[code] = [
            make_household(
                session,
                *centre(code, dx=0.0005 * i),
                room=f"{i + 1}01",
                tags=["elderly_80"] if i == 0 else [],
            )
            for i in range(3)
        ]
    session.flush()
    return world


# --- rosters: a community of N workers and G grids, made quickly -------------------------------


@dataclass
class RosterCommunity:
    """A generated community: its grids (west→east), workers (the first is a grid leader),
    an admin and a district viewer."""

    app: Flask
    code: str
    grids: list[Grid]
    workers: list[User]
    admin: User
    viewer: User

    @property
    def leader(self) -> User:
        return self.workers[0]

    def auth(self, user: User) -> dict[str, str]:
        with self.app.app_context():
            return bearer(user)


def make_roster_community(
    session,
    app: Flask,
    n_workers: int,
    n_grids: int,
    *,
    code: str = "110105001001",
    roster: dict | None = None,
) -> RosterCommunity:
    """N workers over G grids (worker i holds grid i mod G); `roster` sets roster settings."""
    from api.models import Community

    lon0 = 116.50 + 0.05 * (int(code[9:12]) - 1)
    grids = [
        make_grid(
            session,
            f"{code}{i + 1:03d}",
            box(lon0 + 0.002 * i, 39.95, lon0 + 0.002 * (i + 1), 39.952),
            community_name=f"社区{code[9:12]}",
            district_name="朝阳区",
        )
        for i in range(n_grids)
    ]
    tag = code[-3:]
    workers = [
        make_user(
            session,
            f"r{tag}_w{i + 1:02d}",
            "grid_leader" if i == 0 else "worker",
            display_name=f"Worker {i + 1:02d}",
            grids=[grids[i % n_grids].code],
        )
        for i in range(n_workers)
    ]
    admin = make_user(session, f"r{tag}_admin", "community_admin", community=code)
    viewer = make_user(session, f"r{tag}_viewer", "district_viewer", district=code[:6])
    if roster:
        community = session.get(Community, code)
        community.settings = {**(community.settings or {}), "roster": roster}
    session.flush()
    return RosterCommunity(app, code, grids, workers, admin, viewer)


# --- tasks and push (appended by the tasks feature) ---------------------------------------------
def make_task(session, grid_code: str = A1, *, now, actor_id: int | None = None, **fields):
    """A task at the centre of `grid_code` (else at `location`), created and dispatched by the
    service at `now`."""
    from api.services import tasks as task_service

    if "location" not in fields:
        lon, lat = centre(grid_code)
        fields["location"] = {"lon": lon, "lat": lat}
    data = {
        "source": "window",
        "type": "help",
        "title": "楼道灯不亮",
        "urgency": "general",
        **fields,
    }
    return task_service.create_task(session, None, data, actor_id=actor_id, now=now)


def make_device(session, user: User, token: str, platform: str = "android", *, now):
    from api.services import devices as device_service

    return device_service.register_device(session, user.id, platform, token=token, now=now)


# --- visits ------------------------------------------------------------------------------------
def visit_item(
    household: Household | None = None,
    *,
    at=None,
    lon: float | None = None,
    lat: float | None = None,
    datum: str = "wgs84",
    accuracy_m: float | None = 10.0,
    mock: bool = False,
    **fields,
) -> dict:
    """One batch item as a phone sends it: at the household's door, now, unless told otherwise."""
    import uuid
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from api.services.geometry import point_lonlat

    if lon is None or lat is None:
        lon, lat = point_lonlat(household.location)
    at = at or datetime.now(UTC)
    item = {
        "id": str(uuid.uuid4()),
        "visited_at": at.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(),
        "location": {
            "lon": lon,
            "lat": lat,
            "accuracy_m": accuracy_m,
            "datum": datum,
            "provider": "gps",
            "mock": mock,
        },
        "outcome": "met",
        "notes": "",
    }
    if household is not None:
        item["household_id"] = household.id
    item.update(fields)
    return item


def make_relief_shift(session, worker: User, grid: Grid, day, relief_for: User):
    """A B-post shift on `day` in `grid`, covering for `relief_for` (roster made if missing)."""
    from sqlalchemy import select

    from api.models import Roster, Shift
    from api.services.weeks import week_of

    week = week_of(day)
    roster = session.scalar(
        select(Roster).where(Roster.community_code == grid.community_code, Roster.week == week)
    )
    if roster is None:
        roster = Roster(community_code=grid.community_code, week=week, status="published")
        session.add(roster)
        session.flush()
    shift = Shift(
        roster_id=roster.id,
        date=day,
        post="B",
        worker_id=worker.id,
        grid_id=grid.id,
        relief_for_id=relief_for.id,
    )
    session.add(shift)
    session.flush()
    return shift


def make_visit(session, worker: User, household: Household, visited_at, **fields):
    """A stored visit (as the visits feature would store it), at the household's point unless
    `location` (and `raw_lon`, `raw_lat`, `datum`) say otherwise."""
    import uuid

    from geoalchemy2.shape import from_shape, to_shape

    from api.models import Visit
    from api.services.weeks import week_of

    point = to_shape(household.location)
    visit = Visit(
        id=fields.pop("id", None) or uuid.uuid4(),
        worker_id=worker.id,
        household_id=household.id,
        grid_id=household.grid_id,
        visited_at=visited_at,
        utc_offset_minutes=480,
        week=week_of(visited_at),
        location=fields.pop("location", None) or from_shape(point, srid=4326),
        datum=fields.pop("datum", "wgs84"),
        raw_lon=fields.pop("raw_lon", point.x),
        raw_lat=fields.pop("raw_lat", point.y),
        outcome=fields.pop("outcome", "met"),
        grade=fields.pop("grade", "ok"),
        **fields,
    )
    session.add(visit)
    session.flush()
    return visit


def make_task_at(session, household: Household, due_at, **fields):
    """A task on a household's grid (as the tasks feature would store it)."""
    from api.models import Task

    task = Task(
        source=fields.pop("source", "hotline"),
        type=fields.pop("type", "complaint"),
        title=fields.pop("title", "楼道灯不亮"),
        household_id=household.id,
        grid_id=household.grid_id,
        status=fields.pop("status", "dispatched"),
        due_at=due_at,
        **fields,
    )
    session.add(task)
    session.flush()
    return task


def image_bytes(kind: str = "PNG", size: int = 8) -> bytes:
    """A real small image (PNG, JPEG, WEBP): uploads are decoded by Pillow, not only sniffed."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 40, 40)).save(out, kind)
    return out.getvalue()
