"""Schemathesis against the served OpenAPI document: no server errors, responses match it.

Every operation is fuzzed as several kinds of caller (a grid worker, a community admin, a
district viewer, and nobody signed in), each with a bounded number of examples
(GRIDWORK_FUZZ_EXAMPLES, 12 by default; CI keeps the default). Random ids mostly find nothing,
so every readable operation is also called with the ids of real records of every kind, and
those answers (full for the worker, masked for the viewer) must match the document too.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.api.test_matrix import targets  # noqa: F401  (the fixture: one record of each kind)

EXAMPLES = int(os.environ.get("GRIDWORK_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]
# Callers and their share of the example budget (an anonymous call stops at the 401).
ROLES = {"worker_a1": 1.0, "admin_a": 1.0, "viewer_110101": 1.0, "anonymous": 0.25}


def api_schema_for(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _headers(world, role: str) -> dict[str, str]:
    return {} if role == "anonymous" else world.auth(role)


@pytest.mark.parametrize("role", list(ROLES))
def test_every_operation_answers_within_its_contract(app, world, role):
    schema = api_schema_for(app)
    headers = _headers(world, role)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max(1, int(EXAMPLES * ROLES[role])),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:2000]
    assert failures == {}


# Path parameters of the document, filled from the records of tests/api/test_matrix.py.
PATH_VALUES = {
    "code": "community",
    "week": "week",
    "layer": None,  # each layer in turn
    "z": "z",
    "x": "x",
    "y": "y",
}
LAYERS = ("grids", "households", "visits", "tasks")
QUERIES = {
    "GET /api/v1/grids/locate": {"lon": "lon", "lat": "lat"},
    "GET /api/v1/tasks/rates": {"grid": "grid_code", "week": "week"},
    "GET /api/v1/tasks/lists": {"grid": "grid_code", "week": "week"},
    "GET /api/v1/shifts": {"week": "week"},
    "GET /api/v1/workers/{worker_id}/shifts.ics": {"token": "feed_token"},
}


def _cases(operation, values: dict):
    """Cases of a GET operation aimed at real records (one per tile layer)."""
    path = {p.name: values.get(PATH_VALUES.get(p.name, p.name)) for p in operation.path_parameters}
    query = {k: values[v] for k, v in QUERIES.get(operation.label, {}).items()}
    if "layer" in path:
        return [
            operation.Case(path_parameters={**path, "layer": layer}, query=query)
            for layer in LAYERS
        ]
    return [operation.Case(path_parameters=path, query=query)]


@pytest.mark.parametrize("role", ["worker_a1", "leader_a", "admin_a", "viewer_110101"])
def test_real_records_are_answered_as_documented(app, world, targets, role):  # noqa: F811
    schema = api_schema_for(app)
    headers = _headers(world, role)
    failures: dict[str, str] = {}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        for case in _cases(operation, targets.values):
            try:
                response = case.call_and_validate(
                    headers=headers,
                    checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        content_type_conformance,
                    ],
                )
                checked += response.status_code < 300
            except Exception as exc:
                failures[f"{operation.label} {case.path_parameters}"] = str(exc)[:1500]
    assert failures == {}
    assert checked >= 30, "too few real records answered: the targets no longer fit"
