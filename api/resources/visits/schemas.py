"""Schemas of the visits resource: batch items and results, visits, plans, photos, cadence."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import marshmallow as ma
import msgspec
from werkzeug.datastructures import FileStorage

from api import privacy
from api.db import PG_INT_MAX
from api.extensions import Boolean, Float, Integer, Schema
from api.limits import MAX_JSON_DEPTH, depth_ok, no_long_integers, within_values
from api.models.households import CARE_TAGS, HOUSEHOLD_KINDS
from api.models.tasks import URGENCY_DEFAULT
from api.models.visits import (
    DATUMS,
    FOLLOW_UP_DEFAULT,
    FOLLOW_UP_KINDS,
    GRADES,
    OUTCOMES,
    URGENCIES,
)
from api.resources.schemas import ISO_WEEK, AddressPart, FullMatch, code_field
from api.resources.tasks.schemas import TITLE_MAX, TITLE_RULES, task_title, task_urgency
from api.services.geometry import point_lonlat
from api.services.ledger import MAX_PER_WEEK
from api.services.names import CONTROL_CHARACTERS, has_control_characters
from api.services.visits import MAX_BATCH, REFUSALS, BatchItem, Refusal, local_visited_at
from api.services.weeks import FIRST_WEEK, LAST_WEEK, in_served_weeks

# PostgreSQL's text and jsonb refuse NUL: one such string sank the whole batch (a DataError,
# 422). Short labels (provider, the premises' address) refuse every control character, as
# names do; notes are free text (newlines and tabs welcome) and refuse only NUL.
NUL_CHARACTER = "Must not contain NUL characters."
# The schema's other messages of its own (the app says each in Chinese: web/src/reasons.js).
BOTH_OR_NEITHER = "Give both lon and lat, or neither."
ONE_TARGET = "Give exactly one of household_id and premises."
FOLLOW_UP_NOTE = "A follow-up needs a description."
FOLLOW_UP_KIND = (
    "The list the follow-up goes on: `need` (需求, a resident's wish: lamps, a ramp, a service) "
    "or `problem` (问题, something broken or wrong to fix). Omitted or null with `follow_up`: "
    f"`{FOLLOW_UP_DEFAULT}` (what a client from before the lists sends). Without `follow_up` "
    "it is ignored (stored null): a form may keep a choice the worker then unticked"
)
FOLLOW_UP_TITLE = (
    f"What the follow-up is about, in one plain line (1-{TITLE_MAX} characters, not blank, as "
    "a task's title): its task's title, shown in the need and problem lists, e.g. "
    "`3号楼楼道灯不亮`. Not sealed: write no name or health in it (the note is for what the "
    "resident said). Omitted or null: the task is titled `入户走访跟进`. Ignored without "
    "`follow_up`"
)
FOLLOW_UP_URGENCY = (
    "Its task's urgency, which sets the deadline, as a task's: "
    + ", ".join(f"`{u}`" for u in URGENCIES)
    + ". Omitted or null with `follow_up`: `general`. Ignored without `follow_up`"
)


def _no_control_characters(value: str) -> None:
    if has_control_characters(value):
        raise ma.ValidationError(CONTROL_CHARACTERS)


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ma.ValidationError(NUL_CHARACTER)


def _label(max_length: int, min_length: int | None = None) -> list:
    return [ma.validate.Length(min=min_length, max=max_length), _no_control_characters]


def _free_text(max_length: int) -> list:
    return [ma.validate.Length(max=max_length), _no_nul]


class VisitLocationInSchema(Schema):
    lon = Float(required=True, allow_nan=False, validate=ma.validate.Range(-180, 180))
    lat = Float(required=True, allow_nan=False, validate=ma.validate.Range(-90, 90))
    accuracy_m = Float(
        allow_none=True,
        allow_nan=False,
        validate=ma.validate.Range(min=0),
        metadata={"description": "Horizontal accuracy reported by the phone, metres"},
    )
    datum = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(DATUMS),
        metadata={"description": "wgs84 (raw GPS), gcj02 (Amap/Tencent SDKs) or bd09 (Baidu SDK)"},
    )
    provider = ma.fields.String(
        allow_none=True,
        validate=_label(20),
        metadata={"description": "gps, network, fused, ..."},
    )
    mock = Boolean(
        load_default=False, metadata={"description": "The phone flagged a mock location"}
    )


class PremisesSchema(Schema):
    """Premises met on a round and not yet registered: their address parts are spelled as the
    register's (`AddressPart`), so the shop registered from the visit is found at its address."""

    building = AddressPart(required=True, validate=ma.validate.Length(min=1, max=50))
    unit = AddressPart(validate=ma.validate.Length(max=20))
    floor = AddressPart(validate=ma.validate.Length(max=10))
    room = AddressPart(validate=ma.validate.Length(max=20))
    kind = ma.fields.String(validate=ma.validate.OneOf(HOUSEHOLD_KINDS))
    name = ma.fields.String(validate=_label(100), metadata={"description": "Shop or business name"})
    lon = Float(
        allow_nan=False,
        validate=ma.validate.Range(-180, 180),
        metadata={
            "description": "The premises' point, in the visit's datum (default: the visit's)"
        },
    )
    lat = Float(allow_nan=False, validate=ma.validate.Range(-90, 90))

    @ma.validates_schema
    def _both_or_neither(self, data, **kwargs):
        if ("lon" in data) != ("lat" in data):
            raise ma.ValidationError(BOTH_OR_NEITHER, "lon")


