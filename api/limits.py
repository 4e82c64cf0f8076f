"""Limits on request bodies: strict JSON (no NaN/Infinity, bounded nesting and size of structure).

Python's json module accepts `NaN`, `Infinity`, integers of any length and nesting up to the
recursion limit, and turns a few bytes into a lot of memory (`[{},{},...]`: ~70 bytes of objects
per 3 bytes of input). JSON bodies go through `strict_loads` instead: the checks that bound
memory are counted on the raw bytes before anything is parsed.
"""

from __future__ import annotations

import json
from typing import Any

from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from api import errors

MAX_JSON_DEPTH = 64
# Values (roughly: commas + 1) in one body. A grid import of 3,000 grids of 100 vertices each
# is ~600,000; 2,000,000 keeps a worst-case body (all floats) near 100 MB of Python objects.
MAX_JSON_VALUES = 2_000_000


class JsonLimitError(ValueError):
    """A body that is not strict JSON or is beyond a limit; `status` is 400 or 413."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _reject_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a JSON number; send finite numbers only.")


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether parsed data nests at most `limit` deep (walked without recursion).

    Nesting beyond the interpreter's recursion limit never gets here: the parser raises
    RecursionError first, in C, after reading no more than that many brackets."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return True


def strict_loads(
    data: bytes | str,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_values: int | None = MAX_JSON_VALUES,
) -> Any:
    """Parse JSON, refusing NaN/Infinity, deep nesting, too many values and huge integers."""
    raw = data.encode() if isinstance(data, str) else data
    if max_values is not None and raw.count(b",") + 1 > max_values:
        raise JsonLimitError(
            f"The JSON body holds more than {max_values:,} values; split it into smaller parts.",
            status=413,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"The body is not UTF-8 (byte {exc.start}).") from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except JsonLimitError:
        raise
    except RecursionError as exc:
        raise JsonLimitError(f"The JSON body nests deeper than {max_depth} levels.") from exc
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"The body is not valid JSON: {exc.msg} at {exc.pos}.") from exc
    except ValueError as exc:  # an integer literal beyond Python's digit limit
        raise JsonLimitError(f"The body is not acceptable JSON: {exc}.") from exc
    if not _depth_ok(value, max_depth):
        raise JsonLimitError(f"The JSON body nests deeper than {max_depth} levels.")
    return value


class StrictParser(FlaskParser):
    """webargs' Flask parser reading JSON bodies with `strict_loads`; failures are problems."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return strict_loads(data)
        except JsonLimitError as exc:
            if exc.status == 413:
                raise errors.PayloadTooLarge(exc.detail) from exc
            raise errors.BadRequest(exc.detail) from exc
