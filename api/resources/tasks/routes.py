"""Tasks (工单): open, list, read, act on (transitions), reassign; the three rates; what recurs."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from api import idempotency, privacy
from api.auth import current_scope
from api.clock import now as _now
from api.extensions import Blueprint, db
from api.privacy import audited
from api.resources import photos as photo_upload
from api.resources.files import table_doc, table_file
from api.resources.grids.schemas import grid_outline
from api.resources.tasks.schemas import (
    AssignSchema,
    CampaignResultSchema,
    CampaignSchema,
    DeadlineSchema,
    ListsQueryArgsSchema,
    ListsSchema,
    MoveGridCollectionSchema,
    MoveSchema,
    RatesQueryArgsSchema,
    RatesSchema,
    RecurringQueryArgsSchema,
    RecurringSchema,
    TaskCreateSchema,
    TaskDetailSchema,
    TaskExportArgsSchema,
    TaskPhotoUploadResultSchema,
    TaskQueryArgsSchema,
    TaskSchema,
    TaskSettingsSchema,
    TransitionSchema,
)
from api.resources.visits.schemas import PhotoUploadSchema
from api.services import (
    campaigns,
    community_settings,
    photos,
    recurring,
    task_files,
    task_lists,
    tasks,
)
from api.services.community_settings import get_community
from api.sheets import write_table

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Tasks (工单).")
settings_blp = Blueprint(
    "task_settings",
    __name__,
    url_prefix="/api/v1",
    description="A community's task deadlines (工单时限).",
)


@blp.route("")
class Tasks(MethodView):
    @blp.arguments(TaskQueryArgsSchema, location="query")
    @blp.response(200, TaskSchema(many=True))
    @blp.paginate()
    @audited("task")
    def get(self, args, pagination_parameters):
        """List the tasks you can see

        Filter by assignee (`me`, `none`: waiting to be assigned), status, grid, source,
        list (`need`, `problem`: visits' follow-ups, tasks opened on a list), overdue and
        ticket number (`external_id`: the 12345 hotline's, exactly), and the tasks you opened
        (`created_by=me`), on a day (`created_on`, Asia/Shanghai); soonest deadline first.
        """
        rows, total = tasks.list_tasks(
            db.session,
            current_scope(),
            now=_now(),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
            **args,
        )
        pagination_parameters.item_count = total
        return rows

    @blp.arguments(TaskCreateSchema)
    @blp.response(201, TaskDetailSchema)
    @idempotency.idempotent(blp, audited="task")
    @audited("task", "create")
    def post(self, data):
        """Open a task and dispatch it

        The grid is found from the household or the location; the task goes to the grid's
        worker on duty, else the reliever or B-post worker, else the grid leader. A hotline
        ticket its community already holds is a 409 (naming the existing task,
        `task_id`, if you can see it); one another community holds is a re-dispatch
        (改派): a new task here, the other passed on as `transferred`.
        """
        scope = current_scope()
        task = tasks.create_task(db.session, scope, data, actor_id=scope.user_id, now=_now())
        db.session.commit()
        return task


@blp.route("/export")
class TaskExport(MethodView):
    @blp.arguments(TaskExportArgsSchema, location="query")
    @blp.doc(responses=table_doc("The ledger file"))
    def get(self, args):
        """Download the tasks' ledger (工单台账) as XLSX or CSV

        The tasks the list gives for the same filters (`week=`, `street=` and `community=` as
        the ledger page asks, `sort=newest` in its order), each on a line in Chinese headers
        and words: number, opened, source, 12345 ticket number, type, urgency, title, list,
        community, grid, status, assignee, first contact, deadline, resolved, closed, satisfaction,
        overdue, passed on to. No complainant, description or location: a file leaves the
        system. More than GRIDWORK_TASK_EXPORT_MAX_ROWS (20,000) tasks is a 422 asking for a
        narrower file. Every task exported is an audit entry (action `export`).
        """
        fmt = args.pop("format")
        now = _now()
        rows = tasks.export_tasks(
            db.session,
            current_scope(),
            now=now,
            max_rows=current_app.config["TASK_EXPORT_MAX_ROWS"],
            **args,
        )
        lines = task_files.ledger_rows(db.session, current_scope(), rows, now)
        data = write_table(task_files.HEADER, lines, fmt, title="工单台账")
        privacy.record_disclosure("task", rows, "export", fields=task_files.FIELDS)
        return table_file(data, fmt, task_files.filename(args, fmt))


@blp.route("/rates")
class Rates(MethodView):
    @blp.arguments(RatesQueryArgsSchema, location="query")
    @blp.response(200, RatesSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="No such grid or community")
    def get(self, args):
        """The three rates (response, resolution, satisfaction) of a grid or a community

        Of the tasks opened in [start, end) or in an ISO week (Asia/Shanghai).
        """
        return tasks.rates(db.session, current_scope(), now=_now(), **args)


@blp.route("/lists")
class Lists(MethodView):
    @blp.arguments(ListsQueryArgsSchema, location="query")
    @blp.response(200, ListsSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="No such grid or community")
    def get(self, args):
        """The need list and the problem list (需求清单 / 问题清单) of a grid or a community

        What visits' follow-ups put on each list, per grid and in all: raised and done in
        [start, end) or an ISO week (Asia/Shanghai), and open (not done) as it closed, or now
        while it is under way. A community gives each of its grids you can see.
        """
        return task_lists.task_lists(db.session, current_scope(), now=_now(), **args)


@blp.route("/recurring")
class Recurring(MethodView):
    @blp.arguments(RecurringQueryArgsSchema, location="query")
    @blp.response(200, RecurringSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="No such grid or community")
    def get(self, args):
        """What keeps coming back to a grid or community (未诉先办)

        Of the tasks opened in the last `weeks` weeks (every source; re-dispatched tickets
        not), beside the same span before: the places with three tasks or more within 50 m of
        each other, and the words three titles or more say; the rising ones first.
        """
        return recurring.recurring(db.session, current_scope(), now=_now(), **args)


@blp.route("/<id:task_id>")
class TaskById(MethodView):
    @blp.response(200, TaskDetailSchema)
    @audited("task")
    def get(self, task_id):
        """A task with its events"""
        return tasks.get_task(db.session, current_scope(), task_id)


@blp.route("/<id:task_id>/transitions")
class Transitions(MethodView):
    @blp.arguments(TransitionSchema)
    @blp.response(200, TaskDetailSchema)
    @idempotency.idempotent(blp, audited="task")
    @audited("task", "update")
    def post(self, data, task_id):
        """Act on a task: accept, start, resolve, callback, close, return, escalate, reopen

        An action not allowed from the current status is a 409 naming the status and the
        allowed actions; an action not yours to take is a 403. Send an `Idempotency-Key` to
        retry safely: the same key gets the first answer instead of that 409.
        """
        task = tasks.get_task(db.session, current_scope(), task_id, for_update=True)
        action = data.pop("action")
        tasks.transition(db.session, current_scope(), task, action, now=_now(), **data)
        db.session.commit()
        return task


@blp.route("/<id:task_id>/photos")
class TaskPhotos(MethodView):
    @blp.arguments(PhotoUploadSchema, location="multipart")
    @blp.response(201, TaskPhotoUploadResultSchema)
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="The task holds the most photos a task may hold, or has no step for you",
    )
    def post(self, form, task_id):
        """Upload a photo of a task, for the step you take next (JPEG, PNG or WebP)

        By whoever may take a step on it now: its assignee, its grid's leader, the community
        admin. Checked, stripped of its metadata and stored as a visit's photo is; the same
        image sent again is answered as the duplicate it is. A task holds at most 20 photos
        (its steps' and yours not sent yet).
        Then send its `id` in the step's `photos` (`POST /tasks/{id}/transitions`).
        """
        task = tasks.get_task_for_photos(db.session, current_scope(), task_id, upload=True)
        return photo_upload.upload(task, form)


@blp.route("/<id:task_id>/photos/<id:photo_id>")
class TaskPhotoById(MethodView):
    @blp.doc(responses={"200": {"description": "The image bytes"}})
    def get(self, task_id, photo_id):
        """A photo of a task you can read (whoever reads the task); the read is audited

        One no step holds yet (uploaded for the next step) is its uploader's alone: 404 to
        anyone else until a step sends it.
        """
        task = tasks.get_task_for_photos(db.session, current_scope(), task_id)
        photo = photos.get_photo(db.session, task, photo_id, current_scope().user_id)
        response = photo_upload.serve(photo)
        privacy.record_disclosure("task_photo", [task.id])
        return response

    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT", description="A step holds the photo")
    def delete(self, task_id, photo_id):
        """Delete a photo you uploaded and sent with no step (taken by mistake)

        Only its uploader, and only while no step holds it: once sent with a step it is part
        of the task's history. Its bytes are deleted with retention's next run.
        """
        scope = current_scope()
        task = tasks.get_task_for_photos(db.session, scope, task_id)
        scope.require_writer()
        photos.delete_unsent_task_photo(db.session, task, photo_id, scope.user_id)
        db.session.commit()


@blp.route("/<id:task_id>/assign")
class Assign(MethodView):
    @blp.arguments(AssignSchema)
    @blp.response(200, TaskDetailSchema)
    @idempotency.idempotent(blp, audited="task")
    @audited("task", "update")
    def post(self, data, task_id):
        """Reassign a task (the grid's leader or the community admin); the new assignee is told

        Send an `Idempotency-Key` to retry safely: the same key gets the first answer, and the
        assignee is not notified again.
        """
        task = tasks.get_task(db.session, current_scope(), task_id, for_update=True)
        tasks.reassign(db.session, current_scope(), task, data["assignee_id"], data["note"], _now())
        db.session.commit()
        return task


@blp.route("/<id:task_id>/deadline")
class Deadline(MethodView):
    @blp.arguments(DeadlineSchema)
    @blp.response(200, TaskDetailSchema)
    @audited("task", "update")
    def put(self, data, task_id):
        """Change a 12345 ticket's deadline (the grid's leader or the community admin)

        The hotline extended the ticket's time limit (延期) or corrected it: `due_at` becomes
        the task's deadline and its `ticket_due_at` (after now, within 90 days). Only an open
        hotline task (else a 409); the same deadline again changes nothing. A `deadline` step
        records the change; the deadline is warned and escalated anew, and the assignee is told.
        """
        task = tasks.get_task(db.session, current_scope(), task_id, for_update=True)
        tasks.change_ticket_deadline(
            db.session, current_scope(), task, data["due_at"], data["note"], _now()
        )
        db.session.commit()
        return task


@blp.route("/<id:task_id>/move")
class Move(MethodView):
    @blp.response(200, MoveGridCollectionSchema)
    @blp.alt_response(409, response="CONFLICT", description="The task is no longer open")
    def get(self, task_id):
        """The grids a task may move to (the grid's leader or the admin), as outlines

        Every active grid of the task's community but its own: what `POST` takes, the leader's
        own grids or not (a leader of one grid moves its task to a neighbour). `yours` says
        which grids' households you may look up (to name the right one as `household_id`).
        Refused as the move is: 403 to who may not move the task, 409 for one no longer open.
        """
        scope = current_scope()
        task = tasks.get_task(db.session, scope, task_id)
        rows = tasks.move_targets(db.session, scope, task)
        return {"features": [grid_outline(scope, grid) for grid in rows]}

    @blp.arguments(MoveSchema)
    @blp.response(200, TaskDetailSchema)
    @idempotency.idempotent(blp, audited="task")
    @audited("task", "update")
    def post(self, data, task_id):
        """Move an open task to another grid of its community (the grid's leader or the admin)

        For a task opened for the wrong grid: it is dispatched in the new grid as a new task
        would be, its deadline kept; the old assignee and the new one are told, and the move is
        a step of the task (`move`, with the reason). A task no longer open is a 409; a grid of
        another community is a 422 (a 12345 ticket goes there by the hotline's re-dispatch).
        """
        task = tasks.get_task(db.session, current_scope(), task_id, for_update=True)
        tasks.move_task(db.session, current_scope(), task, now=_now(), **data)
        db.session.commit()
        return task


@settings_blp.route("/communities/<string:code>/task-settings")
class TaskSettings(MethodView):
    @settings_blp.response(200, TaskSettingsSchema)
    def get(self, code):
        """A community's task deadlines: hours to resolve and to first contact, by urgency

        The defaults filled in; `by_type` a request type's own where they differ. Everyone of
        the community reads them (the window shows them), and the district's viewers.
        """
        return community_settings.task_settings(get_community(db.session, current_scope(), code))

    @settings_blp.arguments(TaskSettingsSchema)
    @settings_blp.response(200, TaskSettingsSchema)
    def put(self, data, code):
        """Replace a community's task deadlines (its admin); an urgency left out takes the default

        Tasks opened from now on are given them; an open task keeps its deadline. A first
        contact later than the deadline, for any urgency and type, is a 422.
        """
        scope = current_scope()
        community = get_community(db.session, scope, code)
        view = community_settings.put_task_settings(db.session, scope, community, data)
        db.session.commit()
        return view


@settings_blp.route("/communities/<string:code>/campaigns")
class Campaigns(MethodView):
    @settings_blp.arguments(CampaignSchema)
    @settings_blp.response(201, CampaignResultSchema)
    @idempotency.idempotent(settings_blp, audited="task", listed="tasks")
    @audited("task", "create", records=lambda opened: opened["tasks"])
    def post(self, data, code):
        """Open a check in every grid at once (未诉先办: drains before the rains, what may fall
        before a windy day)

        One `proactive` task a grid, each standing at a point inside its grid and dispatched
        there as any task is. In the grids named (`grids`), else in every grid in service of
        the community that you lead: the community admin's every grid, a grid leader's own.
        Others are refused (403), and so is a grid named that you do not lead; a code naming
        no grid in service of the community is a 422 naming `grids`. All or nothing. Send an
        `Idempotency-Key` to retry safely: a retry gets the first answer, no second round.
        """
        opened = campaigns.open_campaign(db.session, current_scope(), code, data, now=_now())
        db.session.commit()
        return {"created": len(opened), "tasks": opened}
