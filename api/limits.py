"""Limits on request bodies: strict JSON (no NaN/Infinity, bounded nesting and size of structure),
and forms refused with the limit they broke.

Python's json module accepts `NaN`, `Infinity`, integers of any length and nesting up to the
recursion limit, and turns a few bytes into a lot of memory (`[{},{},...]`: ~70 bytes of objects
per 3 bytes of input). JSON bodies go through `strict_loads` instead: the checks that bound
memory are counted on the raw bytes before anything is parsed.

The parsing itself is orjson's (several times faster than the json module on a 500-visit batch)
wherever it gives the json module's result: strict JSON with no integer of 19 digits or more
(orjson reads one beyond its 64-bit range as a float). Anything else, including every
malformed body, goes to the json module, which gives the same value or the same error as
before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

import flask
import marshmallow as ma
import orjson
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from api import errors

MAX_JSON_DEPTH = 64
# Values (roughly: commas + 1) in one body. A grid import of 3,000 grids of 100 vertices each
# is ~600,000; 2,000,000 keeps a worst-case body (all floats) near 100 MB of Python objects.
MAX_JSON_VALUES = 2_000_000
# 19 digits in a row (seen with every digit mapped to 9): maybe an integer orjson cannot hold
# exactly (beyond 64 bits, or a negative one below -2**63), which it reads as a float. Two C
# passes over the bytes; a regex took 20 times longer.
_DIGITS_AS_9 = bytes(0x39 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGITS = b"9" * 19
# The integers orjson writes: signed and unsigned 64-bit.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# A tuple, not `dict | list`: a union built per value cost the nesting walk half its time.
_CONTAINERS = (dict, list)
# What `_orjson_loads` gives when only the json module reads the body right.
_REREAD = object()
# The locations (webargs' names) whose every value arrives as text.
TEXT_LOCATIONS = frozenset(
    ("query", "querystring", "form", "multipart", "headers", "cookies", "view_args", "path")
)
# Where the arguments a schema is loading came from: set by `StrictParser` while it loads them,
# for fields that read a value by where it came from (`api.extensions.Integer`).
_LOCATION: ContextVar[str | None] = ContextVar("gridwork_arguments_location", default=None)


class JsonLimitError(ValueError):
    """A body that is not strict JSON or is beyond a limit; `status` is 400 or 413."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _reject_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a JSON number; send finite numbers only.")


def _int64(digits: str) -> int:
    """An integer literal, refused beyond 64 bits (below -2**63 or above 2**64 - 1): the
    answers, written by orjson, cannot carry one back, so stored in a JSON document (a visit's
    observations, say) it turned every later read of it into a 500."""
    value = int(digits)
    if not _INT_MIN <= value <= _INT_MAX:
        shown = digits if len(digits) <= 24 else digits[:20] + "..."
        raise JsonLimitError(f"The integer {shown} is beyond 64 bits; send smaller numbers.")
    return value


