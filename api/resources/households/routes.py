"""Households: the register of homes and premises, scoped to the caller's grids."""

from __future__ import annotations

from flask import request
from flask.views import MethodView

from api import clock, errors, idempotency, privacy
from api.auth import current_scope
from api.extensions import Blueprint, db
from api.privacy import audited
from api.resources.files import table_doc, table_file
from api.resources.households.schemas import (
    HouseholdCreateSchema,
    HouseholdExportArgsSchema,
    HouseholdImportArgsSchema,
    HouseholdImportFileSchema,
    HouseholdImportResultSchema,
    HouseholdPatchSchema,
    HouseholdQueryArgsSchema,
    HouseholdRemovalSchema,
    HouseholdSchema,
    WindowHouseholdSchema,
    WindowLookupArgsSchema,
)
from api.services import household_files, household_removal, households
from api.services.households import AT_POINT_M
from api.services.weeks import LOCAL

blp = Blueprint(
    "households", __name__, url_prefix="/api/v1/households", description="Households (住户)."
)


@blp.route("")
class Households(MethodView):
    @blp.arguments(HouseholdQueryArgsSchema, location="query")
    @blp.response(200, HouseholdSchema(many=True))
    @blp.paginate()
    @audited("household")
    def get(self, args, pagination_parameters):
        """List the households you can see

        Filter by grid (code or id), care tags (any of), kind, address (`address=7号楼 502`:
        its words each one of the household's parts) and place: `lon` and `lat` give
        the households at that point (within `within_m`, 1 m by default), the flats of a stair
        entrance, which the map draws as one dot below zoom 16. With `week`, each household
        carries its visit state in that ISO week as the map draws it. Households out of the
        register (removed) are listed only with `status=removed` or `all`. Paginated; every
        household listed is an audited read.
        """
        near = None
        if "lon" in args:
            near = households.Near(args["lon"], args["lat"], args.get("within_m", AT_POINT_M))
        rows, total = households.list_households(
            db.session,
            current_scope(),
            grid=args.get("grid"),
            grid_id=args.get("grid_id"),
            tags=args.get("tags", ()),
            kind=args.get("kind"),
            near=near,
            week=args.get("week"),
            status=args["status"],
            address=args.get("address"),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return rows

    @blp.arguments(HouseholdCreateSchema)
    @blp.response(201, HouseholdSchema)
    @idempotency.idempotent(blp, audited="household")
    @audited("household", "create")
    def post(self, data):
        """Register a household or business premises

        Its grid is computed from the point; a point outside every grid is a 422 naming the
        nearest grid and the distance to it. The same address at the same point as a
        registered household (spelled in any way the import equates: 0502 is 502, ３ is 3,
        f502 is F502) is a 409 naming that household (`household_id`) when you may see it, and
        registers nothing: one flat, one household, as an import holds it.
        """
        household = households.create_household(db.session, current_scope(), data)
        db.session.commit()
        return household


@blp.route("/window")
class WindowHouseholds(MethodView):
    @blp.arguments(WindowLookupArgsSchema, location="query")
    @blp.response(200, WindowHouseholdSchema(many=True))
    @audited("household", fields=("address", "location"))
    def get(self, args):
        """Find the household a resident names at the hall window

        For the worker holding the A-post (the hall window) today in a published roster:
        the households in the register at the address said (`address`, as in the list), in
        any grid of the community (the resident may live in any), at most 20, each with its
        address, grid and point only: where the window task is placed (`household_id` of
        POST /tasks, `source: window`). A community admin finds the community's. Anyone else:
        403 (their own grids' households are in the list). Every household found is an
        audited read.
        """
        day = clock.now().astimezone(LOCAL).date()
        return households.window_lookup(db.session, current_scope(), args["address"], day)


@blp.route("/import")
class HouseholdImport(MethodView):
    @blp.arguments(HouseholdImportArgsSchema, location="query")
    @blp.arguments(HouseholdImportFileSchema, location="files")
    @blp.response(201, HouseholdImportResultSchema)
    @idempotency.idempotent(blp)
    def post(self, args, files):
        """Import a register file (CSV or XLSX), all or nothing

        Columns: building, unit, floor, room, lon, lat, kind, occupancy, members, tags
        (separated by `;`, `,`, `、` or `，`), phone — or the Chinese headers 楼栋, 单元,
        楼层, 房号, 经度, 纬度, 类型, 居住性质, 人数, 标签, 电话. Every error names its row
        and column. A row of the same address at the same point as an earlier row or a
        registered household is refused (a file imported twice adds nothing).

        `mode=update` imports a changed register: a row edits the registered household of its
        building, unit, floor and room nearest its point within 100 m (a PATCH of the
        columns the file has: its grid is recomputed, its history and the visit figures
        follow, the edit is audited); a row equal to its household is counted `unchanged`; a
        row matching none is created. Refused, naming the rows: two rows matching one
        household, a row matching a household you may not edit.

        A phone Excel saved as a number lost a landline's leading 0 (01065123456 became
        1065123456): in update mode, the household's stored phone without its 0 is that phone,
        unchanged; elsewhere such a phone (9-11 digits, not a mobile) refuses its row.
        """
        current_scope().require_register_importer()
        upload = files["file"]
        data = upload.read()
        if not data:
            raise errors.Unprocessable("The uploaded file is empty.")
        result = households.import_households(
            db.session,
            current_scope(),
            data,
            filename=upload.filename,
            content_type=upload.mimetype or request.content_type,
            audit_as=privacy.reader(),  # the households it creates, as creating one is
            audit_fields=privacy.fields_for("household"),
            mode=args["mode"],
        )
        db.session.commit()
        return result


@blp.route("/export")
class HouseholdExport(MethodView):
    @blp.arguments(HouseholdExportArgsSchema, location="query")
    @blp.alt_response(404, response="NOT_FOUND", description="No such grid in your scope")
    @blp.doc(responses=table_doc("The register file"))
    def get(self, args):
        """Export the register (XLSX or CSV) to edit and import again with mode=update

        The households you may register (your grids; an admin's community; `grid=` one of
        them) in the import's columns, Chinese headers and words (楼栋 … 电话, 住宅, 自住,
        独居、低保), points to the full precision stored and phones in full: imported again
        with `mode=update` the file changes nothing, and an edited row edits its household.
        District viewers may not export (403). Every household exported is an audit entry
        (action `export`).
        """
        scope = current_scope()
        fmt = args["format"]
        rows = households.export_households(db.session, scope, grid=args.get("grid"))
        data = household_files.write_register(rows, fmt)
        privacy.record_disclosure("household", [row.id for row in rows], "export")
        name = f"households-{args.get('grid') or scope.community_code or 'grids'}.{fmt}"
        return table_file(data, fmt, name)


@blp.route("/<id:household_id>")
class HouseholdById(MethodView):
    @blp.response(200, HouseholdSchema)
    @audited("household")
    def get(self, household_id):
        """A household's register record (phone masked for district viewers; read is audited)"""
        return households.get_household(db.session, current_scope(), household_id)

    @blp.arguments(HouseholdPatchSchema)
    @blp.response(200, HouseholdSchema)
    @audited("household", "update")
    def patch(self, changes, household_id):
        """Correct a household's register facts or location (its grid is recomputed)

        An address or point that makes it another registered household's (the same address at
        the same point) is a 409, as registering it would be. Facts changed since the sender
        read them (`expected`) are a 409 naming them as they are now, audited as a read of them.
        """
        household = households.get_household(db.session, current_scope(), household_id, lock=True)
        try:
            households.update_household(db.session, current_scope(), household, changes)
        except errors.ChangedSinceRead as refused:
            shown = [refused.record.id]
            db.session.rollback()  # nothing of the edit; the read it told, committed
            privacy.record_disclosure("household", shown, fields=refused.fields)
            raise
        db.session.commit()
        return household


@blp.route("/<id:household_id>/removal")
class HouseholdRemoval(MethodView):
    @blp.arguments(HouseholdRemovalSchema)
    @blp.response(201, HouseholdSchema)
    @blp.alt_response(409, response="CONFLICT", description="Out of the register already")
    @idempotency.idempotent(blp, audited="household")
    @audited("household", "update")
    def post(self, data, household_id):
        """Take a household out of the register (moved out, demolished, closed, a duplicate)

        The grid's leader or the community admin (a worker: 403). From the end of its
        `effective_date` (or now, when that is today) it is due nowhere: not in the plan, the
        map, the list (but with `status`), the export, nor counted in the weekly report from
        that week on; weeks before stay as they were. A visit dated before that time, synced
        late, is still taken; one after it is refused (`household-removed`). Removed already:
        409 (send an `Idempotency-Key` to retry safely: the same key gets the first answer).
        Its phone, care tags and note are erased after GRIDWORK_RETAIN_REMOVED_HOUSEHOLDS_DAYS
        (180). Audited as an update.
        """
        scope = current_scope()
        household = households.get_household(db.session, scope, household_id, lock=True)
        household_removal.remove_household(
            db.session,
            scope,
            household,
            reason=data["reason"],
            note=data.get("note"),
            effective_date=data.get("effective_date"),
            now=clock.now(),
            user_id=scope.user_id,
        )
        db.session.commit()
        return household

    @blp.response(200, HouseholdSchema)
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="In the register; its facts erased by retention; its address "
        "registered again at its point; or its grid retired or redrawn off its door",
    )
    @idempotency.idempotent(blp, audited="household")
    @audited("household", "update")
    def delete(self, household_id):
        """Undo a mistaken removal: the household is back as if it had never left

        Its history continues from the removal's time (the weeks since count it again, and
        visits refused meanwhile may be sent again). 409 when it is in the register, when its
        phone and care tags were erased by retention (register it again), when its address
        was registered again at its point meanwhile, or when its grid was retired or redrawn
        off its door since it left (register it again, in the grid that holds it now).
        """
        scope = current_scope()
        household = households.get_household(db.session, scope, household_id, lock=True)
        household_removal.restore_household(db.session, scope, household)
        db.session.commit()
        return household
