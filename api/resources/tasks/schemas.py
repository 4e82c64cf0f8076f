"""Schemas of the tasks resource: creation, the task with its events, transitions, the rates."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import marshmallow as ma
from flask import request

from api import privacy
from api.auth import current_scope
from api.clock import now
from api.extensions import Boolean, Float, Integer, Schema, db
from api.models.tasks import (
    HOTLINE_TYPES,
    SATISFACTION,
    TASK_LISTS,
    TASK_SOURCES,
    TASK_STATUSES,
    URGENCIES,
    URGENCY_DEFAULT,
    TaskPhoto,
)
from api.resources.grids.schemas import WindowGridPropertiesSchema, WindowGridSchema
from api.resources.households.schemas import check_address_words
from api.resources.schemas import FullMatch, code_field
from api.services.campaigns import MAX_GRIDS
from api.services.geometry import point_lonlat
from api.services.names import CONTROL_CHARACTERS, INVISIBLE, has_control_characters
from api.services.task_lists import LIST_FIGURES
from api.services.tasks import ACTIONS, caller_actions, is_overdue, task_actions
from api.services.users import USER_ID_PATTERN
from api.services.weeks import LOCAL
from api.sheets import TABLE_TYPES


def _lonlat(element) -> dict | None:
    if element is None:
        return None
    lon, lat = point_lonlat(element)
    return {"lon": lon, "lat": lat}


def _track(element) -> dict | None:
    """Where a worker stood for a step of a task: part of their location track, to about
    100 m for roles without `tracks` (as a visit's position)."""
    if element is None:
        return None
    lon, lat = privacy.track_point(*point_lonlat(element))
    return {"lon": lon, "lat": lat}


# Per request: each linked task's id -> whether the caller may see that task.
_LINKS_SEEN = "gridwork.task_links_seen"


# A point as answers give it (WGS-84), or null.
_POINT = {
    "type": "object",
    "nullable": True,
    "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}},
}
# A list of actions, as the OpenAPI document types it (a Function field is untyped there).
_ACTION_LIST = {
    "type": "array",
    "items": {"type": "string", "enum": [*ACTIONS, "assign", "move"]},
}


def _decide_links(task_ids: Iterable[int | None]) -> dict[int, bool]:
    """Whether the caller may see each of these linked tasks: one query for them all, kept
    for the request (`_seen` reads it)."""
    seen = request.environ.setdefault(_LINKS_SEEN, {})
    wanted = {task_id for task_id in task_ids if task_id is not None}
    if wanted:
        visible = current_scope().visible_tasks(db.session, wanted)
        seen.update({task_id: task_id in visible for task_id in wanted})
    return seen


def _seen(task_id: int | None) -> int | None:
    """A linked task's id, for one who may see that task (it is in another community)."""
    if task_id is None:
        return None
    seen = request.environ.get(_LINKS_SEEN, {})
    if task_id not in seen:  # dumped without TaskSchema's pre_dump
        seen = _decide_links([task_id])
    return task_id if seen[task_id] else None


def _link(attribute: str, way: str) -> ma.fields.Function:
    """A re-dispatch link to another community's task, shown to those who may see that task."""
    return ma.fields.Function(
        lambda t: _seen(getattr(t, attribute)),
        allow_none=True,
        metadata={
            "type": "integer",
            "description": "The task of another community this hotline ticket was re-dispatched "
            f"{way}; null if none or if it is not yours to see",
        },
    )


def _task_location(task) -> dict | None:
    # A premises visit's follow-up task is placed where the worker stood (task_from_visit):
    # that point is part of the worker's track. Other tasks stand at a household or at a
    # place someone gave.
    if task.source == "visit" and task.household_id is None:
        return _track(task.location)
    return _lonlat(task.location)


class LocationSchema(Schema):
    lon = Float(required=True, allow_nan=False, metadata={"description": "WGS-84"})
    lat = Float(required=True, allow_nan=False, metadata={"description": "WGS-84"})


def _one_line(value: str) -> None:
    if has_control_characters(value):
        raise ma.ValidationError(CONTROL_CHARACTERS)


def _no_nul(value: str) -> None:
    # Free text (details: newlines and tabs welcome) refuses only NUL, as a visit's notes do.
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")


_DROP_INVISIBLE = dict.fromkeys(map(ord, INVISIBLE))
BLANK = "Must not be blank."


def _not_blank(value: str) -> None:
    # Zero-width characters (a chat app's U+200B) show as nothing, as spaces do.
    if not value.translate(_DROP_INVISIBLE).strip():
        raise ma.ValidationError(BLANK)


# A task's title: the column's length (`Task.title`). One line, not blank: a title of spaces
# told the task from no other in a list, and a newline or a bidirectional override broke or
# disguised the lists and reports showing it. A visit's follow-up title becomes a task's title,
# so it is checked by these very rules (`VisitItemSchema`, and its fast path).
TITLE_MAX = 200
TITLE_RULES = (ma.validate.Length(min=1, max=TITLE_MAX), _not_blank, _one_line)


def task_title(**kwargs) -> ma.fields.String:
    """A task's title, as `POST /tasks` takes it: 1-200 characters of one line, not blank."""
    return ma.fields.String(validate=list(TITLE_RULES), **kwargs)


def task_urgency(**kwargs) -> ma.fields.String:
    """A task's urgency (`URGENCIES`), which sets its deadline."""
    return ma.fields.String(validate=ma.validate.OneOf(URGENCIES), **kwargs)


# A complainant's entry (their name, their phone): one line, as a form's box holds it.
COMPLAINANT_VALUE_MAX = 200


class TicketNumber(ma.fields.String):
    """A ticket number as the office types or pastes it from the 12345 platform: full-width
    characters half-width (NFKC: an IME's １２３４５, its full-width space a space), invisible
    characters (a chat app's U+200B) dropped, the spaces around it trimmed. Taken as sent, a
    number with a space around it was another ticket: a second task, past the repeat check."""

    def _deserialize(self, value, attr, data, **kwargs):
        typed = super()._deserialize(value, attr, data, **kwargs)
        return unicodedata.normalize("NFKC", typed).translate(_DROP_INVISIBLE).strip(" ")


def aware_time(**kwargs) -> ma.fields.AwareDateTime:
    """A moment given with its UTC offset; a naive one is a 422 that says how to write it."""
    messages = {"invalid_awareness": "Give the time with its UTC offset (+08:00)."}
    return ma.fields.AwareDateTime(error_messages=messages, **kwargs)


def ticket_number(**kwargs) -> ma.fields.String:
    """A ticket number (`external_id`) as stored and as looked up (`TicketNumber`): 1-64
    characters of one line. One with a control character would be refused by the database
    (NUL, naming no field) or stored where no lookup finds it (a newline)."""
    return TicketNumber(
        validate=[ma.validate.Length(min=1, max=64), _one_line],
        **kwargs,
    )


_LIST = (
    "The list the task is on: `need` (需求清单, a resident's wish) or `problem` (问题清单, "
    "something broken or wrong to fix); a visit's follow-up is on one always"
)


# The sources a task is posted with: a visit's follow-up ("visit") is opened by its visit.
POSTED_SOURCES = tuple(source for source in TASK_SOURCES if source != "visit")


class TaskCreateSchema(Schema):
    source = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(POSTED_SOURCES),
        metadata={
            "description": ", ".join(POSTED_SOURCES)
            + " (a visit's follow-up, source visit, is opened by its visit)"
        },
    )
    type = ma.fields.String(
        validate=ma.validate.OneOf(HOTLINE_TYPES),
        metadata={
            "description": "Request type (required for hotline): " + ", ".join(HOTLINE_TYPES)
        },
    )
    title = task_title(
        required=True,
        metadata={"description": f"1-{TITLE_MAX} characters of one line, not blank"},
    )
    # A NUL was stored (sealed) and handed back as sent.
    description = ma.fields.String(validate=[ma.validate.Length(max=10000), _no_nul])
    urgency = task_urgency(
        load_default=URGENCY_DEFAULT,
        metadata={"description": "Sets the deadline: " + ", ".join(URGENCIES)},
    )
    external_id = ticket_number(
        metadata={
            "description": "The hotline ticket number (required for hotline; one task per "
            "ticket system-wide), or another source's reference (a window's request number: "
            "one task per reference within the community)"
        },
    )
    redispatch = Boolean(
        load_default=False,
        metadata={
            "description": "The hotline re-dispatched (改派) this ticket here from another "
            "community: its task there is passed on as `transferred`. Without it, a ticket "
            "another community holds is a 409 (a ticket number typed twice never takes a "
            "ticket from anyone). The community admin's word only (else a 403)"
        },
    )
    # Stored as sent before: a NUL, a newline, 5,000 digits for a phone.
    complainant = ma.fields.Dict(
        keys=ma.fields.String(validate=[ma.validate.Length(min=1, max=50), _one_line]),
        values=ma.fields.String(
            validate=[ma.validate.Length(max=COMPLAINANT_VALUE_MAX), _one_line]
        ),
        metadata={
            "description": "The resident's contact, e.g. {name, phone}: each entry one line "
            f"of up to {COMPLAINANT_VALUE_MAX} characters"
        },
    )
    household_id = Integer(metadata={"description": "The household concerned"})
    location = ma.fields.Nested(
        LocationSchema, metadata={"description": "Where, when there is no household"}
    )
    list_kind = ma.fields.String(
        data_key="list",
        validate=ma.validate.OneOf(TASK_LISTS),
        metadata={
            "description": f"{_LIST}. A resident's wish told at the window, a problem a "
            "worker found on rounds: counted in the lists as a visit's follow-up is. "
            "Absent: on no list"
        },
    )
    resolved_here = Boolean(
        load_default=False,
        metadata={
            "description": "A walk-in request settled at the window as it was registered (一窗"
            "受理、一次办结: a certificate issued, a question answered): the task is the "
            "caller's, answered and resolved now, not dispatched; the grid's leader makes the "
            "return call. Only `window` requests, only by the worker at the window today "
            "(the A-post of the published roster), else a 403"
        },
    )
    due_at = aware_time(
        metadata={
            "description": "Hotline tickets: the time limit (办理时限) the hotline dispatched the "
            "ticket with, after now and within 90 days; without it the urgency sets the "
            "deadline. A first-contact deadline later than it is brought forward to it"
        },
    )

    @ma.validates_schema
    def _hotline(self, data, **kwargs):
        if data.get("due_at") is not None and data.get("source") != "hotline":
            raise ma.ValidationError(
                {"due_at": ["Only a hotline ticket brings its own deadline; the urgency sets it."]}
            )
        if data.get("resolved_here") and data.get("source") != "window":
            raise ma.ValidationError(
                {"resolved_here": ["Only a walk-in request (source window) is settled there."]}
            )
        if data.get("source") == "hotline":
            missing = {k: ["Required for hotline tasks."] for k in ("type", "external_id")}
            missing = {k: v for k, v in missing.items() if not data.get(k)}
            if missing:
                raise ma.ValidationError(missing)
        if data.get("household_id") is None and data.get("location") is None:
            raise ma.ValidationError({"location": ["Give household_id or location."]})