# A visit's time falls in the weeks served, its household id in PostgreSQL's integer. Beyond
# either, one item used to sink the whole batch (an out-of-range integer, a time that overflows
# when it is turned into Beijing time). The week, not the year in the sent offset: a visit
# stored in 1999-W52 or 3000-W01 could never be asked for by `?week=`.
OUTSIDE_WEEKS = (
    f"The time must fall in the weeks served, {FIRST_WEEK} to {LAST_WEEK} "
    "(ISO weeks, Asia/Shanghai)."
)


def _in_weeks(moment: datetime) -> None:
    if not in_served_weeks(moment):
        raise ma.ValidationError(OUTSIDE_WEEKS)


# The offset is kept in whole minutes (`utc_offset_minutes`), and the batch sends its rows to
# PostgreSQL through orjson, which writes an offset to the minute: `+08:00:30` was stored 30 s
# off, and read back in another offset than it came with. No real zone has had seconds since
# 1972, so an offset with seconds is a phone's bug: refused, not rounded.
WHOLE_MINUTES = "The UTC offset must be a whole number of minutes."


def _whole_minutes(moment: datetime) -> bool:
    offset = moment.utcoffset()
    # A timedelta keeps 0 <= seconds < 86400 (days carry the sign): whole minutes when its
    # seconds are, 86400 being a whole number of minutes.
    return offset is not None and not offset.seconds % 60 and not offset.microseconds


def _visit_time(moment: datetime) -> None:
    _in_weeks(moment)
    if not _whole_minutes(moment):
        raise ma.ValidationError(WHOLE_MINUTES)


