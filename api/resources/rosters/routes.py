"""Roster settings, leave, week rosters, shifts, swaps, the change log and the .ics feed."""

from __future__ import annotations

from flask import Response, current_app, request, url_for
from flask.views import MethodView

from api import errors, idempotency
from api.auth import current_scope, current_user, get_jwt
from api.clock import now as _now
from api.extensions import Blueprint, db
from api.resources.rosters.schemas import (
    CalendarUrlSchema,
    FeedArgsSchema,
    GeneratedWeekSchema,
    LeaveCreateSchema,
    LeaveDecisionResultSchema,
    LeaveDecisionSchema,
    LeaveEndSchema,
    LeaveQueryArgsSchema,
    LeaveSchema,
    PublishSchema,
    RosterCreateSchema,
    RosterSchema,
    RosterSettingsSchema,
    ShiftChangeSchema,
    ShiftPatchSchema,
    ShiftQueryArgsSchema,
    ShiftSchema,
    SwapCreateSchema,
    SwapQueryArgsSchema,
    SwapSchema,
    WeekViewSchema,
)
from api.services import calendar, rosters, sessions, tasks, users
from api.services.community_settings import get_community
from api.services.weeks import LOCAL

blp = Blueprint("rosters", __name__, url_prefix="/api/v1", description="A-post / B-post rosters.")
feed_blp = Blueprint(
    "calendar", __name__, url_prefix="/api/v1", description="Shift calendar feeds.", public=True
)


def _worker_arg(args: dict) -> dict:
    """`worker=me` means the caller; anything else must be a user id."""
    worker = args.get("worker")
    if worker == "me":
        args["worker"] = current_user().id
    elif worker is not None:
        args["worker"] = users.user_id(worker)
        if args["worker"] is None:
            raise errors.Unprocessable(
                "worker is `me` or a user id.", errors={"query": {"worker": ["me or an id"]}}
            )
    return args


def _shift(shift) -> dict:
    settings = rosters.settings_for(db.session, [shift.roster.community_code])
    return rosters.shift_dict(shift, settings[shift.roster.community_code])


@blp.route("/communities/<string:code>/roster-settings")
class RosterSettings(MethodView):
    @blp.response(200, RosterSettingsSchema)
    def get(self, code):
        """A community's roster settings (defaults filled in)"""
        return rosters.roster_settings(get_community(db.session, current_scope(), code))

    @blp.arguments(RosterSettingsSchema)
    @blp.response(200, RosterSettingsSchema)
    def put(self, data, code):
        """Replace a community's roster settings (community admins); missing fields default"""
        community = get_community(db.session, current_scope(), code)
        settings = rosters.put_settings(db.session, current_scope(), community, data)
        db.session.commit()
        return settings


@blp.route("/communities/<string:code>/rosters")
class CommunityRosters(MethodView):
    @blp.arguments(RosterCreateSchema)
    @blp.response(201, GeneratedWeekSchema)
    @idempotency.idempotent(blp)
    def post(self, data, code):
        """Generate a week's draft roster with the solver

        Replaces an earlier draft of the week; a published week answers 409. The days before
        today (Asia/Shanghai) are kept as they were (`kept_days`): a first generation midweek
        starts today, a regeneration keeps the draft's shifts of those days; a week already
        over answers 409. A week whose window or grid minimums cannot all be met (too few
        workers) is rostered all the same, the best possible: `complete` false, `shortfalls`
        each day or grid short and why, `shortfall_rule` the rule that binds; the community's
        other leaders and admins are told (`roster_short`). A community without workers is a
        422. Send an `Idempotency-Key` to retry safely: the same key gets the draft first
        answered, not the week solved again (and those told of its gaps told again).
        """
        roster, kept_days = rosters.generate(
            db.session, current_scope(), code, data["week"], now=_now()
        )
        db.session.commit()
        return {**rosters.week_view(db.session, roster, now=_now()), "kept_days": kept_days}


