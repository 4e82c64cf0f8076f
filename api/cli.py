"""The `gridwork` command: serve, migrate, seed, manage users, import grids and households."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from api import errors

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# geo.datum.DATUMS, spelled out: importing geo.datum loads numpy, for every command.
DATUMS = ("wgs84", "gcj02", "bd09")


def _app(*, check_data_keys: bool = True, serving: bool = False):
    """The running app when invoked inside one (tests, `flask` shell), else a new one.

    A new app refuses a database holding data sealed by a key it was not given
    (api/keyguard.py), unless `check_data_keys` is off (`security check-key` reports that).
    Only an app `serving` requests bounds its statements (STATEMENT_TIMEOUT_S): a command at
    the console (a city seed, a six-month report check) runs as long as its work takes."""
    from flask import current_app, has_app_context

    from api import create_app
    from api.crypto import DataKeyError

    if has_app_context():
        return current_app._get_current_object()
    try:
        overrides: dict[str, object] = {} if serving else {"STATEMENT_TIMEOUT_S": 0}
        if not check_data_keys:
            overrides["DATA_KEY_CHECK"] = False
        return create_app(overrides)
    except DataKeyError as exc:  # no key, or the wrong one: say so, without a traceback
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _session(isolation_level: str | None = None):
    """An app context and a session committed on success; domain errors exit non-zero."""
    from api.crypto import DataKeyError
    from api.extensions import db

    app = _app()
    with app.app_context():
        try:
            with db.begin(isolation_level=isolation_level) as session:
                yield session
        except errors.GridworkError as exc:
            click.secho(f"error: {exc.detail}", fg="red", err=True)
            if exc.errors:
                click.echo(
                    json.dumps(exc.errors, ensure_ascii=False, indent=2, default=str), err=True
                )
            raise SystemExit(1) from exc
        except DataKeyError as exc:  # the check deferred from start-up (database was down)
            raise click.ClickException(str(exc)) from exc


def _progress(label: str):
    def wrap(items: Iterable):
        items = list(items)
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar

    return wrap


class _Console(click.Group):
    """The command group: an operator's everyday mistake about the database (a wrong port, a
    database never created or never migrated, a URL that is no PostgreSQL one) ends any
    command with one line saying so, not a SQLAlchemy traceback."""

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

        from api.settings import ConfigError

        try:
            return super().invoke(ctx)
        except (OperationalError, InterfaceError) as exc:
            raise click.ClickException(f"cannot reach the database: {_first_line(exc)}") from exc
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != "42P01":  # undefined table
                raise
            raise click.ClickException(
                f"the database has no gridwork schema ({_first_line(exc)}): run "
                "`gridwork db upgrade`"
            ) from exc
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc


def _first_line(exc) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


@click.group(cls=_Console)
def main() -> None:
    """gridwork: field-work platform for community grid workers."""


# --- serve --------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1))
def serve(host: str, port: int, workers: int) -> None:
    """Run the API under gunicorn."""
    from gunicorn.app.base import BaseApplication

    from api import heap

    _one_signing_key()
    _usable_data_key()
    _say_where_the_photos_are()

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
            self.cfg.set("timeout", 120)
            # Each worker, once it has loaded the app: the collector settled (api/heap.py).
            self.cfg.set("post_worker_init", heap.post_worker_init)
            # gunicorn 25.1+ opens a control socket at one path per user
            # ($XDG_RUNTIME_DIR/gunicorn.ctl, else ~/.gunicorn/gunicorn.ctl), replacing what is
            # there: a second server on the machine took the first's, and the first to stop
            # removed it. Nothing of gridwork uses it (older gunicorn has no such setting).
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return _app(serving=True)

    Server().run()


def _say_where_the_photos_are() -> None:
    """The photo directory, absolute (a relative GRIDWORK_PHOTO_DIR is taken from the
    project root): the API and the push worker, which deletes photos, must name the same."""
    from api.settings import load_config

    click.echo(f"visit photos: {load_config()['PHOTO_DIR']}", err=True)


MIN_SECRET_CHARS = 32
# A key made by `gridwork security new-key` (43 URL-safe base64 characters) holds ~30 of them.
MIN_KEY_DISTINCT = 8
# gunicorn's default writes the request line, query string and referrer included: a calendar
# feed's token (its URL is its key) and whatever a search asked for. The path only, no referrer.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'


def _weak_key(key: str) -> str | None:
    """Why a signing key is guessable, or None: HS256 with a key shorter than its 32-byte hash
    is guessed offline from one token, and so is a long one of a few characters (32 spaces,
    one letter forty times), whose length said nothing of it. The key itself is never said."""
    if len(key) < MIN_SECRET_CHARS:
        return f"is {len(key)} characters: a signing key needs at least {MIN_SECRET_CHARS}"
    if len(set(key.strip())) < MIN_KEY_DISTINCT:
        return (
            f"holds fewer than {MIN_KEY_DISTINCT} different characters: a signing key needs "
            f"{MIN_SECRET_CHARS} characters or more of many different ones"
        )
    return None


def _usable_data_key() -> None:
    """The data key, checked once before gunicorn binds the port: each worker loading the app
    refused a missing or broken one in a traceback of its own, then "Worker failed to boot".
    (Whether the database's data was sealed by it, each worker checks as it starts.)"""
    from api import crypto
    from api.settings import load_config

    config = load_config()
    try:
        crypto.check_keys(
            config["DATA_KEY"],
            config.get("OLD_DATA_KEYS"),
            development_key_allowed=config["GRIDWORK_ENV"] == "development",
        )
    except crypto.DataKeyError as exc:
        raise click.ClickException(str(exc)) from exc


def _one_signing_key() -> None:
    """Every worker signs tokens with one key. gunicorn loads the app in each worker, and an
    app without GRIDWORK_SECRET_KEY makes a random key of its own: a token one worker signed
    was refused by the others. In development the run makes one for its workers (tokens end
    with the run); in production the server does not start without it."""
    import os
    import secrets

    from api.settings import key_list, load_config

    production = load_config()["GRIDWORK_ENV"] != "development"
    key = os.environ.get("GRIDWORK_SECRET_KEY")
    # GRIDWORK_JWT_SECRET, when set, signs the tokens in its place: as guessable a key as any.
    for name in ("GRIDWORK_SECRET_KEY", "GRIDWORK_JWT_SECRET"):
        value = os.environ.get(name)
        if value and production and (weak := _weak_key(value)):
            raise click.ClickException(f"{name} {weak} (`gridwork security new-key` makes one).")
    for name in ("GRIDWORK_SECRET_KEY_FALLBACKS", "GRIDWORK_JWT_SECRET_FALLBACKS"):
        # A fallback verifies as the key does: a guessable one would let a forged token in.
        olds = key_list(os.environ.get(name)) if production else []
        for n, old in enumerate(olds, 1):
            if weak := _weak_key(old):
                raise click.ClickException(
                    f"{name}: key {n} of {len(olds)} {weak}, an old one too."
                )
    if key:
        return
    if production:
        raise click.ClickException(
            "GRIDWORK_SECRET_KEY is not set: each worker would sign tokens with a key of its "
            "own and refuse the others'. Set it (`gridwork security new-key` makes one), or "
            "GRIDWORK_ENV=development for a demo."
        )
    os.environ["GRIDWORK_SECRET_KEY"] = secrets.token_hex(32)  # inherited by the workers
    click.echo(
        "GRIDWORK_SECRET_KEY is not set: this run's workers share a key made for it; "
        "tokens signed with it end with the run.",
        err=True,
    )


# --- db -----------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


def alembic_config(database_url: str | None = None):
    from alembic.config import Config

    from api.settings import load_config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url or load_config()["DATABASE_URL"]
    return cfg


def ensure_database(url: str) -> bool:
    """Create the database named in `url` when the server has no such database yet.

    The database itself is tried first: only when it does not exist is the server's `postgres`
    database reached for, to create it (a pgbouncer serving gridwork's database alone, or a
    pg_hba letting the account into its own database only, refused the upgrade otherwise)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    target = make_url(url)
    own = create_engine(target)
    try:
        with own.connect():
            return False
    except OperationalError:  # no such database, or no server: the `postgres` database says
        pass
    finally:
        own.dispose()
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
                return True
    finally:
        admin.dispose()
    return False


@db.command()
def upgrade() -> None:
    """Create the database if needed and migrate it to the newest schema."""
    from alembic import command

    from api.settings import load_config

    url = load_config()["DATABASE_URL"]  # an unreachable database: one line (`_Console`)
    if ensure_database(url):
        click.echo("created the database")
    command.upgrade(alembic_config(url), "head")
    click.echo("database at the newest schema")


# --- seed ---------------------------------------------------------------------------------------
@main.group()
def seed() -> None:
    """Seed data (development only: the demo's accounts share a published password, and
    `seed city --replace` empties the database)."""
    from flask import current_app, has_app_context

    from api.settings import load_config

    config = current_app.config if has_app_context() else load_config()
    if config["GRIDWORK_ENV"] != "development":
        raise click.ClickException(
            "gridwork seed makes accounts with the demo password the README publishes (and "
            "--replace empties the database): it runs only with GRIDWORK_ENV=development."
        )


@seed.command()
@click.option(
    "--activity/--no-activity",
    default=True,
    show_default=True,
    help="Also record a lived-in fortnight: visits, hotline tasks, this week's rosters.",
)
def demo(activity: bool) -> None:
    """Load the demo district (grids, households, accounts); running it again changes nothing."""
    from flask import current_app
    from sqlalchemy import select

    from api.demo import DemoActivity
    from api.models import User
    from fixtures.demo import demo_district

    district = demo_district()
    with _session() as session:
        click.echo(seed_demo(session, district))
    if not activity:
        return
    codes = [f["properties"]["code"] for f in district["grids"]["features"]]
    with _session() as session:
        if not DemoActivity(current_app, session).started(codes):
            # The district has existed for a month, so last week's Monday report has it
            # (committed before the activity's requests write visits through the triggers).
            from datetime import UTC, datetime, timedelta

            from api.services.report_store import backdate_register

            backdate_register(session, codes, datetime.now(UTC) - timedelta(days=28))
    with _session() as session:
        # Each part is checked and completed on its own (api/demo.py): a rerun after a crash
        # part-way completes the activity, a rerun after it changes nothing.
        names = [u["username"] for u in district["users"]]
        users = session.scalars(select(User).where(User.username.in_(names))).all()
        workers = [u for u in users if u.role == "worker"]
        admins = sorted((u for u in users if u.role == "community_admin"), key=lambda u: u.id)
        click.echo(DemoActivity(current_app, session).run(workers, admins))


@seed.command("city")
@click.option("--grids", default=3000, show_default=True, type=click.IntRange(1))
@click.option("--households", default=900_000, show_default=True, type=click.IntRange(1))
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(1, 52))
@click.option("--tasks", default=200_000, show_default=True, type=click.IntRange(0))
@click.option("--seed", "seed_", default=0, show_default=True, type=int)
@click.option("--replace", is_flag=True, help="Empty the database first (all its data).")
def seed_city(grids, households, weeks, tasks, seed_, replace) -> None:
    """Generate a city and load it with COPY: grids, households, accounts, visits, tasks."""
    from api.auth import hash_password
    from api.crypto import current_key_id, encrypt
    from api.extensions import db
    from api.services.encryption import record_key, require_copy_key
    from fixtures.city import CityAlreadyLoaded, load_city
    from fixtures.people import DEMO_PASSWORD

    app = _app()
    recorded: str | None = None  # the id of the key the load seals with, once recorded

    def seal(value: str) -> str:
        # The loader seals for COPY on a connection of its own, past the sessions that record
        # the key of what they seal and check it before they commit: record it, committed,
        # before the first value (refused if retired), and check it again before the commit.
        nonlocal recorded
        if recorded is None:
            with db.begin() as session:
                record_key(session.connection())
            recorded = current_key_id()
        return encrypt(value)

    def check_key(connection) -> None:
        # A rotation may have retired the key while the load ran (minutes at city scale): its
        # re-sealing could not see the load's rows, so they must not commit under that key.
        if recorded is not None:
            require_copy_key(connection, recorded)

    def progress(label: str, total: int):
        return click.progressbar(length=total, label=f"{label:<26}", file=sys.stderr)

    with app.app_context():
        try:
            report = load_city(
                app.config["DATABASE_URL"],
                grids=grids,
                households=households,
                weeks=weeks,
                tasks=tasks,
                seed=seed_,
                replace=replace,
                password_hash=hash_password(DEMO_PASSWORD),
                encrypt=seal,
                progress=progress,
                before_commit=check_key,
            )
        except (CityAlreadyLoaded, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)


def seed_demo(session, district: dict) -> str:
    """Load `district` (fixtures.demo) into an empty or already-seeded database."""
    import csv
    import io

    from sqlalchemy import func, select

    from api.models import Grid, Household, User
    from api.services import grids, households, users
    from api.services.household_files import COLUMNS

    result = grids.import_grids(session, None, district["grids"])
    codes = [f["properties"]["code"] for f in district["grids"]["features"]]
    existing = session.scalar(
        select(func.count(Household.id))
        .join(Grid, Household.grid_id == Grid.id)
        .where(Grid.code.in_(codes))
    )
    created_households = 0
    if not existing:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)  # the register import's columns, named as it reads them
        for row in district["households"]:
            writer.writerow([";".join(row[c]) if c == "tags" else row[c] for c in COLUMNS])
        created_households = households.import_households(
            session, None, buffer.getvalue().encode()
        ).created
    created_users = 0
    for account in district["users"]:
        if session.scalar(select(User.id).where(User.username == account["username"])):
            continue
        users.create_user(
            session,
            username=account["username"],
            password=account["password"],
            role=account["role"],
            display_name=account.get("display_name"),
            community=account.get("community"),
            district=account.get("district")
            or (district["district"]["code"] if account["role"] == "district_viewer" else None),
            grids=account.get("grids") or (),
        )
        created_users += 1
    return (
        f"demo district: {len(result.created)} grids created, {len(result.unchanged)} unchanged; "
        f"{created_households} households, {created_users} accounts created"
    )


# --- users --------------------------------------------------------------------------------------
@main.group()
def user() -> None:
    """Accounts."""


def _password_option(help_: str):
    """`--password`, asked for (twice, unseen) when not given: kept out of the shell history
    and the process list."""
    return click.option(
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help=f"{help_}; asked for when not given",
    )


@user.command("create")
@click.option("--username", required=True)
@_password_option("8 characters or more")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["worker", "grid_leader", "community_admin", "district_viewer"]),
)
@click.option("--community", help="12-digit community code (6-digit district for a viewer)")
@click.option("--district", help="6-digit district code (district viewers)")
@click.option("--grid", "grids", multiple=True, help="15-digit grid code; repeat for several")
@click.option("--display-name")
@click.option("--phone")
def user_create(username, password, role, community, district, grids, display_name, phone):
    """Create an account; its owner sets their own password at the first sign-in."""
    from api.services import users

    with _session() as session:
        account = users.create_user(
            session,
            username=username,
            password=password,
            role=role,
            community=community,
            district=district,
            grids=grids,
            display_name=display_name,
            phone=phone,
        )
        # The operator chose the password, as an admin does opening an account through the
        # API: its owner replaces it before anything else (only /auth answers until then).
        # No script, fixture or documented step signs in with a password set here (the demo's
        # accounts are seeded), so there is no flag to keep it.
        account.must_change_password = True
        session.flush()
        click.echo(
            f"created {account.role} {account.username} (id {account.id}); "
            "they set their own password at the first sign-in"
        )


def _account_id(session, username: str) -> int:
    from sqlalchemy import select

    from api.models import User

    found = session.scalar(select(User.id).where(User.username == username))
    if found is None:
        raise click.ClickException(f"No account {username!r}.")
    return found


@user.command("switch-off")
@click.option("--username", required=True)
def user_switch_off(username) -> None:
    """Switch an account off (any role, district viewers too): its tokens, sessions, calendar
    link and push devices end; the tasks it held go to whom dispatch picks today."""
    _change_as_operator(username, {"active": False}, f"switched off {username}")


@user.command("switch-on")
@click.option("--username", required=True)
@_password_option("a temporary password, 8 characters or more")
def user_switch_on(username, password) -> None:
    """Switch an account on again (any role, a community admin's too, which no fellow admin may)
    with a temporary password: the old one may have been guessed while it was off; its owner
    sets their own at the first sign-in."""
    done = f"switched on {username}; they sign in with this password, then set their own"
    _change_as_operator(username, {"active": True, "new_password": password}, done)


def _change_as_operator(username: str, changes: dict, done: str) -> None:
    """Change an account as the district's operator (any account, audited with no user), then
    say what was done, the tasks it handed on and the shifts left to re-roster."""
    from api.services import accounts

    with _session() as session:
        outcome = accounts.change_account(
            session,
            accounts.Actor(None),
            _account_id(session, username),
            changes,
            database_now(session),
        )
    handed = ", ".join(
        f"task {task} to {'nobody (waits unassigned)' if to is None else f'user {to}'}"
        for task, to in outcome.handed_on
    )
    click.echo(done + (f"; handed on: {handed}" if handed else ""))
    if outcome.shifts_ahead:
        days = ", ".join(day.isoformat() for day in outcome.shifts_ahead)
        click.echo(f"rostered still on {days}: re-roster those days")


@user.command("set-role")
@click.option("--username", required=True)
@click.option(
    "--role", required=True, type=click.Choice(("worker", "grid_leader", "community_admin"))
)
def user_set_role(username, role) -> None:
    """Change the role of a community's account (a community admin's too, which no fellow
    admin may change): its sign-ins and push devices end; made an admin, the grids it held are
    let go and its tasks handed on."""
    _change_as_operator(username, {"role": role}, f"{username} is now a {role}")


@user.command("reset-password")
@click.option("--username", required=True)
@_password_option("a temporary password, 8 characters or more")
def user_reset_password(username, password) -> None:
    """Set a temporary password (any role): every sign-in, the calendar link and the push
    devices of the account end; its owner sets their own at the next sign-in."""
    from api.services import accounts

    with _session() as session:
        accounts.reset_password(
            session,
            accounts.Actor(None),
            _account_id(session, username),
            password,
            database_now(session),
        )
        click.echo(f"password of {username} reset; they set their own at the next sign-in")


# --- import -------------------------------------------------------------------------------------
@main.group("import")
def import_() -> None:
    """Import registers."""


@import_.command("grids")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--datum",
    type=click.Choice(DATUMS),
    default="wgs84",
    show_default=True,
    help="The datum the file was drawn in: gcj02 (Amap/Tencent) or bd09 (Baidu) are "
    "converted to WGS-84, in which grids are stored.",
)
def import_grids(file: Path, datum: str) -> None:
    """Import grids from a GeoJSON FeatureCollection (all or nothing)."""
    from api.limits import JsonLimitError, strict_loads
    from api.services import grids

    try:
        # Strict: no NaN/Infinity, bounded nesting; the file may be larger than a request body.
        # A file saved as "UTF-8 with BOM" (Windows Notepad, some GIS tools): RFC 7946 lets
        # a reader ignore the mark, as the household import does.
        raw = file.read_bytes().removeprefix(b"\xef\xbb\xbf")
        collection = strict_loads(raw, max_values=None)
    except JsonLimitError as exc:
        raise click.ClickException(f"{file} is not GeoJSON: {exc.detail}") from exc
    with _session() as session:
        summary = grids.import_grids(
            session, None, collection, progress=_progress("grids"), datum=datum
        )
    click.echo(
        f"{len(summary.created)} created, {len(summary.redrawn)} redrawn, "
        f"{len(summary.unchanged)} unchanged, {len(summary.retired)} retired, "
        f"{summary.households_moved} households re-placed"
    )


@import_.command("households")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--update",
    is_flag=True,
    help="A row of a registered household (its address within 100 m) edits it; "
    "without it, such a row is refused.",
)
def import_households(file: Path, update: bool) -> None:
    """Import households from CSV or XLSX (all or nothing), streamed in bounded memory."""
    from api.services import audit, households

    # Audited as created by an operator at the console (no user): who ran it is the host's.
    operator = audit.Reader.of(None, None, f"gridwork import households {file.name}")

    with (
        _session() as session,
        file.open("rb") as stream,
        click.progressbar(length=file.stat().st_size, label="households", file=sys.stderr) as bar,
    ):

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.pos)

        result = households.import_households(
            session,
            None,
            stream,
            filename=file.name,
            progress=progress,
            audit_as=operator,
            audit_fields=audit.HOUSEHOLD_FIELDS,
            mode="update" if update else "create",
        )
    if update:
        click.echo(
            f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
        )
    else:
        click.echo(f"{result.created} households imported")
    for code, count in result.by_grid.items():
        click.echo(f"  {code}: {count}")
    if result.header_row > 1:
        click.echo(f"header on row {result.header_row}: the rows above it were skipped")
    if result.ignored_columns:
        click.echo("columns not read: " + ", ".join(result.ignored_columns))
    if result.note_rows:
        rows = ", ".join(map(str, result.note_rows))
        noun = "row" if len(result.note_rows) == 1 else "rows"
        click.echo(f"{noun} {rows} under the header: notes of the template, not read")


@main.group("export")
def export_() -> None:
    """Export registers."""


@export_.command("households")
@click.option("--community", required=True, help="The community's 12-digit code.")
@click.option("--grid", help="Only this grid of the community (its code).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["xlsx", "csv"]),
    help="Default: csv for a file named *.csv, else xlsx.",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (replaced if it exists).",
)
def export_households(community: str, grid: str | None, fmt: str | None, out: Path) -> None:
    """Write a community's register, to edit and import again with `import households --update`.

    The file `GET /api/v1/households/export` gives the community's admin: the import's columns
    with Chinese headers and words, points as stored, phones in full. Audited as an export by
    an operator at the console; the file appears only once that entry is committed."""
    from sqlalchemy import exists, select

    from api.models import Grid
    from api.scope import Scope
    from api.services import audit, household_files, households

    if not out.parent.is_dir():
        raise click.ClickException(f"No directory {out.parent} to write {out.name} in.")
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "xlsx")
    operator = audit.Reader.of(None, None, f"gridwork export households --community {community}")
    # Every phone of the community in clear: the owner's alone, whatever the umask. Written
    # before the audit entry commits (a file that cannot be written rolls it back), the file
    # appears only once it is committed.
    with _file_put_in_place(out, 0o600) as write, _session() as session:
        if not session.scalar(select(exists().where(Grid.community_code == community))):
            raise errors.NotFound(f"Community {community} not found (it has no grid).")
        rows = households.export_households(session, Scope.of_community(community), grid=grid)
        ids = [row.id for row in rows]
        audit.record_read(session, operator, "export", "household", ids, audit.HOUSEHOLD_FIELDS)
        write(household_files.write_register(rows, fmt))
    click.echo(f"{len(rows)} households written to {out}")


@contextmanager
def _file_put_in_place(out: Path, mode: int = 0o666):
    """`write(data)` for `out`: written beside it, and put in its place whole once the block
    (and what encloses this: a transaction, committed) has ended without an error. A failure
    leaves no half-written file, and the file there before, if any, as it was; a file there is
    replaced, not reused with its mode. A file that cannot be written (a read-only mount,
    another account's directory, a full disk) is one line, not an OSError's traceback."""
    partial = out.with_name(f".{out.name}.partial")

    def cannot(exc: OSError) -> click.ClickException:
        return click.ClickException(f"cannot write {out}: {exc.strerror or exc}")

    def write(data: bytes) -> None:
        try:
            partial.unlink(missing_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
        except OSError as exc:
            raise cannot(exc) from exc

    try:
        yield write
        try:
            partial.replace(out)
        except OSError as exc:
            raise cannot(exc) from exc
    finally:
        partial.unlink(missing_ok=True)


@main.group("households")
def households_group() -> None:
    """The register's households."""


def _address(parts) -> str:
    return " / ".join(parts)


@households_group.command("spellings")
@click.option("--community", help="Only this community's households (its 12-digit code).")
@click.option(
    "--apply",
    is_flag=True,
    help="Respell the households listed (audited); without it, nothing is changed.",
)
def households_spellings(community: str | None, apply: bool) -> None:
    """List the households stored spelled otherwise than the import stores an address now
    (７号楼, 3 号楼: before it made address parts half-width and spaced one way), and, with
    --apply, respell them. An address registered more than once at one point in different
    spellings (3 号楼 502 and 3号楼 0502: one flat twice) is named and left as it is: which of
    its households holds the visits and the phone is for the office to say."""
    from api.services import address_spellings, audit

    path = "gridwork households spellings" + (f" --community {community}" if community else "")
    operator = audit.Reader.of(None, None, path + (" --apply" if apply else ""))
    with _session() as session:
        found = address_spellings.find_spellings(session, community)
        respelled = address_spellings.respell(session, found, operator) if apply else []
    count = len(found.respell)
    click.echo(
        f"{count} household{'' if count == 1 else 's'} stored spelled otherwise than the "
        "import stores an address:"
    )
    for r in found.respell:
        click.echo(
            f"  household {r.household_id} ({r.grid_code}): "
            f"{_address(r.stored)} -> {_address(r.respelled)}"
        )
    if found.registered_twice:
        twice = len(found.registered_twice)
        click.secho(
            f"{twice} address{'' if twice == 1 else 'es'} registered more than once at one "
            "point, spelled differently (left as they are: keep one household of each, removing "
            "the others with reason duplicate, POST /api/v1/households/{id}/removal):",
            fg="yellow",
        )
        for group in found.registered_twice:
            click.echo(
                "  households " + ", ".join(f"{i} ({_address(parts)})" for i, parts in group)
            )
    if apply:
        click.echo(f"{len(respelled)} household{'' if len(respelled) == 1 else 's'} respelled")
    elif count:
        click.echo("run again with --apply to respell them")


# --- security -----------------------------------------------------------------------------------
@main.group()
def security() -> None:
    """Keys, encryption at rest, the audit log."""


@security.command("new-key")
def security_new_key() -> None:
    """Print a new random key for GRIDWORK_DATA_KEY or GRIDWORK_SECRET_KEY."""
    from api.crypto import new_key

    click.echo(new_key())


@security.command("encrypt")
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Rows per UPDATE (and transaction)",
)
@click.option(
    "--photo-batch",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Photo files per transaction",
)
def security_encrypt(batch: int, photo_batch: int) -> None:
    """Encrypt sensitive values and photo files stored in plaintext or under an old key (after
    a rotation).

    Rotate: set GRIDWORK_DATA_KEY to a new key (`gridwork security new-key`) and list the old
    one in GRIDWORK_OLD_DATA_KEYS, run this, then drop GRIDWORK_OLD_DATA_KEYS. The old key is
    retired first: a process not yet restarted with the new key can no longer store values
    sealed by it (its requests get 503s until it is restarted). Values are re-sealed a batch a
    transaction (--batch: rows per transaction), photo files a batch at a time, each written
    whole before the file it replaces goes: safe to interrupt and to run again. A key some
    photo file is still sealed by (damaged, or sealed by a key not configured) stays needed,
    and the command exits 1 naming the files.
    """
    from sqlalchemy import text

    from api.crypto import DataKeyError
    from api.extensions import db
    from api.services.encryption import forget_other_keys, retire_other_keys, seal_all_batched
    from api.services.photo_sealing import seal_photos

    app = _app()
    with app.app_context():
        # Committed before the scan, so nothing sealed by an old key can commit behind it.
        with _session() as session:
            retired = retire_other_keys(session.connection())
        if retired:
            click.echo(f"retired key id(s) {', '.join(retired)}: no process may seal with them")
        # A transaction a batch: a row re-sealed is not held locked until the last table is
        # done (the API's writes to it would wait minutes); cut short, a run is run again.
        try:
            counts = seal_all_batched(db.begin, batch=batch)
        except DataKeyError as exc:  # a value no configured key opens; a key retired meanwhile
            raise click.ClickException(str(exc)) from exc
        storage = _photo_storage(app)
        with _session() as session:
            photo_rows = session.scalar(
                text(
                    "SELECT (SELECT count(*) FROM visit_photos)"
                    " + (SELECT count(*) FROM task_photos)"
                )
            )
        try:
            photos = seal_photos(db.begin, storage, batch=photo_batch)
        except OSError as exc:  # a full disk: each file is whole, old or new
            raise click.ClickException(
                f"the photo storage failed ({exc}); no photo is lost and no old key was "
                "marked unneeded: run the command again"
            ) from exc
        if photo_rows and not photos.files:
            # A wrong GRIDWORK_PHOTO_DIR would look like a rotation with nothing to re-seal.
            raise click.ClickException(
                f"{_count(photo_rows, 'photo')} in the database but no photo file under "
                f"{storage.root.resolve()}: set GRIDWORK_PHOTO_DIR to where the photos are; "
                "the old keys stay needed until then"
            )
        with _session() as session:
            # Every value, and every photo file it could open, is under the current key now:
            # the old keys are no longer needed here, but for those a photo file still needs.
            forgotten = forget_other_keys(session.connection(), photos.still_used)
    for column, count in counts.items():
        if count:
            click.echo(f"  {column}: {count}")
    if photos.sealed or photos.resealed:
        click.echo(
            f"  photo files: {photos.sealed} sealed from plaintext, {photos.resealed} re-sealed "
            "from an old key"
        )
    click.echo(
        f"encrypted {sum(counts.values())} value(s) and "
        f"{photos.sealed + photos.resealed} photo file(s) under the current key"
    )
    if forgotten:
        click.echo(
            f"no data needs key id(s) {', '.join(forgotten)} any more: remove them from "
            "GRIDWORK_OLD_DATA_KEYS"
        )
    problems = [
        f"{n} photo file(s) sealed by key id {kid}, which is not configured"
        for kid, n in sorted(photos.unopened.items())
    ]
    if photos.damaged:
        problems.append(
            f"{len(photos.damaged)} photo file(s) damaged, left as they are (images' SHA-256: "
            f"{', '.join(photos.damaged)})"
        )
    if problems:
        for problem in problems:
            click.secho(problem, fg="red", err=True)
        click.secho(
            f"key id(s) {', '.join(sorted(photos.still_used)) or '(none)'} stay needed by "
            "those files",
            fg="red",
            err=True,
        )
        raise SystemExit(1)


def _photo_storage(app):
    """The app's photo storage (PHOTO_STORAGE, PHOTO_DIR and the photo name key)."""
    from api.extensions import db
    from api.services import photos

    with db.begin() as session:
        try:
            return photos.build_storage(app.config, photos.load_name_key(session))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        except errors.GridworkError as exc:
            raise click.ClickException(exc.detail) from exc


@security.command("check-key")
@click.option(
    "--photos/--no-photos",
    default=True,
    show_default=True,
    help="Also read each photo file's header (the key id sealing it) under GRIDWORK_PHOTO_DIR",
)
def security_check_key(photos: bool) -> None:
    """Report which data keys have sealed data in this database (and its photo files) and
    whether GRIDWORK_DATA_KEY and GRIDWORK_OLD_DATA_KEYS hold them all; exits 1 when they do
    not.

    Prints key ids (the first 8 hex digits of each key's SHA-256), never keys.
    """
    from api import crypto
    from api.extensions import db
    from api.services.encryption import key_records, needed, unusable
    from api.services.encryption import retired as retired_key

    app = _app(check_data_keys=False)
    with app.app_context(), db.begin(guarded=False) as session:  # unreachable: `_Console`
        records = key_records(session.connection())
    if records is None:
        raise click.ClickException("the database has no data_keys table: `gridwork db upgrade`")
    current, *old = crypto.configured_key_ids()
    click.echo(f"GRIDWORK_DATA_KEY:      key id {current}")
    click.echo(f"GRIDWORK_OLD_DATA_KEYS: {', '.join(old) if old else '(none)'}")
    in_use = needed(records)
    click.echo("keys that sealed data in this database:" if in_use else "no data sealed yet")
    said = {
        "current": "GRIDWORK_DATA_KEY",
        "old": "GRIDWORK_OLD_DATA_KEYS",
        "missing": "NOT CONFIGURED",
        "wrong": "WRONG KEY (a configured key has this id but does not open its canary)",
    }
    for record in in_use:
        since = record.first_sealed_at.date().isoformat()
        retired = (
            f"  RETIRED {record.retired_at.date().isoformat()} (re-sealing unfinished: run "
            "`gridwork security encrypt` again)"
            if record.retired_at is not None
            else ""
        )
        click.echo(f"  {record.kid}  since {since}  {said[record.status]}{retired}")
    for record in records:
        if record.emptied_at is not None:
            click.echo(
                f"  {record.kid}  retired {record.retired_at.date().isoformat()}, no data needs "
                "it; it may never seal here again"
            )
    photo_kids = _photo_key_ids(app) if photos else None
    unneeded = [kid for kid in old if kid not in {r.kid for r in in_use} | set(photo_kids or ())]
    if unneeded:
        click.echo(f"no data needs old key id(s) {', '.join(unneeded)}: they can be removed")
    bad = unusable(records)
    if bad:
        raise click.ClickException(str(crypto.DataKeyMismatch(bad)))
    if retired_key(records, current):
        raise click.ClickException(str(crypto.DataKeyRetired(current)))
    unsealable = sorted(
        kid
        for kid in photo_kids or ()
        if kid not in ("plaintext", "", current, *old)  # "": a damaged header, no key's
    )
    if unsealable:
        raise click.ClickException(
            f"photo files are sealed by key id(s) {', '.join(unsealable)}, "
            "which neither GRIDWORK_DATA_KEY nor GRIDWORK_OLD_DATA_KEYS holds"
        )
    click.echo("ok: the configured keys open every key's data")


def _photo_key_ids(app):
    """How many photo files each key id seals (`photo_sealing.key_ids`), printed; None when
    there is no photo directory."""
    from api.services.photo_sealing import key_ids
    from api.services.photos import SealedStorage

    root = Path(app.config["PHOTO_DIR"])
    if not root.is_dir():
        click.echo(f"photo files: no photo directory {root.resolve()} (GRIDWORK_PHOTO_DIR)")
        return None
    # Headers only: the names need not be undone, so no name key (nor database) is read.
    found = key_ids(SealedStorage(root, bytes(32)))
    said = {"plaintext": "in plaintext (`gridwork security encrypt` seals them)", "": "unreadable"}
    listed = ", ".join(
        f"{n} {said.get(kid, f'sealed by {kid}')}" for kid, n in sorted(found.items())
    )
    click.echo(f"photo files: {listed or 'none'}")
    return found


@security.command("purge-audit")
@click.option("--older-than-days", type=click.IntRange(0, 36500), default=400, show_default=True)
def security_purge_audit(older_than_days: int) -> None:
    """Delete audit entries older than N days (never fewer than 184: six months)."""
    _purge_audit(older_than_days)


@main.command("purge-audit")
@click.option("--older-than-days", type=click.IntRange(0, 36500), default=400, show_default=True)
def purge_audit(older_than_days: int) -> None:
    """Delete audit entries older than N days; refuses N < 184 (kept at least six months)."""
    _purge_audit(older_than_days)


def _purge_audit(older_than_days: int) -> None:
    from datetime import timedelta

    from api.services import audit

    older_than = timedelta(days=older_than_days)
    with _app().app_context():
        with _session():  # refused before anything is deleted
            cutoff = audit.purge_cutoff(older_than)
        # A batch a transaction (each leaving its entry), the cutoff fixed at the start.
        removed = 0
        while True:
            with _session() as session:
                done = audit.purge(session, older_than, cutoff + older_than)
            removed += done
            if done < audit.PURGE_BATCH:
                break
    click.echo(f"removed {removed} audit entries (before {cutoff.isoformat(timespec='seconds')})")


# --- photos -------------------------------------------------------------------------------------
@main.group("photos")
def photos_group() -> None:
    """Visit photos."""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@photos_group.command("scrub")
@click.option("--dry-run", is_flag=True, help="Count what would change; change nothing.")
def photos_scrub(dry_run: bool) -> None:
    """Strip the metadata (EXIF: GPS, time, phone and its serial) from photos stored before
    uploads were stripped, as uploads are; the orientation is kept.

    Each photo keeps its id and URL; its sha256 and size become those of the new bytes. Two
    photos of one visit that become the same image are one attachment (the first one's id).
    Only photos not yet marked clean are read (uploads are marked as they are stored, the scrub
    marks what it finds clean or strips); a dry run says how many. Safe to interrupt and to run
    again: a second run changes nothing and reads no photo.
    """
    from api.extensions import db
    from api.services import photo_scrub

    app = _app()
    with app.app_context():
        storage = _photo_storage(app)
        total = photo_scrub.count_photos(db.begin)
        to_read = photo_scrub.count_photos(db.begin, unmarked_only=True)
        root = getattr(storage, "root", None)
        if total and root is not None and not root.is_dir():
            raise click.ClickException(
                f"no photo directory {root.resolve()} (GRIDWORK_PHOTO_DIR): set "
                "GRIDWORK_PHOTO_DIR to where the photos are"
            )
        try:
            with click.progressbar(length=to_read, label="photos", file=sys.stderr) as bar:
                result = photo_scrub.scrub_photos(
                    db.begin, storage, dry_run=dry_run, progress=bar.update
                )
        except photo_scrub.StorageFailed as exc:
            _scrub_summary(exc.result)
            raise click.ClickException(
                f"the photo storage failed ({exc}); nothing is lost: run the command again"
            ) from exc
    if _scrub_summary(result):
        raise SystemExit(1)


def _scrub_summary(result) -> bool:
    """Print what a scrub did; whether some photos could not be scrubbed."""
    if result.dry_run:
        click.echo(
            f"dry run: {_count(result.unmarked, 'photo')} not marked clean (read to check), "
            f"would scrub {_count(result.scrubbed, 'photo')}, "
            f"{result.already_clean} already clean, would remove "
            f"{_count(result.removed_files, 'file')} no photo points at (and the old files "
            "of the photos scrubbed)"
        )
    else:
        click.echo(
            f"{_count(result.scrubbed, 'photo')} scrubbed, {result.already_clean} already clean, "
            f"{len(result.merged)} merged into an identical photo of its visit, "
            f"{_count(result.removed_files, 'old file')} removed; "
            f"{_count(result.unmarked, 'photo')} read, the others marked clean before"
        )
    for gone, kept in result.merged:
        click.echo(f"  photo {gone} is now photo {kept} (the same image, attached first)")
    for ids, what in (
        (result.missing, "have no stored bytes"),
        (result.unreadable, "could not be read, left as stored"),
    ):
        if ids:
            click.secho(
                f"{_count(len(ids), 'photo')} {what}: photo {', '.join(map(str, ids))}",
                fg="red",
                err=True,
            )
    return bool(result.missing or result.unreadable)


# --- tasks and push -----------------------------------------------------------------------------
@main.group()
def tasks() -> None:
    """Tasks."""


def _instant(ctx, param, value: str | None):
    """`--now`: an ISO instant to act as (naive means UTC); None when absent: the command
    then acts at the database's clock (`database_now`), which every host shares."""
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        now = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO instant: {value!r}") from exc
    return now if now.tzinfo else now.replace(tzinfo=UTC)


now_option = click.option(
    "--now",
    callback=_instant,
    help="ISO instant to act as (default: the current time, by the database's clock)",
)


@tasks.command("tick")
@now_option
def tasks_tick(now) -> None:
    """Warn assignees near their deadline or first contact, escalate overdue tasks, tell
    overseers of missed first contacts (idempotent)."""
    from api.services import tasks as task_service

    with _session() as session:
        result = task_service.tick(session, now or database_now(session))
    click.echo(
        f"{result.warned} warned, {result.escalated} escalated, "
        f"{result.contact_warned} warned of first contact, "
        f"{result.contact_overdue} first contact overdue, "
        f"{result.handed_on} handed on from switched-off accounts"
    )


@main.group("rosters")
def rosters_group() -> None:
    """Rosters' periodic upkeep."""


@rosters_group.command("tick")
@now_option
def rosters_tick(now) -> None:
    """Expire open shift swaps whose day has passed, telling both workers (idempotent)."""
    from api.services import rosters

    with _session() as session:
        expired = rosters.expire_swaps(session, now or database_now(session))
    click.echo(f"{len(expired)} swap{'' if len(expired) == 1 else 's'} expired")


# --- weekly coverage reports --------------------------------------------------------------------
@main.group()
def report() -> None:
    """Weekly coverage reports."""


REPORT_FORMATS = ("json", "csv", "xlsx", "pdf")


@report.command("weekly")
@click.option("--week", required=True, help="ISO week, e.g. 2026-W47")
@click.option("--community", help="12-digit community code")
@click.option("--street", help="9-digit street code")
@click.option("--district", help="6-digit district code")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    help="json, csv, xlsx or pdf (default: the file's suffix, else json)",
)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def report_weekly(week, community, street, district, fmt, out: Path) -> None:
    """Write the coverage report of a community, street or district for one week to a file."""
    from api.services import report_render, reports

    # Before, --out r.pdf without --format wrote JSON into r.pdf.
    suffix = out.suffix.lower().lstrip(".")
    fmt = fmt or (suffix if suffix in REPORT_FORMATS else "json")
    if not out.resolve().parent.is_dir():  # before the report is computed, not after
        raise click.BadParameter(f"no directory {out.parent} to write into", param_hint="--out")

    with _session() as session:
        selection = reports.select_scope(
            session, None, week, community=community, street=street, district=district
        )
        data = reports.coverage_report(session, selection, week)
        shapes = reports.grid_shapes(session, selection.grid_ids, week) if fmt == "pdf" else None
        body = report_render.render(data, fmt, shapes)
    with _file_put_in_place(out) as write:
        write(body)
    t = data["totals"]
    # No household to cover (a week before the grids were drawn): no rate, as the PDF says.
    coverage = "coverage -" if t["coverage"] is None else f"{t['coverage']}%"
    click.echo(
        f"{out}: {week} {selection.level} {selection.code}, {t['grids']} grids, "
        f"{t['visited']}/{t['households']} households visited ({coverage})"
    )