class VisitItemSchema(Schema):
    """One visit as the phone recorded it."""

    id = ma.fields.UUID(
        required=True, metadata={"description": "Made by the phone; idempotency key"}
    )
    household_id = Integer(
        validate=ma.validate.Range(1, PG_INT_MAX),
        metadata={"description": "A registered household"},
    )
    premises = ma.fields.Nested(
        PremisesSchema, metadata={"description": "Premises not yet registered (no household_id)"}
    )
    visited_at = ma.fields.AwareDateTime(
        required=True,
        validate=_visit_time,
        metadata={"description": "ISO 8601 with its UTC offset"},
    )
    location = ma.fields.Nested(VisitLocationInSchema, required=True)
    outcome = ma.fields.String(required=True, validate=ma.validate.OneOf(OUTCOMES))
    notes = ma.fields.String(load_default="", validate=_free_text(4000))
    observations = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(CARE_TAGS)),
        values=ma.fields.Raw(),
        load_default=dict,
        metadata={"description": "What was observed, per care tag of the household"},
    )
    follow_up = Boolean(load_default=False)
    follow_up_note = ma.fields.String(allow_none=True, validate=_free_text(2000))
    follow_up_kind = ma.fields.String(
        allow_none=True,
        validate=ma.validate.OneOf(FOLLOW_UP_KINDS),
        metadata={"description": FOLLOW_UP_KIND},
    )
    # A task's title and urgency, by the task schema's own rules (the task takes them).
    follow_up_title = task_title(allow_none=True, metadata={"description": FOLLOW_UP_TITLE})
    follow_up_urgency = task_urgency(allow_none=True, metadata={"description": FOLLOW_UP_URGENCY})

    @ma.validates_schema
    def _one_target(self, data, **kwargs):
        if ("household_id" in data) == ("premises" in data):
            raise ma.ValidationError(ONE_TARGET, "household_id")
        if data.get("follow_up") and not (data.get("follow_up_note") or "").strip():
            raise ma.ValidationError(FOLLOW_UP_NOTE, "follow_up_note")


def _summary(messages) -> str:
    parts = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parts.append(f"{prefix}: {' '.join(value)}")
        else:
            parts.append(f"{prefix}: {value}")

    walk("", messages)
    return "; ".join(parts)


def _text(value: Any, limit: int) -> bool:
    """Free text as the schema takes it: a string of at most `limit` characters, no NUL."""
    return type(value) is str and len(value) <= limit and "\x00" not in value


def _label_text(value: Any, limit: int) -> bool:
    """A short label as the schema takes it: no control character at all."""
    return _text(value, limit) and not has_control_characters(value)


def _title_text(value: str) -> bool:
    """A follow-up's title as the schema takes it: a task's (`TITLE_RULES`, the same rules)."""
    try:
        for rule in TITLE_RULES:
            rule(value)
    except ma.ValidationError:
        return False
    return True


