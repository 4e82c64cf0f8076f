"""Tests for geo.codes: parsing and validating DB11/T 2157-2023 grid codes."""

import pytest

from geo.codes import (
    CodeError,
    GridCode,
    level_of,
    parse_community_code,
    parse_district_code,
    parse_street_code,
)

# Dongcheng district (110101), street 001, community 002, grid 003.
GOOD = "110101001002003"


def test_parse_splits_code_into_its_four_parts():
    assert GridCode.parse(GOOD) == GridCode("110101", "001", "002", "003")


def test_code_property_round_trips_the_parsed_string():
    assert GridCode.parse(GOOD).code == GOOD


def test_community_code_is_first_twelve_digits():
    assert GridCode.parse(GOOD).community_code == "110101001002"


def test_street_code_is_first_nine_digits():
    assert GridCode.parse(GOOD).street_code == "110101001"


def test_district_code_is_first_six_digits():
    assert GridCode.parse(GOOD).district_code == "110101"


def test_grid_code_is_immutable():
    code = GridCode.parse(GOOD)
    with pytest.raises(AttributeError):
        code.seq = "004"


def test_code_error_is_a_value_error():
    assert issubclass(CodeError, ValueError)


@pytest.mark.parametrize("bad", ["11010100100200", "1101010010020030", ""])
def test_parse_rejects_wrong_length(bad):
    with pytest.raises(CodeError, match="exactly 15 digits"):
        GridCode.parse(bad)


@pytest.mark.parametrize("bad", ["11010100100200a", "110101 01002003", "１１0101001002003"])
def test_parse_rejects_non_ascii_digit_characters(bad):
    with pytest.raises(CodeError, match="exactly 15 digits"):
        GridCode.parse(bad)


def test_parse_rejects_non_string():
    with pytest.raises(CodeError, match="must be a string"):
        GridCode.parse(110101001002003)


NOT_PROVINCES = ["00", "10", "16", "20", "24", "30", "38", "49", "55", "66", "72", "80", "83", "90"]
PROVINCE_EDGES = ["11", "15", "21", "23", "31", "37", "41", "46", "50", "54", "61", "65", "71"]


@pytest.mark.parametrize("prefix", NOT_PROVINCES)
def test_parse_rejects_unknown_province_prefix(prefix):
    with pytest.raises(CodeError, match="not a GB/T 2260 province code"):
        GridCode.parse(prefix + GOOD[2:])


@pytest.mark.parametrize("prefix", [*PROVINCE_EDGES, "81", "82"])
def test_parse_accepts_every_province_range_edge(prefix):
    assert GridCode.parse(prefix + GOOD[2:]).district.startswith(prefix)


def test_parse_rejects_province_given_as_district():
    with pytest.raises(CodeError, match="is a province, not a district"):
        GridCode.parse("110000001002003")


@pytest.mark.parametrize(
    ("code", "part"),
    [
        ("110101000002003", "street"),
        ("110101001000003", "community"),
        ("110101001002000", "grid sequence"),
    ],
)
def test_parse_rejects_zero_part(code, part):
    with pytest.raises(CodeError, match=f"has {part} 000"):
        GridCode.parse(code)


def test_str_of_grid_code_is_the_code():
    assert str(GridCode.parse(GOOD)) == GOOD


def test_parse_community_code_splits_twelve_digits():
    assert parse_community_code("110101001002") == ("110101", "001", "002")


def test_parse_community_code_rejects_zero_community():
    with pytest.raises(CodeError, match="has community 000"):
        parse_community_code("110101001000")


def test_parse_community_code_rejects_wrong_length():
    with pytest.raises(CodeError, match="exactly 12 digits"):
        parse_community_code(GOOD)


def test_parse_street_code_splits_nine_digits():
    assert parse_street_code("110101001") == ("110101", "001")


def test_parse_street_code_rejects_zero_street():
    with pytest.raises(CodeError, match="has street 000"):
        parse_street_code("110101000")


def test_parse_district_code_returns_valid_code():
    assert parse_district_code("110105") == "110105"


def test_parse_district_code_rejects_province():
    with pytest.raises(CodeError, match="is a province"):
        parse_district_code("310000")


def test_parse_district_code_rejects_unknown_province():
    with pytest.raises(CodeError, match="province code"):
        parse_district_code("990101")


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("110101", "district"),
        ("110101001", "street"),
        ("110101001002", "community"),
        (GOOD, "grid"),
    ],
)
def test_level_of_follows_length(code, level):
    assert level_of(code) == level


@pytest.mark.parametrize("bad", ["1101", "1101010010", "", "11010100100200301", "11010a", None])
def test_level_of_rejects_other_lengths(bad):
    with pytest.raises(CodeError, match="6, 9, 12 or 15 digits"):
        level_of(bad)
