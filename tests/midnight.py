"""Tests that read the wall clock (today, this week) and the app that reads it again per request
must not straddle a Beijing midnight (16:00 UTC; the week turns at Sunday's): a test starting
just before one waits until it has passed."""

from __future__ import annotations

import time

BEIJING_MIDNIGHT_UTC_S = 16 * 3600  # seconds into the UTC day
MARGIN_S = 90


def seconds_to_beijing_midnight(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return (BEIJING_MIDNIGHT_UTC_S - now % 86400) % 86400


def sleep_past_a_beijing_midnight(margin_s: float = MARGIN_S) -> None:
    """Within `margin_s` before a Beijing midnight, sleep until a second after it."""
    left = seconds_to_beijing_midnight()
    if 0 < left <= margin_s:
        time.sleep(left + 1)