def _visit_moment(text: str) -> datetime | None:
    """`visited_at` as the schema loads it (aware, whole-minute offset, in the weeks served),
    else None."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if not _whole_minutes(moment) or not in_served_weeks(moment):
        return None
    return moment


# The item's JSON types and bounds, checked by msgspec in C; `_plain_item` checks the rest.
_Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
_Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
_Unset = msgspec.UnsetType


class _PlainLocation(msgspec.Struct, forbid_unknown_fields=True):
    lon: _Lon
    lat: _Lat
    datum: Literal[DATUMS]  # type: ignore[valid-type]
    accuracy_m: float | None | _Unset = msgspec.UNSET
    provider: Annotated[str, msgspec.Meta(max_length=20)] | None | _Unset = msgspec.UNSET
    mock: bool = False


class _PlainItem(msgspec.Struct, forbid_unknown_fields=True):
    """A household visit's item with every field of the JSON type `VisitItemSchema` takes
    (premises are not plain: the schema loads them)."""

    id: str
    household_id: Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)]
    visited_at: str
    location: _PlainLocation
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    notes: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    observations: dict[Literal[CARE_TAGS], Any] = {}  # type: ignore[valid-type]
    follow_up: bool = False
    follow_up_note: Annotated[str, msgspec.Meta(max_length=2000)] | None | _Unset = msgspec.UNSET
    follow_up_kind: Literal[FOLLOW_UP_KINDS] | None | _Unset = msgspec.UNSET  # type: ignore[valid-type]
    follow_up_title: str | None | _Unset = msgspec.UNSET
    follow_up_urgency: Literal[URGENCIES] | None | _Unset = msgspec.UNSET  # type: ignore[valid-type]


class _PlainBatch(msgspec.Struct, forbid_unknown_fields=True):
    visits: list[_PlainItem]


_PLAIN_BATCH = msgspec.json.Decoder(_PlainBatch)
# Nesting as `strict_loads` counts it: the body, its list, the item, then the observations.
_OBSERVATIONS_DEPTH = MAX_JSON_DEPTH - 3


def _plain_item(item: _PlainItem) -> dict[str, Any] | None:
    """The loaded item, as `VisitItemSchema` loads it, for an item whose JSON types and
    bounds are right; None when a value is not plainly good (the schema then loads the item
    and words why)."""
    try:
        out: dict[str, Any] = {"id": uuid.UUID(item.id)}
    except ValueError:
        return None
    moment = _visit_moment(item.visited_at)
    if moment is None or "\x00" in item.notes:
        return None
    if item.observations and None in item.observations.values():  # `Raw()` refuses a null
        return None
    location = item.location
    loc: dict[str, Any] = {"lon": location.lon, "lat": location.lat}
    if (accuracy := location.accuracy_m) is not msgspec.UNSET:
        if accuracy is not None and not 0 <= accuracy < math.inf:
            return None
        loc["accuracy_m"] = accuracy
    loc["datum"] = location.datum
    if (provider := location.provider) is not msgspec.UNSET:
        if provider is not None and not _label_text(provider, 20):
            return None
        loc["provider"] = provider
    loc["mock"] = location.mock
    out.update(
        household_id=item.household_id,
        visited_at=moment,
        location=loc,
        outcome=item.outcome,
        notes=item.notes,
        observations=dict(item.observations),
        follow_up=item.follow_up,
    )
    if (note := item.follow_up_note) is not msgspec.UNSET:
        if note is not None and "\x00" in note:
            return None
        out["follow_up_note"] = note
    if item.follow_up and not (note or "").strip():
        return None
    if (kind := item.follow_up_kind) is not msgspec.UNSET:
        out["follow_up_kind"] = kind
    if (title := item.follow_up_title) is not msgspec.UNSET:
        if title is not None and not _title_text(title):
            return None
        out["follow_up_title"] = title
    if (urgency := item.follow_up_urgency) is not msgspec.UNSET:
        out["follow_up_urgency"] = urgency
    return out


def quick_load_item(raw: dict) -> dict[str, Any] | None:
    """The loaded item for a plainly well-formed household visit, else None (use the schema).

    A schema load per item was a sixth of a 500-visit batch. This accepts only what
    `VisitItemSchema` accepts and returns exactly what it would; anything unusual (premises,
    numbers as strings, a missing or extra field, a bad value) returns None, and the schema
    then loads the item and words its errors, so the error contract is the schema's alone.
    """
    try:
        item = msgspec.convert(raw, _PlainItem)
    except msgspec.ValidationError:
        return None
    return _plain_item(item)


def load_plain_batch(body: bytes) -> list[BatchItem] | None:
    """A batch body's items, as parsing it (`strict_loads`) and loading it (`VisitBatchSchema`)
    give them, when every item is plainly well formed; else None (parse and load it).

    Parsing and loading a 500-visit batch took ~6 ms of its ~85 (a quick load per item, the
    schema around them): msgspec decodes and type-checks the body in C, in ~0.5 ms, and only
    the values are checked here. Only a body `strict_loads` reads as msgspec does is taken (no
    integer of 19 digits or more, within the values limit; msgspec refuses what orjson does:
    malformed JSON, NaN, invalid UTF-8, a lone surrogate), and its observations nest no deeper
    than `strict_loads` allows. Anything else, and any item not plain, gives None: one
    unusual item sends the whole batch the ordinary way, which then answers it."""
    if not (within_values(body) and no_long_integers(body)):
        return None
    try:
        batch = _PLAIN_BATCH.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not 1 <= len(batch.visits) <= MAX_BATCH:
        return None
    items = []
    for item in batch.visits:
        data = _plain_item(item)
        if data is None or (
            data["observations"] and not depth_ok(data["observations"], _OBSERVATIONS_DEPTH)
        ):
            return None
        items.append(BatchItem(raw_id=item.id, data=data))
    return items


class _BatchItem(ma.fields.Nested):
    """A batch item: documented as a `VisitItem`, taken as it came (any JSON value, null too).
    `VisitBatchSchema._items` loads each on its own, so a bad one, even a null, is rejected
    in its result and never fails the batch (a `Raw()` refused a null: a 422 for all)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(VisitItemSchema, **kwargs)

    def deserialize(self, value, attr=None, data=None, **kwargs):
        return value


