"""The JSON writer: orjson behind Flask's provider, the same documents Flask would write."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from api.jsonio import OrjsonProvider

DOCUMENT = {
    "b": [1, 2.5, None, True],
    "a": {"z": "网格员", "y": uuid.UUID(int=7)},
    "when": datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
    "day": date(2026, 11, 23),
    "amount": Decimal("12.50"),
}


def test_it_writes_what_flasks_own_provider_writes():
    app = Flask(__name__)
    ours, flasks = OrjsonProvider(app).dumps(DOCUMENT), DefaultJSONProvider(app).dumps(DOCUMENT)
    assert json.loads(ours) == json.loads(flasks)
    assert ours.index('"a"') < ours.index('"b"') < ours.index('"when"')  # keys sorted
    assert "网格员" in ours  # UTF-8, not \\u escapes


def test_the_app_answers_through_it(app, client):
    assert isinstance(app.json, OrjsonProvider)
    response = client.get("/healthz")
    assert response.get_data(as_text=True) == '{"status":"ok"}\n'


def test_a_compact_answer_is_written_by_orjson():
    # Flask's `response` (hence jsonify and every flask-smorest answer) asks for compact
    # separators: that is orjson's own output, not a reason to fall back. The standard
    # library would write \\u escapes for the Chinese text.
    app = Flask(__name__)
    with app.app_context():
        app.json = OrjsonProvider(app)
        body = app.json.response(DOCUMENT).get_data(as_text=True)
    assert "网格员" in body
    assert json.loads(body) == json.loads(DefaultJSONProvider(app).dumps(DOCUMENT))


def test_pretty_output_falls_back_to_the_standard_library():
    app = Flask(__name__)
    assert OrjsonProvider(app).dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'
