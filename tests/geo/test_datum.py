"""Tests for geo.datum: WGS-84 / GCJ-02 / BD-09 conversion against published reference values."""

import pytest

from geo.datum import (
    DATUMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    to_wgs84,
    to_wgs84_many,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.measure import haversine_m

# Reference values, all for the input (116.404, 39.915) near Tiananmen, from
# wandergis/coordtransform test/app.js (commit 242324636adb54f9d1ef571035dc61f0ac8f0e8c), the
# JavaScript library most Chinese ports copy (hutool's CoordinateUtilTest, "test reference:
# github.com/wandergis/coordtransform", asserts the same numbers):
#   wgs84togcj02 -> [116.41024449916938, 39.91640428150164]
#   gcj02tobd09  -> [116.41036949371029, 39.92133699351021]
#   bd09togcj02  -> [116.39762729119315, 39.90865673957631]  (Baidu's one-step inverse)
#   gcj02towgs84 -> [116.39775550083061, 39.91359571849836]  (crude one-step inverse)
BEIJING = (116.404, 39.915)
BEIJING_WGS_TO_GCJ = (116.41024449916938, 39.91640428150164)
BEIJING_GCJ_TO_BD = (116.41036949371029, 39.92133699351021)
BEIJING_BD_TO_GCJ_ONE_STEP = (116.39762729119315, 39.90865673957631)
BEIJING_GCJ_TO_WGS_ONE_STEP = (116.39775550083061, 39.91359571849836)

# A consistent triple near Shanghai from Glatzel/pyxis python/tests/test_crypto.py:
# the WGS-84 value is given to 7 decimals (about 1 cm), the others to full precision.
SHANGHAI_WGS = (121.0917077, 30.6107779)
SHANGHAI_GCJ = (121.09626935575027, 30.608604331756705)
SHANGHAI_BD = (121.10271732371203, 30.61484572185035)

CENTIMETRE_DEG = 1e-7  # about 1.1 cm of latitude


def _metres_apart(p, q):
    return haversine_m(p[0], p[1], q[0], q[1])


def test_wgs84_to_gcj02_matches_coordtransform_reference():
    assert wgs84_to_gcj02(*BEIJING) == pytest.approx(BEIJING_WGS_TO_GCJ, abs=1e-12)


def test_gcj02_to_bd09_matches_coordtransform_reference():
    assert gcj02_to_bd09(*BEIJING) == pytest.approx(BEIJING_GCJ_TO_BD, abs=1e-12)


def test_bd09_to_gcj02_agrees_with_baidu_one_step_inverse_within_a_metre():
    assert _metres_apart(bd09_to_gcj02(*BEIJING), BEIJING_BD_TO_GCJ_ONE_STEP) < 1.0


def test_gcj02_to_wgs84_agrees_with_crude_inverse_within_a_few_metres():
    assert _metres_apart(gcj02_to_wgs84(*BEIJING), BEIJING_GCJ_TO_WGS_ONE_STEP) < 5.0


def test_gcj02_to_wgs84_is_more_exact_than_crude_inverse():
    exact = _metres_apart(wgs84_to_gcj02(*gcj02_to_wgs84(*BEIJING)), BEIJING)
    crude = _metres_apart(wgs84_to_gcj02(*BEIJING_GCJ_TO_WGS_ONE_STEP), BEIJING)
    assert exact < 0.001 < crude


def test_wgs84_to_gcj02_matches_pyxis_reference_within_centimetre():
    assert wgs84_to_gcj02(*SHANGHAI_WGS) == pytest.approx(SHANGHAI_GCJ, abs=CENTIMETRE_DEG)


def test_wgs84_to_bd09_matches_pyxis_reference_within_centimetre():
    assert wgs84_to_bd09(*SHANGHAI_WGS) == pytest.approx(SHANGHAI_BD, abs=CENTIMETRE_DEG)


def test_gcj02_to_wgs84_matches_pyxis_reference_within_centimetre():
    assert gcj02_to_wgs84(*SHANGHAI_GCJ) == pytest.approx(SHANGHAI_WGS, abs=CENTIMETRE_DEG)


def test_bd09_to_gcj02_matches_pyxis_reference_exactly():
    assert bd09_to_gcj02(*SHANGHAI_BD) == pytest.approx(SHANGHAI_GCJ, abs=1e-9)


def test_bd09_to_wgs84_matches_pyxis_reference_within_centimetre():
    assert bd09_to_wgs84(*SHANGHAI_BD) == pytest.approx(SHANGHAI_WGS, abs=CENTIMETRE_DEG)


# Spread over China: Beijing, Shanghai, Urumqi, Lhasa, Harbin, Sanya, Hong Kong.
PLACES = [
    (116.404, 39.915),
    (121.4737, 31.2304),
    (87.6168, 43.8256),
    (91.1172, 29.6469),
    (126.5349, 45.8038),
    (109.5119, 18.2528),
    (114.1694, 22.3193),
]


@pytest.mark.parametrize("wgs", PLACES)
def test_wgs84_gcj02_round_trip_is_under_a_centimetre(wgs):
    assert _metres_apart(gcj02_to_wgs84(*wgs84_to_gcj02(*wgs)), wgs) < 0.01


@pytest.mark.parametrize("gcj", PLACES)
def test_gcj02_bd09_round_trip_is_under_a_centimetre(gcj):
    assert _metres_apart(bd09_to_gcj02(*gcj02_to_bd09(*gcj)), gcj) < 0.01


@pytest.mark.parametrize("wgs", PLACES)
def test_wgs84_bd09_round_trip_is_under_a_centimetre(wgs):
    assert _metres_apart(bd09_to_wgs84(*wgs84_to_bd09(*wgs)), wgs) < 0.01


@pytest.mark.parametrize("gcj", PLACES)
def test_gcj02_to_wgs84_converges_below_1e7_degrees(gcj):
    back = wgs84_to_gcj02(*gcj02_to_wgs84(*gcj))
    assert back == pytest.approx(gcj, abs=1e-7)


def test_gcj02_offset_in_beijing_is_about_500_metres():
    assert 400 < _metres_apart(wgs84_to_gcj02(*BEIJING), BEIJING) < 700


def test_bd09_offset_from_wgs84_in_beijing_is_about_a_kilometre():
    assert 900 < _metres_apart(wgs84_to_bd09(*BEIJING), BEIJING) < 1500


@pytest.mark.parametrize(
    "outside",
    [(2.3522, 48.8566), (139.6917, 35.6895), (-74.006, 40.7128), (151.2093, -33.8688)],
)
def test_out_of_china_is_true_abroad(outside):
    assert out_of_china(*outside)


@pytest.mark.parametrize("inside", PLACES)
def test_out_of_china_is_false_in_china(inside):
    assert not out_of_china(*inside)


@pytest.mark.parametrize(
    "convert", [wgs84_to_gcj02, gcj02_to_wgs84], ids=["wgs84_to_gcj02", "gcj02_to_wgs84"]
)
def test_gcj02_conversion_leaves_points_outside_china_unchanged(convert):
    paris = (2.3522, 48.8566)
    assert convert(*paris) == paris


def test_to_wgs84_passes_wgs84_through():
    assert to_wgs84(*BEIJING, "wgs84") == BEIJING


def test_to_wgs84_undoes_gcj02():
    assert to_wgs84(*BEIJING_WGS_TO_GCJ, "gcj02") == pytest.approx(BEIJING, abs=1e-9)


def test_to_wgs84_undoes_bd09():
    assert to_wgs84(*wgs84_to_bd09(*BEIJING), "bd09") == pytest.approx(BEIJING, abs=1e-9)


@pytest.mark.parametrize("datum", ["WGS84", "cgcs2000", "", None])
def test_to_wgs84_rejects_unknown_datum(datum):
    with pytest.raises(ValueError, match="unknown datum"):
        to_wgs84(*BEIJING, datum)


def test_to_wgs84_many_converts_each_position_in_its_own_datum():
    positions = [(*place, datum) for place in PLACES for datum in DATUMS] + [
        (2.3522, 48.8566, "gcj02")
    ]
    lon, lat = to_wgs84_many(*zip(*positions, strict=True))
    for (x, y, datum), got in zip(positions, zip(lon, lat, strict=True), strict=True):
        assert got == pytest.approx(to_wgs84(x, y, datum), abs=1e-12)


def test_to_wgs84_many_of_nothing_is_empty():
    lon, lat = to_wgs84_many([], [], [])
    assert (lon.size, lat.size) == (0, 0)


def test_to_wgs84_many_rejects_an_unknown_datum_and_unequal_lengths():
    with pytest.raises(ValueError, match="unknown datum 'WGS84'"):
        to_wgs84_many([116.4, 116.4], [39.9, 39.9], ["wgs84", "WGS84"])
    with pytest.raises(ValueError, match="same length"):
        to_wgs84_many([116.4], [39.9, 39.9], ["wgs84"])
