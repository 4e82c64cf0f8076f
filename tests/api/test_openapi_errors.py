"""The OpenAPI document names the errors each operation answers, not only `default`.

A client generated from the document learns from it which answers to expect: 401 from an
operation requiring a token, 403 from one whose role may refuse, 404 from one naming a record,
413 from one taking a body, 503 from every one while the database is unreachable; the rest
(409, ...) stay under `default` unless their view documents them."""

from __future__ import annotations

import re

import pytest

from tests.api.test_matrix import MATRIX, OK, UNIFORM

TOKEN_OPERATIONS = ("get /api/v1/tasks/{task_id}", "post /api/v1/visits/batch", "get /api/v1/grids")


@pytest.fixture
def document(app):
    return app.test_client().get("/api/v1/openapi.json").json


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield f"{method} {path}", operation


def _documented(operation) -> set[str]:
    return set(operation["responses"])


def test_every_operation_answers_503_while_the_database_is_down(document):
    missing = [
        key for key, operation in _operations(document) if "503" not in _documented(operation)
    ]
    assert missing == []


def test_an_operation_naming_a_record_documents_404(document):
    missing = [
        key
        for key, operation in _operations(document)
        if "{" in key and "404" not in _documented(operation)
    ]
    assert missing == []


def test_an_operation_requiring_a_token_documents_401_and_403(document):
    operations = dict(_operations(document))
    for key in TOKEN_OPERATIONS:
        assert {"401", "403"} <= _documented(operations[key]), key
    missing = [
        key
        for key, operation in operations.items()
        if operation.get("security") != [] and "401" not in _documented(operation)
    ]
    assert missing == []


def test_an_operation_taking_a_body_documents_413(document):
    missing = [
        key
        for key, operation in _operations(document)
        if "requestBody" in operation and "413" not in _documented(operation)
    ]
    assert missing == []


def test_sign_in_documents_its_refusals_and_asks_no_token(document):
    operation = document["paths"]["/api/v1/auth/token"]["post"]
    assert operation["security"] == []
    assert {"401", "422", "429"} <= _documented(operation)


def test_a_calendar_feed_asks_no_token_its_link_is_the_key(document):
    operation = document["paths"]["/api/v1/workers/{worker_id}/shifts.ics"]["get"]
    assert operation["security"] == []
    assert {"403", "404"} <= _documented(operation)


def test_errors_are_documented_as_problem_details_and_default_comes_last(document):
    for key, operation in _operations(document):
        codes = list(operation["responses"])
        assert codes[-1] == "default", key
        assert codes[:-1] == sorted(codes[:-1]), key
    problem = document["components"]["responses"]["NOT_FOUND"]["content"]
    assert list(problem) == ["application/problem+json"]


def _openapi_key(matrix_key: str) -> str:
    method, rule = matrix_key.split(" ", 1)
    return f"{method.lower()} " + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_refusal_the_matrix_meets_is_documented(document):
    """The role x endpoint matrix's answers, refusals included, are each named by the document
    for their operation (routes outside the API, such as the web pages, are not in it)."""
    operations = dict(_operations(document))
    undocumented = []
    for key, line in MATRIX.items():
        operation = operations.get(_openapi_key(key))
        if operation is None or line.expect is UNIFORM:
            continue
        for status in set(line.expect.values()) - {OK}:
            if str(status) not in _documented(operation):
                undocumented.append(f"{key}: {status}")
    assert sorted(undocumented) == [], "\n".join(sorted(undocumented))


def test_the_matrix_lines_are_found_in_the_document(document):
    operations = dict(_operations(document))
    found = [key for key in MATRIX if _openapi_key(key) in operations]
    assert len(found) >= len(operations) - 2  # the document and its interactive page are routes too