@report.command("verify")
@click.option("--since", help="Compare the weeks from this ISO week on (default: every week)")
@click.option("--repair", is_flag=True, help="Replace what differs with the rebuilt rows")
def report_verify(since: str | None, repair: bool) -> None:
    """Compare the report's kept aggregates with a rebuild from the raw visits and households.

    Exits 1 when they differ (and --repair was not given). With --repair the rebuilt rows of
    the compared weeks replace the kept ones; earlier weeks keep theirs. Weeks counted before
    migration 0020 keep the cadence of their time, which a rebuild cannot know: give --since a
    week after that upgrade. The check blocks nobody: it reads one snapshot (REPEATABLE READ)
    and writes only temporary tables. A repair, only when the check found a difference, holds
    visit ingest and household edits (not report reads) while it checks again and replaces the
    rows that differ.
    """
    from api.services import report_verify

    with _session(isolation_level="REPEATABLE READ") as session:
        result = report_verify.check(session, since=since)
    if repair and not result.equal:
        # READ COMMITTED: each statement after the repair's lock sees the latest commits.
        with _session(isolation_level="READ COMMITTED") as session:
            result = report_verify.repair_differences(session, since=since)
    weeks = f"weeks from {since}" if since else "every week"
    for check in result.tables:
        if check.equal:
            click.echo(f"{check.table}: equal")
        else:
            click.echo(
                f"{check.table}: {check.kept_only} kept rows not in the rebuild, "
                f"{check.rebuilt_only} rebuilt rows not kept (weeks {', '.join(check.weeks)})"
            )
    if result.equal:
        click.echo(f"the kept aggregates equal a rebuild ({weeks})")
    elif result.repaired:
        click.echo(f"repaired: the rebuilt rows replace the kept ones ({weeks})")
    else:
        click.secho(
            f"the kept aggregates differ from a rebuild ({weeks}); --repair to rebuild them",
            fg="red",
            err=True,
        )
        raise SystemExit(1)


