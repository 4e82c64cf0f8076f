"""The `gridwork` command: users, imports, the demo seed, and migrations matching the models."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from geoalchemy2.shape import to_shape
from shapely.geometry import shape
from sqlalchemy import func, select

from api import cli
from api.cli import alembic_config, main
from api.models import Grid, Household, User
from fixtures.demo import demo_district
from geo import datum
from geo.datum import wgs84_to_gcj02
from tests.factories import (
    A1,
    TEST_SETTINGS,
    A,
    box,
    centre,
    grid_feature,
    make_household,
    make_roster_community,
)


@pytest.fixture()
def gridwork(app):
    """Run `gridwork ...` inside the test's app (and so inside its rolled-back transaction)."""

    def run(*args: str):
        with app.app_context():
            return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def test_user_create_makes_a_worker_of_a_grid(gridwork, session, world):
    result = gridwork(
        "user",
        "create",
        "--username",
        "w9",
        "--password",
        "long-enough-pw",
        "--role",
        "worker",
        "--grid",
        A1,
    )
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.username == "w9"))
    assert [g.code for g in user.grids] == [A1]
    assert user.community_code == A1[:12]


def test_an_account_the_command_line_opens_sets_its_own_password_at_the_first_sign_in(
    gridwork, client, session, world
):
    """The operator chose the password, as an admin does opening one through the API (or
    resetting one): its owner replaces it before anything else."""
    result = gridwork(
        "user", "create", "--username", "w9", "--password", "long-enough-pw",
        "--role", "worker", "--grid", A1,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "they set their own password at the first sign-in" in result.output
    assert session.scalar(select(User.must_change_password).where(User.username == "w9"))
    signed_in = client.post(
        "/api/v1/auth/token", json={"username": "w9", "password": "long-enough-pw"}
    ).json
    assert signed_in["password_change_required"] is True
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    refused = client.get("/api/v1/grids", headers=headers)
    assert refused.status_code == 403
    assert refused.json["type"].endswith("/password-change-required")


@pytest.mark.usefixtures("development")
def test_the_demo_accounts_sign_in_with_the_published_password_and_nothing_to_change(
    gridwork, client
):
    from fixtures.people import DEMO_PASSWORD

    assert gridwork("seed", "demo", "--no-activity").exit_code == 0
    signed_in = client.post(
        "/api/v1/auth/token", json={"username": "worker01", "password": DEMO_PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.json
    assert signed_in.json["password_change_required"] is False


def test_user_create_refuses_an_unknown_community(gridwork, world):
    result = gridwork(
        "user",
        "create",
        "--username",
        "x",
        "--password",
        "long-enough-pw",
        "--role",
        "community_admin",
        "--community",
        "110101009009",
    )
    assert result.exit_code == 1
    assert "community" in result.output


def test_user_create_refuses_a_control_character_in_a_name(gridwork, session, world):
    for name_args in (
        ["--username", "w\x07"],
        ["--username", "w9", "--display-name", "甲\x1b"],
        ["--username", "w9", "--display-name", "\u202e甲乙"],  # reads as 乙甲
        ["--username", "w\u20669"],
    ):
        result = gridwork(
            "user",
            "create",
            *name_args,
            "--password",
            "long-enough-pw",
            "--role",
            "worker",
            "--grid",
            A1,
        )
        assert result.exit_code == 1
        assert "control characters" in result.output
    assert (
        session.scalar(
            select(func.count(User.id)).where(User.username.in_(["w\x07", "w9", "w\u20669"]))
        )
        == 0
    )


def test_import_grids_from_geojson_file(gridwork, session, tmp_path, world):
    path = tmp_path / "grids.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    grid_feature("110101001001003", box(116.400, 39.925, 116.405, 39.930))
                ],
            }
        )
    )
    result = gridwork("import", "grids", str(path))
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output


