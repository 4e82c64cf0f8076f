"""The in-app inbox: your notifications, acknowledging them, the unread count."""

from __future__ import annotations

from flask import after_this_request
from flask.views import MethodView

from api import privacy
from api.auth import current_user
from api.clock import now
from api.extensions import Blueprint, db
from api.resources.notifications.schemas import (
    AckAllArgsSchema,
    AckAllSchema,
    NotificationQueryArgsSchema,
    NotificationSchema,
    UnreadCountSchema,
)
from api.services import notifications

CURSOR = "X-Inbox-Cursor"
CURSOR_HEADER = {
    CURSOR: {
        "description": "Pass as `cursor` to your next poll",
        "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
    }
}

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications", description="Inbox.")


@blp.route("")
class Inbox(MethodView):
    @blp.arguments(NotificationQueryArgsSchema, location="query")
    @blp.response(200, NotificationSchema(many=True), headers=CURSOR_HEADER)
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Your notifications, newest first

        Poll with `cursor` = the `X-Inbox-Cursor` header of your previous answer: you get every
        notification committed since, however long its change took (it is stamped when the
        change began), and possibly a few you already hold: skip ids you have. Paging through
        an answer, keep the cursor of the last page you read: it lets through what arrived
        while you paged (on top, onto a page you had read), repeating some rows of the pages
        before. `since` keeps those created after an instant and can miss a notification
        committed late. Notices naming a task (its title) or a household (its address) are
        audited as reads of them (fields `title`, `address`).
        """
        rows, total, cursor = notifications.inbox(
            db.session,
            current_user().id,
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
            **args,
        )
        after_this_request(lambda response: _with_cursor(response, cursor))
        pagination_parameters.item_count = total
        _audit_personal(rows)
        return rows


def _audit_personal(rows) -> None:
    """A read of the tasks and households the personal notices among `rows` show."""
    tasks, households = notifications.personal_subjects(rows)
    privacy.record_disclosure("task", tasks, fields=("title",))
    privacy.record_disclosure("household", households, fields=("address",))


def _with_cursor(response, cursor: int):
    if response.status_code == 200:
        response.headers[CURSOR] = str(cursor)
    return response


@blp.route("/unread-count")
class UnreadCount(MethodView):
    @blp.response(200, UnreadCountSchema)
    def get(self):
        """How many of your notifications are unread"""
        return {"unread": notifications.unread_count(db.session, current_user().id)}


@blp.route("/<id:notification_id>/ack")
class Ack(MethodView):
    @blp.response(200, NotificationSchema)
    def post(self, notification_id):
        """Acknowledge (read) one notification; the first read time is kept

        Its answer is the notice: audited as the inbox's are.
        """
        row = notifications.ack(db.session, current_user().id, notification_id, now())
        db.session.commit()
        _audit_personal([row])
        return row


@blp.route("/ack-all")
class AckAll(MethodView):
    @blp.arguments(AckAllArgsSchema, required=False)
    @blp.response(200, AckAllSchema)
    def post(self, args):
        """Acknowledge all your unread notifications, or those you have seen

        Send `cursor` = the `X-Inbox-Cursor` of the inbox answer you last read: a notification
        committed after it (one you never saw) stays unread. Only those that answer surely
        showed are marked; a few it did show may stay unread (while another change ran, the
        cursor stays behind): poll again and acknowledge again. Without a body, or without
        `cursor`, every unread notification is marked read, as before.
        """
        count = notifications.ack_all(db.session, current_user().id, now(), **args)
        db.session.commit()
        return {"acknowledged": count}
