"""Geohash math of Redis's GEO commands, reproduced operation for operation.

A GEO set is a sorted set whose scores are 52-bit geohashes: latitude and
longitude are each scaled to a 26-bit integer over Redis's ranges (longitude
-180..180, latitude -85.05112878..85.05112878, the Web Mercator limits) and
interleaved, latitude on the even bits, longitude on the odd bits. Scores
must come out bit-identical to Redis's (they land in ZSCORE replies and RDB
files), and so must every decoded coordinate and distance, so the float
operations below follow Redis's order exactly (Python's math module calls
the same libm functions).

Searches work like Redis's: a cell of the geohash grid around the centre,
sized from the radius, plus its 8 neighbours (minus those the search area
cannot reach), each scanned as one score range of the sorted set; the
candidates are then filtered by their exact distance. The order of unsorted
results (cell by cell, by score inside a cell) is therefore Redis's too.
"""

from __future__ import annotations

import math

LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
STEP_MAX = 26  # 26 bits per coordinate: 52-bit scores

EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_U64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA

# The standard geohash ranges (GEOHASH's text output uses latitude -90..90).
WGS84 = ((LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX))
STANDARD = ((-180.0, 180.0), (-90.0, 90.0))

CIRCLE, BOX = 1, 2


def _spread(v: int) -> int:
    """The 32 bits of v onto the even bits of a 64-bit word."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    v = (v | (v << 1)) & 0x5555555555555555
    return v


def _squash(v: int) -> int:
    """The even bits of v packed into 32 bits (the inverse of _spread)."""
    v &= 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    v = (v | (v >> 16)) & 0x00000000FFFFFFFF
    return v


def encode(lon: float, lat: float, step: int = STEP_MAX, ranges=WGS84) -> int | None:
    """The step*2-bit geohash of a point, None outside the ranges."""
    (lon_min, lon_max), (lat_min, lat_max) = ranges
    if not (LONG_MIN <= lon <= LONG_MAX and LAT_MIN <= lat <= LAT_MAX):
        return None
    if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
        return None
    lat_offset = (lat - lat_min) / (lat_max - lat_min) * float(1 << step)
    lon_offset = (lon - lon_min) / (lon_max - lon_min) * float(1 << step)
    # C converts the offsets to uint32_t (truncation) before interleaving.
    return _spread(int(lat_offset)) | (_spread(int(lon_offset)) << 1)


def align52(bits: int, step: int) -> int:
    return (bits << (52 - step * 2)) & _U64


def score_of(lon: float, lat: float) -> float:
    """The sorted-set score GEOADD stores (the caller validated the point)."""
    return float(align52(encode(lon, lat), STEP_MAX))


def decode_area(bits: int, step: int, ranges=WGS84):
    """(lon_min, lon_max, lat_min, lat_max) of a geohash cell."""
    (lon_min, lon_max), (lat_min, lat_max) = ranges
    lat_scale = lat_max - lat_min
    lon_scale = lon_max - lon_min
    ilat = _squash(bits)
    ilon = _squash(bits >> 1)
    cells = float(1 << step)
    return (lon_min + (ilon / cells) * lon_scale,
            lon_min + ((ilon + 1) / cells) * lon_scale,
            lat_min + (ilat / cells) * lat_scale,
            lat_min + ((ilat + 1) / cells) * lat_scale)


_TWO63 = float(1 << 63)
_INDEFINITE = 1 << 63  # what x86-64's cvttsd2si yields for NaN and out-of-range values


def _cvttsd2si(x: float) -> int:
    if x != x or not -_TWO63 <= x < _TWO63:
        return _INDEFINITE
    return int(x) & _U64


def score_bits(score: float) -> int:
    """C's (uint64_t)score as gcc compiles it for x86-64 (scores of sorted
    sets that are not GEO sets can be negative, huge or infinite)."""
    if score >= _TWO63:
        return _cvttsd2si(score - _TWO63) ^ _INDEFINITE
    return _cvttsd2si(score)


def decode_score(score: float) -> tuple[float, float]:
    """(longitude, latitude) of a GEO score: the centre of its cell, clamped
    to the valid ranges (what GEOPOS shows)."""
    lo_min, lo_max, la_min, la_max = decode_area(score_bits(score), STEP_MAX)
    lon = (lo_min + lo_max) / 2
    lon = min(max(lon, LONG_MIN), LONG_MAX)
    lat = (la_min + la_max) / 2
    lat = min(max(lat, LAT_MIN), LAT_MAX)
    return lon, lat


_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def text_hash(score: float) -> bytes:
    """GEOHASH's 11-character standard geohash of a GEO score."""
    lon, lat = decode_score(score)
    bits = encode(lon, lat, STEP_MAX, STANDARD) or 0
    out = bytearray()
    for i in range(10):
        out.append(_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F])
    out.append(_ALPHABET[0])  # 52 bits only: the 11th character is always '0'
    return bytes(out)


# ---------------------------------------------------------------- distances

# libm's functions return NaN where Python's math module raises (cos(inf),
# asin of 1+epsilon for antipodal points ...); Redis goes on with the NaN.


def _c(fn):
    def call(x: float) -> float:
        try:
            return fn(x)
        except ValueError:
            return math.nan
    return call


_sin, _cos, _asin, _sqrt = _c(math.sin), _c(math.cos), _c(math.asin), _c(math.sqrt)


def _cdiv(a: float, b: float) -> float:
    """a / b with IEEE semantics (x/0 is +-inf or NaN)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_IN_METERS * abs(lat2 * _D_R - lat1 * _D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine distance in meters, as Redis computes it."""
    lon1r = lon1 * _D_R
    lon2r = lon2 * _D_R
    v = _sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = lat1 * _D_R
    lat2r = lat2 * _D_R
    u = _sin((lat2r - lat1r) / 2)
    a = u * u + _cos(lat1r) * _cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * _asin(_sqrt(a))


