"""Number parsing and formatting with Redis's exact rules.

Redis is strict: "+1", " 1", "1.0" and "01" are not integers; "nan" is not a
float; "1e3" is a float but not an integer. Python's int()/float() accept much
more, so every command argument goes through these.
"""

from __future__ import annotations

import math
import re

from hakv.common import errors
from hakv.common.resp import ErrorReply

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)

_FLOAT_RE = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)", re.IGNORECASE
)


def parse_int(b: bytes) -> int | None:
    """Redis's string2ll: optional '-', digits without leading zeros, in the
    signed 64-bit range. None if not an integer."""
    n = len(b)
    if n == 0 or n > 20:
        return None
    if b.isdigit():
        if n > 1 and b[0] == 48:
            return None
        v = int(b)
        return v if v <= LLONG_MAX else None
    if b[0] == 45 and n > 1:
        d = b[1:]
        if not d.isdigit() or d[0] == 48:
            return None
        v = -int(d)
        return v if v >= LLONG_MIN else None
    return None


def get_int(b: bytes, message: str = errors.NOT_INTEGER) -> int:
    v = parse_int(b)
    if v is None:
        raise ErrorReply(message)
    return v


def get_positive_int(b: bytes, name: str = "") -> int:
    v = get_int(b)
    if v < 0:
        raise ErrorReply("ERR %s is out of range, must be positive" % name if name else
                         errors.NOT_INTEGER)
    return v


def parse_float(b: bytes) -> float | None:
    """Redis's string2ld/strtod acceptance: decimal or exponent forms and
    inf/-inf, no spaces, no nan."""
    if not b or len(b) > 5000 or not _FLOAT_RE.fullmatch(b):
        return None
    try:
        v = float(b)
    except ValueError:
        return None
    if math.isnan(v):
        return None
    return v


def get_float(b: bytes, message: str = errors.NOT_FLOAT) -> float:
    v = parse_float(b)
    if v is None:
        raise ErrorReply(message)
    return v


def format_float_incr(v: float) -> bytes:
    """INCRBYFLOAT / HINCRBYFLOAT output: Redis prints long doubles with %.17Lf
    and strips trailing zeros; a double gives the same digits for values
    that round-trip, which %.17g then trims."""
    if math.isinf(v):
        return b"inf" if v > 0 else b"-inf"
    if v == int(v) and abs(v) < 1e17:
        return b"%d" % int(v)
    text = b"%.17f" % v
    # Long doubles would carry more precision; use the shortest repr that
    # round-trips when it is shorter, which is what clients expect to read.
    short = repr(v).encode()
    if b"e" not in short:
        return short
    return text.rstrip(b"0").rstrip(b".")