def _photo_url(photo) -> str:
    return f"/api/v1/tasks/{photo.task_id}/photos/{photo.id}"


class PhotoItem(ma.fields.Field):
    """One of a step's photos: the id of a photo of the task uploaded first (an integer), or a
    reference kept as sent (1-500 characters: a client's URL or storage key)."""

    default_error_messages = {
        "invalid": "A photo is the id of a photo of the task you uploaded, or a reference of "
        "1-500 characters."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and 1 <= len(value) <= 500 and not has_control_characters(value):
            return value
        raise self.make_error("invalid")


class TaskPhotoSchema(Schema):
    id = Integer()
    task_id = Integer()
    event_id = Integer(
        allow_none=True, metadata={"description": "The step it was sent with; null: none yet"}
    )
    sha256 = ma.fields.String()
    content_type = ma.fields.String()
    size_bytes = Integer()
    created_at = ma.fields.DateTime()
    url = ma.fields.Function(
        _photo_url,
        metadata={"type": "string", "description": "GET it with your token: the image bytes"},
    )


class TaskPhotoUploadResultSchema(TaskPhotoSchema):
    duplicate = Boolean(
        metadata={"description": "The same image was already a photo of the task (this one)"}
    )


class TaskEventSchema(Schema):
    id = Integer()
    action = ma.fields.String()
    from_status = ma.fields.String(allow_none=True)
    to_status = ma.fields.String()
    actor_id = Integer(allow_none=True, metadata={"description": "None: the system"})
    note = ma.fields.String()
    location = ma.fields.Function(
        lambda e: _track(e.location),
        metadata={
            **_POINT,
            "description": "Where the worker stood; to ~100 m for district viewers",
        },
    )
    photos = ma.fields.Function(
        lambda e: [*e.photo_refs, *(_photo_url(p) for p in e.photos)],
        metadata={
            "type": "array",
            "items": {"type": "string"},
            "description": "The step's photos as strings: the references it was given, as "
            "sent (a client's URL or storage key, nothing served here), then the URL of each "
            "photo uploaded for it (`attachments`)",
        },
    )
    attachments = ma.fields.List(
        ma.fields.Nested(TaskPhotoSchema),
        attribute="photos",
        metadata={
            "description": "The photos uploaded and sent with the step, each read at its `url`"
        },
    )
    at = ma.fields.DateTime(metadata={"description": "When the server recorded the step"})
    taken_at = ma.fields.DateTime(
        allow_none=True,
        metadata={
            "description": "When the step was taken, as the phone that kept it with no signal "
            "said (bounded: see the transition's `taken_at`); null: sent with no time of its "
            "own, taken at `at`"
        },
    )


class TaskSchema(Schema):
    id = Integer()
    source = ma.fields.String()
    type = ma.fields.String()
    title = ma.fields.String()
    description = ma.fields.Function(
        lambda t: privacy.note(t.description) if t.source == "visit" else t.description,
        allow_none=True,
        metadata={
            "type": "string",
            "description": "A visit's follow-up note (source visit) is withheld (null) from "
            "roles that do not read visit notes",
        },
    )
    urgency = ma.fields.String()
    external_id = ma.fields.String(allow_none=True)
    complainant = ma.fields.Function(
        lambda t: privacy.complainant(t.complainant, current_scope().reaches_complainant(t)),
        allow_none=True,
        metadata={
            "type": "object",
            "description": "Name and phone masked for district viewers, and for a worker or "
            "leader reading a task they worked in a grid they left, once it is done",
        },
    )
    household_id = Integer(allow_none=True)
    visit_id = ma.fields.UUID(allow_none=True)
    list_kind = ma.fields.String(
        data_key="list",
        allow_none=True,
        metadata={
            "enum": [*TASK_LISTS, None],
            "description": f"{_LIST}; null: on no list",
        },
    )
    grid_id = Integer()
    grid_code = ma.fields.Function(lambda t: t.grid.code, metadata={"type": "string"})
    location = ma.fields.Function(
        _task_location,
        metadata={
            **_POINT,
            "description": "WGS-84; a premises visit's follow-up task stands where the worker "
            "stood: to ~100 m for district viewers",
        },
    )
    status = ma.fields.String(metadata={"description": ", ".join(TASK_STATUSES)})
    assignee_id = Integer(allow_none=True)
    assignee_name = ma.fields.Function(
        lambda t: (t.assignee.display_name or t.assignee.username) if t.assignee else None,
        allow_none=True,
        metadata={
            "type": "string",
            "description": "Who holds the task, by name: the window worker tells the resident "
            "who will call them (a worker cannot look up other accounts)",
        },
    )
    created_by_id = Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    first_contact_due_at = ma.fields.DateTime(allow_none=True)
    first_contact_at = ma.fields.DateTime(allow_none=True)
    due_at = ma.fields.DateTime()
    ticket_due_at = ma.fields.DateTime(
        allow_none=True,
        dump_only=True,
        metadata={
            "description": "The deadline (办理时限) the 12345 hotline set for this ticket, "
            "given as `due_at` when it was opened or changed since (`PUT .../deadline`); a "
            "reopening keeps it. null: the urgency set `due_at`"
        },
    )
    warned_at = ma.fields.DateTime(allow_none=True)
    contact_warned_at = ma.fields.DateTime(
        allow_none=True,
        dump_only=True,
        metadata={
            "description": "When whoever answers for the task was warned that its first contact "
            "was near (the tick, at 80 % of the time; cleared for a new holder)"
        },
    )
    contact_overdue_at = ma.fields.DateTime(
        allow_none=True,
        dump_only=True,
        metadata={
            "description": "When the tick found the first-contact deadline passed with no "
            "contact, and told the grid's overseers (once)"
        },
    )
    escalated_at = ma.fields.DateTime(allow_none=True)
    resolved_at = ma.fields.DateTime(allow_none=True)
    closed_at = ma.fields.DateTime(allow_none=True)
    satisfaction = ma.fields.String(allow_none=True)
    overdue = ma.fields.Function(
        lambda t: is_overdue(t, now()),
        metadata={"type": "boolean", "description": "Not resolved and past its deadline"},
    )
    transferred_from_id = _link("transferred_from_id", "(改派) from")
    transferred_to_id = _link("transferred_to_id", "to")
    transferred_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When the hotline re-dispatched this task's ticket onwards"},
    )
    allowed_actions = ma.fields.Function(
        task_actions,
        metadata={**_ACTION_LIST, "description": "Actions legal from the current status"},
    )
    your_actions = ma.fields.Function(
        lambda t: caller_actions(current_scope(), t),
        metadata={
            **_ACTION_LIST,
            "description": "Of `allowed_actions`, those you may take: the assignee's (accept, "
            "start, resolve, return, escalate) if it is yours; the grid leader's and community "
            "admin's (callback, close, reopen, assign, move; escalate too) if you lead its grid",
        },
    )

    @ma.pre_dump(pass_collection=True)
    def _links(self, data, many: bool, **kwargs):
        # The links of a whole page decided in one query, not one per link.
        tasks = data if many else [data]
        _decide_links(i for t in tasks for i in (t.transferred_from_id, t.transferred_to_id))
        return data