class HandoverQueryArgsSchema(Schema):
    worker = Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=PG_INT_MAX),
        metadata={"description": "The switched-off worker whose visits these are (user id)"},
    )


class VisitBatchSchema(Schema):
    """The batch; each item is loaded on its own (`_items`). A plain batch is loaded straight
    from its bytes (`load_plain_body`, used by the app's parser) to the same items."""

    visits = ma.fields.List(
        _BatchItem(),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_BATCH),
        metadata={
            "description": f"Up to {MAX_BATCH} visits, each checked alone: a bad one is "
            "rejected in its result, the others stored"
        },
    )

    @staticmethod
    def load_plain_body(body: bytes) -> list[BatchItem] | None:
        return load_plain_batch(body)

    @ma.post_load
    def _items(self, data, **kwargs):
        """Each item gets its own schema load: one bad item never sinks the batch."""
        items = []
        loader = VisitItemSchema()
        for raw in data["visits"]:
            if not isinstance(raw, dict):
                items.append(
                    BatchItem(
                        raw_id=None,
                        reason="Each visit must be a JSON object.",
                        code=Refusal.NOT_AN_OBJECT,
                    )
                )
                continue
            quick = quick_load_item(raw)
            if quick is not None:
                items.append(BatchItem(raw_id=raw.get("id"), data=quick))
                continue
            try:
                items.append(BatchItem(raw_id=raw.get("id"), data=loader.load(raw)))
            except ma.ValidationError as exc:
                items.append(
                    BatchItem(
                        raw_id=raw.get("id"), reason=_summary(exc.messages), errors=exc.messages
                    )
                )
        return items


def _follow_up_title(visit, shown: privacy.Disclosure) -> str | None:
    return visit.follow_up_title if shown.place else None


def _follow_up_urgency(visit) -> str | None:
    return visit.follow_up_urgency or (URGENCY_DEFAULT if visit.follow_up else None)


def _shown(visit) -> privacy.Disclosure:
    """What the caller sees of this visit (`privacy.visit_disclosure`)."""
    return privacy.visit_disclosure(privacy.visit_grid_id(visit))


def _location(visit) -> dict:
    return _location_as(visit, _shown(visit))


def _location_as(visit, disclosure: privacy.Disclosure) -> dict:
    lon, lat = point_lonlat(visit.location)
    if not disclosure.tracks:  # a worker's track, to about 100 m
        lon, lat = round(lon, privacy.TRACK_DECIMALS), round(lat, privacy.TRACK_DECIMALS)
        return {"lon": lon, "lat": lat, "accuracy_m": None, "datum": visit.datum,
                "raw_lon": None, "raw_lat": None, "provider": None, "mock": visit.mock}  # fmt: skip
    return {
        "lon": lon,
        "lat": lat,
        "accuracy_m": visit.accuracy_m,
        "datum": visit.datum,
        "raw_lon": visit.raw_lon,
        "raw_lat": visit.raw_lat,
        "provider": visit.provider,
        "mock": visit.mock,
    }


def _evidence(visit) -> dict:
    return _evidence_as(visit, _shown(visit))


def _evidence_as(visit, disclosure: privacy.Disclosure) -> dict:
    details = dict(visit.evidence or {})
    if not disclosure.measures:
        details = {k: v for k, v in details.items() if k.startswith(privacy.UNTRACKED_DETAILS)}
    return {"grade": visit.grade, "reasons": list(visit.reasons), "details": details}