def _report_tick(session, now, *, retry_now: bool = False):
    from api.services import report_store

    return report_store.generate_due_reports(session, now, retry_now=retry_now)


@report.command("tick")
@now_option
@click.option(
    "--retry-now",
    is_flag=True,
    help="Also retry communities whose report failed before its backoff delay has passed",
)
def report_tick(now, retry_now: bool) -> None:
    """Store and announce the reports due (Monday 08:00 Asia/Shanghai, last week); idempotent.

    Weeks missed (no run on their Monday: the push worker was down) are stored too, from the
    seven weeks before the one due, none before the first report ever stored; --now reaches
    further back. A community whose report failed is retried after a delay (1 min, doubling,
    at most 1 h), as the push worker does; --retry-now retries it at once. Exits 1 when a
    report failed in this run (the others are stored all the same, the failure recorded).
    """
    from datetime import timedelta

    with _session() as session:
        current = database_now(session)
        if now is not None and now > current + timedelta(minutes=1):
            # A report stored "as of" a time to come would be of a week not over yet, and the
            # real Monday run would take it for already stored.
            raise click.BadParameter(
                f"{now.isoformat()} is after the current time ({current.isoformat()})",
                param_hint="--now",
            )
        result = _report_tick(session, now or current, retry_now=retry_now)
        for missed in result.earlier:
            click.echo(f"{missed.week}: {len(missed.created)} stored (missed on its Monday)")
            _echo_retries(missed)
        click.echo(f"{result.week}: {len(result.created)} stored, {result.skipped} already stored")
        _echo_retries(result)
    if result.any_failed:  # after the commit: what was stored, and the failures' records, stay
        raise SystemExit(1)


