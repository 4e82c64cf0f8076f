"""Integers the API reads are whole numbers: a fraction is refused, never truncated.

marshmallow's `Integer` (not strict) took whatever int() takes, and int() truncates: a batch
item's `household_id: 1.5` was a visit to household 1, a task's 1.9 a task on household 1, a
cadence of 2.9 stored as 2. Every schema now uses `api.extensions.Integer`."""

from __future__ import annotations

import importlib
import pkgutil

import marshmallow as ma
import pytest
from sqlalchemy import func, select

import api.resources
from api.extensions import Integer
from api.models import Task, Visit
from tests.factories import A1, A, visit_item

CADENCE = f"/api/v1/communities/{A}/visit-cadence"


@pytest.mark.parametrize(
    ("value", "loaded"), [(2, 2), (-3, -3), (2.0, 2), (0.0, 0), ("2", 2), ("-3", -3), ("+4", 4)]
)
def test_a_whole_number_or_an_integer_as_text_is_taken(value, loaded):
    assert Integer().deserialize(value) == loaded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "Not a whole number."),
        (-0.25, "Not a whole number."),
        (2.0**53 + 2, "Not a valid integer."),  # a float no longer exact
        ("1.5", "Not a valid integer."),
        ("2.0", "Not a valid integer."),
        ("1e3", "Not a valid integer."),
        (" 2", "Not a valid integer."),
        ("1_000", "Not a valid integer."),
        ("２", "Not a valid integer."),  # fullwidth: int() reads it
        ("", "Not a valid integer."),
        (True, "Not a valid integer."),
        ([2], "Not a valid integer."),
    ],
)
def test_a_fraction_or_anything_else_is_refused(value, message):
    with pytest.raises(ma.ValidationError) as caught:
        Integer().deserialize(value)
    assert caught.value.messages == [message]


def _schemas() -> list[type[ma.Schema]]:
    for module in pkgutil.walk_packages(api.resources.__path__, "api.resources."):
        importlib.import_module(module.name)
    found, todo = set(), list(ma.Schema.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("api."):
            found.add(cls)
    return sorted(found, key=lambda cls: cls.__qualname__)


def _fields(field: ma.fields.Field):
    yield field
    inner = [getattr(field, name, None) for name in ("inner", "key_field", "value_field")]
    for each in [*inner, *getattr(field, "tuple_fields", ())]:
        if each is not None:
            yield from _fields(each)


def test_every_integer_of_the_api_is_a_whole_number_field():
    """One place decides what an integer is: a `ma.fields.Integer` in a schema (in a list, as a
    dict's values) would truncate again."""
    schemas = _schemas()
    assert len(schemas) > 50
    plain = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in schemas
        for name, declared in cls._declared_fields.items()
        for field in _fields(declared)
        if isinstance(field, ma.fields.Integer) and not isinstance(field, Integer)
    ]
    assert plain == []


# --- at the API -------------------------------------------------------------------------------


def test_a_batch_items_fractional_household_is_rejected_alone(client, world, session):
    household = world.households[A1][1]
    good, bad = visit_item(world.households[A1][0]), visit_item(household)
    bad["household_id"] = household.id + 0.5
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [good, bad]}, headers=world.auth("worker_a1")
    )
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["errors"] == {"household_id": ["Not a whole number."]}
    assert session.scalar(select(func.count(Visit.id))) == 1


def test_a_batch_items_household_as_a_whole_float_is_that_household(client, world):
    """The fast path leaves it (msgspec's int refuses a float); the schema takes 7.0 as 7."""
    household = world.households[A1][0]
    item = visit_item(household)
    item["household_id"] = float(household.id)
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    result = response.json["results"][0]
    assert (result["status"], result["visit"]["household_id"]) == ("created", household.id)


def test_a_task_on_a_fractional_household_is_refused(client, world, session):
    household = world.households[A1][0]
    response = client.post(
        "/api/v1/tasks",
        json={"source": "window", "title": "办理证明", "household_id": household.id + 0.9},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 422
    assert response.json["errors"]["json"] == {"household_id": ["Not a whole number."]}
    assert session.scalar(select(func.count(Task.id))) == 0


@pytest.mark.parametrize("body", [{"default": 2.9}, {"default": 1, "tags": {"living_alone": 2.5}}])
def test_a_fractional_cadence_is_refused(client, world, body):
    response = client.put(CADENCE, json=body, headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert "Not a whole number." in str(response.json["errors"])
    assert client.get(CADENCE, headers=world.auth("admin_a")).json["default"] == 1


def test_a_cadence_of_whole_floats_is_stored_as_integers(client, world):
    body = {"default": 2.0, "tags": {"living_alone": 3.0}}
    response = client.put(CADENCE, json=body, headers=world.auth("admin_a"))
    assert response.status_code == 200, response.json
    stored = client.get(CADENCE, headers=world.auth("admin_a")).json
    assert (stored["default"], stored["tags"]["living_alone"]) == (2, 3)
    assert type(stored["default"]) is int


@pytest.mark.parametrize(("worker", "status"), [("{id}", 200), ("{id}.5", 422), ("{id}.0", 422)])
def test_a_query_integer_is_taken_only_as_written(client, world, worker, status):
    worker = worker.format(id=world.users["worker_a1"].id)
    response = client.get(
        "/api/v1/visits/plan", query_string={"worker": worker}, headers=world.auth("leader_a")
    )
    assert response.status_code == status, response.json
    if status == 422:
        assert response.json["errors"]["query"] == {"worker": ["Not a valid integer."]}