class VisitLocationSchema(Schema):
    """Where the visit was: WGS-84 as stored, and the position as it arrived (documentation)."""

    lon = Float(metadata={"description": "WGS-84"})
    lat = Float(metadata={"description": "WGS-84"})
    accuracy_m = Float(allow_none=True)
    datum = ma.fields.String(metadata={"description": "The datum the position arrived in"})
    raw_lon = Float(
        allow_none=True, metadata={"description": "Longitude as it arrived (withheld: null)"}
    )
    raw_lat = Float(allow_none=True, metadata={"description": "Latitude as it arrived"})
    provider = ma.fields.String(allow_none=True)
    mock = Boolean()


class EvidenceSchema(Schema):
    """The location evidence (documentation)."""

    grade = ma.fields.String(metadata={"description": " / ".join(GRADES)})
    reasons = ma.fields.List(ma.fields.String())
    details = ma.fields.Dict(
        metadata={
            "description": "The measured numbers; district viewers get the times only (no "
            "distances, speeds or accuracy, which would place the worker exactly)"
        }
    )


class PhotoSchema(Schema):
    id = Integer()
    visit_id = ma.fields.UUID()
    sha256 = ma.fields.String()
    content_type = ma.fields.String()
    size_bytes = Integer()
    created_at = ma.fields.DateTime()
    url = ma.fields.Function(
        lambda p: f"/api/v1/visits/{p.visit_id}/photos/{p.id}", metadata={"type": "string"}
    )


class PhotoUploadResultSchema(PhotoSchema):
    duplicate = Boolean(metadata={"description": "The same image was already attached"})


WITHHELD = (
    "null (withheld) for district viewers, and for a worker's own visit in a grid they do not hold"
)


def _premises_as(visit, disclosure: privacy.Disclosure) -> dict | None:
    if visit.premises is None or not disclosure.place:
        return None
    return dict(visit.premises)


class _VisitPhotosField(ma.fields.List):
    """A visit's photos, none for a caller the visit's place is withheld from."""

    def _serialize(self, value, attr, obj, **kwargs):
        if not _shown(obj).place:
            return []
        return super()._serialize(value, attr, obj, **kwargs)


