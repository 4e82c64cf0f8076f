"""The exception hierarchy and the one handler that turns every error into RFC 9457 problem JSON."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, has_request_context, json
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from api.crypto import DataKeyError

log = logging.getLogger("gridwork.errors")

PROBLEM_TYPE_BASE = "https://gridwork.example/problems/"
PROBLEM_JSON = "application/problem+json"


class GridworkError(Exception):
    """A domain error safe to show to the client: it carries its status and its message.

    `detail` is what the client reads; anything internal belongs in the log, not here.
    """

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Any = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class BadRequest(GridworkError):
    pass


class Unauthorized(GridworkError):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(GridworkError):
    status, title, slug = 403, "Forbidden", "forbidden"


class PasswordChangeRequired(Forbidden):
    slug = "password-change-required"


class AccountSwitchedOff(Forbidden):
    """The right password of an account an admin switched off (told only to who knows it)."""

    slug = "account-switched-off"


class NotFound(GridworkError):
    status, title, slug = 404, "Not found", "not-found"


class NotAcceptable(GridworkError):
    status, title, slug = 406, "Not acceptable", "not-acceptable"


class Conflict(GridworkError):
    status, title, slug = 409, "Conflict", "conflict"


class ChangedSinceRead(Conflict):
    """A correction of facts changed since the sender read them: the 409 names them as they
    are now (`changed`), a read of the record (`record`, its `fields`) for the audit log."""

    def __init__(self, detail: str, *, record: Any, changed: dict[str, Any]) -> None:
        super().__init__(detail, changed=changed)
        self.record = record
        self.fields = tuple(changed)


class PayloadTooLarge(GridworkError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(GridworkError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class Unprocessable(GridworkError):
    """The request is well-formed but breaks a domain rule (bad geometry, a point outside grids)."""

    status, title, slug = 422, "Unprocessable content", "unprocessable"


class TooManyRequests(GridworkError):
    status, title, slug = 429, "Too many requests", "too-many-requests"


class ServiceUnavailable(GridworkError):
    status, title, slug = 503, "Service unavailable", "service-unavailable"


class StoredDataDamaged(GridworkError):
    """Stored bytes that fail their integrity check (a sealed photo file changed or cut short
    on disk): the service's fault, not the request's; logged as an error where it is raised,
    the client is told which resource and nothing of the bytes."""

    status, title, slug = 500, "Stored data damaged", "stored-data-damaged"


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or str(status)),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_gridwork_error(error: GridworkError) -> Response:
    return problem(
        error.status,
        error.title,
        error.detail,
        slug=error.slug,
        errors=error.errors,
        headers=error.headers,
        **error.extra,
    )


# The problem types of werkzeug's and webargs' errors, by status (any other: the status).
HTTP_SLUGS = {
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    422: "validation",
}


def handle_http_exception(error: HTTPException) -> Response:
    """werkzeug and webargs errors (404 routes, 405, 413, 422 validation) as problems."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    # webargs nests messages by location ({"json": {...}}); keep that: it tells where.
    detail = data.get("message")
    if detail is None and status == 422 and errors:
        detail = "The request failed validation; see `errors`."
    if (
        status == 413
        and detail is None
        and has_request_context()
        and current_app.config.get("MAX_CONTENT_LENGTH")
    ):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        detail = f"The request body is larger than the limit of {limit // (1024 * 1024)} MB."
    if detail is None and status < 500:
        detail = error.description
    return problem(
        status,
        error.name,
        detail if status < 500 else None,
        slug=HTTP_SLUGS.get(status, str(status)),
        errors=errors,
        headers=data.get("headers"),
    )


# Query cancelled: the statement ran past STATEMENT_TIMEOUT_S (api/db.py), or an operator
# cancelled it (pg_cancel_backend). The request's transaction is rolled back with it.
QUERY_CANCELED = "57014"


def handle_statement_timeout(error: DBAPIError) -> Response:
    from flask import current_app, request

    limit = float(current_app.config.get("STATEMENT_TIMEOUT_S") or 0)
    log.warning("statement cancelled after %s s: %s %s", limit, request.method, request.path)
    return problem(
        503,
        "Service unavailable",
        f"The request took longer than the {limit:g} s the service allows a statement and "
        "was stopped, its transaction rolled back. Retry later, or ask for less at a time "
        "(a shorter period, a smaller page).",
        slug="statement-timeout",
        headers={"Retry-After": "30"},
    )


