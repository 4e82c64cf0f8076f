"""Devices that receive push notifications: register (upsert by token), list, remove."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import current_user, get_jwt
from api.clock import now
from api.extensions import Blueprint, db
from api.resources.devices.schemas import DeviceCreateSchema, DeviceSchema, QuietHoursSchema
from api.services import devices

blp = Blueprint("devices", __name__, url_prefix="/api/v1/devices", description="Devices for push.")


@blp.route("")
class Devices(MethodView):
    @blp.response(200, DeviceSchema(many=True))
    def get(self):
        """Your devices

        Those not removed; one whose sign-in expired or ended is listed `active` false and
        `signed_in` false: nothing is pushed to it until the app signs in again on it."""
        return devices.list_devices(db.session, current_user().id, now())

    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    def post(self, data):
        """Register this device (or refresh it: the same token is the same device)"""
        claims = get_jwt()
        device = devices.register_device(
            db.session,
            current_user().id,
            now=now(),
            token_version=claims.get("ver"),
            session_id=claims.get("sid"),
            **data,
        )
        db.session.commit()
        return device


@blp.route("/<id:device_id>")
class DeviceById(MethodView):
    @blp.response(204)
    def delete(self, device_id):
        """Remove one of your devices: nothing more is pushed to it"""
        devices.remove_device(db.session, current_user().id, device_id, now())
        db.session.commit()


@blp.route("/quiet-hours")
class QuietHours(MethodView):
    @blp.response(200, QuietHoursSchema)
    def get(self):
        """Your quiet hours (pushes wait until they end, urgent ones excepted)"""
        return devices.get_settings(db.session, current_user().id)

    @blp.arguments(QuietHoursSchema)
    @blp.response(200, QuietHoursSchema)
    def put(self, data):
        """Set your quiet hours, e.g. 22:00 to 07:00 Asia/Shanghai (null for none)"""
        row = devices.set_quiet_hours(
            db.session,
            current_user().id,
            data.get("quiet_start"),
            data.get("quiet_end"),
            data["timezone"],
        )
        db.session.commit()
        return row
