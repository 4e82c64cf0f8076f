"""Schemas of the users resource: an account as the office sees it, its form and changes."""

from __future__ import annotations

import marshmallow as ma

from api import privacy
from api.extensions import Boolean, Integer, Schema
from api.models import ROLES
from api.resources.schemas import code_field, name_field
from api.services.accounts import MANAGED_ROLES
from api.services.names import CONTROL_CHARACTERS, has_control_characters
from api.services.users import MIN_PASSWORD_LENGTH, USERNAME_MAX


def _one_line(value: str) -> None:
    if has_control_characters(value):
        raise ma.ValidationError(CONTROL_CHARACTERS)


_GRID_CODES = ma.fields.List(
    code_field(15),
    validate=ma.validate.Length(max=200),
    metadata={"description": "The grids a worker or grid leader holds (15-digit codes)"},
)
_PHONE = ma.fields.String(allow_none=True, validate=[ma.validate.Length(min=1, max=32), _one_line])
_PASSWORD = ma.fields.String(
    required=True,
    load_only=True,
    validate=ma.validate.Length(min=MIN_PASSWORD_LENGTH, max=200),
    metadata={"description": f"At least {MIN_PASSWORD_LENGTH} characters"},
)


# A list of grid codes, as the OpenAPI document types it (a Method field is untyped there).
_CODES = {"type": "array", "items": {"type": "string"}}


class UserAccountSchema(Schema):
    id = Integer()
    username = ma.fields.String()
    display_name = ma.fields.String()
    phone = ma.fields.Function(
        lambda user: privacy.phone(user.phone),
        metadata={
            "type": "string",
            "nullable": True,
            "description": "In full, or masked for district viewers",
        },
    )
    role = ma.fields.String(metadata={"description": ", ".join(ROLES)})
    community_code = ma.fields.String(allow_none=True)
    district_code = ma.fields.String(allow_none=True)
    grid_codes = ma.fields.Method(
        "_grid_codes", metadata={**_CODES, "description": "The grids in service it holds"}
    )
    led_grid_codes = ma.fields.Method(
        "_led_grid_codes", metadata={**_CODES, "description": "The grids in service it leads"}
    )
    active = Boolean(metadata={"description": "False: switched off, cannot sign in"})
    password_change_required = Boolean(
        attribute="must_change_password",
        metadata={"description": "Its password was reset: its owner sets their own next"},
    )
    created_at = ma.fields.AwareDateTime()

    def _grid_codes(self, user) -> list[str]:
        return [g.code for g in user.grids if g.retired_at is None]

    def _led_grid_codes(self, user) -> list[str]:
        return [g.code for g in user.led_grids]


class HandedOnSchema(Schema):
    task_id = Integer()
    assignee_id = Integer(
        allow_none=True, metadata={"description": "Its new holder; null: waits unassigned"}
    )


class AccountChangeSchema(UserAccountSchema):
    tasks_handed_on = ma.fields.Method(
        "_handed_on",
        metadata={
            "type": "array",
            "items": {"$ref": "#/components/schemas/HandedOn"},
            "description": "Switched off or made an admin: the tasks it held, and who holds "
            "them now",
        },
    )
    shifts_ahead = ma.fields.List(
        ma.fields.Date(),
        metadata={
            "description": "Switched off or made an admin: days a roster still gives it a "
            "shift; its grids changed: days a roster still gives it a B-post of its own in a "
            "grid it no longer holds (re-roster)"
        },
    )

    def _handed_on(self, outcome) -> list[dict]:
        return HandedOnSchema(many=True).dump(
            [{"task_id": t, "assignee_id": a} for t, a in outcome.handed_on]
        )


class UserQueryArgsSchema(Schema):
    role = ma.fields.String(validate=ma.validate.OneOf(ROLES))
    grid = code_field(15, metadata={"description": "Accounts holding this grid"})
    active = Boolean(metadata={"description": "Only active (true) or switched-off (false)"})


class UserCreateSchema(Schema):
    username = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=USERNAME_MAX), _one_line]
    )
    password = _PASSWORD
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(MANAGED_ROLES))
    display_name = name_field()
    phone = _PHONE
    grid_codes = _GRID_CODES


class UserPatchSchema(Schema):
    display_name = name_field()
    phone = _PHONE
    role = ma.fields.String(
        validate=ma.validate.OneOf(MANAGED_ROLES),
        metadata={
            "description": "A new role ends the account's sign-ins (the next one carries it); "
            "a grid leader still leading grids is refused (409: name their new leader first); "
            "made a community admin, it lets go of its grids and its tasks are handed on"
        },
    )
    grid_codes = _GRID_CODES
    active = Boolean(
        metadata={
            "description": "false switches the account off: its tokens, sessions, calendar "
            "link and devices end, its tasks go to whom dispatch picks; true switches it on "
            "again, with `new_password`"
        }
    )
    new_password = ma.fields.String(
        load_only=True,
        validate=ma.validate.Length(min=MIN_PASSWORD_LENGTH, max=200),
        metadata={
            "description": "Required with `active: true` switching an account on again: the "
            "password its owner signs in with, handed over by the admin (the old one may have "
            "been guessed while it was off); they set their own at the first sign-in"
        },
    )


class PasswordResetSchema(Schema):
    new_password = _PASSWORD