@blp.route("/communities/<string:code>/rosters/<string:week>")
class CommunityRosterWeek(MethodView):
    @blp.response(200, WeekViewSchema)
    def get(self, code, week):
        """A community's roster of one week, shifts grouped by day, with its pairs"""
        roster = rosters.get_week(db.session, current_scope(), code, week)
        return rosters.week_view(db.session, roster, now=_now())


@blp.route("/rosters/<id:roster_id>/publish")
class RosterPublish(MethodView):
    @blp.arguments(PublishSchema, required=False)
    @blp.response(200, RosterSchema)
    @idempotency.idempotent(blp)
    def post(self, data, roster_id):
        """Publish a draft roster; every worker on it is notified

        A draft naming, from today on, a worker since switched off, made a community admin, or
        on approved leave that day answers 409 with `shifts` (each: `shift_id`, `date`, `post`,
        `grid_code`, `worker_id`, `worker_name`, `reason`, `why`), nothing written: hand them
        on (PATCH /shifts/{id}) or regenerate the week, then publish. A short-staffed draft
        (`shortfalls`) answers 409 with `shortfalls` unless the body says
        `{"accept_shortfalls": true}`: it is then published as it is, its gaps said. Send an
        `Idempotency-Key` to retry safely: the same key gets the first answer, not a 409
        (published already), and nobody is notified twice.
        """
        roster = rosters.publish(
            db.session,
            current_scope(),
            roster_id,
            now=_now(),
            accept_shortfalls=data.get("accept_shortfalls", False),
        )
        db.session.commit()
        return roster


@blp.route("/rosters/<id:roster_id>/changes")
class RosterChanges(MethodView):
    @blp.response(200, ShiftChangeSchema(many=True))
    def get(self, roster_id):
        """Changes made to a roster after it was published: who, when, before and after"""
        return rosters.list_changes(db.session, current_scope(), roster_id)