def test_import_grids_reads_a_geojson_file_saved_with_a_byte_order_mark(
    gridwork, session, tmp_path, world
):
    """Found by a review: a GeoJSON file saved by Windows Notepad (or a GIS tool writing
    "UTF-8 with BOM") was refused as "not GeoJSON: Unexpected UTF-8 BOM"; RFC 7946 lets a
    reader ignore the mark, and the household import already does."""
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    feature["properties"]["name"] = "幸福网格"
    path = tmp_path / "grids.geojson"
    collection = {"type": "FeatureCollection", "features": [feature]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(collection, ensure_ascii=False).encode())
    result = gridwork("import", "grids", str(path))
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output
    assert session.scalar(select(Grid.name).where(Grid.code == A + "003")) == "幸福网格"


def test_import_grids_drawn_in_gcj02_stores_them_in_wgs84(gridwork, session, tmp_path, world):
    wgs84 = box(116.400, 39.925, 116.405, 39.930)
    drawn = {
        "type": "Polygon",
        "coordinates": [[list(wgs84_to_gcj02(x, y)) for x, y in wgs84["coordinates"][0]]],
    }
    path = tmp_path / "grids.geojson"
    collection = {"type": "FeatureCollection", "features": [grid_feature(A + "003", drawn)]}
    path.write_text(json.dumps(collection))
    result = gridwork("import", "grids", "--datum", "gcj02", str(path))
    assert result.exit_code == 0, result.output
    boundary = to_shape(session.scalar(select(Grid.boundary).where(Grid.code == A + "003")))
    assert boundary.hausdorff_distance(shape(wgs84)) < 1e-7


def test_import_grids_refuses_an_unknown_datum(gridwork, session, tmp_path, world):
    path = tmp_path / "grids.geojson"
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    result = gridwork("import", "grids", "--datum", "wgs-84", str(path))
    assert result.exit_code == 2
    assert "--datum" in result.output
    assert session.scalar(select(func.count(Grid.id)).where(Grid.code == A + "003")) == 0


def test_the_cli_offers_the_datums_geo_converts():
    assert cli.DATUMS == datum.DATUMS


def test_import_grids_reports_bad_features_and_fails(gridwork, tmp_path, world):
    path = tmp_path / "grids.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [grid_feature("bad", box(116.400, 39.925, 116.405, 39.930))],
            }
        )
    )
    result = gridwork("import", "grids", str(path))
    assert result.exit_code == 1
    assert "feature 0" in result.output


def test_import_households_from_csv(gridwork, session, tmp_path, world):
    lon, lat = centre(A1)
    path = tmp_path / "h.csv"
    path.write_text(
        f"building,unit,floor,room,lon,lat,kind,occupancy,members,tags,phone\n"
        f"5,1,2,201,{lon},{lat},residence,owner,2,migrant,\n"
    )
    result = gridwork("import", "households", str(path))
    assert result.exit_code == 0, result.output
    assert f"{A1}: 1" in result.output


def test_import_households_with_update_edits_the_registered_and_counts(
    gridwork, session, tmp_path, world
):
    """`--update`: a row of a registered household's address edits it (audited as an edit); a
    row of a new address is created; the counts say which."""
    from api.models import AuditEntry
    from api.services.households import household_lonlat

    home = world.households[A1][1]
    lon, lat = household_lonlat(home)
    path = tmp_path / "h.csv"
    path.write_text(
        "building,unit,floor,room,lon,lat,kind,occupancy,members,tags,phone\n"
        f"{home.building},{home.unit},{home.floor},{home.room},{lon},{lat},,,3,低保,\n"
        f"43,1,1,101,{lon},{lat},,,,,\n"
    )
    result = gridwork("import", "households", "--update", str(path))
    assert result.exit_code == 0, result.output
    assert "1 created, 1 updated, 0 unchanged" in result.output
    session.expire_all()
    household = session.get(Household, home.id)
    assert (household.members, household.tags) == (3, ["low_income"])
    edits = session.scalars(select(AuditEntry).where(AuditEntry.action == "update")).all()
    assert [e.resource_ids for e in edits] == [[home.id]]


@pytest.fixture()
def development(app):
    """The seed commands run on a development app only (see the test below)."""
    app.config["GRIDWORK_ENV"] = "development"


