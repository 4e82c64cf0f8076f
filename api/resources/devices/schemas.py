"""Schemas of the devices resource: a phone's FCM token or a browser's Web Push subscription."""

from __future__ import annotations

import ipaddress
import socket
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import marshmallow as ma

from api.extensions import Boolean, Integer, Schema
from api.models.push import DEVICE_PLATFORMS
from api.services.names import CONTROL_CHARACTERS, has_control_characters

# A device's key (FCM token, or a web subscription's endpoint) is unique in an index, whose rows
# hold ~2700 bytes. FCM tokens run ~160-200 characters, push services' endpoints well under this.
MAX_KEY_LENGTH = 1024


def _no_control_characters(value: str) -> None:
    # A key a push service issued is printable: a NUL went to the database, which refused it
    # (a 422 naming nothing), and a newline was stored as part of a token nobody issued.
    if has_control_characters(value):
        raise ma.ValidationError(CONTROL_CHARACTERS)


class SubscriptionKeysSchema(Schema):
    p256dh = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=200), _no_control_characters]
    )
    auth = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=100), _no_control_characters]
    )


class SubscriptionSchema(Schema):
    class Meta:
        unknown = ma.EXCLUDE  # browsers add expirationTime and more

    endpoint = ma.fields.Url(
        required=True,
        schemes={"https"},
        validate=ma.validate.Length(max=MAX_KEY_LENGTH),
        error_messages={"invalid": "Not a valid https URL."},
        metadata={"description": "The push service's https URL for this browser"},
    )
    keys = ma.fields.Nested(SubscriptionKeysSchema, required=True)

    @ma.validates("endpoint")
    def _push_service(self, value, **kwargs):
        # The push worker POSTs to this URL: it must name a host out there, never an address or
        # this machine, or any user could aim the worker into the private network (the cloud's
        # metadata service, the database). The worker checks what the name resolves to, too.
        host = (urlsplit(value).hostname or "").rstrip(".")
        if _is_address(host) or host == "localhost" or host.endswith(".localhost"):
            raise ma.ValidationError(
                "Must name a push service's host, not an IP address or localhost."
            )


def _is_address(host: str) -> bool:
    """Whether `host` is an IP address, in any spelling a resolver reads as one."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # also 127.1, 0x7f.0x1, 2130706433: glibc resolves those
        return True
    except (OSError, ValueError):
        return False


# What its owner calls a device (devices.label): a phone's model, a browser and its system.
LABEL_MAX = 60


class DeviceLabel(ma.fields.String):
    """A device's label: trimmed; blank, longer than LABEL_MAX or with a control character (a
    NUL the database refuses, a newline that breaks the list) refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text or len(text) > LABEL_MAX:
            raise ma.ValidationError(f"Must be 1-{LABEL_MAX} characters, not blank.")
        if has_control_characters(text):
            raise ma.ValidationError(CONTROL_CHARACTERS)
        return text


class DeviceCreateSchema(Schema):
    platform = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(DEVICE_PLATFORMS),
        metadata={"description": ", ".join(DEVICE_PLATFORMS)},
    )
    token = ma.fields.String(
        validate=[ma.validate.Length(min=1, max=MAX_KEY_LENGTH), _no_control_characters],
        metadata={"description": "FCM registration token or Firebase installation ID"},
    )
    subscription = ma.fields.Nested(
        SubscriptionSchema, metadata={"description": "Web Push subscription (platform web)"}
    )
    label = DeviceLabel(
        metadata={
            "description": f"What its owner calls it (1-{LABEL_MAX} characters, e.g. "
            '"华为 Mate 40", "Chrome · 安卓"); registering again without one keeps it'
        }
    )


class DeviceSchema(Schema):
    id = Integer()
    platform = ma.fields.String()
    label = ma.fields.String(
        allow_none=True, metadata={"description": "What its owner calls it; null: not given"}
    )
    active = Boolean(
        metadata={
            "description": "Pushes go to this device: registered, not removed, and its "
            "sign-in live (see signed_in)"
        }
    )
    signed_in = Boolean(
        metadata={
            "description": "The sign-in that registered it is live. False: it expired or "
            "was ended; nothing is pushed to the device until the app signs in again on it "
            "and registers it"
        }
    )
    retired = Boolean(
        metadata={
            "description": "The push worker gave up on this device: its sends failed (no "
            "answer, refused, server errors) with none going for GRIDWORK_PUSH_RETIRE_FAILING_"
            "DAYS days, or its push service answered that it is gone (retired_reason "
            "'unregistered: ...': the app reinstalled, its data cleared, a Web Push 404/410). "
            "Nothing is pushed to it until the app registers it again (or remove it)"
        }
    )
    created_at = ma.fields.DateTime()
    last_seen_at = ma.fields.DateTime()
    last_success_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When a push last reached it; null: never"}
    )
    failing_since = ma.fields.DateTime(
        allow_none=True,
        metadata={
            "description": "Its first failed send since the last that went; null while "
            "pushes reach it"
        },
    )
    consecutive_failures = Integer(
        metadata={"description": "Sends failed in a row since the last that went"}
    )
    retired_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When the push worker retired it; null unless retired"},
    )
    retired_reason = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why: 'unreachable: ...' (since when no push went, how many sends "
            "failed in a row) or 'unregistered: ...' (what the push service answered); null "
            "unless retired"
        },
    )


class LocalTime(ma.fields.Time):
    """A time of day read in the `timezone` beside it: one with a UTC offset is refused. The
    column is a time without time zone: `22:00-05:00` was echoed back, then stored as 22:00."""

    default_error_messages = {
        "offset": "Must be a local time without a UTC offset (e.g. 22:00): quiet hours are "
        "read in `timezone`, Asia/Shanghai unless given."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is not None:
            raise self.make_error("offset")
        return moment


class QuietHoursSchema(Schema):
    quiet_start = LocalTime(
        allow_none=True,
        metadata={"description": "Local time quiet hours begin, e.g. 22:00 (no UTC offset)"},
    )
    quiet_end = LocalTime(
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
