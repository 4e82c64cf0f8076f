"""Conversion between WGS-84, GCJ-02 ("Mars" coordinates) and BD-09 (Baidu) longitude/latitude.

Every conversion is written once, over numpy arrays: a batch of positions is converted in a
handful of vectorised steps (`to_wgs84_many`), and the scalar functions are that same code on
arrays of one position, so the two always agree.
"""

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "DATUMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "to_wgs84",
    "to_wgs84_many",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

DATUMS = ("wgs84", "gcj02", "bd09")

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_PI = np.pi
_X_PI = _PI * 3000.0 / 180.0

# The inverse of GCJ-02 has no closed form; iterate until the step is below this (degrees,
# about 1 cm) or give up after _MAX_ITER steps (it converges in 3-5 in practice).
_INVERSE_TOLERANCE_DEG = 1e-9
_MAX_ITER = 30

Arrays = tuple[np.ndarray, np.ndarray]


def out_of_china(lon: float, lat: float) -> bool:
    """True when the point is outside the rectangle where GCJ-02 applies an offset.

    This is the standard rough bounding box (lon 72.004-137.8347, lat 0.8293-55.8271); points
    outside it are passed through unchanged by every conversion.
    """
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * _PI) + 40.0 * np.sin(y / 3.0 * _PI)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * _PI) + 320 * np.sin(y * _PI / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * _PI) + 40.0 * np.sin(x / 3.0 * _PI)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * _PI) + 300.0 * np.sin(x / 30.0 * _PI)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> Arrays:
    """The (dlon, dlat) GCJ-02 adds to a WGS-84 position inside China."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * _PI
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * _PI)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * _PI)
    return dlon, dlat


def _wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> Arrays:
    dlon, dlat = _gcj02_offset(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _invert(forward: Callable[..., Arrays], lon: np.ndarray, lat: np.ndarray, guess: Arrays):
    """Solve ``forward(w) == (lon, lat)`` by fixed-point iteration from `guess`, per position.

    Each position steps ``w -= forward(w) - target`` until its own step is below the tolerance
    (then it is left alone), as a loop over that one position would.
    """
    wlon, wlat = guess[0].copy(), guess[1].copy()
    active = np.ones(lon.shape, dtype=bool)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        flon, flat = forward(wlon[idx], wlat[idx])
        dlon, dlat = flon - lon[idx], flat - lat[idx]
        wlon[idx] -= dlon
        wlat[idx] -= dlat
        done = (np.abs(dlon) < _INVERSE_TOLERANCE_DEG) & (np.abs(dlat) < _INVERSE_TOLERANCE_DEG)
        active[idx[done]] = False
    return wlon, wlat


def _gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> Arrays:
    # The common one-step inverse (subtract the offset computed at the GCJ-02 point) is off by
    # up to a metre or two; iterating ``wgs = gcj - offset(wgs)`` converges because the offset
    # varies slowly. Positions outside China pass through.
    inside = _in_china(lon, lat)
    wlon, wlat = lon.copy(), lat.copy()
    if inside.any():
        wlon[inside], wlat[inside] = _invert(
            _wgs84_to_gcj02, lon[inside], lat[inside], (lon[inside], lat[inside])
        )
    return wlon, wlat


def _gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> Arrays:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> Arrays:
    # Baidu's published one-step inverse is off by up to about 0.2 m: the first guess, refined
    # by the same fixed-point iteration as GCJ-02's inverse.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(_gcj02_to_bd09, lon, lat, (z * np.cos(theta), z * np.sin(theta)))


def _bd09_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> Arrays:
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


def _one(convert: Callable[..., Arrays], lon: float, lat: float) -> tuple[float, float]:
    out_lon, out_lat = convert(np.array([lon], dtype=float), np.array([lat], dtype=float))
    return float(out_lon[0]), float(out_lat[0])


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert WGS-84 (raw GPS) to GCJ-02 (Amap, Tencent, Google China)."""
    return _one(_wgs84_to_gcj02, lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert GCJ-02 to WGS-84 by fixed-point iteration (exact to well under 1e-7 degrees)."""
    return _one(_gcj02_to_wgs84, lon, lat)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert GCJ-02 to BD-09 (Baidu)."""
    return _one(_gcj02_to_bd09, lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert BD-09 (Baidu) to GCJ-02, exactly inverting :func:`gcj02_to_bd09`."""
    return _one(_bd09_to_gcj02, lon, lat)


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert WGS-84 to BD-09 via GCJ-02."""
    return _one(lambda x, y: _gcj02_to_bd09(*_wgs84_to_gcj02(x, y)), lon, lat)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert BD-09 to WGS-84 via GCJ-02."""
    return _one(_bd09_to_wgs84, lon, lat)


_TO_WGS84: dict[str, Callable[..., Arrays] | None] = {
    "wgs84": None,
    "gcj02": _gcj02_to_wgs84,
    "bd09": _bd09_to_wgs84,
}


def _unknown(datum: object) -> ValueError:
    return ValueError(f"unknown datum {datum!r}; expected one of {', '.join(DATUMS)}")


def to_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """Convert a position given in ``datum`` ("wgs84", "gcj02" or "bd09") to WGS-84."""
    out_lon, out_lat = to_wgs84_many([lon], [lat], [datum])
    return float(out_lon[0]), float(out_lat[0])


def to_wgs84_many(lon: Sequence[float], lat: Sequence[float], datums: Sequence[str]) -> Arrays:
    """`to_wgs84` of many positions at once, each in its own datum: two float arrays.

    One vectorised conversion per datum present, instead of a Python loop per position.
    """
    out_lon, out_lat = np.array(lon, dtype=float), np.array(lat, dtype=float)
    if out_lon.shape != out_lat.shape or out_lon.shape != (len(datums),):
        raise ValueError("lon, lat and datums must be sequences of the same length")
    for datum in datums:
        if not isinstance(datum, str) or datum not in _TO_WGS84:
            raise _unknown(datum)
    names = np.array(datums, dtype=object)
    for datum in set(datums):
        convert = _TO_WGS84[datum]
        if convert is not None:
            mask = names == datum
            out_lon[mask], out_lat[mask] = convert(out_lon[mask], out_lat[mask])
    return out_lon, out_lat