@blp.route("/shifts")
class Shifts(MethodView):
    @blp.arguments(ShiftQueryArgsSchema, location="query")
    @blp.response(200, ShiftSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Shifts on a `date` or in a `week`, of `worker=me|ID` or everyone you may see"""
        rows, total = rosters.list_shifts(
            db.session,
            current_scope(),
            _worker_arg(args),
            pagination_parameters.page,
            pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        settings = rosters.settings_for(db.session, {s.roster.community_code for s in rows})
        return [rosters.shift_dict(s, settings[s.roster.community_code]) for s in rows]


@blp.route("/shifts/<id:shift_id>")
class ShiftById(MethodView):
    @blp.response(200, ShiftSchema)
    def get(self, shift_id):
        """One shift"""
        return _shift(rosters.get_shift(db.session, current_scope(), shift_id))

    @blp.arguments(ShiftPatchSchema)
    @blp.response(200, ShiftSchema)
    def patch(self, changes, shift_id):
        """Change a shift's post, grid, worker, day or window slot (leaders and admins)

        Nobody holds two posts at once (409); a B-post needs a grid of the community. An A-post
        of a hall with staggered hours takes the `slot` named (one of the settings' `a_slots`,
        else 422); without one it keeps its own on its day, or takes the day's least-staffed
        slot when it comes to the window or moves to another day. After
        publishing, the change is logged and the workers it touches are notified; one that
        opens a gap (the week's `shortfalls`) is told to the community's other leaders and
        admins (`roster_short`). A change
        cancels the shift's open swap, and its two workers are told. A shift of a day before
        today (Asia/Shanghai), or a move onto such a day, is a 409: the past is not changed.
        """
        shift = rosters.update_shift(db.session, current_scope(), shift_id, changes, now=_now())
        db.session.commit()
        return _shift(shift)


@blp.route("/shifts/<id:shift_id>/swap")
class ShiftSwapRequest(MethodView):
    @blp.arguments(SwapCreateSchema)
    @blp.response(201, SwapSchema)
    @idempotency.idempotent(blp)
    def post(self, data, shift_id):
        """Ask to swap this shift with another worker's; they accept or a leader approves

        Both shifts belong to published rosters of one community (409 for a draft's shift),
        are of today or later, and go to active workers (409 otherwise). Send an
        `Idempotency-Key` to retry safely: the same key gets the first swap back, not a 409
        (a swap is open on the shift).
        """
        swap = rosters.request_swap(
            db.session, current_scope(), shift_id, data["with_shift_id"], now=_now()
        )
        db.session.commit()
        return swap


@blp.route("/swaps")
class Swaps(MethodView):
    @blp.arguments(SwapQueryArgsSchema, location="query")
    @blp.response(200, SwapSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Swaps you are part of, or your community's (leaders, admins)

        Filters: `status`, `worker=me|ID` (either side), `week` (either shift). An open swap
        whose day has passed reads as `expired`, marked by the tick or not yet.
        """
        rows, total = rosters.list_swaps(
            db.session,
            current_scope(),
            _worker_arg(args),
            pagination_parameters.page,
            pagination_parameters.page_size,
            now=_now(),
        )
        pagination_parameters.item_count = total
        return rows


@blp.route("/swaps/<id:swap_id>")
class SwapById(MethodView):
    @blp.response(200, SwapSchema)
    def get(self, swap_id):
        """One swap; an open swap whose day has passed reads as `expired`"""
        return rosters.read_swap(db.session, current_scope(), swap_id, now=_now())


@blp.route("/swaps/<id:swap_id>/accept")
class SwapAccept(MethodView):
    @blp.response(200, SwapSchema)
    @idempotency.idempotent(blp)
    def post(self, swap_id):
        """Accept (the other worker) or approve (a leader) a swap: the shifts change hands

        409 when the swap is no longer open (decided, or cancelled by an edit of its shifts),
        a shift changed hands, a shift's roster is a draft, a shift's day has passed, a worker
        was deactivated, or the exchange breaks a rule. Send an `Idempotency-Key` to retry
        safely: the same key gets the first answer instead of that 409.
        """
        swap = rosters.accept_swap(db.session, current_scope(), swap_id, now=_now())
        db.session.commit()
        return swap


@blp.route("/swaps/<id:swap_id>/reject")
class SwapReject(MethodView):
    @blp.response(200, SwapSchema)
    @idempotency.idempotent(blp)
    def post(self, swap_id):
        """Reject a swap (the other worker or a leader), or withdraw it (the requester)

        409 when the swap is no longer open, or has expired (a shift's day has passed). Send an
        `Idempotency-Key` to retry safely: the same key gets the first answer instead of that
        409.
        """
        swap = rosters.reject_swap(db.session, current_scope(), swap_id, now=_now())
        db.session.commit()
        return swap


@blp.route("/leaves")
class Leaves(MethodView):
    @blp.arguments(LeaveQueryArgsSchema, location="query")
    @blp.response(200, LeaveSchema(many=True))
    def get(self, args):
        """Leave you may see: your own, your community's (leaders, admins), district's (viewers)"""
        return rosters.list_leaves(db.session, current_scope(), _worker_arg(args))

    @blp.arguments(LeaveCreateSchema)
    @blp.response(201, LeaveSchema)
    @idempotency.idempotent(blp)
    def post(self, data):
        """Request leave for yourself

        Leave overlapping your requested or approved leave is a 409. Send an `Idempotency-Key`
        to retry safely: the same key gets the first leave back instead of that 409.
        """
        leave = rosters.request_leave(db.session, current_scope(), data, now=_now())
        db.session.commit()
        return leave


@blp.route("/leaves/<id:leave_id>/decision")
class LeaveDecision(MethodView):
    @blp.arguments(LeaveDecisionSchema)
    @blp.response(200, LeaveDecisionResultSchema)
    @idempotency.idempotent(blp)
    def post(self, data, leave_id):
        """Approve or reject a leave request (a grid leader or admin of the worker's community)

        Leave decided already is a 409. Send an `Idempotency-Key` to retry safely: the same key
        gets the first answer instead of that 409, and the worker is told once.
        """
        session = db.session
        leave = rosters.decide_leave(
            session, current_scope(), leave_id, data["decision"], note=data["note"], now=_now()
        )
        shifts = rosters.shifts_during_leave(session, leave, now=_now())
        settings = rosters.settings_for(session, {s.roster.community_code for s in shifts})
        answer = {
            "leave": leave,
            "shifts": [rosters.shift_dict(s, settings[s.roster.community_code]) for s in shifts],
            "tasks": tasks.held_by(session, leave.worker_id) if leave.status == "approved" else [],
        }
        session.commit()
        return answer


@blp.route("/leaves/<id:leave_id>/cancel")
class LeaveCancel(MethodView):
    @blp.response(200, LeaveSchema)
    @idempotency.idempotent(blp)
    def post(self, leave_id):
        """Cancel leave: the worker their own (requested or approved), or a leader or admin

        409 when the leave is already rejected or cancelled, or is approved and began before
        today (Asia/Shanghai). Shifts handed on after the approval stay with their new holders.
        Send an `Idempotency-Key` to retry safely: the same key gets the first answer instead
        of that 409.
        """
        leave = rosters.cancel_leave(db.session, current_scope(), leave_id, now=_now())
        db.session.commit()
        return leave


@blp.route("/leaves/<id:leave_id>/end")
class LeaveEnd(MethodView):
    @blp.arguments(LeaveEndSchema)
    @blp.response(200, LeaveSchema)
    @idempotency.idempotent(blp)
    def post(self, data, leave_id):
        """End approved leave early: `last_day` becomes its last day (a worker back early)

        Whoever may cancel the leave may end it. `last_day` lies from the leave's first day to
        the day before its current last day (422 otherwise) and is not before yesterday,
        Asia/Shanghai (409: the days away are on record); leave not approved, or over, is a
        409. The days after are worked again; whoever counts on the leave is told. Send an
        `Idempotency-Key` to retry safely: the same key gets the first answer, not a 422 (the
        day is its last day now).
        """
        leave = rosters.end_leave(
            db.session, current_scope(), leave_id, data["last_day"], now=_now()
        )
        db.session.commit()
        return leave


def _feed_urls(user) -> dict:
    token = calendar.feed_token(db.session, user, current_app.config["SECRET_KEY"])
    url = url_for("calendar.WorkerFeed", worker_id=user.id, token=token, _external=True)
    return {"url": url, "webcal_url": "webcal://" + url.split("://", 1)[1]}


def _feed_owner():
    """The caller, their account held: a reset or a switch-off waited for ends this token
    (401), not the link handed out."""
    user = current_user()
    sessions.hold_account(db.session, user.id, get_jwt().get("ver"))
    return user


@blp.route("/me/calendar-url")
class MyCalendarUrl(MethodView):
    @blp.response(200, CalendarUrlSchema)
    def get(self):
        """Your shifts' calendar feed URL, for a phone calendar to subscribe to"""
        urls = _feed_urls(_feed_owner())
        db.session.commit()
        return urls

    @blp.response(200, CalendarUrlSchema)
    def delete(self):
        """Revoke your feed URL; the answer is the new one"""
        user = _feed_owner()
        calendar.revoke(db.session, user)
        urls = _feed_urls(user)
        db.session.commit()
        return urls


@feed_blp.route("/workers/<id:worker_id>/shifts.ics")
class WorkerFeed(MethodView):
    @feed_blp.doc(security=[])  # a calendar app sends no token: the URL's token is its key
    @feed_blp.arguments(FeedArgsSchema, location="query")
    @feed_blp.response(200, content_type="text/calendar")
    @feed_blp.alt_response(403, response="FORBIDDEN")
    def get(self, args, worker_id):
        """A worker's published shifts as iCalendar (RFC 5545); the token replaces sign-in"""
        config = current_app.config
        worker = calendar.verify(
            db.session,
            worker_id,
            args["token"],
            config["SECRET_KEY"],
            config["SECRET_KEY_FALLBACKS"],
        )
        shifts = calendar.worker_shifts(db.session, worker, _now().astimezone(LOCAL).date())
        body = calendar.render(db.session, worker, shifts, request.host.split(":")[0])
        return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private"})
