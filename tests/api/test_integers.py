"""Integers the API reads are whole numbers, and text only where every value is text.

marshmallow's `Integer` (not strict) took whatever int() takes, and int() truncates: a batch
item's `household_id: 1.5` was a visit to household 1, a task's 1.9 a task on household 1, a
cadence of 2.9 stored as 2. It also took the string "7" for 7 in a JSON body, where an
integer is a JSON number. Every schema now uses `api.extensions.Integer`: in JSON a whole
number only; in a query string or a form, where every value arrives as text, an integer as
written in ASCII digits ("7", "-3", "+4"), nothing around them."""

from __future__ import annotations

import importlib
import pkgutil

import flask
import marshmallow as ma
import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import UnprocessableEntity

import api.resources
from api.extensions import Integer, Schema
from api.limits import StrictParser
from api.models import Grid, Task, Visit
from tests.factories import A1, A, box, grid_feature, visit_item

CADENCE = f"/api/v1/communities/{A}/visit-cadence"
TEXT_LOCATIONS = ["query", "form"]


def parse(fields: dict, location: str, **sent):
    """What `StrictParser` loads from a request carrying `sent` (test_request_context's
    arguments), at `location`, with a schema of `fields`; or its messages when it refuses."""
    schema = Schema.from_dict(fields)
    with flask.Flask(__name__).test_request_context(method="POST", **sent):
        try:
            return StrictParser().parse(schema, flask.request, location=location)
        except UnprocessableEntity as exc:
            return exc.data["messages"]


def sent_at(location: str, value) -> dict:
    return {"json": {"json": {"n": value}}, "query": {"query_string": {"n": value}}}.get(
        location, {"data": {"n": value}}
    )


@pytest.mark.parametrize(("value", "loaded"), [(2, 2), (-3, -3), (2.0, 2), (0.0, 0)])
def test_a_whole_number_is_taken(value, loaded):
    assert Integer().deserialize(value) == loaded


@pytest.mark.parametrize("location", TEXT_LOCATIONS)
@pytest.mark.parametrize(("text", "loaded"), [("2", 2), ("-3", -3), ("+4", 4), ("007", 7)])
def test_an_integer_written_as_text_is_taken_from_a_query_string_or_a_form(location, text, loaded):
    assert parse({"n": Integer()}, location, **sent_at(location, text)) == {"n": loaded}


@pytest.mark.parametrize("location", TEXT_LOCATIONS)
@pytest.mark.parametrize(
    "text", ["1.5", "2.0", "1e3", " 2", "2 ", "\t2", "1_000", "２", "٢", "", "0x10", "--2"]
)
def test_text_that_is_not_an_integer_as_written_is_refused_from_a_query_string_or_a_form(
    location, text
):
    """int() reads " 2", "1_000" and other scripts' digits ("２" fullwidth, "٢" Arabic-Indic)."""
    refused = parse({"n": Integer()}, location, **sent_at(location, text))
    assert refused == {location: {"n": ["Not a valid integer."]}}


def test_an_integer_is_taken_from_a_json_body():
    assert parse({"n": Integer()}, "json", json={"n": 7}) == {"n": 7}


@pytest.mark.parametrize("text", ["7", "-3", "2.0", " 2"])
def test_text_is_refused_where_a_json_body_brings_an_integer(text):
    refused = parse({"n": Integer()}, "json", json={"n": text})
    assert refused == {"json": {"n": ["Not a valid integer."]}}


def test_text_is_refused_in_a_json_body_however_deep_the_integer():
    inner = Schema.from_dict({"n": Integer()})
    fields = {
        "nested": ma.fields.Nested(inner),
        "listed": ma.fields.List(Integer()),
        "valued": ma.fields.Dict(keys=ma.fields.String(), values=Integer()),
    }
    body = {"nested": {"n": "7"}, "listed": [1, "2"], "valued": {"k": "3"}}
    assert parse(fields, "json", json=body) == {
        "json": {
            "nested": {"n": ["Not a valid integer."]},
            "listed": {1: ["Not a valid integer."]},
            "valued": {"k": {"value": ["Not a valid integer."]}},
        }
    }


@pytest.mark.parametrize(
    ("sent", "loaded"),
    [
        ({"data": {"n": "7"}}, {"n": 7}),
        ({"json": {"n": "7"}}, {"json_or_form": {"n": ["Not a valid integer."]}}),
    ],
)
def test_json_or_form_reads_text_as_a_form_and_a_string_as_json(sent, loaded):
    assert parse({"n": Integer()}, "json_or_form", **sent) == loaded


def test_text_is_refused_where_no_request_brings_it():
    """A schema loaded outside the parser (a service's own data): text is not an integer."""
    with pytest.raises(ma.ValidationError) as caught:
        Integer().deserialize("7")
    assert caught.value.messages == ["Not a valid integer."]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "Not a whole number."),
        (-0.25, "Not a whole number."),
        (2.0**53 + 2, "Not a valid integer."),  # a float no longer exact
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


