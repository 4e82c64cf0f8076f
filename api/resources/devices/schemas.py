"""Schemas of the devices resource: a phone's FCM token or a browser's Web Push subscription."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

import marshmallow as ma

from api.extensions import Schema
from api.models.push import DEVICE_PLATFORMS

# A device's key (FCM token, or a web subscription's endpoint) is unique in an index, whose rows
# hold ~2700 bytes. FCM tokens run ~160-200 characters, push services' endpoints well under this.
MAX_KEY_LENGTH = 1024


class SubscriptionKeysSchema(Schema):
    p256dh = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    auth = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))


class SubscriptionSchema(Schema):
    class Meta:
        unknown = ma.EXCLUDE  # browsers add expirationTime and more

    endpoint = ma.fields.Url(
        required=True, schemes={"https", "http"}, validate=ma.validate.Length(max=MAX_KEY_LENGTH)
    )
    keys = ma.fields.Nested(SubscriptionKeysSchema, required=True)


class DeviceCreateSchema(Schema):
    platform = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(DEVICE_PLATFORMS),
        metadata={"description": ", ".join(DEVICE_PLATFORMS)},
    )
    token = ma.fields.String(
        validate=ma.validate.Length(min=1, max=MAX_KEY_LENGTH),
        metadata={"description": "FCM registration token or Firebase installation ID"},
    )
    subscription = ma.fields.Nested(
        SubscriptionSchema, metadata={"description": "Web Push subscription (platform web)"}
    )


class DeviceSchema(Schema):
    id = ma.fields.Integer()
    platform = ma.fields.String()
    active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    last_seen_at = ma.fields.DateTime()


class QuietHoursSchema(Schema):
    quiet_start = ma.fields.Time(
        allow_none=True, metadata={"description": "Local time quiet hours begin, e.g. 22:00"}
    )
    quiet_end = ma.fields.Time(
        allow_none=True, metadata={"description": "Local time they end, e.g. 07:00"}
    )
    timezone = ma.fields.String(load_default="Asia/Shanghai")

    @ma.validates("timezone")
    def _zone(self, value, **kwargs):
        # A name from the list, not ZoneInfo(value): that opens a file under the zone directory
        # and raises whatever opening it raises ("America" is a directory, a long name is too
        # long for the file system), none of which should reach the client as a 500.
        if value not in _time_zones():
            raise ma.ValidationError("Unknown time zone.")


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())  # walks the zone directories: once per process
