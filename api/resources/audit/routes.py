"""The audit log of personal-data access, for community admins and district viewers."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import current_scope
from api.extensions import Blueprint, db
from api.resources.audit.schemas import AuditEntrySchema, AuditQueryArgsSchema
from api.services import audit

blp = Blueprint(
    "audit", __name__, url_prefix="/api/v1/audit", description="Audit log (个人信息访问记录)."
)


@blp.route("")
class AuditLog(MethodView):
    @blp.arguments(AuditQueryArgsSchema, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Who read or changed residents' personal data, newest first

        Community admins see the entries of their community's users, district viewers those
        of their district's; others get 403. Asked about one record of their own (`resource`
        household, task or visit with `record` / `record_uuid`), they see every entry about
        it, whoever the reader (a district viewer, a reliever from another community);
        `household` lists every entry about a household of theirs, its visits and its tasks;
        `view=records` every entry about their records, whoever the reader (newest first,
        found by walking the log: its `X-Pagination` counts no further than the next page's
        first entry, exact on the last page). Filter by actor, action, resource, record and
        period; paginated (`X-Pagination`). Entries are kept at
        least 184 days (six months); `action=purge` lists the purges of older ones (how many
        went, and up to when: where every other answer begins).
        """
        rows, pagination_parameters.item_count = audit.list_entries(
            db.session,
            current_scope(),
            user_id=args.get("user"),
            action=args.get("action"),
            resource=args.get("resource"),
            record_id=args.get("record"),
            record_uuid=args.get("record_uuid"),
            since=args.get("since"),
            until=args.get("until"),
            household_id=args.get("household"),
            view=args.get("view") or "readers",
            before=args.get("before"),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        for entry, username in rows:
            entry.username = username  # read by AuditEntrySchema
        return [entry for entry, _ in rows]