class TaskDetailSchema(TaskSchema):
    events = ma.fields.List(ma.fields.Nested(TaskEventSchema))


class TaskQueryArgsSchema(Schema):
    assignee = ma.fields.String(
        validate=FullMatch(f"^(me|none|{USER_ID_PATTERN})$", error="me, none or a user id"),
        metadata={
            "description": "me, none (unassigned and open: waiting to be assigned), or a user id"
        },
    )
    status = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(TASK_STATUSES)),
        metadata={"description": "Any of these statuses (repeat the parameter)"},
    )
    grid = code_field(15, metadata={"description": "Only this grid (15-digit code)"})
    overdue = Boolean(metadata={"description": "Only overdue (true) or not (false)"})
    source = ma.fields.String(validate=ma.validate.OneOf(TASK_SOURCES))
    list_kind = ma.fields.String(
        data_key="list",
        validate=ma.validate.OneOf(TASK_LISTS),
        metadata={"description": f"Only the tasks on this list. {_LIST}"},
    )
    created_by = ma.fields.String(
        validate=ma.validate.OneOf(["me"], error="me (the tasks you opened)"),
        metadata={"description": "me: only the tasks you opened (the window's requests)"},
    )
    created_on = ma.fields.Date(
        metadata={"description": "Only the tasks opened on this day (Asia/Shanghai), YYYY-MM-DD"}
    )
    external_id = ticket_number(
        metadata={
            "description": "Only the task(s) of this 12345 ticket number (or other source's "
            "reference), exactly as it was sent when the task was opened (`external_id`): the "
            "task holding it, and one it was re-dispatched (改派) from, each if yours to see"
        },
    )
    week = ma.fields.String(
        validate=FullMatch(r"^[0-9]{4}-W[0-9]{2}$", error="An ISO week, e.g. 2026-W48."),
        metadata={
            "description": "Only the tasks opened in this ISO week (Asia/Shanghai), e.g. "
            "2026-W48: the tasks the week's rates and coverage report count"
        },
    )
    community = code_field(
        12, metadata={"description": "Only the tasks of this community (12-digit code)"}
    )
    street = code_field(
        9,
        metadata={
            "description": "Only the tasks of this street's communities (9-digit code): a "
            "street office's week"
        },
    )
    sort = ma.fields.String(
        load_default="due",
        validate=ma.validate.OneOf(["due", "newest"]),
        metadata={
            "description": "due (default): soonest deadline first; newest: last opened first"
        },
    )


