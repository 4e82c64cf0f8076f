"""Strict JSON bodies: the json module's values and errors, orjson's speed where they agree."""

from __future__ import annotations

import json

import pytest

from api.limits import JsonLimitError, strict_loads


def test_a_batch_reads_as_the_json_module_reads_it():
    item = {
        "id": "7c0e…",
        "lon": 116.40412345678901,
        "lat": -39.9,
        "n": -(2**63),
        "big": 2**64 - 1,
        "text": '网格 \u00e9 \\ "',
        "ok": True,
        "none": None,
    }
    body = json.dumps({"visits": [item] * 3}, ensure_ascii=False).encode()
    assert strict_loads(body) == json.loads(body)


@pytest.mark.parametrize(
    "digits", [str(2**64 - 1), str(-(2**63)), "9999999999999999999", "-999999999999999999"]
)
def test_integers_of_up_to_64_bits_stay_exact(digits):
    assert strict_loads(f'{{"n": {digits}}}') == {"n": int(digits)}


@pytest.mark.parametrize(
    "digits",
    [str(2**64), str(-(2**63) - 1), "-9999999999999999999", "-" + "9" * 30, "1" + "0" * 400],
)
def test_integers_beyond_64_bits_are_refused(digits):
    """The answers could not carry them back: a visit stored with one in its observations
    made every later read of it a 500."""
    with pytest.raises(JsonLimitError, match="is beyond 64 bits"):
        strict_loads(f'{{"visits": [{{"observations": {{"elderly_80": {digits}}}}}]}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_by_name(constant):
    with pytest.raises(JsonLimitError, match=f"{constant} is not a JSON number"):
        strict_loads(f'{{"lon": {constant}}}')


def test_malformed_json_says_where():
    with pytest.raises(JsonLimitError, match=r"not valid JSON: Expecting property name .* at 8\."):
        strict_loads('{"a": 1,')


def test_nesting_beyond_the_limit_is_refused():
    with pytest.raises(JsonLimitError, match="deeper than 64 levels"):
        strict_loads("[" * 65 + "]" * 65)
    assert strict_loads("[" * 64 + "]" * 64) is not None


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(JsonLimitError, match="not UTF-8"):
        strict_loads(b'{"a": "\xff"}')


@pytest.mark.parametrize("escaped", [r"\ud800", r"\udfff", r"a\ude00b", r"\ud83d"])
def test_a_lone_surrogate_escape_is_refused(escaped):
    """The json module reads it into a string PostgreSQL's driver cannot encode: it was a 500."""
    with pytest.raises(JsonLimitError, match="lone UTF-16 surrogate"):
        strict_loads(f'{{"building": "{escaped}"}}')


def test_a_surrogate_pair_is_one_character():
    assert strict_loads(r'{"building": "\ud83d\ude00"}') == {"building": "\U0001f600"}


def test_a_lone_surrogate_in_a_request_is_a_400(client, world):
    body = b'{"building": "\\ud800", "lon": 116.4025, "lat": 39.9225}'
    headers = {**world.auth("admin_a"), "Content-Type": "application/json"}
    r = client.post("/api/v1/households", data=body, headers=headers)
    assert (r.status_code, r.content_type) == (400, "application/problem+json")
    assert "surrogate" in r.json["detail"]
