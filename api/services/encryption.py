"""Stored sensitive values and the keys that sealed them: re-sealing, and the data_keys record.

`seal_all` brings every value under the current data key (migration 0013, `gridwork security
encrypt` after a key rotation). `data_keys` records which keys have sealed data in this
database, so a process started with a wrong key is refused at start-up without reading the
big tables (api/keyguard.py). Works on a bare Connection with SQL text, so it runs the same
inside Alembic and in the CLI, whatever the models of the day look like.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from api import crypto

Begin = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class SealedColumn:
    table: str
    column: str
    kind: str  # "text" (EncryptedString) or "json" (EncryptedJSON in a jsonb column)
    key: tuple[tuple[str, str], ...] = (("id", "bigint"),)  # the row's key: (column, type)...


_UUID_ID = (("id", "uuid"),)

# Every column stored encrypted; the models declare the same with EncryptedString/EncryptedJSON.
SEALED_COLUMNS = (
    SealedColumn("households", "phone", "text"),
    SealedColumn("users", "phone", "text"),
    SealedColumn("visits", "notes", "text", key=_UUID_ID),
    SealedColumn("visits", "follow_up_note", "text", key=_UUID_ID),
    SealedColumn("visits", "observations", "json", key=_UUID_ID),
    SealedColumn("tasks", "description", "text"),
    SealedColumn("tasks", "complainant", "json"),
    SealedColumn("task_events", "note", "text"),
    # Why a household left the register (migration 0065): an illness, a care home.
    SealedColumn("households", "removal_note", "text"),
    # A create's stored answer, replayed for 24 hours (it may hold a phone).
    SealedColumn("idempotency_keys", "body", "text", key=(("user_id", "integer"), ("key", "text"))),
)


def _pending(col: SealedColumn) -> str:
    """SQL selecting the rows whose value is not sealed with the current key."""
    c = col.column
    if col.kind == "text":
        return f"{c} IS NOT NULL AND {c} <> '' AND {c} NOT LIKE :current"
    return (
        f"{c} IS NOT NULL AND CASE jsonb_typeof({c})"
        f" WHEN 'string' THEN ({c} #>> '{{}}') NOT LIKE :current"
        f" WHEN 'object' THEN {c} <> '{{}}'::jsonb"
        f" WHEN 'array' THEN {c} <> '[]'::jsonb"
        " WHEN 'null' THEN false ELSE true END"
    )


def _open(col: SealedColumn, stored):
    if col.kind == "text":
        return crypto.decrypt(stored)
    if isinstance(stored, str) and stored.startswith(crypto.PREFIX):
        return json.loads(crypto.decrypt(stored))
    return stored


def _seal(col: SealedColumn, value) -> str:
    if col.kind == "text":
        return crypto.encrypt(value)
    return json.dumps(crypto.encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))


def _key_names(col: SealedColumn) -> str:
    return ", ".join(name for name, _ in col.key)


def _read(col: SealedColumn) -> str:
    """SQL: the column's value, then its text as stored (what `_update` compares)."""
    return f"{col.column}, {col.column}::text"


def _update(connection: Connection, col: SealedColumn, rows: list, values: list[str]) -> int:
    """One UPDATE per batch (unnest of arrays: the key's, the values'): ~10x a statement per
    row. `rows` are the selected rows: their key's columns first, then their value, then its
    text as stored (`_read`).

    A row whose value is no longer the one read is left as it now is: the batch is read, then
    opened and sealed in Python, and a value changed meanwhile by a process on the current key
    (a phone edited, a complainant erased by retention) would be overwritten with the old one.
    The rows written."""
    value = "v.val" if col.kind == "text" else "v.val::jsonb"
    arrays = ", ".join(f"CAST(:k{i} AS {type_}[])" for i, (_, type_) in enumerate(col.key))
    names = ", ".join(f"k{i}" for i in range(len(col.key)))
    match = " AND ".join(f"t.{name} = v.k{i}" for i, (name, _) in enumerate(col.key))
    params: dict = {f"k{i}": [row[i] for row in rows] for i in range(len(col.key))}
    olds = [row[-1] for row in rows]
    return connection.execute(
        text(
            f"UPDATE {col.table} AS t SET {col.column} = {value} "
            f"FROM unnest({arrays}, CAST(:vals AS text[]), CAST(:olds AS text[])) "
            f"AS v({names}, val, old) WHERE {match} AND t.{col.column}::text = v.old"
        ),
        {**params, "vals": values, "olds": olds},
    ).rowcount