class TaskExportArgsSchema(TaskQueryArgsSchema):
    format = ma.fields.String(
        load_default="xlsx",
        validate=ma.validate.OneOf(tuple(TABLE_TYPES)),
        metadata={"description": "xlsx (the default) or csv (UTF-8 with a BOM)"},
    )


class TransitionSchema(Schema):
    action = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(ACTIONS),
        metadata={"description": ", ".join(ACTIONS)},
    )
    # A step's note is free text as a description is: a NUL was stored (sealed) and handed
    # back in the task's history.
    note = ma.fields.String(load_default="", validate=[ma.validate.Length(max=10000), _no_nul])
    location = ma.fields.Nested(LocationSchema)
    photos = ma.fields.List(
        PhotoItem(),
        validate=ma.validate.Length(max=TaskPhoto.MAX_PER_OWNER),
        metadata={
            "description": "The step's photos: ids (integers) of photos of this task you "
            "uploaded (`POST /tasks/{id}/photos`) and sent with no other step, and references "
            "(strings of 1-500 characters: your own URLs or storage keys) kept as sent",
            "items": {"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 500}]},
        },
    )
    satisfaction = ma.fields.String(
        validate=ma.validate.OneOf(SATISFACTION),
        metadata={"description": "With callback: " + ", ".join(SATISFACTION)},
    )
    taken_at = aware_time(
        metadata={
            "description": "When the step was taken, if it waited on the phone before it was "
            "sent (no signal): what it settles (the contact made, the resolution, the close) "
            "is dated then, so work done before the deadline and synced after it is on time. "
            "Taken as the phone's word between the last step it acted on (the dispatch, an "
            "assign, a move, a reopen, any person's step) and now; a time outside is brought "
            "to the nearer bound. "
            "The event keeps it as `taken_at` beside `at`, when the server recorded it"
        },
    )


class CampaignSchema(Schema):
    """A check opened in every grid at once (未诉先办): `POST /communities/{code}/campaigns`."""

    title = TaskCreateSchema._declared_fields["title"]
    description = TaskCreateSchema._declared_fields["description"]
    type = ma.fields.String(
        load_default="report",
        validate=ma.validate.OneOf(HOTLINE_TYPES),
        metadata={"description": "Request type, default report: " + ", ".join(HOTLINE_TYPES)},
    )
    urgency = TaskCreateSchema._declared_fields["urgency"]
    grids = ma.fields.List(
        code_field(15),
        validate=ma.validate.Length(min=1, max=MAX_GRIDS),
        metadata={
            "description": "The grids (15-digit codes) to open it in; default every grid in "
            "service of the community that you lead (an admin: all of them)"
        },
    )


class CampaignResultSchema(Schema):
    created = Integer(metadata={"description": "Tasks opened, one a grid"})
    tasks = ma.fields.List(ma.fields.Nested(TaskSchema))


class DeadlineSchema(Schema):
    due_at = aware_time(
        required=True,
        metadata={
            "description": "The ticket's new time limit (办理时限) as the 12345 hotline set it "
            "(延期, or a correction): after now and within 90 days, as at creation"
        },
    )
    note = ma.fields.String(
        load_default="",
        validate=[ma.validate.Length(max=10000), _no_nul],
        metadata={"description": "Why, e.g. the hotline's approval of an extension"},
    )


class AssignSchema(Schema):
    assignee_id = Integer(required=True)
    note = ma.fields.String(load_default="", validate=[ma.validate.Length(max=10000), _no_nul])


class MoveSchema(Schema):
    grid_code = code_field(
        15,
        required=True,
        metadata={"description": "The grid of the same community the task belongs in (15 digits)"},
    )
    reason = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=1, max=10000), _no_nul],
        metadata={"description": "Why it moves (the address it was opened for was wrong)"},
    )
    location = ma.fields.Nested(
        LocationSchema,
        metadata={
            "description": "Where the task stands now, inside the new grid; its household (the "
            "wrong address) is let go unless `household_id` names the right one"
        },
    )
    household_id = Integer(
        metadata={
            "description": "The right household, in the new grid: the task stands at it "
            "(unless `location` is given too). Without `location`, `household_id` or `address` "
            "the task keeps its place, which must lie in the new grid"
        },
    )
    address = ma.fields.String(
        validate=[ma.validate.Length(max=100), check_address_words, _one_line],
        metadata={
            "description": "The right household's address (7号楼 2单元 502), for a mover who "
            "may not look the new grid's households up: the one household of the new grid in "
            "the register at it is taken as `household_id` would be (none, or several: a 422 "
            "naming `address`). Not with `household_id`"
        },
    )

    @ma.validates_schema
    def _one_household(self, data, **kwargs):
        if "address" in data and "household_id" in data:
            message = "Name the household by its id or by its address, not both."
            raise ma.ValidationError({"address": [message], "household_id": [message]})


