"""Schemas of the roster resources: settings, leave, rosters, shifts, swaps, the change log."""

from __future__ import annotations

import marshmallow as ma

from api import privacy
from api.extensions import Boolean, Float, Integer, Schema
from api.models.rosters import LEAVE_STATUSES, POSTS, SWAP_STATUSES
from api.resources.schemas import FullMatch

WEEK_RE = r"^[0-9]{4}-W[0-9]{2}$"  # matched whole (FullMatch): no final newline
_WEEK = ma.fields.String(
    validate=FullMatch(WEEK_RE, error="An ISO week like 2026-W48."),
    metadata={"description": "ISO week, e.g. 2026-W48 (Asia/Shanghai)"},
)
_WEEKDAY = Integer(validate=ma.validate.Range(1, 7))


class HoursSchema(Schema):
    start = ma.fields.String(
        required=True,
        validate=FullMatch(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="HH:MM, 00:00-23:59."),
        metadata={"description": "Local start time (Asia/Shanghai), HH:MM"},
    )
    end = ma.fields.String(
        required=True,
        validate=FullMatch(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="HH:MM, 00:00-23:59."),
        metadata={"description": "Local end time (Asia/Shanghai), HH:MM"},
    )


class RosterSettingsSchema(Schema):
    working_days = ma.fields.List(
        _WEEKDAY,
        validate=ma.validate.Length(min=1, max=7),
        metadata={"description": "ISO weekdays worked (1 = Monday); default Monday to Friday"},
    )
    a_min = Integer(
        validate=ma.validate.Range(0, 50), metadata={"description": "A-post staff per day, min"}
    )
    a_max = Integer(
        validate=ma.validate.Range(1, 50), metadata={"description": "A-post staff per day, max"}
    )
    min_b_days_per_grid = Integer(
        validate=ma.validate.Range(0, 7),
        metadata={"description": "Minimum B-post (door-to-door) days per grid per week"},
    )
    min_rest_days_per_week = Integer(
        validate=ma.validate.Range(0, 6),
        metadata={
            "description": "Full days off each worker has every ISO week, at least (default 1,"
            " Labour Law art. 38); leave and days the community does not work count"
        },
    )
    rest_days = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(_WEEKDAY),
        metadata={"description": "Per worker id, the ISO weekdays they rest on"},
    )
    a_hours = ma.fields.Nested(
        HoursSchema,
        metadata={
            "description": "Hall window hours: every A-post shift's when no `a_slots` are set"
            " (and a shift generated before they were)"
        },
    )
    a_slots = ma.fields.List(
        ma.fields.Nested(HoursSchema),
        validate=ma.validate.Length(max=8),
        metadata={
            "description": "Staggered window hours (a hall open 08:00–20:00, say): the A-post's"
            " time slots, each staffed every working day (`a_min` at least their number), each"
            " A-post shift holding one (`Shift.slot`), late and early shared fairly; each starts"
            " before it ends, none twice; read back earliest first. Empty (the default): every"
            " A-post shift has `a_hours`"
        },
    )
    b_hours = ma.fields.Nested(HoursSchema, metadata={"description": "Door-to-door hours"})
    holidays = ma.fields.List(
        ma.fields.Date(),
        validate=ma.validate.Length(max=400),
        metadata={"description": "Dates off although their weekday is worked (public holidays)"},
    )
    extra_working_days = ma.fields.List(
        ma.fields.Date(),
        validate=ma.validate.Length(max=400),
        metadata={"description": "Dates worked although their weekday is not (调休 weekend days)"},
    )
    time_limit_s = Float(
        validate=ma.validate.Range(0.5, 60),
        metadata={"description": "Solver time limit per week, seconds"},
    )


class LeaveCreateSchema(Schema):
    start_date = ma.fields.Date(required=True, metadata={"description": "First day away"})
    end_date = ma.fields.Date(required=True, metadata={"description": "Last day away"})
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class LeaveDecisionSchema(Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(("approve", "reject")))
    note = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(max=500),
        metadata={"description": "Why (a rejection's reason, say): shown to the worker"},
    )


