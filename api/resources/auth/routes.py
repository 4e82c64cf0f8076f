"""Sign in for JWT access and refresh tokens; refresh; who am I."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    jwt_required,
)

from api import errors
from api.auth import claims_for, current_user, session_ended
from api.clock import now
from api.extensions import Blueprint, db
from api.resources.auth.schemas import (
    LogoutSchema,
    PasswordChangeSchema,
    SignedOutSchema,
    TokenRequestSchema,
    TokenSchema,
    UserSchema,
)
from api.services import devices, sessions, users

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


def issue_tokens(user, *, sid: str | None = None) -> dict:
    """Access and refresh tokens for `user`, tied to session `sid` (a new session if None)."""
    moment = now()
    refresh_jti = sessions.new_id()
    refresh_expires = moment + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
    if sid is None:
        sid = sessions.open_session(
            db.session,
            user.id,
            refresh_jti=refresh_jti,
            expires_at=refresh_expires,
            ip=request.remote_addr,
            now=moment,
        ).id
    claims = claims_for(user, sid)
    return {
        "access_token": create_access_token(user, additional_claims=claims),
        "refresh_token": create_refresh_token(
            user, additional_claims={**claims, "jti": refresh_jti}
        ),
        "token_type": "Bearer",
        "expires_in": _lifetime(),
        "password_change_required": user.must_change_password,
        "user": user,
        "_sid": sid,
        "_refresh_jti": refresh_jti,
        "_refresh_expires": refresh_expires,
    }


@blp.route("/token")
class Token(MethodView):
    @blp.doc(security=[])
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN", description="The account is switched off")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, credentials):
        """Sign in with username and password

        Returns a short-lived access token and a refresh token, both tied to a new session.
        Repeated failures for a username or an address answer 429 with `Retry-After`. The
        right password of an account switched off answers 403 (`account-switched-off`).
        """
        try:
            user = users.sign_in(
                db.session,
                credentials["username"],
                credentials["password"],
                ip=request.remote_addr,
                limits=login_limits(),
            )
        except errors.AccountSwitchedOff:
            db.session.commit()  # a failed sign-in: it counts
            raise
        db.session.commit()  # the attempt counts, success or not
        if user is None:
            raise errors.Unauthorized("Wrong username or password.")
        tokens = issue_tokens(user)
        db.session.commit()
        return tokens


@blp.route("/refresh")
class Refresh(MethodView):
    @jwt_required(refresh=True)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self):
        """Exchange a refresh token (as the bearer token) for new access and refresh tokens

        The refresh token is single-use (rotation): use the new one next time. Presenting one
        already exchanged revokes the whole session (reuse detection) and answers 401.
        """
        user, claims = current_user(), get_jwt()
        sid = claims.get("sid")
        if not sid:
            raise errors.Unauthorized("This refresh token predates sign-in sessions; sign in.")
        tokens = issue_tokens(user, sid=sid)
        live = sessions.use_refresh(
            db.session,
            sid,
            claims["jti"],
            new_jti=tokens["_refresh_jti"],
            expires_at=tokens["_refresh_expires"],
            now=now(),
        )
        db.session.commit()  # a detected replay revokes the session even though this fails
        if not live:
            raise errors.Unauthorized(
                "This refresh token was already used: the session is revoked; sign in again.",
                **session_ended(sid),
            )
        return tokens


@blp.route("/password")
class Password(MethodView):
    @jwt_required()
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data):
        """Change your password; every other session is signed out

        Needs the current password. Wrong guesses are counted per sign-in session, apart from
        failed sign-ins (neither blocks the other): past the limit, 429 with `Retry-After`. All
        tokens issued before are revoked; the answer carries new tokens for this session.
        """
        user = current_user()
        caller = get_jwt().get("sid")
        try:
            users.change_password(
                db.session,
                user,
                data["current_password"],
                data["new_password"],
                ip=request.remote_addr,
                limits=login_limits(),
                sid=caller,
                token_version=get_jwt().get("ver"),
            )
        except errors.Forbidden:
            db.session.commit()  # a wrong current password counts, though the request fails
            raise
        # Every session ends (this one too), and with them their devices' pushes (a phone
        # lost); the caller goes on with a fresh session, their device with it.
        sessions.revoke_all(db.session, user.id, "password-changed", now(), keep_devices_of=caller)
        tokens = issue_tokens(user)
        sessions.move_devices(db.session, user.id, caller, tokens["_sid"])
        db.session.commit()
        return tokens


@blp.route("/me")
class Me(MethodView):
    @jwt_required()
    @blp.response(200, UserSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self):
        """The signed-in user, with role and assigned grids"""
        return current_user()


@blp.route("/logout")
class Logout(MethodView):
    @jwt_required()
    @blp.arguments(LogoutSchema)
    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, data):
        """Sign out this device: revoke this session and stop pushes to the device given

        This token and its session are revoked (the refresh token too); the user's other
        devices stay signed in.
        """
        claims = get_jwt()
        # The session ends: its refresh token dies with this access token.
        sessions.revoke(db.session, claims.get("sid"), "logout", now(), device_reason="signed out")
        devices.logout(
            db.session,
            current_user().id,
            claims["jti"],
            devices.expiry(claims.get("exp")),
            now=now(),
            **data,
        )
        db.session.commit()


@blp.route("/logout-all")
class LogoutAll(MethodView):
    @jwt_required()
    @blp.response(200, SignedOutSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self):
        """Sign out everywhere: revoke every session of yours and stop pushes to every device

        Every access and refresh token of yours stops working, this one too (sign in again);
        no device of yours is sent notifications until it is registered again; the calendar
        link handed out so far stops (`GET /me/calendar-url` gives a new one). The password
        stays as it is (a leaked one: `POST /auth/password`, which ends the other sessions too).
        The answer says how many sessions and devices were ended.
        """
        signed_out = sessions.sign_out_everywhere(
            db.session, current_user().id, get_jwt().get("ver"), now()
        )
        db.session.commit()
        return signed_out
