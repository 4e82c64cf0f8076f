"""gridwork API: the Flask app factory; each part is wired by its own `init_app`."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, send_from_directory

from api.settings import load_config


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gridwork app; `test_config` overrides settings (tests, tools)."""
    from api import auth, crypto, errors, keyguard, limits, security, web
    from api.extensions import api, db
    from api.jsonio import OrjsonProvider
    from api.resources import register_blueprints

    app = Flask(__name__)
    app.request_class = limits.Request
    app.json = OrjsonProvider(app)
    app.session_interface = security.NoCookieSession()
    app.config.update(load_config(test_config))
    logging.basicConfig(
        level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    crypto.configure(
        app.config["DATA_KEY"],
        app.config.get("OLD_DATA_KEYS"),
        development_key_allowed=app.testing or app.config["GRIDWORK_ENV"] == "development",
    )
    db.init_app(app)
    keyguard.init_app(app)
    auth.init_app(app)
    api.init_app(app)
    errors.init_app(app)
    register_blueprints(api)
    _docs_assets(app)
    web.init_app(app)
    security.init_app(app)

    @app.get("/healthz")
    def healthz():
        """200 when the database answers and is at this code's schema: a process on a database
        never migrated (or migrated by an older release) answers 503, not ok beside failing
        requests, so a load balancer keeps users away from it."""
        from sqlalchemy import text
        from sqlalchemy.exc import ProgrammingError

        try:
            at = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except ProgrammingError:  # no alembic_version: never migrated
            at = None
        needed = schema_head()
        if at is not None and at != needed and at not in schema_revisions():
            # A newer release migrated it (a rolling deploy): upgrading is not this code's to do.
            return errors.problem(
                503,
                "Service unavailable",
                f"The database's schema is at {at}, newer than this release knows (it needs "
                f"{needed}): a newer release migrated it; run that release here.",
                slug="schema",
            )
        if at != needed:
            return errors.problem(
                503,
                "Service unavailable",
                f"The database's schema is at {at or 'nothing'}; this release needs {needed}: "
                "run `gridwork db upgrade`.",
                slug="schema",
            )
        return {"status": "ok"}

    return app


def _docs_assets(app: Flask) -> None:
    """Serve Swagger UI's files from the installed package: the docs work with no internet."""
    import swagger_ui_bundle

    @app.get("/api/v1/docs/assets/<path:filename>")
    def swagger_assets(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)


@functools.lru_cache(maxsize=1)
def schema_revisions() -> frozenset[str]:
    """Every migration of this release (read once from migrations/)."""
    from alembic.script import ScriptDirectory

    from api.cli import alembic_config

    script = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused"))
    return frozenset(rev.revision for rev in script.walk_revisions())


@functools.lru_cache(maxsize=1)
def schema_head() -> str:
    """The newest migration of this release (read once from migrations/)."""
    from alembic.script import ScriptDirectory

    from api.cli import alembic_config

    return ScriptDirectory.from_config(
        alembic_config("postgresql+psycopg://unused")
    ).get_current_head()
