"""Authentication: argon2 password hashing and JWT identity, with tokens revoked by version."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, Flask, Response, current_app, request
from flask_jwt_extended import get_current_user, get_jwt, verify_jwt_in_request

from api import clock, errors
from api.extensions import PASSWORD_CHANGE_CLAIM, db, jwt
from api.models import User
from api.scope import Scope, ScopeGrids
from api.services import sessions
from api.services.sessions import Principal, TokenCheck

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
    if user.must_change_password:
        claims[PASSWORD_CHANGE_CLAIM] = True
    return claims


def current_user() -> User:
    """The authenticated user of this request; 401 when there is none."""
    try:
        user = get_current_user()
    except RuntimeError:  # not verified yet in this request
        verify_jwt_in_request()
        user = get_current_user()
    if isinstance(user, Principal):  # its check was left to the view's statement
        user = check_token_now()
    if user is None:
        raise errors.Unauthorized("Sign in first.")
    return user


def current_scope() -> Scope:
    """The caller's scope, computed once per request."""
    store = request.environ
    if "gridwork.scope" not in store:
        check = store.get(_DEFERRED)
        if check is not None:
            store["gridwork.scope"] = check.principal.scope
        else:
            grids = store.pop(_TOKEN_GRIDS, None)  # read with the token (sessions.token_state)
            store["gridwork.scope"] = Scope.for_user(db.session, current_user(), grids)
    return store["gridwork.scope"]


_TOKEN_USER = "gridwork.token_user"
_TOKEN_GRIDS = "gridwork.token_grids"
_DEFERRED = "gridwork.token_check"  # a TokenCheck left to the view's statement, until settled
_TOKEN_CHECK = "gridwork.token_check_made"  # this request's TokenCheck, kept once settled
_ACCEPTED = "gridwork.token_accepted"  # flask-jwt-extended accepted the token (its user loaded)
_CHECKED_USER = "gridwork.checked_user"  # the user of a check made after all (check_token_now)


# --- the token check inside the view's statement ---------------------------------------------
# A map asks for dozens of tiles at once, each with the same token, each one statement: the
# token check (a round trip of its own) was a third of a small tile's time. For endpoints that
# take it (`defer_token_check`), a token whose user was checked before in this process has its
# check made by the view's own statement (`sessions.still_valid`, with `deferred_check`'s
# values): the statement answers nothing unless the token is still live and its user still
# the principal checked before, scope and all. The view then confirms the check
# (`confirm_check`), or makes it now (`check_token_now`: 401, or the scope as it is now). A
# request answered without confirming it (an error, a tile drawn without SQL) has its token
# checked before the answer leaves (`_finish_deferred_check`).

PRINCIPALS_KEPT = 4096  # principals remembered per process (a few hundred bytes each)
_PRINCIPALS = "gridwork.principals"


class _Principals:
    """The principals a full token check established, by user and token version, for the
    endpoints that check tokens in their statement."""

    def __init__(self, endpoints: Iterable[str]):
        self.endpoints = frozenset(endpoints)
        self._by_token: dict[tuple[int, int], Principal] = {}
        self._lock = threading.Lock()  # for threaded servers; a read needs none

    def get(self, user_id: int, version) -> Principal | None:
        return self._by_token.get((user_id, version))

    def put(self, principal: Principal) -> None:
        key = (principal.id, principal.token_version)
        with self._lock:
            if key not in self._by_token and len(self._by_token) >= PRINCIPALS_KEPT:
                del self._by_token[next(iter(self._by_token))]  # the oldest
            self._by_token[key] = principal

    def drop(self, principal: Principal) -> None:
        """Forget `principal` (not another request's newer one for the same token)."""
        key = (principal.id, principal.token_version)
        with self._lock:
            if self._by_token.get(key) is principal:
                del self._by_token[key]


def defer_token_check(blueprint: Blueprint, endpoints: Iterable[str]) -> None:
    """Let `endpoints` of `blueprint` check a known token inside their own statement."""
    names = tuple(endpoints)
    blueprint.record_once(lambda state: _register(state.app, names))
    # A blueprint's after-request functions run before the app's: the security headers
    # (api.security) still go on a refusal made here.
    blueprint.after_request(_finish_deferred_check)


def _register(app: Flask, endpoints: Iterable[str]) -> None:
    known = app.extensions.get(_PRINCIPALS)
    app.extensions[_PRINCIPALS] = _Principals(
        (known.endpoints if known else frozenset()) | set(endpoints)
    )


def _principals() -> _Principals | None:
    """The principals, when this request's endpoint checks tokens in its statement."""
    principals = current_app.extensions.get(_PRINCIPALS)
    if principals is None or request.endpoint not in principals.endpoints:
        return None
    return principals


