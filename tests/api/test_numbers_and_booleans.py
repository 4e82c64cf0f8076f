"""Numbers and true/false the API reads: in JSON as JSON writes them, as text only as written.

marshmallow's `Float` took whatever float() takes: the string "116.4" for a visit's longitude in
a JSON body, " 1.5" and "１.５" (fullwidth) in a query. Its `Boolean` took 1, "yes", "t" and
"on" for true in a JSON body, where true is `true`. Every schema now uses `api.extensions.Float`
and `api.extensions.Boolean` (as it does `Integer`, tests/api/test_integers.py)."""

from __future__ import annotations

import marshmallow as ma
import pytest
from sqlalchemy import func, select

from api.extensions import Boolean, Float
from api.models import Task, Visit
from tests.api.test_integers import TEXT_LOCATIONS, _fields, _schemas, parse, sent_at
from tests.factories import A1, visit_item


@pytest.mark.parametrize(("value", "loaded"), [(116.4, 116.4), (2, 2.0), (-0.5, -0.5)])
def test_a_json_number_is_a_number(value, loaded):
    assert parse({"n": Float()}, "json", json={"n": value}) == {"n": loaded}


@pytest.mark.parametrize("value", ["116.4", "2", " 1.5", True, False])
def test_text_or_true_false_is_not_a_number_in_a_json_body(value):
    assert parse({"n": Float()}, "json", json={"n": value}) == {
        "json": {"n": ["Not a valid number."]}
    }


@pytest.mark.parametrize("location", TEXT_LOCATIONS)
@pytest.mark.parametrize(
    ("text", "loaded"), [("116.4", 116.4), ("-3", -3.0), ("+.5", 0.5), ("1e3", 1000.0)]
)
def test_a_number_written_as_text_is_taken_from_a_query_string_or_a_form(location, text, loaded):
    assert parse({"n": Float()}, location, **sent_at(location, text)) == {"n": loaded}


@pytest.mark.parametrize("location", TEXT_LOCATIONS)
@pytest.mark.parametrize("text", [" 1.5", "1.5 ", "1_0.5", "１.５", "inf", "nan", "", "0x10"])
def test_text_that_is_not_a_number_as_written_is_refused_from_a_query_string_or_a_form(
    location, text
):
    refused = parse({"n": Float()}, location, **sent_at(location, text))
    assert refused == {location: {"n": ["Not a valid number."]}}


@pytest.mark.parametrize("value", [True, False])
def test_true_and_false_are_taken_from_a_json_body(value):
    assert parse({"b": Boolean()}, "json", json={"b": value}) == {"b": value}


@pytest.mark.parametrize("value", [1, 0, "true", "false", "yes", "t", "on", None])
def test_anything_but_true_or_false_is_refused_in_a_json_body(value):
    refused = parse({"b": Boolean(allow_none=False)}, "json", json={"b": value})
    assert refused["json"]["b"] in (["Not a valid boolean."], ["Field may not be null."])


@pytest.mark.parametrize("location", TEXT_LOCATIONS)
@pytest.mark.parametrize(("text", "loaded"), [("true", True), ("false", False), ("1", True)])
def test_true_or_false_as_text_is_taken_from_a_query_string_or_a_form(location, text, loaded):
    assert parse({"n": Boolean()}, location, **sent_at(location, text)) == {"n": loaded}


def test_every_number_and_true_false_of_the_api_is_ours():
    """One place decides what a number and a true/false are."""
    plain = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in _schemas()
        for name, declared in cls._declared_fields.items()
        for field in _fields(declared)
        if (isinstance(field, ma.fields.Float) and not isinstance(field, Float))
        or (isinstance(field, ma.fields.Boolean) and not isinstance(field, Boolean))
    ]
    assert plain == []


# --- at the API -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "sent", "message"),
    [
        ("lon", "116.4", "Not a valid number."),
        # `mock: 0` would be read as "not from a mock-location app" by a lenient reader.
        ("mock", 0, "Not a valid boolean."),
    ],
)
def test_a_batch_items_location_field_of_the_wrong_json_type_is_rejected_alone(
    client, world, session, field, sent, message
):
    good, bad = visit_item(world.households[A1][0]), visit_item(world.households[A1][1])
    bad["location"][field] = sent
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [good, bad]}, headers=world.auth("worker_a1")
    )
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["errors"] == {"location": {field: [message]}}
    assert session.scalar(select(func.count(Visit.id))) == 1


def test_a_task_whose_redispatch_is_the_word_yes_is_refused(client, world, session):
    response = client.post(
        "/api/v1/tasks",
        json={
            "source": "window",
            "title": "办理证明",
            "household_id": world.households[A1][0].id,
            "redispatch": "yes",
        },
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"]["json"] == {"redispatch": ["Not a valid boolean."]}
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_query_flag_is_still_read_as_text(client, world):
    response = client.get("/api/v1/tasks?overdue=false", headers=world.auth("worker_a1"))
    assert response.status_code == 200
