"""Weekly coverage reports: computed on demand (JSON, CSV, XLSX, PDF) and the stored Monday runs."""

from __future__ import annotations

import json

from flask import Response, request
from flask.views import MethodView

from api import privacy
from api.auth import current_scope
from api.clock import now as _now
from api.extensions import Blueprint, db
from api.resources.reports.schemas import (
    CoverageQueryArgsSchema,
    ReportQueryArgsSchema,
    ReportSchema,
)
from api.services import report_render, report_store, reports

blp = Blueprint(
    "reports", __name__, url_prefix="/api/v1/reports", description="Weekly coverage reports."
)

_FILE_RESPONSES = {
    "200": {
        "description": "The report in the format asked for",
        "content": {ct.split(";")[0]: {} for ct in report_render.CONTENT_TYPES.values()},
    }
}


def _download(body: bytes, fmt: str, name: str, inline: bool = False) -> Response:
    response = Response(body, mimetype=report_render.CONTENT_TYPES[fmt].split(";")[0])
    if fmt == "csv":
        response.charset = "utf-8"
    if fmt != "json" or not inline:
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private"
    response.vary.add("Accept")
    return response


@blp.route("/coverage")
class Coverage(MethodView):
    @blp.arguments(CoverageQueryArgsSchema, location="query")
    @blp.doc(responses=_FILE_RESPONSES)
    @blp.alt_response(404, response="NOT_FOUND", description="No such community or area")
    def get(self, args):
        """The weekly coverage report of a community, street or district

        Per grid as the grids and households were that week: households (by kind), visited,
        coverage %, must-visit compliance per care tag, visits by evidence grade, households
        not visited for 2+ weeks, tasks and the three rates; per worker: visits, households,
        A- and B-post days; totals; the 8-week trend. `format=` (json, csv, xlsx, pdf) or the
        Accept header chooses the rendering; anything else is a 406.
        """
        fmt = report_render.negotiate(args.pop("format", None), request.headers.get("Accept"))
        week = args.pop("week")
        selection = reports.select_scope(db.session, current_scope(), week, **args)
        document = reports.coverage_json(db.session, selection, week, now=_now())
        # Per-worker figures are the workers' personal data: who read them, for which grids.
        privacy.record_disclosure("coverage_report", selection.grid_ids, fields=(fmt,))
        if fmt == "json":  # as PostgreSQL built it, not parsed (a city's runs to megabytes)
            name = f"coverage-{selection.code}-{week}.json"  # it says its own period and time
            return _download(document.encode(), fmt, name, inline=True)
        report = json.loads(document)
        shapes = reports.grid_shapes(db.session, selection.grid_ids, week) if fmt == "pdf" else None
        body = report_render.render(report, fmt, shapes)
        return _download(body, fmt, report_render.filename(report, fmt))


@blp.route("")
class Reports(MethodView):
    @blp.arguments(ReportQueryArgsSchema, location="query")
    @blp.response(200, ReportSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The stored weekly reports you can see, newest week first

        Generated every Monday 08:00 Asia/Shanghai for the week before, one per community.
        """
        rows, total = report_store.list_reports(
            db.session,
            current_scope(),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
            **args,
        )
        pagination_parameters.item_count = total
        return report_store.count_late_visits(db.session, rows)


@blp.route("/<id:report_id>")
class ReportById(MethodView):
    @blp.response(200, ReportSchema)
    def get(self, report_id):
        """One stored report with links to its files"""
        report = report_store.get_report(db.session, current_scope(), report_id)
        return report_store.count_late_visits(db.session, [report])[0]


@blp.route("/<id:report_id>/files/<fmt>")
class ReportFileByFormat(MethodView):
    @blp.doc(responses=_FILE_RESPONSES)
    def get(self, report_id, fmt):
        """Download a stored report as json, csv, xlsx or pdf

        A grid leader gets their copy: their grids only, the workers of those grids, totals
        over those grids (as the live report narrows them)."""
        report, body = report_store.read_file(db.session, current_scope(), report_id, fmt)
        privacy.record_disclosure("report", [report.id], fields=(fmt,))
        # A stored report is of a week that has ended: the week's own name.
        return _download(body, fmt, f"coverage-{report.code}-{report.week}.{fmt}")