def plan_of(client, world, worker: str):
    return client.get(
        "/api/v1/visits/plan", query_string={"worker": worker}, headers=world.auth("leader_a")
    )


@pytest.mark.parametrize("worker", [" {id}", "{id} ", "{id}\n"])
def test_a_query_integer_with_spaces_around_it_is_refused(client, world, worker):
    response = plan_of(client, world, worker.format(id=world.users["worker_a1"].id))
    assert response.status_code == 422
    assert response.json["errors"]["query"] == {"worker": ["Not a valid integer."]}


def test_a_query_integer_may_carry_its_sign(client, world):
    worker_id = world.users["worker_a1"].id
    assert plan_of(client, world, f"+{worker_id}").json["worker_id"] == worker_id


def test_a_query_integer_in_fullwidth_digits_is_refused(client, world):
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    response = plan_of(client, world, str(world.users["worker_a1"].id).translate(digits))
    assert response.status_code == 422
    assert response.json["errors"]["query"] == {"worker": ["Not a valid integer."]}


@pytest.mark.parametrize("parameter", ["page", "page_size"])
@pytest.mark.parametrize("value", [" 2", "2 ", "２", "2.0"])
def test_a_page_or_page_size_not_written_as_an_integer_is_refused(client, world, parameter, value):
    """flask-smorest's pagination schema read them with marshmallow's Integer: int() took
    " 2" and "２"."""
    response = client.get(
        "/api/v1/households", query_string={parameter: value}, headers=world.auth("admin_a")
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"] == {"query": {parameter: ["Not a valid integer."]}}


def test_a_page_and_page_size_written_as_integers_are_taken(client, world):
    response = client.get(
        "/api/v1/households",
        query_string={"page": "2", "page_size": "3"},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 200, response.json
    assert len(response.json) == 3


def test_a_task_on_a_household_given_as_text_is_refused(client, world, session):
    household = world.households[A1][0]
    response = client.post(
        "/api/v1/tasks",
        json={"source": "window", "title": "办理证明", "household_id": str(household.id)},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"]["json"] == {"household_id": ["Not a valid integer."]}
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_grids_target_given_as_text_is_refused(client, world, session):
    """An integer of a nested schema (the Feature's properties)."""
    before = session.scalar(select(func.count(Grid.id)))
    feature = grid_feature(
        A + "003", box(116.400, 39.925, 116.405, 39.930), target_households="300"
    )
    response = client.post("/api/v1/grids", json=feature, headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert response.json["errors"]["json"] == {
        "properties": {"target_households": ["Not a valid integer."]}
    }
    assert session.scalar(select(func.count(Grid.id))) == before


def test_a_cadence_given_as_text_is_refused(client, world):
    body = {"default": 2, "tags": {"living_alone": "3"}}
    response = client.put(CADENCE, json=body, headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert response.json["errors"]["json"] == {
        "tags": {"living_alone": {"value": ["Not a valid integer."]}}
    }
    assert client.get(CADENCE, headers=world.auth("admin_a")).json["default"] == 1


def test_a_batch_items_household_given_as_text_is_rejected_alone(client, world, session):
    household = world.households[A1][1]
    good, bad = visit_item(world.households[A1][0]), visit_item(household)
    bad["household_id"] = str(household.id)
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [good, bad]}, headers=world.auth("worker_a1")
    )
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["errors"] == {"household_id": ["Not a valid integer."]}
    assert session.scalar(select(func.count(Visit.id))) == 1


def _other_digits(number: int, zero: str) -> str:
    return "".join(chr(ord(zero) + int(d)) for d in str(number))


@pytest.mark.parametrize("zero", ["０", "٠"], ids=["fullwidth", "arabic-indic"])
def test_an_id_in_the_path_is_written_in_ascii_digits(client, world, zero):
    """werkzeug's `int` converter matches `\\d`, any script's digits: /households/７ was
    household 7. A path names a record as written, so another script's digits name none."""
    household = world.households[A1][0]
    auth = world.auth("worker_a1")
    assert client.get(f"/api/v1/households/{household.id}", headers=auth).status_code == 200
    path = f"/api/v1/households/{_other_digits(household.id, zero)}"
    response = client.get(path, headers=auth)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("zero", ["０", "٠"], ids=["fullwidth", "arabic-indic"])
def test_a_tile_address_is_written_in_ascii_digits(client, world, zero):
    auth = world.auth("worker_a1")
    assert client.get("/api/v1/tiles/grids/1/1/0.mvt", headers=auth).status_code in (200, 204)
    path = f"/api/v1/tiles/grids/{_other_digits(1, zero)}/1/0.mvt"
    assert client.get(path, headers=auth).status_code == 404
