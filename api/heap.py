"""The cyclic garbage collector in a long-lived app process (each gunicorn worker, a bench)."""

from __future__ import annotations

import gc

# Container objects allocated (net of those freed) before a young collection; CPython's default
# is 700. A 500-visit batch makes ~50,000 short-lived objects: at 700 the collector ran ~18
# times a batch and took 2-7 ms of it (~4 %), walking objects that reference counting frees at
# the end of the request anyway; at 50,000 it runs about once in a dozen batches. Cycles (rare
# here) wait a little longer to be freed: a few MB at most.
YOUNG_THRESHOLD = 50_000


def settle() -> None:
    """Once the app is loaded: keep what is loaded so far (modules, mappers, schemas, which live
    as long as the process) out of every collection (`gc.freeze`; it cost a fifth of a
    500-visit batch, docs/performance.md), and collect young objects less often."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def post_worker_init(worker) -> None:
    """gunicorn's hook (`gunicorn -c python:api.heap 'api:create_app()'`): `settle` in each
    worker once it has loaded the app, as `gridwork serve` does."""
    settle()