def depth_ok(value: Any, limit: int) -> bool:
    """Whether parsed data nests at most `limit` deep (walked a level at a time, no recursion).

    Nesting beyond the interpreter's recursion limit never gets here: the parser raises
    RecursionError first, in C, after reading no more than that many brackets."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return False
        deeper: list = []
        for item in level:
            values = item.values() if type(item) is dict else item
            deeper += [v for v in values if isinstance(v, _CONTAINERS)]
        level = deeper
    return True


def strict_loads(
    data: bytes | str,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_values: int | None = MAX_JSON_VALUES,
) -> Any:
    """Parse JSON, refusing NaN/Infinity, deep nesting, too many values and integers beyond
    64 bits."""
    raw = data.encode() if isinstance(data, str) else data
    if not within_values(raw, max_values):
        raise JsonLimitError(
            f"The JSON body holds more than {max_values:,} values; split it into smaller parts.",
            status=413,
        )
    value = _orjson_loads(raw)
    if value is _REREAD:
        value = _json_loads(raw, max_depth)
    if not depth_ok(value, max_depth):
        raise JsonLimitError(f"The JSON body nests deeper than {max_depth} levels.")
    return value


def within_values(raw: bytes, max_values: int | None = MAX_JSON_VALUES) -> bool:
    """Whether the body holds at most `max_values` values (counted as commas + 1)."""
    return max_values is None or len(raw) < max_values or raw.count(b",") + 1 <= max_values


def no_long_integers(raw: bytes) -> bool:
    """Whether the body holds no run of 19 digits or more: no integer that a fast parser
    (orjson, msgspec) would read otherwise than `strict_loads` does (as a float, or beyond
    64 bits where `strict_loads` refuses it)."""
    return _LONG_DIGITS not in raw.translate(_DIGITS_AS_9)


def _orjson_loads(raw: bytes) -> Any:
    """orjson's value for the body, or `_REREAD` where only the json module says the right thing
    (malformed JSON, NaN and the like, integers of 19 digits or more)."""
    if not no_long_integers(raw):
        return _REREAD
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _REREAD


def _json_loads(raw: bytes, max_depth: int) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"The body is not UTF-8 (byte {exc.start}).") from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_int64)
    except JsonLimitError:
        raise
    except RecursionError as exc:
        raise JsonLimitError(f"The JSON body nests deeper than {max_depth} levels.") from exc
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"The body is not valid JSON: {exc.msg} at {exc.pos}.") from exc
    except ValueError as exc:  # an integer literal beyond Python's digit limit
        raise JsonLimitError(f"The body is not acceptable JSON: {exc}.") from exc
    # The json module reads a lone `\ud800` escape into a string no UTF-8 encoder (psycopg's,
    # ours) can write; orjson refused it, and so do we. A surrogate pair is one character.
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise JsonLimitError(
            "The body holds a lone UTF-16 surrogate (an escape from \\ud800 to \\udfff "
            "without its pair): text must be valid Unicode."
        ) from exc
    return value


@contextmanager
def arguments_from(location: str) -> Iterator[None]:
    """Schemas loaded in this block load arguments from `location` ("json", "query", ...)."""
    token = _LOCATION.set(location)
    try:
        yield
    finally:
        _LOCATION.reset(token)


def arguments_are_text() -> bool:
    """Whether the arguments being loaded arrived as text (a query string, a form), where "7" is
    how 7 is written. Not in a JSON body, nor outside the parser: there "7" is a string."""
    return _LOCATION.get() in TEXT_LOCATIONS


def request_body(req) -> bytes:
    """The request's body (cached), or 413 when it is larger than the app's limit.

    A body sent without a Content-Length (chunked, as gunicorn passes it on) is read through
    werkzeug's stream capped at MAX_CONTENT_LENGTH, which stops at the cap without a word: a
    body over it came back cut, and its JSON was then refused as malformed (400). A body that
    filled the cap is over it if one more byte is waiting."""
    data = req.get_data(cache=True)
    limit = req.max_content_length
    cut = limit is not None and req.content_length is None and len(data) >= limit
    if cut and req.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data


class Request(flask.Request):
    """Flask's request, whose refused multipart form says which limit it broke.

    werkzeug refuses a form with one bare 413 for three limits: the body's size
    (MAX_CONTENT_LENGTH), its number of parts (MAX_FORM_PARTS) and the size of a text field
    (MAX_FORM_MEMORY_SIZE). The answer spoke of the first, whichever was broken: a form of
    1,001 small fields was "larger than the limit of 20 MB". The form is read through
    `_FormStream`, which tells them apart; the files a refused form had begun are closed
    (werkzeug leaves them to the garbage collector)."""

    _form_stream: _FormStream | None = None
    _form_files: list[IO[bytes]]

    def _get_stream_for_parsing(self) -> IO[bytes]:
        stream = super()._get_stream_for_parsing()
        boundary = self.mimetype_params.get("boundary")
        if self.mimetype == "multipart/form-data" and boundary:
            self._form_stream = _FormStream(stream, boundary.encode("latin-1"))
            return self._form_stream  # type: ignore[return-value]
        return stream

    def _get_file_stream(self, *args: Any, **kwargs: Any) -> IO[bytes]:
        stream = super()._get_file_stream(*args, **kwargs)
        self._form_files.append(stream)
        return stream

    def _load_form_data(self) -> None:
        self._form_files = []
        try:
            super()._load_form_data()
        except RequestEntityTooLarge as exc:
            for stream in self._form_files:
                stream.close()
            read = self._form_stream
            if read is None or read.cut:
                raise  # the body's size: the app's one handler names MAX_CONTENT_LENGTH
            if self.max_form_parts is not None and read.parts > self.max_form_parts:
                detail = (
                    f"The form holds more than the limit of {self.max_form_parts:,} parts "
                    "(fields and files)."
                )
            else:
                detail = (
                    "A form field (not a file) is larger than the limit of "
                    f"{self.max_form_memory_size:,} bytes."
                )
            raise errors.PayloadTooLarge(detail) from exc
        finally:
            self._form_files = []


class _FormStream:
    """A multipart body's stream as werkzeug's parser reads it (`read` only), noting whether
    the body ran past MAX_CONTENT_LENGTH (`cut`) and how many parts it opened so far (`parts`:
    its delimiters, the closing one aside). It stays the request's `stream` once read."""

    def __init__(self, stream: IO[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._delimiter = b"--" + boundary
        self._closing = self._delimiter + b"--"
        self._tail = b""  # the end of what was read: one byte short of a closing delimiter
        self.parts = 0
        self.cut = False

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except RequestEntityTooLarge:
            self.cut = True
            raise
        seen, tail = self._tail + data, self._tail
        # A delimiter may straddle two reads: count those that end in `data`.
        self.parts += seen.count(self._delimiter) - tail.count(self._delimiter)
        self.parts -= seen.count(self._closing) - tail.count(self._closing)
        self._tail = seen[-(len(self._closing) - 1) :]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Loaded:
    """A body its schema loaded from the bytes (`load_plain_body`): the arguments as they are."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class StrictParser(FlaskParser):
    """webargs' Flask parser reading JSON bodies with `strict_loads`; failures are problems.

    A schema with a `load_plain_body(raw: bytes)` method may load a plain body itself, from
    its bytes (a compiled decoder, say): what it returns, if not None, are the arguments; with
    None, the body is parsed and loaded as any other. It must return only what parsing and
    loading would have given (see `VisitBatchSchema.load_plain_body`).

    While a schema loads, nested ones included, `arguments_are_text()` says whether its
    arguments arrived as text (a query string, a form) or as JSON."""

    # `multipart`: a multipart body's fields and files read by one schema, documented as one
    # request body (two arguments, `form` and `files`, made the form's fields an OpenAPI 2
    # `formData` parameter, which OpenAPI 3 has not).
    __location_map__ = dict(FlaskParser.__location_map__, multipart="load_multipart")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._built: dict[type[ma.Schema], ma.Schema] = {}

    def load_multipart(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)

    def _get_schema(self, argmap, req) -> ma.Schema:
        """A schema given as its class is built once, not for every request (~0.05-0.1 ms
        each: a view's arguments, the pagination's parameters). Our schemas keep nothing
        between loads (marshmallow 4 has no `context`), so one instance serves every request."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._built.get(argmap)
            if schema is None:
                schema = self._built.setdefault(argmap, self._build(argmap))
            return schema
        return super()._get_schema(argmap, req)

    def _build(self, schema_class: type[ma.Schema]) -> ma.Schema:
        return schema_class()

    def load_json(self, req, schema):
        plain = getattr(schema, "load_plain_body", None)
        if plain is not None and is_json_request(req):
            data = request_body(req)
            if data and (value := plain(data)) is not None:
                return _Loaded(value)
        return super().load_json(req, schema)

    def _process_location_data(self, location_data, schema, req, location, unknown, validators):
        if isinstance(location_data, _Loaded):
            self._validate_arguments(location_data.value, validators)
            return location_data.value
        read = location
        if location == "json_or_form":  # what `load_json_or_form` read
            read = "json" if is_json_request(req) else "form"
        with arguments_from(read):
            return super()._process_location_data(
                location_data, schema, req, location, unknown, validators
            )

    def load_json_or_form(self, req, schema):
        # Form or JSON, whichever the request says it is (a form is not "not JSON" here).
        return self.load_json(req, schema) if is_json_request(req) else self.load_form(req, schema)

    def _raw_load_json(self, req):
        if not is_json_request(req):
            # A body labelled as anything else (fetch sends a string body as text/plain) was
            # read as no body at all: "visits: missing" for a batch the client did send.
            if request_body(req):
                raise errors.UnsupportedMediaType(
                    f"The body is sent as {req.mimetype or 'no media type'}: "
                    "send it as JSON, with Content-Type: application/json."
                )
            return core.missing
        data = request_body(req)
        if not data:
            return core.missing
        try:
            return strict_loads(data)
        except JsonLimitError as exc:
            if exc.status == 413:
                raise errors.PayloadTooLarge(exc.detail) from exc
            raise errors.BadRequest(exc.detail) from exc
