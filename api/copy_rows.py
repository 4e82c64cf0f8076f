"""COPY rows into a table inside the session's transaction, each column written by its type.

One encoder for every COPY the API makes (a batch of visits, an import's households): a value
reaches the table as an INSERT through SQLAlchemy would write it. A `TypeDecorator` (the
encrypted columns) binds it first; a geometry column takes shapely geometries, written as hex
EWKB with the column's SRID in one vectorised call per chunk; JSONB and text[] get their text
forms; anything else goes to psycopg as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from itertools import islice
from typing import Any

import orjson
import shapely
from geoalchemy2 import Geometry
from sqlalchemy import Table, TypeDecorator
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session

from api.db import driver_errors

# Rows are encoded this many at a time (a column at a time, the geometry in one vectorised
# call) and sent as they are: PostgreSQL stores each chunk while the next is made.
COPY_CHUNK = 50

Encoder = Callable[[list[Any]], list[Any]]


def json_text(value: Any) -> str | None:
    return (
        None if value is None else orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    )


def text_array(values: Sequence[str] | None) -> str | None:
    """A text[] literal: every element quoted, its quotes and backslashes escaped."""
    if values is None:
        return None
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def column_encoder(type_: Any, dialect: Any) -> Encoder | None:
    """How a column's values (a chunk of them) are written as COPY text; None: as they are."""
    if isinstance(type_, Geometry):  # hex EWKB, with the column's SRID
        srid = type_.srid
        return lambda shapes: shapely.to_wkb(
            shapely.set_srid(shapes, srid), hex=True, include_srid=True
        ).tolist()
    if isinstance(type_, TypeDecorator):  # encryption, say: as an INSERT would apply it
        bind, then = type_.process_bind_param, column_encoder(type_.impl_instance, dialect)
        if then is None:
            return lambda values: [bind(v, dialect) for v in values]
        return lambda values: then([bind(v, dialect) for v in values])
    if isinstance(type_, JSONB):
        return lambda values: [json_text(v) for v in values]
    if isinstance(type_, ARRAY):
        return lambda values: [text_array(v) for v in values]
    return None


def copy_rows(
    session: Session,
    table: Table,
    rows: Iterable[dict[str, Any]],
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """COPY `rows` (dicts of the same keys, the table's column names) into `table` on the
    session's connection, so inside its transaction; the rows are read as they are sent.

    Once every row is sent, PostgreSQL ends the statement (its triggers run then) while
    `meanwhile()` runs here: the wait for the end is in a thread of its own (it holds the
    connection's lock, so anything here that reads the database waits for it).
    """
    rows = iter(rows)
    chunk = list(islice(rows, COPY_CHUNK))
    if not chunk:
        if meanwhile is not None:
            meanwhile()
        return
    connection = session.connection()
    names = list(chunk[0])
    encoders = [(name, column_encoder(table.c[name].type, connection.dialect)) for name in names]
    raw = connection.connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver_errors(sql), ExitStack() as stack:
        cursor = stack.enter_context(raw.cursor())
        copy = stack.enter_context(cursor.copy(sql))
        while chunk:
            columns = [
                [row[name] for row in chunk]
                if encode is None
                else encode([row[name] for row in chunk])
                for name, encode in encoders
            ]
            for record in zip(*columns, strict=True):
                copy.write_row(record)
            chunk = list(islice(rows, COPY_CHUNK))
        # Every row sent (a failure before this point ended the COPY with it, above).
        end = stack.pop_all()
    with driver_errors(sql):
        if meanwhile is None:
            end.close()
        else:
            _while_waiting(end.close, meanwhile)


def _while_waiting(wait: Callable[[], None], work: Callable[[], None]) -> None:
    """Run `wait` (waiting on the database, which releases the GIL) in a thread of its own
    while `work` runs here; then raise what `wait` raised, if anything."""
    failed: list[BaseException] = []

    def waiting() -> None:
        try:
            wait()
        except BaseException as exc:  # handed to the caller's thread below
            failed.append(exc)

    thread = threading.Thread(target=waiting, name="gridwork-copy-end", daemon=True)
    thread.start()
    try:
        work()
    finally:
        thread.join()
    if failed:
        raise failed[0]