def _exists(connection: Connection, col: SealedColumn) -> bool:
    """Whether `col` is in the database yet: an earlier migration (0013, 0022) runs with the
    columns of today, some of which later revisions add (`households.removal_note`, 0052)."""
    return connection.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(:t) "
            "AND attname = :c AND attnum > 0 AND NOT attisdropped)"
        ),
        {"t": col.table, "c": col.column},
    )


def _seal_batch(
    connection: Connection, col: SealedColumn, batch: int, last: tuple | None
) -> tuple[int, tuple | None]:
    """Re-seal the next `batch` values of `col` not under the current key, after the row key
    `last` (None: from the first); (values written, the last row key read), or (0, None) when
    none is left."""
    current = f"{crypto.PREFIX}{crypto.current_key_id()}:%"
    names, width = _key_names(col), len(col.key)
    marks = ", ".join(f":l{i}" for i in range(width))
    after = f"AND ({names}) > ({marks})" if last is not None else ""
    rows = connection.execute(
        text(
            f"SELECT {names}, {_read(col)} FROM {col.table} "
            f"WHERE {_pending(col)} {after} ORDER BY {names} LIMIT :n"
        ),
        {"current": current, "n": batch, **{f"l{i}": v for i, v in enumerate(last or ())}},
    ).all()
    if not rows:
        return 0, None
    sealed = [_seal(col, _open(col, row[-2])) for row in rows]
    return _update(connection, col, rows, sealed), tuple(rows[-1][:width])


def seal_all(
    connection: Connection, batch: int = 1000, columns: Iterable[SealedColumn] = SEALED_COLUMNS
) -> dict[str, int]:
    """Encrypt plaintext and re-encrypt values of older keys, in the caller's transaction;
    counts per table.column.

    Columns not created yet are skipped (migration 0013 runs this before idempotency_keys
    and households.removal_note exist)."""
    counts: dict[str, int] = {}
    for col in columns:
        if not _exists(connection, col):
            continue
        done, last = 0, None
        while True:
            written, last = _seal_batch(connection, col, batch, last)
            if last is None:
                break
            done += written
        counts[f"{col.table}.{col.column}"] = done
    return counts


def seal_all_batched(begin: Begin, batch: int = 1000) -> dict[str, int]:
    """`seal_all` with each batch in a transaction of its own (`begin()`, committed on
    success): `gridwork security encrypt` on a live database. A row re-sealed is locked only
    until its batch commits, not until the last table is done (minutes at city scale), so
    the API's writes to it go on meanwhile; a run cut short leaves values under the old key,
    still retired, still needed, and running again finishes it."""
    counts: dict[str, int] = {}
    for col in SEALED_COLUMNS:
        with begin() as session:
            if not _exists(session.connection(), col):
                continue
        done, last = 0, None
        while True:
            with begin() as session:
                written, last = _seal_batch(session.connection(), col, batch, last)
            if last is None:
                break
            done += written
        counts[f"{col.table}.{col.column}"] = done
    return counts


def open_all(connection: Connection, columns=SEALED_COLUMNS, batch: int = 1000) -> int:
    """Decrypt back to plaintext (a migration's downgrade); the number of values opened."""
    done = 0
    for col in columns:
        c = col.column
        where = (
            f"{c} LIKE 'v1:%'"
            if col.kind == "text"
            else f"jsonb_typeof({c}) = 'string' AND ({c} #>> '{{}}') LIKE 'v1:%'"
        )
        while True:
            rows = connection.execute(
                text(
                    f"SELECT {_key_names(col)}, {_read(col)} FROM {col.table} "
                    f"WHERE {where} LIMIT :n"
                ),
                {"n": batch},
            ).all()
            if not rows:
                break
            done += _update(
                connection,
                col,
                rows,
                [
                    _open(col, row[-2])
                    if col.kind == "text"
                    else json.dumps(_open(col, row[-2]), ensure_ascii=False)
                    for row in rows
                ],
            )
    return done


# --- which keys have sealed data in this database ------------------------------------------------
# Key records serialise on this transaction-scoped advisory lock (class 3; 1 and 2 are the
# sign-in throttle's): two processes with different keys starting on a database that holds
# nothing yet cannot both record theirs.
_RECORD_LOCK = "SELECT pg_advisory_xact_lock(3, 0)"


