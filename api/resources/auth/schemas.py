"""Schemas of the auth resource: credentials in, tokens and the signed-in user out."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Boolean, Integer, Schema


class TokenRequestSchema(Schema):
    username = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=200)
    )


class UserSchema(Schema):
    id = Integer()
    username = ma.fields.String()
    display_name = ma.fields.String()
    role = ma.fields.String(
        metadata={"description": "worker, grid_leader, community_admin or district_viewer"}
    )
    community_code = ma.fields.String(allow_none=True)
    district_code = ma.fields.String(allow_none=True)
    grid_codes = ma.fields.Method(
        "_grid_codes",
        metadata={"type": "array", "items": {"type": "string"}, "description": "Assigned grids"},
    )
    password_change_required = Boolean(
        attribute="must_change_password",
        metadata={"description": "An admin set the password: set your own first"},
    )

    def _grid_codes(self, user) -> list[str]:
        return [g.code for g in user.grids if g.retired_at is None]


class TokenSchema(Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String(metadata={"example": "Bearer"})
    expires_in = Integer(metadata={"description": "Access token lifetime, seconds"})
    password_change_required = Boolean(
        metadata={
            "description": "An admin set this password: these tokens open only /auth until "
            "POST /auth/password sets your own (other endpoints answer 403 "
            "password-change-required)"
        }
    )
    user = ma.fields.Nested(UserSchema)


class AccessTokenSchema(Schema):
    access_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = Integer()


class LogoutSchema(Schema):
    device_id = Integer(metadata={"description": "This device, to stop pushes to it"})
    token = ma.fields.String(
        validate=ma.validate.Length(min=1, max=4096),
        metadata={"description": "Or this device's push token"},
    )


class SignedOutSchema(Schema):
    sessions_revoked = Integer(
        metadata={"description": "Sign-ins ended (this one too): their tokens no longer work"}
    )
    devices_signed_out = Integer(
        metadata={"description": "Devices (phones, browsers) no longer sent notifications"}
    )


class PasswordChangeSchema(Schema):
    current_password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=200)
    )
    new_password = ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(min=8, max=200),
        metadata={"description": "At least 8 characters, not the current password"},
    )