# ---------------------------------------------------------------- search areas


class Shape:
    """A search area: centre (lon, lat), CIRCLE radius or BOX width/height in
    the user's unit, and the unit's size in meters."""

    __slots__ = ("lon", "lat", "kind", "radius", "width", "height", "conversion")

    def __init__(self, lon=0.0, lat=0.0, kind=CIRCLE, radius=0.0, width=0.0, height=0.0,
                 conversion=1.0):
        self.lon, self.lat, self.kind = lon, lat, kind
        self.radius, self.width, self.height = radius, width, height
        self.conversion = conversion

    def contains(self, lon: float, lat: float) -> float | None:
        """The distance in meters from the centre if (lon, lat) is inside."""
        if self.kind == CIRCLE:
            d = distance(self.lon, self.lat, lon, lat)
            return None if d > self.radius * self.conversion else d
        width_m = self.width * self.conversion
        height_m = self.height * self.conversion
        if lat_distance(lat, self.lat) > height_m / 2:
            return None
        if distance(lon, lat, self.lon, lat) > width_m / 2:
            return None
        return distance(self.lon, self.lat, lon, lat)


def _bounding_box(shape: Shape):
    if shape.kind == CIRCLE:
        height = width = shape.conversion * shape.radius
    else:
        height = shape.conversion * (shape.height / 2)
        width = shape.conversion * (shape.width / 2)
    lat = shape.lat
    lat_delta = (height / EARTH_RADIUS_IN_METERS) / _D_R
    delta_top = _cdiv(width / EARTH_RADIUS_IN_METERS, _cos((lat + lat_delta) * _D_R)) / _D_R
    delta_bottom = _cdiv(width / EARTH_RADIUS_IN_METERS, _cos((lat - lat_delta) * _D_R)) / _D_R
    delta = delta_bottom if lat < 0 else delta_top
    return shape.lon - delta, lat - lat_delta, shape.lon + delta, lat + lat_delta


def estimate_step(range_meters: float, lat: float) -> int:
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def _move(bits: int, step: int, d: int, on_odd: bool) -> int:
    """Move a cell one column (odd bits: longitude) or row (even bits)."""
    if d == 0:
        return bits
    own_mask, other_mask = (_ODD, _EVEN) if on_odd else (_EVEN, _ODD)
    mine = bits & own_mask
    other = bits & other_mask
    zz = other_mask >> (64 - step * 2)
    if d > 0:
        mine = (mine + (zz + 1)) & _U64
    else:
        mine = ((mine | zz) - (zz + 1)) & _U64
    mine &= own_mask >> (64 - step * 2)
    return mine | other


def _neighbour(bits: int, step: int, dx: int, dy: int) -> int:
    return _move(_move(bits, step, dx, True), step, dy, False)


# Redis's scan order: the centre, then N, S, E, W, NE, NW, SE, SW.
_ORDER = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


def search_cells(shape: Shape) -> list:
    """The geohash cells to scan, in Redis's order, as (bits, step); a cell
    left out by Redis is (0, 0)."""
    min_lon, min_lat, max_lon, max_lat = _bounding_box(shape)
    if shape.kind == CIRCLE:
        radius = shape.radius
    else:
        radius = _sqrt((shape.width / 2) * (shape.width / 2)
                       + (shape.height / 2) * (shape.height / 2))
    radius *= shape.conversion
    step = estimate_step(radius, shape.lat)

    def around(step):
        centre = encode(shape.lon, shape.lat, step)
        return centre, [_neighbour(centre, step, dx, dy) for dx, dy in _ORDER]

    centre, near = around(step)
    north = decode_area(near[0], step)
    south = decode_area(near[1], step)
    east = decode_area(near[2], step)
    west = decode_area(near[3], step)
    if (north[3] < max_lat or south[2] > min_lat or east[1] < max_lon
            or west[0] > min_lon) and step > 1:
        step -= 1
        centre, near = around(step)
    area = decode_area(centre, step)
    cells = [(centre, step)] + [(b, step) for b in near]
    if step >= 2:
        # indexes into cells: 1 N, 2 S, 3 E, 4 W, 5 NE, 6 NW, 7 SE, 8 SW
        drop = set()
        if area[2] < min_lat:
            drop.update((2, 8, 7))
        if area[3] > max_lat:
            drop.update((1, 5, 6))
        if area[0] < min_lon:
            drop.update((4, 8, 6))
        if area[1] > max_lon:
            drop.update((3, 7, 5))
        for i in drop:
            cells[i] = (0, 0)
    return cells


def cell_scores(bits: int, step: int) -> tuple[float, float]:
    """The score interval [min, max) of the points inside a cell."""
    return float(align52(bits, step)), float(align52(bits + 1, step))


# ---------------------------------------------------------------- reply texts


def human_double(value: float) -> bytes:
    """Redis's "human" long double text (GEOPOS, WITHCOORD): 17 decimals,
    trailing zeros and a bare '.' removed, "-0" shown as "0"."""
    text = b"%.17f" % value
    if b"." in text:
        text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text


def fixed4(value: float) -> bytes:
    """A distance with 4 decimals (llrint of value*10^4, ties to even)."""
    if value == 0:
        return b"0.0000"
    scaled = value * 10000.0
    # llrint: ties to even; NaN and out-of-range values give LLONG_MIN
    n = round(scaled) if scaled == scaled and abs(scaled) < _TWO63 else -(1 << 63)
    sign = b"-" if n < 0 else b""
    n = abs(n)
    return b"%s%d.%04d" % (sign, n // 10000, n % 10000)
