"""What the server serves for the browser pages: their Content-Security-Policy, and the workers'
app offering only the task transitions the API lets an assignee make."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.services.tasks import ASSIGNEE, OPEN_STATUSES, TRANSITIONS
from api.web import basemap_source

WEB_SRC = Path(__file__).resolve().parents[2] / "web" / "src"


@pytest.fixture()
def dist(tmp_path):
    """A stand-in for web/dist: the pages need not be built to be served."""
    (tmp_path / "version.json").write_text('{"version": "test"}')
    for name in ("map.html", "app.html", "sw.js"):
        (tmp_path / name).write_text(f"<!-- {name} -->")
    return tmp_path


def pages_client(database_url, connection, dist, **settings):
    from api.extensions import db
    from tests.factories import build_app

    app = build_app(database_url, WEB_DIST=str(dist), **settings)
    db.bind(connection)
    return app.test_client()


def get(client, path):
    response = client.get(path)
    response.close()  # a page is sent from a file
    return response


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", ["/map", "/app", "/app/", "/app/sw.js"])
def test_the_pages_carry_a_content_security_policy(database_url, connection, dist, path):
    response = get(pages_client(database_url, connection, dist), path)
    assert response.status_code == 200
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval
    assert csp["style-src"] == ["'self'"]  # no inline style attributes either
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    # MapLibre: its worker is a blob: script, its raster tiles and CSS icons blob: and data: images.
    assert csp["worker-src"] == ["'self'", "blob:"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"]
    assert csp["connect-src"] == ["'self'"]


def test_the_pages_csp_allows_the_configured_basemap_host(database_url, connection, dist):
    client = pages_client(
        database_url,
        connection,
        dist,
        BASEMAP_URL="https://t0.tiles.example.cn:8443/img_w/{z}/{x}/{y}.png?tk=k",
    )
    csp = directives(get(client, "/map"))
    assert csp["img-src"] == ["'self'", "data:", "blob:", "https://t0.tiles.example.cn:8443"]
    assert csp["connect-src"] == ["'self'", "https://t0.tiles.example.cn:8443"]
    assert "https://t0.tiles.example.cn:8443" not in csp["script-src"]


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (None, ""),
        ("", ""),
        ("/tiles/{z}/{x}/{y}.png", ""),  # this server: 'self'
        ("http://10.0.0.5/{z}/{x}/{y}.png", "http://10.0.0.5"),
        ("https://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org"),
        ("javascript:alert(1)", ""),
        ("https://a.example.org; script-src *;/{z}", ""),  # never smuggles a directive in
    ],
)
def test_basemap_source(url, source):
    assert basemap_source(url) == source


def test_json_answers_keep_their_own_locked_csp(database_url, connection, dist):
    response = get(pages_client(database_url, connection, dist), "/api/v1/grids")
    assert directives(response)["default-src"] == ["'none'"]


def worker_actions() -> dict[str, list[str]]:
    """The WORKER_ACTIONS map of web/src/app.js, read from the source."""
    source = (WEB_SRC / "app.js").read_text()
    body = re.search(r"const WORKER_ACTIONS = (\{.*?\});", source, re.S).group(1)
    return json.loads(re.sub(r"(\w+):", r'"\1":', body).replace(",\n}", "\n}"))


def test_the_app_offers_only_transitions_the_api_allows_the_assignee():
    offered = worker_actions()
    for status, actions in offered.items():
        for action in actions:
            rule = TRANSITIONS[action].get(status)
            assert rule is not None, f"the API refuses {action} from {status}"
            assert rule.by == ASSIGNEE, f"{action} from {status} is not the assignee's"
    # ...and no state the assignee can move a task out of is left without a button.
    movable = {
        status for rules in TRANSITIONS.values() for status, r in rules.items() if r.by == ASSIGNEE
    }
    assert set(offered) == movable


def js_constant(name: str):
    """A `const NAME = <JSON>;` of web/src/app.js, read from the source."""
    source = (WEB_SRC / "app.js").read_text()
    return json.loads(re.search(rf"const {name} = (.*?);\n", source, re.S).group(1))


def test_my_tasks_ask_for_the_open_statuses_of_the_api():
    assert js_constant("OPEN_TASK_STATUSES") == list(OPEN_STATUSES)


def test_the_app_checks_the_visit_lengths_the_api_takes():
    from api.resources.visits.schemas import VisitItemSchema

    fields = VisitItemSchema().fields
    limits = {
        name: next(v.max for v in fields[name].validators if hasattr(v, "max"))
        for name in ("notes", "follow_up_note")
    }
    assert js_constant("VISIT_LIMITS") == limits
