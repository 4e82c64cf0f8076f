"""Accounts: the community office opens, changes, switches off and resets its workers'."""

from __future__ import annotations

from flask import request
from flask.views import MethodView

from api import idempotency
from api.auth import current_scope, get_jwt
from api.clock import now
from api.extensions import Blueprint, db
from api.resources.users.schemas import (
    AccountChangeSchema,
    PasswordResetSchema,
    UserAccountSchema,
    UserCreateSchema,
    UserPatchSchema,
    UserQueryArgsSchema,
)
from api.services import accounts

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Accounts (账号).")


def _actor() -> accounts.Actor:
    return accounts.Actor(current_scope(), request.remote_addr, request.path, get_jwt().get("ver"))


@blp.route("")
class Users(MethodView):
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserAccountSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List the accounts you can look up

        A worker finds their own; a grid leader theirs and their grids' workers'; a community
        admin their community's; a district viewer their district's (phones masked). Filter by
        role, grid held and whether active. Paginated, by username.
        """
        rows, total = accounts.list_users(
            db.session,
            current_scope(),
            role=args.get("role"),
            grid=args.get("grid"),
            active=args.get("active"),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return rows

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserAccountSchema)
    @idempotency.idempotent(blp)
    def post(self, data):
        """Open an account in your community (community admins)

        A worker is assigned the grids given, a grid leader leads them. A username taken is
        a 409; sent again with its `Idempotency-Key` after a lost answer, the account's first
        answer. District viewers' accounts are opened with `gridwork user create`.
        """
        user = accounts.open_account(db.session, _actor(), data, now())
        db.session.commit()
        return user


@blp.route("/<id:user_id>")
class UserById(MethodView):
    @blp.response(200, UserAccountSchema)
    def get(self, user_id):
        """One account you can look up"""
        return accounts.get_user(db.session, current_scope(), user_id)

    @blp.arguments(UserPatchSchema)
    @blp.response(200, AccountChangeSchema)
    @idempotency.idempotent(blp)
    def patch(self, changes, user_id):
        """Change an account of your community (community admins)

        `grid_codes` replaces the grids it holds (leading a grid is the grid's `leader_id`);
        the open tasks it held in a grid it lets go are handed on there, as at a switch-off
        (listed in `tasks_handed_on`).
        `active: false` switches it off at once: its tokens, sessions, calendar link and push
        devices end, the tasks it held go to whom dispatch picks today (or wait unassigned,
        their overseers told), listed in `tasks_handed_on`; `shifts_ahead` lists the days a
        roster still gives it (moved to other grids: its own B-posts still in the grids it
        left); the published shifts it leaves uncovered are told to the community's other
        leaders and admins (`roster_short`), as for approved leave. A new `role` ends its
        sign-ins (the next carries the role);
        a grid leader who still leads grids keeps the role until those grids have another
        leader (409); made a community admin, it lets go of its grids and its tasks and
        shifts are handed on and listed as for a switch-off. Your own account is switched
        off, and your role changed, by another admin. `active: true` switches it on again
        with `new_password` (its old one may have been guessed while it was off); a fellow
        admin's is the district's (`gridwork user switch-on`). Sent again with its
        `Idempotency-Key` after a lost answer, the change's first answer.
        """
        outcome = accounts.change_account(db.session, _actor(), user_id, changes, now())
        db.session.commit()
        return outcome


@blp.route("/<id:user_id>/password")
class UserPassword(MethodView):
    @blp.arguments(PasswordResetSchema)
    @blp.response(204)
    def post(self, data, user_id):
        """Set a new password for an account of your community (community admins)

        Every token, session, calendar link and push device of the account ends; its owner
        signs in with the new password. Your own password: `POST /api/v1/auth/password`.
        """
        accounts.reset_password(db.session, _actor(), user_id, data["new_password"], now())
        db.session.commit()
