"""Authentication: argon2 password hashing and JWT identity, with tokens revoked by version."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, request
from flask_jwt_extended import get_current_user, get_jwt, verify_jwt_in_request

from api import clock, errors
from api.extensions import db, jwt
from api.models import User
from api.scope import Scope

_hasher = PasswordHasher()
# Verifying against a dummy hash keeps the timing of "no such user" like "wrong password".
_DUMMY_HASH = _hasher.hash("gridwork-dummy-password")


def use_fast_hashing() -> None:
    """Cheap argon2 parameters, for test suites only (set by PASSWORD_HASHING = "fast")."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("gridwork-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def claims_for(user: User, sid: str | None = None) -> dict:
    """Claims of a user's tokens; `sid` ties access and refresh tokens to one sign-in session."""
    claims = {"role": user.role, "ver": user.token_version}
    if sid:
        claims["sid"] = sid
    return claims


def current_user() -> User:
    """The authenticated user of this request; 401 when there is none."""
    try:
        user = get_current_user()
    except RuntimeError:  # not verified yet in this request
        verify_jwt_in_request()
        user = get_current_user()
    if user is None:
        raise errors.Unauthorized("Sign in first.")
    return user


def current_scope() -> Scope:
    """The caller's scope, computed once per request."""
    store = request.environ
    if "gridwork.scope" not in store:
        grids = store.pop(_TOKEN_GRIDS, None)  # read with the token (sessions.token_state)
        store["gridwork.scope"] = Scope.for_user(db.session, current_user(), grids)
    return store["gridwork.scope"]


_TOKEN_USER = "gridwork.token_user"
_TOKEN_GRIDS = "gridwork.token_grids"


def _user_id(payload: dict) -> int:
    return int(payload["sub"])


def _expired(payload: dict) -> bool:
    exp = payload.get("exp")
    return exp is not None and clock.now().timestamp() >= exp


def init_app(app: Flask) -> None:
    if app.config.get("PASSWORD_HASHING") == "fast":
        use_fast_hashing()
    jwt.init_app(app)

    @jwt.user_identity_loader
    def _identity(user: User | int | str) -> str:
        return str(user.id if isinstance(user, User) else user)

    @jwt.user_lookup_loader
    def _lookup(_header: dict, payload: dict) -> User | None:
        # Loaded with the revocation check, which runs first.
        user = request.environ.pop(_TOKEN_USER, None) or db.session.get(User, _user_id(payload))
        if user is None or not user.active or payload.get("ver") != user.token_version:
            return None
        return user

    @jwt.token_in_blocklist_loader
    def _revoked_jti(_header: dict, payload: dict) -> bool:
        from api.services import sessions

        revoked, user, grids = sessions.token_state(
            db.session, payload.get("jti"), payload.get("sid"), _user_id(payload)
        )
        request.environ[_TOKEN_USER] = user  # for _lookup, which runs next
        request.environ[_TOKEN_GRIDS] = grids  # for current_scope
        return revoked

    @jwt.token_verification_loader
    def _not_expired_by_our_clock(_header: dict, payload: dict) -> bool:
        """PyJWT checks `exp` against the system clock; this checks it against api.clock too,
        so expiry follows the app's time (FIXED_NOW in tests and demos)."""
        return not _expired(payload)

    @jwt.token_verification_failed_loader
    def _verification_failed(_header: dict, payload: dict):
        if _expired(payload):
            return _expired_problem(_header, payload)
        return errors.problem(401, "Unauthorized", "The token was refused.", slug="unauthorized")

    @jwt.user_lookup_error_loader
    def _lookup_error(_header: dict, _payload: dict):
        return errors.problem(
            401, "Unauthorized", "The token is no longer valid.", slug="unauthorized"
        )

    @jwt.unauthorized_loader
    def _missing(reason: str):
        return errors.problem(401, "Unauthorized", reason, slug="unauthorized")

    @jwt.invalid_token_loader
    def _invalid(reason: str):
        return errors.problem(401, "Unauthorized", f"Invalid token: {reason}", slug="unauthorized")

    @jwt.expired_token_loader
    def _expired_problem(_header: dict, _payload: dict):
        return errors.problem(401, "Unauthorized", "The token has expired.", slug="token-expired")

    @jwt.revoked_token_loader
    def _revoked(_header: dict, _payload: dict):
        return errors.problem(401, "Unauthorized", "The token was revoked.", slug="unauthorized")

    @jwt.needs_fresh_token_loader
    def _not_fresh(_header: dict, _payload: dict):
        return errors.problem(
            401, "Unauthorized", "A fresh token is required.", slug="unauthorized"
        )


__all__ = [
    "claims_for",
    "current_scope",
    "current_user",
    "get_jwt",
    "hash_password",
    "init_app",
    "verify_password",
]
