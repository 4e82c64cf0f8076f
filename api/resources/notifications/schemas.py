"""Schemas of the notifications resource: the inbox, its filters, the unread count."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Schema


class NotificationSchema(Schema):
    id = ma.fields.Integer(metadata={"description": "Also the push message id, as n<id>"})
    kind = ma.fields.String()
    title = ma.fields.String()
    body = ma.fields.String()
    data = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    urgent = ma.fields.Boolean()
    collapse_key = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    read_at = ma.fields.DateTime(allow_none=True)


class NotificationQueryArgsSchema(Schema):
    since = ma.fields.AwareDateTime(
        metadata={"description": "Only notifications created after this instant"}
    )
    unread = ma.fields.Boolean(metadata={"description": "Only unread (true) or read (false)"})


class UnreadCountSchema(Schema):
    unread = ma.fields.Integer()


class AckAllSchema(Schema):
    acknowledged = ma.fields.Integer()
