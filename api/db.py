"""Database access: the engine, a request-scoped session, and the declarative base."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import psycopg
from flask import Flask, g, has_request_context, request
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_KEY = "gridwork.db_session"
# The largest PostgreSQL `integer` (ids, counts): a bigger id names no row.
PG_INT_MAX = 2**31 - 1


def row_id(value: int) -> int | None:
    """`value` as the id of a row it may name (1 to PG_INT_MAX), else None: a bigger one sent
    to the database is refused there, a 422 naming no field ("out of range")."""
    return value if 1 <= value <= PG_INT_MAX else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def set_local(session: Session, **settings: str) -> None:
    """PostgreSQL settings for the current transaction only (SET LOCAL), in one round trip.

    Sent as the driver's own statement (bound parameters, no SQL expression to compile): a
    tile sets them on every request, and through `text()` they cost twice as much (~0.2 ms
    against ~0.09)."""
    calls = ", ".join(
        f"set_config(%(name_{k})s, %(value_{k})s, true)" for k in range(len(settings))
    )
    params = {}
    for k, (name, value) in enumerate(settings.items()):
        params[f"name_{k}"], params[f"value_{k}"] = name, value
    session.connection().exec_driver_sql(f"SELECT {calls}", params)


@contextmanager
def driver_errors(statement: str) -> Iterator[None]:
    """Raise psycopg's errors, from code that talks to it directly (a COPY), as the engine
    would have: as SQLAlchemy's. The error handlers know only those: a connection lost under
    a COPY is then an outage (503, retry), not a bug (500), and a refused row an IntegrityError
    or DataError like any other."""
    try:
        yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def is_any_of(column, name: str, values: Iterable, item_type) -> ColumnElement[bool]:
    """`column = ANY(:name)` with one array parameter: the statement text stays the same however
    many values there are (an IN list of 500 is 500 placeholders for psycopg to rewrite)."""
    return column == any_(bindparam(name, list(values), type_=ARRAY(item_type)))


def make_engine(url: str, **kwargs) -> Engine:
    kwargs.setdefault("pool_pre_ping", True)
    # An error's message leaves out the statement's parameters: it is logged with its
    # traceback, and the parameters may be a resident's address, tags or a push token.
    kwargs.setdefault("hide_parameters", True)
    return create_engine(url, future=True, **kwargs)


# The execution option naming the settings a pool's connections were opened with.
CONNECTION_SETTINGS = "gridwork_connection_settings"


def connection_settings(connection: Connection) -> dict[str, str]:
    """The settings `connection` carries for its whole life ({} for the app's main pool)."""
    return dict(connection.get_execution_options().get(CONNECTION_SETTINGS, ()))


def closed_by_server(connection: psycopg.Connection) -> bool:
    """Whether the server has closed this idle connection, known without a round trip.

    A server that ends a session (a restart, a crash, `pg_terminate_backend`) sends its error
    and closes the socket; an idle connection has nothing else to read. So a readable socket
    means a dead connection. (A pre-ping finds the same with a `SELECT 1` round trip; neither
    sees a peer that vanished without a word, until TCP gives up.)"""
    if connection.closed:
        return True
    poll = select.poll()
    poll.register(connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poll.poll(0))


def _connect_args(app: Flask, settings: dict[str, str]) -> dict[str, object]:
    """The driver's arguments for an engine of `app` whose connections carry `settings` for
    their whole life (libpq `options`, no round trip), and the app's statement timeout
    (STATEMENT_TIMEOUT_S) when it has one."""
    limit_ms = round(float(app.config.get("STATEMENT_TIMEOUT_S") or 0) * 1000)
    if limit_ms > 0:
        settings = {**settings, "statement_timeout": str(limit_ms)}
    args: dict[str, object] = {
        "application_name": app.config.get("DATABASE_APPLICATION_NAME", "gridwork"),
        "connect_timeout": 5,
    }
    if settings:
        args["options"] = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return args


def _drop_if_closed_by_server(dbapi_connection, _record, _proxy) -> None:
    """Pool checkout: a connection closed by the server is replaced (the pool retries)."""
    if closed_by_server(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


class Database:
    """Owns the engine; hands each app context one session, closed on teardown."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        # Run on each new session until it stops raising (the data key check, api/keyguard.py).
        self.guard: Callable[[Session], None] | None = None
        self._events: list[tuple[str, Callable]] = []
        # Endpoints served from the autocommit pool (`autocommit_pool`), and that pool.
        self._autocommit_endpoints: frozenset[str] = frozenset()
        self.autocommit_engine: Engine | None = None

    def init_app(self, app: Flask) -> None:
        self.guard, self._events = None, []
        # One `db` serves one app at a time: the previous app's pool is closed, not left to the
        # collector, which closes its connections with a ResourceWarning at a random later
        # moment (CI met one at the set-up of an unrelated test).
        if self.engine is not None:
            self.engine.dispose()
        self.engine = make_engine(app.config["DATABASE_URL"], connect_args=_connect_args(app, {}))
        self._factory = self._sessionmaker(bind=self.engine)
        self._drop_autocommit_pool()
        app.extensions["gridwork_db"] = self
        app.teardown_request(self._remove_request)
        app.teardown_appcontext(self._remove)

    def autocommit_pool(
        self, app: Flask, endpoints: Iterable[str], settings: dict[str, str], size: int = 2
    ) -> None:
        """Serve `endpoints` from a pool of their own: autocommit connections opened with
        `settings` (as libpq `options`, no round trip), and no ping at checkout.

        For read endpoints whose every write is one statement (a map tile and its audit
        entry): each request then costs its own statements' round trips only. On the app's
        main pool a tile paid six (ping, BEGIN, token check, SET LOCAL, the tile, COMMIT); here
        it pays two (the token check, the tile). Instead of the ping, a connection is looked
        at without a round trip (`closed_by_server`) when it is checked out.

        A session routed through a test's connection (`bind`) stays there: the endpoint then
        runs on the main pool's terms (`connection_settings` tells which)."""
        self._drop_autocommit_pool()
        self.autocommit_engine = make_engine(
            app.config["DATABASE_URL"],
            pool_pre_ping=False,
            pool_size=size,
            isolation_level="AUTOCOMMIT",
            execution_options={CONNECTION_SETTINGS: tuple(settings.items())},
            connect_args=_connect_args(app, settings),
        )
        event.listen(self.autocommit_engine, "checkout", _drop_if_closed_by_server)
        self._autocommit_endpoints = frozenset(endpoints)

    def _drop_autocommit_pool(self) -> None:
        """Close the previous app's tile pool: one `db` serves one app at a time, and a pool
        left to the collector closes its connections with a ResourceWarning."""
        if self.autocommit_engine is not None:
            self.autocommit_engine.dispose()
        self._autocommit_endpoints, self.autocommit_engine = frozenset(), None

    def bind(self, connection: Connection) -> None:
        """Route every session through `connection` (tests wrap it in an outer transaction)."""
        self._factory = self._sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint"
        )

    def listen(self, name: str, fn: Callable) -> None:
        """A session event on every session this app makes (`bind` keeps it)."""
        self._events.append((name, fn))
        if self._factory is not None:
            event.listen(self._factory, name, fn)

    def _sessionmaker(self, **kwargs) -> sessionmaker[Session]:
        factory = sessionmaker(expire_on_commit=False, **kwargs)
        for name, fn in self._events:
            event.listen(factory, name, fn)
        return factory

    @property
    def session(self) -> Session:
        """One session per request (or per app context outside requests: CLI, workers)."""
        store = request.environ if has_request_context() else g.__dict__
        if _KEY not in store:
            autocommit = (
                has_request_context()
                and request.endpoint in self._autocommit_endpoints
                and isinstance(self._factory.kw.get("bind"), Engine)
            )
            store[_KEY] = self.new_session(engine=self.autocommit_engine if autocommit else None)
        return store[_KEY]

    def new_session(
        self,
        *,
        guarded: bool = True,
        isolation_level: str | None = None,
        engine: Engine | None = None,
    ) -> Session:
        """A session of the app's own. `isolation_level` (e.g. "REPEATABLE READ") sets its
        transactions' isolation; a session routed through a test's connection (`bind`) keeps
        that connection's transaction as it is. `engine`: another pool than the app's."""
        assert self._factory is not None, "Database.init_app was not called"
        if engine is not None:
            session = self._factory(bind=engine)
        elif isolation_level is not None and isinstance(self._factory.kw.get("bind"), Engine):
            engine = self._factory.kw["bind"].execution_options(isolation_level=isolation_level)
            session = self._factory(bind=engine)
        else:
            session = self._factory()
        if guarded and self.guard is not None:
            try:
                self.guard(session)
            except BaseException:
                session.close()
                raise
        return session

    @contextmanager
    def begin(
        self, *, guarded: bool = True, isolation_level: str | None = None
    ) -> Iterator[Session]:
        """A session outside a request (CLI, workers): commit on success, roll back on error."""
        with (
            self.new_session(guarded=guarded, isolation_level=isolation_level) as session,
            session.begin(),
        ):
            yield session

    def _remove_request(self, exc: BaseException | None = None) -> None:
        self._close(request.environ.pop(_KEY, None), exc)

    def _remove(self, exc: BaseException | None = None) -> None:
        self._close(g.__dict__.pop(_KEY, None), exc)

    @staticmethod
    def _close(session: Session | None, exc: BaseException | None) -> None:
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()
