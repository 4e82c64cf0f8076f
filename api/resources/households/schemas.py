"""Schemas of the households resource: the register record, its filters and the import result."""

from __future__ import annotations

import marshmallow as ma

from api import privacy
from api.db import PG_INT_MAX
from api.extensions import Float, Integer, Schema
from api.models.households import CARE_TAGS, HOUSEHOLD_KINDS, OCCUPANCIES, REMOVAL_REASONS
from api.resources.schemas import ISO_WEEK, AddressPart, code_field
from api.services import household_files
from api.services.geometry import point_lonlat
from api.services.household_removal import STATUSES
from api.services.households import AT_POINT_M, IMPORT_MODES, MAX_NEAR_M, address_words
from api.services.names import CONTROL_CHARACTERS, INVISIBLE_IN_NAMES, has_control_characters


def check_one_line(value: str) -> None:
    if has_control_characters(value):
        raise ma.ValidationError(CONTROL_CHARACTERS)


class CareTags(ma.fields.List):
    """Care tags, each once (in the order given): a tag listed twice was stored twice."""

    def _deserialize(self, value, attr, data, **kwargs):
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


_TAGS = CareTags(
    ma.fields.String(validate=ma.validate.OneOf(CARE_TAGS)),
    metadata={"description": "Care tags: " + ", ".join(CARE_TAGS) + " (each kept once)"},
)


class Phone(ma.fields.String):
    """A resident's phone as a form sends it, stored as an import row's is
    (`household_files.phone_text`: trimmed, half-width, 无 or - for none); a number Excel
    shortened (1.38E+10, pasted from a sheet) is refused, its digits lost."""

    def _deserialize(self, value, attr, data, **kwargs):
        phone = household_files.phone_text(super()._deserialize(value, attr, data, **kwargs))
        if household_files.SHORTENED_NUMBER.fullmatch(phone):
            raise ma.ValidationError(
                "A number Excel shortened, its digits lost: type the phone in full."
            )
        if len(phone) > 32:
            raise ma.ValidationError("Longer than 32 characters.")
        check_one_line(phone)
        if any(c in INVISIBLE_IN_NAMES for c in phone):
            raise ma.ValidationError(f"The phone {household_files.INVISIBLE_IN_PHONE}.")
        return phone or None


def _phone(household) -> str | None:
    return privacy.phone(household.phone)


class HouseholdVisitStatusSchema(Schema):
    """A household's visit state in a week, as the map's households layer draws its dot."""

    week = ma.fields.String(metadata={"description": "The ISO week asked for"})
    status = ma.fields.String(
        metadata={
            "description": "visited (in the week), overdue (never visited, or last visited 7 "
            "days or more before the end of the week, or now for the current week), else due; "
            "a visit is one that found someone: a nobody_home attempt is not"
        }
    )
    days_since_visit = Integer(
        allow_none=True,
        metadata={"description": "Whole days since the last visit before that time (null: never)"},
    )
    last_visited = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The last visit before the week's end that found someone (outcome "
            "other than nobody_home, as the weekly report counts a visit), Asia/Shanghai"
        },
    )
    last_attempt = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The last visit of any outcome before the week's end, nobody_home "
            "attempts included, Asia/Shanghai (null: none)"
        },
    )


class HouseholdRemovalStateSchema(Schema):
    """How a household left the register."""

    reason = ma.fields.String(
        attribute="removal_reason", metadata={"description": ", ".join(REMOVAL_REASONS)}
    )
    note = ma.fields.Function(
        lambda h: h.removal_note if privacy.disclosure().notes else None,
        allow_none=True,
        metadata={"type": "string", "description": "Withheld from district viewers (null)"},
    )
    effective_date = ma.fields.Date(
        attribute="removal_date", metadata={"description": "The day it left (Asia/Shanghai)"}
    )
    removed_at = ma.fields.DateTime(
        metadata={
            "description": "When it left the register: the end of the effective date, or the "
            "removal's time when that is today; visits dated from then on are refused"
        }
    )
    removed_by_id = Integer(allow_none=True)
    erased_at = ma.fields.DateTime(
        allow_none=True,
        metadata={
            "description": "When retention erased its phone, care tags and note (then the "
            "removal can no longer be undone)"
        },
    )


def _removal(household):
    return household if household.removed_at is not None else None


class WindowHouseholdSchema(Schema):
    """A household as the hall window sees it: where the request is placed, nothing more
    (the register's other facts are `HouseholdSchema`'s)."""

    id = Integer()
    grid_code = ma.fields.Function(lambda h: h.grid.code, metadata={"type": "string"})
    building = ma.fields.String()
    unit = ma.fields.String()
    floor = ma.fields.String()
    room = ma.fields.String()
    lon = ma.fields.Function(
        lambda h: point_lonlat(h.location)[0], metadata={"type": "number", "description": "WGS-84"}
    )
    lat = ma.fields.Function(
        lambda h: point_lonlat(h.location)[1], metadata={"type": "number", "description": "WGS-84"}
    )
    kind = ma.fields.String(metadata={"description": " or ".join(HOUSEHOLD_KINDS)})


