"""Retry timing: exponential backoff with full jitter, and parsing Retry-After headers."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_BASE = 2.0  # seconds: the first retry waits up to this
DEFAULT_CAP = 15 * 60.0  # seconds: no jittered wait grows past this
# seconds: a provider's Retry-After is honoured up to a day, a message's default time to live
# (a push held longer is stale). Any server may answer (a Web Push endpoint is whatever host a
# user registered), and 10**20 seconds overflows a datetime.
MAX_RETRY_AFTER = 24 * 60 * 60.0


def backoff(
    attempt: int,
    retry_after: float | None = None,
    base: float = DEFAULT_BASE,
    cap: float = DEFAULT_CAP,
    rng: random.Random | None = None,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> float:
    """Seconds to wait before retrying after failed attempt number `attempt` (1 = the first).

    Full jitter: a uniform draw from [0, min(cap, base * 2**(attempt-1))], so that devices
    failing together do not retry together. Never less than `retry_after`, the provider's
    own Retry-After, even past `cap`: the provider's word wins, up to `max_retry_after`
    (a day: beyond it the message is stale, and an absurd header must not overflow the retry
    time). Pass `rng` for determinism.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    wait = (rng or random).uniform(0.0, ceiling)
    return max(wait, min(retry_after or 0.0, max_retry_after))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    # delay-seconds is ASCII digits: str.isdigit() is true of '²' too, which float() refuses,
    # and of '٣٠', which it reads as 30.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
