"""push.backoff and push.parse_retry_after: when to try a delivery again."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from push import backoff, parse_retry_after


class Highest(random.Random):
    """An rng whose uniform() always draws the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff(n, rng=random.Random(42)) for n in range(1, 8)]
    second = [backoff(n, rng=random.Random(42)) for n in range(1, 8)]

    assert first == second


def test_backoff_ceiling_doubles_with_each_attempt() -> None:
    assert [backoff(n, base=2.0, rng=Highest()) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]


def test_backoff_never_exceeds_the_cap() -> None:
    assert backoff(40, base=2.0, cap=900.0, rng=Highest()) == 900.0


def test_backoff_draws_within_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    waits = [backoff(3, base=2.0, rng=rng) for _ in range(200)]

    assert all(0.0 <= w <= 8.0 for w in waits)
    assert min(waits) < 2.0 < 6.0 < max(waits)  # jittered, not fixed


def test_backoff_is_never_less_than_retry_after() -> None:
    assert backoff(1, retry_after=120.0, base=2.0, cap=60.0, rng=random.Random(1)) == 120.0


def test_backoff_survives_huge_attempt_numbers() -> None:
    assert backoff(10_000, cap=900.0, rng=Highest()) == 900.0


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError):
        backoff(0)


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("30") == 30.0


def test_retry_after_as_http_date() -> None:
    now = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)

    assert parse_retry_after("Sat, 01 Mar 2025 08:01:30 GMT", now=now) == 90.0


def test_retry_after_in_the_past_is_zero() -> None:
    now = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)

    assert parse_retry_after("Sat, 01 Mar 2025 07:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5"])
def test_missing_or_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", ["\u00b2", "3\u00b2", "\u0663\u0660", "\uff13\uff10"])
def test_a_retry_after_of_digits_not_ascii_is_none(value: str) -> None:
    """str.isdigit() is true of '²' (and '٣٠', '３０'), and float('²') raised ValueError out of
    the channel's send: the whole batch was retried. Retry-After's delay-seconds is ASCII."""
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("retry_after", [1e20, float("inf"), 2 * 86400.0])
def test_backoff_honours_retry_after_up_to_a_day(retry_after: float) -> None:
    assert backoff(1, retry_after=retry_after, rng=random.Random(1)) == 86400.0
