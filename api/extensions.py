"""Project subclasses of flask-smorest's Api, Blueprint and Schema, and the shared extensions."""

from __future__ import annotations

import http
import re
import threading
import time
from copy import deepcopy
from types import SimpleNamespace
from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import current_app, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_smorest.utils import prepare_response
from jwt import InvalidSignatureError
from werkzeug.routing import IntegerConverter

from api import errors
from api.db import PG_INT_MAX, Database
from api.limits import StrictParser, arguments_are_text

# An integer as text: ASCII digits, an optional sign, nothing around them. int() also reads
# " 2", "1_000" and other scripts' digits ("２").
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
# Beyond 2**53 a float no longer holds every integer: 9007199254740993 arrives as ...992.
_FLOAT_INT_MAX = 2**53


class Integer(ma.fields.Integer):
    """The API's integer field: every schema uses it, never marshmallow's own.

    marshmallow's `Integer` (not strict) takes whatever int() takes, and int() truncates a
    float: a batch item's `household_id: 1.5` was a visit to household 1, a task's 1.9 a task
    on household 1, a cadence of 2.9 stored as 2. Here a number must be whole: 2 and 2.0 are 2
    (a JSON writer may put any number as a float), 1.5 is refused, as is a float beyond 2**53
    (no longer exact). Text is an integer only where every value arrives as text (a query
    string, a form: `limits.arguments_are_text`), and there only as written ("2", "-3", "+4"):
    "1.5", "2.0", " 2" and "２" are refused. In a JSON body "7" is a string, not 7.
    """

    default_error_messages = {"whole": "Not a whole number."}

    def _validated(self, value: Any) -> int:
        if type(value) is float:
            if not value.is_integer():
                raise self.make_error("whole", input=value)
            if abs(value) > _FLOAT_INT_MAX:
                raise self.make_error("invalid", input=value)
        elif isinstance(value, str) and not (
            arguments_are_text() and _INTEGER_TEXT.fullmatch(value)
        ):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


# A decimal number as text: ASCII digits, an optional sign, fraction and exponent. float() also
# reads " 1.5", "1_0.5", "inf" and other scripts' digits ("１.５").
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class Float(ma.fields.Float):
    """The API's number field: every schema uses it, never marshmallow's own (which takes
    whatever float() takes: in a JSON body the string "116.4", and " 1.5" or "１.５" anywhere).
    In JSON a number is a JSON number; text is a number only where every value arrives as text
    (`limits.arguments_are_text`), and there only as written in ASCII."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or (
            isinstance(value, str) and not (arguments_are_text() and _DECIMAL_TEXT.fullmatch(value))
        ):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class Boolean(ma.fields.Boolean):
    """The API's true/false field: every schema uses it, never marshmallow's own (which takes 1,
    "yes" or "t" for true in a JSON body). In JSON only `true` and `false`; in a query string or a
    form the words marshmallow knows ("true", "false", "1", "0", ...), as there all is text."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if type(value) is not bool and not (isinstance(value, str) and arguments_are_text()):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details (documentation only); extension members are allowed."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "URI naming the problem type"})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type"})
    status = Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong this time"})
    errors = ma.fields.Raw(metadata={"description": "Field errors, by location and field"})


def _error_ref(status: int) -> str:
    """The name of the component response of an error `status` (`Api._register_responses`)."""
    return http.HTTPStatus(status).name


def _add_error_responses(operation: dict, statuses) -> None:
    """Document `statuses` on `operation` (those it documents already are kept), keeping its
    responses in order: successes, errors by status, then `default`."""
    responses = {str(code): doc for code, doc in operation.get("responses", {}).items()}
    for status in statuses:
        responses.setdefault(str(status), _error_ref(status))
    default = responses.pop("default", None)
    operation["responses"] = dict(sorted(responses.items()))
    if default is not None:
        operation["responses"]["default"] = default


class ErrorResponsesPlugin(BasePlugin):
    """Documents the errors every operation of a kind can answer, as problem details: a path
    with parameters names a record or a community that may not exist (404); every operation
    answers 503 while the database is unreachable. Those of an operation alone (409, 429, ...)
    stay under `default` unless its view documents them (`alt_response`); those of a view
    requiring a token are documented by `Blueprint._document_errors`."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            statuses = [503]
            if path and "{" in path:
                statuses.append(404)
            _add_error_responses(operation, statuses)


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *args, extra_plugins=None, **kwargs):
        plugins = [*(extra_plugins or ()), ErrorResponsesPlugin()]
        super()._init_spec(*args, extra_plugins=plugins, **kwargs)

    def init_app(self, app, *args, **kwargs):
        app.url_map.converters["id"] = IdConverter
        app.url_map.converters["int"] = AsciiIntegerConverter
        super().init_app(app, *args, **kwargs)
        self.register_converter(IdConverter, _id_schema)

    def _register_responses(self):
        """Document every error response as application/problem+json, as it is served."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, errors.PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, errors.PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)