@dataclass(frozen=True)
class KeyRecord:
    """A key that has sealed data here: its id, its canary (None when it was found in the data
    by migration 0022 without the key at hand), since when."""

    kid: str
    canary: str | None
    first_sealed_at: datetime
    # Set by a rotation (`security encrypt`): no process may seal with this key ever again.
    retired_at: datetime | None = None
    # Set once the rotation re-sealed every value: no data here needs this key any more.
    emptied_at: datetime | None = None

    @property
    def status(self) -> str:
        """ "current", "old" (in GRIDWORK_OLD_DATA_KEYS), "missing" (not configured) or "wrong"
        (a configured key has this id but does not open the canary)."""
        if self.kid not in crypto.configured_key_ids():
            return "missing"
        if self.canary is not None and not crypto.opens_canary(self.canary):
            return "wrong"
        return "current" if self.kid == crypto.current_key_id() else "old"


def _columns(connection: Connection, table: str) -> set[str]:
    """The columns of `table`; empty when there is no such table."""
    return set(
        connection.scalars(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) "
                "AND attnum > 0 AND NOT attisdropped"
            ),
            {"t": table},
        )
    )


@dataclass(frozen=True)
class KeyTable:
    """What `data_keys` holds, and whether it records retired keys (migration 0024)."""

    records: list[KeyRecord]
    retirement: bool


def key_table(connection: Connection) -> KeyTable | None:
    """The keys recorded as having sealed data here; None before migration 0022. Before 0024
    (a process started ahead of its migration) no key is retired."""
    columns = _columns(connection, "data_keys")
    if not columns:
        return None
    retirement = "retired_at" in columns
    dates = "retired_at, emptied_at" if retirement else "NULL, NULL"
    rows = connection.execute(
        text(
            f"SELECT kid, canary, first_sealed_at, {dates} FROM data_keys "
            "ORDER BY first_sealed_at, kid"
        )
    ).all()
    return KeyTable([KeyRecord(*row) for row in rows], retirement)


def key_records(connection: Connection) -> list[KeyRecord] | None:
    """The records of `key_table`; None before migration 0022."""
    table = key_table(connection)
    return None if table is None else table.records


def needed(records: list[KeyRecord]) -> list[KeyRecord]:
    """The records of keys some value here may still be sealed by (not emptied by a rotation)."""
    return [r for r in records if r.emptied_at is None]


def unusable(records: list[KeyRecord]) -> list[str]:
    """The ids of keys data here needs that this process cannot open data with."""
    return [r.kid for r in needed(records) if r.status in ("missing", "wrong")]


def retired(records: list[KeyRecord], kid: str) -> bool:
    """Whether the key `kid` is recorded as retired by a rotation."""
    return any(r.kid == kid and r.retired_at is not None for r in records)


def record_key(connection: Connection, kid: str | None = None) -> None:
    """Record that the key `kid` (the current one by default) seals data here, with its canary,
    in the caller's transaction; DataKeyMismatch when a key this process lacks is recorded
    already (another process, with another key, recorded it first), DataKeyRetired when a
    rotation retired `kid`."""
    kid = kid or crypto.current_key_id()
    connection.execute(text(_RECORD_LOCK))
    connection.execute(
        text(
            "INSERT INTO data_keys (kid, canary) VALUES (:kid, :canary) ON CONFLICT (kid) "
            "DO UPDATE SET canary = EXCLUDED.canary WHERE data_keys.canary IS NULL"
        ),
        {"kid": kid, "canary": crypto.seal_canary(kid)},
    )
    records = key_records(connection) or []
    bad = unusable(records)
    if bad:
        raise crypto.DataKeyMismatch(bad)
    if retired(records, kid):
        raise crypto.DataKeyRetired(kid)


def require_sealing_key(connection: Connection, kid: str | None = None) -> bool:
    """Before a transaction that sealed values under `kid` (the current key by default), and
    already recorded it, commits: DataKeyRetired when a rotation retired that key; False when
    its record is gone (rolled back with a test's transaction, say): record it again.

    The key's row is locked FOR SHARE until the transaction ends, so a rotation retiring the
    key (an UPDATE of that row) waits for it, and its values are committed before the
    re-sealing scans. Under READ COMMITTED a row retired while this waited is read as retired.
    """
    kid = kid or crypto.current_key_id()
    row = connection.execute(
        text("SELECT retired_at FROM data_keys WHERE kid = :kid FOR SHARE"), {"kid": kid}
    ).first()
    if row is None:
        return False
    if row.retired_at is not None:
        raise crypto.DataKeyRetired(kid)
    return True


