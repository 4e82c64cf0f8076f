"""Visits: offline batch sync, reads by household, grid and week, the plan, photos, cadence."""

from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView

from api import privacy
from api.auth import current_scope, current_user
from api.extensions import Blueprint, db
from api.privacy import audited
from api.resources import photos as photo_upload
from api.resources.visits.schemas import (
    CadenceSchema,
    HandoverQueryArgsSchema,
    PhotoUploadResultSchema,
    PhotoUploadSchema,
    PlanQueryArgsSchema,
    PlanSchema,
    VisitBatchResultSchema,
    VisitBatchSchema,
    VisitQueryArgsSchema,
    VisitSchema,
)
from api.services import ledger, photos, visits
from api.services.community_settings import get_community
from api.services.weeks import current_week

blp = Blueprint(
    "visits", __name__, url_prefix="/api/v1", description="Door-to-door visits (入户走访)."
)


@blp.route("/visits/batch")
class VisitBatch(MethodView):
    @blp.arguments(VisitBatchSchema)
    @blp.response(200, VisitBatchResultSchema)
    def post(self, items):
        """Sync a batch of visits recorded offline (idempotent by each visit's UUID)

        Up to 500 visits. Each item is checked on its own and answered in order as `created`,
        `duplicate` (already stored: the stored visit is returned, nothing changes) or
        `rejected` with the reason. Accepted visits are committed before the answer.
        """
        results, answer = visits.ingest_and_render(
            db.session, current_scope(), items, _render_batch_answer
        )
        db.session.commit()
        return answer if answer is not None else {"results": results}


@blp.route("/visits/handover")
class VisitHandover(MethodView):
    @blp.arguments(HandoverQueryArgsSchema, location="query")
    @blp.arguments(VisitBatchSchema)
    @blp.response(200, VisitBatchResultSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="No such worker in your community")
    @blp.alt_response(
        409, response="CONFLICT", description="The worker's account is not switched off"
    )
    def post(self, args, items):
        """Send a switched-off worker's unsent visits for them (community admin, grid leader)

        The visits a worker recorded offline and never sent stay on their phone; switched off
        (they left), they can no longer sign in to send them. Their community's admin, or the
        leader of a grid they held, signed in on that phone, sends them here as theirs: each is
        judged as the worker's own batch would be (their grids on the visit's date) and
        answered as `/visits/batch` answers; one made after the switch-off is `rejected` with
        code `after-switch-off`. A leader sends the visits of the grids they lead; one of
        another grid is `rejected` with code `not-your-grid` (the admin sends it). An active
        worker's visits are theirs to send (409). Audited as the sender's `create` of the
        visits (field `worker`), and as a `read` of those stored before, answered
        `duplicate` with what they hold.
        """
        results = visits.hand_over_batch(
            db.session, current_scope(), args["worker"], items, privacy.reader()
        )
        db.session.commit()  # the visits, before the read's asynchronous commit
        privacy.record_disclosure("visit", visits.replayed(results))
        return {"results": results}


def _render_batch_answer(results: list[dict]) -> Response:
    """The batch's answer as `blp.response` makes it, made while the database stores the rows
    (see `visits.ingest_and_render`)."""
    return jsonify(VisitBatchResultSchema().dump({"results": results}))


@blp.route("/visits")
class Visits(MethodView):
    @blp.arguments(VisitQueryArgsSchema, location="query")
    @blp.response(200, VisitSchema(many=True))
    @blp.paginate()
    @audited("visit")
    def get(self, args, pagination_parameters):
        """List the visits you can read, by grid, ISO week and worker, newest first"""
        rows, pagination_parameters.item_count = visits.list_visits(
            db.session,
            current_scope(),
            grid=args.get("grid"),
            week=args.get("week"),
            worker_id=current_user().id if args.get("worker") == "me" else args.get("worker"),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        return rows


@blp.route("/visits/plan")
class VisitPlan(MethodView):
    @blp.arguments(PlanQueryArgsSchema, location="query")
    @blp.response(200, PlanSchema)
    @audited(
        "household",
        records=lambda plan: [s["household_id"] for s in plan["households"]],
        # What a stop shows: no members, no phone; when each was last found at home.
        fields=("address", "location", "tags", "last_visited"),
    )
    def get(self, args):
        """A worker's plan for the week: households still due, as a walking route

        Must-visit households come first (overdue ones first), each group ordered as a short
        walk. Leaders and admins may pass `worker`.
        """
        return visits.week_plan(
            db.session,
            current_scope(),
            week=args.get("week") or current_week(),
            worker_id=None if args.get("worker", "me") == "me" else args["worker"],
        )


@blp.route("/visits/<uuid:visit_id>")
class VisitById(MethodView):
    @blp.response(200, VisitSchema)
    @audited("visit")
    def get(self, visit_id):
        """A visit, with its WGS-84 location and its location evidence"""
        return visits.get_visit(db.session, current_scope(), visit_id)


@blp.route("/visits/<uuid:visit_id>/photos")
class VisitPhotos(MethodView):
    @blp.arguments(PhotoUploadSchema, location="multipart")
    @blp.response(201, PhotoUploadResultSchema)
    @blp.alt_response(
        409, response="CONFLICT", description="The visit holds the most photos a visit may hold"
    )
    def post(self, form, visit_id):
        """Attach a photo to your visit (JPEG, PNG or WebP; the same image is stored once)

        A visit holds at most 20 photos: one more is a 409 (a photo it holds, sent again, is
        answered as the duplicate it is).
        """
        visit = visits.get_own_visit(db.session, current_scope(), visit_id)
        return photo_upload.upload(visit, form)


@blp.route("/visits/<uuid:visit_id>/photos/<id:photo_id>")
class VisitPhotoById(MethodView):
    @blp.doc(responses={"200": {"description": "The image bytes"}})
    def get(self, visit_id, photo_id):
        """A photo of a visit you can read

        Not of your own visit in a grid you no longer hold (or relieved): 404.
        """
        visit = visits.get_visit_for_photos(db.session, current_scope(), visit_id)
        photo = photos.get_photo(db.session, visit, photo_id, current_scope().user_id)
        response = photo_upload.serve(photo)
        privacy.record_disclosure("visit_photo", [photo.id, visit.id])
        return response


@blp.route("/households/<id:household_id>/visits")
class HouseholdVisits(MethodView):
    @blp.response(200, VisitSchema(many=True))
    @blp.paginate()
    @audited("visit")
    def get(self, household_id, pagination_parameters):
        """A household's visit history, newest first"""
        rows, pagination_parameters.item_count = visits.household_visits(
            db.session,
            current_scope(),
            household_id,
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        return rows


@blp.route("/communities/<string:code>/visit-cadence")
class VisitCadence(MethodView):
    @blp.response(200, CadenceSchema)
    def get(self, code):
        """A community's visit cadence: visits per week, by default and per care tag"""
        community = get_community(db.session, current_scope(), code)
        return {"community_code": code, **ledger.community_cadence(community).as_dict()}

    @blp.arguments(CadenceSchema)
    @blp.response(200, CadenceSchema)
    def put(self, data, code):
        """Set the community's visit cadence (community admin)

        It applies from the current ISO week (Asia/Shanghai), the whole of it: this week's
        must-visit figures are recounted under it; earlier weeks keep the cadence they had.
        """
        community = get_community(db.session, current_scope(), code)
        current_scope().require_cadence_admin(code)
        cadence = ledger.set_community_cadence(
            db.session, community, data, changed_by_id=current_scope().user_id
        )
        db.session.commit()
        return {"community_code": code, **cadence.as_dict()}