class HouseholdSchema(WindowHouseholdSchema):
    grid_id = Integer()
    occupancy = ma.fields.String(metadata={"description": ", ".join(OCCUPANCIES)})
    members = Integer()
    tags = ma.fields.List(ma.fields.String())
    phone = ma.fields.Function(
        _phone,
        allow_none=True,
        metadata={"type": "string", "description": "Masked (138****5678) for district viewers"},
    )
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    visit_status = ma.fields.Nested(
        HouseholdVisitStatusSchema,
        metadata={"description": "Only in a list asked with `week`: the visit state in it"},
    )
    removal = ma.fields.Function(
        lambda h: HouseholdRemovalStateSchema().dump(_removal(h)) if _removal(h) else None,
        allow_none=True,
        metadata={
            "type": "object",
            "description": "null while in the register; out of it, how it left "
            "(reason, note, effective_date, removed_at, removed_by_id, erased_at)",
        },
    )


class HouseholdRemovalSchema(Schema):
    """A household leaving the register."""

    reason = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(REMOVAL_REASONS),
        metadata={"description": "Why: " + ", ".join(REMOVAL_REASONS)},
    )
    note = ma.fields.String(
        validate=[ma.validate.Length(max=200), check_one_line],
        metadata={"description": "What the office should know (at most 200 characters)"},
    )
    effective_date = ma.fields.Date(
        metadata={
            "description": "The day it left (Asia/Shanghai; default today): not in the future, "
            "not before it was registered nor before its last visit"
        }
    )


class HouseholdFactsSchema(Schema):
    """A household's address, point and register facts, each optional (a PATCH's)."""

    building = AddressPart(validate=ma.validate.Length(min=1, max=50))
    unit = AddressPart(validate=ma.validate.Length(max=20))
    floor = AddressPart(validate=ma.validate.Length(max=10))
    room = AddressPart(validate=ma.validate.Length(max=20))
    lon = Float(allow_nan=False)
    lat = Float(allow_nan=False)
    kind = ma.fields.String(validate=ma.validate.OneOf(HOUSEHOLD_KINDS))
    occupancy = ma.fields.String(validate=ma.validate.OneOf(OCCUPANCIES))
    members = Integer(validate=ma.validate.Range(min=0, max=100))
    tags = _TAGS
    phone = Phone(
        allow_none=True,
        metadata={
            "maxLength": 32,
            "description": "Trimmed, half-width; 无, - or an empty string for none (null)",
        },
    )


class ExpectedFactsSchema(Schema):
    """The facts as the sender read them: a correction from the door goes only if they still
    are (or already are what it sends)."""

    occupancy = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(OCCUPANCIES))
    members = Integer(allow_none=True, validate=ma.validate.Range(min=0, max=100))


class HouseholdPatchSchema(HouseholdFactsSchema):
    # The care tags changed rather than the whole list: the worker at the door changes the tags
    # the app showed; another tag the office set meanwhile stays (a whole list read before it
    # took it off again). Sent twice, the second changes nothing more.
    add_tags = CareTags(
        ma.fields.String(validate=ma.validate.OneOf(CARE_TAGS)),
        metadata={"description": "Care tags to add (those it has stay); not with `tags`"},
    )
    remove_tags = CareTags(
        ma.fields.String(validate=ma.validate.OneOf(CARE_TAGS)),
        metadata={"description": "Care tags to take off (any others stay); not with `tags`"},
    )

    expected = ma.fields.Nested(
        ExpectedFactsSchema,
        metadata={
            "description": "Occupancy and members as the sender read them (null: none "
            "recorded): a fact changed since is a 409 naming it (`changed`, its value now), "
            "nothing changed; one already what is sent is no conflict"
        },
    )

    @ma.validates_schema
    def _tags_one_way(self, data, **kwargs):
        changes = [k for k in ("add_tags", "remove_tags") if k in data]
        if "tags" in data and changes:
            message = "Give the whole list (tags) or the changes (add_tags, remove_tags)."
            raise ma.ValidationError({k: [message] for k in ("tags", *changes)})
        both = set(data.get("add_tags", ())) & set(data.get("remove_tags", ()))
        if both:
            message = f"A tag is added or taken off, not both: {', '.join(sorted(both))}."
            raise ma.ValidationError({k: [message] for k in changes})


class HouseholdCreateSchema(HouseholdFactsSchema):
    building = AddressPart(required=True, validate=ma.validate.Length(min=1, max=50))
    lon = Float(required=True, allow_nan=False)
    lat = Float(required=True, allow_nan=False)