def _echo_retries(result) -> None:
    """The week's failed and waiting communities, each with its next attempt."""
    if result.failed:
        click.secho(
            f"{len(result.failed)} failed (see the log), retried later: "
            + ", ".join(_retry_at(result, code) for code in result.failed),
            fg="red",
            err=True,
        )
    if result.deferred:
        click.secho(
            f"{len(result.deferred)} waiting to retry: "
            + ", ".join(_retry_at(result, code) for code in result.deferred)
            + "; --retry-now to retry them now",
            fg="yellow",
            err=True,
        )


def _retry_at(result, code: str) -> str:
    attempt, at = result.retry_at[code]
    return f"{code} (attempt {attempt} at {at.isoformat()})"


def database_now(session):
    """The database's clock (the real time, not its transaction's start): the one clock every
    host of a deployment shares."""
    from sqlalchemy import text

    return session.scalar(text("SELECT clock_timestamp()"))


def _worker_tick(log) -> None:
    """The push worker's periodic work: task deadlines, the Monday reports, swap expiry, purges.

    Each step in a transaction of its own, and each runs whatever the one before did: a step
    that fails (the task tick meeting a task it cannot handle, every minute) does not keep the
    Monday reports from being stored, nor the swaps from expiring. The first failure is raised
    once the others have run (the periodic job logs it, `--once` lets it out); any later one
    is logged here."""
    _each_whatever_the_others_did(
        [
            ("task deadline tick", lambda: _tick_tasks(log)),
            ("report tick", lambda: _tick_reports(log)),
            ("swap expiry", lambda: _tick_swaps(log)),
            ("purges", lambda: _tick_purges(log)),
        ],
        log,
        "%s failed; next try at the next tick",
    )


