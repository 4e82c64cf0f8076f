"""The current time for the HTTP layer: the database's clock, or FIXED_NOW (tests, demos)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import text

_KEY = "gridwork.now"


def now() -> datetime:
    """FIXED_NOW when the app runs on a fixed clock; in a request, the database's clock, read
    once per request (every stamp of a request is the same instant); else this host's clock.

    The database's, not the host's: hosts whose clocks disagree (NTP down, a VM resumed) would
    stamp notifications, events and deadlines each in their own time, and a host ahead put its
    notifications in the others' future and held their pushes back (the push worker reads the
    database's clock too)."""
    if has_app_context():
        fixed = current_app.config.get("FIXED_NOW")
        if fixed is not None:
            return fixed
    if has_request_context():
        store = request.environ
        if _KEY not in store:
            from api.extensions import db

            store[_KEY] = db.session.scalar(text("SELECT clock_timestamp()"))
        return store[_KEY]
    return datetime.now(UTC)
