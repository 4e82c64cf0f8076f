"""Project subclasses of flask-smorest's Api, Blueprint and Schema, and the shared extensions."""

from __future__ import annotations

import flask_smorest
import marshmallow as ma
from flask import request
from flask_jwt_extended import JWTManager, verify_jwt_in_request

from api import errors
from api.db import Database


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details (documentation only)."""

    type = ma.fields.String(metadata={"description": "URI naming the problem type"})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong this time"})
    errors = ma.fields.Raw(metadata={"description": "Field errors, by location and field"})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)


class Blueprint(flask_smorest.Blueprint):
    """A blueprint whose every view requires a valid access token unless `public=True`."""

    def __init__(self, *args, public: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not public:
            self.before_request(_require_token)


class Schema(ma.Schema):
    class Meta:
        ordered = True
        unknown = ma.RAISE


def _require_token() -> None:
    if request.method != "OPTIONS":
        verify_jwt_in_request()


Page = flask_smorest.Page
db = Database()
jwt = JWTManager()
api = Api()