def _each_whatever_the_others_did(steps, log, later: str) -> None:
    """Run each `(what, call)` of `steps`, whatever the ones before did; the first failure is
    raised once all have run, any later one logged (`later` % what). A data key refused stops
    at once: every step after it would meet it too."""
    from api.crypto import DataKeyRefused

    failed: Exception | None = None
    for what, call in steps:
        try:
            call()
        except DataKeyRefused:
            raise
        except Exception as exc:
            if failed is None:
                failed = exc
            else:
                log.exception(later, what)
    if failed is not None:
        raise failed


def _tick_tasks(log) -> None:
    from api.extensions import db
    from api.services import tasks as task_service

    # On the database's clock, as the push rounds: a host whose clock ran ahead escalated
    # tasks early and stamped their notifications in the other hosts' future.
    with db.begin() as session:
        ticked = task_service.tick(session, database_now(session))
    counts = (
        ticked.warned,
        ticked.escalated,
        ticked.contact_warned,
        ticked.contact_overdue,
        ticked.handed_on,
    )
    if any(counts):
        log.info(
            "tick: %s warned, %s escalated, %s warned of first contact, "
            "%s first contact overdue, %s handed on from switched-off accounts",
            *counts,
        )


def _tick_reports(log) -> None:
    from api.extensions import db

    # The Monday reports ride the same tick (idempotent; cheap when done).
    with db.begin() as session:
        reported = _report_tick(session, database_now(session))
    for result in [*reported.earlier, reported]:
        if result.created:
            log.info("reports %s: %s stored", result.week, len(result.created))