class LeaveQueryArgsSchema(Schema):
    worker = ma.fields.String(metadata={"description": "`me` or a user id"})
    status = ma.fields.String(validate=ma.validate.OneOf(LEAVE_STATUSES))
    week = _WEEK
    ends_from = ma.fields.Date(
        metadata={
            "description": "Only leave whose last day is this day or later (leave under way or "
            "to come: today's date)"
        }
    )


class _Note(ma.fields.String):
    """A note that is often the worker's health (a leave's reason: "病假"): withheld (null) from
    roles that read no notes (`privacy.note`)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(privacy.note(value), attr, obj, **kwargs)


class LeaveSchema(Schema):
    id = Integer()
    worker_id = Integer()
    worker_name = ma.fields.String(
        attribute="worker.display_name",
        metadata={"description": "The worker's name (a leader decides leave beyond their grids)"},
    )
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    reason = _Note(allow_none=True, metadata={"description": "Null for district viewers"})
    decision_note = _Note(
        allow_none=True,
        metadata={"description": "The decider's words ('' when none); null for district viewers"},
    )
    status = ma.fields.String(metadata={"description": ", ".join(LEAVE_STATUSES)})
    decided_by_id = Integer(
        allow_none=True, metadata={"description": "Who approved or rejected it"}
    )
    created_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True, metadata={"description": "When decided"})
    cancelled_by_id = Integer(
        allow_none=True,
        metadata={
            "description": "Who cancelled it (null for leave cancelled before this was recorded"
            " apart from the decision, migration 0027)"
        },
    )
    cancelled_at = ma.fields.DateTime(allow_none=True, metadata={"description": "When cancelled"})
    shortened_by_id = Integer(allow_none=True, metadata={"description": "Who last ended it early"})
    shortened_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When it was last ended early"}
    )
    approved_end_date = ma.fields.Date(
        allow_none=True,
        metadata={
            "description": "The last day as approved, when the leave was ended early"
            " (end_date is then the new last day); null otherwise"
        },
    )


class LeaveEndSchema(Schema):
    last_day = ma.fields.Date(
        required=True,
        metadata={
            "description": "The leave's new last day: from its first day (and not before"
            " yesterday, Asia/Shanghai) to the day before its current last day"
        },
    )


class RosterCreateSchema(Schema):
    week = ma.fields.String(
        required=True,
        validate=FullMatch(WEEK_RE, error="An ISO week like 2026-W48."),
        metadata={"description": "ISO week to roster, e.g. 2026-W48"},
    )


class PublishSchema(Schema):
    accept_shortfalls = Boolean(
        load_default=False,
        metadata={
            "description": "Publish a short-staffed roster as it is (its `shortfalls` said);"
            " without it such a roster is a 409"
        },
    )


class ShiftSchema(Schema):
    id = Integer()
    roster_id = Integer()
    week = ma.fields.String()
    status = ma.fields.String(metadata={"description": "The roster's status: draft or published"})
    date = ma.fields.Date()
    post = ma.fields.String(metadata={"description": "A (hall window) or B (door to door)"})
    worker_id = Integer()
    worker_name = ma.fields.String()
    grid_id = Integer(allow_none=True)
    grid_code = ma.fields.String(allow_none=True, metadata={"description": "B-post's grid"})
    relief_for_id = Integer(
        allow_none=True, metadata={"description": "The away worker whose grid is relieved"}
    )
    slot = ma.fields.Nested(
        HoursSchema,
        allow_none=True,
        metadata={
            "description": "An A-post's time slot (one of the settings' `a_slots`, local"
            " HH:MM), its own hours; null for a B-post and for an A-post of a community without"
            " slots (the community's `a_hours`)"
        },
    )
    starts_at = ma.fields.DateTime(
        metadata={
            "description": "Start, Asia/Shanghai: the A-post's slot, else the post's hours"
            " (`a_hours`, `b_hours`)"
        }
    )
    ends_at = ma.fields.DateTime(metadata={"description": "End, Asia/Shanghai, as starts_at"})


class HeldTaskSchema(Schema):
    """A task a worker holds, named without its title (GET /tasks/{id} reads it, audited)."""

    id = Integer()
    grid_id = Integer()
    status = ma.fields.String()
    urgency = ma.fields.String()
    due_at = ma.fields.DateTime()


class LeaveDecisionResultSchema(LeaveSchema):
    """The decided leave, and the shifts its approval leaves uncovered."""

    shifts_to_reassign = ma.fields.Function(
        lambda answer: ShiftSchema(many=True).dump(answer["shifts"]),
        metadata={
            "type": "array",
            "items": {"$ref": "#/components/schemas/Shift"},
            "description": "The worker's shifts on the approved days from today on "
            "(Asia/Shanghai), in rosters made before the leave: uncovered until handed on "
            "with PATCH /shifts/{id}. Empty when rejected.",
        },
    )

    tasks_to_reassign = ma.fields.List(
        ma.fields.Nested(HeldTaskSchema),
        metadata={
            "description": "The open tasks the worker holds (dispatched, accepted, under way, "
            "reopened, escalated), soonest deadline first: to hand on with "
            "POST /tasks/{id}/assign before their deadlines pass with the worker away. Empty "
            "when rejected."
        },
    )

    def get_attribute(self, obj, attr, default):
        # The leave's own fields come from the leave; the shifts and tasks from the answer.
        if attr == "shifts_to_reassign":
            return obj
        if attr == "tasks_to_reassign":
            return obj["tasks"]
        return super().get_attribute(obj["leave"], attr, default)


class ShiftPatchSchema(Schema):
    post = ma.fields.String(validate=ma.validate.OneOf(POSTS))
    grid_code = ma.fields.String(
        allow_none=True, metadata={"description": "Grid of a B-post (15 digits)"}
    )
    worker_id = Integer()
    date = ma.fields.Date(metadata={"description": "A day of the roster's week"})
    slot = ma.fields.Nested(
        HoursSchema,
        allow_none=True,
        metadata={
            "description": "An A-post's time slot, one of the community's `a_slots` (422"
            " otherwise, and for a B-post). Left out or null: an A-post staying on its day"
            " keeps its slot, another (moved to the window or to another day) takes the"
            " day's least-staffed slot"
        },
    )


class ShiftQueryArgsSchema(Schema):
    date = ma.fields.Date(metadata={"description": "One day"})
    week = _WEEK
    worker = ma.fields.String(metadata={"description": "`me` or a user id"})
    community = ma.fields.String(validate=FullMatch(r"^[0-9]{12}$"))

    @ma.validates_schema
    def _one_period(self, data, **_kwargs):
        if ("date" in data) == ("week" in data):
            raise ma.ValidationError("Give exactly one of `date` and `week`.", "date")


class PairMemberSchema(Schema):
    id = Integer()
    name = ma.fields.String()


class DaySchema(Schema):
    date = ma.fields.Date()
    weekday = ma.fields.String()
    A = ma.fields.List(ma.fields.Nested(ShiftSchema), metadata={"description": "At the window"})
    B = ma.fields.List(ma.fields.Nested(ShiftSchema), metadata={"description": "In the grids"})


class ShortfallSchema(Schema):
    rule = ma.fields.String(
        metadata={
            "description": "window: too few at the window that day, or one of its time slots"
            " (`slot`) with nobody in it; grid: a grid's B-post days"
            " of the week short of its minimum; uncovered: a shift whose worker will not take"
            " it (on approved leave, switched off, no longer a worker), nobody in their place"
        }
    )
    date = ma.fields.String(allow_none=True, metadata={"description": "The day (not for grid)"})
    post = ma.fields.String(metadata={"description": "A (the window) or B (the grids)"})
    grid_code = ma.fields.String(allow_none=True)
    slot = ma.fields.Nested(
        HoursSchema,
        metadata={
            "description": "window only, a slot left empty: the settings' `a_slots` slot"
            " (local HH:MM) that no A-post holds that day"
        },
    )
    required = Integer(metadata={"description": "At the window, or B-post days of the grid"})
    rostered = Integer(metadata={"description": "As the roster stands"})
    short = Integer(metadata={"description": "required - rostered"})
    why = ma.fields.String(metadata={"description": "The rule in plain words"})
    shift_id = Integer(metadata={"description": "uncovered only"})
    worker_id = Integer(metadata={"description": "uncovered only: the away worker"})
    worker_name = ma.fields.String(metadata={"description": "uncovered only"})
    reason = ma.fields.String(
        metadata={"description": "uncovered only: on_leave, deactivated or not_a_worker"}
    )


class WeekViewSchema(Schema):
    id = Integer()
    community_code = ma.fields.String()
    week = ma.fields.String()
    status = ma.fields.String()
    created_at = ma.fields.DateTime()
    published_at = ma.fields.DateTime(allow_none=True)
    pairs = ma.fields.List(
        ma.fields.List(ma.fields.Nested(PairMemberSchema)),
        metadata={"description": "This week's pairs (one trio when the count is odd)"},
    )
    a_days = ma.fields.Dict(
        keys=ma.fields.String(),
        values=Integer(),
        metadata={"description": "A-post days this week, by worker id"},
    )
    complete = Boolean(
        metadata={"description": "False when the roster leaves a rule unmet (`shortfalls`)"}
    )
    shortfalls = ma.fields.List(
        ma.fields.Nested(ShortfallSchema),
        metadata={
            "description": "What the roster leaves unmet from today on: a short-staffed week's"
            " window and grid minimums, and shifts uncovered since (approved leave)"
        },
    )
    shortfall_rule = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The rule that made the week short, as the solver names it (the"
            " 422's detail before short-staffed weeks were rostered); null when none did"
        },
    )
    shortfall_details = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "The rule's details: each day, grid or worker concerned (the 422's"
            " `details` before)"
        },
    )
    days = ma.fields.List(ma.fields.Nested(DaySchema))


class GeneratedWeekSchema(WeekViewSchema):
    kept_days = ma.fields.List(
        ma.fields.Date(),
        metadata={
            "description": "The week's days before today (Asia/Shanghai), left as they were: "
            "not rostered by this generation, their shifts (if any) unchanged"
        },
    )


class RosterSchema(Schema):
    id = Integer()
    community_code = ma.fields.String()
    week = ma.fields.String()
    status = ma.fields.String()
    published_at = ma.fields.DateTime(allow_none=True)


class SwapCreateSchema(Schema):
    with_shift_id = Integer(required=True)


class SwapSchema(Schema):
    id = Integer()
    shift_id = Integer()
    with_shift_id = Integer()
    requester_id = Integer()
    other_worker_id = Integer()
    requested_by_id = Integer(allow_none=True)
    status = ma.fields.String(
        metadata={
            "description": "requested, accepted, approved, rejected, cancelled or expired (an"
            " open swap whose day passed; read as expired even before the tick marks it)"
        }
    )
    decided_by_id = Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)


class SwapQueryArgsSchema(Schema):
    status = ma.fields.String(validate=ma.validate.OneOf(SWAP_STATUSES))
    worker = ma.fields.String(
        metadata={"description": "`me` or a user id: swaps asked by or of that worker"}
    )
    week = _WEEK


class ShiftChangeSchema(Schema):
    id = Integer()
    roster_id = Integer()
    shift_id = Integer(allow_none=True)
    action = ma.fields.String(
        metadata={"description": "edit (a leader or admin changed the shift) or swap"}
    )
    changed_by_id = Integer(allow_none=True)
    changed_by_name = ma.fields.String(
        allow_none=True,
        metadata={"description": "Who changed it, by name (null once their account is gone)"},
    )
    changed_at = ma.fields.DateTime()
    before = ma.fields.Dict(
        metadata={
            "description": "The shift before: date, post, worker_id, worker_name, grid_code,"
            " relief_for_id, slot (an A-post's window slot, null without one; absent from"
            " changes logged before migration 0058)"
        }
    )
    after = ma.fields.Dict(metadata={"description": "The shift after, as `before`"})
    for_leave_id = Integer(
        allow_none=True,
        metadata={
            "description": "A shift handed on from a worker on approved leave that day (when"
            " it was changed): that leave; null otherwise"
        },
    )


class CalendarUrlSchema(Schema):
    url = ma.fields.String(metadata={"description": "https URL of the .ics feed"})
    webcal_url = ma.fields.String(metadata={"description": "The same as webcal://"})


class FeedArgsSchema(Schema):
    token = ma.fields.String(required=True, metadata={"description": "The feed token"})
