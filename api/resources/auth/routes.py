"""Sign in for JWT access and refresh tokens; refresh; who am I."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import create_access_token, create_refresh_token, jwt_required

from api import errors
from api.auth import claims_for, current_user
from api.extensions import Blueprint, db
from api.resources.auth.schemas import (
    AccessTokenSchema,
    TokenRequestSchema,
    TokenSchema,
    UserSchema,
)
from api.services import users

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign in.", public=True)


def login_limits() -> users.LoginLimits:
    config = current_app.config
    return users.LoginLimits(
        window=timedelta(minutes=config["LOGIN_WINDOW_MINUTES"]),
        max_per_user=config["LOGIN_MAX_FAILURES"],
        max_per_ip=config["LOGIN_MAX_FAILURES_PER_IP"],
    )


def _lifetime() -> int:
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


@blp.route("/token")
class Token(MethodView):
    @blp.doc(security=[])
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    def post(self, credentials):
        """Sign in with username and password

        Returns a short-lived access token and a refresh token.
        """
        user = users.sign_in(
            db.session,
            credentials["username"],
            credentials["password"],
            ip=request.remote_addr,
            limits=login_limits(),
        )
        db.session.commit()  # the attempt counts, success or not
        if user is None:
            raise errors.Unauthorized("Wrong username or password.")
        claims = claims_for(user)
        return {
            "access_token": create_access_token(user, additional_claims=claims),
            "refresh_token": create_refresh_token(user, additional_claims=claims),
            "token_type": "Bearer",
            "expires_in": _lifetime(),
            "user": user,
        }


@blp.route("/refresh")
class Refresh(MethodView):
    @jwt_required(refresh=True)
    @blp.response(200, AccessTokenSchema)
    def post(self):
        """Exchange a refresh token (as the bearer token) for a new access token"""
        user = current_user()
        return {
            "access_token": create_access_token(user, additional_claims=claims_for(user)),
            "token_type": "Bearer",
            "expires_in": _lifetime(),
        }


@blp.route("/me")
class Me(MethodView):
    @jwt_required()
    @blp.response(200, UserSchema)
    def get(self):
        """The signed-in user, with role and assigned grids"""
        return current_user()