def require_copy_key(dbapi_connection, kid: str) -> None:
    """`require_sealing_key` for a transaction that sealed on a DB-API (psycopg) connection of
    its own, outside the app's sessions (`gridwork seed city`'s COPY), which recorded `kid`
    beforehand: DataKeyRetired when a rotation retired it meanwhile, its row locked FOR SHARE
    until that transaction ends (a retirement waits for its commit, so the re-sealing sees its
    values); DataKeyError when the record is gone (nothing here can record it again)."""
    row = dbapi_connection.execute(
        "SELECT retired_at FROM data_keys WHERE kid = %s FOR SHARE", (kid,)
    ).fetchone()
    if row is None:
        raise crypto.DataKeyError(
            f"data key id {kid} is no longer recorded in data_keys (was the table emptied "
            "meanwhile?): nothing sealed by it was committed; run the command again"
        )
    if row[0] is not None:
        raise crypto.DataKeyRetired(kid)


def key_is_retired(connection: Connection, kid: str) -> bool:
    """Whether the key `kid` is recorded as retired by a rotation (False before migration 0024
    and for a key never recorded)."""
    if "retired_at" not in _columns(connection, "data_keys"):
        return False
    return bool(
        connection.scalar(
            text("SELECT retired_at IS NOT NULL FROM data_keys WHERE kid = :kid"), {"kid": kid}
        )
    )


def retire_other_keys(connection: Connection) -> list[str]:
    """The first step of a rotation, committed on its own before `seal_all`: record the current
    key and retire the others, so that no process still on one of them can commit a value
    sealed by it (api/keyguard.py) behind the re-sealing scan; the ids retired now."""
    record_key(connection)
    return list(
        connection.scalars(
            text(
                "UPDATE data_keys SET retired_at = now() "
                "WHERE kid <> :kid AND retired_at IS NULL RETURNING kid"
            ),
            {"kid": crypto.current_key_id()},
        )
    )


def forget_other_keys(connection: Connection, still_used: Iterable[str] = ()) -> list[str]:
    """After `seal_all` completed (every value under the current key) and the photo files
    were re-sealed (`photo_sealing.seal_photos`): mark the retired keys emptied, no value
    needs them any more; their ids. `still_used`: the ids of keys some photo file is still
    sealed by (the re-sealing could not open it, or found no photo directory): those stay
    needed. They stay recorded as retired, so a process started on one by mistake is refused
    rather than sealing with it again. A key recorded since the retirement (a process with yet
    another key sealed meanwhile) is left as it is: its values may have missed the scan."""
    record_key(connection)
    return list(
        connection.scalars(
            text(
                "UPDATE data_keys SET emptied_at = now() WHERE kid <> :kid "
                "AND retired_at IS NOT NULL AND emptied_at IS NULL "
                "AND kid <> ALL(CAST(:kept AS text[])) RETURNING kid"
            ),
            {"kid": crypto.current_key_id(), "kept": sorted(set(still_used))},
        )
    )


def _kid_of(value_sql: str) -> str:
    """SQL: the key id of a stored value, '' for the first format (no key id), else NULL."""
    return (
        f"CASE WHEN {value_sql} LIKE 'v1:%' THEN CASE WHEN substr({value_sql}, 12, 1) = ':' "
        f"THEN substr({value_sql}, 4, 8) ELSE '' END END"
    )


def scan_key_ids(connection: Connection) -> dict[str, str | None]:
    """Every key id found in the sealed columns, each with one value it sealed (for the first
    format, '' and a sample). Reads every row of every sealed table: for migration 0022, not
    for start-up."""
    found: dict[str, str | None] = {}
    tables: dict[str, list[SealedColumn]] = {}
    for col in SEALED_COLUMNS:
        if _exists(connection, col):  # 0022 runs before households.removal_note (0052)
            tables.setdefault(col.table, []).append(col)
    for table, cols in tables.items():
        values = ", ".join(
            f"({col.column})"
            if col.kind == "text"
            else f"(CASE WHEN jsonb_typeof({col.column}) = 'string' "
            f"THEN {col.column} #>> '{{}}' END)"
            for col in cols
        )
        rows = connection.execute(
            text(
                f"SELECT kid, min(v) FROM (SELECT {_kid_of('v')} AS kid, v FROM {table}, "
                f"LATERAL (VALUES {values}) AS s(v)) AS k WHERE kid IS NOT NULL GROUP BY kid"
            )
        ).all()
        for kid, sample in rows:
            found.setdefault(kid, sample)
    return found