class MoveGridPropertiesSchema(WindowGridPropertiesSchema):
    yours = Boolean(
        metadata={
            "description": "One of your grids: its households are yours to look up and name as "
            "`household_id`; in any grid the task moves to the household at an `address`, with "
            "a `location` in it, or at its place if that lies in it"
        }
    )


class MoveGridSchema(WindowGridSchema):
    properties = ma.fields.Nested(MoveGridPropertiesSchema)


class MoveGridCollectionSchema(Schema):
    """The grids a task may move to, as outlines: its community's active grids but its own."""

    type = ma.fields.Constant(
        "FeatureCollection", metadata={"type": "string", "enum": ["FeatureCollection"]}
    )
    features = ma.fields.List(ma.fields.Nested(MoveGridSchema))


class GridOrCommunityArgsSchema(Schema):
    """One grid or one community, of the caller's (the rates, what recurs)."""

    grid = code_field(15, metadata={"description": "One grid (15-digit code)"})
    community = code_field(12, metadata={"description": "One community (12-digit code)"})

    @ma.validates_schema
    def _one_selection(self, data, **kwargs):
        if bool(data.get("grid")) == bool(data.get("community")):
            raise ma.ValidationError({"grid": ["Give grid or community (one of them)."]})


class PeriodArgsSchema(GridOrCommunityArgsSchema):
    """One grid or community, for an ISO week or a period [start, end) (the rates, the lists)."""

    # The community speaks Beijing time: "2026-11-01T00:00:00" is the start of its November
    # (read as UTC, the month's first and last eight hours fell in the wrong month).
    start = ma.fields.AwareDateTime(
        default_timezone=LOCAL,
        metadata={"description": "Opened at or after; without an offset, Asia/Shanghai time"},
    )
    end = ma.fields.AwareDateTime(
        default_timezone=LOCAL,
        metadata={"description": "Opened before; without an offset, Asia/Shanghai time"},
    )
    week = ma.fields.String(
        validate=FullMatch(r"^[0-9]{4}-W[0-9]{2}$"),
        metadata={"description": "An ISO week, e.g. 2026-W48 (instead of start and end)"},
    )

    @ma.validates_schema
    def _one_period(self, data, **kwargs):
        if data.get("week") and (data.get("start") or data.get("end")):
            raise ma.ValidationError({"week": ["Give week, or start and end."]})
        if not data.get("week") and not (data.get("start") and data.get("end")):
            raise ma.ValidationError({"start": ["Give week, or start and end."]})
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise ma.ValidationError({"end": ["end must be after start."]})


