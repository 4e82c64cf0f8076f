"""A long-lived app process keeps what it loaded out of the collector and collects young
objects less often (api/heap.py, used by `gridwork serve` in each worker)."""

from __future__ import annotations

import gc

import pytest

from api import heap


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_is_loaded_and_raises_only_the_young_threshold(collector):
    _, middle, old = gc.get_threshold()
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, middle, old)


def test_a_batch_worth_of_short_lived_objects_triggers_no_young_collection(collector):
    heap.settle()
    gc.collect()  # start from empty generations
    before = gc.get_stats()[0]["collections"]
    # ~45,000 containers held until the request ends, as a 500-visit batch makes them.
    batch = [[{"lon": i, "lat": i} for i in range(90)] for _ in range(500)]
    assert gc.get_stats()[0]["collections"] == before
    del batch


def test_without_it_the_same_objects_are_walked_many_times():
    gc.collect()
    before = gc.get_stats()[0]["collections"]
    batch = [[{"lon": i, "lat": i} for i in range(90)] for _ in range(500)]
    assert gc.get_stats()[0]["collections"] - before > 10
    del batch