def _tick_swaps(log) -> None:
    from api.extensions import db
    from api.services import rosters

    # Open swaps whose day has passed expire (reads already report them expired).
    with db.begin() as session:
        expired = rosters.expire_swaps(session, database_now(session))
    if expired:
        log.info("swaps: %s expired", len(expired))


def _tick_purges(log) -> None:
    from api import idempotency
    from api.extensions import db
    from api.services import audit, sessions

    with db.begin() as session:
        purged = sessions.purge_ended(session, database_now(session))
        attempts = audit.purge_login_attempts(session, database_now(session))
        keys = idempotency.purge_expired(session, database_now(session))
    if any(purged) or attempts or keys:
        log.info(
            "purged %s revoked tokens, %s ended sessions, %s sign-in attempts, %s idempotency keys",
            *purged,
            attempts,
            keys,
        )


def _retention(log) -> None:
    """Retention (api/services/retention.py): a batch of each kind of record past its period
    coarsened or deleted, every RETENTION_SECONDS, each kind in a transaction of its own (one
    failing keeps none of the others from its work: the first failure goes out once the others
    have run, any later one is logged here); then the deleted photos' bytes, in another."""
    from flask import current_app

    from api.extensions import db
    from api.services import retention
    from api.services.photos import build_storage, load_name_key

    policy = retention.Policy.from_config(current_app.config)
    with db.begin() as session:
        storage = build_storage(current_app.config, load_name_key(session))
        now = database_now(session)

    def photo_files(session):
        return retention.Purged(
            photo_files=retention.delete_photo_files(session, storage, policy.batch)
        )

    done = [retention.Purged()]

    def in_its_transaction(step):
        def call():
            with db.begin() as session:
                done[0] += step(session)

        return call

    steps = [*retention.steps(storage, policy, now), ("photo files", photo_files)]
    try:
        _each_whatever_the_others_did(
            [(what, in_its_transaction(step)) for what, step in steps],
            log,
            "retention: %s failed; next try at the next run",
        )
    finally:
        _log_retention(log, done[0])