def check_address_words(value: str) -> None:
    if not 1 <= len(address_words(value)) <= 4:
        raise ma.ValidationError(
            "Give one to four words of the address (building, unit, floor, room)."
        )


_ADDRESS_WORDS_DOC = (
    "Words (at most 4; split at spaces, commas and after a number's "
    "suffix: 3号楼2单元502 is three) each of which is one of the "
    "household's parts, in any order, compared as the import compares them and without "
    "what a clerk writes after a number (号楼, 栋, 单元, 层, 室): `7号楼 2单元 502` "
    "finds building 7, unit 2, room 0502"
)


def _address_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(
        validate=[ma.validate.Length(max=100), check_address_words, check_one_line],
        metadata={"description": _ADDRESS_WORDS_DOC},
        **kwargs,
    )


class WindowLookupArgsSchema(Schema):
    address = _address_field(required=True)


class HouseholdQueryArgsSchema(Schema):
    grid = code_field(15, metadata={"description": "Only this grid (15-digit code)"})
    grid_id = Integer(
        validate=ma.validate.Range(1, PG_INT_MAX),
        metadata={"description": "Only this grid, by id (as the map's features name it)"},
    )
    tags = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(CARE_TAGS)),
        metadata={"description": "Households carrying any of these tags (repeat the parameter)"},
    )
    kind = ma.fields.String(validate=ma.validate.OneOf(HOUSEHOLD_KINDS))
    lon = Float(
        allow_nan=False,
        validate=ma.validate.Range(-180, 180),
        metadata={
            "description": "With `lat`: only households within `within_m` of this point "
            "(WGS-84): a stair entrance's flats share its point"
        },
    )
    lat = Float(allow_nan=False, validate=ma.validate.Range(-90, 90))
    within_m = Float(
        allow_nan=False,
        validate=ma.validate.Range(0, MAX_NEAR_M, min_inclusive=False),
        metadata={
            "description": f"Metres from `lon`, `lat` (default {AT_POINT_M:g}: the point, a "
            f"map tile's rounding included; at most {MAX_NEAR_M:g})"
        },
    )
    week = ma.fields.String(
        validate=ISO_WEEK,
        metadata={
            "description": "Each household's visit state in this ISO week (`visit_status`), "
            "as the map draws it"
        },
    )
    address = _address_field()
    status = ma.fields.String(
        load_default="active",
        validate=ma.validate.OneOf(STATUSES),
        metadata={
            "description": "active (the default): in the register; removed: out of it; all. "
            "removed and all are for grid leaders, admins and viewers (a worker: 403)"
        },
    )

    @ma.validates_schema
    def _point(self, data, **kwargs):
        if ("lon" in data) != ("lat" in data):
            raise ma.ValidationError("Give both lon and lat, or neither.", "lon")
        if "within_m" in data and "lon" not in data:
            raise ma.ValidationError("Give the point (lon and lat) to measure from.", "within_m")


class HouseholdExportArgsSchema(Schema):
    format = ma.fields.String(
        load_default="xlsx",
        validate=ma.validate.OneOf(("xlsx", "csv")),
        metadata={"description": "xlsx (the default) or csv (UTF-8 with a BOM)"},
    )
    grid = code_field(15, metadata={"description": "Only this grid (15-digit code)"})


class HouseholdImportFileSchema(Schema):
    file = ma.fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "CSV or XLSX register"},
    )


class HouseholdImportArgsSchema(Schema):
    mode = ma.fields.String(
        load_default="create",
        validate=ma.validate.OneOf(IMPORT_MODES),
        metadata={
            "description": "create (the default): a row of a registered household is refused; "
            "update: it edits that household (a changed register imported again)"
        },
    )


class HouseholdImportResultSchema(Schema):
    created = Integer(metadata={"description": "Households created"})
    by_grid = ma.fields.Dict(
        keys=ma.fields.String(),
        values=Integer(),
        metadata={"description": "Households created, by grid code"},
    )
    updated = Integer(
        metadata={"description": "Households edited by their row (update mode; else 0)"}
    )
    unchanged = Integer(
        metadata={"description": "Rows equal to their household, which changed nothing"}
    )
    header_row = Integer(
        metadata={
            "description": "The row the file's header ends on: the rows above it (a title, "
            "填报单位 and 日期 lines) were skipped; two header rows end on the second"
        }
    )
    ignored_columns = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "Headings of the file's columns the import does not read (序号, "
            "备注, a heading it does not know, or another name of a column the file also has "
            "under its own: 手机 beside 电话)"
        },
    )
    note_rows = ma.fields.List(
        Integer(),
        metadata={
            "description": "Rows under the header taken for a template's notes and not read: "
            "rows of hints only (必填, 选填, 例：7号楼, 格式：…) or a sample household marked "
            "示例, before the first household"
        },
    )
