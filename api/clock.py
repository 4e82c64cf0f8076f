"""The current time for the HTTP layer: the database's clock, or FIXED_NOW (tests, demos)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

# How long an offset read from the database serves before it is read again.
REFRESH_SECONDS = 60.0
# A host clock that moved against the monotonic clock by more than this since the reading
# (NTP stepped it, a VM resumed) makes the offset stale at once.
_JUMP_SECONDS = 1.0


class _Reading(NamedTuple):
    monotonic: float  # when it was read (time.monotonic())
    wall_minus_monotonic: float  # this host's clock minus the monotonic clock, then
    offset: timedelta  # the database's clock minus this host's


_reading: _Reading | None = None
# Where a request keeps its instant: the request's own environ, not `g`, which a request shares
# with an app context already pushed around it (a test's, a CLI command's).
_PINNED = "gridwork.clock_now"


def now() -> datetime:
    """FIXED_NOW when the app runs on a fixed clock; in the app, the database's clock; else
    this host's clock.

    The database's, not the host's: hosts whose clocks disagree (NTP down, a VM resumed) would
    stamp notifications, events and deadlines each in their own time, and a host ahead put its
    notifications in the others' future and held their pushes back (the push worker reads the
    database's clock too). It costs no query per call: the host's clock is corrected by the
    offset to the database's clock, read once a minute, and again at once when the host's
    clock jumps.

    One request, one instant: the first reading in a request is the time for the rest of it,
    so what it filters, stamps and shows agrees (a list filtered on "not overdue" marked the
    tasks it listed overdue a moment later, on a slow request). Outside a request (the push
    worker's rounds, CLI commands) every reading is the time it is read."""
    if not has_app_context():
        return datetime.now(UTC)
    fixed = current_app.config.get("FIXED_NOW")
    if fixed is not None:
        return fixed
    if not has_request_context():
        return datetime.now(UTC) + _offset()
    pinned = request.environ.get(_PINNED)
    if pinned is None:
        pinned = request.environ[_PINNED] = datetime.now(UTC) + _offset()
    return pinned


def _offset() -> timedelta:
    global _reading
    mono, wall = time.monotonic(), datetime.now(UTC).timestamp()
    reading = _reading
    if (
        reading is not None
        and mono - reading.monotonic < REFRESH_SECONDS
        and abs((wall - mono) - reading.wall_minus_monotonic) < _JUMP_SECONDS
    ):
        return reading.offset
    from api.extensions import db

    try:
        # A session of its own, closed at once: never the caller's transaction, and no
        # transaction left open in a long-lived app context (the push worker's).
        with db.new_session(guarded=False) as session:
            before = datetime.now(UTC)
            database = session.scalar(text("SELECT clock_timestamp()"))
            after = datetime.now(UTC)
    except SQLAlchemyError:
        # The database is down: the request fails on its own queries anyway (503); until the
        # next reading the last offset (or none) stands.
        return reading.offset if reading is not None else timedelta(0)
    offset = database - (before + (after - before) / 2)
    _reading = _Reading(time.monotonic(), after.timestamp() - time.monotonic(), offset)
    return offset