def _log_retention(log, done) -> None:
    if done:
        log.info(
            "retention: %s visit tracks coarsened (%s tasks' points), %s task steps' points "
            "coarsened, %s visit photos and %s task photos deleted (%s files), %s notifications "
            "deleted, %s deliveries "
            "deleted, %s closed tasks' complainants erased, %s removed households' phones and "
            "care tags erased",
            done.visits,
            done.tasks,
            done.task_events,
            done.photos,
            done.task_photos,
            done.photo_files,
            done.notifications,
            done.deliveries,
            done.complainants,
            done.households,
        )


def _merge_audit_index(log) -> bool:
    """The audit log's record index takes each entry into a pending list; the push worker
    merges it into the index every AUDIT_MERGE_SECONDS, so that no request's INSERT (a map
    tile's, naming up to ~3,000 records) has to (migration 0032). False when this database
    user may not (the merge is then left to autovacuum, and not tried again)."""
    from api.extensions import db
    from api.services import audit

    with db.begin() as session:
        merged = audit.merge_pending_index(session)
    if merged:
        log.info("audit index: %s pending pages merged", merged)
    return merged is not None


class PeriodicJobs:
    """The push worker's periodic jobs: (every so many seconds, the job, what it is). Each runs
    when due, the first time at once. A job that returns False cannot run here (the audit
    index merge, for a database user who does not own the index) and is not run again; one
    that fails is logged and tried again when next due, but with `once`, and for a refused
    data key (no round can succeed under it), the error goes out."""

    def __init__(self, jobs: list[tuple[float, Callable[[Any], Any], str]], log) -> None:
        self.jobs = jobs
        self.log = log
        self.due = [0.0] * len(jobs)

    def run_due(
        self, now: float, *, once: bool = False, stopping: Callable[[], bool] = lambda: False
    ) -> None:
        """The jobs due at `now`; none started once `stopping()` (the worker was signalled)."""
        from api.crypto import DataKeyRefused

        for k, (every, job, what) in enumerate(self.jobs):
            if now < self.due[k] or stopping():
                continue
            self.due[k] = now + every
            try:
                if job(self.log) is False:
                    self.due[k] = math.inf
            except DataKeyRefused:
                raise
            except Exception:
                if once:
                    raise
                self.log.exception("%s failed; next try in %s s", what, every)