class VisitSchema(Schema):
    id = ma.fields.UUID()
    worker_id = Integer()
    worker_name = ma.fields.Function(lambda v: v.worker.display_name, metadata={"type": "string"})
    household_id = Integer(allow_none=True)
    premises = ma.fields.Function(
        lambda v: _premises_as(v, _shown(v)),
        allow_none=True,
        metadata={
            "type": "object",
            "description": "null to a worker for their own visit in a grid they do not hold",
        },
    )
    grid_id = Integer()
    grid_code = ma.fields.Function(lambda v: v.grid.code, metadata={"type": "string"})
    visited_at = ma.fields.Function(
        lambda v: local_visited_at(v).isoformat(),
        metadata={
            "type": "string",
            "format": "date-time",
            "description": "In the UTC offset it was recorded with",
        },
    )
    week = ma.fields.String(metadata={"description": "ISO week in Asia/Shanghai"})
    # Built by plain functions: a nested schema per visit costs more than the rest of a batch.
    location = ma.fields.Function(
        _location, metadata={"allOf": [{"$ref": "#/components/schemas/VisitLocation"}]}
    )
    outcome = ma.fields.String()
    notes = ma.fields.Function(
        lambda v: v.notes if _shown(v).notes else None,
        allow_none=True,
        metadata={"type": "string", "description": WITHHELD},
    )
    observations = ma.fields.Function(
        lambda v: v.observations if _shown(v).notes else None,
        allow_none=True,
        metadata={"type": "object", "description": WITHHELD},
    )
    follow_up = Boolean()
    follow_up_note = ma.fields.Function(
        lambda v: v.follow_up_note if _shown(v).notes else None,
        allow_none=True,
        metadata={"type": "string", "description": WITHHELD},
    )
    follow_up_kind = ma.fields.String(
        allow_none=True,
        metadata={
            "enum": [*FOLLOW_UP_KINDS, None],
            "description": "The list the follow-up went on: `need` (需求) or `problem` (问题); "
            "null without a follow-up",
        },
    )
    follow_up_title = ma.fields.Function(
        lambda v: _follow_up_title(v, _shown(v)),
        allow_none=True,
        metadata={
            "type": "string",
            "description": "What the follow-up is about, one plain line (its task's title); "
            "null: none given (the task is titled 入户走访跟进), or no follow-up, or withheld "
            "(a worker's own visit in a grid they no longer hold: it names the place)",
        },
    )
    follow_up_urgency = ma.fields.Function(
        lambda v: _follow_up_urgency(v),
        allow_none=True,
        metadata={
            "type": "string",
            "enum": [*URGENCIES, None],
            "description": "Its task's urgency (a follow-up recorded before the urgencies: "
            "general, as its task was); null without a follow-up",
        },
    )
    relief = Boolean(metadata={"description": "Recorded as the grid's named reliever"})
    evidence = ma.fields.Function(
        _evidence, metadata={"allOf": [{"$ref": "#/components/schemas/Evidence"}]}
    )
    photos = _VisitPhotosField(
        ma.fields.Nested(PhotoSchema),
        metadata={
            "description": "empty to a worker for their own visit in a grid they do not hold"
        },
    )
    received_at = ma.fields.DateTime()


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def visit_answer(visit, disclosure: privacy.Disclosure | None = None) -> dict[str, Any]:
    """What `VisitSchema` dumps for a visit, built directly (a batch answers up to 500).

    `disclosure` is the caller's (looked up when not given: a batch looks it up once); what
    they see of this visit follows from it (`privacy.visit_disclosure`)."""
    shown = privacy.visit_disclosure(privacy.visit_grid_id(visit), disclosure)
    return {
        "id": str(visit.id),
        "worker_id": visit.worker_id,
        "worker_name": visit.worker.display_name,
        "household_id": visit.household_id,
        "premises": _premises_as(visit, shown),
        "grid_id": visit.grid_id,
        "grid_code": visit.grid.code,
        "visited_at": local_visited_at(visit).isoformat(),
        "week": visit.week,
        "location": _location_as(visit, shown),
        "outcome": visit.outcome,
        # Only workers and leaders record visits (both read notes); as VisitSchema all the same.
        "notes": visit.notes if shown.notes else None,
        "observations": dict(visit.observations) if shown.notes else None,
        "follow_up": visit.follow_up,
        "follow_up_note": visit.follow_up_note if shown.notes else None,
        "follow_up_kind": visit.follow_up_kind,
        "follow_up_title": _follow_up_title(visit, shown),
        "follow_up_urgency": _follow_up_urgency(visit),
        "relief": visit.relief,
        "evidence": _evidence_as(visit, shown),
        "photos": [
            {
                "id": p.id,
                "visit_id": str(p.visit_id),
                "sha256": p.sha256,
                "content_type": p.content_type,
                "size_bytes": p.size_bytes,
                "created_at": _iso(p.created_at),
                "url": f"/api/v1/visits/{p.visit_id}/photos/{p.id}",
            }
            for p in (visit.photos if shown.place else ())
        ],
        "received_at": _iso(visit.received_at),
    }


class _VisitAnswerField(ma.fields.Nested):
    """Documented as a Visit; dumped by `visit_answer` instead of a schema per visit."""

    def _serialize(self, nested_obj, attr, obj, **kwargs):
        return None if nested_obj is None else visit_answer(nested_obj)


class VisitResultSchema(Schema):
    id = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"description": "created, duplicate or rejected"})
    code = ma.fields.String(
        metadata={
            "description": "Why the item was rejected, as a stable code: "
            + "; ".join(f"`{code}`: {meaning}" for code, meaning in REFUSALS.items()),
            "enum": [str(code) for code in REFUSALS],
        }
    )
    reason = ma.fields.String(metadata={"description": "Why the item was rejected, in English"})
    errors = ma.fields.Raw(metadata={"description": "Field errors of a rejected item"})
    nearest_grid = ma.fields.String(
        allow_none=True,
        metadata={"description": "`outside-every-grid`: the nearest grid's code (null: none)"},
    )
    distance_m = Float(
        allow_none=True, metadata={"description": "`outside-every-grid`: metres to it"}
    )
    grid_code = ma.fields.String(
        metadata={"description": "`not-your-grid`: the grid the premises lie in"}
    )
    visit = _VisitAnswerField(VisitSchema)


