"""Schemas of the notifications resource: the inbox, its filters, the unread count."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Boolean, Integer, Schema
from api.resources.schemas import FullMatch


class NotificationSchema(Schema):
    id = Integer(metadata={"description": "Also the push message id, as n<id>"})
    kind = ma.fields.String()
    title = ma.fields.String()
    body = ma.fields.String()
    data = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    urgent = Boolean()
    collapse_key = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    read_at = ma.fields.DateTime(allow_none=True)


# The text of an `X-Inbox-Cursor` header, as the inbox answers it.
_CURSOR_TEXT = FullMatch(r"^[0-9]{1,19}$", error="A cursor is an X-Inbox-Cursor value.")


class NotificationQueryArgsSchema(Schema):
    since = ma.fields.AwareDateTime(
        metadata={
            "description": "Only notifications created after this instant. A notification "
            "is stamped when its change began and may commit later: a poller using `since` "
            "can miss it; poll with `cursor` instead"
        }
    )
    cursor = ma.fields.String(
        validate=_CURSOR_TEXT,
        metadata={
            "description": "The `X-Inbox-Cursor` of an earlier answer: every notification "
            "that answer could not show (committed since), and possibly some it did: skip ids "
            "you hold. Not with `since`"
        },
    )
    unread = Boolean(metadata={"description": "Only unread (true) or read (false)"})

    @ma.validates_schema
    def _one_of_since_and_cursor(self, data, **kwargs):
        if "since" in data and "cursor" in data:
            raise ma.ValidationError("Use `cursor` or `since`, not both.", "cursor")

    @ma.post_load
    def _cursor_number(self, data, **kwargs):
        if "cursor" in data:
            data["cursor"] = int(data["cursor"])
        return data


class UnreadCountSchema(Schema):
    unread = Integer()


class AckAllArgsSchema(Schema):
    cursor = ma.fields.String(
        validate=_CURSOR_TEXT,
        metadata={
            "description": "The `X-Inbox-Cursor` of the inbox answer you last read, as its "
            "text: only the notifications that answer surely showed are marked read, not one "
            "committed since (nor one whose change was still running then). Without it, "
            "every unread notification is marked read"
        },
    )

    @ma.post_load
    def _cursor_number(self, data, **kwargs):
        if "cursor" in data:
            data["cursor"] = int(data["cursor"])
        return data


class AckAllSchema(Schema):
    acknowledged = Integer()