def deferred_check() -> TokenCheck | None:
    """The token check this request's statement is to make, if any (see above)."""
    return request.environ.get(_DEFERRED)


def confirm_check() -> None:
    """The view's statement found the token live and its user the principal checked."""
    request.environ.pop(_DEFERRED, None)


def check_token_now() -> User:
    """Make now the check that was left to the view's statement (which found the token dead or
    its user changed, or did not run): 401 as for any request with this token, else the user,
    whose scope (and principal) replace those checked before. Made once a request; asked
    again (`current_user()` after the statement confirmed the check), the user it found."""
    store = request.environ
    check = store.get(_TOKEN_CHECK)
    if check is None:  # the token was checked in full, as on any endpoint
        return current_user()
    if _CHECKED_USER not in store:
        store.pop(_DEFERRED, None)
        # The principal's scope is not the user's until checked: a refusal leaves none.
        store.pop("gridwork.scope", None)
        principals = _principals()
        if principals is not None:
            principals.drop(check.principal)
        user, grids = _check_in_full(check)
        if principals is not None:
            principals.put(Principal.of(user, grids))
        store[_CHECKED_USER] = user
        store["gridwork.scope"] = Scope.for_user(db.session, user, grids)
    return store[_CHECKED_USER]


def _check_in_full(check: TokenCheck) -> tuple[User, ScopeGrids]:
    """What `_revoked_jti` and `_lookup` decide of a token, in their order: revoked, then the
    user. (The principal was found by the token's `ver`: its version is the token's.)"""
    user, grids = _refuse_revoked(check)
    if user is None or not user.active or user.token_version != check.principal.token_version:
        raise errors.Unauthorized("The token is no longer valid.")
    return user, grids


def _refuse_revoked(check: TokenCheck) -> tuple[User | None, ScopeGrids]:
    """`_revoked_jti`'s part of the check: 401 for a revoked token, else its user (None when
    gone) and their grids."""
    revoked, user, grids = sessions.token_state(
        db.session, check.jti, check.sid, check.principal.id
    )
    if revoked:
        raise errors.Unauthorized("The token was revoked.", **session_ended(check.sid))
    return user, grids


def session_ended(sid: str | None) -> dict[str, str]:
    """The problem member that says why the token's sign-in ended (`sessions.why_ended`):
    `session_ended`, when it was ended for a reason its holder is told."""
    why = sessions.why_ended(db.session, sid)
    return {"session_ended": why} if why else {}


def _finish_deferred_check(response: Response) -> Response:
    """A request answered without its statement's check (an error, a tile drawn without SQL)
    has its token checked now: a dead token gets its 401, not the answer."""
    store = request.environ
    if _DEFERRED not in store or response.status_code >= 500:
        return response  # a server's error discloses nothing; its database may be away
    try:
        if store.get(_ACCEPTED):
            check_token_now()
        else:
            # flask-jwt-extended refused the token after its revocation check, which was
            # left to the statement (expired on the app's clock, the database's, which may
            # run ahead of the host's that PyJWT reads). As on any endpoint, a revoked token
            # hears that first; otherwise that refusal stands, not the user's state.
            _refuse_revoked(store.pop(_DEFERRED))
    except errors.Unauthorized as refused:
        db.session.rollback()
        return errors.handle_gridwork_error(refused)
    return response


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
    def _lookup(_header: dict, payload: dict) -> User | Principal | None:
        # Loaded with the revocation check, which runs first.
        user = request.environ.pop(_TOKEN_USER, None) or db.session.get(User, _user_id(payload))
        if isinstance(user, Principal):
            request.environ[_ACCEPTED] = True  # its signature, type and expiry verified
            return user  # checked by the view's statement (deferred_check)
        if user is None or not user.active or payload.get("ver") != user.token_version:
            return None
        principals = _principals()
        if principals is not None:
            principals.put(Principal.of(user, request.environ[_TOKEN_GRIDS]))
        return user

    @jwt.token_in_blocklist_loader
    def _revoked_jti(_header: dict, payload: dict) -> bool:
        principals = _principals()
        if principals is not None:
            known = principals.get(_user_id(payload), payload.get("ver"))
            if known is not None:
                check = TokenCheck(payload.get("jti"), payload.get("sid"), known)
                request.environ[_DEFERRED] = request.environ[_TOKEN_CHECK] = check
                request.environ[_TOKEN_USER] = known  # for _lookup, which runs next
                return False
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
    def _lookup_error(_header: dict, payload: dict):
        return errors.problem(
            401,
            "Unauthorized",
            "The token is no longer valid.",
            slug="unauthorized",
            **session_ended(payload.get("sid")),
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
    def _revoked(_header: dict, payload: dict):
        return errors.problem(
            401,
            "Unauthorized",
            "The token was revoked.",
            slug="unauthorized",
            **session_ended(payload.get("sid")),
        )

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