@main.command("push-worker")
@click.option("--once", is_flag=True, help="One round (claim, send, mark), then exit")
def push_worker(once: bool) -> None:
    """Deliver queued notifications to devices (FCM, Web Push, log); runs the task and report
    ticks too, purges ended sign-in sessions, keeps the audit log's index and applies the
    retention periods (GRIDWORK_RETAIN_*).

    SIGTERM or Ctrl-C stops it after the round or the periodic job in flight (its sends
    answered and marked), starting nothing after it: a deploy does not leave a batch to be
    sent again when its lease passes. A second one stops it at once: the round's results known
    so far are marked, and its claimed deliveries not yet given to a channel handed back (due at
    once, for the next worker); those in flight wait for their lease (`PushWorker._stopped`)."""
    import logging
    import signal
    import threading
    import time
    from datetime import timedelta

    from api.crypto import DataKeyRefused
    from api.errors import database_unavailable
    from api.extensions import db
    from api.services import retention
    from api.services.delivery import PushWorker
    from push import Router, build_channels

    app = _app()
    log = logging.getLogger("gridwork.push")
    with app.app_context():
        cfg = app.config
        try:
            router = Router(build_channels({k: str(v) for k, v in cfg.items() if v is not None}))
        except ValueError as exc:  # a setting the channels refuse: say which, no traceback
            raise click.ClickException(str(exc)) from exc
        try:  # a retention setting refused stops the worker now, not each run in the log
            retention.Policy.from_config(cfg)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        # Retention deletes photos here: the API's directory, whatever this one started in.
        log.info("visit photos: %s", cfg["PHOTO_DIR"])
        worker = PushWorker(
            db.begin,
            router,
            batch_size=cfg["PUSH_BATCH_SIZE"],
            lease_seconds=cfg["PUSH_LEASE_SECONDS"],
            max_attempts=cfg["PUSH_MAX_ATTEMPTS"],
            max_lost_rounds=cfg["PUSH_MAX_LOST_ROUNDS"],
            web_concurrency=cfg["PUSH_WEB_CONCURRENCY"],
            send_budget_seconds=cfg["PUSH_SEND_BUDGET_SECONDS"],
            retire_failing_after=timedelta(days=cfg["PUSH_RETIRE_FAILING_DAYS"]),
            retire_min_failures=cfg["PUSH_RETIRE_MIN_FAILURES"],
        )
        periodic = PeriodicJobs(
            [
                (cfg["TASK_TICK_SECONDS"], _worker_tick, "tick"),
                (cfg["AUDIT_MERGE_SECONDS"], _merge_audit_index, "audit index merge"),
                (cfg["RETENTION_SECONDS"], _retention, "retention"),
            ],
            log,
        )
        failures = 0  # push rounds failed in a row
        stop = threading.Event()

        def stopping(signum, _frame):
            if stop.is_set():  # asked twice: at once
                raise KeyboardInterrupt
            stop.set()
            log.warning("push worker stopping after this round (signal %d)", signum)

        handlers = {n: signal.signal(n, stopping) for n in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop.is_set():
                # Neither a failed job nor a failed round ends the worker (the database
                # restarting, a bug in one tick): it logs, waits and goes on, as the API does.
                # `--once` lets the error out, so a script sees it.
                periodic.run_due(time.monotonic(), once=once, stopping=stop.is_set)
                if stop.is_set():  # asked to stop during the jobs: no new round after it
                    break
                try:
                    stats = worker.run_once()  # on the database's clock
                except DataKeyRefused:
                    raise
                except Exception as exc:
                    if once:
                        raise
                    failures += 1
                    wait = min(60.0, 2.0**failures)
                    if database_unavailable(exc):  # an outage, not a bug: no traceback
                        log.error(
                            "push round failed: database unavailable (%s), %d in a row; "
                            "next in %.0f s",
                            exc.__class__.__name__,
                            failures,
                            wait,
                        )
                    else:
                        log.exception(
                            "push round failed (%d in a row); next in %.0f s", failures, wait
                        )
                    stop.wait(wait)
                    continue
                failures = 0
                if stats.claimed:
                    log.info("push: %s", stats)
                if once:
                    click.echo(f"{stats.sent} sent, {stats.retried} retry, {stats.failed} failed")
                    return
                if stats.claimed < worker.batch_size:
                    stop.wait(cfg["PUSH_POLL_SECONDS"])
            click.echo("push worker stopped")
        except KeyboardInterrupt:
            click.echo("push worker stopped")
        except DataKeyRefused as exc:
            # Checked at the first round when the database was down at start: no round can
            # succeed under this key, so stop (loudly) rather than retry for ever.
            raise click.ClickException(str(exc)) from exc
        finally:
            for signum, handler in handlers.items():  # the caller's again (a test's, a shell's)
                signal.signal(signum, handler)
            router.close()


if __name__ == "__main__":  # pragma: no cover
    main()
