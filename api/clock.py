"""The current time for the HTTP layer: UTC now, or the app's FIXED_NOW (tests, demos)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def now() -> datetime:
    if has_app_context():
        fixed = current_app.config.get("FIXED_NOW")
        if fixed is not None:
            return fixed
    return datetime.now(UTC)