class AsciiIntegerConverter(IntegerConverter):
    """`<int:name>` in ASCII digits: werkzeug's matches `\\d`, any script's digits, and int()
    reads them (`/households/７` was household 7)."""

    regex = r"[0-9]+"
    signed_regex = r"-?[0-9]+"


class IdConverter(AsciiIntegerConverter):
    """`<id:name>`: a database id; beyond PostgreSQL's integer range there is no such row (404)."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=PG_INT_MAX)


def _id_schema(_converter) -> dict:
    return {"type": "integer", "minimum": 1, "maximum": PG_INT_MAX}


# Lists answer PAGE_SIZE items a page unless asked (`page_size`), MAX_PAGE_SIZE at most: a map
# fetches a district's grids (hundreds) in one page.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class _PaginationParser(StrictParser):
    """flask-smorest's pagination schema reads `page` and `page_size` with marshmallow's
    Integer, which took " 2" and "２" (int() does): it is loaded with ours in their place."""

    def _build(self, schema_class: type[ma.Schema]) -> ma.Schema:
        # `page` is bounded too: its offset ((page - 1) x page_size) past PostgreSQL's bigint
        # was refused by the database, a 422 naming nothing; no list has 2**31 pages.
        bounds = {"page": [ma.validate.Range(max=PG_INT_MAX)]}
        ours = {
            name: Integer(
                load_default=field.load_default,
                validate=[*field.validators, *bounds.get(name, [])],
            )
            for name, field in schema_class._declared_fields.items()
            if type(field) is ma.fields.Integer
        }
        return type(schema_class.__name__, (schema_class,), ours)()


class Blueprint(flask_smorest.Blueprint):
    """A blueprint whose every view requires a valid access token unless `public=True`, and
    answers only to the query parameters it documents (`arguments(location="query")`, the
    pagination's `page` and `page_size`): any other is a 422 naming it, after sign-in."""

    ARGUMENTS_PARSER = StrictParser()  # JSON bodies: no NaN, bounded nesting and size
    # A multipart body's fields and files in one schema (`StrictParser.load_multipart`).
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }
    PAGINATION_ARGUMENTS_PARSER = _PaginationParser()  # its schema built once, our integers
    # The API's page sizes (flask-smorest's own are 10, at most 100): read when a view is
    # decorated, so they are constants of the code, not settings of a deployment.
    DEFAULT_PAGINATION_PARAMETERS = {
        "page": 1,
        "page_size": PAGE_SIZE,
        "max_page_size": MAX_PAGE_SIZE,
    }

    def __init__(self, *args, public: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._public = public
        if not public:
            self.before_request(_require_token)
        self.before_request(_refuse_unknown_query)
        self._prepare_doc_cbks.append(_prepare_header_doc)
        self._prepare_doc_cbks.append(self._document_errors)

    def _document_errors(self, doc: dict, doc_info: dict, **kwargs) -> dict:
        """Document the errors of the blueprint's kind of view: a view requiring a token
        answers 401 without a valid one and 403 to a role it does not serve (or to a token
        whose password an admin set); a view taking a body answers 413 to one beyond a limit."""
        statuses = [] if self._public else [401, 403]
        if "requestBody" in doc:
            statuses.append(413)
        _add_error_responses(doc, statuses)
        return doc

    def arguments(self, schema, location="json", **kwargs):
        decorator = super().arguments(schema, location=location, **kwargs)
        if location != "query":
            return decorator
        return lambda view: _takes_query(decorator(view), _field_names(schema))

    def paginate(self, *args, **kwargs):
        decorator = super().paginate(*args, **kwargs)
        return lambda view: _takes_query(decorator(view), ("page", "page_size"))

    @staticmethod
    def header(parameter: dict):
        """Document a header `parameter` of the decorated view beside the query parameters its
        `arguments` document: `doc(parameters=[...])` would replace those (its lists are not
        merged), and a query parameter would go missing from the OpenAPI document."""

        def decorator(view):
            view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
            view._apidoc.setdefault("headers", []).append(parameter)
            return view

        return decorator


class Schema(ma.Schema):
    # A field inferred from a value (none is, so far) is ours too.
    TYPE_MAPPING = {**ma.Schema.TYPE_MAPPING, int: Integer}

    class Meta:
        ordered = True
        unknown = ma.RAISE


def _prepare_header_doc(doc: dict, doc_info: dict, **kwargs) -> dict:
    headers = doc_info.get("headers")
    if headers:
        doc.setdefault("parameters", []).extend(deepcopy(headers))
    return doc


# A token of an account whose password an admin set (`users.must_change_password`): it opens
# the /auth endpoints only (sign in, refresh, who am I, change the password, sign out) until
# its owner sets their own. The auth blueprint is public (it checks tokens per view), so every
# blueprint that requires a token refuses it.
PASSWORD_CHANGE_CLAIM = "pwc"


def _require_token() -> None:
    if request.method != "OPTIONS":
        verify_jwt_in_request()
        if get_jwt().get(PASSWORD_CHANGE_CLAIM):
            raise errors.PasswordChangeRequired(
                "Your password was set by an admin: set your own with "
                "POST /api/v1/auth/password first."
            )


_QUERY_NAMES = "_gridwork_query_names"


def _field_names(schema) -> frozenset[str]:
    """The names a query schema reads (a field's `data_key`, else its attribute name)."""
    if isinstance(schema, type):
        schema = schema()
    return frozenset(field.data_key or name for name, field in schema.fields.items())


def _takes_query(view, names) -> Any:
    """Note on `view` the query parameters it documents (with those its inner decorators noted:
    functools.wraps copies them outward)."""
    setattr(view, _QUERY_NAMES, getattr(view, _QUERY_NAMES, frozenset()) | frozenset(names))
    return view


def _refuse_unknown_query():
    """422 for a query parameter the view does not document: a misspelt filter is named, not
    dropped (the caller would take the unfiltered answer for the filtered one)."""
    if not request.args or request.method == "OPTIONS":
        return None
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        method = request.method.lower()
        view = getattr(view_class, method, None) or (
            getattr(view_class, "get", None) if method == "head" else None
        )
    unknown = sorted(set(request.args) - getattr(view, _QUERY_NAMES, frozenset()))
    if not unknown:
        return None
    listed = ", ".join(f"`{name}`" for name in unknown)
    return errors.problem(
        422,
        "Unprocessable Entity",
        f"Unknown query parameter{'s' if len(unknown) > 1 else ''} {listed}: this endpoint "
        "takes only those its OpenAPI description lists.",
        slug="validation",
        errors={"query": {name: ["Unknown field."] for name in unknown}},
    )


Page = flask_smorest.Page


class VerifiedTokens(JWTManager):
    """A JWTManager that verifies a token's signature once, not on every request, and accepts
    a token signed with a previous key while that key is listed in JWT_SECRET_KEY_FALLBACKS.

    flask-jwt-extended decodes a token three times a request (its claims unverified, its header,
    then both verified): ~0.2 ms, a tenth of a small map tile's request. A map session sends
    one token with dozens of tiles. The verified claims are kept per token text and keys (the
    current one and the fallbacks: a token verified under a fallback is verified again once
    the fallback is gone); a token found here is checked for expiry (as PyJWT would: `exp` with
    the leeway), and the rest of the verification runs as before: revocation, the session, the
    user and its token version are asked of the database on every request (`api.auth`), as is
    expiry by the app's clock. Only the plain path is kept (no CSRF value, expired tokens not
    allowed, the key from the configuration). It overrides a method of flask-jwt-extended 4
    (pinned below 5); tests/api/test_request_overhead.py fails if it is no longer called.

    New tokens are signed with JWT_SECRET_KEY only (flask-jwt-extended's encoding is left as
    it is). An app with a decode key loader of its own chooses its key itself: no fallbacks."""

    SIZE = 4096

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._verified: dict[tuple, dict] = {}
        self._lock = threading.Lock()

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        fallbacks = tuple(current_app.config.get("JWT_SECRET_KEY_FALLBACKS") or ())
        if csrf_value is not None or allow_expired:
            return _decode_any_key(encoded_token, fallbacks, csrf_value, allow_expired)
        key = (
            encoded_token,
            jwt_config.decode_key,
            fallbacks,
            tuple(jwt_config.decode_algorithms),
            jwt_config.decode_audience
            if isinstance(jwt_config.decode_audience, str | None)
            else tuple(jwt_config.decode_audience),
            jwt_config.decode_issuer,
        )
        claims = self._verified.get(key)
        if claims is not None:
            exp = claims.get("exp")
            if exp is None or exp > time.time() - jwt_config.leeway:
                return dict(claims)
        claims = _decode_any_key(encoded_token, fallbacks)  # raises when refused
        with self._lock:
            if len(self._verified) >= self.SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[key] = dict(claims)
        return claims


def _decode_any_key(
    encoded_token: str, fallbacks: tuple[str, ...], csrf_value=None, allow_expired=False
) -> dict:
    """The token decoded under the current key or, while its signature is what is refused,
    under each fallback in turn. Any other refusal ends the search (a malformed token, or one
    whose signature was good and which has expired); the last key's refusal is the answer."""
    *first, last = (jwt_config.decode_key, *fallbacks)
    for secret in first:
        try:
            return _decode_under(secret, encoded_token, csrf_value, allow_expired)
        except InvalidSignatureError:
            continue  # signed with another key, perhaps the next
    return _decode_under(last, encoded_token, csrf_value, allow_expired)


def _decode_under(secret: str, encoded_token: str, csrf_value, allow_expired: bool) -> dict:
    """flask-jwt-extended 4's own decode with `secret` as the key: its checks, and the header
    and claims it hangs on an expired token's error for the expired-token callback. The method
    reads nothing of its manager but the decode key callback (its loader picks one key, PyJWT
    takes one): here a stand-in manager whose callback answers `secret`."""
    manager = SimpleNamespace(_decode_key_callback=lambda _header, _claims: secret)
    return JWTManager._decode_jwt_from_config(manager, encoded_token, csrf_value, allow_expired)


db = Database()
jwt = VerifiedTokens()
api = Api()