class _BatchResultsField(ma.fields.List):
    """Documented as a list of VisitResult; each result is already a plain dict but its visit."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        shown = privacy.disclosure()
        return [
            {
                k: visit_answer(v, shown) if k == "visit" and v is not None else v
                for k, v in r.items()
            }
            for r in value
        ]


class VisitBatchResultSchema(Schema):
    results = _BatchResultsField(ma.fields.Nested(VisitResultSchema))


class _MeOrInteger(Integer):
    """`me`, the caller, as `GET /shifts`, `/leaves` and `/swaps` take it; else a user id (a
    number no id can be is refused here, naming the parameter, not by the database)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "me":
            return "me"
        number = super()._deserialize(value, attr, data, **kwargs)
        if not 1 <= number < 2**63:
            raise self.make_error("invalid", input=value)
        return number


class VisitQueryArgsSchema(Schema):
    grid = code_field(15, metadata={"description": "Only this grid (15-digit code)"})
    week = ma.fields.String(validate=ISO_WEEK, metadata={"description": "ISO week, e.g. 2026-W47"})
    worker = _MeOrInteger(
        metadata={
            "type": "string",
            "description": "Only this worker's visits: `me` or a user id (of those you may read)",
        }
    )


class PlanQueryArgsSchema(Schema):
    week = ma.fields.String(
        validate=ISO_WEEK, metadata={"description": "ISO week (default: the current week)"}
    )
    worker = _MeOrInteger(
        metadata={
            "type": "string",
            "description": "`me` (the default), or another worker's user id (leaders, admins)",
        }
    )


class PlanStopSchema(Schema):
    order = Integer()
    household_id = Integer()
    grid_code = ma.fields.String()
    building = ma.fields.String()
    unit = ma.fields.String()
    floor = ma.fields.String()
    room = ma.fields.String()
    kind = ma.fields.String()
    lon = Float()
    lat = Float()
    tags = ma.fields.List(ma.fields.String())
    must_visit = Boolean()
    overdue = Boolean()
    visits_per_week = Integer()
    visits_this_week = Integer()
    last_visited_at = ma.fields.DateTime(allow_none=True)
    next_due_at = ma.fields.DateTime()


class PlanSchema(Schema):
    worker_id = Integer()
    week = ma.fields.String()
    as_of = ma.fields.DateTime()
    total = Integer()
    households = ma.fields.List(ma.fields.Nested(PlanStopSchema))


class _UploadedFile(ma.fields.Raw):
    """A file part of the form. A part without a filename is a text field to werkzeug, and
    reached the upload as a string (a 500): it is refused, naming the field."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Must be a file (a form part with a filename).")
        return value


class PhotoUploadSchema(Schema):
    """A photo's multipart body: the file, and the checksum the phone computed."""

    file = _UploadedFile(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"},
    )
    sha256 = ma.fields.String(
        validate=FullMatch(r"^[0-9a-fA-F]{64}$", error="Must be 64 hex digits."),
        metadata={"description": "SHA-256 of the file as the phone computed it (checked)"},
    )


class CadenceSchema(Schema):
    community_code = ma.fields.String(dump_only=True)
    default = Integer(
        required=True,
        validate=ma.validate.Range(1, MAX_PER_WEEK),
        metadata={"description": "Visits per ISO week for every household"},
    )
    tags = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(CARE_TAGS)),
        values=Integer(validate=ma.validate.Range(1, MAX_PER_WEEK)),
        load_default=dict,
        metadata={"description": "Visits per week for households with the tag (the most wins)"},
    )
