"""Query parameters: an endpoint answers only to the ones it documents.

A misspelt filter (`?gird=3` for `?grid=3`) used to be dropped without a word, and the caller
got the unfiltered list as though it were the filtered one. Every API endpoint now refuses a
query parameter it does not document with a 422 problem naming it, before it reads or writes
anything."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from api.extensions import Blueprint
from api.models import AuditEntry, Household
from tests.factories import A1, centre

PLACEHOLDERS = {"layer": "grids", "z": "15", "x": "0", "y": "0", "kind": "csv"}


def placeholder(match: re.Match) -> str:
    converter, name = match.groups()
    if converter == "uuid":
        return "00000000-0000-7000-8000-000000000000"
    return PLACEHOLDERS.get(name, "1")


def api_routes(app) -> list[tuple[str, str]]:
    """(method, URL) of every API route (of gridwork's blueprints: not the OpenAPI document's),
    its path parameters filled with placeholders."""
    ours = {name for name, bp in app.blueprints.items() if isinstance(bp, Blueprint)}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.partition(".")[0] not in ours:
            continue
        url = re.sub(r"<(?:([^:>]+):)?([^>]+)>", placeholder, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_every_api_endpoint_refuses_a_query_parameter_it_does_not_document(app, client, world):
    routes = api_routes(app)
    assert len(routes) > 50
    for method, url in routes:
        response = client.open(url + "?bogus=1", method=method, headers=world.auth("admin_a"))
        assert response.status_code == 422, (method, url, response.status_code)
        body = response.get_json()
        assert response.mimetype == "application/problem+json"
        assert body["errors"] == {"query": {"bogus": ["Unknown field."]}}, (method, url)
        assert "bogus" in body["detail"]


def test_a_misspelt_filter_is_named_not_ignored(client, world):
    response = client.get("/api/v1/households?gird=1&page_size=5", headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"query": {"gird": ["Unknown field."]}}


def test_documented_parameters_and_pagination_are_still_accepted(client, world):
    headers = world.auth("admin_a")
    assert client.get("/api/v1/households?page=1&page_size=5", headers=headers).status_code == 200
    grid = world.grids[A1].code
    assert client.get(f"/api/v1/households?grid={grid}", headers=headers).status_code == 200
    lon, lat = centre(A1)
    located = client.get(f"/api/v1/grids/locate?lon={lon}&lat={lat}", headers=headers)
    assert located.status_code == 200


def test_the_check_comes_after_sign_in(client):
    """Without a token the answer is 401, as without the unknown parameter."""
    assert client.get("/api/v1/households?bogus=1").status_code == 401


def test_a_refused_request_changes_nothing(client, world, session):
    before = session.scalar(select(func.count()).select_from(Household))
    audited = session.scalar(select(func.count()).select_from(AuditEntry))
    body = {"grid_id": world.grids[A1].id, "building": "9", "unit": "1", "room": "101"}
    response = client.post("/api/v1/households?bogus=1", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 422
    assert session.scalar(select(func.count()).select_from(Household)) == before
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audited


@pytest.mark.parametrize("path", ["/app/", "/map"])
def test_the_web_pages_are_not_api_endpoints(client, path):
    """A page's own query string (`?lang=zh`, `?week=`) is the page's business."""
    response = client.get(path + "?lang=zh&week=2026-W01")
    response.close()
    assert response.status_code == 200


def test_a_list_pages_by_50_by_default_and_by_up_to_1000_on_request(client, world, session):
    """The page sizes the API documents (settings.Config): flask-smorest's own (10, at most 100)
    applied until 2026-12-04, and the map's `?page_size=1000` of grids was refused."""
    from tests.factories import make_household

    for i in range(60):
        make_household(session, *centre(A1, dy=0.00002 * i), room=f"9{i:02d}")
    headers = world.auth("admin_a")
    listed = client.get("/api/v1/households", headers=headers)
    assert listed.status_code == 200
    assert len(listed.json) == 50
    assert client.get("/api/v1/households?page_size=1000", headers=headers).status_code == 200
    too_many = client.get("/api/v1/households?page_size=1001", headers=headers)
    assert too_many.status_code == 422
    assert client.get("/api/v1/grids?page_size=1000", headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/notifications", "/api/v1/tasks"])
@pytest.mark.parametrize("page", [str(2**63), "9" * 30])
def test_a_page_past_any_list_is_a_422_naming_page(client, world, path, page):
    """Its offset ((page - 1) x page_size) went to the database, which refused it: a 422 "A
    value is out of range or malformed." naming nothing (the inbox's pages, the task lists)."""
    response = client.get(f"{path}?page={page}", headers=world.auth("worker_a1"))
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert list(response.json["errors"]["query"]) == ["page"]
