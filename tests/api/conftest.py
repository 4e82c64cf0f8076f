from __future__ import annotations

import pytest

from tests.midnight import sleep_past_a_beijing_midnight


@pytest.fixture(autouse=True)
def _not_across_a_beijing_midnight():
    """A test taking its "today" or "this week" from the wall clock (as a fixture builds its
    data) while the app reads it again per request: not started just before the day turns."""
    sleep_past_a_beijing_midnight()
