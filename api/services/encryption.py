"""Bringing stored sensitive values under the current data key: plaintext, old keys, in batches.

Used by migration 0013 and by `gridwork security encrypt` (after a key rotation). Works on a bare
Connection with SQL text, so it runs the same inside Alembic and in the CLI, whatever the models
of the day look like.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, text

from api import crypto


@dataclass(frozen=True)
class SealedColumn:
    table: str
    column: str
    kind: str  # "text" (EncryptedString) or "json" (EncryptedJSON in a jsonb column)
    key: str = "id"
    key_type: str = "bigint"


# Every column stored encrypted; the models declare the same with EncryptedString/EncryptedJSON.
SEALED_COLUMNS = (
    SealedColumn("households", "phone", "text"),
    SealedColumn("users", "phone", "text"),
    SealedColumn("visits", "notes", "text", key_type="uuid"),
    SealedColumn("visits", "follow_up_note", "text", key_type="uuid"),
    SealedColumn("visits", "observations", "json", key_type="uuid"),
    SealedColumn("tasks", "description", "text"),
    SealedColumn("tasks", "complainant", "json"),
    SealedColumn("task_events", "note", "text"),
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


def _update(connection: Connection, col: SealedColumn, keys: list, values: list[str]) -> None:
    """One UPDATE per batch (unnest of two arrays): ~10x a statement per row."""
    value = "v.val" if col.kind == "text" else "v.val::jsonb"
    connection.execute(
        text(
            f"UPDATE {col.table} AS t SET {col.column} = {value} "
            f"FROM unnest(CAST(:keys AS {col.key_type}[]), CAST(:vals AS text[])) AS v(k, val) "
            f"WHERE t.{col.key} = v.k"
        ),
        {"keys": keys, "vals": values},
    )


def seal_all(connection: Connection, batch: int = 1000) -> dict[str, int]:
    """Encrypt plaintext and re-encrypt values of older keys; counts per table.column."""
    counts: dict[str, int] = {}
    current = f"{crypto.PREFIX}{crypto.current_key_id()}:%"
    for col in SEALED_COLUMNS:
        done = 0
        last = None
        while True:
            after = f"AND {col.key} > :last" if last is not None else ""
            rows = connection.execute(
                text(
                    f"SELECT {col.key}, {col.column} FROM {col.table} "
                    f"WHERE {_pending(col)} {after} ORDER BY {col.key} LIMIT :n"
                ),
                {"current": current, "last": last, "n": batch},
            ).all()
            if not rows:
                break
            _update(
                connection,
                col,
                [key for key, _ in rows],
                [_seal(col, _open(col, stored)) for _, stored in rows],
            )
            done += len(rows)
            last = rows[-1][0]
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
                text(f"SELECT {col.key}, {c} FROM {col.table} WHERE {where} LIMIT :n"),
                {"n": batch},
            ).all()
            if not rows:
                break
            _update(
                connection,
                col,
                [key for key, _ in rows],
                [
                    _open(col, stored)
                    if col.kind == "text"
                    else json.dumps(_open(col, stored), ensure_ascii=False)
                    for _, stored in rows
                ],
            )
            done += len(rows)
    return done