class RatesQueryArgsSchema(PeriodArgsSchema):
    source = ma.fields.String(
        validate=ma.validate.OneOf(TASK_SOURCES),
        metadata={
            "description": "Only tasks of this source: `hotline` gives the 12345 tickets' three "
            "rates a community is judged by; every source when omitted"
        },
    )


class ListsQueryArgsSchema(PeriodArgsSchema):
    """The need and problem lists of a grid or community, for a week or a period."""


class ListFiguresSchema(Schema):
    raised = Integer(metadata={"description": "Put on the list in the period"})
    done = Integer(metadata={"description": "Done in the period (resolved, called back, closed)"})
    open = Integer(
        metadata={
            "description": "On the list and not done as the period closed (its end, or now "
            "while it is under way), whenever raised"
        }
    )


def _list_figures(what: str) -> ma.fields.Nested:
    return ma.fields.Nested(ListFiguresSchema, metadata={"description": what})


class GridListsSchema(Schema):
    code = ma.fields.String()
    name = ma.fields.String()
    need = _list_figures("The grid's need list (需求清单)")
    problem = _list_figures("The grid's problem list (问题清单)")


class ListsSchema(Schema):
    start = ma.fields.DateTime()
    end = ma.fields.DateTime()
    grid = ma.fields.String(allow_none=True)
    community = ma.fields.String(allow_none=True)
    need = _list_figures("The need list (需求清单) of every grid answered")
    problem = _list_figures("The problem list (问题清单) of every grid answered")
    grids = ma.fields.List(
        ma.fields.Nested(GridListsSchema),
        metadata={
            "description": "Each grid you can see, in code order, with its lists' "
            + ", ".join(LIST_FIGURES)
        },
    )