@pytest.mark.parametrize(
    "args",
    [("seed", "demo", "--no-activity"), ("seed", "city", "--grids", "2", "--replace")],
    ids=["demo", "city-replace"],
)
def test_seeding_is_refused_in_production(gridwork, session, args):
    """A seed makes accounts whose password the README publishes, and `--replace` empties the
    database: run against production by mistake, either would be a breach or a loss."""
    before = session.scalar(select(func.count(User.id)))
    result = gridwork(*args)
    assert result.exit_code == 1
    assert "GRIDWORK_ENV=development" in result.output
    assert session.scalar(select(func.count(User.id))) == before


@pytest.mark.usefixtures("development")
def test_seed_demo_loads_the_district_and_is_safe_to_run_twice(gridwork, session):
    demo = demo_district()
    first = gridwork("seed", "demo", "--no-activity")
    assert first.exit_code == 0, first.output
    second = gridwork("seed", "demo", "--no-activity")
    assert "0 households, 0 accounts created" in second.output
    assert session.scalar(select(func.count(Grid.id))) == len(demo["grids"]["features"])
    assert session.scalar(select(func.count(Household.id))) == len(demo["households"])


@pytest.mark.usefixtures("development")
def test_seeded_households_land_in_the_grid_they_were_drawn_in(gridwork, session):
    gridwork("seed", "demo", "--no-activity")
    demo = demo_district()
    placed = dict(
        session.execute(
            select(
                Household.room + "|" + Household.building + "|" + Household.unit, Grid.code
            ).join(Grid, Household.grid_id == Grid.id)
        ).all()
    )
    expected = {
        f"{h['room']}|{h['building']}|{h['unit']}": h["grid_code"] for h in demo["households"]
    }
    mismatched = [k for k, code in expected.items() if placed.get(k) != code]
    assert mismatched == []


def test_migrations_match_the_models(database_url):
    from alembic import command

    command.check(alembic_config(database_url))


def test_demo_activity_records_visits_and_hotline_tasks_through_the_api(app, session, world):
    from datetime import UTC, datetime

    from api.demo import DemoActivity
    from api.models import Task, Visit

    wednesday = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    activity = DemoActivity(app, session, seed=1)
    with app.app_context():
        summary = activity.run([world.users["worker_a1"]], [world.users["admin_a"]], wednesday)
    assert activity.started([A1])
    visits = session.scalar(select(func.count(Visit.id)))
    assert f"demo activity: {visits} visits" in summary
    assert visits >= 3
    assert session.scalar(select(func.count(Task.id)).where(Task.source == "hotline")) == 4


def test_the_demos_roster_covers_its_whole_week_when_seeded_midweek(app, session):
    """The office rosters a week before it begins: the demo's roster is made as of the
    evening before, so a demo seeded on a Wednesday shows Monday's and Tuesday's shifts too
    (generated on the day, a week under way starts that day)."""
    from datetime import UTC, date, datetime

    from geoalchemy2.shape import to_shape

    from api.demo import DemoActivity
    from api.models import Shift
    from api.services.geometry import point_lonlat

    community = make_roster_community(session, app, 10, 3)
    for grid in community.grids:  # the hotline's tickets name households
        make_household(session, *point_lonlat(to_shape(grid.boundary).centroid))
    wednesday = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    with app.app_context():
        summary = DemoActivity(app, session, seed=1).run([], [community.admin], wednesday)
    assert f"{community.code} published" in summary
    days = session.scalars(select(Shift.date).distinct().order_by(Shift.date)).all()
    assert days[0] == date(2026, 11, 23)


@pytest.mark.parametrize("command", [("tasks", "tick"), ("report", "tick")])
def test_a_tick_refuses_a_now_that_is_not_an_iso_instant(gridwork, command):
    result = gridwork(*command, "--now", "next monday")
    assert result.exit_code == 2
    assert "not an ISO instant: 'next monday'" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("security", "encrypt", "--batch", "0"), "--batch"),  # sealed nothing, said it was done
        (("security", "encrypt", "--batch", "-5"), "--batch"),  # a traceback
        (("security", "encrypt", "--photo-batch", "0"), "--photo-batch"),
        (("purge-audit", "--older-than-days", "1000000"), "--older-than-days"),  # a traceback
        (("report", "weekly", "--week", "2026-W47", "--out", "/nonexistent/r.json"), "--out"),
    ],
)
def test_a_bad_argument_is_named_before_anything_runs(gridwork, args, says):
    result = gridwork(*args)
    assert result.exit_code == 2
    assert says in result.output