def handle_database_unavailable(error: DBAPIError) -> Response:
    log.error("database unavailable: %s", error.__class__.__name__, exc_info=error)
    return problem(
        503,
        "Service unavailable",
        "The database is unavailable; retry shortly.",
        slug="service-unavailable",
        headers={"Retry-After": "5"},
    )


_DATA_KEY_DETAIL = (
    "The service cannot open residents' data with its configured data key; it refuses "
    "requests until an operator fixes the key. Retrying will not help before then."
)
_data_key_reported = False


def handle_data_key_error(error: Exception) -> Response:
    """A wrong data key (crypto.DataKeyError): the deployment's fault, not the request's, and
    not an outage that passes by itself. Logged loudly once per process, then in one line."""
    global _data_key_reported
    if not _data_key_reported:
        _data_key_reported = True
        log.critical("data key error: %s", error, exc_info=error)
    else:
        log.error("data key error (again): %s", error)
    return problem(503, "Service unavailable", _DATA_KEY_DETAIL, slug="data-key")


# Not-null and check violations: a value the request gave; unique, foreign-key and exclusion
# violations: the data changed under the request.
_INPUT_RULES = {"23502", "23514"}
_RACE_409 = "The request conflicts with a change made at the same time; read again and retry."
_RACE_422 = "A value breaks a rule of the data."
_LIMIT_422 = "A value is too large to store."


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached (an outage that passes once it
    is back), not that a statement was wrong. OperationalError: the server is down or
    restarting; InterfaceError: the driver found its connection closed under it; any error
    that invalidated its connection. A program limit exceeded (SQLSTATE class 54) is an
    OperationalError too, but a value broke it and no retry will pass."""
    if isinstance(error, DBAPIError) and _sqlstate(error).startswith("54"):
        return False
    return isinstance(error, OperationalError | InterfaceError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def _sqlstate(error: DBAPIError) -> str:
    return getattr(error.orig, "sqlstate", None) or ""


def _refusal(error: DBAPIError) -> str:
    """What the database refused, for the log, without the values: its message and DETAIL
    quote them (`Key (phone)=(...) already exists`, `Failing row contains (...)`, `invalid
    input syntax for type integer: "..."`), and a refused row may be a resident's. The
    SQLSTATE and the names of the rule, table, column and type say what broke."""
    diag = getattr(error.orig, "diag", None)
    parts = [f"SQLSTATE {_sqlstate(error) or '?'}"]
    for label, name in (
        ("constraint", "constraint_name"),
        ("table", "table_name"),
        ("column", "column_name"),
        ("type", "datatype_name"),
    ):
        value = getattr(diag, name, None)
        if value:
            parts.append(f"{label} {value}")
    return ", ".join(parts)


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, DataKeyError):
        return handle_data_key_error(error)
    if isinstance(error, DataError):
        # A value the database cannot hold (out of range, bad encoding) came from the request.
        log.info("data error from input: %s", _refusal(error))
        return problem(
            422,
            "Unprocessable content",
            "A value is out of range or malformed.",
            slug="unprocessable",
        )
    if isinstance(error, IntegrityError):
        # A rule of the database broken by a change that raced this one (a swap accepted while
        # a leader moved one of its shifts, say): the views check first, so this is the race.
        log.info("integrity error: %s", _refusal(error))
        if getattr(error.orig, "sqlstate", None) in _INPUT_RULES:
            return problem(422, "Unprocessable content", _RACE_422, slug="unprocessable")
        return problem(409, "Conflict", _RACE_409, slug="conflict")
    if isinstance(error, DBAPIError) and _sqlstate(error).startswith("54"):
        # Program limit exceeded (an index row too large, say) is an OperationalError, but a
        # value the request gave broke it and no retry will store it: 422, not 503. Only the
        # driver's message is logged: the statement's parameters may be a push token.
        log.info("value beyond a database limit: %s", error.orig)
        return problem(422, "Unprocessable content", _LIMIT_422, slug="unprocessable")
    if isinstance(error, DBAPIError) and _sqlstate(error) == QUERY_CANCELED:
        return handle_statement_timeout(error)
    if database_unavailable(error):
        return handle_database_unavailable(error)
    # The full story goes to the log; the client gets no internals.
    log.exception("unhandled error")
    return problem(500, "Internal server error", slug="internal")


def init_app(app: Flask) -> None:
    app.register_error_handler(GridworkError, handle_gridwork_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