class RatesSchema(Schema):
    start = ma.fields.DateTime()
    end = ma.fields.DateTime()
    grid = ma.fields.String(allow_none=True)
    community = ma.fields.String(allow_none=True)
    source = ma.fields.String(allow_none=True, metadata={"description": "null: every source"})
    opened = Integer()
    resolved = Integer()
    overdue = Integer()
    response_rate = Float(allow_none=True, metadata={"description": "percent"})
    resolution_rate = Float(allow_none=True, metadata={"description": "percent"})
    satisfaction_rate = Float(allow_none=True, metadata={"description": "percent"})
    rated = Integer(
        metadata={"description": "The verdicts (callbacks) the satisfaction rate rests on"}
    )


class RecurringQueryArgsSchema(GridOrCommunityArgsSchema):
    weeks = Integer(
        load_default=4,
        validate=ma.validate.Range(1, 26),
        metadata={
            "description": "The span read, in weeks to now (1-26, default 4), beside the "
            "same span before it"
        },
    )


class RecurringPlaceSchema(Schema):
    phrase = ma.fields.String(metadata={"description": "What the tasks there say"})
    grid_code = ma.fields.String(metadata={"description": "The grid most of its tasks are in"})
    lon = Float(metadata={"description": "The tasks' centre (WGS-84)"})
    lat = Float()
    radius_m = Float(metadata={"description": "The centre to the farthest task, in metres"})
    building = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The building of its grid's registered entrance nearest the centre "
            "(within 50 m; null if none)"
        },
    )
    unit = ma.fields.String(allow_none=True, metadata={"description": "That entrance's unit"})
    tasks = Integer(metadata={"description": "Tasks there saying it in the span"})
    previous = Integer(
        metadata={"description": "Tasks saying it within reach of them the span before"}
    )
    sources = ma.fields.Dict(keys=ma.fields.String(), values=Integer())
    task_ids = ma.fields.List(Integer(), metadata={"description": "Newest first"})