def test_db_upgrade_names_an_unreachable_database(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output


def test_push_worker_names_a_vapid_subject_web_push_cannot_use(monkeypatch, database_url):
    from py_vapid import Vapid02

    vapid = Vapid02()
    vapid.generate_keys()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDWORK_DATA_KEY", TEST_SETTINGS["DATA_KEY"])
    monkeypatch.setenv("GRIDWORK_VAPID_PRIVATE_KEY", vapid.private_pem().decode())
    monkeypatch.setenv("GRIDWORK_VAPID_SUBJECT", "mailto:ops")  # no address: py_vapid refuses
    result = CliRunner().invoke(main, ["push-worker", "--once"])
    assert result.exit_code == 1
    assert "vapid_subject" in result.output and "Traceback" not in result.output


def _bare(monkeypatch, url: str) -> None:
    """The console outside any app: `url` as DATABASE_URL, a development data key."""
    for name in ("GRIDWORK_DATA_KEY", "GRIDWORK_OLD_DATA_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRIDWORK_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://postgres@127.0.0.1:1/nowhere", "cannot reach the database"),
        ("postgresql://postgres@127.0.0.1:5432/gridwork_no_such_db", "cannot reach the database"),
        ("foo", "DATABASE_URL"),
        ("mysql://root@127.0.0.1/x", "DATABASE_URL"),
    ],
)
@pytest.mark.parametrize(
    "args",
    [
        ("tasks", "tick"),
        (
            "user",
            "create",
            "--username",
            "x1",
            "--password",
            "y" * 12,
            "--role",
            "district_viewer",
            "--district",
            "110101",
        ),
    ],
)
def test_a_database_the_console_cannot_use_is_one_line_not_a_traceback(
    monkeypatch, url, says, args
):
    """Found by an operator's review: a wrong port, a database never created or a URL that is
    no PostgreSQL one printed 30-40 lines of SQLAlchemy traceback from every command but
    `db upgrade`."""
    _bare(monkeypatch, url)
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output and result.exc_info[0] is SystemExit


def test_a_database_never_migrated_says_to_upgrade_it(monkeypatch, own_database_url):
    from sqlalchemy import create_engine, text

    engine = create_engine(own_database_url)
    with engine.begin() as conn:  # as `createdb` leaves it: no gridwork tables
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    _bare(monkeypatch, own_database_url)
    result = CliRunner().invoke(main, ["tasks", "tick"])
    from api.extensions import db

    db.engine.dispose()  # the app the command built: its connections, before the next test
    assert result.exit_code == 1, result.output
    assert "gridwork db upgrade" in result.output and "Traceback" not in result.output


def test_the_push_worker_names_an_fcm_credentials_file_it_cannot_read(
    monkeypatch, database_url, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDWORK_DATA_KEY", TEST_SETTINGS["DATA_KEY"])
    monkeypatch.setenv("GRIDWORK_PUSH_BACKEND", "fcm")
    for content in (None, "not json"):
        path = tmp_path / "sa.json"
        if content is not None:
            path.write_text(content)
        monkeypatch.setenv("GRIDWORK_FCM_CREDENTIALS", str(path))
        result = CliRunner().invoke(main, ["push-worker", "--once"])
        from api.extensions import db

        db.engine.dispose()
        assert result.exit_code == 1, result.output
        assert "GRIDWORK_FCM_CREDENTIALS" in result.output and str(path) in result.output
        assert result.exc_info[0] is SystemExit


@pytest.mark.parametrize(
    ("grid", "says"),
    [("12345", "Grid 12345 not found"), (A1[:-3] + "999", f"Grid {A1[:-3]}999 not found")],
)
def test_user_create_names_a_grid_that_does_not_exist(gridwork, world, grid, says):
    """Found by an operator's review: `--grid 12345` was answered 'Role worker needs a known
    community (got 12345)', and an unknown grid of a known community 'is not a grid of' it."""
    result = gridwork(
        "user",
        "create",
        "--username",
        "new_w",
        "--password",
        "x" * 12,
        "--role",
        "worker",
        "--grid",
        grid,
    )
    assert result.exit_code == 1 and says in result.output