class RecurringWordSchema(Schema):
    phrase = ma.fields.String()
    tasks = Integer(metadata={"description": "Tasks whose title says it in the span"})
    previous = Integer(metadata={"description": "The span before"})
    task_ids = ma.fields.List(Integer(), metadata={"description": "Newest first"})


class RecurringSchema(Schema):
    grid = ma.fields.String(allow_none=True)
    community = ma.fields.String(allow_none=True)
    weeks = Integer()
    start = ma.fields.DateTime()
    end = ma.fields.DateTime()
    previous_start = ma.fields.DateTime()
    tasks = Integer(metadata={"description": "Tasks opened in the span (re-dispatched ones not)"})
    previous_tasks = Integer()
    places = ma.fields.List(
        ma.fields.Nested(RecurringPlaceSchema),
        metadata={
            "description": "A phrase three tasks or more say within 50 m of each other, "
            "rising first"
        },
    )
    words = ma.fields.List(
        ma.fields.Nested(RecurringWordSchema),
        metadata={"description": "What three titles or more say, rising first"},
    )


MAX_TASK_HOURS = 90 * 24  # a quarter: the longest any deadline is set


def _hours_by_urgency(what: str) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(URGENCIES)),
        values=Float(
            validate=ma.validate.Range(min=0, min_inclusive=False, max=MAX_TASK_HOURS),
            allow_nan=False,
        ),
        metadata={"description": f"Hours {what}, by urgency ({', '.join(URGENCIES)})"},
    )


class TaskTypeHoursSchema(Schema):
    deadline_hours = _hours_by_urgency("to resolve a task of this type")
    first_contact_hours = _hours_by_urgency("to first contact the resident, this type")


class TaskHoursSchema(Schema):
    deadline_hours = _hours_by_urgency("to resolve")
    first_contact_hours = _hours_by_urgency("to first contact the resident")


class TaskSettingsSchema(TaskHoursSchema):
    by_type = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(HOTLINE_TYPES)),
        values=ma.fields.Nested(TaskTypeHoursSchema),
        metadata={"description": "A request type's own hours, where they differ"},
    )
    effective = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(HOTLINE_TYPES)),
        values=ma.fields.Nested(TaskTypeHoursSchema),
        dump_only=True,
        metadata={
            "description": "Every request type's hours as its tasks are given them: its own, "
            "else the community's, else the default"
        },
    )
    defaults = ma.fields.Nested(
        TaskHoursSchema,
        dump_only=True,
        metadata={"description": "Beijing 12345 practice, what an urgency left out takes"},
    )
